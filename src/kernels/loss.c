/* Mean squared error. The forward sum is split into a fixed number of chunks whose partial
 * sums are added in order, so the loss is bit-identical for any thread count. */
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
