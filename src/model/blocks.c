/* Encoder (content stream) and decoder (query stream) blocks, forward and backward.
 * x: [B,T,D] rows; masks are attention modes on prediction-ordered tokens (see ops.h). */
#include <string.h>
#include "model/blocks.h"
#include "kernels/ops.h"

static void add_inplace(float *y, const float *x, long n) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) y[i] += x[i];
}
static void zero(float *x, long n) { memset(x, 0, sizeof(float) * (size_t)n); }

/* y = scale[b]·y + x per sample (rows of TD floats); scale NULL: y += x, the plain residual. */
static void add_residual(float *y, const float *x, const float *scale, long N, int T, int D) {
    if (!scale) { add_inplace(y, x, N * D); return; }
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

/* The MLP half shared by both blocks: out = mid + dp[b]·fc2(gelu(fc1(LN2(mid)))) (dp NULL: 1). */
static void mlp_forward(float *out, float *ln2, float *mean, float *rstd, float *fc1, float *gelu,
                        const float *mid, const float *ln2_w, const float *ln2_b, const float *fc1_w,
                        const float *fc1_b, const float *fc2_w, const float *fc2_b, long N, int T, int D,
                        const float *dp) {
    layernorm_forward(ln2, mean, rstd, mid, ln2_w, ln2_b, N, D);
    linear_forward(fc1, ln2, fc1_w, fc1_b, N, D, 4 * D);
    gelu_forward(gelu, fc1, N * 4 * D);
    linear_forward(out, gelu, fc2_w, fc2_b, N, 4 * D, D);
    add_residual(out, mid, dp, N, T, D);
}

/* dres holds d(out) on entry and d(mid) on exit; dbranch is d(out) as the branch sees it
 * (dres itself, or dres scaled by drop-path). */
static void mlp_backward(float *dres, const float *dbranch, float *dln2_w, float *dln2_b, float *dfc1_w,
                         float *dfc1_b, float *dfc2_w, float *dfc2_b, const float *ln2, const float *mean,
                         const float *rstd, const float *fc1, const float *gelu, const float *mid, const float *ln2_w,
                         const float *fc1_w, const float *fc2_w, const block_scratch_t *s, long N, int D) {
    zero(s->dF1, N * 4 * D);
    linear_backward(s->dF1, dfc2_w, dfc2_b, dbranch, gelu, fc2_w, N, 4 * D, D);
    zero(s->dF2, N * 4 * D);
    gelu_backward(s->dF2, s->dF1, fc1, N * 4 * D);
    zero(s->dD1, N * D);
    linear_backward(s->dD1, dfc1_w, dfc1_b, s->dF2, ln2, fc1_w, N, D, 4 * D);
    layernorm_backward(dres, dln2_w, dln2_b, s->dD1, mid, ln2_w, mean, rstd, N, D);
}

void enc_block_forward(float *out, const enc_saved_t *s, const float *in, const enc_block_t *w,
                          int B, int T, int D, int NH, int mode, const float *dp_attn, const float *dp_mlp) {
    long N = (long)B * T;
    layernorm_forward(s->ln1, s->ln1_mean, s->ln1_rstd, in, w->ln1_w, w->ln1_b, N, D);
    linear_forward(s->qkv, s->ln1, w->qkv_w, w->qkv_b, N, D, 3 * D);
    attention_forward(s->atty, s->att, s->qkv, s->qkv + D, s->qkv + 2 * D, 3 * D, 3 * D, B, T, NH, D / NH, mode);
    linear_forward(s->mid, s->atty, w->proj_w, w->proj_b, N, D, D);
    add_residual(s->mid, in, dp_attn, N, T, D);
    mlp_forward(out, s->ln2, s->ln2_mean, s->ln2_rstd, s->fc1, s->gelu, s->mid,
                w->ln2_w, w->ln2_b, w->fc1_w, w->fc1_b, w->fc2_w, w->fc2_b, N, T, D, dp_mlp);
}

void enc_block_backward(float *dres, const enc_block_t *dw, const enc_saved_t *s, const float *in,
                           const enc_block_t *w, const block_scratch_t *sc, int B, int T, int D, int NH, int mode,
                           const float *dp_attn, const float *dp_mlp) {
    long N = (long)B * T;
    /* dD2 is free until the qkv backward: it carries the scaled branch gradients */
    const float *dbr = dres;
    if (dp_mlp) { scale_rows(sc->dD2, dres, dp_mlp, N, T, D); dbr = sc->dD2; }
    mlp_backward(dres, dbr, dw->ln2_w, dw->ln2_b, dw->fc1_w, dw->fc1_b, dw->fc2_w, dw->fc2_b, s->ln2, s->ln2_mean,
                 s->ln2_rstd, s->fc1, s->gelu, s->mid, w->ln2_w, w->fc1_w, w->fc2_w, sc, N, D);
    dbr = dres;
    if (dp_attn) { scale_rows(sc->dD2, dres, dp_attn, N, T, D); dbr = sc->dD2; }
    zero(sc->dD1, N * D);
    linear_backward(sc->dD1, dw->proj_w, dw->proj_b, dbr, s->atty, w->proj_w, N, D, D);
    zero(sc->d3D, N * 3 * D);
    attention_backward(sc->d3D, sc->d3D + D, sc->d3D + 2 * D, sc->att_scratch, sc->dD1, s->att,
                       s->qkv, s->qkv + D, s->qkv + 2 * D, 3 * D, 3 * D, B, T, NH, D / NH, mode);
    zero(sc->dD2, N * D);
    linear_backward(sc->dD2, dw->qkv_w, dw->qkv_b, sc->d3D, s->ln1, w->qkv_w, N, D, 3 * D);
    layernorm_backward(dres, dw->ln1_w, dw->ln1_b, sc->dD2, in, w->ln1_w, s->ln1_mean, s->ln1_rstd, N, D);
}

void dec_block_forward(float *out, const dec_saved_t *s, const float *in, const float *h, const dec_block_t *w,
                       int B, int T, int D, int NH, int mode) {
    long N = (long)B * T;
    /* One LayerNorm (norm1) normalises both streams. */
    layernorm_forward(s->lng, s->lng_mean, s->lng_rstd, in, w->ln1_w, w->ln1_b, N, D);
    layernorm_forward(s->lnh, s->lnh_mean, s->lnh_rstd, h, w->ln1_w, w->ln1_b, N, D);
    linear_forward(s->q, s->lng, w->q_w, w->q_b, N, D, D);
    linear_forward(s->k, s->lnh, w->k_w, w->k_b, N, D, D);
    linear_forward(s->v, s->lnh, w->v_w, w->v_b, N, D, D);
    attention_forward(s->atty, s->att, s->q, s->k, s->v, D, D, B, T, NH, D / NH, mode);
    linear_forward(s->mid, s->atty, w->proj_w, w->proj_b, N, D, D);
    add_inplace(s->mid, in, N * D);
    mlp_forward(out, s->ln2, s->ln2_mean, s->ln2_rstd, s->fc1, s->gelu, s->mid,
                w->ln2_w, w->ln2_b, w->fc1_w, w->fc1_b, w->fc2_w, w->fc2_b, N, T, D, NULL);
}

void dec_block_backward(float *dres, float *dres_h, const dec_block_t *dw, const dec_saved_t *s, const float *in,
                        const float *h, const dec_block_t *w, const block_scratch_t *sc, int B, int T, int D, int NH,
                        int mode) {
    long N = (long)B * T;
    mlp_backward(dres, dres, dw->ln2_w, dw->ln2_b, dw->fc1_w, dw->fc1_b, dw->fc2_w, dw->fc2_b, s->ln2, s->ln2_mean,
                 s->ln2_rstd, s->fc1, s->gelu, s->mid, w->ln2_w, w->fc1_w, w->fc2_w, sc, N, D);
    zero(sc->dD1, N * D);
    linear_backward(sc->dD1, dw->proj_w, dw->proj_b, dres, s->atty, w->proj_w, N, D, D);
    float *dq = sc->d3D, *dk = sc->d3D + N * D, *dv = sc->d3D + 2 * N * D;
    zero(sc->d3D, N * 3 * D);
    attention_backward(dq, dk, dv, sc->att_scratch, sc->dD1, s->att, s->q, s->k, s->v, D, D, B, T, NH, D / NH, mode);
    zero(sc->dD2, N * D);
    linear_backward(sc->dD2, dw->q_w, dw->q_b, dq, s->lng, w->q_w, N, D, D);
    layernorm_backward(dres, dw->ln1_w, dw->ln1_b, sc->dD2, in, w->ln1_w, s->lng_mean, s->lng_rstd, N, D);
    zero(sc->dD2, N * D);
    linear_backward(sc->dD2, dw->k_w, dw->k_b, dk, s->lnh, w->k_w, N, D, D);
    linear_backward(sc->dD2, dw->v_w, dw->v_b, dv, s->lnh, w->v_w, N, D, D);
    layernorm_backward(dres_h, dw->ln1_w, dw->ln1_b, sc->dD2, h, w->ln1_w, s->lnh_mean, s->lnh_rstd, N, D);
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

void embed_forward(float *h0, float *emb, const float *patches, const int *perm, const enc_views_t *w,
                   const float *pos_embed, int B, const dims_t *d) {
    int L = d->L, T = d->T, D = d->D;
    linear_forward(emb, patches, w->patch_w, w->patch_b, (long)B * L, d->PD, D);
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

void embed_backward(const enc_views_t *dw, float *emb, const float *dh0, const float *patches, const enc_views_t *w,
                    int B, const dims_t *d) {
    int L = d->L, T = d->T, D = d->D;
    for (long b = 0; b < B; b++) {
        const float *g = dh0 + b * T * D;
        for (int k = 0; k < D; k++) dw->cls_token[k] += g[k];
        memcpy(emb + b * L * D, g + D, sizeof(float) * (size_t)L * D);
    }
    linear_backward(NULL, dw->patch_w, dw->patch_b, emb, patches, w->patch_w, (long)B * L, d->PD, D);
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
