/* The fine-tuning classifier (semaim/finetune.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/ops.h"
#include "model/blocks.h"
#include "model/table.h"
#include "semaim/finetune.h"
#include "semaim/rng.h"

#define DP_RNG_TAG 0x6472707468ULL     /* "drpth": drop-path draws */
#define HEAD_RNG_TAG 0x68656164ULL     /* "head": the head's initial weights */

double ft_layer_lr_scale(const char *name, int depth, double layer_decay) {
    int layer = depth + 1;                                                 /* fc_norm, head */
    if (!strncmp(name, "blocks.", 7)) layer = atoi(name + 7) + 1;
    else if (!strcmp(name, "cls_token") || !strncmp(name, "patch_embed.", 12)) layer = 0;
    return pow(layer_decay, depth + 1 - layer);
}

typedef struct { const semaim_config_t *cfg; int C; } list_ctx_t;

static void list_tensors(table_t *t, const void *ctx) {
    const list_ctx_t *c = ctx;
    int D = c->cfg->width;
    table_encoder(t, c->cfg);
    table_norm(t, D, "fc_norm");
    table_add(t, INIT_NORMAL, 2e-5, HEAD_RNG_TAG, 2, c->C, D, 0, 0, "head.weight");
    table_add(t, INIT_ZERO, 0, 0, 1, c->C, 0, 0, 0, "head.bias");
}

static void views(const ft_model_t *f, float *base, ft_views_t *v) {
    int k = 0;
    encoder_views(&f->w, base, &k, f->cfg.depth, &v->e);
    const param_info_t *t = f->w.info;
    v->fcn_w = base + t[k++].offset; v->fcn_b = base + t[k++].offset;
    v->head_w = base + t[k++].offset; v->head_b = base + t[k++].offset;
}

int ft_init(ft_model_t *f, const semaim_config_t *cfg, int C, int B, double layer_decay, uint64_t seed, err_t *err) {
    memset(f, 0, sizeof *f);
    if (C < 1 || B < 1) return err_set(err, ERR_INPUT, "fine-tune: need at least one class and one image per batch");
    semaim_config_t c = *cfg;
    c.dec_depth = 1;   /* no decoder; 1 keeps the config valid for config_validate */
    if (config_validate(&c, B, err)) return -1;
    f->cfg = c;
    f->d = cfg_dims(&c);
    f->C = C;
    f->B = B;
    list_ctx_t lc = {&c, C};
    if (params_build(&f->w, list_tensors, &lc, seed, err)) return -1;
    /* MAE: no weight decay on 1-D tensors and the cls token (the position table is not trained) */
    for (int i = 0; i < f->w.ntensors; i++) {
        param_info_t *p = &f->w.info[i];
        p->decay = p->ndim >= 2 && strcmp(p->name, "cls_token");
        p->lr_scale = ft_layer_lr_scale(p->name, c.depth, layer_decay);
    }
    f->p.e.blk = calloc((size_t)c.depth, sizeof(enc_block_t));
    f->g.e.blk = calloc((size_t)c.depth, sizeof(enc_block_t));
    f->pos_embed = malloc(sizeof(float) * (size_t)f->d.T * f->d.D);
    f->dp = malloc(sizeof(float) * (size_t)c.depth * 2 * B);
    if (!f->p.e.blk || !f->g.e.blk || !f->pos_embed || !f->dp) {
        ft_free(f);
        return err_set(err, ERR_RUNTIME, "fine-tune: out of memory (batch %d, %d classes)", B, C);
    }
    f->a = acts_create(&c, B, ACTS_FINETUNE, C, err);
    if (!f->a) {
        ft_free(f);
        return err_prefix(err, "fine-tune (batch %d, %d classes)", B, C);
    }
    views(f, f->w.params, &f->p);
    views(f, f->w.grads, &f->g);
    pos_embed_sincos(f->pos_embed, f->d.G, f->d.D);
    return 0;
}

void ft_free(ft_model_t *f) {
    params_free(&f->w);
    acts_free(f->a);
    free(f->p.e.blk); free(f->g.e.blk); free(f->pos_embed); free(f->dp);
    memset(f, 0, sizeof *f);
}

int ft_load_encoder(ft_model_t *f, const model_t *src, err_t *err) {
    const semaim_config_t *a = &f->cfg, *b = &src->cfg;
    if (a->image != b->image || a->patch != b->patch || a->width != b->width || a->depth != b->depth ||
        a->heads != b->heads)
        return err_set(err, ERR_INPUT, "fine-tune: encoder of another config (image %d patch %d width %d depth %d heads %d)",
                       b->image, b->patch, b->width, b->depth, b->heads);
    for (int i = 0; i < f->w.ntensors; i++) {
        const param_info_t *t = &f->w.info[i], *s = params_find(&src->w, t->name);
        if (!s) continue;   /* fc_norm and head are the classifier's own */
        ERR_ASSERT(s->numel == t->numel, "encoder tensor %s differs in size", t->name);
        memcpy(f->w.params + t->offset, src->w.params + s->offset, sizeof(float) * (size_t)t->numel);
    }
    params_sync_half(&f->w);
    memcpy(f->pos_embed, src->pos_embed, sizeof(float) * (size_t)f->d.T * f->d.D);
    return 0;
}

