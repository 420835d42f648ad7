/* Model core: config validation, the parameter table, orders, the masks seen through the
 * whole network (causality), a directional finite-difference check of the full backward,
 * batch independence of the encoder features, the order signals (cls, gap, self) against
 * direct computations, and the optimiser's schedule/decay/clipping.
 * Numerical parity with PyTorch is in tests/t_parity.sh. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "kernels/ops.h"
#include "model/arena.h"
#include "semaim/encoder.h"
#include "semaim/finetune.h"
#include "semaim/model.h"
#include "semaim/train_step.h"
#include "semaim/optim.h"
#include "semaim/rng.h"

static void random_images(float *img, int n, uint64_t seed) {
    rng_t r = rng_make(rng_key(seed, 1, 2, 3, 4));
    for (int i = 0; i < n; i++) img[i] = 2 * rng_nextf(&r) - 1;
}

static void test_config(void) {
    test_begin("config_presets_and_validation");
    err_t err_v = {0}; char *err = err_v.msg;
    semaim_config_t c;
    const char *names[] = {"tiny", "small", "base", "large"};
    int widths[] = {192, 384, 768, 1024};
    for (int i = 0; i < 4; i++) {
        CHECK(config_preset(names[i], &c) == 0, "preset %s", names[i]);
        CHECK(c.width == widths[i] && c.image == 224 && c.patch == 16, "preset %s sizes", names[i]);
        CHECK(config_validate(&c, 32, &err_v) == 0, "preset %s invalid: %s", names[i], err);
    }
    CHECK(config_preset("large", &c) == 0 && cfg_interleave(&c) == 2, "large has step 2");
    CHECK(config_preset("huge", &c) == -1, "unknown preset accepted");
    struct { semaim_config_t c; int batch; const char *needle; } bad[] = {
        {{32, 8, 66, 2, 2, 4}, 1, "divisible by heads"},
        {{32, 6, 64, 2, 2, 2}, 1, "does not divide image"},
        {{32, 8, 64, 3, 2, 2}, 1, "divisible by dec-depth"},
        {{0, 8, 64, 2, 2, 2}, 1, "image must be positive"},
        {{32, 8, -64, 2, 2, 2}, 1, "width must be positive"},
        {{32, 8, 64, 2, 0, 2}, 1, "dec-depth must be positive"},
        {{32, 8, 64, 2, 2, 2}, 0, "batch must be positive"},
        {{32, 8, 62, 2, 2, 2}, 1, "divisible by 4"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = config_validate(&bad[i].c, bad[i].batch, &err_v);
        CHECK(rc == -1 && strstr(err, bad[i].needle), "case %zu: rc %d err '%s'", i, rc, err);
    }
    test_end();
}

static void test_param_table(void) {
    test_begin("param_table_layout");
    semaim_config_t c;
    config_preset("tiny", &c);
    err_t err_v = {0}; char *err = err_v.msg;
    model_t m;
    CHECK(model_init(&m, &c, 1, &err_v) == 0, "init: %s", err);
    long D = 192, F = 768, PD = 768, expect = D + D * PD + D
        + 12 * (2 * D + 3 * D * D + 3 * D + D * D + D + 2 * D + F * D + F + D * F + D)
        + 12 * (2 * D + 4 * (D * D + D) + 2 * D + F * D + F + D * F + D)
        + 2 * D + F * D + F + PD * F + PD;
    CHECK(m.w.nparams == expect, "nparams %ld expected %ld", m.w.nparams, expect);
    long off = 0;
    for (int i = 0; i < m.w.ntensors; i++) {
        CHECK(m.w.info[i].offset == off, "tensor %s not contiguous", m.w.info[i].name);
        off += m.w.info[i].numel;
        CHECK(m.w.info[i].decay == (m.w.info[i].ndim >= 2), "decay flag of %s", m.w.info[i].name);
        for (int j = 0; j < i; j++) CHECK(strcmp(m.w.info[i].name, m.w.info[j].name), "duplicate %s", m.w.info[i].name);
    }
    const param_info_t *t = params_find(&m.w, "blocks.11.attn.qkv.weight");
    CHECK(t && t->shape[0] == 576 && t->shape[1] == 192, "qkv shape");
    CHECK(t && m.p.e.blk[11].qkv_w == m.w.params + t->offset, "qkv view");
    t = params_find(&m.w, "cls_token");
    CHECK(t && t->decay && t->ndim == 3, "cls_token decayed (ndim 3)");
    t = params_find(&m.w, "query_blocks.3.norm1.bias");
    CHECK(t && !t->decay && m.g.dec[3].ln1_b == m.w.grads + t->offset, "decoder views into grads");
    /* init statistics: xavier bound and LayerNorm ones */
    t = params_find(&m.w, "blocks.0.mlp.fc1.weight");
    float bound = sqrtf(6.0f / (768 + 192)), mx = 0;
    for (long i = 0; i < t->numel; i++) mx = fmaxf(mx, fabsf(m.w.params[t->offset + i]));
    CHECK(mx <= bound && mx > 0.95f * bound, "xavier max %g bound %g", mx, bound);
    CHECK(m.p.e.blk[0].ln1_w[5] == 1.0f && m.p.e.blk[0].ln1_b[5] == 0.0f, "LayerNorm init");
    /* pos embed: cls row zero; patch (r=1, c=2), k = 0 → sin(2), cos(2), sin(1), cos(1) */
    CHECK(m.pos_embed[0] == 0 && m.pos_embed[191] == 0, "cls row of pos_embed");
    const float *pe = m.pos_embed + (1 + 1 * 14 + 2) * 192;
    CHECK(fabsf(pe[0] - sinf(2)) < 1e-6 && fabsf(pe[48] - cosf(2)) < 1e-6 && fabsf(pe[96] - sinf(1)) < 1e-6 &&
              fabsf(pe[144] - cosf(1)) < 1e-6, "pos embed (1,2)");
    model_t m2;
    model_init(&m2, &c, 1, &err_v);
    CHECK(memcmp(m.w.params, m2.w.params, sizeof(float) * m.w.nparams) == 0, "same seed, same init");
    model_free(&m2);
    model_init(&m2, &c, 2, &err_v);
    CHECK(memcmp(m.w.params, m2.w.params, sizeof(float) * m.w.nparams) != 0, "other seed, other init");
    model_free(&m2);
    model_free(&m);
    test_end();
}

