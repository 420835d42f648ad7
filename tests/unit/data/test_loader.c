/* The loader on small shards written here (tests/tools/shard_fixture.h): per-epoch coverage
 * and disjointness for several simulated world sizes (the MPI version is tests/t_loader.sh),
 * delivered pixels and labels, determinism across thread counts and world sizes, resume,
 * background prefetch, and every bad-input error. */
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "../tools/shard_fixture.h"
#include "data/augment.h"
#include "semaim/loader.h"
#include "semaim/rng.h"
#include "semaim/shards.h"

/* The loader's calls with its error as a message (NULL = fine), the form these checks read. */
static _Thread_local err_t lerr_;
static const char *lopen(loader **L, const loader_config *c) { return loader_open(L, c, &lerr_) ? lerr_.msg : NULL; }
static const char *lnext(loader *L, const loader_batch **b, double *w) { return loader_next(L, b, w, &lerr_) ? lerr_.msg : NULL; }
static const char *lseek_to(loader *L, int epoch, long step) { return loader_seek(L, epoch, step, &lerr_) ? lerr_.msg : NULL; }

#define NSH 6
static const long counts[NSH] = {17, 23, 0, 19, 21, 20};   /* 100 images, one empty shard */
static const long NTOT = 100;
static const int H = 20, W = 24;
static char root[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
    (void)sb; (void)flag; (void)f;
    return remove(p);
}
static void rm_rf(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static void make_set(const char *dir, int nshards, const long *cnt, int h, int w) {
    shards_hdf5_lock();
    if (fx_write_set(dir, "train", nshards, cnt, h, w)) { printf("cannot write shards in %s\n", dir); exit(1); }
    shards_hdf5_unlock();
}

static loader_config base_config(const char *dir) {
    loader_config c = {0};
    c.data_dir = dir; c.split = "train"; c.image_size = 16; c.batch = 4; c.seed = 42;
    c.rank = 0; c.world = 1; c.train = 1;
    return c;
}

static void fixture_image(uint8_t *img, long g, int h, int w) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) img[(y * w + x) * 3 + c] = fx_pixel(g, y, x, c);
}

/* Runs `world` loaders (ranks) for `epochs` epochs; checks per epoch that the ranks' ids are
 * disjoint, each rank uses steps·batch of them, and ids + dropped tails cover every sample. */
static void test_partition(const char *dir, int world, int train, int assign, int want_assign, const char *name) {
    test_begin(name);
    loader *L[8];
    for (int r = 0; r < world; r++) {
        loader_config c = base_config(dir);
        c.rank = r; c.world = world; c.train = train; c.eval_resize = 20; c.assign = assign;
        const char *e = lopen(&L[r], &c);
        CHECK(!e, "open rank %d: %s", r, e ? e : "");
        if (e) { for (int q = 0; q < r; q++) loader_close(L[q]); test_end(); return; }
    }
    long steps = loader_steps_per_epoch(L[0]);
    for (int r = 1; r < world; r++) CHECK(loader_steps_per_epoch(L[r]) == steps, "ranks disagree on steps");
    if (train) CHECK(loader_assignment(L[0]) == want_assign, "assignment rule %d, want %d", loader_assignment(L[0]), want_assign);
    for (int ep = 0; ep < 3; ep++) {
        int seen[128] = {0};
        long used = 0, dropped_sum = 0, samples_sum = 0, valid = 0;
        for (int r = 0; r < world; r++) {
            long rs, dr;
            loader_epoch_info(L[r], ep, &rs, &dr);
            samples_sum += rs; dropped_sum += dr;
            for (long s = 0; s < steps; s++) {
                const loader_batch *b;
                double waited;
                const char *e = lnext(L[r], &b, &waited);
                CHECK(!e, "%s", e ? e : "");
                if (e) break;
                CHECK(b->epoch == ep && b->step == s, "rank %d got epoch %d step %ld, want %d %ld", r, b->epoch, b->step, ep, s);
                for (int i = 0; i < 4; i++) {
                    if (i >= b->n) { CHECK(b->ids[i] == -1 && b->labels[i] == -1, "padding not marked"); continue; }
                    long g = b->ids[i];
                    CHECK(g >= 0 && g < NTOT, "id %ld out of range", g);
                    if (g < 0 || g >= NTOT) continue;
                    seen[g]++;
                    valid++;
                    CHECK(b->labels[i] == fx_label(g), "label of %ld is %d, want %d", g, b->labels[i], fx_label(g));
                }
                used += b->n;
            }
            if (train) CHECK(dr == rs - steps * 4, "rank %d dropped %ld of %ld with %ld steps", r, dr, rs, steps);
            else CHECK(dr == 0, "eval dropped %ld", dr);
        }
        int dup = 0, covered = 0;
        for (long g = 0; g < NTOT; g++) { dup += seen[g] > 1; covered += seen[g] == 1; }
        CHECK(dup == 0, "epoch %d: %d samples given to two ranks or twice", ep, dup);
        CHECK(samples_sum == NTOT, "epoch %d: ranks hold %ld samples, want %ld", ep, samples_sum, NTOT);
        CHECK(covered + dropped_sum == NTOT, "epoch %d: %d covered + %ld dropped != %ld", ep, covered, dropped_sum, NTOT);
        CHECK(valid == used && (train ? used == world * steps * 4 : used == NTOT), "epoch %d: used %ld", ep, used);
    }
    for (int r = 0; r < world; r++) loader_close(L[r]);
    test_end();
}

