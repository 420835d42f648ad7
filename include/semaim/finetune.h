/* Supervised fine-tuning of the encoder (SPEC §5): the pretraining encoder (decoder, head and
 * `norm` dropped) → mean of the patch tokens → a new LayerNorm `fc_norm` → Linear `head`
 * (timm's names with global_pool='avg'); label-smoothed cross-entropy; drop-path on every
 * residual branch (rate linear in depth, 0 … drop_path, as timm); AdamW with layer-wise lr
 * decay (MAE's param_groups_lrd: patch embed and cls token are layer 0, block i is layer
 * i+1, fc_norm and head are layer depth+1; lr scale = decay^(depth+1 − layer); no weight decay
 * on 1-D tensors and the cls token).
 *
 * Parameters: the encoder lives in the prefix [0, n_enc) of an ordinary model_t's buffers
 * (built with dec_depth 1; the decoder part is never used), fc_norm and head in a second
 * small buffer. Gradients and AdamW moments follow the same two layouts. */
#ifndef SEMAIM_FINETUNE_H
#define SEMAIM_FINETUNE_H
#include <stddef.h>
#include <stdint.h>
#include "semaim/checkpoint.h"
#include "semaim/model.h"

typedef struct {
    model_t m;                 /* encoder (prefix of its buffers) */
    long n_enc;                /* floats of the encoder prefix */
    int C;                     /* classes */
    long nhead;                /* 2·D + C·D + C */
    float *head, *ghead, *mhead, *vhead;   /* fc_norm.weight, fc_norm.bias, head.weight, head.bias */
    int B;                     /* batch capacity */
    acts_t *a;
    float *pool, *fcn, *fcn_mean, *fcn_rstd, *logits, *dlogits, *dfcn, *dpool;   /* [B,D] / [B] / [B,C] */
    float *dp;                 /* drop-path scales [depth][2][B] of the last forward (NULL = none) */
    int Bcur, dp_on;
    const int32_t *labels;     /* of the last forward */
    float smoothing;
} ft_model_t;

typedef struct {
    double base_lr, min_lr, weight_decay, beta1, beta2, eps, layer_decay, clip;
    long warmup_iters, total_iters;
} ft_optim_t;

/* Builds the fine-tuning model for an encoder config (cfg's dec_depth is ignored) with C
 * classes and batch capacity B; encoder from seed (SPEC §2 init), fc_norm 1/0, head weight
 * N(0, (2e-5)²) (MAE: trunc_normal_ with std 2e-5, whose ±2 bounds never bite), bias 0. Returns 0, or -1 with err set. */
int ft_init(ft_model_t *f, const semaim_config_t *cfg, int C, int B, uint64_t seed, char *err, size_t errlen);
void ft_free(ft_model_t *f);
/* Copies the encoder (and the position table) of a pretraining model with the same encoder
 * config. Returns 0, or -1 if the encoders differ. */
int ft_load_encoder(ft_model_t *f, const model_t *src, char *err, size_t errlen);

/* Drop-path scales for a batch: sample b (global id ids[b]) at step `step` keeps branch k of
 * block i with probability 1 − p_i, p_i = drop_path·i/(depth−1); a pure function of (seed,
 * step, id), so the same on any rank count. */
void ft_drop_path(ft_model_t *f, double drop_path, uint64_t seed, long step, const int64_t *ids, int B);
/* Forward of B images [B,3,S,S] (B <= capacity). train: apply the scales of ft_drop_path;
 * else none. labels may be NULL (no loss); rows with label < 0 do not count. Returns the mean
 * label-smoothed cross-entropy over the counted rows (0 if none). Logits stay in f->logits. */
double ft_forward(ft_model_t *f, const float *images, const int32_t *labels, int B, int train, float smoothing);
/* Backward of the last forward; ACCUMULATES into m.grads[0, n_enc) and ghead. */
void ft_backward(ft_model_t *f);
void ft_zero_grad(ft_model_t *f);
double ft_grad_norm(const ft_model_t *f);
void ft_scale_grads(ft_model_t *f, float c);
/* One AdamW step (t 1-based) with layer-wise lr scales at lr (the schedule's value). */
void ft_adamw(ft_model_t *f, double lr, const ft_optim_t *o, long t);
/* Top-5 classes [B][5] of the last forward's logits (ties to the lower index). */
void ft_top5(const ft_model_t *f, int32_t *pred5);
/* The lr scale and weight-decay flag of table tensor k of the encoder, or of the head
 * (k = -1: fc_norm, k = -2: head weight, k = -3: head bias). */
double ft_lr_scale(const ft_model_t *f, int k, double layer_decay);

/* Fine-tuning checkpoints: dir/ft-<8-digit step>.bin, a header (magic SEMAIMFT, version,
 * encoder config, classes, sizes, state, CRC32s) then params, AdamW m, v of both buffers;
 * temp + rename; the newest keep kept. */
int ft_ckpt_save(const char *dir, const ft_model_t *f, const ckpt_state_t *st, int keep, char *err, size_t errlen);
/* Loads path into f (config and classes must match). Returns 0, or -1 with the reason. */
int ft_ckpt_load(const char *path, ft_model_t *f, ckpt_state_t *st, char *err, size_t errlen);
/* Newest verifying checkpoint in dir: 1 loaded, 0 none, -1 none usable (err says why). */
int ft_ckpt_load_latest(const char *dir, ft_model_t *f, ckpt_state_t *st, char *path_out, size_t pathlen, char *err,
                        size_t errlen);
#endif
