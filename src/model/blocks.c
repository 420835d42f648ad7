/* Encoder (content stream) and decoder (query stream) blocks, forward and backward.
 * x: [B,T,D] rows; masks are attention modes on prediction-ordered tokens (see ops.h). */
#include <string.h>
#include "model/blocks.h"
#include "kernels/ops.h"

static void zero(float *x, long n) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i += 1 << 16) memset(x + i, 0, sizeof(float) * (size_t)(n - i < (1 << 16) ? n - i : 1 << 16));
}

/* y = scale[b]·y + x per sample (rows of TD floats): a drop-path branch joining the residual
 * (the plain residual rides on the branch's GEMM, residual_linear). */
static void add_residual(float *y, const float *x, const float *scale, long N, int T, int D) {
    long TD = (long)T * D;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < N * D; i++) y[i] = scale[i / TD] * y[i] + x[i];
}

/* dst = scale[b]·src per sample: the gradient reaching a drop-path branch. */
static void scale_rows(float *dst, const float *src, const float *scale, long N, int T, int D) {
    long TD = (long)T * D;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < N * D; i++) dst[i] = scale[i / TD] * src[i];
}

/* The q, k or v projection (and the fused qkv): the GEMM writes f32 — into the output itself
 * in fp32 runs, into the staging in bf16 runs — and bias_store adds the bias while writing the
 * type attention reads. */
static void qkv_forward(gemm_in_t *out, const gemm_in_t *in, const float *Wv, const float *bias, const lin_plan_t *p,
                        const block_env_t *k, long N) {
    float *f = k->h ? k->stage : (float *)out;
    linear_forward(f, in, env_w(k, Wv), NULL, NULL, N, p->C, p->OC, p, k->ws);
    bias_store(out, k->h, f, bias, N, p->OC);
}

/* out = res + dp[b]·(inp·Wᵀ + bias): without drop-path the residual rides on the GEMM. */
static void residual_linear(float *out, const gemm_in_t *inp, const float *Wv, const float *bias, const float *res,
                            const float *dp, const lin_plan_t *p, const block_env_t *k, long N) {
    linear_forward(out, inp, env_w(k, Wv), bias, dp ? NULL : res, N, p->C, p->OC, p, k->ws);
    if (dp) add_residual(out, res, dp, N, k->T, k->D);
}

/* The MLP half shared by every block: out = mid + dp[b]·fc2(act(fc1(LN2(mid)))) (dp NULL: 1). */
static void mlp_forward(float *out, gemm_in_t *ln2, float *mean, float *rstd, float *fc1, gemm_in_t *gelu,
                        const float *mid, const float *ln2_w, const float *ln2_b, const float *fc1_w,
                        const float *fc1_b, const float *fc2_w, const float *fc2_b, const block_env_t *k, long N,
                        const float *dp) {
    layernorm_forward_eps(ln2, k->h, mean, rstd, mid, ln2_w, ln2_b, N, k->D, k->eps);
    linear_forward(fc1, ln2, env_w(k, fc1_w), NULL, NULL, N, k->D, k->H, k->fc1, k->ws);
    if (k->quick) bias_quickgelu_forward(gelu, k->h, fc1, fc1_b, N, k->H);
    else bias_gelu_forward(gelu, k->h, fc1, fc1_b, N, k->H);
    residual_linear(out, gelu, fc2_w, fc2_b, mid, dp, k->fc2, k, N);
}

/* The student's blocks: LayerNorm eps 1e-6, exact GELU, MLP 4·D, the arena's plans. */
static block_env_t env_of(const pass_t *ps) {
    const plans_t *pl = &ps->a->pl;
    block_env_t k = {ps->d.D, 4 * ps->d.D, ps->d.T, SEMAIM_LN_EPS, 0, ps->h, &pl->qkv, &pl->proj, &pl->fc1, &pl->fc2,
                     &ps->a->ws, ps->a->stage, ps->wf, ps->wh};
    return k;
}

/* dres holds d(out) on entry and d(mid) on exit; dbranch is d(out) as the branch sees it
 * (dres itself, or dres scaled by drop-path). */
static void mlp_backward(float *dres, const float *dbranch, float *dln2_w, float *dln2_b, float *dfc1_w,
                         float *dfc1_b, float *dfc2_w, float *dfc2_b, const gemm_in_t *ln2, const float *mean,
                         const float *rstd, const float *fc1, const gemm_in_t *gelu, const float *mid, const float *ln2_w,
                         const float *fc1_w, const float *fc2_w, const pass_t *ps, long N) {
    acts_t *a = ps->a;
    const int D = ps->d.D;
    /* the dinp GEMMs write their outputs (LIN_DINP_SET plans) and GELU's backward works in
     * place: no zeroing passes, one [N,4D] buffer */
    linear_backward(a->dF1, dfc2_w, dfc2_b, dbranch, gelu, pass_w(ps, fc2_w), N, 4 * D, D, &a->pl.fc2, &a->ws);
    gelu_backward_inplace(a->dF1, fc1, N * 4 * D);
    linear_backward(a->dD1, dfc1_w, dfc1_b, a->dF1, ln2, pass_w(ps, fc1_w), N, D, 4 * D, &a->pl.fc1, &a->ws);
    layernorm_backward(dres, dln2_w, dln2_b, a->dD1, mid, ln2_w, mean, rstd, N, D);
}

