/* Losses. Mean squared and mean absolute error: the forward sum is chunk_sum's (chunks.h), so
 * the loss is bit-identical for any thread count.
 * Soft-target cross-entropy: serial over rows (see ops.h). */
#include <math.h>
#include "kernels/chunks.h"
#include "kernels/ops.h"

typedef struct { const float *pred, *target; } pair_t;

static double sq_part(long lo, long hi, const void *ctx) {
    const pair_t *q = ctx;
    double s = 0.0;
    #pragma omp simd reduction(+:s)
    for (long i = lo; i < hi; i++) { double d = (double)q->pred[i] - q->target[i]; s += d * d; }
    return s;
}

static double abs_part(long lo, long hi, const void *ctx) {
    const pair_t *q = ctx;
    double s = 0.0;
    #pragma omp simd reduction(+:s)
    for (long i = lo; i < hi; i++) s += fabs((double)q->pred[i] - q->target[i]);
    return s;
}

double mse_forward(const float *pred, const float *target, long n) {
    pair_t q = {pred, target};
    return n > 0 ? chunk_sum(n, sq_part, &q) / n : 0.0;
}
double l1_forward(const float *pred, const float *target, long n) {
    pair_t q = {pred, target};
    return n > 0 ? chunk_sum(n, abs_part, &q) / n : 0.0;
}

void l1_backward(float *dpred, const float *pred, const float *target, long n, float scale) {
    if (n <= 0) return;
    const float k = (float)((double)scale / n);
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) {
        const float d = pred[i] - target[i];
        dpred[i] += d > 0.0f ? k : d < 0.0f ? -k : 0.0f;
    }
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

double l1_forward_ref(const double *pred, const double *target, long n) {
    double s = 0;
    for (long i = 0; i < n; i++) s += fabs(pred[i] - target[i]);
    return n > 0 ? s / n : 0.0;
}

void l1_backward_ref(double *dpred, const double *pred, const double *target, long n, double scale) {
    for (long i = 0; i < n; i++) {
        const double d = pred[i] - target[i];
        dpred[i] += scale * (d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0) / n;
    }
}

/* Soft-target cross-entropy: log-sum-exp per row in double from the row maximum, so large
 * logits neither overflow nor lose the small probabilities' targets. */
void label_targets(float *t, const int32_t *labels, int B, int C, double smoothing) {
    const float off = (float)(smoothing / C), on = (float)(1.0 - smoothing + smoothing / C);
    for (int b = 0; b < B; b++) {
        float *row = t + (long)b * C;
        int y = labels[b], ok = y >= 0 && y < C;
        for (int c = 0; c < C; c++) row[c] = !ok ? 0.0f : c == y ? on : off;
    }
}

double softce_forward(float *probs, const float *logits, const float *targets, int B, int C) {
    double loss = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = logits + (long)b * C, *t = targets + (long)b * C;
        float *p = probs + (long)b * C;
        float mx = x[0];
        for (int c = 1; c < C; c++) mx = x[c] > mx ? x[c] : mx;
        double z = 0.0, st = 0.0, stx = 0.0;
        for (int c = 0; c < C; c++) {
            float e = expf(x[c] - mx);
            p[c] = e;
            z += e;
            st += t[c];
            stx += (double)t[c] * (x[c] - mx);
        }
        const float inv = (float)(1.0 / z);
        for (int c = 0; c < C; c++) p[c] *= inv;
        loss += st * log(z) - stx;   /* Σ t·(lse − x) with lse = mx + log z */
    }
    return B > 0 ? loss / B : 0.0;
}

void softce_backward(float *dlogits, const float *probs, const float *targets, int B, int C, float scale) {
    if (B <= 0) return;
    const float k = scale / (float)B;
    for (int b = 0; b < B; b++) {
        const float *p = probs + (long)b * C, *t = targets + (long)b * C;
        float *d = dlogits + (long)b * C;
        double st = 0.0;
        for (int c = 0; c < C; c++) st += t[c];
        const float s = (float)st;
        for (int c = 0; c < C; c++) d[c] += k * (p[c] * s - t[c]);
    }
}

double softce_forward_ref(double *probs, const double *logits, const double *targets, int B, int C) {
    double loss = 0;
    for (int b = 0; b < B; b++) {
        const double *x = logits + (long)b * C, *t = targets + (long)b * C;
        double mx = x[0], z = 0;
        for (int c = 1; c < C; c++) mx = fmax(mx, x[c]);
        for (int c = 0; c < C; c++) z += exp(x[c] - mx);
        for (int c = 0; c < C; c++) {
            probs[(long)b * C + c] = exp(x[c] - mx) / z;
            loss -= t[c] * (x[c] - mx - log(z));
        }
    }
    return B > 0 ? loss / B : 0.0;
}

void softce_backward_ref(double *dlogits, const double *probs, const double *targets, int B, int C, double scale) {
    for (int b = 0; b < B; b++) {
        double st = 0;
        for (int c = 0; c < C; c++) st += targets[(long)b * C + c];
        for (int c = 0; c < C; c++)
            dlogits[(long)b * C + c] += scale * (probs[(long)b * C + c] * st - targets[(long)b * C + c]) / B;
    }
}
