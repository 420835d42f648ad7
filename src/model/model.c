/* The SemAIM network: embedding, the two interleaved streams, head and loss (SPEC §2–3).
 *
 * The training pass runs every image in its own prediction order: token position 1+k holds
 * the patch predicted k-th. The SemAIM rank masks then become causal masks on positions
 * (ATTN_CAUSAL for the content stream, ATTN_CAUSAL_STRICT for the query stream), so no mask
 * is ever stored and attention skips the masked half. Every per-token op is indifferent to
 * the order, and the targets are gathered in the same order, so the loss is unchanged. */
#include <math.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include "kernels/ops.h"
#include "model/blocks.h"
#include "model/table.h"
#include "semaim/teacher.h"

/* ranks → perm: position k of image b holds the patch of rank k. */
static void perm_of_ranks(int *perm, const int *ranks, int B, int L) {
    for (long b = 0; b < B; b++)
        for (int p = 0; p < L; p++) perm[b * L + ranks[b * L + p]] = p;
}

void semaim_feature_targets(model_t *m, acts_t *a, const float *tok, const int *ranks, int B) {
    acts_check(a, B, ACTS_PRETRAIN);
    ERR_ASSERT(target_is_feature(&m->tgt) && a->out == m->out, "semaim_feature_targets: the model has %s target of width %d, "
               "its arena a head of width %d", target_kind_name(m->tgt.kind), m->out, a->out);
    perm_of_ranks(a->perm, ranks, B, m->d.L);
    teacher_patch_targets(a->target, tok, a->perm, B, m->d.L, m->out);
    a->targets_for = B;
}

float semaim_forward(model_t *m, acts_t *a, const float *images, const int *ranks, int B) {
    int L = m->d.L, T = m->d.T, D = m->d.D, P = m->cfg.patch, O = m->out;
    long BT = (long)B * T, BTD = BT * D;
    acts_check(a, B, ACTS_PRETRAIN);
    ERR_ASSERT(a->out == O, "a prediction head of width %d with an arena made for width %d", O, a->out);
    pass_t ps = pass_of(a, &m->w);
    const int feat = target_is_feature(&m->tgt);
    ERR_ASSERT(!feat || a->targets_for == B, "semaim_forward with a %s target and no targets: call "
               "semaim_feature_targets first", target_kind_name(m->tgt.kind));
    a->targets_for = 0;
    perm_of_ranks(a->perm, ranks, B, L);
    /* patches and targets straight into prediction order */
    patchify(a->patches, a->bf16, images, a->perm, B, m->cfg.image, m->cfg.image, P, PATCH_CPP);
    if (!feat)
        pixel_target(a->target, a->target_scratch, images, a->perm, B, m->cfg.image, m->cfg.image, P, m->tgt.blur_k,
                     m->tgt.blur_sigma, m->tgt.norm_pix);

    embed_forward(a->h, a->perm, &m->p.e, m->pos_embed, &ps, B);
    float *g0 = a->g;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < BT; r++) {
        int b = (int)(r / T), t = (int)(r % T);
        int row = t == 0 ? 0 : 1 + a->perm[(long)b * L + t - 1];
        memcpy(g0 + r * D, m->pos_embed + (long)row * D, sizeof(float) * D);
    }
    for (int i = 0; i < m->cfg.depth; i++) {
        enc_block_forward(a->h + (i + 1) * BTD, &a->enc[i], a->h + i * BTD, &m->p.e.blk[i], &ps, &a->pl.enc, B, NULL, NULL);
        if ((i + 1) % m->interleave == 0) {
            int j = i / m->interleave;
            dec_block_forward(a->g + (j + 1) * BTD, &a->dec[j], a->g + j * BTD, a->h + (i + 1) * BTD, &m->p.dec[j], &ps, B);
        }
    }
    const float *gL = a->g + (long)m->cfg.dec_depth * BTD;
    layernorm_forward(a->norm, a->bf16, a->norm_mean, a->norm_rstd, gL, m->p.norm_w, m->p.norm_b, BT, D);
    linear_forward(a->head_fc1, a->norm, pass_w(&ps, m->p.head1_w), NULL, NULL, BT, D, 4 * D, &a->pl.fc1, &a->ws);
    bias_gelu_forward(a->head_gelu, a->bf16, a->head_fc1, m->p.head1_b, BT, 4 * D);
    linear_forward(a->pred, a->head_gelu, pass_w(&ps, m->p.head2_w), m->p.head2_b, NULL, BT, 4 * D, O, &a->pl.head2, &a->ws);
    /* The cls row of each image predicts nothing. */
    double (*lossf)(const float *, const float *, long) = m->tgt.loss == LOSS_L1 ? l1_forward : mse_forward;
    double loss = 0;
    for (long b = 0; b < B; b++)
        loss += feat ? featloss_forward(a->pred + (b * T + 1) * O, a->target + b * L * O, L, O)
                     : lossf(a->pred + (b * T + 1) * O, a->target + b * L * O, (long)L * O);
    a->Bcur = B;
    a->holds = HOLDS_PRETRAIN_FWD;
    return (float)(loss / B);
}

