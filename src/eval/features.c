/* Evaluation features over HDF5 shards: the loader in eval mode feeds this rank's slice of a
 * split through the encoder (full attention, final norm), batch by batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/slice.h"
#include "semaim/eval.h"
#include "semaim/encoder.h"
#include "semaim/loader.h"

static long chunk_queries = 0;

void eval_set_chunks(long featfile_rows, long knn_queries) {
    featfile_set_chunk(featfile_rows);
    chunk_queries = knn_queries > 0 ? knn_queries : 0;
}

long eval_knn_chunk(int world, int k) {
    long q = chunk_queries ? chunk_queries : (4L << 20) / ((long)world * k);
    return q > 0 ? q : 1;
}

int features_compute(featset_t *fs, model_t *m, const char *data, const char *split, int batch, int rank, int world,
                     err_t *err) {
    memset(fs, 0, sizeof *fs);
    int S = m->cfg.image, D = m->d.D;
    loader_config lc = {.data_dir = data, .split = split, .image_size = S, .batch = batch, .seed = 0,
                        .rank = rank, .world = world, .train = 0, .threads = 1};
    loader *ld = NULL;
    if (loader_open(&ld, &lc, err)) return -1;
    int H = loader_image_height(ld), W = loader_image_width(ld);
    if (H < S || W < S) {
        /* upsampling small shards into a bigger model's input is never what was meant */
        err_set(err, ERR_INPUT, "%s (%s split): shards hold %dx%d images, smaller than the model's %dx%d input "
                 "(checkpoint of another config?)", data, split, H, W, S, S);
        loader_close(ld);
        return -1;
    }
    long N = loader_total_samples(ld);
    fs->total = N;
    fs->lo = slice_lo(N, rank, world);
    fs->n = slice_lo(N, rank + 1, world) - fs->lo;
    fs->dim = D;
    fs->num_classes = loader_num_classes(ld);
    size_t rows = (size_t)(fs->n > 0 ? fs->n : 1);
    fs->cls = malloc(sizeof(float) * rows * D);
    fs->mean = malloc(sizeof(float) * rows * D);
    fs->labels = malloc(sizeof(int32_t) * rows);
    int rc = -1;
    acts_t *a = NULL;
    if (!fs->cls || !fs->mean || !fs->labels) {
        err_set(err, ERR_RUNTIME, "features: out of memory for %ld images of width %d (batch %d)", fs->n, D, batch);
        goto out;
    }
    if (!(a = acts_create(&m->cfg, batch, ACTS_ENCODER, 0, err))) {
        err_prefix(err, "features");
        goto out;
    }
    long steps = loader_steps_per_epoch(ld), done = 0;
    for (long s = 0; s < steps; s++) {
        const loader_batch *b;
        if (loader_next(ld, &b, NULL, err)) goto out;
        if (b->n == 0) continue;
        for (int i = 0; i < b->n; i++)
            if (b->ids[i] != fs->lo + done + i) {
                err_set(err, ERR_INPUT, "features: loader returned image %lld where %ld was expected", (long long)b->ids[i],
                         fs->lo + done + i);
                goto out;
            }
        encoder_features(m, a, b->images, b->n, fs->cls + done * D, fs->mean + done * D);
        memcpy(fs->labels + done, b->labels, sizeof(int32_t) * b->n);
        done += b->n;
    }
    if (done != fs->n) {
        err_set(err, ERR_INPUT, "features: %ld of %ld images of this rank's slice were returned", done, fs->n);
        goto out;
    }
    rc = 0;
out:
    acts_free(a);
    loader_close(ld);
    if (rc) featset_free(fs);
    return rc;
}
