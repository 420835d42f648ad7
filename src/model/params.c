/* The parameter table: one contiguous buffer of named tensors, its views and its
 * initialisation (SPEC §2). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "semaim/model.h"
#include "semaim/rng.h"

/* Init kinds for the table builder. */
enum { INIT_XAVIER, INIT_ZERO, INIT_ONE, INIT_NORMAL02 };

typedef struct { model_t *m; int *init; long off; } builder_t;

static void add(builder_t *b, int init, int ndim, int s0, int s1, int s2, int s3, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static void add(builder_t *b, int init, int ndim, int s0, int s1, int s2, int s3, const char *fmt, ...) {
    model_t *m = b->m;
    if (m->info) {
        param_info_t *t = &m->info[m->ntensors];
        va_list ap; va_start(ap, fmt); vsnprintf(t->name, PARAM_NAME_MAX, fmt, ap); va_end(ap);
        int s[4] = {s0, s1, s2, s3};
        t->ndim = ndim; t->numel = 1;
        for (int i = 0; i < 4; i++) { t->shape[i] = i < ndim ? s[i] : 1; if (i < ndim) t->numel *= s[i]; }
        t->offset = b->off;
        t->decay = ndim >= 2;
        b->init[m->ntensors] = init;
        b->off += t->numel;
    }
    m->ntensors++;
}

/* A LayerNorm (weight 1, bias 0) and a Linear (xavier weight [out, in], bias 0) named prefix.* */
static void add_norm(builder_t *b, int D, const char *prefix) {
    add(b, INIT_ONE, 1, D, 0, 0, 0, "%s.weight", prefix);
    add(b, INIT_ZERO, 1, D, 0, 0, 0, "%s.bias", prefix);
}
static void add_linear(builder_t *b, int in, int out, const char *prefix) {
    add(b, INIT_XAVIER, 2, out, in, 0, 0, "%s.weight", prefix);
    add(b, INIT_ZERO, 1, out, 0, 0, 0, "%s.bias", prefix);
}
/* norm2 + mlp.fc1 + mlp.fc2 of a block, shared by both streams. */
static void add_mlp(builder_t *b, int D, const char *block) {
    char n[PARAM_NAME_MAX];
    snprintf(n, sizeof n, "%s.norm2", block); add_norm(b, D, n);
    snprintf(n, sizeof n, "%s.mlp.fc1", block); add_linear(b, D, 4 * D, n);
    snprintf(n, sizeof n, "%s.mlp.fc2", block); add_linear(b, 4 * D, D, n);
}

/* Lists every tensor in buffer order (model_views walks the same order). Called twice: once
 * to count, once to fill. */
static void build_table(builder_t *b) {
    model_t *m = b->m;
    int D = m->D, P = m->cfg.patch;
    char blk[PARAM_NAME_MAX - 16], n[PARAM_NAME_MAX];
    m->ntensors = 0; b->off = 0;
    add(b, INIT_NORMAL02, 3, 1, 1, D, 0, "cls_token");
    add(b, INIT_XAVIER, 4, D, 3, P, P, "patch_embed.proj.weight");
    add(b, INIT_ZERO, 1, D, 0, 0, 0, "patch_embed.proj.bias");
    for (int i = 0; i < m->cfg.depth; i++) {
        snprintf(blk, sizeof blk, "blocks.%d", i);
        snprintf(n, sizeof n, "%s.norm1", blk); add_norm(b, D, n);
        snprintf(n, sizeof n, "%s.attn.qkv", blk); add_linear(b, D, 3 * D, n);
        snprintf(n, sizeof n, "%s.attn.proj", blk); add_linear(b, D, D, n);
        add_mlp(b, D, blk);
    }
    for (int i = 0; i < m->cfg.dec_depth; i++) {
        snprintf(blk, sizeof blk, "query_blocks.%d", i);
        snprintf(n, sizeof n, "%s.norm1", blk); add_norm(b, D, n);
        const char *proj[4] = {"q", "k", "v", "proj"};
        for (int j = 0; j < 4; j++) { snprintf(n, sizeof n, "%s.attn.%s", blk, proj[j]); add_linear(b, D, D, n); }
        add_mlp(b, D, blk);
    }
    add_norm(b, D, "norm");
    add_linear(b, D, 4 * D, "prediction_head.fc1");
    add_linear(b, 4 * D, m->PD, "prediction_head.fc2");
}

void model_views(const model_t *m, float *base, views_t *v) {
    /* Walks the table in the order build_table wrote it. */
    const param_info_t *t = m->info;
    int k = 0;
#define NEXT (base + t[k++].offset)
    v->cls_token = NEXT; v->patch_w = NEXT; v->patch_b = NEXT;
    for (int i = 0; i < m->cfg.depth; i++) {
        enc_block_t *e = &v->enc[i];
        e->ln1_w = NEXT; e->ln1_b = NEXT; e->qkv_w = NEXT; e->qkv_b = NEXT;
        e->proj_w = NEXT; e->proj_b = NEXT; e->ln2_w = NEXT; e->ln2_b = NEXT;
        e->fc1_w = NEXT; e->fc1_b = NEXT; e->fc2_w = NEXT; e->fc2_b = NEXT;
    }
    for (int i = 0; i < m->cfg.dec_depth; i++) {
        dec_block_t *d = &v->dec[i];
        d->ln1_w = NEXT; d->ln1_b = NEXT; d->q_w = NEXT; d->q_b = NEXT; d->k_w = NEXT; d->k_b = NEXT;
        d->v_w = NEXT; d->v_b = NEXT; d->proj_w = NEXT; d->proj_b = NEXT; d->ln2_w = NEXT; d->ln2_b = NEXT;
        d->fc1_w = NEXT; d->fc1_b = NEXT; d->fc2_w = NEXT; d->fc2_b = NEXT;
    }
    v->norm_w = NEXT; v->norm_b = NEXT; v->head1_w = NEXT; v->head1_b = NEXT; v->head2_w = NEXT; v->head2_b = NEXT;
#undef NEXT
}

void pos_embed_sincos(float *out, int G, int D) {
    int Q = D / 4;
    memset(out, 0, sizeof(float) * D);              /* cls row */
    for (int r = 0; r < G; r++)
        for (int c = 0; c < G; c++) {
            float *o = out + (long)(1 + r * G + c) * D;
            for (int k = 0; k < Q; k++) {
                double w = pow(10000.0, -(double)k / Q);
                o[k] = (float)sin(c * w);       o[Q + k] = (float)cos(c * w);
                o[2 * Q + k] = (float)sin(r * w); o[3 * Q + k] = (float)cos(r * w);
            }
        }
}

int model_init(model_t *m, const semaim_config_t *cfg, uint64_t seed, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (config_validate(cfg, -1, err, errlen)) return -1;
    m->cfg = *cfg;
    m->G = cfg_grid(cfg); m->L = cfg_patches(cfg); m->T = m->L + 1; m->D = cfg->width;
    m->NH = cfg->heads; m->hd = cfg_head_dim(cfg); m->PD = cfg_patch_dim(cfg); m->step = cfg_step(cfg);
    builder_t b = {m, NULL, 0};
    build_table(&b);                                 /* count */
    m->info = calloc(m->ntensors, sizeof *m->info);
    b.init = calloc(m->ntensors, sizeof(int));
    m->p.enc = calloc(cfg->depth, sizeof(enc_block_t)); m->g.enc = calloc(cfg->depth, sizeof(enc_block_t));
    m->p.dec = calloc(cfg->dec_depth, sizeof(dec_block_t)); m->g.dec = calloc(cfg->dec_depth, sizeof(dec_block_t));
    m->pos_embed = malloc(sizeof(float) * m->T * m->D);
    if (!m->info || !b.init || !m->p.enc || !m->g.enc || !m->p.dec || !m->g.dec || !m->pos_embed) goto oom;
    build_table(&b);                                 /* fill */
    m->nparams = b.off;
    size_t bytes = sizeof(float) * (size_t)m->nparams;
    m->params = aligned_alloc(64, (bytes + 63) / 64 * 64);
    m->grads = aligned_alloc(64, (bytes + 63) / 64 * 64);
    m->m = aligned_alloc(64, (bytes + 63) / 64 * 64);
    m->v = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!m->params || !m->grads || !m->m || !m->v) goto oom;
    memset(m->grads, 0, bytes); memset(m->m, 0, bytes); memset(m->v, 0, bytes);
    model_views(m, m->params, &m->p);
    model_views(m, m->grads, &m->g);
    pos_embed_sincos(m->pos_embed, m->G, m->D);

    for (int i = 0; i < m->ntensors; i++) {
        param_info_t *t = &m->info[i];
        float *w = m->params + t->offset;
        rng_t r = rng_make(rng_key(seed, 0x1417, (uint64_t)i, 0, 0));
        if (b.init[i] == INIT_XAVIER) {
            /* Linear weights (out, in); the patch embed counts as its (D, 3·P·P) view. */
            long fan_out = t->shape[0], fan_in = t->numel / t->shape[0];
            float bound = (float)sqrt(6.0 / (double)(fan_in + fan_out));
            for (long j = 0; j < t->numel; j++) w[j] = (2.0f * rng_nextf(&r) - 1.0f) * bound;
        } else if (b.init[i] == INIT_NORMAL02) {
            for (long j = 0; j < t->numel; j++) w[j] = (float)(0.02 * rng_normal(&r));
        } else {
            float val = b.init[i] == INIT_ONE ? 1.0f : 0.0f;
            for (long j = 0; j < t->numel; j++) w[j] = val;
        }
    }
    free(b.init);
    return 0;
oom:
    free(b.init);
    model_free(m);
    snprintf(err, errlen, "out of memory allocating the model");
    return -1;
}

void model_free(model_t *m) {
    free(m->info); free(m->params); free(m->grads); free(m->m); free(m->v);
    free(m->p.enc); free(m->g.enc); free(m->p.dec); free(m->g.dec); free(m->pos_embed);
    memset(m, 0, sizeof *m);
}

void model_zero_grad(model_t *m) { memset(m->grads, 0, sizeof(float) * (size_t)m->nparams); }

const param_info_t *model_find(const model_t *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->info[i].name, name) == 0) return &m->info[i];
    return NULL;
}

double semaim_flops_per_image(const model_t *m) {
    /* SPEC §6: per token per block 12·D² + 2·T·D multiply-adds; 2 FLOP each. */
    double D = m->D, T = m->T;
    double block = T * (12 * D * D + 2 * T * D);
    double embed = m->L * (double)m->PD * D;
    double head = T * (4 * D * D + 4 * D * m->PD);
    double fwd = embed + (m->cfg.depth + m->cfg.dec_depth) * block + head;
    double perm = embed + m->cfg.depth * block;
    return 2.0 * (3.0 * fwd + perm);
}
