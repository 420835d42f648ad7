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