void vit_block_forward(float *out, const enc_saved_t *s, const float *in, const enc_block_t *w, const block_env_t *k,
                       const att_plan_t *ap, int B, const float *dp_attn, const float *dp_mlp) {
    const int D = k->D;
    const long N = (long)B * k->T;
    layernorm_forward_eps(s->ln1, k->h, s->ln1_mean, s->ln1_rstd, in, w->ln1_w, w->ln1_b, N, D, k->eps);
    qkv_forward(s->qkv, s->ln1, w->qkv_w, w->qkv_b, k->qkv, k, N);
    attention_forward(s->atty, s->att, s->qkv, env_at(k, s->qkv, D), env_at(k, s->qkv, 2 * D), B, ap, k->ws);
    residual_linear(s->mid, s->atty, w->proj_w, w->proj_b, in, dp_attn, k->proj, k, N);
    mlp_forward(out, s->ln2, s->ln2_mean, s->ln2_rstd, s->fc1, s->gelu, s->mid,
                w->ln2_w, w->ln2_b, w->fc1_w, w->fc1_b, w->fc2_w, w->fc2_b, k, N, dp_mlp);
}

void enc_block_forward(float *out, const enc_saved_t *s, const float *in, const enc_block_t *w, const pass_t *ps,
                       const att_plan_t *ap, int B, const float *dp_attn, const float *dp_mlp) {
    const block_env_t k = env_of(ps);
    vit_block_forward(out, s, in, w, &k, ap, B, dp_attn, dp_mlp);
}

void enc_block_backward(float *dres, const enc_block_t *dw, const enc_saved_t *s, const float *in, const enc_block_t *w,
                        const pass_t *ps, const att_plan_t *ap, int B, const float *dp_attn, const float *dp_mlp) {
    acts_t *a = ps->a;
    const int D = ps->d.D, T = ps->d.T;
    const long N = (long)B * T;
    /* dD2 is free until the qkv backward: it carries the scaled branch gradients */
    const float *dbr = dres;
    if (dp_mlp) { scale_rows(a->dD2, dres, dp_mlp, N, T, D); dbr = a->dD2; }
    mlp_backward(dres, dbr, dw->ln2_w, dw->ln2_b, dw->fc1_w, dw->fc1_b, dw->fc2_w, dw->fc2_b, s->ln2, s->ln2_mean,
                 s->ln2_rstd, s->fc1, s->gelu, s->mid, w->ln2_w, w->fc1_w, w->fc2_w, ps, N);
    dbr = dres;
    if (dp_attn) { scale_rows(a->dD2, dres, dp_attn, N, T, D); dbr = a->dD2; }
    linear_backward(a->dD1, dw->proj_w, dw->proj_b, dbr, s->atty, pass_w(ps, w->proj_w), N, D, D, &a->pl.proj, &a->ws);
    zero(a->d3D, N * 3 * D);   /* attention adds into dK, dV from every query block */
    attention_backward(a->d3D, a->d3D + D, a->d3D + 2 * D, a->dD1, s->att, s->qkv, pass_at(ps, s->qkv, D),
                       pass_at(ps, s->qkv, 2 * D), B, ap, &a->ws);
    linear_backward(a->dD2, dw->qkv_w, dw->qkv_b, a->d3D, s->ln1, pass_w(ps, w->qkv_w), N, D, 3 * D, &a->pl.qkv, &a->ws);
    layernorm_backward(dres, dw->ln1_w, dw->ln1_b, a->dD2, in, w->ln1_w, s->ln1_mean, s->ln1_rstd, N, D);
}

void dec_block_forward(float *out, const dec_saved_t *s, const float *in, const float *h, const dec_block_t *w,
                       const pass_t *ps, int B) {
    const int D = ps->d.D;
    const long N = (long)B * ps->d.T;
    const plans_t *pl = &ps->a->pl;
    const block_env_t k = env_of(ps);
    /* One LayerNorm (norm1) normalises both streams. */
    layernorm_forward(s->lng, ps->h, s->lng_mean, s->lng_rstd, in, w->ln1_w, w->ln1_b, N, D);
    layernorm_forward(s->lnh, ps->h, s->lnh_mean, s->lnh_rstd, h, w->ln1_w, w->ln1_b, N, D);
    qkv_forward(s->q, s->lng, w->q_w, w->q_b, &pl->q, &k, N);
    qkv_forward(s->k, s->lnh, w->k_w, w->k_b, &pl->q, &k, N);
    qkv_forward(s->v, s->lnh, w->v_w, w->v_b, &pl->q, &k, N);
    attention_forward(s->atty, s->att, s->q, s->k, s->v, B, &pl->dec, &ps->a->ws);
    residual_linear(s->mid, s->atty, w->proj_w, w->proj_b, in, NULL, &pl->proj, &k, N);
    mlp_forward(out, s->ln2, s->ln2_mean, s->ln2_rstd, s->fc1, s->gelu, s->mid,
                w->ln2_w, w->ln2_b, w->fc1_w, w->fc1_b, w->fc2_w, w->fc2_b, &k, N, NULL);
}

