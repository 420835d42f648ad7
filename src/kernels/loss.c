/* Mean squared error. The forward sum is split into a fixed number of chunks whose partial
 * sums are added in order, so the loss is bit-identical for any thread count. */
#include <math.h>
#include <stdint.h>
#include "kernels/ops.h"

#define MSE_CHUNKS 64

double mse_forward(const float *pred, const float *target, long n) {
    if (n <= 0) return 0.0;
    double part[MSE_CHUNKS];
    const long per = (n + MSE_CHUNKS - 1) / MSE_CHUNKS;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < MSE_CHUNKS; c++) {
        const long lo = c * per, hi = lo + per < n ? lo + per : n;
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (long i = lo; i < hi; i++) { double d = (double)pred[i] - target[i]; s += d * d; }
        part[c] = s;
    }
    double s = 0.0;
    for (int c = 0; c < MSE_CHUNKS; c++) s += part[c];
    return s / n;
}

void mse_backward(float *dpred, const float *pred, const float *target, long n, float scale) {
    if (n <= 0) return;
    const float k = (float)(2.0 * scale / n);
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) dpred[i] += k * (pred[i] - target[i]);
}

double mse_forward_ref(const double *pred, const double *target, long n) {
    double s = 0;
    for (long i = 0; i < n; i++) s += (pred[i] - target[i]) * (pred[i] - target[i]);
    return n > 0 ? s / n : 0.0;
}

void mse_backward_ref(double *dpred, const double *pred, const double *target, long n, double scale) {
    for (long i = 0; i < n; i++) dpred[i] += scale * 2.0 * (pred[i] - target[i]) / n;
}

/* ---- label-smoothed softmax cross-entropy (fine-tuning, linear probe) */

/* The target of class c for a row labelled y. With eps 0 it is exactly 0 or 1. */
static inline double xent_target(int c, int y, double eps, int C) { return (1.0 - eps) * (c == y) + eps / C; }

/* Σ_c exp(l_c − max) of a row, and the max in *mx: the log-sum-exp is *mx + log of it. */
static double sum_exp(const float *l, int C, double *mx) {
    double m = l[0], z = 0;
    for (int c = 1; c < C; c++) m = fmax(m, l[c]);
    for (int c = 0; c < C; c++) z += exp(l[c] - m);
    *mx = m;
    return z;
}

double xent_forward(const float *logits, const int32_t *labels, int B, int C, float eps, int *counted) {
    /* serial on purpose: the sum must not depend on the thread count, and B·C exps are cheap */
    double loss = 0;
    int n = 0;
    for (int b = 0; b < B; b++) {
        int y = labels[b];
        if (y < 0 || y >= C) continue;
        const float *l = logits + (long)b * C;
        double mx, z = sum_exp(l, C, &mx), sum = 0;
        for (int c = 0; c < C; c++) sum += l[c];
        loss += mx + log(z) - ((1.0 - eps) * l[y] + eps * sum / C);
        n++;
    }
    if (counted) *counted = n;
    return loss;
}

void xent_backward(float *dlogits, const float *logits, const int32_t *labels, int B, int C, float eps, double scale) {
#pragma omp parallel for schedule(static) if (B > 64)
    for (int b = 0; b < B; b++) {
        int y = labels[b];
        if (y < 0 || y >= C) continue;
        const float *l = logits + (long)b * C;
        float *dl = dlogits + (long)b * C;
        double mx, z = sum_exp(l, C, &mx);
        for (int c = 0; c < C; c++) dl[c] += (float)((exp(l[c] - mx) / z - xent_target(c, y, eps, C)) * scale);
    }
}

/* The references: softmax straight from its definition (no max shift). */
static double sum_exp_ref(const double *l, int C) {
    double z = 0;
    for (int c = 0; c < C; c++) z += exp(l[c]);
    return z;
}

double xent_forward_ref(const double *logits, const int32_t *labels, int B, int C, double eps) {
    double loss = 0;
    for (int b = 0; b < B; b++) {
        int y = labels[b];
        if (y < 0 || y >= C) continue;
        const double *l = logits + (long)b * C;
        double z = sum_exp_ref(l, C);
        for (int c = 0; c < C; c++) loss -= xent_target(c, y, eps, C) * (l[c] - log(z));
    }
    return loss;
}

void xent_backward_ref(double *dlogits, const double *logits, const int32_t *labels, int B, int C, double eps,
                       double scale) {
    for (int b = 0; b < B; b++) {
        int y = labels[b];
        if (y < 0 || y >= C) continue;
        const double *l = logits + (long)b * C;
        double z = sum_exp_ref(l, C);
        for (int c = 0; c < C; c++) dlogits[(long)b * C + c] += scale * (exp(l[c]) / z - xent_target(c, y, eps, C));
    }
}