/* Eval mode with a limit serves the first `limit` ids of the split, split over the ranks as
 * without one, the same every epoch; train mode refuses a limit. */
static void test_eval_limit(const char *dir) {
    test_begin("loader_eval_limit_first_ids");
    const long limits[3] = {37, NTOT + 5, 1};
    for (int li = 0; li < 3; li++)
        for (int world = 1; world <= 3; world += 2) {
            long want = limits[li] < NTOT ? limits[li] : NTOT;
            for (int r = 0; r < world; r++) {
                loader_config c = base_config(dir);
                c.train = 0; c.eval_resize = 20; c.world = world; c.rank = r; c.limit = limits[li];
                loader *L;
                const char *e = lopen(&L, &c);
                CHECK(!e, "open: %s", e ? e : "");
                if (e) continue;
                CHECK(loader_total_samples(L) == want, "limit %ld: %ld samples, want %ld", limits[li],
                      loader_total_samples(L), want);
                long lo = r * want / world, hi = (r + 1) * want / world;
                for (int ep = 0; ep < 3; ep++) {
                    long next = lo;
                    for (long s = 0; s < loader_steps_per_epoch(L); s++) {
                        const loader_batch *b;
                        double waited;
                        if ((e = lnext(L, &b, &waited))) { CHECK(0, "%s", e); break; }
                        for (int i = 0; i < b->n; i++, next++)
                            CHECK(b->ids[i] == next && b->labels[i] == fx_label(next), "limit %ld rank %d epoch %d: id %ld, "
                                  "want %ld", limits[li], r, ep, (long)b->ids[i], next);
                    }
                    CHECK(next == hi, "limit %ld rank %d/%d epoch %d ended at %ld, want %ld", limits[li], r, world, ep, next, hi);
                }
                loader_close(L);
            }
        }
    loader_config c = base_config(dir);
    c.limit = 10;
    loader *L;
    const char *e = lopen(&L, &c);
    CHECK(e && strstr(e, "eval mode only"), "train mode with a limit: %s", e ? e : "opened");
    if (!e) loader_close(L);
    test_end();
}

/* Train-mode images are exactly augment_train of the stored image with the sample's key. */
static void test_train_pixels(const char *dir, int world, int rank, int threads, int max_open, const char *name) {
    test_begin(name);
    loader_config c = base_config(dir);
    c.world = world; c.rank = rank; c.threads = threads; c.prefetch = 3; c.max_open = max_open;
    loader *L;
    const char *e = lopen(&L, &c);
    CHECK(!e, "%s", e ? e : "");
    if (e) { test_end(); return; }
    uint8_t img[20 * 24 * 3];
    float want[3 * 16 * 16];
    int bad = 0, n = 0;
    for (int s = 0; s < 12; s++) {
        const loader_batch *b;
        double waited;
        if ((e = lnext(L, &b, &waited))) { CHECK(0, "%s", e); break; }
        for (int i = 0; i < b->n; i++, n++) {
            fixture_image(img, b->ids[i], H, W);
            augment_train(want, img, H, W, 16, rng_key(42, AUG_RNG_TAG, (uint64_t)b->epoch, (uint64_t)b->ids[i], 0), INTERP_PIL);
            bad += memcmp(want, b->images + (long)i * 3 * 16 * 16, sizeof want) != 0;
        }
    }
    CHECK(n > 0 && bad == 0, "%d of %d images differ from augment_train of their sample", bad, n);
    loader_close(L);
    test_end();
}