static int is_permutation(const int *r, int L) {
    int *seen = calloc(L, sizeof(int)), ok = 1;
    for (int p = 0; p < L; p++) {
        if (r[p] < 0 || r[p] >= L || seen[r[p]]) ok = 0;
        else seen[r[p]] = 1;
    }
    free(seen);
    return ok;
}

static void test_orders(void) {
    test_begin("orders_any_grid");
    int grids[] = {1, 2, 3, 7, 14, 15};
    for (size_t gi = 0; gi < sizeof grids / sizeof grids[0]; gi++) {
        int G = grids[gi], L = G * G, B = 3;
        float *sim = malloc(sizeof(float) * B * L), *noise = malloc(sizeof(float) * B * L);
        int *ranks = malloc(sizeof(int) * B * L), *ranks2 = malloc(sizeof(int) * B * L), center[3];
        void *scratch = malloc(order_scratch_bytes(B, L));
        rng_t r = rng_make(rng_key(7, G, 0, 0, 0));
        for (int i = 0; i < B * L; i++) { sim[i] = 2 * rng_nextf(&r) - 1; noise[i] = rng_nextf(&r); }
        for (int o = ORDER_SEMANTIC; o <= ORDER_CENTER; o++) {
            order_from_scores((order_t)o, G, sim, noise, B, ranks, center, scratch);
            for (int b = 0; b < B; b++) CHECK(is_permutation(ranks + b * L, L), "G %d order %d not a permutation", G, o);
            order_from_scores((order_t)o, G, sim, noise, B, ranks2, NULL, scratch);
            CHECK(!memcmp(ranks, ranks2, sizeof(int) * B * L), "G %d order %d not deterministic", G, o);
        }
        order_from_scores(ORDER_RASTER, G, NULL, noise, B, ranks, NULL, scratch);
        for (int p = 0; p < L; p++) CHECK(ranks[L + p] == p, "raster rank");
        order_from_scores(ORDER_SEMANTIC, G, sim, noise, B, ranks, center, scratch);
        for (int b = 0; b < B; b++) {
            int best = 0;
            for (int p = 1; p < L; p++) if (sim[b * L + p] > sim[b * L + best]) best = p;
            CHECK(center[b] == best, "G %d centre %d expected %d", G, center[b], best);
            CHECK(ranks[b * L + best] == 0, "centre predicted first");
            /* rings: distance to the centre never decreases along the order */
            int *at = malloc(sizeof(int) * L);
            for (int p = 0; p < L; p++) at[ranks[b * L + p]] = p;
            double prev = -1;
            for (int k = 0; k < L; k++) {
                int p = at[k];
                double d = hypot(p / G - best / G, p % G - best % G);
                CHECK(d >= prev - 1e-12, "ring order broken at k %d", k);
                prev = d;
            }
            free(at);
        }
        order_from_scores(ORDER_SIMILARITY, G, sim, noise, B, ranks, NULL, scratch);
        for (int b = 0; b < B; b++)
            for (int p = 0; p < L; p++)
                for (int q = 0; q < L; q++)
                    if (sim[b * L + p] > sim[b * L + q]) CHECK(ranks[b * L + p] < ranks[b * L + q], "similarity order");
        order_from_scores(ORDER_STOCHASTIC, G, sim, noise, B, ranks, NULL, scratch);
        for (int p = 0; p < L; p++)
            for (int q = 0; q < L; q++)
                if (noise[p] < noise[q]) CHECK(ranks[p] < ranks[q], "stochastic order");
        order_from_scores(ORDER_CENTER, G, sim, noise, B, ranks, NULL, scratch);
        if (G % 2 == 1) CHECK(ranks[(G / 2) * G + G / 2] == 0, "odd grid: centre patch first");
        free(sim); free(noise); free(ranks); free(ranks2); free(scratch);
    }
    test_end();
}

