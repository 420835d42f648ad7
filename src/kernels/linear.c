/* Linear layer, PyTorch weight layout W[OC,C]: out = inp·Wᵀ + bias. The GEMMs go through the
 * process-wide GEMM context (kernels/gemm.h): OpenBLAS or oneDNN, fp32 or bf16. */
#include "kernels/gemm.h"
#include "kernels/ops.h"

/* The three GEMMs of a layer, as the context caches their plans. */
static gemm_shape_t fwd_shape(long N, int C, int OC, int bias) {
    return (gemm_shape_t){0, 1, N, OC, C, C, C, OC, 1.0f, bias ? 1.0f : 0.0f};   // out (+)= inp·Wᵀ
}
static gemm_shape_t dinp_shape(long N, int C, int OC) {
    return (gemm_shape_t){0, 0, N, C, OC, OC, C, C, 1.0f, 1.0f};   // dinp += dout·W
}
static gemm_shape_t dw_shape(long N, int C, int OC) {
    return (gemm_shape_t){1, 0, OC, C, N, OC, C, C, 1.0f, 1.0f};   // dW += doutᵀ·inp
}

void linear_prepare(long N, int C, int OC, int bias, int dinp) {
    if (N <= 0 || OC <= 0 || C <= 0) return;   // handled without a GEMM
    gemm_shape_t f = fwd_shape(N, C, OC, bias), w = dw_shape(N, C, OC), d = dinp_shape(N, C, OC);
    gemm_prepare(&f, 0);
    gemm_prepare(&w, 0);
    if (dinp) gemm_prepare(&d, 0);
}

#define LIN_COLS 32   // bias-gradient column block: whole columns per thread, deterministic sums

void linear_forward(float *out, const float *inp, const float *W, const float *bias, long N, int C, int OC) {
    if (N <= 0 || OC <= 0) return;
    if (C <= 0) {   // empty contraction: the GEMM would reject lda = 0
        for (long n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[n * OC + o] = bias ? bias[o] : 0.0f;
        return;
    }
    float beta = 0.0f;
    if (bias) {
        // preload the bias and let the GEMM accumulate onto it: one pass over out instead of two
        #pragma omp parallel for schedule(static)
        for (long n = 0; n < N; n++) {
            float *o = out + n * OC;
            #pragma omp simd
            for (int i = 0; i < OC; i++) o[i] = bias[i];
        }
        beta = 1.0f;
    }
    gemm_shape_t f = fwd_shape(N, C, OC, beta != 0.0f);
    gemm_f32(&f, inp, W, out);
}

void linear_backward(float *dinp, float *dW, float *dbias, const float *dout, const float *inp,
                     const float *W, long N, int C, int OC) {
    if (N <= 0 || OC <= 0 || C <= 0) {
        if (dbias && N > 0 && C <= 0) {   // bias still receives gradient when C is empty
            for (long n = 0; n < N; n++)
                for (int o = 0; o < OC; o++) dbias[o] += dout[n * OC + o];
        }
        return;
    }
    if (dinp) {   // dinp[N,C] += dout[N,OC] · W[OC,C]
        gemm_shape_t d = dinp_shape(N, C, OC);
        gemm_f32(&d, dout, W, dinp);
    }
    if (dW) {     // dW[OC,C] += doutᵀ · inp
        gemm_shape_t w = dw_shape(N, C, OC);
        gemm_f32(&w, dout, inp, dW);
    }
    if (dbias) {
        int nblk = (OC + LIN_COLS - 1) / LIN_COLS;
        #pragma omp parallel for schedule(static)
        for (int blk = 0; blk < nblk; blk++) {
            int o0 = blk * LIN_COLS, no = OC - o0 < LIN_COLS ? OC - o0 : LIN_COLS;
            float acc[LIN_COLS] = {0};
            for (long n = 0; n < N; n++) {
                const float *g = dout + n * OC + o0;
                #pragma omp simd
                for (int i = 0; i < no; i++) acc[i] += g[i];
            }
            for (int i = 0; i < no; i++) dbias[o0 + i] += acc[i];
        }
    }
}

void linear_forward_ref(double *out, const double *inp, const double *W, const double *bias, long N, int C, int OC) {
    for (long n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += inp[n * C + c] * W[(long)o * C + c];
            out[n * OC + o] = s;
        }
}

void linear_backward_ref(double *dinp, double *dW, double *dbias, const double *dout, const double *inp,
                         const double *W, long N, int C, int OC) {
    for (long n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double g = dout[n * OC + o];
            if (dbias) dbias[o] += g;
            for (int c = 0; c < C; c++) {
                if (dinp) dinp[n * C + c] += g * W[(long)o * C + c];
                if (dW) dW[(long)o * C + c] += g * inp[n * C + c];
            }
        }
}