/* With the fine-tuning recipe (every stage forced on): each image is augment_finetune of its
 * sample, whatever the rank, world size and thread count. */
static void test_recipe_pixels(const char *dir, int world, int rank, int threads, const char *name) {
    test_begin(name);
    aug_recipe r = augment_recipe_finetune();
    r.ra.prob = 1; r.re.prob = 1;
    loader_config c = base_config(dir);
    c.world = world; c.rank = rank; c.threads = threads; c.recipe = &r;
    loader *L;
    const char *e = lopen(&L, &c);
    CHECK(!e, "%s", e ? e : "");
    if (e) { test_end(); return; }
    uint8_t img[20 * 24 * 3];
    float want[3 * 16 * 16], plain[3 * 16 * 16];
    void *work = malloc(augment_finetune_work_bytes(H, W, 16, r.interp));
    int bad = 0, n = 0, differ = 0;
    for (int s = 0; s < 8; s++) {
        const loader_batch *b;
        if ((e = lnext(L, &b, NULL))) { CHECK(0, "%s", e); break; }
        for (int i = 0; i < b->n; i++, n++) {
            fixture_image(img, b->ids[i], H, W);
            augment_finetune(want, img, H, W, 16, &r, 42, b->epoch, b->ids[i], work);
            bad += memcmp(want, b->images + (long)i * 3 * 16 * 16, sizeof want) != 0;
            augment_train(plain, img, H, W, 16, rng_key(42, AUG_RNG_TAG, (uint64_t)b->epoch, (uint64_t)b->ids[i], 0), INTERP_PIL);
            differ += memcmp(plain, want, sizeof want) != 0;
        }
    }
    CHECK(n > 0 && bad == 0, "%d of %d images differ from augment_finetune of their sample", bad, n);
    CHECK(differ == n, "%d of %d images equal the pretraining transform", n - differ, n);
    free(work);
    loader_close(L);
    /* a recipe that disagrees with the loader's interpolation, or a bad one, is refused */
    c.interp = INTERP_TORCH;
    CHECK((e = lopen(&L, &c)) && strstr(e, "interpolation"), "interp mismatch: %s", e ? e : "accepted");
    if (!e) loader_close(L);
    c.interp = INTERP_PIL; r.re.prob = 1.5;
    CHECK((e = lopen(&L, &c)) && strstr(e, "erasing: probability 1.5"), "bad recipe: %s", e ? e : "accepted");
    if (!e) loader_close(L);
    test_end();
}

static void test_eval_pixels(const char *dir) {
    test_begin("loader_eval_pixels_exact");
    loader_config c = base_config(dir);
    c.train = 0; c.eval_resize = 20; c.world = 2; c.rank = 1;
    loader *L;
    const char *e = lopen(&L, &c);
    CHECK(!e, "%s", e ? e : "");
    if (e) { test_end(); return; }
    double maxd = 0;
    long next = NTOT / 2;   /* rank 1 of 2 holds ids 50..99 in order */
    for (long s = 0; s < loader_steps_per_epoch(L); s++) {
        const loader_batch *b;
        double waited;
        if ((e = lnext(L, &b, &waited))) { CHECK(0, "%s", e); break; }
        for (int i = 0; i < b->n; i++) {
            CHECK(b->ids[i] == next, "id %ld, want %ld", (long)b->ids[i], next);
            next++;
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < 16; y++)
                    for (int x = 0; x < 16; x++) {   /* centre crop offset (2, 4), no resampling */
                        double v = (fx_pixel(b->ids[i], y + 2, x + 4, ch) / 255.0 - aug_mean[ch]) / aug_std[ch];
                        maxd = fmax(maxd, fabs(b->images[((long)i * 3 + ch) * 256 + y * 16 + x] - v));
                    }
        }
    }
    CHECK(next == NTOT, "eval ended at id %ld", next);
    CHECK(maxd < 2e-6, "eval pixels off by %.3g", maxd);
    loader_close(L);
    /* shards already S×S (data_prep's val split): by default passed through unchanged */
    char sq[300];
    static const long six[1] = {6};
    snprintf(sq, sizeof sq, "%s/square", root);
    make_set(sq, 1, six, 16, 16);
    c = base_config(sq);
    c.train = 0;
    const loader_batch *b;
    double waited;
    e = lopen(&L, &c);
    int opened = !e;
    if (!e) e = lnext(L, &b, &waited);
    CHECK(!e, "%s", e ? e : "");
    if (!e) {
        maxd = 0;
        for (int i = 0; i < 4; i++)
            for (int ch = 0; ch < 3; ch++)
                for (int y = 0; y < 16; y++)
                    for (int x = 0; x < 16; x++) {
                        double v = (fx_pixel(b->ids[i], y, x, ch) / 255.0 - aug_mean[ch]) / aug_std[ch];
                        maxd = fmax(maxd, fabs(b->images[((long)i * 3 + ch) * 256 + y * 16 + x] - v));
                    }
        CHECK(maxd < 2e-6, "S×S shards not passed through: off by %.3g", maxd);
    }
    if (opened) loader_close(L);
    test_end();
}

