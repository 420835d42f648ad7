/* The SemAIM network: embedding, the two interleaved streams, head and loss (SPEC §2–3).
 *
 * The training pass runs every image in its own prediction order: token position 1+k holds
 * the patch predicted k-th. The SemAIM rank masks then become causal masks on positions
 * (ATTN_CAUSAL for the content stream, ATTN_CAUSAL_STRICT for the query stream), so no mask
 * is ever stored and attention skips the masked half. Every per-token op is indifferent to
 * the order, and the targets are gathered in the same order, so the loss is unchanged. */
#include <math.h>
#include <string.h>
#include "model/acts.h"
#include "model/blocks.h"
#include "kernels/ops.h"

static block_scratch_t scratch_of(acts_t *a) {
    block_scratch_t s = {a->dD1, a->dD2, a->d3D, a->dF1, a->dF2, a->att_scratch};
    return s;
}

/* h0 rows: cls + pos0, then embed(patch) + pos of that patch, in the order of perm
 * (perm NULL: natural order). patches must already be in that order. */
static void embed_forward(model_t *m, acts_t *a, const float *patches, const int *perm, int B, float *h0) {
    int L = m->L, T = m->T, D = m->D;
    linear_forward(a->emb, patches, m->p.patch_w, m->p.patch_b, (long)B * L, m->PD, D);
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * T; r++) {
        int b = (int)(r / T), t = (int)(r % T);
        float *o = h0 + r * D;
        if (t == 0) {
            for (int d = 0; d < D; d++) o[d] = m->p.cls_token[d] + m->pos_embed[d];
        } else {
            int p = perm ? perm[(long)b * L + t - 1] : t - 1;
            const float *e = a->emb + ((long)b * L + t - 1) * D, *pe = m->pos_embed + (long)(1 + p) * D;
            for (int d = 0; d < D; d++) o[d] = e[d] + pe[d];
        }
    }
}

/* Gathers rows of src [B,L,C] into dst in the order perm. */
static void gather_rows(float *dst, const float *src, const int *perm, int B, int L, int C) {
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * L; r++) {
        long b = r / L;
        memcpy(dst + r * C, src + (b * L + perm[r]) * (long)C, sizeof(float) * C);
    }
}

const float *encoder_forward_full(model_t *m, acts_t *a, const float *images, int B) {
    int T = m->T, D = m->D;
    long BTD = (long)B * T * D;
    acts_check_batch(a, B);
    patchify(a->patches_nat, images, B, m->cfg.image, m->cfg.image, m->cfg.patch, PATCH_CPP);
    /* Nothing is kept for backward: block 0's buffers serve every block, and the stream
     * ping-pongs between the first two snapshots. */
    float *x = a->h, *y = a->h + BTD;
    embed_forward(m, a, a->patches_nat, NULL, B, x);
    for (int i = 0; i < m->cfg.depth; i++) {
        enc_block_forward(y, &a->enc[0], x, &m->p.enc[i], B, T, D, m->NH, ATTN_FULL);
        float *t = x; x = y; y = t;
    }
    layernorm_forward(a->norm, a->norm_mean, a->norm_rstd, x, m->p.norm_w, m->p.norm_b, (long)B * T, D);
    a->Bcur = 0;   /* the training-pass activations are no longer valid */
    return a->norm;
}

void encoder_features(model_t *m, acts_t *a, const float *images, int B, float *cls_out, float *mean_out) {
    const float *tok = encoder_forward_full(m, a, images, B);
    int T = m->T, D = m->D;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *t = tok + (long)b * T * D;
        if (cls_out) memcpy(cls_out + (long)b * D, t, sizeof(float) * D);
        if (mean_out) {
            for (int d = 0; d < D; d++) {
                double s = 0;
                for (int p = 1; p < T; p++) s += t[(long)p * D + d];
                mean_out[(long)b * D + d] = (float)(s / (T - 1));
            }
        }
    }
}

