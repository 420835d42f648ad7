/* Linear layer, PyTorch weight layout W[OC,C]: out = inp·Wᵀ + bias (+ a residual). The three
 * GEMMs run the layer's plans (kernels/gemm.h): OpenBLAS or oneDNN, fp32 or bf16 inputs. */
#include <string.h>
#include "kernels/ops.h"

/* The three GEMMs of a layer (row strides of empty dimensions are 1: the layer skips those). */
static long ld(long x) { return x > 0 ? x : 1; }
static gemm_shape_t fwd_shape(long N, int C, int OC, int acc) {
    return (gemm_shape_t){0, 1, N, OC, C, ld(C), ld(C), ld(OC), 1.0f, acc ? 1.0f : 0.0f};   // out (+)= inp·Wᵀ
}
static gemm_shape_t dinp_shape(long N, int C, int OC, int set) {
    return (gemm_shape_t){0, 0, N, C, OC, ld(OC), ld(C), ld(C), 1.0f, set ? 0.0f : 1.0f};   // dinp (+)= dout·W
}
static gemm_shape_t dw_shape(long N, int C, int OC) {
    return (gemm_shape_t){1, 0, OC, C, N, ld(OC), ld(C), ld(C), 1.0f, 1.0f};   // dW += doutᵀ·inp
}

int linear_plan(lin_plan_t *p, const gemm_config_t *cfg, long N, int C, int OC, unsigned flags, err_t *e) {
    memset(p, 0, sizeof *p);
    p->N = N; p->C = C; p->OC = OC;
    p->accumulate = (flags & LIN_ACCUMULATE) != 0;
    p->bf16 = cfg->precision == GEMM_PREC_BF16;
    const unsigned in = p->bf16 ? GEMM_PLAN_BF16_IN : 0;
    const gemm_shape_t f = fwd_shape(N, C, OC, p->accumulate), d = dinp_shape(N, C, OC, (flags & LIN_DINP_SET) != 0),
                       w = dw_shape(N, C, OC);
    if (gemm_plan_create(&p->fwd, cfg, &f, in, e) ||
        ((flags & LIN_BACKWARD) && gemm_plan_create(&p->dw, cfg, &w, in, e)) ||
        ((flags & LIN_BACKWARD) && (flags & (LIN_DINP | LIN_DINP_SET)) && gemm_plan_create(&p->dinp, cfg, &d, in, e))) {
        linear_plan_free(p);
        return err_prefix(e, "linear %ldx%d->%d", N, C, OC);
    }
    return 0;
}

void linear_plan_free(lin_plan_t *p) {
    gemm_plan_free(p->fwd);
    gemm_plan_free(p->dinp);
    gemm_plan_free(p->dw);
    p->fwd = p->dinp = p->dw = NULL;
}

size_t linear_plan_scratch(const lin_plan_t *p) {
    size_t m = p->fwd ? gemm_plan_scratch_bytes(p->fwd) : 0;
    if (p->dinp && gemm_plan_scratch_bytes(p->dinp) > m) m = gemm_plan_scratch_bytes(p->dinp);
    if (p->dw && gemm_plan_scratch_bytes(p->dw) > m) m = gemm_plan_scratch_bytes(p->dw);
    return m;
}

#define LIN_COLS 32   // bias-gradient column block: whole columns per thread, deterministic sums

