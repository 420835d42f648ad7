/* "Activation memory sized once; no allocation inside a step": every allocation call made by
 * our code (libsemaim is linked statically, and this test is linked with --wrap for the
 * allocator, see the Makefile) is counted while a full training step runs: permutation pass,
 * forward, backward, clipping and AdamW (with the bf16 copy of the weights), for every order,
 * the same with the orders from the EMA shadow and the EMA update after AdamW, and a
 * fine-tuning step — on every compute this machine runs: OpenBLAS fp32, oneDNN fp32,
 * emulated bf16 and, where the CPU has it, oneDNN bf16. The GEMM plans are made with the
 * arena, so a step finds them all. (oneDNN allocates inside its own execute whatever the
 * scratchpad mode; that is its code, which the wrapper does not see.) Likewise the
 * fine-tuning augmentation of a batch (crop, RandAugment, erasing, Mixup/CutMix, soft targets
 * and the soft-target loss) in work memory allocated once. A frozen teacher's forward (both
 * layouts) and the feature loss on its tokens, too. And the loader in its steady state,
 * on raw and on jpeg shards, with the fine-tuning chain too: once an epoch's batches have been made, making them again (after
 * a seek) allocates nothing in our code (libjpeg-turbo's own per-image pools are its business). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "../tools/shard_fixture.h"
#include "semaim/loader.h"
#include "semaim/shards.h"
#include "semaim/ema.h"
#include "semaim/encoder.h"
#include "data/augment.h"
#include "data/mixup.h"
#include "kernels/ops.h"
#include "semaim/finetune.h"
#include "semaim/model.h"
#include "semaim/train_step.h"
#include "semaim/optim.h"
#include "semaim/teacher.h"

static long allocs = 0;   /* the loader's threads count too */
void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n) { __atomic_fetch_add(&allocs, 1, __ATOMIC_RELAXED); return __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { __atomic_fetch_add(&allocs, 1, __ATOMIC_RELAXED); return __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { __atomic_fetch_add(&allocs, 1, __ATOMIC_RELAXED); return __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { __atomic_fetch_add(&allocs, 1, __ATOMIC_RELAXED); return __real_aligned_alloc(a, n); }
static long nallocs(void) { return __atomic_load_n(&allocs, __ATOMIC_RELAXED); }

/* One epoch through the loader, a seek back to its start, then the same batches again while
 * counting, from the second on (the first rebuilds the epoch's sample list, which the loader
 * thread had already replaced by the next epoch's); the window stops prefetch slots short of
 * the epoch's end, so the thread never starts the next epoch inside it. */
static void loader_noalloc(const char *dir, int train, const char *name) {
    test_begin(name);
    err_t e;
    loader *L;
    aug_recipe r = augment_recipe_finetune();
    r.ra.prob = 1; r.re.prob = 1;   /* every stage of the fine-tuning chain runs */
    loader_config c = {.data_dir = dir, .split = "train", .image_size = 16, .batch = 4, .seed = 9, .world = 1,
                       .train = train != 0, .threads = 2, .prefetch = 2, .recipe = train == 2 ? &r : NULL};
    if (loader_open(&L, &c, &e)) { CHECK(0, "open: %s", e.msg); test_end(); return; }
    long steps = loader_steps_per_epoch(L);
    const loader_batch *b;
    int bad = 0;
    for (long s = 0; s < steps; s++) bad |= loader_next(L, &b, NULL, &e);
    bad |= loader_seek(L, 0, 0, &e);
    bad |= loader_next(L, &b, NULL, &e);   /* the seek's first batch rebuilds the epoch's sample list */
    long before = nallocs();
    for (long s = 1; s + 3 < steps; s++) bad |= loader_next(L, &b, NULL, &e);
    long n = nallocs() - before;
    CHECK(!bad, "loader: %s", e.msg);
    CHECK(steps > 4 && n == 0, "%ld allocations while making %ld batches again", n, steps - 4);
    loader_close(L);
    test_end();
}

static void test_augment_noalloc(void) {
    test_begin("no_allocation_in_the_finetune_augmentation");
    enum { B = 4, H = 40, W = 48, S = 32, K = 5 };
    aug_recipe r = augment_recipe_finetune();
    r.re.prob = 1; r.ra.prob = 1;   /* every stage runs */
    uint8_t *img = malloc((size_t)H * W * 3);
    for (int i = 0; i < H * W * 3; i++) img[i] = (uint8_t)(i * 37);
    void *work = malloc(augment_finetune_work_bytes(H, W, S, r.interp));
    float *x = malloc(sizeof(float) * B * 3 * S * S), *xm = malloc(sizeof(float) * B * 3 * S * S), *t = malloc(sizeof(float) * B * K), *p = malloc(sizeof(float) * B * K),
          *lg = calloc(B * K, sizeof(float)), *dl = calloc(B * K, sizeof(float));
    const int32_t y[B] = {0, 3, 4, 1};
    mixup_config mc = mixup_recipe();
    long before = allocs;
    for (int step = 0; step < 6; step++) {
        for (int b = 0; b < B; b++) augment_finetune(x + (long)b * 3 * S * S, img, H, W, S, &r, 1, 0, step * B + b, work);
        mixup_params mp;
        mixup_sample(&mp, &mc, S, S, rng_key(1, MIXUP_RNG_TAG, (uint64_t)step, 0, 0));
        mixup_images(xm, x, x, B, 3, S, S, &mp);
        mixup_targets(t, y, y, B, K, mp.lam, mc.smoothing);
        softce_forward(p, lg, t, B, K);
        softce_backward(dl, p, t, B, K, 1.0f);
    }
    CHECK(allocs == before, "%ld allocations while augmenting", allocs - before);
    free(img); free(work); free(x); free(xm); free(t); free(p); free(lg); free(dl);
    test_end();
}

static void test_loaders(void) {
    char root[256], d[300];
    snprintf(root, sizeof root, "%s/semaim_noalloc_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) { printf("FAIL: mkdtemp\n"); return; }
    const long cnt[3] = {13, 11, 16};
    for (int jpeg = 0; jpeg < 2; jpeg++) {
        snprintf(d, sizeof d, "%s/%s", root, jpeg ? "jpeg" : "raw");
        shards_hdf5_lock();
        int rc = fx_write_set_kind(d, "train", 3, cnt, 20, 24, jpeg);
        shards_hdf5_unlock();
        if (rc) { printf("FAIL: cannot write shards in %s\n", d); return; }
        loader_noalloc(d, 1, jpeg ? "no_allocation_in_the_loader_steady_state_jpeg_train" : "no_allocation_in_the_loader_steady_state_raw_train");
        loader_noalloc(d, 0, jpeg ? "no_allocation_in_the_loader_steady_state_jpeg_eval" : "no_allocation_in_the_loader_steady_state_raw_eval");
        loader_noalloc(d, 2, jpeg ? "no_allocation_in_the_loader_steady_state_jpeg_finetune_recipe"
                                  : "no_allocation_in_the_loader_steady_state_raw_finetune_recipe");
        for (int k = 0; k < 3; k++) {
            char f[400];
            snprintf(f, sizeof f, "%s/train/train-%05d-of-00003.h5", d, k);
            unlink(f);
        }
        snprintf(d, sizeof d, "%s/%s/train", root, jpeg ? "jpeg" : "raw"); rmdir(d);
        snprintf(d, sizeof d, "%s/%s", root, jpeg ? "jpeg" : "raw"); rmdir(d);
    }
    rmdir(root);
}

/* A teacher of each layout (weights set by hand: nothing is loaded), its forward of a full and
 * of a partial batch, and the feature loss with its gradient on the tokens. */
static void teacher_noalloc(const char *name) {
    for (int layout = TEACHER_TIMM; layout <= TEACHER_CLIP; layout++) {
        err_t err_v = {0};
        teacher_arch_t ar = {(teacher_layout_t)layout, 48, 2, 3, 96, 8, 4, layout == TEACHER_CLIP ? 24 : 48, ""};
        teacher_t t;
        if (teacher_init(&t, &ar, &err_v)) { CHECK(0, "%s teacher_init: %s", name, err_v.msg); continue; }
        for (long i = 0; i < t.w.nparams; i++) t.w.params[i] = (float)((i * 7919) % 199) / 1990.0f - 0.05f;
        teacher_ready(&t);
        const int B = 3, T = 17, O = ar.out;
        teacher_acts_t *a = teacher_acts_create(&t, B, &err_v);
        float *img = calloc((size_t)B * 3 * 32 * 32, sizeof(float)), *d = calloc((size_t)B * T * O, sizeof(float));
        if (!a || !img || !d) { CHECK(0, "teacher arena: %s", err_v.msg); teacher_free(&t); free(img); free(d); continue; }
        for (int i = 0; i < B * 3 * 32 * 32; i++) img[i] = (float)((i * 31) % 255) / 128.0f - 1.0f;
        long before = allocs;
        const float *tok = teacher_forward(&t, a, img, B);
        double l = featloss_forward(tok + O, tok + (long)T * O, T - 1, O);
        featloss_backward(d, tok + O, tok + (long)T * O, T - 1, O, 1.0f);
        teacher_forward(&t, a, img, 2);
        CHECK(allocs == before, "%s teacher: %ld allocations in forwards and the feature loss",
              teacher_layout_name(ar.layout), allocs - before);
        CHECK(l > 0 && isfinite(l), "feature loss computed (%g)", l);
        teacher_acts_free(a);
        teacher_free(&t);
        free(img); free(d);
    }
}

/* train_step, and the count of encoder passes the FLOP figure assumes
 * (train_step_encoder_passes) against the passes it made in the arena */
static float counted_step(model_t *m, acts_t *a, const target_src_t *src, order_t o, const float *img,
                          const float *noise, int B, int *ranks, const char *what) {
    long p0 = acts_encoder_passes(a);
    float loss = train_step(m, a, src, o, img, noise, B, ranks, NULL);
    long made = acts_encoder_passes(a) - p0;
    int said = train_step_encoder_passes(m, src, o, noise != NULL);
    CHECK(made == said, "%s, order %s%s: %ld encoder passes made, %d counted for the FLOP figure", what, order_name(o),
          noise ? "" : " (ranks given)", made, said);
    return loss;
}

static void test_steps(const char *name, const gemm_config_t *gc) {
    test_begin("no_allocation_inside_a_step_%s", name);
    err_t err_v = {0};
    CHECK(gemm_global_init(gc, &err_v) == 0, "init: %s", err_v.msg);
    semaim_config_t c = {32, 8, 32, 2, 1, 2};
    model_t m;
    long before = allocs;
    CHECK(model_init(&m, &c, 1, &err_v) == 0, "init");
    CHECK(allocs > before, "the wrapper sees our allocations (%ld)", allocs - before);
    CHECK((m.w.half != NULL) == (gc->precision == GEMM_PREC_BF16), "bf16 copy of the weights");
    int B = 3, L = m.d.L;
    acts_t *a = acts_create(&m.cfg, B, ACTS_PRETRAIN, 0, &err_v);
    CHECK(a != NULL, "arena: %s", err_v.msg);
    float *img = calloc((size_t)B * 3 * 32 * 32, sizeof(float)), *noise = calloc((size_t)B * L, sizeof(float));
    int *ranks = calloc((size_t)B * L, sizeof(int));
    for (int i = 0; i < B * 3 * 32 * 32; i++) img[i] = (float)((i * 7919) % 255) / 128.0f - 1.0f;
    for (int i = 0; i < B * L; i++) noise[i] = (float)((i * 31) % 97) / 97.0f;
    optim_cfg_t oc = optim_defaults();
    for (int o = ORDER_SEMANTIC; a && o <= ORDER_CENTER; o++) {
        before = allocs;
        float loss = counted_step(&m, a, NULL, (order_t)o, img, noise, B, ranks, "pixel");
        double gn = grad_norm(m.w.grads, m.w.nparams);
        optim_update(&m.w, &oc, 1e-3, o + 1, gn);
        float cls[3 * 32], mean[3 * 32], gap[3 * 32];
        encoder_features(&m, a, img, B, cls, mean, gap);
        CHECK(allocs == before, "order %s: %ld allocations during a step", order_name((order_t)o), allocs - before);
        CHECK(loss > 0 && isfinite(loss), "loss computed (%g)", loss);
    }
    /* with the EMA teacher (--ema-order): the orders' pass on the EMA shadow, then the EMA
     * update after AdamW (with its bf16 copy in bf16 runs) */
    ema_t ema;
    CHECK(ema_init(&ema, &m, &err_v) == 0, "ema_init: %s", err_v.msg);
    for (int o = ORDER_SEMANTIC; a && o <= ORDER_SIMILARITY; o++) {
        if (!order_uses_model((order_t)o)) continue;
        before = allocs;
        float loss = counted_step(&m, a, &(target_src_t){.order = &ema.m}, (order_t)o, img, noise, B, ranks, "pixel, EMA order");
        optim_update(&m.w, &oc, 1e-3, o + 1, grad_norm(m.w.grads, m.w.nparams));
        ema_update(&ema, m.w.params, ema_decay(o, 1));
        CHECK(allocs == before, "order %s from the EMA: %ld allocations during a step", order_name((order_t)o),
              allocs - before);
        CHECK(loss > 0 && isfinite(loss), "loss computed (%g)", loss);
    }
    ema_free(&ema);
    /* the inference target: its head of width D, one unmasked pass for order and targets */
    {
        target_cfg_t inf = target_defaults();
        inf.kind = TARGET_INFERENCE;
        model_t mi;
        CHECK(model_init_target(&mi, &c, &inf, 2, &err_v) == 0 && mi.out == c.width, "inference model: %s", err_v.msg);
        acts_t *ai = acts_create(&mi.cfg, B, ACTS_PRETRAIN, mi.out, &err_v);
        CHECK(ai != NULL, "inference arena: %s", err_v.msg);
        for (int o = ORDER_SEMANTIC; ai && o <= ORDER_CENTER; o++) {
            before = allocs;
            float loss = counted_step(&mi, ai, NULL, (order_t)o, img, noise, B, ranks, "inference");
            optim_update(&mi.w, &oc, 1e-3, o + 1, grad_norm(mi.w.grads, mi.w.nparams));
            counted_step(&mi, ai, NULL, (order_t)o, img, NULL, B, ranks, "inference");   /* the ranks given: targets still computed */
            CHECK(allocs == before, "inference target, order %s: %ld allocations during a step", order_name((order_t)o),
                  allocs - before);
            CHECK(loss > 0 && isfinite(loss), "inference loss computed (%g)", loss);
        }
        /* the EMA target: the targets from the EMA shadow's pass, the order from the model's
         * own (and, with --ema-order, from the shadow's one pass too), then the EMA update */
        mi.tgt.kind = TARGET_EMA;
        ema_t em;
        CHECK(ema_init(&em, &mi, &err_v) == 0, "ema_init: %s", err_v.msg);
        for (int o = ORDER_SEMANTIC; ai && o <= ORDER_SIMILARITY; o += ORDER_SIMILARITY) {
            for (int eo = 0; eo < 2; eo++) {
                before = allocs;
                float loss = counted_step(&mi, ai, &(target_src_t){.encoder = &em.m, .order = eo ? &em.m : NULL}, (order_t)o, img, noise, B, ranks,
                                          "ema");
                optim_update(&mi.w, &oc, 1e-3, o + 1, grad_norm(mi.w.grads, mi.w.nparams));
                ema_update(&em, mi.w.params, ema_decay(o, 1));
                CHECK(allocs == before, "ema target, order %s%s: %ld allocations during a step", order_name((order_t)o),
                      eo ? " from the EMA" : "", allocs - before);
                CHECK(loss > 0 && isfinite(loss), "ema loss computed (%g)", loss);
            }
        }
        ema_free(&em);
        acts_free(ai);
        model_free(&mi);
    }
    /* the teacher target: a CLIP tower wider than the student (weights set by hand), its forward
     * inside the step giving the order and the targets */
    {
        teacher_arch_t ar = {TEACHER_CLIP, 48, 2, 3, 96, 8, 4, 40, ""};
        teacher_t t;
        CHECK(teacher_init(&t, &ar, &err_v) == 0, "teacher_init: %s", err_v.msg);
        for (long i = 0; i < t.w.nparams; i++) t.w.params[i] = (float)((i * 7919) % 199) / 1990.0f - 0.05f;
        teacher_ready(&t);
        target_cfg_t tt = target_defaults();
        tt.kind = TARGET_TEACHER; tt.teacher_layout = TEACHER_CLIP; tt.teacher_width = ar.out;
        model_t mt;
        CHECK(model_init_target(&mt, &c, &tt, 3, &err_v) == 0 && mt.out == ar.out, "teacher-target model: %s", err_v.msg);
        acts_t *at = acts_create(&mt.cfg, B, ACTS_PRETRAIN, mt.out, &err_v);
        target_src_t src = {.teacher = &t, .tacts = teacher_acts_create(&t, B, &err_v)};
        CHECK(at && src.tacts, "teacher-target arenas: %s", err_v.msg);
        for (int o = ORDER_SEMANTIC; at && src.tacts && o <= ORDER_CENTER; o++) {
            before = allocs;
            float loss = counted_step(&mt, at, &src, (order_t)o, img, noise, B, ranks, "teacher");
            optim_update(&mt.w, &oc, 1e-3, o + 1, grad_norm(mt.w.grads, mt.w.nparams));
            CHECK(allocs == before, "teacher target, order %s: %ld allocations during a step", order_name((order_t)o),
                  allocs - before);
            CHECK(loss > 0 && isfinite(loss), "teacher-target loss computed (%g)", loss);
        }
        teacher_acts_free(src.tacts);
        acts_free(at);
        model_free(&mt);
        teacher_free(&t);
    }
    /* a fine-tuning step: forward with drop-path, backward, AdamW, and an evaluation forward
     * of a partial batch */
    ft_model_t f;
    CHECK(ft_init(&f, &c, 5, B, 0.65, 2, &err_v) == 0, "ft_init: %s", err_v.msg);
    const int32_t labels[3] = {0, 4, 2};
    const int64_t ids[3] = {7, 8, 9};
    for (int step = 0; step < 2; step++) {
        before = allocs;
        ft_drop_path(&f, 0.2, 1, step, ids, B);
        params_zero_grad(&f.w);
        double l = ft_forward(&f, img, labels, B, 1, 0.1f);
        ft_backward(&f);
        optim_update(&f.w, &oc, 1e-3, step + 1, grad_norm(f.w.grads, f.w.nparams));
        ft_forward(&f, img, labels, 2, 0, 0.1f);
        CHECK(allocs == before, "fine-tuning step %d: %ld allocations", step, allocs - before);
        CHECK(l > 0 && isfinite(l), "fine-tuning loss computed (%g)", l);
    }
    ft_free(&f);
    teacher_noalloc(name);
    free(img); free(noise); free(ranks);
    acts_free(a);
    model_free(&m);
    test_end();
}

int main(void) {
    test_augment_noalloc();
    test_loaders();
    err_t e = {0};
    gemm_config_t c;
    if (gemm_select(&c, GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0, &e) == 0) test_steps("openblas_fp32", &c);
    if (gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_FP32, 0, &e) == 0) test_steps("onednn_fp32", &c);
    c = (gemm_config_t){GEMM_BACKEND_OPENBLAS, GEMM_PREC_BF16, 1};
    test_steps("emulated_bf16", &c);
    if (gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_BF16, 0, &e) == 0) test_steps("onednn_bf16", &c);
    else printf("  note: native bf16 not run: %s\n", e.msg);
    return test_exit();
}