/* A small model where step 2 interleaving, several heads and 16 patches are exercised. */
static semaim_config_t small_cfg(void) { semaim_config_t c = {16, 4, 16, 2, 1, 2}; return c; }

static void test_causality(void) {
    test_begin("masks_causal_through_network");
    semaim_config_t c = small_cfg();
    err_t err_v = {0};
    model_t m;
    model_init(&m, &c, 3, &err_v);
    int B = 2, L = m.d.L, H = c.image, P = c.patch, PD = m.d.PD, T = m.d.T;
    acts_t *a = acts_create(&m.cfg, B, ACTS_PRETRAIN, 0, &err_v);
    float *img = malloc(sizeof(float) * B * 3 * H * H), *img2 = malloc(sizeof(float) * B * 3 * H * H);
    float *noise = malloc(sizeof(float) * B * L), *pred = malloc(sizeof(float) * B * T * PD);
    int *ranks = malloc(sizeof(int) * B * L);
    random_images(img, B * 3 * H * H, 5);
    random_images(noise, B * L, 6);
    for (int i = 0; i < B * L; i++) noise[i] = (noise[i] + 1) / 2;
    compute_order(&m, a, ORDER_STOCHASTIC, img, noise, B, ranks, NULL);
    semaim_forward(&m, a, img, ranks, B);
    /* pred rows are in prediction order: row 1+k of image b predicts the patch of rank k */
    memcpy(pred, semaim_predictions(a), sizeof(float) * B * T * PD);
    /* perturb the patch of rank k in image 0: predictions of ranks <= k must not move, and
     * some prediction after k must */
    int k = L / 2, target = -1;
    for (int p = 0; p < L; p++) if (ranks[p] == k) target = p;
    memcpy(img2, img, sizeof(float) * B * 3 * H * H);
    int pr = target / (H / P), pc = target % (H / P);
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < P; y++)
            for (int x = 0; x < P; x++) img2[(ch * H + pr * P + y) * H + pc * P + x] += 0.5f;
    semaim_forward(&m, a, img2, ranks, B);
    const float *pred2 = semaim_predictions(a);
    double before = 0, after = 0;
    for (int t = 1; t < T; t++)
        for (int e = 0; e < PD; e++) {
            double d = fabs(pred[t * PD + e] - pred2[t * PD + e]);
            if (t - 1 <= k) before = fmax(before, d); else after = fmax(after, d);
        }
    CHECK(before == 0.0, "prediction of rank <= %d moved by %g", k, before);
    CHECK(after > 1e-4, "later predictions did not move (%g)", after);
    double other = 0;
    for (long i = (long)T * PD; i < (long)B * T * PD; i++) other = fmax(other, fabs(pred[i] - pred2[i]));
    CHECK(other == 0.0, "image 1 changed by image 0's pixels (%g)", other);
    free(img); free(img2); free(noise); free(pred); free(ranks);
    acts_free(a);
    model_free(&m);
    test_end();
}