void linear_forward(float *out, const gemm_in_t *inp, const gemm_in_t *W, const float *bias, const float *res,
                    long N, int C, int OC, const lin_plan_t *p, const workspace_t *ws) {
    ERR_ASSERT(N <= p->N && C == p->C && OC == p->OC, "linear %ldx%d->%d run with the plan of %ldx%d->%d", N, C, OC,
               p->N, p->C, p->OC);
    ERR_ASSERT(p->accumulate ? (bias || res) : (!bias && !res),
               "linear: a bias or residual needs an accumulating plan, and an accumulating plan needs one");
    if (N <= 0 || OC <= 0) return;
    if (p->accumulate) {
        // preload the bias and the residual and let the GEMM add to them: one pass over out
        #pragma omp parallel for schedule(static)
        for (long n = 0; n < N; n++) {
            float *o = out + n * OC;
            const float *r = res ? res + n * OC : NULL;
            if (bias && r) {
                #pragma omp simd
                for (int i = 0; i < OC; i++) o[i] = r[i] + bias[i];
            } else if (bias) {
                #pragma omp simd
                for (int i = 0; i < OC; i++) o[i] = bias[i];
            } else {
                #pragma omp simd
                for (int i = 0; i < OC; i++) o[i] = r[i];
            }
        }
    }
    gemm_run(p->fwd, inp, W, out, workspace_slot(ws, 0));   // C = 0: the layer itself handles the empty sum
}

/* dbias += column sums of g, and (h != NULL) h = g in bf16, in one pass over g. */
static void dbias_stage(float *dbias, bf16_t *h, const float *g, long N, int OC) {
    const int nblk = (OC + LIN_COLS - 1) / LIN_COLS;
    #pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        const int o0 = blk * LIN_COLS, no = OC - o0 < LIN_COLS ? OC - o0 : LIN_COLS;
        float acc[LIN_COLS] = {0};
        for (long n = 0; n < N; n++) {
            const float *r = g + n * OC + o0;
            if (dbias) {
                #pragma omp simd
                for (int i = 0; i < no; i++) acc[i] += r[i];
            }
            if (h) bf16_from_f32(h + n * OC + o0, r, no);
        }
        if (dbias) for (int i = 0; i < no; i++) dbias[o0 + i] += acc[i];
    }
}

void linear_backward(float *dinp, float *dW, float *dbias, const float *dout, const gemm_in_t *inp,
                     const gemm_in_t *W, long N, int C, int OC, const lin_plan_t *p, const workspace_t *ws) {
    ERR_ASSERT(N == p->N && C == p->C && OC == p->OC && p->dw && (!dinp || p->dinp),
               "linear backward %ldx%d->%d (dinp %d) without its plans (%ldx%d->%d)", N, C, OC, dinp != NULL, p->N, p->C, p->OC);
    if (N <= 0 || OC <= 0) return;
    const void *g = dout;
    if (p->bf16) {
        dbias_stage(dbias, ws->stage_h, dout, N, OC);
        g = ws->stage_h;
    } else if (dbias) {
        dbias_stage(dbias, NULL, dout, N, OC);
    }
    if (C <= 0) return;
    void *scr = workspace_slot(ws, 0);
    if (dinp) gemm_run(p->dinp, g, W, dinp, scr);   // dinp[N,C] (+)= dout[N,OC] · W[OC,C]
    if (dW) gemm_run(p->dw, g, inp, dW, scr);       // dW[OC,C] += doutᵀ · inp
}

void bias_store(gemm_in_t *out, int bf16, const float *x, const float *bias, long N, int C) {
    #pragma omp parallel for schedule(static)
    for (long n = 0; n < N; n++) {
        const float *r = x + n * C;
        if (!bf16) {
            float *o = (float *)out + n * C;
            #pragma omp simd
            for (int i = 0; i < C; i++) o[i] = r[i] + bias[i];
            continue;
        }
        bf16_t *o = (bf16_t *)out + n * C;
        float t[256];   // a chunk in f32, then the vectorised rounding
        for (int c0 = 0; c0 < C; c0 += 256) {
            const int nc = C - c0 < 256 ? C - c0 : 256;
            #pragma omp simd
            for (int i = 0; i < nc; i++) t[i] = r[c0 + i] + bias[c0 + i];
            bf16_from_f32(o + c0, t, nc);
        }
    }
}

void bias_store_ref(double *out, const double *x, const double *bias, long N, int C) {
    for (long n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[n * C + c] = x[n * C + c] + bias[c];
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
