/* The SemAIM pretraining network (SPEC §2–3): encoder (content stream), decoder (query
 * stream), final norm and prediction head over one parameter buffer (params.h); the
 * training pass forward/backward. The permutation pass and evaluation features (forward-only
 * encoder) are in encoder.h, the orders in orders.h, activation memory in acts.h.
 * The fixed sin-cos position embedding is not trainable and lives outside the buffer. */
#ifndef SEMAIM_MODEL_H
#define SEMAIM_MODEL_H
#include <stdint.h>
#include "semaim/acts.h"
#include "semaim/config.h"
#include "semaim/err.h"
#include "semaim/params.h"

/* Views of one encoder block into a parameter (or gradient) buffer. */
typedef struct {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} enc_block_t;
/* Views of one decoder (query) block: cross-attention with separate q, k, v. */
typedef struct {
    float *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *proj_w, *proj_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} dec_block_t;
/* The encoder (patch embed, cls token, blocks; not the final norm), the part the pretraining
 * model and the fine-tuning classifier share. */
typedef struct {
    float *cls_token, *patch_w, *patch_b;
    enc_block_t *blk;     /* [depth] */
} enc_views_t;
typedef struct {
    enc_views_t e;
    dec_block_t *dec;     /* [dec_depth] */
    float *norm_w, *norm_b, *head1_w, *head1_b, *head2_w, *head2_b;
} views_t;

typedef struct {
    semaim_config_t cfg;
    target_cfg_t tgt;                    /* the objective (model_init: target_defaults()); its pixel settings and signal may
                                            change after init, its kind and teacher width not: they shape the head */
    int out;                             /* the prediction head's outputs per token: target_head_width(&tgt, &cfg) */
    dims_t d;
    int interleave;                      /* depth / dec_depth: a decoder block after every interleave-th encoder block */
    params_t w;
    views_t p, g;                        /* named views into w.params and w.grads */
    float *pos_embed;                    /* [T, D], fixed */
} model_t;

/* Allocates and initialises (SPEC §2 init) from seed, with the default objective (m->tgt). 0, or -1: ERR_INPUT for an invalid
 * config, ERR_RUNTIME when out of memory. */
int model_init(model_t *m, const semaim_config_t *cfg, uint64_t seed, err_t *err);
/* The same for the objective tgt (NULL: the defaults): the head's width follows its target kind
 * (target_head_width), so the kind is fixed at init. */
int model_init_target(model_t *m, const semaim_config_t *cfg, const target_cfg_t *tgt, uint64_t seed, err_t *err);
void model_free(model_t *m);
/* A forward-only model over `weights` (laid out like live's w.params): the whole of live
 * (config, objective, dims, table, position embedding, shared, not copied) with its own views
 * and, in bf16 runs, its own bf16 copy of weights; no gradients or moments. 0, or -1
 * (ERR_RUNTIME, out of memory) with s holding nothing. Freed by model_shadow_free, never by
 * model_free (it owns neither the table nor the weights). */
int model_shadow(model_t *s, const model_t *live, float *weights, err_t *err);
void model_shadow_free(model_t *s);
/* Builds views over any buffer laid out like w.params. */
void model_views(const model_t *m, float *base, views_t *v);
/* Fixed 2-D sin-cos position embedding [T, D] (cls row zeros). */
void pos_embed_sincos(float *out, int G, int D);

/* Training pass forward (SPEC §2–3): returns the loss. ranks [B][L] as from compute_order
 * (encoder.h); B <= the activations' capacity (acts in ACTS_PRETRAIN mode, made with the
 * head width m->out). With a feature target the targets must have been set for these ranks by
 * semaim_feature_targets since the last forward (aborts otherwise); the loss is then the mean
 * over patches and images of |ŷ/‖ŷ‖ − f/‖f‖|² (featloss_forward), else the pixel target's. */
float semaim_forward(model_t *m, acts_t *a, const float *images, const int *ranks, int B);
/* A feature target's targets for the next semaim_forward with the same ranks and B: the patch
 * rows 1.. of tok [B, T, m->out] (a target encoder's or teacher's tokens, cls row 0 dropped),
 * gathered into the arena in prediction order. tok may lie in the arena itself (the
 * permutation pass's tokens): they are copied before the forward overwrites them. */
void semaim_feature_targets(model_t *m, acts_t *a, const float *tok, const int *ranks, int B);
/* Predictions of the last semaim_forward, [B, T, m->out] in prediction order: row 1+k of
 * image b predicts the patch of rank k (row 0, the cls position, predicts nothing). */
const float *semaim_predictions(const acts_t *a);
/* Backward of the last semaim_forward; ACCUMULATES into m->w.grads (zero them first). Calling
 * it without a training forward since the activations were created or last overwritten (by
 * the permutation pass or a feature pass) is a programming error: it aborts with a message. */
void semaim_backward(model_t *m, acts_t *a);

/* FLOPs (2 per multiply-add, SPEC §6) per image of one training step: 3 × the training pass
 * forward (forward and backward) + `passes` forward-only encoder passes of this model's size
 * (the permutation pass, a target encoder's pass: train_step_encoder_passes says how many a
 * step makes). A teacher's forward is teacher_flops_per_image. For throughput and MFU figures. */
double semaim_flops_per_image(const model_t *m, int passes);
#endif
