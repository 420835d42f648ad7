/* Activation memory: one allocation per (config, batch, mode), carved into named buffers.
 * The training passes save what backward needs per block; the backward scratch is shared by
 * all blocks; a forward-only encoder pass reuses one block's buffers for every block. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/ops.h"
#include "model/arena.h"
#include "semaim/orders.h"

typedef struct { char *base; size_t off; } carve_t;

/* Returns base + off (NULL while sizing) and advances by n floats, 64-byte aligned. */
static float *take(carve_t *c, size_t n) {
    float *p = c->base ? (float *)(c->base + c->off) : NULL;
    c->off += (n * sizeof(float) + 63) / 64 * 64;
    return p;
}

static void carve_enc(enc_saved_t *s, carve_t *c, size_t BT, size_t D, size_t att) {
    size_t F = 4 * D;
    s->ln1 = take(c, BT * D); s->ln1_mean = take(c, BT); s->ln1_rstd = take(c, BT);
    s->qkv = take(c, BT * 3 * D); s->att = take(c, att); s->atty = take(c, BT * D);
    s->mid = take(c, BT * D); s->ln2 = take(c, BT * D); s->ln2_mean = take(c, BT); s->ln2_rstd = take(c, BT);
    s->fc1 = take(c, BT * F); s->gelu = take(c, BT * F);
}

/* The backward scratch every block shares. */
static void carve_backward(acts_t *a, carve_t *c, size_t BT, size_t D, const dims_t *d) {
    size_t F = 4 * D;
    a->dres_h = take(c, BT * D);
    a->dD1 = take(c, BT * D); a->dD2 = take(c, BT * D);
    a->d3D = take(c, BT * 3 * D); a->dF1 = take(c, BT * F); a->dF2 = take(c, BT * F);
    a->att_scratch = take(c, attention_scratch_floats(a->B, d->T, d->NH, d->hd));
}

static void carve_all(acts_t *a, carve_t *c) {
    const semaim_config_t *cfg = &a->cfg;
    dims_t d = cfg_dims(cfg);
    size_t B = a->B, D = d.D, F = 4 * D, BT = B * d.T, L = d.L, PD = d.PD;
    size_t att = B * d.NH * d.T * d.T, DE = cfg->depth, DQ = cfg->dec_depth;
    a->patches_nat = take(c, B * L * PD);
    a->emb = take(c, B * L * D);
    /* the global pool and its LayerNorm statistics: the classifier's head input and the gap
     * readout of the encoder passes */
    a->pool = take(c, B * D); a->fcn_mean = take(c, B); a->fcn_rstd = take(c, B);
    if (a->mode == ACTS_ENCODER) {
        a->h = take(c, 2 * BT * D);
        carve_enc(&a->enc[0], c, BT, D, att);
    } else {
        a->h = take(c, (DE + 1) * BT * D);
        for (size_t i = 0; i < DE; i++) carve_enc(&a->enc[i], c, BT, D, att);
        carve_backward(a, c, BT, D, &d);
    }
    if (a->mode != ACTS_FINETUNE) {
        a->norm = take(c, BT * D); a->norm_mean = take(c, BT); a->norm_rstd = take(c, BT);
        a->sim = take(c, B * L);
        a->order_scratch = take(c, ((size_t)order_scratch_bytes(a->B, d.L) + 3) / 4);
    }
    if (a->mode == ACTS_PRETRAIN) {
        a->patches = take(c, B * L * PD);
        a->target_nat = take(c, B * L * PD);
        a->target = take(c, B * L * PD);
        a->target_scratch = take(c, pixel_target_scratch_floats(a->B, cfg->image, cfg->image, cfg->patch));
        a->perm = (int *)take(c, B * L);
        a->g = take(c, (DQ + 1) * BT * D);
        for (size_t i = 0; i < DQ; i++) {
            dec_saved_t *s = &a->dec[i];
            s->lng = take(c, BT * D); s->lng_mean = take(c, BT); s->lng_rstd = take(c, BT);
            s->lnh = take(c, BT * D); s->lnh_mean = take(c, BT); s->lnh_rstd = take(c, BT);
            s->q = take(c, BT * D); s->k = take(c, BT * D); s->v = take(c, BT * D);
            s->att = take(c, att); s->atty = take(c, BT * D);
            s->mid = take(c, BT * D); s->ln2 = take(c, BT * D); s->ln2_mean = take(c, BT); s->ln2_rstd = take(c, BT);
            s->fc1 = take(c, BT * F); s->gelu = take(c, BT * F);
        }
        a->head_fc1 = take(c, BT * F); a->head_gelu = take(c, BT * F); a->pred = take(c, BT * PD);
        a->dres_g = take(c, BT * D);
        a->dpred = take(c, BT * PD);
    }
    if (a->mode == ACTS_FINETUNE) {
        size_t C = (size_t)a->C;
        a->fcn = take(c, B * D); a->dfcn = take(c, B * D); a->dpool = take(c, B * D);
        a->logits = take(c, B * C); a->dlogits = take(c, B * C);
        a->targets = take(c, B * C); a->probs = take(c, B * C);
    }
}

acts_t *acts_create(const semaim_config_t *cfg, int B, int mode, int classes) {
    if (B <= 0 || (mode == ACTS_FINETUNE && classes < 1)) return NULL;
    acts_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->mode = mode;
    a->cfg = *cfg;
    a->B = B;
    a->C = classes;
    a->enc = calloc(mode == ACTS_ENCODER ? 1 : (size_t)cfg->depth, sizeof *a->enc);
    a->dec = calloc((size_t)cfg->dec_depth, sizeof *a->dec);
    if (!a->enc || !a->dec) { acts_free(a); return NULL; }
    carve_t c = {NULL, 0};
    carve_all(a, &c);
    a->bytes = c.off;
    a->block = aligned_alloc(64, c.off);
    if (!a->block) { acts_free(a); return NULL; }
    c.base = a->block; c.off = 0;
    carve_all(a, &c);
    return a;
}

void acts_free(acts_t *a) {
    if (!a) return;
    free(a->block); free(a->enc); free(a->dec); free(a);
}

size_t acts_bytes(const acts_t *a) { return a->bytes; }
int acts_capacity(const acts_t *a) { return a->B; }

void acts_check(const acts_t *a, int B, int mode) {
    ERR_ASSERT(B >= 1 && B <= a->B, "batch %d outside the activations' capacity 1..%d", B, a->B);
    static const char *const names[] = {"pretraining", "encoder", "fine-tuning"};
    ERR_ASSERT(a->mode == mode || (mode == ACTS_ENCODER && a->mode == ACTS_PRETRAIN),
               "activations made for %s passes used for a %s pass", names[a->mode], names[mode]);
}