const float *semaim_predictions(const acts_t *a) { return a->pred; }

void semaim_backward(model_t *m, acts_t *a) {
    ERR_ASSERT(a->holds == HOLDS_PRETRAIN_FWD,
               "semaim_backward without a training forward: call semaim_forward first (a permutation or feature "
               "pass since then overwrote its activations)");
    int B = a->Bcur, L = m->d.L, T = m->d.T, D = m->d.D, O = m->out;
    long BT = (long)B * T, BTD = BT * D;
    pass_t ps = pass_of(a, &m->w);
    memset(a->dpred, 0, sizeof(float) * BT * O);
    void (*lossb)(float *, const float *, const float *, long, float) = m->tgt.loss == LOSS_L1 ? l1_backward : mse_backward;
    const int feat = target_is_feature(&m->tgt);
    for (long b = 0; b < B; b++) {
        float *dp = a->dpred + (b * T + 1) * O;
        const float *pr = a->pred + (b * T + 1) * O, *tg = a->target + b * L * O;
        if (feat) featloss_backward(dp, pr, tg, L, O, 1.0f / B);
        else lossb(dp, pr, tg, (long)L * O, 1.0f / B);
    }
    linear_backward(a->dF1, m->g.head2_w, m->g.head2_b, a->dpred, a->head_gelu, pass_w(&ps, m->p.head2_w), BT, 4 * D, O,
                    &a->pl.head2, &a->ws);
    gelu_backward_inplace(a->dF1, a->head_fc1, BT * 4 * D);
    linear_backward(a->dD1, m->g.head1_w, m->g.head1_b, a->dF1, a->norm, pass_w(&ps, m->p.head1_w), BT, D, 4 * D,
                    &a->pl.fc1, &a->ws);
    memset(a->dres_g, 0, sizeof(float) * BTD);
    layernorm_backward(a->dres_g, m->g.norm_w, m->g.norm_b, a->dD1, a->g + (long)m->cfg.dec_depth * BTD,
                       m->p.norm_w, a->norm_mean, a->norm_rstd, BT, D);

    /* dres_h is the gradient of h after encoder block i; the decoder that read that h adds
     * to it before the encoder block is undone. */
    memset(a->dres_h, 0, sizeof(float) * BTD);
    for (int i = m->cfg.depth - 1; i >= 0; i--) {
        if ((i + 1) % m->interleave == 0) {
            int j = i / m->interleave;
            dec_block_backward(a->dres_g, a->dres_h, &m->g.dec[j], &a->dec[j], a->g + j * BTD, a->h + (i + 1) * BTD,
                               &m->p.dec[j], &ps, B);
        }
        enc_block_backward(a->dres_h, &m->g.e.blk[i], &a->enc[i], a->h + i * BTD, &m->p.e.blk[i], &ps, &a->pl.enc, B,
                           NULL, NULL);
    }
    embed_backward(&m->g.e, a->dres_h, &m->p.e, &ps, B);
}

/* ------------------------------------------------------------------ the table and its views */

/* What the table depends on: the sizes and the head's outputs. */
typedef struct { const semaim_config_t *c; int out; } shape_t;

/* Every tensor in buffer order (model_views walks the same order). */
static void list_tensors(table_t *t, const void *ctx) {
    const shape_t *sh = ctx;
    const semaim_config_t *c = sh->c;
    int D = c->width;
    char blk[PARAM_NAME_MAX - 16], n[PARAM_NAME_MAX];
    table_encoder(t, c);
    for (int i = 0; i < c->dec_depth; i++) {
        snprintf(blk, sizeof blk, "query_blocks.%d", i);
        snprintf(n, sizeof n, "%s.norm1", blk); table_norm(t, D, n);
        const char *proj[4] = {"q", "k", "v", "proj"};
        for (int j = 0; j < 4; j++) { snprintf(n, sizeof n, "%s.attn.%s", blk, proj[j]); table_linear(t, D, D, n); }
        table_mlp(t, D, blk);
    }
    table_norm(t, D, "norm");
    table_linear(t, D, 4 * D, "prediction_head.fc1");
    table_linear(t, 4 * D, sh->out, "prediction_head.fc2");
}

