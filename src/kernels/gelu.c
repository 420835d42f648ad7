/* GELU, exact erf form (torch.nn.GELU() default, not the tanh approximation): x·Φ(x), and
 * QuickGELU x·σ(1.702x), the activation of OpenAI CLIP's towers (forward only: a frozen
 * teacher's).
 * Φ is computed here in plain float arithmetic so the loops vectorise; with libm erff they do
 * not, and GELU then cost more than the MLP GEMMs around it (78 ms vs ~40 ms for the tiny
 * preset's 6304×768 hidden layer on one core). */
#include <math.h>
#include "kernels/ops.h"
#include "kernels/vmath.h"

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT2PI 0.39894228040143267794

/* Φ(x) = ½·erfc(−x/√2), branch-free; *g gets e^{−x²/2}, shared with the derivative.
 * z = |x|/√2. For z < 0.5: erf(z) = z·Σ Taylor terms (7 terms, < 1e-9 relative).
 * Otherwise erfc(z) = e^{−z²}·R(t), t = 1/(1 + z/2), R a degree-9 polynomial fitted (minimax
 * in relative error, on [0.5, 9.5]) to e^{z²}·erfc(z): 1e-9 in double, ~3e-7 evaluated in
 * float. The erfc form keeps Φ accurate relative to its own size in the left tail, where
 * 1 + erf(x/√2) cancels. Beyond z = 9.5, e^{−z²} is below float range anyway. */
static inline float normal_cdf(float x, float *g) {
    const float z = fabsf(x) * (float)INV_SQRT2, z2 = z * z;
    const float e = vexp_nonpos(-z2);
    *g = e;
    const float erf_small = z * (1.12837916709551257f + z2 * (-0.37612638903183752f
                          + z2 * (0.11283791670955126f + z2 * (-0.02686617064513125f
                          + z2 * (0.00522397762544219f + z2 * (-0.00085483270234508f
                          + z2 * 0.00012055332981790f))))));
    const float t = 1.0f / (1.0f + 0.5f * (z < 9.5f ? z : 9.5f));
    const float R = 4.2135332656163345e-06f + t * (0.28196779471795835f + t * (0.28377192267105195f
                  + t * (0.23406926589177549f + t * (0.23815141225602315f + t * (-0.11451275163930874f
                  + t * (0.41609455081881574f + t * (-0.6202207904823918f + t * (0.3562550701564104f
                  + t * -0.07559004877543518f))))))));
    const float half_erfc = 0.5f * e * R;
    const float big = x < 0.0f ? half_erfc : 1.0f - half_erfc;
    const float small = x < 0.0f ? 0.5f - 0.5f * erf_small : 0.5f + 0.5f * erf_small;
    return z < 0.5f ? small : big;
}

#define GELU_CHUNK 256   // floats rounded to bf16 at once (stays in L1)

/* σ(1.702x) of QuickGELU (OpenAI CLIP's activation), branch-free: e^{−|y|} never overflows,
 * and σ(−|y|) = e/(1 + e) keeps the left tail relative-accurate (vexp_nonpos: < 2e-7). */
static inline float quick_sigmoid(float x) {
    const float y = 1.702f * x, e = vexp_nonpos(-fabsf(y)), s = 1.0f / (1.0f + e);
    return y >= 0.0f ? s : e * s;
}

/* Fused with the bias of the GEMM before it: that GEMM writes x without a bias, and this one
 * pass adds it, keeps x for backward and writes the activation the next GEMM reads — instead
 * of a bias preload pass, a GEMM that reads it back, and a GELU pass. quick selects QuickGELU;
 * it is a constant at each call below, so each caller gets its own vectorised loop. */
static inline void bias_act_forward(gemm_in_t *out, int bf16, float *x, const float *bias, long N, int C, int quick) {
    #pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++) {
        float *xr = x + n * C;
        for (int c0 = 0; c0 < C; c0 += GELU_CHUNK) {
            const int nc = C - c0 < GELU_CHUNK ? C - c0 : GELU_CHUNK;
            float *xc = xr + c0, t[GELU_CHUNK];
            float *o = bf16 ? t : (float *)out + n * C + c0;
            if (bias) {
                #pragma omp simd
                for (int i = 0; i < nc; i++) xc[i] += bias[c0 + i];
            }
            if (quick) {
                #pragma omp simd
                for (int i = 0; i < nc; i++) o[i] = xc[i] * quick_sigmoid(xc[i]);
            } else {
                #pragma omp simd
                for (int i = 0; i < nc; i++) {
                    float g;
                    o[i] = xc[i] * normal_cdf(xc[i], &g);
                }
            }
            if (bf16) bf16_from_f32((bf16_t *)out + n * C + c0, t, nc);
        }
    }
}

void bias_gelu_forward(gemm_in_t *out, int bf16, float *x, const float *bias, long N, int C) {
    bias_act_forward(out, bf16, x, bias, N, C, 0);
}

void bias_quickgelu_forward(gemm_in_t *out, int bf16, float *x, const float *bias, long N, int C) {
    bias_act_forward(out, bf16, x, bias, N, C, 1);
}

void gelu_backward(float *dinp, const float *dout, const float *inp, long n) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) {
        float g;
        const float x = inp[i], cdf = normal_cdf(x, &g);
        dinp[i] += dout[i] * (cdf + x * (float)INV_SQRT2PI * g);   // d/dx x·Φ(x) = Φ + x·φ
    }
}

void gelu_backward_inplace(float *d, const float *x, long n) {
    #pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) {
        float g;
        const float cdf = normal_cdf(x[i], &g);
        d[i] *= cdf + x[i] * (float)INV_SQRT2PI * g;
    }
}

/* Φ(x) = ½·erfc(−x/√2): the same function as ½(1 + erf(x/√2)) without its cancellation for
 * x << 0, so the reference stays accurate relative to the tiny left-tail values. */
void gelu_forward_ref(double *out, const double *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = 0.5 * inp[i] * erfc(-inp[i] * INV_SQRT2);
}

void bias_gelu_forward_ref(double *out, double *x, const double *bias, long N, int C) {
    for (long n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double *xi = &x[n * C + c];
            if (bias) *xi += bias[c];
            gelu_forward_ref(&out[n * C + c], xi, 1);
        }
}

void gelu_backward_ref(double *dinp, const double *dout, const double *inp, long n) {
    for (long i = 0; i < n; i++) {
        double x = inp[i];
        dinp[i] += dout[i] * (0.5 * erfc(-x * INV_SQRT2) + x * INV_SQRT2PI * exp(-0.5 * x * x));
    }
}

void quickgelu_forward_ref(double *out, const double *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = inp[i] / (1.0 + exp(-1.702 * inp[i]));
}
