/* AdamW over one parameter buffer (params.h: each tensor's decay flag and lr scale come from
 * its table), global-norm clipping and the per-iteration warmup + half-cycle cosine
 * schedule. The same for pretraining and fine-tuning. */
#ifndef SEMAIM_OPTIM_H
#define SEMAIM_OPTIM_H
#include "semaim/params.h"

typedef struct {
    double base_lr;        /* per 256 images: lr = base_lr × global_batch / 256 */
    double min_lr;
    double weight_decay, beta1, beta2, eps, clip;   /* clip <= 0: no clipping */
    long warmup_iters, total_iters;
} optim_cfg_t;

/* The paper's recipe (base lr 2e-4, wd 0.05, betas 0.9/0.95, eps 1e-8, clip 3.0). */
optim_cfg_t optim_defaults(void);
double optim_peak_lr(const optim_cfg_t *o, long global_batch);
/* Learning rate of iteration it (0-based): linear warmup from 0, then half-cycle cosine to min_lr. */
double optim_lr_at(double peak, double min_lr, long it, long warmup, long total);
/* The warmup in iterations: warmup_steps when >= 0 (taken as given), else warmup_epochs ×
 * steps_per_epoch capped at max_fraction of the total. A recipe's warmup is written for the
 * recipe's length (the paper's fine-tuning: 20 of 100 epochs); in a shorter run the uncapped
 * warmup would still be rising when the run ends (8 epochs with 20 of warmup peak at 0.4 of
 * the lr), which is what made short fine-tunes fall below the frozen features. */
long optim_warmup_iters(double warmup_epochs, long warmup_steps, long steps_per_epoch, long total, double max_fraction);
/* The cap both trainers use: the paper's fine-tuning warms up for 20 of 100 epochs, the
 * largest share of a run among its recipes (pretraining's default here: 30 of 800). */
#define OPTIM_WARMUP_MAX_FRACTION 0.2
/* L2 norm of a buffer, accumulated in double. */
double grad_norm(const float *g, long n);
/* Scales g so its norm is at most max_norm (like torch clip_grad_norm_: coef = max/(norm+1e-6)). */
void clip_grad(float *g, long n, double norm, double max_norm);
/* One AdamW step over every tensor of w at lr × the tensor's lr_scale, weight decay where the
 * table says; t is the 1-based step count for bias correction. Refreshes w->half (bf16 runs)
 * in the same loop. */
void adamw_step(params_t *w, double lr, const optim_cfg_t *o, long t);
/* A step after the gradient all-reduce: clip to o->clip at the gradient norm gnorm (from
 * grad_norm), then AdamW at lr. */
void optim_update(params_t *w, const optim_cfg_t *o, double lr, long t, double gnorm);
#endif
