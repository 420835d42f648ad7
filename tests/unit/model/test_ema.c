/* The EMA teacher (semaim/ema.h): the decay schedule against its formula computed directly
 * (epoch boundaries, the end of the ramp, far past it), the update against a double-precision
 * EMA over several steps across epoch boundaries and past epoch 100 (and bit-exactly against
 * the float32 formula it documents), and the shadow model: its permutation-pass signal is that
 * of a model holding the EMA weights, not the live ones, in fp32 and in emulated bf16 (whose
 * passes read the shadow's own bf16 copy). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kernels/gemm.h"
#include "semaim/ema.h"
#include "semaim/encoder.h"
#include "semaim/rng.h"

/* The authors' per-epoch ramp written out again, in long double. */
static double direct_decay(long step, long spe) {
    long e = step / spe;
    if (e > 100) e = 100;
    return (double)(0.999L + (0.9999L - 0.999L) * (long double)e / 100.0L);
}

static void test_schedule(void) {
    test_begin("ema_decay_schedule");
    const long spes[] = {2, 7, 1251};   /* each list below is then in increasing order */
    for (int k = 0; k < 3; k++) {
        long spe = spes[k];
        const long steps[] = {0, 1, spe - 1, spe, spe + 1, 2 * spe - 1, 50 * spe, 99 * spe + spe - 1, 100 * spe,
                              100 * spe + 1, 101 * spe, 1000 * spe + 3, 123456789};
        double prev = 0;
        for (int i = 0; i < (int)(sizeof steps / sizeof steps[0]); i++) {
            double d = ema_decay(steps[i], spe), want = direct_decay(steps[i], spe);
            CHECK(fabs(d - want) <= 1e-15, "spe %ld step %ld: %.17g, want %.17g", spe, steps[i], d, want);
            CHECK(d >= prev, "spe %ld: the decay fell at step %ld", spe, steps[i]);
            prev = d;
        }
        CHECK(ema_decay(0, spe) == 0.999 && ema_decay(spe - 1, spe) == 0.999, "spe %ld: epoch 0 is 0.999", spe);
        CHECK(ema_decay(100 * spe, spe) == 0.9999 && ema_decay(5000 * spe, spe) == 0.9999, "spe %ld: 0.9999 from epoch 100",
              spe);
        CHECK(ema_decay(spe, spe) > 0.999 && ema_decay(100 * spe - 1, spe) < 0.9999, "spe %ld: a ramp in between", spe);
    }
    /* the authors' expression itself: 0.999 + epoch / 100 * (0.9999 - 0.999) */
    CHECK(ema_decay(37 * 5, 5) == 0.999 + 37 / 100.0 * (0.9999 - 0.999), "epoch 37 as the authors compute it");
    test_end();
}

/* Weights that move every step, like training: w_t = base + t·delta (different per element). */
static void weights_at(float *w, const float *base, long n, int t) {
    for (long i = 0; i < n; i++) w[i] = base[i] + 1e-3f * (float)t * (float)((i * 13) % 29 - 14);
}

static void test_update(void) {
    test_begin("ema_update_against_double");
    err_t err_v = {0};
    semaim_config_t c = {32, 8, 64, 2, 1, 2};   /* > 16384 parameters: the threaded path, with a partial chunk */
    model_t m;
    ema_t e;
    CHECK(model_init(&m, &c, 5, &err_v) == 0 && ema_init(&e, &m, &err_v) == 0, "init: %s", err_v.msg);
    const long n = m.w.nparams;
    CHECK(n > 16384 && n % 4096, "%ld parameters", n);
    CHECK(e.m.w.params == m.w.ema && !memcmp(m.w.ema, m.w.params, sizeof(float) * n), "the EMA starts at the weights");
    float *base = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * n), *f32 = malloc(sizeof(float) * n);
    double *ref = malloc(sizeof(double) * n);
    memcpy(base, m.w.params, sizeof(float) * n);
    for (long i = 0; i < n; i++) ref[i] = f32[i] = m.w.params[i];
    /* spe 3: epochs 0, 1, 2 and the boundaries between; then the same from step 297 (epoch 99)
     * to past epoch 100 */
    const long spe = 3;
    long steps[16];
    for (int k = 0; k < 8; k++) steps[k] = k;
    for (int k = 8; k < 16; k++) steps[k] = 297 + (k - 8);
    double worst = 0, maxref = 0;
    long inexact = 0;
    for (int k = 0; k < 16; k++) {
        weights_at(w, base, n, k + 1);
        double d = ema_decay(steps[k], spe);
        ema_update(&e, w, d);
        const float a = (float)d, b = (float)(1.0 - d);
        for (long i = 0; i < n; i++) {
            ref[i] = d * ref[i] + (1 - d) * (double)w[i];
            float x = a * f32[i];
            float y = b * w[i];
            f32[i] = x + y;
        }
        for (long i = 0; i < n; i++) {
            double err = fabs((double)m.w.ema[i] - ref[i]);
            if (err > worst) worst = err;
            if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
            inexact += m.w.ema[i] != f32[i];
        }
    }
    /* each step rounds twice per element: a few float32 ulps of the largest value over 16 steps */
    CHECK(worst <= 16 * 4 * 6e-8 * maxref, "max|ema − double ema| %.3g (max|ema| %.3g)", worst, maxref);
    CHECK(inexact == 0, "%ld values differ from fl(fl(d·ema) + fl((1−d)·w))", inexact);
    /* and the EMA did move: it is not the initial weights, nor the last ones */
    double moved = 0, to_live = 0;
    for (long i = 0; i < n; i++) { moved += fabs(m.w.ema[i] - base[i]); to_live += fabs(m.w.ema[i] - w[i]); }
    CHECK(moved > 0 && to_live > moved, "EMA moved %.3g from init, %.3g from the live weights", moved, to_live);
    free(base); free(w); free(f32); free(ref);
    ema_free(&e);
    model_free(&m);
    test_end();
}