/* Batches as (ids, images) of steps [0, n) from a loader config. */
static void collect(loader_config c, int n, int64_t *ids, float *imgs) {
    loader *L;
    const char *e = lopen(&L, &c);
    if (e) { CHECK(0, "%s", e); return; }
    for (int s = 0; s < n; s++) {
        const loader_batch *b;
        double w;
        if ((e = lnext(L, &b, &w))) { CHECK(0, "%s", e); break; }
        memcpy(ids + s * 4, b->ids, 4 * sizeof(int64_t));
        memcpy(imgs + (long)s * 4 * 768, b->images, 4 * 768 * sizeof(float));
    }
    loader_close(L);
}

static void test_determinism_resume(const char *dir) {
    test_begin("loader_threads_deterministic_and_resume");
    enum { N = 60 };   /* 2.4 epochs of 25 steps */
    static int64_t a[N * 4], b[N * 4], r[N * 4];
    static float ia[N * 4 * 768], ib[N * 4 * 768], ir[N * 4 * 768];
    loader_config c = base_config(dir);
    collect(c, N, a, ia);
    c.threads = 2; c.prefetch = 4;
    collect(c, N, b, ib);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(ia, ib, sizeof ia) == 0, "1 and 2 threads give different batches");
    CHECK(memcmp(a, a + 100, 100 * sizeof(int64_t)) != 0, "epochs 0 and 1 have the same order");
    /* resume at epoch 1 step 3 (global step 28) via the config */
    c.threads = 1; c.start_epoch = 1; c.start_step = 3;
    collect(c, N - 28, r, ir);
    CHECK(memcmp(r, a + 28 * 4, (N - 28) * 4 * sizeof(int64_t)) == 0 &&
          memcmp(ir, ia + 28 * 4 * 768, (size_t)(N - 28) * 4 * 768 * sizeof(float)) == 0, "resumed run differs");
    /* tell / seek on a live loader */
    c.start_epoch = 0; c.start_step = 0;
    loader *L;
    const char *e = lopen(&L, &c);
    if (!e) {
        const loader_batch *bt;
        double w;
        for (int s = 0; s < 27 && !e; s++) e = lnext(L, &bt, &w);
        int ep;
        long st;
        loader_tell(L, &ep, &st);
        CHECK(ep == 1 && st == 2, "tell after 27 batches: epoch %d step %ld", ep, st);
        if (!e) e = lseek_to(L, 0, 7);
        if (!e) e = lnext(L, &bt, &w);
        CHECK(!e && bt->epoch == 0 && bt->step == 7 && memcmp(bt->ids, a + 7 * 4, 4 * sizeof(int64_t)) == 0,
              "seek(0,7) gave a different batch");
        CHECK(lseek_to(L, 0, 25) != NULL, "seek past the epoch accepted");
        loader_close(L);
    }
    CHECK(!e, "%s", e ? e : "");
    test_end();
}

