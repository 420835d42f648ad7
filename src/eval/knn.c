/* k-NN evaluation, DINO style: cosine similarity (L2-normalised rows, one GEMM per block),
 * the k most similar bank rows per query, a vote weighted by exp(sim / T).
 * Distributed: every rank searches its own slice of the bank for all queries; the per-rank
 * candidate lists are merged on rank 0 with the same total order (similarity desc, global id
 * asc), so the neighbours do not depend on the rank count -- except where two similarities
 * are within the last bits, since OpenBLAS may round a dot product differently depending on
 * where the row falls in its blocking. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/slice.h"
#include "semaim/eval.h"

void l2_normalize_rows(float *x, long n, int D) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        float *r = x + i * D;
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)r[d] * r[d];
        /* F.normalize's eps: a zero row stays zero */
        float inv = (float)(1.0 / fmax(sqrt(s), 1e-12));
        for (int d = 0; d < D; d++) r[d] *= inv;
    }
}

static inline int better(float s1, int64_t id1, float s2, int64_t id2) {
    return s1 > s2 || (s1 == s2 && id1 >= 0 && (id2 < 0 || id1 < id2));
}

/* Inserts (s, id, lab) into the sorted list of k if it belongs there. */
static inline void topk_insert(float *ts, int64_t *ti, int32_t *tl, int k, float s, int64_t id, int32_t lab) {
    if (!better(s, id, ts[k - 1], ti[k - 1])) return;
    int j = k - 1;
    while (j > 0 && better(s, id, ts[j - 1], ti[j - 1])) {
        ts[j] = ts[j - 1]; ti[j] = ti[j - 1]; tl[j] = tl[j - 1];
        j--;
    }
    ts[j] = s; ti[j] = id; tl[j] = lab;
}

void knn_topk(const float *queries, long nq, const float *bank, const int32_t *bank_labels, long nb, long bank_lo,
              int D, int k, float *top_sim, int64_t *top_id, int32_t *top_lab) {
    for (long i = 0; i < nq * k; i++) { top_sim[i] = -INFINITY; top_id[i] = -1; top_lab[i] = -1; }
    enum { QB = 512, NB = 8192 };
    float *sims = malloc(sizeof(float) * QB * NB);
    if (!sims) {   /* no room for a block: one row at a time, slowly */
        for (long q = 0; q < nq; q++)
            for (long b = 0; b < nb; b++) {
                float s = 0;
                for (int d = 0; d < D; d++) s += queries[q * D + d] * bank[b * D + d];
                topk_insert(top_sim + q * k, top_id + q * k, top_lab + q * k, k, s, bank_lo + b, bank_labels[b]);
            }
        return;
    }
    for (long q0 = 0; q0 < nq; q0 += QB) {
        int qn = (int)(nq - q0 < QB ? nq - q0 : QB);
        for (long b0 = 0; b0 < nb; b0 += NB) {
            int bn = (int)(nb - b0 < NB ? nb - b0 : NB);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qn, bn, D, 1.0f, queries + q0 * D, D, bank + b0 * D,
                        D, 0.0f, sims, bn);
#pragma omp parallel for schedule(static)
            for (int q = 0; q < qn; q++) {
                long g = (q0 + q) * k;
                const float *row = sims + (long)q * bn;
                for (int b = 0; b < bn; b++)
                    topk_insert(top_sim + g, top_id + g, top_lab + g, k, row[b], bank_lo + b0 + b, bank_labels[b0 + b]);
            }
        }
    }
    free(sims);
}

