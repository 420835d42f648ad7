/* The forward-only encoder of the pretraining model (full attention, then the final norm):
 * the permutation pass that gives the semantic orders (SPEC §1 step 2) and the evaluation
 * features. These passes need an arena in ACTS_ENCODER mode or an ACTS_PRETRAIN one (which
 * they share with the training pass: running one overwrites the training activations). */
#ifndef SEMAIM_ENCODER_H
#define SEMAIM_ENCODER_H
#include "semaim/model.h"
#include "semaim/orders.h"

/* Encoder + final norm over images [B,3,H,W]; returns the normed tokens [B,T,D] (in the acts). */
const float *encoder_forward_full(model_t *m, acts_t *a, const float *images, int B);
/* Evaluation features per image, each [B, D], from one pass (any output may be NULL):
 *   cls   the cls token after the final norm;
 *   mean  the mean of the normed patch tokens;
 *   gap   the authors' global pool for probes and fine-tuning: the mean of the patch tokens
 *         BEFORE the final norm, then a LayerNorm without learned affine (eps 1e-6).
 * In pretraining the cls row attends only to itself, so cls is usually the weakest of the
 * three for this model family. */
void encoder_features(model_t *m, acts_t *a, const float *images, int B, float *cls_out, float *mean_out,
                      float *gap_out);
/* The permutation pass's per-patch signal a_p, [B][L] in the acts, valid until the next pass:
 * what the semantic and similarity orders are made of. Which signal is m->tgt.signal
 * (docs/objective.md): SIGNAL_CLS the cosine of the normed cls token to each normed patch
 * token (SPEC §1 step 2), SIGNAL_GAP that of the mean normed patch token, SIGNAL_SELF the last
 * encoder block's attention probability from the cls query to each patch, averaged over heads
 * (read from the probabilities the pass saved, not recomputed). */
const float *encoder_order_signal(model_t *m, acts_t *a, const float *images, int B);
/* The prediction order of each image as ranks[B][L] (0 = predicted first). noise [B][L] holds
 * the u_p in [0,1) (order_noise; unused by raster). The semantic and similarity orders run
 * the permutation pass with the current weights and m->tgt.signal; center_out [B] (may be NULL) receives the
 * centre patch of the semantic order (-1 for others). */
void compute_order(model_t *m, acts_t *a, order_t o, const float *images, const float *noise, int B, int *ranks,
                   int *center_out);
/* A feature target's tokens from the encoder of src (no gradient, full attention, final norm):
 * the permutation pass itself, run with src's weights — the model m being trained for the
 * inference target, or a model_t whose views point at another buffer laid out like m's
 * parameters (an EMA copy). [B,T,D] in the acts, valid until the next pass. */
const float *encoder_target_tokens(model_t *src, acts_t *a, const float *images, int B);
/* compute_order without running a pass: the signal (m->tgt.signal) from the tokens and the last
 * block's attention the latest encoder pass on a left there (aborts when another pass came
 * between). With the inference target the one pass gives both the order and the targets. */
void compute_order_from_pass(model_t *m, acts_t *a, order_t o, const float *noise, int B, int *ranks, int *center_out);
/* The signal from a frozen teacher's tokens tok [B,T,W] (T the model's tokens; W at most the
 * model's width or its head's): m->tgt.signal cls (the cosine of the tokens' cls to each patch
 * token) or gap (of their mean patch token); self is not a token signal (aborts). [B][L] in the
 * acts (ACTS_PRETRAIN), valid until the next pass. */
const float *tokens_order_signal(const model_t *m, acts_t *a, const float *tok, int W, int B);
/* compute_order with the signal of tokens_order_signal: a teacher's order. */
void compute_order_from_tokens(model_t *m, acts_t *a, order_t o, const float *tok, int W, const float *noise, int B,
                               int *ranks, int *center_out);
#endif
