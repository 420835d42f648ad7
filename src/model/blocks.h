/* The building blocks of SPEC §2 shared by the pretraining model and the fine-tuning
 * classifier (internal to the model room). Backward functions take the gradient of the block
 * output in dres and leave the gradient of the block input there; parameter gradients
 * accumulate into dw. The decoder backward also accumulates into dres_h, the gradient of the
 * encoder stream it attended to. Drop-path (stochastic depth, fine-tuning): per-sample scales
 * [B] on the attention and MLP branches (0 = dropped, 1/(1-p) = kept), x = x + dp[b]·branch(x);
 * NULL means 1 and takes exactly the plain path. Backward must get the scales the forward got.
 * Fused: a residual add rides on the GEMM of its branch (the residual and the bias preloaded,
 * the GEMM adding to them), the bias of fc1 on GELU, the bias of q/k/v on their rounding. */
#ifndef SEMAIM_BLOCKS_H
#define SEMAIM_BLOCKS_H
#include "model/arena.h"
#include "semaim/model.h"

/* What a pass computes with besides its buffers: the arena (plans, workspace, precision, the
 * sizes) and the weights as the GEMMs read them — the views point into params (f32 masters),
 * and in bf16 runs the GEMMs read the same offset of the bf16 copy. */
typedef struct {
    acts_t *a;
    dims_t d;
    int h;                  /* the arena is bf16 */
    const float *wf;        /* params: what the views point into */
    const bf16_t *wh;       /* its bf16 copy, or NULL */
} pass_t;
static inline pass_t pass_of(acts_t *a, const params_t *w) {
    ERR_ASSERT(a->bf16 == (w->half != NULL), "a %s arena with a model built for %s (build both after gemm_global_init)",
               a->bf16 ? "bf16" : "fp32", w->half ? "bf16" : "fp32");
    pass_t p = {a, cfg_dims(&a->cfg), a->bf16, w->params, (const bf16_t *)w->half};
    return p;
}
/* The GEMM operand of the weight a view points at. */
static inline const gemm_in_t *pass_w(const pass_t *ps, const float *view) {
    return ps->wh ? (const gemm_in_t *)(ps->wh + (view - ps->wf)) : (const gemm_in_t *)view;
}
/* Element e of an activation array of the pass's type. */
static inline gemm_in_t *pass_at(const pass_t *ps, gemm_in_t *base, long e) {
    return (char *)base + e * (ps->h ? 2 : 4);
}

/* What a pre-norm ViT block's forward computes with besides its weights and buffers — the
 * student's (from a pass_t: LayerNorm eps 1e-6, exact GELU, MLP 4·D) and a frozen teacher's
 * (its eps, QuickGELU for CLIP, its MLP width, its own plans): one block forward for both. */
typedef struct {
    int D, H, T;            /* width, MLP width, tokens per image */
    float eps;              /* LayerNorm eps */
    int quick;              /* QuickGELU x·σ(1.702x) instead of exact-erf GELU */
    int h;                  /* bf16 GEMM operands */
    const lin_plan_t *qkv, *proj, *fc1, *fc2;
    const workspace_t *ws;
    float *stage;           /* bf16: the f32 output of the qkv GEMM before bias_store rounds it */
    const float *wf;        /* what the weight views point into */
    const bf16_t *wh;       /* its bf16 copy, or NULL */
} block_env_t;
static inline const gemm_in_t *env_w(const block_env_t *k, const float *view) {
    return k->wh ? (const gemm_in_t *)(k->wh + (view - k->wf)) : (const gemm_in_t *)view;
}
static inline gemm_in_t *env_at(const block_env_t *k, gemm_in_t *base, long e) { return (char *)base + e * (k->h ? 2 : 4); }
/* out = in + dp_attn·attn(LN1(in)); out += dp_mlp·mlp(LN2(out)) (dp NULL: 1), saving into s what
 * a backward would need (a forward-only caller may point s's buffers at shared scratch). */
void vit_block_forward(float *out, const enc_saved_t *s, const float *in, const enc_block_t *w, const block_env_t *k,
                       const att_plan_t *ap, int B, const float *dp_attn, const float *dp_mlp);

/* ap: the attention plans of the block's mask (plans_t). B images (a backward: all of the
 * arena's). */
void enc_block_forward(float *out, const enc_saved_t *s, const float *in, const enc_block_t *w, const pass_t *ps,
                       const att_plan_t *ap, int B, const float *dp_attn, const float *dp_mlp);
void enc_block_backward(float *dres, const enc_block_t *dw, const enc_saved_t *s, const float *in, const enc_block_t *w,
                        const pass_t *ps, const att_plan_t *ap, int B, const float *dp_attn, const float *dp_mlp);
void dec_block_forward(float *out, const dec_saved_t *s, const float *in, const float *h, const dec_block_t *w,
                       const pass_t *ps, int B);
void dec_block_backward(float *dres, float *dres_h, const dec_block_t *dw, const dec_saved_t *s, const float *in,
                        const float *h, const dec_block_t *w, const pass_t *ps, int B);

/* Views of the encoder tensors at table entries *k.. of a buffer laid out like w (advances *k). */
void encoder_views(const params_t *w, float *base, int *k, int depth, enc_views_t *v);
/* h0 rows of B images: cls + pos0, then embed(patch) + pos of that patch. The arena's patches
 * [B,L,PD] must be in the order of perm (perm NULL: natural order); its emb [B,L,D] is scratch. */
void embed_forward(float *h0, const int *perm, const enc_views_t *w, const float *pos_embed, const pass_t *ps, int B);
/* The mean of the patch tokens (rows 1..T-1, cls left out) of each image: out [B,D] from tok
 * [B,T,D], summed in double. The global pool of the fine-tuning classifier and of the mean and
 * gap readouts. */
void pool_patch_tokens(float *out, const float *tok, int B, int T, int D);
/* Gradient of h0 (dh0 [B,T,D]) into the cls token and the patch embedding (no gradient to the
 * pixels); patches as in the forward. */
void embed_backward(const enc_views_t *dw, const float *dh0, const enc_views_t *w, const pass_t *ps, int B);
#endif
