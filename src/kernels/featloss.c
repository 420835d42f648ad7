/* The feature-target loss of SemAIM* (see ops.h): normalised-prediction against
 * normalised-teacher-token distance per patch. The norms and dot products of a row are summed
 * in double: rows are as wide as a teacher's tokens (up to 1024 for CLIP ViT-L), and the loss
 * of a well-trained head is a small difference of numbers near 1. */
#include <math.h>
#include "kernels/chunks.h"
#include "kernels/ops.h"

static inline double row_norm(const float *x, int C) {
    double s = 0.0;
    for (int c = 0; c < C; c++) s += (double)x[c] * x[c];
    return sqrt(s);
}

static inline double row_loss(const float *p, const float *t, int C) {
    const double ip = 1.0 / fmax(row_norm(p, C), FEATLOSS_EPS), it = 1.0 / fmax(row_norm(t, C), FEATLOSS_EPS);
    double s = 0.0;
    for (int c = 0; c < C; c++) { double d = p[c] * ip - t[c] * it; s += d * d; }
    return s;
}

typedef struct { const float *pred, *target; int C; } rows_t;
static double rows_loss(long lo, long hi, const void *ctx) {
    const rows_t *r = ctx;
    double s = 0.0;
    for (long n = lo; n < hi; n++) s += row_loss(r->pred + n * r->C, r->target + n * r->C, r->C);
    return s;
}

double featloss_forward(const float *pred, const float *target, long N, int C) {
    const rows_t r = {pred, target, C};
    return N > 0 ? chunk_sum(N, rows_loss, &r) / N : 0.0;
}

/* With g = k·(p̂ − t̂) the gradient of the loss with respect to p̂, the gradient through the
 * normalisation is (g − p̂·(p̂·g)) / ‖p‖; below eps the clamp makes p̂ = p/eps, linear. */
void featloss_backward(float *dpred, const float *pred, const float *target, long N, int C, float scale) {
    if (N <= 0) return;
    const double k = 2.0 * scale / N;
    #pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++) {
        const float *p = pred + n * C, *t = target + n * C;
        float *d = dpred + n * C;
        const double np = row_norm(p, C), ip = 1.0 / fmax(np, FEATLOSS_EPS);
        const double it = 1.0 / fmax(row_norm(t, C), FEATLOSS_EPS);
        double pg = 0.0;   /* p̂·(p̂ − t̂) */
        for (int c = 0; c < C; c++) { double ph = p[c] * ip; pg += ph * (ph - t[c] * it); }
        if (np < FEATLOSS_EPS) pg = 0.0;
        for (int c = 0; c < C; c++) {
            const double ph = p[c] * ip;
            d[c] += (float)(k * ip * ((ph - t[c] * it) - ph * pg));
        }
    }
}

double featloss_forward_ref(const double *pred, const double *target, long N, int C) {
    double s = 0.0;
    for (long n = 0; n < N; n++) {
        const double *p = pred + n * C, *t = target + n * C;
        double np = 0, nt = 0;
        for (int c = 0; c < C; c++) { np += p[c] * p[c]; nt += t[c] * t[c]; }
        np = fmax(sqrt(np), FEATLOSS_EPS); nt = fmax(sqrt(nt), FEATLOSS_EPS);
        for (int c = 0; c < C; c++) s += (p[c] / np - t[c] / nt) * (p[c] / np - t[c] / nt);
    }
    return N > 0 ? s / N : 0.0;
}

/* Written as the Jacobian of x / ‖x‖ applied to the output gradient, entry by entry:
 * ∂p̂_i/∂p_j = (δ_ij − p̂_i p̂_j)/‖p‖. */
void featloss_backward_ref(double *dpred, const double *pred, const double *target, long N, int C, double scale) {
    for (long n = 0; n < N; n++) {
        const double *p = pred + n * C, *t = target + n * C;
        double np = 0, nt = 0;
        for (int c = 0; c < C; c++) { np += p[c] * p[c]; nt += t[c] * t[c]; }
        np = sqrt(np); nt = fmax(sqrt(nt), FEATLOSS_EPS);
        const double r = fmax(np, FEATLOSS_EPS);
        for (int j = 0; j < C; j++) {
            double s = 0.0;
            for (int i = 0; i < C; i++) {
                const double gi = scale * 2.0 * (p[i] / r - t[i] / nt) / N;
                const double jac = np < FEATLOSS_EPS ? (i == j) / r : ((i == j) - (p[i] / r) * (p[j] / r)) / r;
                s += gi * jac;
            }
            dpred[n * C + j] += s;
        }
    }
}
