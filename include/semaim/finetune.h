/* The fine-tuning classifier (SPEC §5), a model of its own: the encoder of the pretraining
 * model (patch embed, cls token, blocks; its final norm, decoder and head are dropped), the
 * mean of the patch tokens, a new LayerNorm `fc_norm`, a Linear `head` (timm's names with
 * global_pool='avg'), label-smoothed cross-entropy and drop-path on every residual branch
 * (rate linear in depth, 0 … drop_path, as timm).
 *
 * One parameter table (params.h): cls_token, patch_embed.proj.*, blocks.N.*, fc_norm.*,
 * head.*; the encoder tensors come first, in the order and with the initialisation of the
 * pretraining table. Layer-wise lr decay (MAE's param_groups_lrd: patch embed and cls token
 * are layer 0, block i is layer i+1, fc_norm and head are layer depth+1; lr scale =
 * decay^(depth+1 − layer)) and the weight-decay exclusions (1-D tensors and the cls token) are
 * filled into the table when it is built, so AdamW is the same one loop as pretraining's. */
#ifndef SEMAIM_FINETUNE_H
#define SEMAIM_FINETUNE_H
#include <stddef.h>
#include <stdint.h>
#include "semaim/model.h"

typedef struct {
    enc_views_t e;
    float *fcn_w, *fcn_b, *head_w, *head_b;
} ft_views_t;

typedef struct ft_model {
    semaim_config_t cfg;       /* the encoder's config (its dec_depth is not used) */
    dims_t d;
    int C;                     /* classes */
    params_t w;
    ft_views_t p, g;
    float *pos_embed;          /* [T, D], fixed (copied from the source model by ft_load_encoder) */
    acts_t *a;                 /* ACTS_FINETUNE, capacity B */
    int B;
    float *dp;                 /* drop-path scales [depth][2][B] of the next forward */
    int dp_on;
    int nrows;                 /* rows the last forward's loss counts (0: no loss) */
} ft_model_t;

/* The lr scale of a table tensor (name) of an encoder of the given depth. */
double ft_layer_lr_scale(const char *name, int depth, double layer_decay);

/* Builds the classifier for an encoder config with C classes and batch capacity B; encoder
 * from seed (SPEC §2 init), fc_norm 1/0, head weight N(0, (2e-5)²) (MAE: trunc_normal_ with std
 * 2e-5, whose ±2 bounds never bite), bias 0. 0, or -1 (ERR_INPUT: C or B < 1 or a bad config;
 * ERR_RUNTIME: out of memory). */
int ft_init(ft_model_t *f, const semaim_config_t *cfg, int C, int B, double layer_decay, uint64_t seed, err_t *err);
void ft_free(ft_model_t *f);
/* Copies every encoder tensor (and the position table) of a pretraining model with the same
 * encoder config. 0, or -1 (ERR_INPUT) if the encoders differ. */
int ft_load_encoder(ft_model_t *f, const model_t *src, err_t *err);

/* Drop-path scales for a batch: sample b (global id ids[b]) at step `step` keeps branch k of
 * block i with probability 1 − p_i, p_i = drop_path·i/(depth−1); a pure function of (seed,
 * step, id), so the same on any rank count. */
void ft_drop_path(ft_model_t *f, double drop_path, uint64_t seed, long step, const int64_t *ids, int B);
/* Forward of B images [B,3,S,S] (B <= capacity). train: apply the scales of ft_drop_path;
 * else none. labels may be NULL (no loss); rows with label < 0 do not count. Returns the mean
 * label-smoothed cross-entropy over the counted rows (0 if none). */
double ft_forward(ft_model_t *f, const float *images, const int32_t *labels, int B, int train, float smoothing);
/* The same with soft targets [B, C] (each row sums to 1; Mixup/CutMix's, data/mixup.h, with
 * the label smoothing already in them): every row counts; returns the mean soft-target
 * cross-entropy. */
double ft_forward_targets(ft_model_t *f, const float *images, const float *targets, int B, int train);
/* Backward of the last forward; ACCUMULATES into f->w.grads. Aborts (a programming error)
 * without a forward since the activations were created. */
void ft_backward(ft_model_t *f);
/* The logits [B, C] of the last forward. */
const float *ft_logits(const ft_model_t *f);
#endif