float semaim_forward(model_t *m, acts_t *a, const float *images, const int *ranks, int B) {
    int L = m->L, T = m->T, D = m->D, NH = m->NH, P = m->cfg.patch, PD = m->PD;
    long BT = (long)B * T, BTD = BT * D;
    acts_check_batch(a, B);
    /* ranks → perm: position k of image b holds the patch of rank k. */
    for (long b = 0; b < B; b++)
        for (int p = 0; p < L; p++) a->perm[b * L + ranks[b * L + p]] = p;
    patchify(a->patches_nat, images, B, m->cfg.image, m->cfg.image, P, PATCH_CPP);
    gather_rows(a->patches, a->patches_nat, a->perm, B, L, PD);
    pixel_target(a->target_nat, a->target_scratch, images, B, m->cfg.image, m->cfg.image, P);
    gather_rows(a->target, a->target_nat, a->perm, B, L, PD);

    embed_forward(m, a, a->patches, a->perm, B, a->h);
    float *g0 = a->g;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < BT; r++) {
        int b = (int)(r / T), t = (int)(r % T);
        int row = t == 0 ? 0 : 1 + a->perm[(long)b * L + t - 1];
        memcpy(g0 + r * D, m->pos_embed + (long)row * D, sizeof(float) * D);
    }
    for (int i = 0; i < m->cfg.depth; i++) {
        enc_block_forward(a->h + (i + 1) * BTD, &a->enc[i], a->h + i * BTD, &m->p.enc[i], B, T, D, NH, ATTN_CAUSAL);
        if ((i + 1) % m->step == 0) {
            int j = i / m->step;
            dec_block_forward(a->g + (j + 1) * BTD, &a->dec[j], a->g + j * BTD, a->h + (i + 1) * BTD,
                              &m->p.dec[j], B, T, D, NH, ATTN_CAUSAL_STRICT);
        }
    }
    const float *gL = a->g + (long)m->cfg.dec_depth * BTD;
    layernorm_forward(a->norm, a->norm_mean, a->norm_rstd, gL, m->p.norm_w, m->p.norm_b, BT, D);
    linear_forward(a->head_fc1, a->norm, m->p.head1_w, m->p.head1_b, BT, D, 4 * D);
    gelu_forward(a->head_gelu, a->head_fc1, BT * 4 * D);
    linear_forward(a->pred, a->head_gelu, m->p.head2_w, m->p.head2_b, BT, 4 * D, PD);
    /* The cls row of each image predicts nothing. */
    double loss = 0;
    for (long b = 0; b < B; b++)
        loss += mse_forward(a->pred + (b * T + 1) * PD, a->target + b * L * PD, (long)L * PD);
    a->Bcur = B;
    return (float)(loss / B);
}

const float *semaim_predictions(const acts_t *a) { return a->pred; }

void semaim_backward(model_t *m, acts_t *a) {
    int B = a->Bcur, L = m->L, T = m->T, D = m->D, NH = m->NH, PD = m->PD;
    long BT = (long)B * T, BTD = BT * D;
    block_scratch_t sc = scratch_of(a);
    memset(a->dpred, 0, sizeof(float) * BT * PD);
    for (long b = 0; b < B; b++)
        mse_backward(a->dpred + (b * T + 1) * PD, a->pred + (b * T + 1) * PD, a->target + b * L * PD,
                     (long)L * PD, 1.0f / B);
    memset(a->dF1, 0, sizeof(float) * BT * 4 * D);
    linear_backward(a->dF1, m->g.head2_w, m->g.head2_b, a->dpred, a->head_gelu, m->p.head2_w, BT, 4 * D, PD);
    memset(a->dF2, 0, sizeof(float) * BT * 4 * D);
    gelu_backward(a->dF2, a->dF1, a->head_fc1, BT * 4 * D);
    memset(a->dD1, 0, sizeof(float) * BTD);
    linear_backward(a->dD1, m->g.head1_w, m->g.head1_b, a->dF2, a->norm, m->p.head1_w, BT, D, 4 * D);
    memset(a->dres_g, 0, sizeof(float) * BTD);
    layernorm_backward(a->dres_g, m->g.norm_w, m->g.norm_b, a->dD1, a->g + (long)m->cfg.dec_depth * BTD,
                       m->p.norm_w, a->norm_mean, a->norm_rstd, BT, D);

    /* dres_h is the gradient of h after encoder block i; the decoder that read that h adds
     * to it before the encoder block is undone. */
    memset(a->dres_h, 0, sizeof(float) * BTD);
    for (int i = m->cfg.depth - 1; i >= 0; i--) {
        if ((i + 1) % m->step == 0) {
            int j = i / m->step;
            dec_block_backward(a->dres_g, a->dres_h, &m->g.dec[j], &a->dec[j], a->g + j * BTD, a->h + (i + 1) * BTD,
                               &m->p.dec[j], &sc, B, T, D, NH, ATTN_CAUSAL_STRICT);
        }
        enc_block_backward(a->dres_h, &m->g.enc[i], &a->enc[i], a->h + i * BTD, &m->p.enc[i], &sc, B, T, D, NH,
                           ATTN_CAUSAL);
    }
    /* Embedding: cls gets the cls rows, the patch embed the others (no gradient to pixels). */
    for (long b = 0; b < B; b++) {
        const float *d = a->dres_h + b * T * D;
        for (int k = 0; k < D; k++) m->g.cls_token[k] += d[k];
        memcpy(a->emb + b * L * D, d + D, sizeof(float) * L * D);
    }
    linear_backward(NULL, m->g.patch_w, m->g.patch_b, a->emb, a->patches, m->p.patch_w, (long)B * L, PD, D);
}