/* Different world sizes give the same augmentation of a sample in the same epoch. */
static void test_world_independent(const char *dir) {
    test_begin("loader_augmentation_independent_of_world");
    enum { N = 25 };
    static int64_t a[N * 4], b[N * 4];
    static float ia[N * 4 * 768], ib[N * 4 * 768];
    loader_config c = base_config(dir);
    collect(c, N, a, ia);
    c.world = 3; c.rank = 2;
    long steps3;
    {
        loader *L;
        const char *e = lopen(&L, &c);
        steps3 = e ? 0 : loader_steps_per_epoch(L);
        if (!e) loader_close(L);
    }
    collect(c, (int)steps3, b, ib);
    int common = 0, bad = 0;
    for (int i = 0; i < steps3 * 4; i++)
        for (int j = 0; j < N * 4; j++)
            if (a[j] == b[i]) { common++; bad += memcmp(ia + (long)j * 768, ib + (long)i * 768, 768 * sizeof(float)) != 0; }
    CHECK(common > 0 && bad == 0, "%d of %d common samples augmented differently", bad, common);
    test_end();
}

/* With "training" steps several times longer than making a batch, the next batch must be ready
 * when asked for: the waits must be far below the time the loader thread spends per batch. */
static void test_prefetch(void) {
    test_begin("loader_prefetches_while_training");
    char dir[300];
    static const long big[2] = {20, 20};
    snprintf(dir, sizeof dir, "%s/big", root);
    make_set(dir, 2, big, 128, 128);
    loader_config c = base_config(dir);
    c.image_size = 112; c.batch = 16;
    loader *L;
    const char *e = lopen(&L, &c);
    if (e) { CHECK(0, "%s", e); test_end(); return; }
    double w, waits[8] = {0}, train_s = 0.03;
    const loader_batch *b;
    for (int s = 0; s < 8 && !e; s++) {
        e = lnext(L, &b, &w);
        CHECK(w >= 0 && w < 60, "waited %g s", w);
        waits[s] = w;
        /* the first wait is about one batch's making (slow under sanitizers): train 3× longer */
        if (s == 0 && 3 * w > train_s) train_s = 3 * w;
        usleep((useconds_t)(train_s * 1e6));
    }
    CHECK(!e, "%s", e ? e : "");
    double rs, as;
    long nb;
    loader_stats(L, &rs, &as, &nb);
    double fill = (rs + as) / (nb > 0 ? nb : 1);
    int slow = 0;
    for (int s = 1; s < 8; s++) slow += waits[s] > 0.3 * fill;
    /* one late wake-up is tolerated: the test machine is shared */
    CHECK(fill > 0 && slow <= 1, "%d of 7 steps waited > 30%% of the %.2f ms a batch takes to make", slow, 1e3 * fill);
    CHECK(nb >= 8, "stats: %ld batches", nb);
    loader_close(L);
    test_end();
}

/* ---- bad input ---- */

static void expect_open_error(loader_config c, const char *want1, const char *want2, const char *what) {
    loader *L;
    const char *e = lopen(&L, &c);
    CHECK(e != NULL, "%s: accepted", what);
    if (!e) { loader_close(L); return; }
    CHECK(strstr(e, want1) && (!want2 || strstr(e, want2)), "%s: message '%s' lacks '%s' / '%s'", what, e, want1, want2 ? want2 : "");
    CHECK(!strchr(e, '\n'), "%s: message spans lines", what);
}

static void copy_set(const char *from, const char *to) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    if (system(cmd) != 0) { printf("cannot copy %s\n", from); exit(1); }
}

