/* LayerNorm over the last dimension (biased variance, eps SEMAIM_LN_EPS, or the eps a frozen
 * teacher was trained with), as torch.nn.LayerNorm.
 * The forward writes its output in the type of the GEMM that reads it: in bf16 runs each row
 * is computed in f32 a chunk at a time and rounded from L1, so no separate conversion pass
 * ever reads the output again. */
#include <math.h>
#include "kernels/ops.h"

/* Column block for the weight-gradient reduction: each thread owns whole columns, so the sums
 * need no atomics, no per-thread buffers and come out identical for any thread count. */
#define LN_COLS 32

#define LN_CHUNK 256   // floats of a row rounded to bf16 at once (stays in L1)

void layernorm_forward(gemm_in_t *out, int bf16, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, long N, int C) {
    layernorm_forward_eps(out, bf16, mean, rstd, inp, w, b, N, C, SEMAIM_LN_EPS);
}

void layernorm_forward_eps(gemm_in_t *out, int bf16, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, long N, int C, float eps) {
    #pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float s = 0.0f;
        #pragma omp simd reduction(+:s)
        for (int i = 0; i < C; i++) s += x[i];
        float m = s / C;
        // two-pass variance: centring first keeps float precision when |mean| >> std
        float v = 0.0f;
        #pragma omp simd reduction(+:v)
        for (int i = 0; i < C; i++) { float d = x[i] - m; v += d * d; }
        float r = 1.0f / sqrtf(v / C + eps);
        if (!bf16) {
            float *o = (float *)out + n * C;
            if (w) {
                #pragma omp simd
                for (int i = 0; i < C; i++) o[i] = (x[i] - m) * r * w[i] + b[i];
            } else {
                #pragma omp simd
                for (int i = 0; i < C; i++) o[i] = (x[i] - m) * r;
            }
        } else {
            bf16_t *o = (bf16_t *)out + n * C;
            float t[LN_CHUNK];
            for (int c0 = 0; c0 < C; c0 += LN_CHUNK) {
                const int nc = C - c0 < LN_CHUNK ? C - c0 : LN_CHUNK;
                if (w) {
                    #pragma omp simd
                    for (int i = 0; i < nc; i++) t[i] = (x[c0 + i] - m) * r * w[c0 + i] + b[c0 + i];
                } else {
                    #pragma omp simd
                    for (int i = 0; i < nc; i++) t[i] = (x[c0 + i] - m) * r;
                }
                bf16_from_f32(o + c0, t, nc);
            }
        }
        mean[n] = m;
        rstd[n] = r;
    }
}

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, long N, int C) {
    if (dinp) {
        #pragma omp parallel for schedule(static)
        for (long n = 0; n < N; n++) {
            const float *x = inp + n * C, *dy = dout + n * C;
            float *dx = dinp + n * C;
            float m = mean[n], r = rstd[n];
            float sg = 0.0f, sgn = 0.0f;   // mean of g and of g·xhat, g = dy·w
            #pragma omp simd reduction(+:sg, sgn)
            for (int i = 0; i < C; i++) {
                float g = dy[i] * w[i];
                sg += g;
                sgn += g * (x[i] - m) * r;
            }
            sg /= C;
            sgn /= C;
            #pragma omp simd
            for (int i = 0; i < C; i++) {
                float xh = (x[i] - m) * r;
                dx[i] += (dy[i] * w[i] - sg - xh * sgn) * r;
            }
        }
    }
    if (dw || db) {
        int nblk = (C + LN_COLS - 1) / LN_COLS;
        #pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int c0 = blk * LN_COLS, nc = C - c0 < LN_COLS ? C - c0 : LN_COLS;
            float aw[LN_COLS] = {0}, ab[LN_COLS] = {0};
            for (long n = 0; n < N; n++) {
                const float *x = inp + n * C + c0, *dy = dout + n * C + c0;
                float m = mean[n], r = rstd[n];
                #pragma omp simd
                for (int i = 0; i < nc; i++) {
                    aw[i] += dy[i] * (x[i] - m) * r;
                    ab[i] += dy[i];
                }
            }
            if (dw) for (int i = 0; i < nc; i++) dw[c0 + i] += aw[i];
            if (db) for (int i = 0; i < nc; i++) db[c0 + i] += ab[i];
        }
    }
}

void layernorm_forward_ref(double *out, double *mean, double *rstd, const double *inp,
                           const double *w, const double *b, long N, int C) {
    layernorm_forward_eps_ref(out, mean, rstd, inp, w, b, N, C, SEMAIM_LN_EPS);
}

void layernorm_forward_eps_ref(double *out, double *mean, double *rstd, const double *inp,
                               const double *w, const double *b, long N, int C, double eps) {
    for (long n = 0; n < N; n++) {
        const double *x = inp + n * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        v /= C;
        double r = 1.0 / sqrt(v + eps);
        for (int i = 0; i < C; i++) out[n * C + i] = (x[i] - m) * r * (w ? w[i] : 1.0) + (w ? b[i] : 0.0);
        mean[n] = m;
        rstd[n] = r;
    }
}

void layernorm_backward_ref(double *dinp, double *dw, double *db, const double *dout, const double *inp,
                            const double *w, const double *mean, const double *rstd, long N, int C) {
    for (long n = 0; n < N; n++) {
        const double *x = inp + n * C, *dy = dout + n * C;
        double m = mean[n], r = rstd[n], sg = 0, sgn = 0;
        for (int i = 0; i < C; i++) {
            sg += dy[i] * w[i];
            sgn += dy[i] * w[i] * (x[i] - m) * r;
        }
        sg /= C;
        sgn /= C;
        for (int i = 0; i < C; i++) {
            double xh = (x[i] - m) * r;
            if (dinp) dinp[n * C + i] += (dy[i] * w[i] - sg - xh * sgn) * r;
            if (dw) dw[i] += dy[i] * xh;
            if (db) db[i] += dy[i];
        }
    }
}