/* Directional derivative of the loss along a random direction in parameter space vs the
 * backward's gradient; central differences in float, so the tolerance is loose. The exact
 * per-tensor comparison is against PyTorch in float64 (tests/t_parity.sh). */
static void test_full_gradient_direction(int kind) {
    test_begin("full_backward_directional_fd_%s_target", target_kind_name(kind));
    semaim_config_t c = small_cfg();
    err_t err_v = {0};
    model_t m;
    target_cfg_t tg = target_defaults();
    tg.kind = kind;
    model_init_target(&m, &c, &tg, 4, &err_v);
    int B = 2, L = m.d.L, H = c.image;
    acts_t *a = acts_create(&m.cfg, B, ACTS_PRETRAIN, m.out, &err_v);
    /* a feature target is held fixed (no gradient flows into it): the tokens at the start */
    float *tok = kind != TARGET_PIXEL ? malloc(sizeof(float) * B * m.d.T * m.out) : NULL;
    float *img = malloc(sizeof(float) * B * 3 * H * H), *noise = malloc(sizeof(float) * B * L);
    float *dir = malloc(sizeof(float) * m.w.nparams), *p0 = malloc(sizeof(float) * m.w.nparams);
    int *ranks = malloc(sizeof(int) * B * L);
    random_images(img, B * 3 * H * H, 8);
    random_images(noise, B * L, 9);
    for (int i = 0; i < B * L; i++) noise[i] = (noise[i] + 1) / 2;
    compute_order(&m, a, ORDER_SEMANTIC, img, noise, B, ranks, NULL);
    if (tok) memcpy(tok, encoder_target_tokens(&m, a, img, B), sizeof(float) * B * m.d.T * m.out);
#define TARGETS() do { if (tok) semaim_feature_targets(&m, a, tok, ranks, B); } while (0)
    params_zero_grad(&m.w);
    TARGETS();
    semaim_forward(&m, a, img, ranks, B);
    semaim_backward(&m, a);
    memcpy(p0, m.w.params, sizeof(float) * m.w.nparams);
    /* one direction per tensor group, so every group's gradient is checked */
    for (int ti = 0; ti < m.w.ntensors; ti += 7) {
        const param_info_t *t = &m.w.info[ti];
        rng_t r = rng_make(rng_key(10, ti, 0, 0, 0));
        memset(dir, 0, sizeof(float) * m.w.nparams);
        double gd = 0, norm = 0;
        for (long i = 0; i < t->numel; i++) { dir[t->offset + i] = 2 * rng_nextf(&r) - 1; norm += dir[t->offset + i] * (double)dir[t->offset + i]; }
        for (long i = 0; i < t->numel; i++) dir[t->offset + i] /= (float)sqrt(norm);
        for (long i = 0; i < t->numel; i++) gd += (double)dir[t->offset + i] * m.w.grads[t->offset + i];
        double eps = 1e-2, lp, lm;
        for (long i = 0; i < m.w.nparams; i++) m.w.params[i] = p0[i] + (float)eps * dir[i];
        TARGETS();
        lp = semaim_forward(&m, a, img, ranks, B);
        for (long i = 0; i < m.w.nparams; i++) m.w.params[i] = p0[i] - (float)eps * dir[i];
        TARGETS();
        lm = semaim_forward(&m, a, img, ranks, B);
        memcpy(m.w.params, p0, sizeof(float) * m.w.nparams);
        double fd = (lp - lm) / (2 * eps);
        CHECK(fabs(fd - gd) <= 2e-2 * fabs(gd) + 2e-4, "%s: fd %g vs grad %g", t->name, fd, gd);
    }
#undef TARGETS
    free(tok);
    free(img); free(noise); free(dir); free(p0); free(ranks);
    acts_free(a);
    model_free(&m);
    test_end();
}

