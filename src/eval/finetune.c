/* The fine-tuning network (SPEC §5): encoder with full attention and drop-path, mean of the
 * patch tokens, fc_norm, head; label-smoothed cross-entropy; AdamW with layer-wise lr decay;
 * and its checkpoints. See include/semaim/finetune.h. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "model/acts.h"
#include "model/blocks.h"
#include "semaim/eval.h"
#include "semaim/finetune.h"
#include "kernels/ops.h"
#include "semaim/rng.h"
#include "io/stepfiles.h"

#define DP_RNG_TAG 0x6472707468ULL   /* "drpth": drop-path draws */

static int n_enc_tensors(const ft_model_t *f) { return 3 + 12 * f->m.cfg.depth; }

int ft_init(ft_model_t *f, const semaim_config_t *cfg, int C, int B, uint64_t seed, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    if (C < 1 || B < 1) { snprintf(err, errlen, "fine-tune: need at least one class and one image per batch"); return -1; }
    semaim_config_t c = *cfg;
    c.dec_depth = 1;   /* the decoder is never used: keep its share of memory minimal */
    if (model_init(&f->m, &c, seed, err, errlen)) return -1;
    const param_info_t *q = model_find(&f->m, "query_blocks.0.norm1.weight");
    f->n_enc = q->offset;
    f->C = C;
    f->B = B;
    int D = f->m.D;
    f->nhead = 2L * D + (long)C * D + C;
    size_t hb = sizeof(float) * (size_t)f->nhead, bd = sizeof(float) * (size_t)B * D;
    f->head = malloc(hb); f->ghead = calloc(1, hb); f->mhead = calloc(1, hb); f->vhead = calloc(1, hb);
    f->a = acts_create(&f->m, B);
    f->pool = malloc(bd); f->fcn = malloc(bd); f->dfcn = malloc(bd); f->dpool = malloc(bd);
    f->fcn_mean = malloc(sizeof(float) * B); f->fcn_rstd = malloc(sizeof(float) * B);
    f->logits = malloc(sizeof(float) * (size_t)B * C); f->dlogits = malloc(sizeof(float) * (size_t)B * C);
    f->dp = malloc(sizeof(float) * (size_t)c.depth * 2 * B);
    if (!f->head || !f->ghead || !f->mhead || !f->vhead || !f->a || !f->pool || !f->fcn || !f->dfcn || !f->dpool ||
        !f->fcn_mean || !f->fcn_rstd || !f->logits || !f->dlogits || !f->dp) {
        ft_free(f);
        snprintf(err, errlen, "fine-tune: out of memory (batch %d, %d classes)", B, C);
        return -1;
    }
    for (int d = 0; d < D; d++) { f->head[d] = 1.0f; f->head[D + d] = 0.0f; }
    rng_t r = rng_make(rng_key(seed, 0x68656164ULL /* "head" */, 0, 0, 0));
    float *hw = f->head + 2 * D;
    for (long i = 0; i < (long)C * D; i++) hw[i] = (float)(2e-5 * rng_normal(&r));
    memset(hw + (long)C * D, 0, sizeof(float) * C);
    return 0;
}

void ft_free(ft_model_t *f) {
    model_free(&f->m);
    acts_free(f->a);
    free(f->head); free(f->ghead); free(f->mhead); free(f->vhead);
    free(f->pool); free(f->fcn); free(f->dfcn); free(f->dpool); free(f->fcn_mean); free(f->fcn_rstd);
    free(f->logits); free(f->dlogits); free(f->dp);
    memset(f, 0, sizeof *f);
}

int ft_load_encoder(ft_model_t *f, const model_t *src, char *err, size_t errlen) {
    const semaim_config_t *a = &f->m.cfg, *b = &src->cfg;
    if (a->image != b->image || a->patch != b->patch || a->width != b->width || a->depth != b->depth ||
        a->heads != b->heads) {
        snprintf(err, errlen, "fine-tune: encoder of another config (image %d patch %d width %d depth %d heads %d)",
                 b->image, b->patch, b->width, b->depth, b->heads);
        return -1;
    }
    /* both tables start with the same encoder tensors in the same order */
    memcpy(f->m.params, src->params, sizeof(float) * (size_t)f->n_enc);
    memcpy(f->m.pos_embed, src->pos_embed, sizeof(float) * (size_t)f->m.T * f->m.D);
    return 0;
}