void knn_merge(const float *sim, const int64_t *id, const int32_t *lab, int nlists, long nq, int k, float *out_sim,
               int64_t *out_id, int32_t *out_lab) {
#pragma omp parallel for schedule(static)
    for (long q = 0; q < nq; q++) {
        float *ts = out_sim + q * k;
        int64_t *ti = out_id + q * k;
        int32_t *tl = out_lab + q * k;
        for (int j = 0; j < k; j++) { ts[j] = -INFINITY; ti[j] = -1; tl[j] = -1; }
        for (int l = 0; l < nlists; l++) {
            long o = ((long)l * nq + q) * k;
            for (int j = 0; j < k && id[o + j] >= 0; j++) topk_insert(ts, ti, tl, k, sim[o + j], id[o + j], lab[o + j]);
        }
    }
}

void knn_vote(const float *sim, const int32_t *lab, long nq, int k, int C, double temperature, int32_t *pred5) {
#pragma omp parallel
    {
        double *score = malloc(sizeof(double) * (C > 0 ? C : 1));
#pragma omp for schedule(static)
        for (long q = 0; q < nq; q++) {
            int32_t *p = pred5 + q * 5;
            for (int j = 0; j < 5; j++) p[j] = -1;
            if (!score) continue;
            for (int c = 0; c < C; c++) score[c] = 0;
            for (int j = 0; j < k; j++) {
                int32_t l = lab[q * k + j];
                if (l >= 0 && l < C) score[l] += exp((double)sim[q * k + j] / temperature);
            }
            top5_classes(score, NULL, C, p);
        }
        free(score);
    }
}

int eval_num_classes(const featset_t *train, const featset_t *val, MPI_Comm comm, int *C, err_t *err) {
    int mx[2] = {-1, -1}, g[2];
    for (long i = 0; i < train->n; i++) if (train->labels[i] > mx[0]) mx[0] = train->labels[i];
    for (long i = 0; i < val->n; i++) if (val->labels[i] > mx[1]) mx[1] = val->labels[i];
    MPI_Allreduce(mx, g, 2, MPI_INT, MPI_MAX, comm);
    int c = train->num_classes > 0 ? train->num_classes : g[0] + 1;
    if (val->num_classes > 0 && train->num_classes > 0 && val->num_classes != train->num_classes) {
        err_set(err, ERR_INPUT, "labels do not match: the train features have %d classes, the val features %d",
                 train->num_classes, val->num_classes);
        return -1;
    }
    if (g[1] >= c) {
        err_set(err, ERR_INPUT, "labels do not match: val label %d is not among the %d train classes", g[1], c);
        return -1;
    }
    if (c < 1) { err_set(err, ERR_INPUT, "no labelled train features"); return -1; }
    *C = c;
    return 0;
}

