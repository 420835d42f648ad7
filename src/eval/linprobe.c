/* Linear probe on frozen features (SPEC §5), data-parallel: every rank holds a slice of the
 * train features; a step's global batch is a slice of one permutation of all train ids, each
 * rank handles the members it holds, and the BatchNorm statistics and the gradient are summed
 * over ranks (the gradient with the ring all-reduce, so every replica stays bit-identical).
 * The features are frozen and BatchNorm has no affine parameters, so no gradient flows into
 * the statistics: dW = dlogitsᵀ · x̂ exactly. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/clock.h"
#include "semaim/allreduce.h"
#include "kernels/ops.h"
#include "semaim/eval.h"
#include "semaim/optim.h"
#include "semaim/rng.h"

#define LP_RNG_TAG 0x6c696e70726f6265ULL   /* "linprobe" */
#define BN_EPS 1e-6
#define BN_MOMENTUM 0.1

/* x̂ = (x − mean) / sqrt(var + eps) for n rows. */
static void bn_apply(float *out, const float *x, long n, int D, const double *mean, const double *var) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++)
        for (int d = 0; d < D; d++) out[i * D + d] = (float)((x[i * D + d] - mean[d]) / sqrt(var[d] + BN_EPS));
}

/* Row-wise top-5 classes of logits [n,C] (ties to the lower index). */
static void top5_rows(const float *logits, long n, int C, int32_t *pred5) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) top5_classes(NULL, logits + i * C, C, pred5 + i * 5);
}