void ft_drop_path(ft_model_t *f, double drop_path, uint64_t seed, long step, const int64_t *ids, int B) {
    int depth = f->m.cfg.depth;
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

static block_scratch_t scratch(acts_t *a) {
    block_scratch_t s = {a->dD1, a->dD2, a->d3D, a->dF1, a->dF2, a->att_scratch};
    return s;
}

static const float *dp_of(const ft_model_t *f, int i, int k) {
    return f->dp_on ? f->dp + ((long)i * 2 + k) * f->B : NULL;
}

double ft_forward(ft_model_t *f, const float *images, const int32_t *labels, int B, int train, float smoothing) {
    model_t *m = &f->m;
    acts_t *a = f->a;
    acts_check_batch(a, B);
    int T = m->T, L = m->L, D = m->D, C = f->C, S = m->cfg.image;
    long BTD = (long)B * T * D;
    if (!train) f->dp_on = 0;
    patchify(a->patches_nat, images, B, S, S, m->cfg.patch, PATCH_CPP);
    linear_forward(a->emb, a->patches_nat, m->p.patch_w, m->p.patch_b, (long)B * L, m->PD, D);
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * T; r++) {
        long b = r / T, t = r % T;
        float *o = a->h + r * D;
        const float *pe = m->pos_embed + t * D;
        const float *src = t == 0 ? m->p.cls_token : a->emb + (b * L + t - 1) * D;
        for (int d = 0; d < D; d++) o[d] = src[d] + pe[d];
    }
    for (int i = 0; i < m->cfg.depth; i++)
        enc_block_forward_dp(a->h + (i + 1) * BTD, &a->enc[i], a->h + i * BTD, &m->p.enc[i], B, T, D, m->NH, ATTN_FULL,
                             dp_of(f, i, 0), dp_of(f, i, 1));
    const float *hL = a->h + (long)m->cfg.depth * BTD;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) {
            double s = 0;
            for (int t = 1; t < T; t++) s += hL[((long)b * T + t) * D + d];
            f->pool[(long)b * D + d] = (float)(s / (T - 1));
        }
    const float *fw = f->head, *fb = f->head + D, *hw = f->head + 2 * D, *hb = hw + (long)C * D;
    layernorm_forward(f->fcn, f->fcn_mean, f->fcn_rstd, f->pool, fw, fb, B, D);
    linear_forward(f->logits, f->fcn, hw, hb, B, D, C);
    f->Bcur = B;
    f->labels = labels;
    f->smoothing = smoothing;
    if (!labels) return 0;
    double loss = 0;
    int n = 0;
    for (int b = 0; b < B; b++) {
        int y = labels[b];
        if (y < 0 || y >= C) continue;
        const float *l = f->logits + (long)b * C;
        double mx = l[0], z = 0, mean = 0;
        for (int c = 1; c < C; c++) mx = fmax(mx, l[c]);
        for (int c = 0; c < C; c++) { z += exp(l[c] - mx); mean += l[c]; }
        double lse = mx + log(z);
        loss += lse - ((1.0 - smoothing) * l[y] + smoothing * mean / C);
        n++;
    }
    return n ? loss / n : 0;
}

void ft_backward(ft_model_t *f) {
    model_t *m = &f->m;
    acts_t *a = f->a;
    int B = f->Bcur, T = m->T, L = m->L, D = m->D, C = f->C;
    long BTD = (long)B * T * D;
    int n = 0;
    for (int b = 0; b < B; b++) n += f->labels && f->labels[b] >= 0 && f->labels[b] < C;
    double eps = f->smoothing;
    for (int b = 0; b < B; b++) {
        const float *l = f->logits + (long)b * C;
        float *dl = f->dlogits + (long)b * C;
        int y = f->labels ? f->labels[b] : -1;
        if (y < 0 || y >= C) { memset(dl, 0, sizeof(float) * C); continue; }
        double mx = l[0], z = 0;
        for (int c = 1; c < C; c++) mx = fmax(mx, l[c]);
        for (int c = 0; c < C; c++) z += exp(l[c] - mx);
        for (int c = 0; c < C; c++)
            dl[c] = (float)((exp(l[c] - mx) / z - ((1.0 - eps) * (c == y) + eps / C)) / n);
    }
    const float *fw = f->head, *hw = f->head + 2 * D;
    float *gfw = f->ghead, *gfb = f->ghead + D, *ghw = f->ghead + 2 * D, *ghb = ghw + (long)C * D;
    memset(f->dfcn, 0, sizeof(float) * (size_t)B * D);
    linear_backward(f->dfcn, ghw, ghb, f->dlogits, f->fcn, hw, B, D, C);
    memset(f->dpool, 0, sizeof(float) * (size_t)B * D);
    layernorm_backward(f->dpool, gfw, gfb, f->dfcn, f->pool, fw, f->fcn_mean, f->fcn_rstd, B, D);
    float *dres = a->dres_h;
    float inv = 1.0f / (T - 1);
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * T; r++) {
        long b = r / T, t = r % T;
        for (int d = 0; d < D; d++) dres[r * D + d] = t == 0 ? 0.0f : f->dpool[b * D + d] * inv;
    }
    block_scratch_t sc = scratch(a);
    for (int i = m->cfg.depth - 1; i >= 0; i--)
        enc_block_backward_dp(dres, &m->g.enc[i], &a->enc[i], a->h + i * BTD, &m->p.enc[i], &sc, B, T, D, m->NH,
                              ATTN_FULL, dp_of(f, i, 0), dp_of(f, i, 1));
    for (int b = 0; b < B; b++) {
        const float *d = dres + (long)b * T * D;
        for (int k = 0; k < D; k++) m->g.cls_token[k] += d[k];
        memcpy(a->emb + (long)b * L * D, d + D, sizeof(float) * (size_t)L * D);
    }
    linear_backward(NULL, m->g.patch_w, m->g.patch_b, a->emb, a->patches_nat, m->p.patch_w, (long)B * L, m->PD, D);
}