void dec_block_backward(float *dres, float *dres_h, const dec_block_t *dw, const dec_saved_t *s, const float *in,
                        const float *h, const dec_block_t *w, const pass_t *ps, int B) {
    acts_t *a = ps->a;
    const int D = ps->d.D;
    const long N = (long)B * ps->d.T;
    mlp_backward(dres, dres, dw->ln2_w, dw->ln2_b, dw->fc1_w, dw->fc1_b, dw->fc2_w, dw->fc2_b, s->ln2, s->ln2_mean,
                 s->ln2_rstd, s->fc1, s->gelu, s->mid, w->ln2_w, w->fc1_w, w->fc2_w, ps, N);
    linear_backward(a->dD1, dw->proj_w, dw->proj_b, dres, s->atty, pass_w(ps, w->proj_w), N, D, D, &a->pl.proj, &a->ws);
    float *dq = a->d3D, *dk = a->d3D + N * D, *dv = a->d3D + 2 * N * D;
    zero(a->d3D, N * 3 * D);
    attention_backward(dq, dk, dv, a->dD1, s->att, s->q, s->k, s->v, B, &a->pl.dec, &a->ws);
    linear_backward(a->dD2, dw->q_w, dw->q_b, dq, s->lng, pass_w(ps, w->q_w), N, D, D, &a->pl.q, &a->ws);
    layernorm_backward(dres, dw->ln1_w, dw->ln1_b, a->dD2, in, w->ln1_w, s->lng_mean, s->lng_rstd, N, D);
    /* k and v both feed lnh: k's GEMM writes the gradient, v's adds to it */
    linear_backward(a->dD2, dw->k_w, dw->k_b, dk, s->lnh, pass_w(ps, w->k_w), N, D, D, &a->pl.q, &a->ws);
    linear_backward(a->dD2, dw->v_w, dw->v_b, dv, s->lnh, pass_w(ps, w->v_w), N, D, D, &a->pl.v, &a->ws);
    layernorm_backward(dres_h, dw->ln1_w, dw->ln1_b, a->dD2, h, w->ln1_w, s->lnh_mean, s->lnh_rstd, N, D);
}

void encoder_views(const params_t *w, float *base, int *k, int depth, enc_views_t *v) {
    const param_info_t *t = w->info;
#define NEXT (base + t[(*k)++].offset)
    v->cls_token = NEXT; v->patch_w = NEXT; v->patch_b = NEXT;
    for (int i = 0; i < depth; i++) {
        enc_block_t *e = &v->blk[i];
        e->ln1_w = NEXT; e->ln1_b = NEXT; e->qkv_w = NEXT; e->qkv_b = NEXT;
        e->proj_w = NEXT; e->proj_b = NEXT; e->ln2_w = NEXT; e->ln2_b = NEXT;
        e->fc1_w = NEXT; e->fc1_b = NEXT; e->fc2_w = NEXT; e->fc2_b = NEXT;
    }
#undef NEXT
}

void embed_forward(float *h0, const int *perm, const enc_views_t *w, const float *pos_embed, const pass_t *ps, int B) {
    const int L = ps->d.L, T = ps->d.T, D = ps->d.D;
    float *emb = ps->a->emb;
    linear_forward(emb, ps->a->patches, pass_w(ps, w->patch_w), w->patch_b, NULL, (long)B * L, ps->d.PD, D,
                   &ps->a->pl.patch, &ps->a->ws);
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * T; r++) {
        int b = (int)(r / T), t = (int)(r % T);
        float *o = h0 + r * D;
        if (t == 0) {
            for (int k = 0; k < D; k++) o[k] = w->cls_token[k] + pos_embed[k];
        } else {
            int p = perm ? perm[(long)b * L + t - 1] : t - 1;
            const float *e = emb + ((long)b * L + t - 1) * D, *pe = pos_embed + (long)(1 + p) * D;
            for (int k = 0; k < D; k++) o[k] = e[k] + pe[k];
        }
    }
}

void embed_backward(const enc_views_t *dw, const float *dh0, const enc_views_t *w, const pass_t *ps, int B) {
    const int L = ps->d.L, T = ps->d.T, D = ps->d.D;
    float *emb = ps->a->emb;
    for (long b = 0; b < B; b++) {
        const float *g = dh0 + b * T * D;
        for (int k = 0; k < D; k++) dw->cls_token[k] += g[k];
        memcpy(emb + b * L * D, g + D, sizeof(float) * (size_t)L * D);
    }
    linear_backward(NULL, dw->patch_w, dw->patch_b, emb, ps->a->patches, pass_w(ps, w->patch_w), (long)B * L, ps->d.PD, D,
                    &ps->a->pl.patch, &ps->a->ws);
}

void pool_patch_tokens(float *out, const float *tok, int B, int T, int D) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) {
            double s = 0;
            for (int t = 1; t < T; t++) s += tok[((long)b * T + t) * D + d];
            out[(long)b * D + d] = (float)(s / (T - 1));
        }
}