static void test_errors(const char *good) {
    test_begin("loader_bad_input_errors");
    char d[512], p[1200];
    loader_config c = base_config(good);
    snprintf(d, sizeof d, "%s/nonexistent", root);
    c.data_dir = d;
    expect_open_error(c, d, "No such file", "missing data path");
    snprintf(d, sizeof d, "%s/empty", root);
    mkdir(d, 0755);
    c.data_dir = d;
    expect_open_error(c, d, "no shards", "empty data path");

    snprintf(d, sizeof d, "%s/missing", root);
    copy_set(good, d);
    snprintf(p, sizeof p, "%s/train/train-00002-of-00006.h5", d);
    unlink(p);
    expect_open_error(c, "train-00002-of-00006.h5", "missing", "missing shard");

    snprintf(d, sizeof d, "%s/garbage", root);
    copy_set(good, d);
    snprintf(p, sizeof p, "%s/train/train-00001-of-00006.h5", d);
    FILE *f = fopen(p, "r+b");
    if (f) { fputs("this is not an HDF5 superblock", f); fclose(f); }
    expect_open_error(c, p, "cannot open as HDF5", "overwritten header");

    snprintf(d, sizeof d, "%s/truncated", root);
    copy_set(good, d);
    snprintf(p, sizeof p, "%s/train/train-00003-of-00006.h5", d);
    CHECK(truncate(p, 3000) == 0, "truncate");
    expect_open_error(c, p, "HDF5", "truncated shard");

    snprintf(d, sizeof d, "%s/sizes", root);
    copy_set(good, d);
    snprintf(p, sizeof p, "%s/train/train-00004-of-00006.h5", d);
    shards_hdf5_lock();
    fx_write_shard(p, "train", 4, 6, 21, 22, 24, 59, 0);
    shards_hdf5_unlock();
    expect_open_error(c, p, "22x24", "different image sizes");

    snprintf(d, sizeof d, "%s/counts", root);
    copy_set(good, d);
    snprintf(p, sizeof p, "%s/train/train-00006-of-00007.h5", d);
    if ((f = fopen(p, "w"))) fclose(f);
    expect_open_error(c, "train-00006-of-00007.h5", "says 7 shards", "inconsistent shard counts");

    snprintf(d, sizeof d, "%s/renamed", root);   /* shard 0's file under shard 1's name */
    copy_set(good, d);
    snprintf(p, sizeof p, "cp '%s/train/train-00000-of-00006.h5' '%s/train/train-00001-of-00006.h5'", d, d);
    CHECK(system(p) == 0, "cp");
    c = base_config(d);
    expect_open_error(c, "train-00001-of-00006.h5: shard_index attribute 0 disagrees", NULL, "misnamed shard");

    snprintf(d, sizeof d, "%s/version", root);
    copy_set(good, d);
    snprintf(p, sizeof p, "%s/train/train-00005-of-00006.h5", d);
    shards_hdf5_lock();
    fx_write_shard(p, "train", 5, 6, 20, H, W, 80, FX_VERSION_NEXT);
    shards_hdf5_unlock();
    expect_open_error(c, p, "format_version 3", "future format version");

    c = base_config(good);
    c.batch = 101;
    expect_open_error(c, good, "fewer than one batch", "batch larger than a rank's share");
    c = base_config(good);
    c.world = 2; c.rank = 2;
    expect_open_error(c, "rank 2", NULL, "rank outside world");
    c = base_config(good);
    c.train = 0; c.eval_resize = 10;
    expect_open_error(c, "eval resize 10", NULL, "eval resize below image size");

    /* a negative label is found by the loader thread when it first reads that shard */
    snprintf(d, sizeof d, "%s/labels", root);
    copy_set(good, d);
    snprintf(p, sizeof p, "%s/train/train-00001-of-00006.h5", d);
    shards_hdf5_lock();
    fx_write_shard(p, "train", 1, 6, 23, H, W, 17, FX_NEG_LABEL);
    shards_hdf5_unlock();
    c = base_config(d);
    loader *L;
    const char *e = lopen(&L, &c);
    CHECK(!e, "labels set: %s", e ? e : "");
    if (!e) {
        const loader_batch *b;
        double w;
        for (int s = 0; s < 25 && !e; s++) e = lnext(L, &b, &w);
        CHECK(e && strstr(e, p) && strstr(e, "negative"), "bad label: %s", e ? e : "not reported");
        const char *e2 = lnext(L, &b, &w);
        CHECK(e2 && b == NULL, "error not sticky");
        loader_close(L);
    }
    snprintf(p, sizeof p, "%s/train/train-00001-of-00006.h5", d);
    shards_hdf5_lock();
    fx_write_shard(p, "train", 1, 6, 23, H, W, 17, FX_BIG_LABEL);
    shards_hdf5_unlock();
    e = lopen(&L, &c);
    CHECK(!e, "labels set: %s", e ? e : "");
    if (!e) {
        const loader_batch *b;
        double w;
        for (int s = 0; s < 25 && !e; s++) e = lnext(L, &b, &w);
        CHECK(e && strstr(e, p) && strstr(e, "not below num_classes 10"), "label >= num_classes: %s", e ? e : "not reported");
        loader_close(L);
    }
    test_end();
}