void ft_zero_grad(ft_model_t *f) {
    memset(f->m.grads, 0, sizeof(float) * (size_t)f->n_enc);
    memset(f->ghead, 0, sizeof(float) * (size_t)f->nhead);
}

double ft_grad_norm(const ft_model_t *f) {
    double s = 0;
    const float *g = f->m.grads;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (long i = 0; i < f->n_enc; i++) s += (double)g[i] * g[i];
    for (long i = 0; i < f->nhead; i++) s += (double)f->ghead[i] * f->ghead[i];
    return sqrt(s);
}

void ft_scale_grads(ft_model_t *f, float c) {
    float *g = f->m.grads;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < f->n_enc; i++) g[i] *= c;
    for (long i = 0; i < f->nhead; i++) f->ghead[i] *= c;
}

double ft_lr_scale(const ft_model_t *f, int k, double layer_decay) {
    int depth = f->m.cfg.depth, layer = depth + 1;     /* fc_norm and head */
    if (k >= 0) {
        const char *name = f->m.info[k].name;
        layer = strncmp(name, "blocks.", 7) == 0 ? atoi(name + 7) + 1 : 0;   /* cls_token, patch_embed: 0 */
    }
    return pow(layer_decay, depth + 1 - layer);
}

/* AdamW on n floats at p with torch's update; lr already scaled. */
static void adamw_span(float *p, const float *g, float *mm, float *vv, long n, double lr, double wd, const ft_optim_t *o,
                       long t) {
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    float step = (float)(lr / (1.0 - pow(o->beta1, (double)t)));
    float rbc2 = (float)(1.0 / sqrt(1.0 - pow(o->beta2, (double)t)));
    float decay = (float)(1.0 - lr * wd);
#pragma omp parallel for schedule(static) if (n > 16384)
    for (long i = 0; i < n; i++) {
        float gi = g[i];
        mm[i] = b1 * mm[i] + (1 - b1) * gi;
        vv[i] = b2 * vv[i] + (1 - b2) * gi * gi;
        p[i] = p[i] * decay - step * mm[i] / (sqrtf(vv[i]) * rbc2 + eps);
    }
}

void ft_adamw(ft_model_t *f, double lr, const ft_optim_t *o, long t) {
    model_t *m = &f->m;
    for (int k = 0; k < n_enc_tensors(f); k++) {
        const param_info_t *ti = &m->info[k];
        /* MAE: no decay on 1-D tensors, the cls token and the position table (not trained here) */
        double wd = ti->ndim >= 2 && strcmp(ti->name, "cls_token") ? o->weight_decay : 0.0;
        adamw_span(m->params + ti->offset, m->grads + ti->offset, m->m + ti->offset, m->v + ti->offset, ti->numel,
                   lr * ft_lr_scale(f, k, o->layer_decay), wd, o, t);
    }
    int D = m->D;
    long CD = (long)f->C * D;
    double s = ft_lr_scale(f, -1, o->layer_decay);
    adamw_span(f->head, f->ghead, f->mhead, f->vhead, 2L * D, lr * s, 0.0, o, t);                       /* fc_norm */
    adamw_span(f->head + 2 * D, f->ghead + 2 * D, f->mhead + 2 * D, f->vhead + 2 * D, CD, lr * s, o->weight_decay, o, t);
    adamw_span(f->head + 2 * D + CD, f->ghead + 2 * D + CD, f->mhead + 2 * D + CD, f->vhead + 2 * D + CD, f->C, lr * s,
               0.0, o, t);
}