static void test_features(void) {
    test_begin("encoder_features_batch_independent");
    semaim_config_t c = small_cfg();
    err_t err_v = {0};
    model_t m;
    model_init(&m, &c, 5, &err_v);
    int B = 3, H = c.image, D = m.d.D, T = m.d.T;
    /* a final norm that is not the identity, so mean (after it) and gap (before it) differ */
    for (int d = 0; d < D; d++) { m.p.norm_w[d] = 0.5f + 0.05f * d; m.p.norm_b[d] = 0.1f * (d % 3); }
    acts_t *a = acts_create(&m.cfg, B, ACTS_PRETRAIN, 0, &err_v);
    float *img = malloc(sizeof(float) * B * 3 * H * H);
    float cls[3 * 16], mean[3 * 16], gap[3 * 16], cls1[16], mean1[16], gap1[16];
    random_images(img, B * 3 * H * H, 11);
    encoder_features(&m, a, img, B, cls, mean, gap);
    encoder_features(&m, a, img + 2 * 3 * H * H, 1, cls1, mean1, gap1);
    CHECK(rel_err(cls1, cls + 2 * D, D) < 1e-5, "cls of image 2 alone vs in batch: %g", rel_err(cls1, cls + 2 * D, D));
    CHECK(rel_err(mean1, mean + 2 * D, D) < 1e-5, "mean of image 2 alone vs in batch");
    CHECK(rel_err(gap1, gap + 2 * D, D) < 1e-5, "gap of image 2 alone vs in batch");
    const float *tok = encoder_forward_full(&m, a, img, 1);
    double mx = 0;
    CHECK(rel_err(tok, cls, D) < 1e-5, "cls feature is the normed cls token");
    for (int d = 0; d < D; d++) {
        double s = 0;
        for (int t = 1; t < T; t++) s += tok[t * D + d];
        mx = fmax(mx, fabs(s / (T - 1) - mean[d]));
    }
    CHECK(mx < 1e-4, "mean feature is the mean of normed patch tokens (%g)", mx);
    /* gap, independently: the fine-tuning classifier pools the same encoder's patch tokens
     * before the norm and applies fc_norm (1/0 at init); with an identity head its logits are
     * that LayerNorm's output */
    ft_model_t f;
    CHECK(ft_init(&f, &m.cfg, D, B, 1.0, 1, &err_v) == 0 && ft_load_encoder(&f, &m, &err_v) == 0, "classifier");
    memset(f.p.head_w, 0, sizeof(float) * D * D);
    for (int d = 0; d < D; d++) f.p.head_w[d * D + d] = 1.0f;
    ft_forward(&f, img, NULL, B, 0, 0);
    const float *lg = ft_logits(&f);
    double mean_row = 0, var_row = 0;
    for (int d = 0; d < D; d++) { mean_row += gap[d] / D; var_row += (double)gap[d] * gap[d] / D; }
    CHECK(rel_err(lg, gap, B * D) < 1e-5, "gap = LayerNorm without affine of the mean pre-norm patch token: %g",
          rel_err(lg, gap, B * D));
    CHECK(fabs(mean_row) < 1e-5 && fabs(var_row - 1) < 1e-3, "gap rows are normalised (mean %g, var %g)", mean_row, var_row);
    CHECK(rel_err(gap, mean, D) > 1e-2, "gap does not depend on the final norm, mean does");
    ft_free(&f);
    free(img);
    acts_free(a);
    model_free(&m);
    test_end();
}