/* jpeg shards: train and eval batches carry the right labels and finite, in-range values;
 * the same with 1 and 2 threads and on resume; a damaged image or a wrong size is one error
 * naming the shard and the image. (The pixels against torchvision: t_loader_jpeg_torch.sh.) */
static void test_jpeg(void) {
    test_begin("loader_jpeg_shards");
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/jpeg", root);
    const long cnt[3] = {9, 0, 14};
    shards_hdf5_lock();
    int rc = fx_write_set_kind(dir, "train", 3, cnt, 0, 0, 1);
    shards_hdf5_unlock();
    CHECK(rc == 0, "cannot write jpeg shards");
    enum { N = 12 };   /* 2 epochs of 5 steps + 2 */
    static int64_t a[N * 4], b[N * 4];
    static float ia[N * 4 * 768], ib[N * 4 * 768];
    loader_config c = base_config(dir);
    loader *L;
    const char *e = lopen(&L, &c);
    CHECK(!e, "open: %s", e ? e : "");
    if (!e) {
        CHECK(loader_image_height(L) == 0 && loader_image_width(L) == 0 && loader_steps_per_epoch(L) == 5,
              "jpeg sets have no one image size: %dx%d, %ld steps", loader_image_height(L), loader_image_width(L),
              loader_steps_per_epoch(L));
        loader_close(L);
    }
    collect(c, N, a, ia);
    c.threads = 2;
    collect(c, N, b, ib);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(ia, ib, sizeof ia) == 0, "1 and 2 threads give different jpeg batches");
    int bad = 0;
    for (long i = 0; i < N * 4 * 768; i++) bad += !(ia[i] > -2.2f && ia[i] < 2.7f);
    CHECK(!bad, "%d values outside the normalised pixel range", bad);
    c.start_epoch = 1; c.start_step = 2;
    collect(c, 3, b, ib);
    CHECK(memcmp(a + 7 * 4, b, 3 * 4 * sizeof(int64_t)) == 0 && memcmp(ia + 7 * 4 * 768, ib, 3 * 4 * 768 * sizeof(float)) == 0,
          "resume at epoch 1 step 2 differs");
    /* the fine-tuning chain on jpeg shards: deterministic over threads and resume, not pretraining's */
    {
        aug_recipe r = augment_recipe_finetune();
        r.ra.prob = 1; r.re.prob = 1;
        loader_config cr = base_config(dir);
        cr.recipe = &r;
        static int64_t ra_[N * 4];
        static float ira[N * 4 * 768], irb[N * 4 * 768];
        collect(cr, N, ra_, ira);
        cr.threads = 2;
        collect(cr, N, ra_, irb);
        CHECK(memcmp(ira, irb, sizeof ira) == 0, "recipe: 1 and 2 threads give different jpeg batches");
        CHECK(memcmp(ra_, a, sizeof ra_) == 0 && memcmp(ira, ia, sizeof ira) != 0, "recipe: same samples, other pixels");
        cr.start_epoch = 1; cr.start_step = 2;
        collect(cr, 3, ra_, irb);
        CHECK(memcmp(ira + 7 * 4 * 768, irb, 3 * 4 * 768 * sizeof(float)) == 0, "recipe: resume at epoch 1 step 2 differs");
        int nonfinite = 0;
        for (long i = 0; i < N * 4 * 768; i++) nonfinite += !isfinite(ira[i]);
        CHECK(!nonfinite, "recipe: %d values not finite", nonfinite);
    }
    /* eval: every image once, in order, with its label */
    c = base_config(dir);
    c.train = 0; c.batch = 5;
    if (!(e = lopen(&L, &c))) {
        long seen = 0;
        for (long st = 0; st < loader_steps_per_epoch(L); st++) {
            const loader_batch *bt;
            if ((e = lnext(L, &bt, NULL))) break;
            for (int i = 0; i < bt->n; i++, seen++) bad += bt->ids[i] != seen || bt->labels[i] != fx_label(seen);
        }
        CHECK(!e && seen == 23 && !bad, "eval: %ld images, %d wrong: %s", seen, bad, e ? e : "");
        loader_close(L);
    } else CHECK(0, "eval open: %s", e);
    /* damaged image 1 of shard 2 (global id 10), and a wrong size of image 0 of shard 0 */
    for (int t = 0; t < 2; t++) {
        snprintf(p, sizeof p, "%s/train/train-%05d-of-00003.h5", dir, t ? 0 : 2);
        shards_hdf5_lock();
        fx_write_jpeg_shard(p, "train", t ? 0 : 2, 3, cnt[t ? 0 : 2], t ? 0 : 9, t ? FX_BAD_SIZE : FX_BAD_JPEG);
        shards_hdf5_unlock();
        c = base_config(dir);
        c.train = 0; c.batch = 23;
        const char *want = t ? "its JPEG header says 9x7, /widths and /heights 10x7" : "train-00002-of-00003.h5: image 1: corrupt";
        if (!(e = lopen(&L, &c))) {
            const loader_batch *bt;
            e = lnext(L, &bt, NULL);
            CHECK(e && strstr(e, want), "damaged jpeg %d: got '%s', want '%s'", t, e ? e : "no error", want);
            loader_close(L);
        } else CHECK(0, "open: %s", e);
        snprintf(p, sizeof p, "%s/train/train-%05d-of-00003.h5", dir, t ? 0 : 2);
        shards_hdf5_lock();
        fx_write_jpeg_shard(p, "train", t ? 0 : 2, 3, cnt[t ? 0 : 2], t ? 0 : 9, 0);
        shards_hdf5_unlock();
    }
    /* a set mixing raw and jpeg shards */
    snprintf(p, sizeof p, "%s/train/train-00001-of-00003.h5", dir);
    shards_hdf5_lock();
    fx_write_shard(p, "train", 1, 3, 0, H, W, 9, 0);
    shards_hdf5_unlock();
    e = lopen(&L, &(loader_config){.data_dir = dir, .split = "train", .image_size = 16, .batch = 4, .world = 1, .train = 1});
    CHECK(e && strstr(e, "is a raw shard but") && strstr(e, "is a jpeg shard"), "mixed set: %s", e ? e : "accepted");
    if (!e) loader_close(L);
    test_end();
}