int knn_eval(const featset_t *train, const featset_t *val, const char *kind, int k, double temperature,
             MPI_Comm comm, knn_result_t *res, err_t *err) {
    int rank, world;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &world);
    memset(res, 0, sizeof *res);
    const float *tr, *va;
    if (featset_pair_rows(train, val, kind, &tr, &va, err)) return -1;
    if (train->dim != val->dim) {
        err_set(err, ERR_INPUT, "train features have width %d, val features %d (different models?)", train->dim, val->dim);
        return -1;
    }
    if (train->total < 1 || val->total < 1) { err_set(err, ERR_INPUT, "no train or no val features"); return -1; }
    int C;
    if (eval_num_classes(train, val, comm, &C, err)) return -1;
    int D = train->dim;
    if (k > train->total) k = (int)train->total;
    long nq = val->total, nb = train->n;
    int *counts = malloc(sizeof(int) * world), *displs = malloc(sizeof(int) * world);
    float *bank = malloc(sizeof(float) * (size_t)(nb > 0 ? nb : 1) * D);
    float *q = malloc(sizeof(float) * (size_t)nq * D);
    int32_t *qlab = malloc(sizeof(int32_t) * nq);
    float *ts = malloc(sizeof(float) * (size_t)nq * k);
    int64_t *ti = malloc(sizeof(int64_t) * (size_t)nq * k);
    int32_t *tl = malloc(sizeof(int32_t) * (size_t)nq * k);
    /* rank 0 merges the candidate lists a block of queries at a time: its memory stays
     * bounded by ~4M candidates whatever the rank count */
    long qc = eval_knn_chunk(world, k);
    if (qc > nq) qc = nq;
    float *as = NULL; int64_t *ai = NULL; int32_t *al = NULL;
    if (rank == 0) {
        as = malloc(sizeof(float) * (size_t)world * qc * k);
        ai = malloc(sizeof(int64_t) * (size_t)world * qc * k);
        al = malloc(sizeof(int32_t) * (size_t)world * qc * k);
    }
    int bad = !counts || !displs || !bank || !q || !qlab || !ts || !ti || !tl || (rank == 0 && (!as || !ai || !al)), any;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm);
    int rc = -1;
    if (any) { err_set(err, ERR_RUNTIME, "k-NN: out of memory (%ld queries, %ld bank rows, width %d)", nq, nb, D); goto out; }
    memcpy(bank, tr, sizeof(float) * (size_t)nb * D);
    l2_normalize_rows(bank, nb, D);
    for (int r = 0; r < world; r++) {
        displs[r] = (int)slice_lo(nq, r, world);
        counts[r] = (int)(slice_lo(nq, r + 1, world) - displs[r]);
    }
    MPI_Datatype row, krow_f, krow_i64, krow_i32;
    MPI_Type_contiguous(D, MPI_FLOAT, &row); MPI_Type_commit(&row);
    MPI_Allgatherv(va, (int)val->n, row, q, counts, displs, row, comm);
    MPI_Allgatherv(val->labels, (int)val->n, MPI_INT32_T, qlab, counts, displs, MPI_INT32_T, comm);
    MPI_Type_free(&row);
    l2_normalize_rows(q, nq, D);
    knn_topk(q, nq, bank, train->labels, nb, train->lo, D, k, ts, ti, tl);
    MPI_Type_contiguous(k, MPI_FLOAT, &krow_f); MPI_Type_commit(&krow_f);
    MPI_Type_contiguous(k, MPI_INT64_T, &krow_i64); MPI_Type_commit(&krow_i64);
    MPI_Type_contiguous(k, MPI_INT32_T, &krow_i32); MPI_Type_commit(&krow_i32);
    for (long q0 = 0; q0 < nq; q0 += qc) {
        int c = (int)(nq - q0 < qc ? nq - q0 : qc);
        /* every rank sends the same c·k candidates; rank 0 merges them in place of its own */
        MPI_Gather(ts + q0 * k, c, krow_f, as, c, krow_f, 0, comm);
        MPI_Gather(ti + q0 * k, c, krow_i64, ai, c, krow_i64, 0, comm);
        MPI_Gather(tl + q0 * k, c, krow_i32, al, c, krow_i32, 0, comm);
        if (rank == 0) knn_merge(as, ai, al, world, c, k, ts + q0 * k, ti + q0 * k, tl + q0 * k);
    }
    MPI_Type_free(&krow_f); MPI_Type_free(&krow_i64); MPI_Type_free(&krow_i32);
    double acc[2] = {0, 0};
    if (rank == 0) {
        int32_t *pred5 = malloc(sizeof(int32_t) * (size_t)nq * 5);
        if (pred5) {
            knn_vote(ts, tl, nq, k, C, temperature, pred5);
            topk_accuracy(pred5, qlab, nq, &acc[0], &acc[1]);
        } else acc[0] = -1;
        free(pred5);
    }
    MPI_Bcast(acc, 2, MPI_DOUBLE, 0, comm);
    if (acc[0] < 0) { err_set(err, ERR_RUNTIME, "k-NN: out of memory for the predictions"); goto out; }
    res->top1 = acc[0]; res->top5 = acc[1];
    res->queries = nq; res->bank = train->total; res->k = k; res->num_classes = C;
    rc = 0;
out:
    free(counts); free(displs); free(bank); free(q); free(qlab); free(ts); free(ti); free(tl);
    free(as); free(ai); free(al);
    return rc;
}
