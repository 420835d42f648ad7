/* The forward-only encoder: permutation pass and evaluation features (semaim/encoder.h). */
#include <math.h>
#include <string.h>
#include "kernels/ops.h"
#include "model/blocks.h"
#include "semaim/encoder.h"

const float *encoder_forward_full(model_t *m, acts_t *a, const float *images, int B) {
    acts_check(a, B, ACTS_ENCODER);
    int T = m->d.T, D = m->d.D;
    long BTD = (long)B * T * D;
    pass_t ps = pass_of(a, &m->w);
    patchify(a->patches, a->bf16, images, NULL, B, m->cfg.image, m->cfg.image, m->cfg.patch, PATCH_CPP);
    /* Nothing is kept for backward: block 0's buffers serve every block, and the stream
     * ping-pongs between the first two snapshots. */
    float *x = a->h, *y = a->h + BTD;
    embed_forward(x, NULL, &m->p.e, m->pos_embed, &ps, B);
    for (int i = 0; i < m->cfg.depth; i++) {
        enc_block_forward(y, &a->enc[0], x, &m->p.e.blk[i], &ps, &a->pl.full, B, NULL, NULL);
        float *t = x; x = y; y = t;
    }
    /* f32 whatever the precision: features and the semantic order read it, not a GEMM */
    layernorm_forward(a->tok, 0, a->norm_mean, a->norm_rstd, x, m->p.norm_w, m->p.norm_b, (long)B * T, D);
    a->holds = HOLDS_NOTHING;   /* the training-pass activations are no longer valid */
    return a->tok;
}

void encoder_features(model_t *m, acts_t *a, const float *images, int B, float *cls_out, float *mean_out) {
    const float *tok = encoder_forward_full(m, a, images, B);
    int T = m->d.T, D = m->d.D;
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

void compute_order(model_t *m, acts_t *a, order_t o, const float *images, const float *noise, int B, int *ranks,
                   int *center_out) {
    acts_check(a, B, ACTS_ENCODER);
    float *sim = NULL;
    if (order_uses_model(o)) {
        const float *tok = encoder_forward_full(m, a, images, B);
        int T = m->d.T, D = m->d.D, L = m->d.L;
        sim = a->sim;
        /* cosine similarity of the cls token to each patch token */
#pragma omp parallel for schedule(static)
        for (long r = 0; r < (long)B * L; r++) {
            long b = r / L, p = r % L;
            const float *c = tok + b * T * D, *t = tok + (b * T + 1 + p) * D;
            double dot = 0, nc = 0, nt = 0;
            for (int d = 0; d < D; d++) { dot += (double)c[d] * t[d]; nc += (double)c[d] * c[d]; nt += (double)t[d] * t[d]; }
            sim[r] = (float)(dot / (fmax(sqrt(nc), 1e-12) * fmax(sqrt(nt), 1e-12)));
        }
    }
    order_from_scores(o, m->d.G, sim, noise, B, ranks, center_out, a->order_scratch);
}