int main(void) {
    snprintf(root, sizeof root, "%s/semaim_loader_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) { printf("FAIL: mkdtemp\n"); return 1; }
    char good[300];
    snprintf(good, sizeof good, "%s/good", root);
    make_set(good, NSH, counts, H, W);
    /* auto: world 1 keeps everything by shard; by shard, world 2 would keep 2·36 = 72% and
     * world 3 3·16 = 48% of the samples, so they deal; world 7 > 6 shards always deals */
    test_partition(good, 1, 1, LOADER_ASSIGN_AUTO, LOADER_ASSIGN_SHARDS, "loader_partition_world1_auto");
    test_partition(good, 2, 1, LOADER_ASSIGN_SHARDS, LOADER_ASSIGN_SHARDS, "loader_partition_world2_by_shard");
    test_partition(good, 3, 1, LOADER_ASSIGN_SHARDS, LOADER_ASSIGN_SHARDS, "loader_partition_world3_by_shard");
    test_partition(good, 2, 1, LOADER_ASSIGN_AUTO, LOADER_ASSIGN_DEAL, "loader_partition_world2_auto_deals");
    test_partition(good, 3, 1, LOADER_ASSIGN_DEAL, LOADER_ASSIGN_DEAL, "loader_partition_world3_dealt");
    test_partition(good, 7, 1, LOADER_ASSIGN_AUTO, LOADER_ASSIGN_DEAL, "loader_partition_world7_auto_deals");
    test_partition(good, 3, 0, 0, 0, "loader_partition_world3_eval");
    test_train_pixels(good, 1, 0, 1, 0, "loader_train_pixels_world1");
    /* dealt: this rank reads from all 5 non-empty shards through 2 open files (LRU evictions) */
    test_train_pixels(good, 2, 1, 2, 2, "loader_train_pixels_world2_threads2_two_open_files");
    test_recipe_pixels(good, 1, 0, 1, "loader_recipe_pixels_world1");
    test_recipe_pixels(good, 3, 2, 2, "loader_recipe_pixels_world3_threads2");
    test_eval_pixels(good);
    test_eval_limit(good);
    test_determinism_resume(good);
    test_world_independent(good);
    test_prefetch();
    test_errors(good);
    test_jpeg();
    rm_rf(root);
    return test_exit();
}
