/* Per-row standardisation of pixel targets with the UNBIASED variance (torch .var() default),
 * eps inside the sqrt. Safe in place (out == inp): each row is read fully before it is written. */
#include <math.h>
#include "kernels/ops.h"

#define PN_EPS 1e-6

void patchnorm_forward(float *out, float *mean, float *rstd, const float *inp, long N, int C) {
    #pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float *o = out + n * C;
        float s = 0.0f;
        #pragma omp simd reduction(+:s)
        for (int i = 0; i < C; i++) s += x[i];
        const float m = s / C;
        float v = 0.0f;
        #pragma omp simd reduction(+:v)
        for (int i = 0; i < C; i++) { float d = x[i] - m; v += d * d; }
        const float r = 1.0f / sqrtf(v / (C - 1) + (float)PN_EPS);
        #pragma omp simd
        for (int i = 0; i < C; i++) o[i] = (x[i] - m) * r;
        mean[n] = m;
        rstd[n] = r;
    }
}

/* With y = (x − μ)·r: dx = r·(dy − mean(dy) − y·Σ(dy·y)/(C − 1)). */
void patchnorm_backward(float *dinp, const float *dout, const float *inp,
                        const float *mean, const float *rstd, long N, int C) {
    #pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C, *dy = dout + n * C;
        float *dx = dinp + n * C;
        const float m = mean[n], r = rstd[n];
        float sd = 0.0f, sdy = 0.0f;
        #pragma omp simd reduction(+:sd, sdy)
        for (int i = 0; i < C; i++) { sd += dy[i]; sdy += dy[i] * (x[i] - m) * r; }
        sd /= C;
        sdy /= (C - 1);
        #pragma omp simd
        for (int i = 0; i < C; i++) dx[i] += r * (dy[i] - sd - (x[i] - m) * r * sdy);
    }
}

void patchnorm_forward_ref(double *out, double *mean, double *rstd, const double *inp, long N, int C) {
    for (long n = 0; n < N; n++) {
        const double *x = inp + n * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        v /= (C - 1);
        const double r = 1.0 / sqrt(v + PN_EPS);
        for (int i = 0; i < C; i++) out[n * C + i] = (x[i] - m) * r;
        mean[n] = m;
        rstd[n] = r;
    }
}

void patchnorm_backward_ref(double *dinp, const double *dout, const double *inp,
                            const double *mean, const double *rstd, long N, int C) {
    for (long n = 0; n < N; n++) {
        const double *x = inp + n * C, *dy = dout + n * C;
        const double m = mean[n], r = rstd[n];
        double sd = 0, sdy = 0;
        for (int i = 0; i < C; i++) { sd += dy[i]; sdy += dy[i] * (x[i] - m) * r; }
        sd /= C;
        sdy /= (C - 1);
        for (int i = 0; i < C; i++) dinp[n * C + i] += r * (dy[i] - sd - (x[i] - m) * r * sdy);
    }
}