void model_views(const model_t *m, float *base, views_t *v) {
    const param_info_t *t = m->w.info;
    int k = 0;
    encoder_views(&m->w, base, &k, m->cfg.depth, &v->e);
#define NEXT (base + t[k++].offset)
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

int model_init(model_t *m, const semaim_config_t *cfg, uint64_t seed, err_t *err) {
    return model_init_target(m, cfg, NULL, seed, err);
}

int model_init_target(model_t *m, const semaim_config_t *cfg, const target_cfg_t *tgt, uint64_t seed, err_t *err) {
    memset(m, 0, sizeof *m);
    if (config_validate(cfg, -1, err)) return -1;
    m->cfg = *cfg;
    m->tgt = tgt ? *tgt : target_defaults();
    m->out = target_head_width(&m->tgt, cfg);
    if (m->out < 1 || m->out > 65536)
        return err_set(err, ERR_INPUT, "prediction head width %d out of range (target %s)", m->out,
                       target_kind_name(m->tgt.kind));
    m->d = cfg_dims(cfg);
    m->interleave = cfg_interleave(cfg);
    shape_t sh = {cfg, m->out};
    if (params_build(&m->w, list_tensors, &sh, seed, err)) return -1;
    m->p.e.blk = calloc((size_t)cfg->depth, sizeof(enc_block_t));
    m->g.e.blk = calloc((size_t)cfg->depth, sizeof(enc_block_t));
    m->p.dec = calloc((size_t)cfg->dec_depth, sizeof(dec_block_t));
    m->g.dec = calloc((size_t)cfg->dec_depth, sizeof(dec_block_t));
    m->pos_embed = malloc(sizeof(float) * (size_t)m->d.T * m->d.D);
    if (!m->p.e.blk || !m->g.e.blk || !m->p.dec || !m->g.dec || !m->pos_embed) {
        model_free(m);
        return err_set(err, ERR_RUNTIME, "out of memory allocating the model");
    }
    model_views(m, m->w.params, &m->p);
    model_views(m, m->w.grads, &m->g);
    pos_embed_sincos(m->pos_embed, m->d.G, m->d.D);
    return 0;
}

int model_shadow(model_t *s, const model_t *live, float *weights, err_t *err) {
    *s = *live;   /* whole, so a field added to model_t reaches the shadow without a line here */
    s->w = (params_t){.info = live->w.info, .ntensors = live->w.ntensors, .nparams = live->w.nparams,
                      .params = weights};
    memset(&s->g, 0, sizeof s->g);
    s->p.e.blk = calloc((size_t)s->cfg.depth, sizeof(enc_block_t));
    s->p.dec = calloc((size_t)s->cfg.dec_depth, sizeof(dec_block_t));
    if (!s->p.e.blk || !s->p.dec || params_add_half(&s->w)) {
        model_shadow_free(s);
        return err_set(err, ERR_RUNTIME, "out of memory for a shadow of the model");
    }
    model_views(s, weights, &s->p);
    params_sync_half(&s->w);
    return 0;
}

void model_shadow_free(model_t *s) {
    free(s->p.e.blk);
    free(s->p.dec);
    free(s->w.half);
    memset(s, 0, sizeof *s);
}

void model_free(model_t *m) {
    params_free(&m->w);
    free(m->p.e.blk); free(m->g.e.blk); free(m->p.dec); free(m->g.dec); free(m->pos_embed);
    memset(m, 0, sizeof *m);
}

double semaim_flops_per_image(const model_t *m, int passes) {
    /* SPEC §6: per token per block 12·D² + 2·T·D multiply-adds; 2 FLOP each. */
    double D = m->d.D, T = m->d.T;
    double block = T * (12 * D * D + 2 * T * D);
    double embed = m->d.L * (double)m->d.PD * D;
    double head = T * (4 * D * D + 4 * D * m->out);
    double fwd = embed + (m->cfg.depth + m->cfg.dec_depth) * block + head;
    double perm = embed + m->cfg.depth * block;
    return 2.0 * (3.0 * fwd + passes * perm);
}