void ft_top5(const ft_model_t *f, int32_t *pred5) {
    for (int b = 0; b < f->Bcur; b++) top5_classes(NULL, f->logits + (long)b * f->C, f->C, pred5 + (long)b * 5);
}

/* ------------------------------------------------------------------------- checkpoints */

#define FT_MAGIC "SEMAIMFT"
#define FT_VERSION 1u

typedef struct {
    char magic[8];
    uint32_t version, header_bytes;
    int32_t cfg[6];            /* image, patch, width, depth, dec_depth (always 1), heads */
    int32_t classes, pad;
    int64_t n_enc, nhead;
    ckpt_state_t st;
    uint64_t payload_bytes;
    uint32_t payload_crc, header_crc;   /* header_crc covers everything before it */
} ft_header_t;

static void pack_cfg(const semaim_config_t *c, int32_t *o) {
    o[0] = c->image; o[1] = c->patch; o[2] = c->width; o[3] = c->depth; o[4] = c->dec_depth; o[5] = c->heads;
}

/* The six payload spans in file order. */
static void spans(const ft_model_t *f, span_t *s) {
    float *p[6] = {f->m.params, f->head, f->m.m, f->mhead, f->m.v, f->vhead};
    for (int i = 0; i < 6; i++) s[i] = (span_t){p[i], sizeof(float) * (size_t)(i % 2 ? f->nhead : f->n_enc)};
}

int ft_ckpt_save(const char *dir, const ft_model_t *f, const ckpt_state_t *st, int keep, char *err, size_t errlen) {
    ft_header_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, FT_MAGIC, 8);
    h.version = FT_VERSION; h.header_bytes = sizeof h;
    pack_cfg(&f->m.cfg, h.cfg);
    h.classes = f->C; h.n_enc = f->n_enc; h.nhead = f->nhead; h.st = *st;
    h.payload_bytes = 3 * sizeof(float) * (uint64_t)(f->n_enc + f->nhead);
    span_t sp[7];
    sp[0] = (span_t){&h, sizeof h};
    spans(f, sp + 1);
    h.payload_crc = crc32_spans(sp + 1, 6);
    h.header_crc = (uint32_t)crc32(0L, (const Bytef *)&h, offsetof(ft_header_t, header_crc));
    return stepfile_write(dir, "ft-", st->step, sp, 7, keep, err, errlen);
}

int ft_ckpt_load(const char *path, ft_model_t *f, ckpt_state_t *st, char *err, size_t errlen) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)); return -1; }
    ft_header_t h;
    int32_t cfg[6];
    pack_cfg(&f->m.cfg, cfg);
    int rc = -1;
    if (fread(&h, sizeof h, 1, fp) != 1) snprintf(err, errlen, "%s: truncated header", path);
    else if (memcmp(h.magic, FT_MAGIC, 8)) snprintf(err, errlen, "%s: not a semaim fine-tuning checkpoint (bad magic)", path);
    else if (h.version != FT_VERSION || h.header_bytes != sizeof h)
        snprintf(err, errlen, "%s: fine-tuning checkpoint version %u is not supported (this build reads %u)", path,
                 h.version, FT_VERSION);
    else if (h.header_crc != (uint32_t)crc32(0L, (const Bytef *)&h, offsetof(ft_header_t, header_crc)))
        snprintf(err, errlen, "%s: header CRC mismatch (corrupt)", path);
    else if (memcmp(cfg, h.cfg, sizeof cfg) || h.classes != f->C || h.n_enc != f->n_enc || h.nhead != f->nhead)
        snprintf(err, errlen, "%s: checkpoint is for another model (image %d patch %d width %d depth %d heads %d, %d classes)",
                 path, h.cfg[0], h.cfg[1], h.cfg[2], h.cfg[3], h.cfg[5], h.classes);
    else {
        span_t sp[6];
        spans(f, sp);
        if (stepfile_read_payload(fp, path, sp, 6, h.payload_crc, err, errlen) == 0) { *st = h.st; rc = 0; }
    }
    fclose(fp);
    return rc;
}

typedef struct { ft_model_t *f; ckpt_state_t *st; } load_ctx_t;
static int load_one(const char *path, void *ctx, char *err, size_t errlen) {
    load_ctx_t *c = ctx;
    return ft_ckpt_load(path, c->f, c->st, err, errlen);
}

int ft_ckpt_load_latest(const char *dir, ft_model_t *f, ckpt_state_t *st, char *path_out, size_t pathlen, char *err,
                        size_t errlen) {
    load_ctx_t c = {f, st};
    return stepfile_load_latest(dir, "ft-", "fine-tuning checkpoint", load_one, &c, path_out, pathlen, err, errlen);
}