int linprobe_run(const featset_t *train, const featset_t *val, const char *kind, const linprobe_cfg_t *cfg,
                 MPI_Comm comm, void (*on_epoch)(const linprobe_epoch_t *, void *), void *ctx, err_t *err) {
    const float *X, *XV;
    if (featset_pair_rows(train, val, kind, &X, &XV, err)) return -1;
    if (train->dim != val->dim) {
        err_set(err, ERR_INPUT, "train features have width %d, val features %d (different models?)", train->dim, val->dim);
        return -1;
    }
    int C;
    if (eval_num_classes(train, val, comm, &C, err)) return -1;
    const int D = train->dim, B = cfg->batch;
    const long N = train->total, spe = N / B;
    if (spe < 1) { err_set(err, ERR_INPUT, "linear probe: batch %d is larger than the %ld train images", B, N); return -1; }
    const long total = spe * cfg->epochs, warmup = (long)llround(cfg->warmup_epochs * spe);
    const double peak = cfg->base_lr * B / 256.0;
    const long np = (long)C * D + C;   /* W then b: one buffer for the all-reduce */
    float *w = calloc(np, sizeof(float)), *g = calloc(np, sizeof(float)), *mom = calloc(np, sizeof(float));
    int64_t *perm = malloc(sizeof(int64_t) * N);
    long *rows = malloc(sizeof(long) * B);
    long vn = val->n > 0 ? val->n : 1;
    float *xb = malloc(sizeof(float) * (size_t)B * D), *lg = malloc(sizeof(float) * (size_t)B * C);
    float *dl = malloc(sizeof(float) * (size_t)B * C), *tb = malloc(sizeof(float) * (size_t)B * C),
          *pb = malloc(sizeof(float) * (size_t)B * C);
    int32_t *yb = malloc(sizeof(int32_t) * (size_t)B);
    float *xv = malloc(sizeof(float) * (size_t)vn * D), *lv = malloc(sizeof(float) * (size_t)vn * C);
    int32_t *pred5 = malloc(sizeof(int32_t) * vn * 5);
    double *st = malloc(sizeof(double) * (2 * D + 2)), *gst = malloc(sizeof(double) * (2 * D + 2));
    double *mean = malloc(sizeof(double) * D), *var = malloc(sizeof(double) * D);
    double *rmean = calloc(D, sizeof(double)), *rvar = malloc(sizeof(double) * D);
    allreduce_t *ar = allreduce_create(comm, np, 0, 0);
    int bad = !w || !g || !mom || !perm || !rows || !xb || !lg || !dl || !tb || !pb || !yb || !xv || !lv || !pred5 || !st || !gst || !mean ||
              !var || !rmean || !rvar || !ar, any;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm);
    int rc = -1;
    if (any) { err_set(err, ERR_RUNTIME, "linear probe: out of memory (%ld images, width %d, %d classes)", N, D, C); goto out; }
    {
        rng_t r = rng_make(rng_key(cfg->seed, LP_RNG_TAG, 0, 0, 0));
        for (long i = 0; i < (long)C * D; i++) w[i] = (float)(0.01 * rng_normal(&r));
    }
    for (int d = 0; d < D; d++) rvar[d] = 1.0;   /* torch's running_var starts at 1 */
    const long lo = train->lo, hi = train->lo + train->n;
    long it = 0;
    for (int ep = 0; ep < cfg->epochs; ep++) {
        double t0 = clock_now(), loss_sum = 0, lr = 0;
        for (long i = 0; i < N; i++) perm[i] = i;
        rng_t r = rng_make(rng_key(cfg->seed, LP_RNG_TAG, 1, (uint64_t)ep, 0));
        rng_shuffle_i64(&r, perm, N);
        for (long s = 0; s < spe; s++, it++) {
            int nl = 0;
            for (long j = s * B; j < (s + 1) * B; j++)
                if (perm[j] >= lo && perm[j] < hi) rows[nl++] = perm[j] - lo;
            /* BatchNorm statistics of the global batch */
            memset(st, 0, sizeof(double) * (2 * D + 2));
            for (int i = 0; i < nl; i++) {
                const float *x = X + rows[i] * D;
                for (int d = 0; d < D; d++) { st[d] += x[d]; st[D + d] += (double)x[d] * x[d]; }
            }
            MPI_Allreduce(st, gst, 2 * D, MPI_DOUBLE, MPI_SUM, comm);
            for (int d = 0; d < D; d++) {
                mean[d] = gst[d] / B;
                var[d] = fmax(gst[D + d] / B - mean[d] * mean[d], 0.0);
                rmean[d] = (1 - BN_MOMENTUM) * rmean[d] + BN_MOMENTUM * mean[d];
                rvar[d] = (1 - BN_MOMENTUM) * rvar[d] + BN_MOMENTUM * var[d] * B / (B > 1 ? B - 1 : 1);
            }
            for (int i = 0; i < nl; i++) memcpy(xb + (long)i * D, X + rows[i] * D, sizeof(float) * D);
            bn_apply(xb, xb, nl, D, mean, var);
            /* logits, softmax cross-entropy, dlogits = (p − onehot) / B */
            memset(g, 0, sizeof(float) * np);
            double ls = 0;
            if (nl > 0) {
                for (int i = 0; i < nl; i++) memcpy(lg + (long)i * C, w + (long)C * D, sizeof(float) * C);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nl, C, D, 1.0f, xb, D, w, D, 1.0f, lg, C);
                for (int i = 0; i < nl; i++) yb[i] = train->labels[rows[i]];
                label_targets(tb, yb, nl, C, 0.0);
                ls = softce_forward(pb, lg, tb, nl, C) * nl;   /* the sum over this rank's rows */
                memset(dl, 0, sizeof(float) * (size_t)nl * C);
                softce_backward(dl, pb, tb, nl, C, (float)nl / B);   /* (p - onehot) / global batch */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, D, nl, 1.0f, dl, C, xb, D, 0.0f, g, D);
                for (int i = 0; i < nl; i++)
                    for (int c = 0; c < C; c++) g[(long)C * D + c] += dl[(long)i * C + c];
            }
            loss_sum += ls;
            if (allreduce_sum(ar, g, np) != MPI_SUCCESS) { err_set(err, ERR_RUNTIME, "linear probe: all-reduce failed"); goto out; }
            lr = optim_lr_at(peak, 0.0, it, warmup, total);
            float fl = (float)lr, mu = (float)cfg->momentum, wd = (float)cfg->weight_decay;
            for (long i = 0; i < np; i++) {
                float gi = g[i] + (i < (long)C * D ? wd * w[i] : 0.0f);   /* no decay on the bias */
                mom[i] = mu * mom[i] + gi;
                w[i] -= fl * mom[i];
            }
        }
        /* evaluation with the running statistics */
        long vl = val->n;
        bn_apply(xv, XV, vl, D, rmean, rvar);
        for (long i = 0; i < vl; i++) memcpy(lv + i * C, w + (long)C * D, sizeof(float) * C);
        if (vl > 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)vl, C, D, 1.0f, xv, D, w, D, 1.0f, lv, C);
        top5_rows(lv, vl, C, pred5);
        long h1, h5;
        topk_hits(pred5, val->labels, vl, &h1, &h5);
        double cnt[3] = {(double)h1, (double)h5, loss_sum}, gcnt[3];
        MPI_Allreduce(cnt, gcnt, 3, MPI_DOUBLE, MPI_SUM, comm);
        linprobe_epoch_t e = {ep + 1, gcnt[2] / ((double)spe * B), lr, 100.0 * gcnt[0] / val->total,
                              100.0 * gcnt[1] / val->total, clock_now() - t0};
        if (!isfinite(e.loss)) { err_set(err, ERR_NONFINITE, "linear probe: loss is not finite in epoch %d", ep + 1); goto out; }
        if (on_epoch) on_epoch(&e, ctx);
    }
    rc = 0;
out:
    if (ar) allreduce_free(ar);
    free(w); free(g); free(mom); free(perm); free(rows); free(xb); free(lg); free(dl); free(tb); free(pb); free(yb); free(xv); free(lv); free(pred5);
    free(st); free(gst); free(mean); free(var); free(rmean); free(rvar);
    return rc;
}