/* The shadow's permutation pass against a plain model holding the EMA weights. */
static void test_shadow(const char *name, const gemm_config_t *gc) {
    test_begin("ema_shadow_passes_read_the_ema_%s", name);
    err_t err_v = {0};
    CHECK(gemm_global_init(gc, &err_v) == 0, "gemm: %s", err_v.msg);
    semaim_config_t c = {32, 8, 32, 2, 1, 2};
    model_t m, copy;
    ema_t e;
    CHECK(model_init(&m, &c, 1, &err_v) == 0 && model_init(&copy, &c, 2, &err_v) == 0, "init: %s", err_v.msg);
    m.tgt.signal = SIGNAL_GAP;
    copy.tgt = m.tgt;
    CHECK(ema_init(&e, &m, &err_v) == 0, "ema_init: %s", err_v.msg);
    CHECK((e.m.w.half != NULL) == (gc->precision == GEMM_PREC_BF16), "the shadow has its own bf16 copy in bf16 runs");
    const long n = m.w.nparams;
    /* live weights far from the EMA: the EMA takes a tenth of each change */
    for (int t = 0; t < 3; t++) {
        for (long i = 0; i < n; i++) m.w.params[i] += 0.05f * (float)((i * 7 + t) % 11 - 5);
        params_sync_half(&m.w);
        ema_update(&e, m.w.params, 0.9);
    }
    memcpy(copy.w.params, m.w.ema, sizeof(float) * n);
    params_sync_half(&copy.w);
    if (e.m.w.half) CHECK(!memcmp(e.m.w.half, copy.w.half, 2 * (size_t)n), "ema_update refreshed the bf16 copy");
    const int B = 2, L = m.d.L;
    acts_t *a = acts_create(&m.cfg, B, ACTS_PRETRAIN, 0, &err_v);
    float *img = malloc(sizeof(float) * B * 3 * 32 * 32), *s_ema = malloc(sizeof(float) * B * L),
          *s_copy = malloc(sizeof(float) * B * L), *s_live = malloc(sizeof(float) * B * L);
    rng_t r = rng_make(rng_key(3, 1, 4, 1, 5));
    for (int i = 0; i < B * 3 * 32 * 32; i++) img[i] = 2 * rng_nextf(&r) - 1;
    if (a) {
        memcpy(s_ema, encoder_order_signal(&e.m, a, img, B), sizeof(float) * B * L);
        memcpy(s_copy, encoder_order_signal(&copy, a, img, B), sizeof(float) * B * L);
        memcpy(s_live, encoder_order_signal(&m, a, img, B), sizeof(float) * B * L);
        CHECK(!memcmp(s_ema, s_copy, sizeof(float) * B * L), "the shadow's signal is the EMA model's, bit for bit");
        CHECK(rel_err(s_live, s_copy, (long)B * L) > 1e-3, "and not the live model's (rel %.2e)",
              rel_err(s_live, s_copy, (long)B * L));
        /* the orders follow: ranks from the shadow equal those from the copy */
        float noise[2 * 16];
        int r1[2 * 16], r2[2 * 16];
        for (int i = 0; i < B * L; i++) noise[i] = rng_nextf(&r);
        compute_order(&e.m, a, ORDER_SIMILARITY, img, noise, B, r1, NULL);
        compute_order(&copy, a, ORDER_SIMILARITY, img, noise, B, r2, NULL);
        CHECK(!memcmp(r1, r2, sizeof r1), "similarity orders from the shadow");
    } else CHECK(0, "arena: %s", err_v.msg);
    /* as after a resume: a shadow built over an EMA buffer that was already attached (and
     * loaded) keeps it and makes its bf16 copy from it */
    ema_free(&e);
    for (long i = 0; i < n; i++) m.w.ema[i] = 0.5f * copy.w.params[i];
    CHECK(ema_init(&e, &m, &err_v) == 0, "ema_init again: %s", err_v.msg);
    for (long i = 0; i < n; i++) copy.w.params[i] *= 0.5f;
    params_sync_half(&copy.w);
    CHECK(!memcmp(m.w.ema, copy.w.params, sizeof(float) * n), "the attached EMA is kept, not reset to the weights");
    if (e.m.w.half) CHECK(!memcmp(e.m.w.half, copy.w.half, 2 * (size_t)n), "its bf16 copy is made from it");
    free(img); free(s_ema); free(s_copy); free(s_live);
    acts_free(a);
    ema_free(&e);
    model_free(&m);
    model_free(&copy);
    test_end();
}

int main(void) {
    test_schedule();
    test_update();
    err_t e = {0};
    gemm_config_t c;
    if (gemm_select(&c, GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0, &e) == 0) test_shadow("openblas_fp32", &c);
    c = (gemm_config_t){GEMM_BACKEND_OPENBLAS, GEMM_PREC_BF16, 1};
    test_shadow("emulated_bf16", &c);
    if (gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_BF16, 0, &e) == 0) test_shadow("onednn_bf16", &c);
    return test_exit();
}
