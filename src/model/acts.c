/* Activation memory for one (config, batch): one allocation, carved into named buffers.
 * The training pass saves what backward needs per block; the backward scratch is shared by
 * all blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/acts.h"
#include "kernels/ops.h"

typedef struct { char *base; size_t off; } carve_t;

/* Returns base + off (NULL while sizing) and advances by n floats, 64-byte aligned. */
static float *take(carve_t *c, size_t n) {
    float *p = c->base ? (float *)(c->base + c->off) : NULL;
    c->off += (n * sizeof(float) + 63) / 64 * 64;
    return p;
}

static void carve_all(acts_t *a, const model_t *m, carve_t *c) {
    size_t B = a->B, T = m->T, D = m->D, F = 4 * m->D, BT = B * T, L = m->L;
    size_t att = B * m->NH * T * T, DE = m->cfg.depth, DQ = m->cfg.dec_depth;
    a->patches_nat = take(c, B * L * m->PD);
    a->patches = take(c, B * L * m->PD);
    a->target_nat = take(c, B * L * m->PD);
    a->target = take(c, B * L * m->PD);
    a->target_scratch = take(c, pixel_target_scratch_floats(a->B, m->cfg.image, m->cfg.image, m->cfg.patch));
    a->emb = take(c, B * L * D);
    a->perm = (int *)take(c, B * L);
    a->h = take(c, (DE + 1) * BT * D);
    a->g = take(c, (DQ + 1) * BT * D);
    for (size_t i = 0; i < DE; i++) {
        enc_saved_t *s = &a->enc[i];
        s->ln1 = take(c, BT * D); s->ln1_mean = take(c, BT); s->ln1_rstd = take(c, BT);
        s->qkv = take(c, BT * 3 * D); s->att = take(c, att); s->atty = take(c, BT * D);
        s->mid = take(c, BT * D); s->ln2 = take(c, BT * D); s->ln2_mean = take(c, BT); s->ln2_rstd = take(c, BT);
        s->fc1 = take(c, BT * F); s->gelu = take(c, BT * F);
    }
    for (size_t i = 0; i < DQ; i++) {
        dec_saved_t *s = &a->dec[i];
        s->lng = take(c, BT * D); s->lng_mean = take(c, BT); s->lng_rstd = take(c, BT);
        s->lnh = take(c, BT * D); s->lnh_mean = take(c, BT); s->lnh_rstd = take(c, BT);
        s->q = take(c, BT * D); s->k = take(c, BT * D); s->v = take(c, BT * D);
        s->att = take(c, att); s->atty = take(c, BT * D);
        s->mid = take(c, BT * D); s->ln2 = take(c, BT * D); s->ln2_mean = take(c, BT); s->ln2_rstd = take(c, BT);
        s->fc1 = take(c, BT * F); s->gelu = take(c, BT * F);
    }
    a->norm = take(c, BT * D); a->norm_mean = take(c, BT); a->norm_rstd = take(c, BT);
    a->head_fc1 = take(c, BT * F); a->head_gelu = take(c, BT * F); a->pred = take(c, BT * m->PD);
    a->dres_h = take(c, BT * D); a->dres_g = take(c, BT * D);
    a->dD1 = take(c, BT * D); a->dD2 = take(c, BT * D);
    a->d3D = take(c, BT * 3 * D); a->dF1 = take(c, BT * F); a->dF2 = take(c, BT * F);
    a->dpred = take(c, BT * m->PD);
    a->att_scratch = take(c, attention_scratch_floats(a->B, m->T, m->NH, m->hd));
    a->sim = take(c, B * L);
    a->order_scratch = take(c, (order_scratch_bytes(a->B, m->L) + 3) / 4);
}

acts_t *acts_create(const model_t *m, int B) {
    if (B <= 0) return NULL;
    acts_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->B = B;
    a->enc = calloc(m->cfg.depth, sizeof *a->enc);
    a->dec = calloc(m->cfg.dec_depth, sizeof *a->dec);
    if (!a->enc || !a->dec) { acts_free(a); return NULL; }
    carve_t c = {NULL, 0};
    carve_all(a, m, &c);
    a->bytes = c.off;
    a->block = aligned_alloc(64, c.off);
    if (!a->block) { acts_free(a); return NULL; }
    c.base = a->block; c.off = 0;
    carve_all(a, m, &c);
    return a;
}

void acts_free(acts_t *a) {
    if (!a) return;
    free(a->block); free(a->enc); free(a->dec); free(a);
}

size_t acts_bytes(const acts_t *a) { return a->bytes; }

void acts_check_batch(const acts_t *a, int B) {
    if (B < 1 || B > a->B) {
        fprintf(stderr, "semaim: batch %d outside the activations' capacity 1..%d\n", B, a->B);
        abort();
    }
}
