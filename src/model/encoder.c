/* The forward-only encoder: permutation pass and evaluation features (semaim/encoder.h). */
#include <math.h>
#include <string.h>
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "model/blocks.h"
#include "semaim/encoder.h"

/* Encoder + final norm; *pre (may be NULL) receives the stream before the norm [B,T,D]. */
static const float *encoder_pass(model_t *m, acts_t *a, const float *images, int B, const float **pre) {
    acts_check(a, B, ACTS_ENCODER);
    a->encoder_passes++;
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
    a->holds = HOLDS_ENCODER_PASS;   /* the training-pass activations are no longer valid */
    if (pre) *pre = x;
    return a->tok;
}

const float *encoder_forward_full(model_t *m, acts_t *a, const float *images, int B) {
    return encoder_pass(m, a, images, B, NULL);
}

void encoder_features(model_t *m, acts_t *a, const float *images, int B, float *cls_out, float *mean_out,
                      float *gap_out) {
    const float *pre;
    const float *tok = encoder_pass(m, a, images, B, &pre);
    int T = m->d.T, D = m->d.D;
    if (cls_out)
        for (int b = 0; b < B; b++) memcpy(cls_out + (long)b * D, tok + (long)b * T * D, sizeof(float) * D);
    if (mean_out) pool_patch_tokens(mean_out, tok, B, T, D);
    if (gap_out) {
        pool_patch_tokens(a->pool, pre, B, T, D);
        layernorm_forward(gap_out, 0, a->fcn_mean, a->fcn_rstd, a->pool, NULL, NULL, B, D);
    }
}

/* sim[b·L + p] = cos(ref_b, tok_b,1+p) in double; ref_b at ref + b·ref_stride. */
static void cosine_to_patches(float *sim, const float *ref, long ref_stride, const float *tok, int B, int T, int D) {
    const int L = T - 1;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * L; r++) {
        long b = r / L, p = r % L;
        const float *c = ref + b * ref_stride, *t = tok + (b * T + 1 + p) * D;
        double dot = 0, nc = 0, nt = 0;
        for (int d = 0; d < D; d++) { dot += (double)c[d] * t[d]; nc += (double)c[d] * c[d]; nt += (double)t[d] * t[d]; }
        sim[r] = (float)(dot / (fmax(sqrt(nc), 1e-12) * fmax(sqrt(nt), 1e-12)));
    }
}

/* The cls or gap signal of tokens tok [B,T,W] into a->sim. */
static const float *token_signal(acts_t *a, int signal, const float *tok, int B, int T, int W) {
    if (signal == SIGNAL_GAP) {
        pool_patch_tokens(a->pool, tok, B, T, W);
        cosine_to_patches(a->sim, a->pool, W, tok, B, T, W);
    } else {
        cosine_to_patches(a->sim, tok, (long)T * W, tok, B, T, W);
    }
    return a->sim;
}

/* The signal of m->tgt.signal from the tokens and attention the last encoder pass left in a. */
static const float *pass_signal(const model_t *m, acts_t *a, int B) {
    ERR_ASSERT(a->holds == HOLDS_ENCODER_PASS, "an order signal without an encoder pass (another pass overwrote it)");
    const int T = m->d.T, L = m->d.L, NH = m->d.NH;
    if (m->tgt.signal != SIGNAL_SELF) return token_signal(a, m->tgt.signal, a->tok, B, T, m->d.D);
    /* Block 0's buffers served every block of the pass, so its saved probabilities
     * [B,NH,T,T] are the last block's; the cls query is row 0 of each head. */
    float *sim = a->sim;
    const void *att = a->enc[0].att;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * L; r++) {
        long b = r / L, p = r % L;
        double s = 0;
        for (int h = 0; h < NH; h++) {
            long i = ((b * NH + h) * T) * T + 1 + p;
            s += a->bf16 ? bf16_to_f32_one(((const bf16_t *)att)[i]) : ((const float *)att)[i];
        }
        sim[r] = (float)(s / NH);
    }
    return sim;
}

const float *encoder_order_signal(model_t *m, acts_t *a, const float *images, int B) {
    encoder_pass(m, a, images, B, NULL);
    return pass_signal(m, a, B);
}


const float *encoder_target_tokens(model_t *src, acts_t *a, const float *images, int B) {
    return encoder_pass(src, a, images, B, NULL);
}

const float *tokens_order_signal(const model_t *m, acts_t *a, const float *tok, int W, int B) {
    acts_check(a, B, ACTS_PRETRAIN);
    ERR_ASSERT(m->tgt.signal != SIGNAL_SELF, "the self signal needs an encoder pass's attention, not tokens");
    ERR_ASSERT(W <= m->d.D || W <= a->out, "tokens of width %d wider than the arena's pool", W);
    return token_signal(a, m->tgt.signal, tok, B, m->d.T, W);
}

void compute_order_from_tokens(model_t *m, acts_t *a, order_t o, const float *tok, int W, const float *noise, int B,
                               int *ranks, int *center_out) {
    const float *sim = order_uses_model(o) ? tokens_order_signal(m, a, tok, W, B) : NULL;
    order_from_scores(o, m->d.G, sim, noise, B, ranks, center_out, a->order_scratch);
}

void compute_order_from_pass(model_t *m, acts_t *a, order_t o, const float *noise, int B, int *ranks, int *center_out) {
    acts_check(a, B, ACTS_ENCODER);
    const float *sim = order_uses_model(o) ? pass_signal(m, a, B) : NULL;
    order_from_scores(o, m->d.G, sim, noise, B, ranks, center_out, a->order_scratch);
}

void compute_order(model_t *m, acts_t *a, order_t o, const float *images, const float *noise, int B, int *ranks,
                   int *center_out) {
    acts_check(a, B, ACTS_ENCODER);
    if (order_uses_model(o)) encoder_pass(m, a, images, B, NULL);
    compute_order_from_pass(m, a, o, noise, B, ranks, center_out);
}