static double *to_double(const float *x, long n) {
    double *d = malloc(sizeof(double) * n);
    for (long i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* Each signal of the permutation pass against a direct double computation: cls and gap from
 * the normed tokens, self by recomputing the last block's cls-query attention (LayerNorm,
 * q·k/√hd, softmax, mean over heads) from that block's input, which the pass leaves in its
 * stream buffers. Several grids (odd too), depths and head counts; both arena kinds. */
static void test_order_signals(void) {
    test_begin("order_signals_cls_gap_self_direct");
    const semaim_config_t cfgs[] = {{16, 4, 16, 2, 1, 2}, {15, 5, 24, 3, 1, 4}, {14, 2, 16, 1, 1, 1}};
    for (size_t ci = 0; ci < sizeof cfgs / sizeof cfgs[0]; ci++) {
        const semaim_config_t c = cfgs[ci];
        model_t m;
        err_t e = {0};
        if (model_init(&m, &c, 11 + ci, &e)) { CHECK(0, "model_init: %s", e.msg); continue; }
        /* non-trivial LayerNorms and biases, so the signals differ */
        rng_t r = rng_make(rng_key(5, ci, 0, 0, 0));
        for (long i = 0; i < m.w.nparams; i++) m.w.params[i] += 0.05f * (2 * rng_nextf(&r) - 1);
        const int B = 2, T = m.d.T, D = m.d.D, L = m.d.L, NH = m.d.NH, hd = m.d.hd, H = c.image;
        float *img = malloc(sizeof(float) * B * 3 * H * H);
        random_images(img, B * 3 * H * H, 40 + ci);
        for (int mode = 0; mode < 2; mode++) {
            acts_t *a = acts_create(&m.cfg, B, mode ? ACTS_PRETRAIN : ACTS_ENCODER, 0, &e);
            if (!a) { CHECK(0, "acts: %s", e.msg); continue; }
            float *got[3];
            for (int s = 0; s < 3; s++) {
                m.tgt.signal = s;
                got[s] = malloc(sizeof(float) * B * L);
                memcpy(got[s], encoder_order_signal(&m, a, img, B), sizeof(float) * B * L);
            }
            /* the pass of the last call (self) left the normed tokens and the last block's input */
            const float *tok = a->tok, *xin = a->h + (long)((c.depth - 1) % 2) * B * T * D;
            double worst[3] = {0, 0, 0}, mass = 0;
            for (int b = 0; b < B; b++) {
                const float *cl = tok + (long)b * T * D;
                double mean[64] = {0};
                for (int t = 1; t < T; t++)
                    for (int d = 0; d < D; d++) mean[d] += tok[((long)b * T + t) * D + d] / (double)L;
                for (int p = 0; p < L; p++) {
                    const float *z = tok + ((long)b * T + 1 + p) * D;
                    double dc = 0, dg = 0, nc = 0, ng = 0, nz = 0;
                    for (int d = 0; d < D; d++) {
                        dc += (double)cl[d] * z[d]; dg += mean[d] * z[d];
                        nc += (double)cl[d] * cl[d]; ng += mean[d] * mean[d]; nz += (double)z[d] * z[d];
                    }
                    worst[0] = fmax(worst[0], fabs(got[0][b * L + p] - dc / sqrt(nc * nz)));
                    worst[1] = fmax(worst[1], fabs(got[1][b * L + p] - dg / sqrt(ng * nz)));
                }
                /* self: LayerNorm 1 and q, k of the last block, in double */
                const enc_block_t *w = &m.p.e.blk[c.depth - 1];
                double *x = to_double(xin + (long)b * T * D, (long)T * D), *ln = malloc(sizeof(double) * T * D),
                       *mu = malloc(sizeof(double) * T), *rs = malloc(sizeof(double) * T),
                       *qkv = malloc(sizeof(double) * T * 3 * D), *lw = to_double(w->ln1_w, D), *lb = to_double(w->ln1_b, D),
                       *W = to_double(w->qkv_w, 3L * D * D), *bias = to_double(w->qkv_b, 3L * D);
                layernorm_forward_ref(ln, mu, rs, x, lw, lb, T, D);
                linear_forward_ref(qkv, ln, W, bias, T, D, 3 * D);
                double acc[4096] = {0}, selfcls = 0;
                for (int h = 0; h < NH; h++) {
                    double sc[4096], mx = -1e300, z = 0;
                    for (int j = 0; j < T; j++) {
                        double s = 0;
                        for (int d = 0; d < hd; d++) s += qkv[h * hd + d] * qkv[(long)j * 3 * D + D + h * hd + d];
                        sc[j] = s / sqrt((double)hd);
                        mx = fmax(mx, sc[j]);
                    }
                    for (int j = 0; j < T; j++) z += exp(sc[j] - mx);
                    for (int j = 0; j < T; j++) acc[j] += exp(sc[j] - mx) / z / NH;
                }
                selfcls = acc[0];
                double tot = selfcls;
                for (int p = 0; p < L; p++) {
                    worst[2] = fmax(worst[2], fabs(got[2][b * L + p] - acc[1 + p]));
                    tot += got[2][b * L + p];
                }
                mass = fmax(mass, fabs(tot - 1));
                free(x); free(ln); free(mu); free(rs); free(qkv); free(lw); free(lb); free(W); free(bias);
            }
            const char *mn = mode ? "pretrain arena" : "encoder arena";
            CHECK(worst[0] < 1e-5, "G %d %s cls: max err %.3g", m.d.G, mn, worst[0]);
            CHECK(worst[1] < 1e-5, "G %d %s gap: max err %.3g", m.d.G, mn, worst[1]);
            CHECK(worst[2] < 1e-5, "G %d %s self: max err %.3g", m.d.G, mn, worst[2]);
            CHECK(mass < 1e-5, "G %d %s self with the cls entry sums to %.9g, not 1", m.d.G, mn, 1 + mass);
            double d01 = 0, d02 = 0;
            for (int i = 0; i < B * L; i++) { d01 = fmax(d01, fabs(got[0][i] - got[1][i])); d02 = fmax(d02, fabs(got[0][i] - got[2][i])); }
            CHECK(d01 > 1e-3 && d02 > 1e-3, "G %d the signals do not differ (%.3g %.3g)", m.d.G, d01, d02);
            /* the orders use the model's signal: the semantic centre is its argmax */
            float *noise = malloc(sizeof(float) * B * L);
            int *ranks = malloc(sizeof(int) * B * L), center[2];
            for (int i = 0; i < B * L; i++) noise[i] = rng_nextf(&r);
            for (int s = 0; s < 3; s++) {
                m.tgt.signal = s;
                compute_order(&m, a, ORDER_SEMANTIC, img, noise, B, ranks, center);
                for (int b = 0; b < B; b++) {
                    int best = 0;
                    for (int p = 1; p < L; p++) if (got[s][b * L + p] > got[s][b * L + best]) best = p;
                    CHECK(center[b] == best && ranks[b * L + best] == 0, "G %d signal %d image %d: centre %d, argmax %d",
                          m.d.G, s, b, center[b], best);
                }
            }
            free(noise); free(ranks);
            for (int s = 0; s < 3; s++) free(got[s]);
            acts_free(a);
        }
        free(img);
        model_free(&m);
    }
    test_end();
}

static void test_optimizer(void) {
    test_begin("schedule_clip_decay");
    double peak = 1e-3;
    CHECK(optim_lr_at(peak, 0, 0, 10, 100) == 0.0, "lr at 0 is 0");
    CHECK(fabs(optim_lr_at(peak, 0, 5, 10, 100) - 5e-4) < 1e-15, "half-way warmup");
    CHECK(fabs(optim_lr_at(peak, 0, 10, 10, 100) - peak) < 1e-15, "peak after warmup");
    CHECK(fabs(optim_lr_at(peak, 0, 55, 10, 100) - peak / 2) < 1e-12, "cosine midpoint");
    CHECK(fabs(optim_lr_at(peak, 1e-5, 100, 10, 100) - 1e-5) < 1e-15, "ends at min_lr");
    /* the fine-tuning recipe's 20 warmup epochs: kept at 100 epochs, a fifth of an 8-epoch run
     * (78 steps each), so the lr peaks inside a short run; explicit steps are taken as given */
    CHECK(optim_warmup_iters(20, -1, 78, 7800, 0.2) == 1560, "20 of 100 epochs kept (%ld)",
          optim_warmup_iters(20, -1, 78, 7800, 0.2));
    long w8 = optim_warmup_iters(20, -1, 78, 624, 0.2);
    CHECK(w8 == 125, "20 warmup epochs in an 8-epoch run: a fifth of it (%ld)", w8);
    CHECK(optim_lr_at(peak, 0, w8, w8, 624) == peak, "a short run reaches its peak lr");
    CHECK(optim_warmup_iters(1, -1, 78, 624, 0.2) == 78, "a warmup under the cap is kept");
    CHECK(optim_warmup_iters(20, 700, 78, 624, 0.2) == 700, "--warmup-steps is taken as given");
    optim_cfg_t o = optim_defaults();
    CHECK(fabs(optim_peak_lr(&o, 2048) - 1.6e-3) < 1e-12, "lr scaling base 2e-4 x 2048/256");
    float g[4] = {3, 4, 0, 0};
    double n = grad_norm(g, 4);
    CHECK(fabs(n - 5) < 1e-12, "norm");
    clip_grad(g, 4, n, 1.0);
    CHECK(fabs(g[0] - 3 / (5 + 1e-6)) < 1e-6 && fabs(g[1] - 4 / (5 + 1e-6)) < 1e-6, "clipped");
    clip_grad(g, 4, grad_norm(g, 4), 10.0);
    CHECK(fabs(g[0] - 3 / (5 + 1e-6)) < 1e-6, "no clip under the limit");
    /* With zero gradients AdamW only decays: weights shrink by (1 - lr·wd), 1-D tensors stay. */
    semaim_config_t c = small_cfg();
    err_t err_v = {0};
    model_t m;
    model_init(&m, &c, 6, &err_v);
    float *p0 = malloc(sizeof(float) * m.w.nparams);
    for (long i = 0; i < m.w.nparams; i++) m.w.params[i] = 1.0f;
    memcpy(p0, m.w.params, sizeof(float) * m.w.nparams);
    params_zero_grad(&m.w);
    adamw_step(&m.w, 0.1, &o, 1);
    for (int t = 0; t < m.w.ntensors; t++) {
        const param_info_t *ti = &m.w.info[t];
        float expect = ti->decay ? (float)(1.0 - 0.1 * 0.05) : 1.0f;
        CHECK(fabsf(m.w.params[ti->offset] - expect) < 1e-7, "%s after decay-only step: %g", ti->name, m.w.params[ti->offset]);
    }
    /* One real step on a scalar matches the closed form: first Adam step moves by lr·sign(g). */
    params_zero_grad(&m.w);
    memcpy(m.w.params, p0, sizeof(float) * m.w.nparams);
    m.w.grads[m.w.info[1].offset] = 0.37f;   /* patch_embed weight, decayed */
    memset(m.w.m, 0, sizeof(float) * m.w.nparams); memset(m.w.v, 0, sizeof(float) * m.w.nparams);
    adamw_step(&m.w, 0.01, &o, 1);
    double expect = 1.0 * (1 - 0.01 * 0.05) - 0.01 * 0.37 / (0.37 + 1e-8);
    CHECK(fabs(m.w.params[m.w.info[1].offset] - expect) < 1e-6, "first Adam step %g vs %g", m.w.params[m.w.info[1].offset], expect);
    free(p0);
    model_free(&m);
    test_end();
}

/* Runs fn(m, a) in a child process; returns 1 if it aborted with a message containing want. */
static int aborts_with(void (*fn)(model_t *, acts_t *), model_t *m, acts_t *a, const char *want) {
    char path[] = "/tmp/semaim-abort-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        fn(m, a);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    char msg[1024] = "";
    ssize_t n = pread(fd, msg, sizeof msg - 1, 0);
    msg[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(path);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(msg, want) != NULL;
}
static void do_backward(model_t *m, acts_t *a) { semaim_backward(m, a); }

static void test_backward_needs_forward(void) {
    test_begin("backward_without_training_forward_is_an_error");
    semaim_config_t c = small_cfg();
    err_t e;
    model_t m;
    model_init(&m, &c, 5, &e);
    int B = 2, L = m.d.L, H = c.image;
    acts_t *a = acts_create(&m.cfg, B, ACTS_PRETRAIN, 0, &e);
    float *img = malloc(sizeof(float) * B * 3 * H * H), *noise = malloc(sizeof(float) * B * L);
    int *ranks = malloc(sizeof(int) * B * L);
    random_images(img, B * 3 * H * H, 8);
    for (int i = 0; i < B * L; i++) noise[i] = (float)i / (B * L);
    const char *want = "semaim_backward without a training forward";
    CHECK(aborts_with(do_backward, &m, a, want), "fresh activations: backward did not abort with '%s'", want);
    compute_order(&m, a, ORDER_SEMANTIC, img, noise, B, ranks, NULL);
    semaim_forward(&m, a, img, ranks, B);
    compute_order(&m, a, ORDER_SEMANTIC, img, noise, B, ranks, NULL);   /* overwrites the forward's activations */
    CHECK(aborts_with(do_backward, &m, a, want), "after a permutation pass: backward did not abort");
    float cls[2 * 16];
    semaim_forward(&m, a, img, ranks, B);
    encoder_features(&m, a, img, B, cls, NULL, NULL);
    CHECK(aborts_with(do_backward, &m, a, want), "after a feature pass: backward did not abort");
    semaim_forward(&m, a, img, ranks, B);
    params_zero_grad(&m.w);
    semaim_backward(&m, a);   /* the sanctioned order still works */
    double gn = grad_norm(m.w.grads, m.w.nparams);
    CHECK(gn > 0 && isfinite(gn), "gradient after forward + backward: %g", gn);
    free(img); free(noise); free(ranks);
    acts_free(a);
    model_free(&m);
    test_end();
}

int main(void) {
    test_config();
    test_param_table();
    test_orders();
    test_causality();
    test_full_gradient_direction(TARGET_PIXEL);
    test_full_gradient_direction(TARGET_INFERENCE);
    test_features();
    test_order_signals();
    test_optimizer();
    test_backward_needs_forward();
    return test_exit();
}
