/* Transformer blocks of SPEC §2 (internal to the library; beside its code). Backward functions take the gradient of
 * the block output in dres and leave the gradient of the block input there; parameter
 * gradients accumulate into dw. The decoder backward also accumulates into dres_h, the
 * gradient of the encoder stream it attended to. */
#ifndef SEMAIM_BLOCKS_H
#define SEMAIM_BLOCKS_H
#include "model/acts.h"

typedef struct {
    float *dD1, *dD2, *d3D, *dF1, *dF2, *att_scratch;   /* [B,T,D] ×2, [B,T,3D], [B,T,4D] ×2 */
} block_scratch_t;

void enc_block_forward(float *out, const enc_saved_t *s, const float *in, const enc_block_t *w,
                       int B, int T, int D, int NH, int mode);
void enc_block_backward(float *dres, const enc_block_t *dw, const enc_saved_t *s, const float *in,
                        const enc_block_t *w, const block_scratch_t *sc, int B, int T, int D, int NH, int mode);
/* The same with drop-path (stochastic depth) for fine-tuning: per-sample scales [B] on the
 * attention and MLP branches (0 = dropped, 1/(1-p) = kept), x = x + dp[b]·branch(x); NULL
 * means 1 and takes exactly the plain path above. Backward must get the same scales. */
void enc_block_forward_dp(float *out, const enc_saved_t *s, const float *in, const enc_block_t *w,
                          int B, int T, int D, int NH, int mode, const float *dp_attn, const float *dp_mlp);
void enc_block_backward_dp(float *dres, const enc_block_t *dw, const enc_saved_t *s, const float *in,
                           const enc_block_t *w, const block_scratch_t *sc, int B, int T, int D, int NH, int mode,
                           const float *dp_attn, const float *dp_mlp);
void dec_block_forward(float *out, const dec_saved_t *s, const float *in, const float *h, const dec_block_t *w,
                       int B, int T, int D, int NH, int mode);
void dec_block_backward(float *dres, float *dres_h, const dec_block_t *dw, const dec_saved_t *s, const float *in,
                        const float *h, const dec_block_t *w, const block_scratch_t *sc, int B, int T, int D, int NH,
                        int mode);
#endif
