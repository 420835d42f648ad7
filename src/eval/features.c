/* Evaluation features over HDF5 shards: the loader in eval mode feeds this rank's slice of a
 * split through the encoder (full attention, final norm), batch by batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/slice.h"
#include "semaim/eval.h"
#include "semaim/encoder.h"
#include "semaim/loader.h"
#include "semaim/shards.h"

static long chunk_queries = 0;

void eval_set_chunks(long featfile_rows, long knn_queries) {
    featfile_set_chunk(featfile_rows);
    chunk_queries = knn_queries > 0 ? knn_queries : 0;
}

long eval_knn_chunk(int world, int k) {
    long q = chunk_queries ? chunk_queries : (4L << 20) / ((long)world * k);
    return q > 0 ? q : 1;
}

static int open_split(loader **ld, int S, const char *data, const char *split, long limit, int batch, int rank,
                      int world, err_t *err) {
    loader_config lc = {.data_dir = data, .split = split, .image_size = S, .batch = batch, .seed = 0,
                        .rank = rank, .world = world, .train = 0, .threads = 1, .limit = limit, .no_upsample = 1};
    *ld = NULL;
    return loader_open(ld, &lc, err);
}

int features_open(loader **ld, const model_t *m, const char *data, const char *split, long limit, int batch, int rank,
                  int world, err_t *err) {
    return open_split(ld, m->cfg.image, data, split, limit, batch, rank, world, err);
}

/* This rank's slice of the split: rows of width dim, as encoder features (cls, mean, gap) or,
 * with pixels, as the images themselves. */
static int slice_alloc(featset_t *fs, const loader *ld, int dim, int pixels, int rank, int world, err_t *err) {
    memset(fs, 0, sizeof *fs);
    long N = loader_total_samples(ld);
    fs->total = N;
    fs->lo = slice_lo(N, rank, world);
    fs->n = slice_lo(N, rank + 1, world) - fs->lo;
    fs->dim = dim;
    fs->num_classes = loader_num_classes(ld);
    int ok;
    if (pixels) {
        size_t rows = (size_t)(fs->n > 0 ? fs->n : 1);
        fs->pixels = malloc(sizeof(float) * rows * (size_t)dim);
        fs->labels = malloc(sizeof(int32_t) * rows);
        ok = fs->pixels && fs->labels;
        if (!ok) featset_free(fs);
    } else {
        ok = featset_alloc(fs, fs->n, dim) == 0;
    }
    if (ok) return 0;
    return err_set(err, ERR_RUNTIME, "features: out of memory for %ld images of width %d", fs->n, dim);
}

int features_alloc(featset_t *fs, const loader *ld, const model_t *m, int rank, int world, err_t *err) {
    return slice_alloc(fs, ld, m->d.D, 0, rank, world, err);
}

/* Rows done..done+b->n-1 of fs from one batch. */
typedef void (*fill_fn)(featset_t *fs, const loader_batch *b, long done, void *ctx);

/* Every batch of the loader's epoch into fs, in the order of the slice's image ids. */
static int run_slice(featset_t *fs, loader *ld, fill_fn fill, void *ctx, err_t *err) {
    long steps = loader_steps_per_epoch(ld), done = 0;
    for (long s = 0; s < steps; s++) {
        const loader_batch *b;
        if (loader_next(ld, &b, NULL, err)) return -1;
        if (b->n == 0) continue;
        if (done + b->n > fs->n)
            return err_set(err, ERR_INPUT, "features: the loader returned more images than this rank's slice of %ld",
                           fs->n);
        for (int i = 0; i < b->n; i++)
            if (b->ids[i] != fs->lo + done + i)
                return err_set(err, ERR_INPUT, "features: loader returned image %lld where %ld was expected",
                               (long long)b->ids[i], fs->lo + done + i);
        fill(fs, b, done, ctx);
        memcpy(fs->labels + done, b->labels, sizeof(int32_t) * b->n);
        done += b->n;
    }
    if (done != fs->n)
        return err_set(err, ERR_INPUT, "features: %ld of %ld images of this rank's slice were returned", done, fs->n);
    return 0;
}

typedef struct { model_t *m; acts_t *a; } encode_ctx;

static void fill_encoded(featset_t *fs, const loader_batch *b, long done, void *ctx) {
    encode_ctx *c = ctx;
    long D = fs->dim;
    encoder_features(c->m, c->a, b->images, b->n, fs->cls + done * D, fs->mean + done * D, fs->gap + done * D);
}

static void fill_pixels(featset_t *fs, const loader_batch *b, long done, void *ctx) {
    (void)ctx;
    memcpy(fs->pixels + done * fs->dim, b->images, sizeof(float) * (size_t)b->n * (size_t)fs->dim);
}

int features_run(featset_t *fs, model_t *m, acts_t *a, loader *ld, err_t *err) {
    ERR_ASSERT(fs->dim == m->d.D, "features_run: a slice of width %d for a model of width %d", fs->dim, m->d.D);
    encode_ctx c = {m, a};
    return run_slice(fs, ld, fill_encoded, &c, err);
}

int features_compute(featset_t *fs, model_t *m, const char *data, const char *split, int batch, int rank, int world,
                     err_t *err) {
    memset(fs, 0, sizeof *fs);
    loader *ld = NULL;
    if (features_open(&ld, m, data, split, 0, batch, rank, world, err)) return -1;
    acts_t *a = NULL;
    int rc = features_alloc(fs, ld, m, rank, world, err);
    if (!rc && !(a = acts_create(&m->cfg, batch, ACTS_ENCODER, 0, err))) {
        err_prefix(err, "features");
        rc = -1;
    }
    if (!rc) rc = features_run(fs, m, a, ld, err);
    acts_free(a);
    loader_close(ld);
    if (rc) featset_free(fs);
    return rc;
}

int features_pixels(featset_t *fs, int S, const char *data, const char *split, int batch, int rank, int world,
                    err_t *err) {
    memset(fs, 0, sizeof *fs);
    if (S == 0) {   /* the shards' own size: no resampling at all */
        shard_set ss;
        if (shards_scan(&ss, data, split, err)) return -1;
        S = ss.jpeg ? 0 : ss.H < ss.W ? ss.H : ss.W;
        shards_free(&ss);
        if (!S) return err_set(err, ERR_INPUT, "%s: jpeg shards have no one image size: give --image with --raw-pixels", data);
    }
    loader *ld = NULL;
    if (open_split(&ld, S, data, split, 0, batch, rank, world, err)) return -1;
    int rc = slice_alloc(fs, ld, 3 * S * S, 1, rank, world, err);
    if (!rc) rc = run_slice(fs, ld, fill_pixels, NULL, err);
    loader_close(ld);
    if (rc) featset_free(fs);
    return rc;
}