void ft_drop_path(ft_model_t *f, double drop_path, uint64_t seed, long step, const int64_t *ids, int B) {
    int depth = f->cfg.depth;
    f->dp_on = drop_path > 0;
    if (!f->dp_on) return;
    for (int i = 0; i < depth; i++) {
        double p = depth > 1 ? drop_path * i / (depth - 1) : 0.0;   /* torch.linspace(0, rate, depth) */
        float keep = (float)(1.0 / (1.0 - p));
        for (int k = 0; k < 2; k++)
            for (int b = 0; b < B; b++) {
                uint64_t key = rng_key(seed, DP_RNG_TAG, (uint64_t)step, (uint64_t)ids[b], 0);
                f->dp[((long)i * 2 + k) * f->B + b] = p > 0 && rng_uniform(key, (uint64_t)(2 * i + k)) < p ? 0.0f : keep;
            }
    }
}

static const float *dp_of(const ft_model_t *f, int i, int k) {
    return f->dp_on ? f->dp + ((long)i * 2 + k) * f->B : NULL;
}

/* The network up to the logits. */
static void forward_logits(ft_model_t *f, const float *images, int B, int train) {
    acts_t *a = f->a;
    acts_check(a, B, ACTS_FINETUNE);
    int T = f->d.T, D = f->d.D, C = f->C, S = f->cfg.image;
    long BTD = (long)B * T * D;
    pass_t ps = pass_of(a, &f->w);
    if (!train) f->dp_on = 0;
    patchify(a->patches, a->bf16, images, NULL, B, S, S, f->cfg.patch, PATCH_CPP);
    embed_forward(a->h, NULL, &f->p.e, f->pos_embed, &ps, B);
    for (int i = 0; i < f->cfg.depth; i++)
        enc_block_forward(a->h + (i + 1) * BTD, &a->enc[i], a->h + i * BTD, &f->p.e.blk[i], &ps, &a->pl.enc, B,
                          dp_of(f, i, 0), dp_of(f, i, 1));
    pool_patch_tokens(a->pool, a->h + (long)f->cfg.depth * BTD, B, T, D);
    layernorm_forward(a->fcn, a->bf16, a->fcn_mean, a->fcn_rstd, a->pool, f->p.fcn_w, f->p.fcn_b, B, D);
    linear_forward(a->logits, a->fcn, pass_w(&ps, f->p.head_w), f->p.head_b, NULL, B, D, C, &a->pl.cls, &a->ws);
    a->Bcur = B;
    a->holds = HOLDS_FINETUNE_FWD;
}

/* The soft-target loss on a->targets, the mean over the n rows that count (the others have
 * zero targets). */
static double loss_of_targets(ft_model_t *f, int B, int n) {
    f->nrows = n;
    double loss = softce_forward(f->a->probs, f->a->logits, f->a->targets, B, f->C);
    return n ? loss * B / n : 0;
}

double ft_forward(ft_model_t *f, const float *images, const int32_t *labels, int B, int train, float smoothing) {
    forward_logits(f, images, B, train);
    f->nrows = 0;
    if (!labels) return 0;
    /* label-smoothed cross-entropy = the soft-target loss on smoothed one-hot targets; rows
     * whose label does not count have zero targets */
    int n = 0;
    for (int b = 0; b < B; b++) n += labels[b] >= 0 && labels[b] < f->C;
    label_targets(f->a->targets, labels, B, f->C, smoothing);
    return loss_of_targets(f, B, n);
}

double ft_forward_targets(ft_model_t *f, const float *images, const float *targets, int B, int train) {
    forward_logits(f, images, B, train);
    memcpy(f->a->targets, targets, sizeof(float) * (size_t)B * f->C);
    return loss_of_targets(f, B, B);
}

const float *ft_logits(const ft_model_t *f) { return f->a->logits; }

void ft_backward(ft_model_t *f) {
    acts_t *a = f->a;
    ERR_ASSERT(a->holds == HOLDS_FINETUNE_FWD, "ft_backward without a fine-tuning forward (ft_forward) first");
    int B = a->Bcur, T = f->d.T, D = f->d.D, C = f->C;
    long BTD = (long)B * T * D;
    pass_t ps = pass_of(a, &f->w);
    memset(a->dlogits, 0, sizeof(float) * (size_t)B * C);
    if (f->nrows) softce_backward(a->dlogits, a->probs, a->targets, B, C, (float)B / f->nrows);
    linear_backward(a->dfcn, f->g.head_w, f->g.head_b, a->dlogits, a->fcn, pass_w(&ps, f->p.head_w), B, D, C, &a->pl.cls,
                    &a->ws);
    memset(a->dpool, 0, sizeof(float) * (size_t)B * D);
    layernorm_backward(a->dpool, f->g.fcn_w, f->g.fcn_b, a->dfcn, a->pool, f->p.fcn_w, a->fcn_mean, a->fcn_rstd, B, D);
    float *dres = a->dres_h;
    float inv = 1.0f / (T - 1);
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * T; r++) {
        long b = r / T, t = r % T;
        for (int d = 0; d < D; d++) dres[r * D + d] = t == 0 ? 0.0f : a->dpool[b * D + d] * inv;
    }
    for (int i = f->cfg.depth - 1; i >= 0; i--)
        enc_block_backward(dres, &f->g.e.blk[i], &a->enc[i], a->h + i * BTD, &f->p.e.blk[i], &ps, &a->pl.enc, B,
                           dp_of(f, i, 0), dp_of(f, i, 1));
    embed_backward(&f->g.e, dres, &f->p.e, &ps, B);
}
