/* Linear layer, PyTorch weight layout W[OC,C]: out = inp·Wᵀ + bias. The GEMMs go to OpenBLAS. */
#include <cblas.h>
#include "kernels/ops.h"

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
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, OC, C,
                1.0f, inp, C, W, C, beta, out, OC);
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
    if (dinp)   // dinp[N,C] += dout[N,OC] · W[OC,C]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, C, OC,
                    1.0f, dout, OC, W, C, 1.0f, dinp, C);
    if (dW)     // dW[OC,C] += doutᵀ · inp
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, (int)N,
                    1.0f, dout, OC, inp, C, 1.0f, dW, C);
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
