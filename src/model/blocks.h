/* The building blocks of SPEC §2 shared by the pretraining model and the fine-tuning
 * classifier (internal to the model room). Backward functions take the gradient of the block
 * output in dres and leave the gradient of the block input there; parameter gradients
 * accumulate into dw. The decoder backward also accumulates into dres_h, the gradient of the
 * encoder stream it attended to. Drop-path (stochastic depth, fine-tuning): per-sample scales
 * [B] on the attention and MLP branches (0 = dropped, 1/(1-p) = kept), x = x + dp[b]·branch(x);
 * NULL means 1 and takes exactly the plain path. Backward must get the scales the forward got. */
#ifndef SEMAIM_BLOCKS_H
#define SEMAIM_BLOCKS_H
#include "model/arena.h"
#include "semaim/model.h"

typedef struct {
    float *dD1, *dD2, *d3D, *dF1, *dF2, *att_scratch;   /* [B,T,D] ×2, [B,T,3D], [B,T,4D] ×2 */
} block_scratch_t;
static inline block_scratch_t block_scratch(const acts_t *a) {
    block_scratch_t s = {a->dD1, a->dD2, a->d3D, a->dF1, a->dF2, a->att_scratch};
    return s;
}

void enc_block_forward(float *out, const enc_saved_t *s, const float *in, const enc_block_t *w,
                       int B, int T, int D, int NH, int mode, const float *dp_attn, const float *dp_mlp);
void enc_block_backward(float *dres, const enc_block_t *dw, const enc_saved_t *s, const float *in,
                        const enc_block_t *w, const block_scratch_t *sc, int B, int T, int D, int NH, int mode,
                        const float *dp_attn, const float *dp_mlp);
void dec_block_forward(float *out, const dec_saved_t *s, const float *in, const float *h, const dec_block_t *w,
                       int B, int T, int D, int NH, int mode);
void dec_block_backward(float *dres, float *dres_h, const dec_block_t *dw, const dec_saved_t *s, const float *in,
                        const float *h, const dec_block_t *w, const block_scratch_t *sc, int B, int T, int D, int NH,
                        int mode);

/* Views of the encoder tensors at table entries *k.. of a buffer laid out like w (advances *k). */
void encoder_views(const params_t *w, float *base, int *k, int depth, enc_views_t *v);
/* h0 rows of B images: cls + pos0, then embed(patch) + pos of that patch. patches [B,L,PD]
 * must be in the order of perm (perm NULL: natural order); emb [B,L,D] is scratch. */
void embed_forward(float *h0, float *emb, const float *patches, const int *perm, const enc_views_t *w,
                   const float *pos_embed, int B, const dims_t *d);
/* The mean of the patch tokens (rows 1..T-1, cls left out) of each image: out [B,D] from tok
 * [B,T,D], summed in double. The global pool of the fine-tuning classifier and of the mean and
 * gap readouts. */
void pool_patch_tokens(float *out, const float *tok, int B, int T, int D);
/* Gradient of h0 (dh0 [B,T,D]) into the cls token and the patch embedding (no gradient to the
 * pixels); emb is scratch, patches as in the forward. */
void embed_backward(const enc_views_t *dw, float *emb, const float *dh0, const float *patches, const enc_views_t *w,
                    int B, const dims_t *d);
#endif
