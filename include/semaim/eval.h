/* Evaluation of a pretrained encoder (SPEC §5): features over HDF5 shards, k-NN, the linear
 * probe, and the classification helpers they share with fine-tuning (the fine-tuning model
 * itself is in finetune.h).
 *
 * Feature sets (featfile.h) are distributed like the loader's eval mode. Nothing in this header
 * calls MPI except where a function takes a communicator. */
#ifndef SEMAIM_EVAL_H
#define SEMAIM_EVAL_H
#include <stddef.h>
#include <stdint.h>
#include <mpi.h>
#include "semaim/err.h"
#include "semaim/featfile.h"
#include "semaim/loader.h"
#include "semaim/model.h"

/* This rank's slice of split (train, val) of the shards under data, through the loader in
 * eval mode (resize + centre crop to the model's image size), batch images at a time with
 * encoder_features. Shards whose images are smaller than the model's input are refused.
 * Returns 0, or -1 with a one-line reason. No MPI. */
int features_compute(featset_t *fs, model_t *m, const char *data, const char *split, int batch, int rank, int world,
                     err_t *err);
/* The raw-pixel baseline: the eval-transformed images of this rank's slice of split themselves,
 * as FEATSET_PIXELS rows of 3·S·S values (S = 0: the raw shards' own size, no resampling; jpeg
 * shards need S). The same loader, transform and order as features_compute, so a k-NN on them
 * uses the same bank and queries as an encoder's. Returns 0, or -1 with the reason. No MPI. */
int features_pixels(featset_t *fs, int S, const char *data, const char *split, int batch, int rank, int world,
                    err_t *err);
/* The steps of features_compute, for a caller that evaluates again and again (the training
 * monitor) and so keeps the loader, the rows and the arena from start-up:
 *   features_open   the loader of a split in eval mode, this rank's slice of its first `limit`
 *                   images (0 = all); smaller shards refused as above;
 *   features_alloc  fs sized for that slice (all readouts and labels);
 *   features_run    one pass over the slice into fs with an ACTS_ENCODER arena of capacity
 *                   >= batch; allocates nothing. Each returns 0, or -1 with the reason. */
int features_open(loader **ld, const model_t *m, const char *data, const char *split, long limit, int batch,
                  int rank, int world, err_t *err);
int features_alloc(featset_t *fs, const loader *ld, const model_t *m, int rank, int world, err_t *err);
int features_run(featset_t *fs, model_t *m, acts_t *a, loader *ld, err_t *err);

/* Work-unit limits of the streaming steps: rows per message/write when rank 0 writes a
 * features file (featfile_set_chunk) and queries per merge block in knn_eval (default 4M
 * candidates over all ranks). 0 restores the default; for tests of the chunked paths. */
void eval_set_chunks(long featfile_rows, long knn_queries);
long eval_knn_chunk(int world, int k);

/* Collective. The class count: the train set's num_classes when known, else 1 + the largest
 * train label. Fails (same on every rank) when val labels fall outside it or the two sets
 * disagree on num_classes: "labels do not match". */
int eval_num_classes(const featset_t *train, const featset_t *val, MPI_Comm comm, int *C, err_t *err);

/* ---- k-NN (DINO style): cosine similarity, top-k neighbours, weighted vote
 * Σ exp(sim/T) per class; ties between classes go to the lower class index. */
void l2_normalize_rows(float *x, long n, int D);
/* For nq queries [nq,D] and a bank slice [nb,D] (global ids bank_lo..), each query's k best
 * neighbours, best first, ordered by (similarity desc, global id asc); slots without a
 * neighbour get similarity -INF and id -1. Rows must be L2-normalised. Threads: OpenMP and
 * OpenBLAS. */
void knn_topk(const float *queries, long nq, const float *bank, const int32_t *bank_labels, long nb, long bank_lo,
              int D, int k, float *top_sim, int64_t *top_id, int32_t *top_lab);
/* Merges nlists candidate lists of k per query (layout [list][nq][k]) into the k best. */
void knn_merge(const float *sim, const int64_t *id, const int32_t *lab, int nlists, long nq, int k, float *out_sim,
               int64_t *out_id, int32_t *out_lab);
/* The min(5, C) highest scores of one row into pred5[0..5) (the rest −1); ties go to the
 * lower class index. The row is sd (double, k-NN votes) or sf (float, logits): exactly one
 * is non-NULL. Shared by k-NN, the linear probe and fine-tuning. */
void top5_classes(const double *sd, const float *sf, int C, int32_t *pred5);
/* Weighted vote over each query's neighbours; writes the top min(5, C) predicted classes
 * [nq][5] (unused slots -1). */
void knn_vote(const float *sim, const int32_t *lab, long nq, int k, int C, double temperature, int32_t *pred5);
/* How many of n rows have their label first (hits1) and among the five (hits5) of pred5 [n][5]. */
void topk_hits(const int32_t *pred5, const int32_t *labels, long n, long *hits1, long *hits5);
/* Top-1 and top-5 accuracy in percent of pred5 [n][5] against labels. */
void topk_accuracy(const int32_t *pred5, const int32_t *labels, long n, double *top1, double *top5);

/* ---- Fine-tuning evaluation: top-1/top-5 and loss of a classifier on the val split of the
 * shards under data (every rank its slice, the evaluation transform). Collective. */
struct ft_model;
typedef struct { double top1, top5, loss; long n; } ft_eval_t;
int ft_evaluate(struct ft_model *f, const char *data, int batch, float smoothing, MPI_Comm comm, ft_eval_t *out,
                err_t *err);
/* Top-5 classes [B][5] of the classifier's last forward (ties to the lower index). */
void ft_top5(const struct ft_model *f, int32_t *pred5);

/* Distributed k-NN over feature slices (train = memory bank, val = queries): queries are
 * all-gathered, each rank searches its bank slice, rank 0 merges and votes. Collective;
 * results valid on every rank (broadcast). Returns 0, or -1 (err set). */
typedef struct { double top1, top5; long queries, bank; int k, num_classes; } knn_result_t;
int knn_eval(const featset_t *train, const featset_t *val, const char *kind, int k, double temperature,
             MPI_Comm comm, knn_result_t *res, err_t *err);

/* ---- Linear probe (SPEC §5): BatchNorm without affine (eps 1e-6, batch statistics over
 * the global batch in training, running statistics with momentum 0.1 in evaluation), then
 * Linear D→C (weight N(0, 0.01²), bias 0); cross-entropy; SGD momentum 0.9, no weight decay;
 * lr = base_lr × global batch / 256, per-iteration linear warmup then half-cycle cosine.
 * Each epoch is one pass over a permutation of all train ids drawn from (seed, epoch), in
 * steps of `batch` images (the last partial batch dropped); each rank processes the members
 * it holds and the statistics and gradients are summed over ranks, so the result does not
 * depend on the rank count (up to float summation order). */
typedef struct {
    int epochs, batch;
    double base_lr, momentum, weight_decay, warmup_epochs;
    uint64_t seed;
} linprobe_cfg_t;
typedef struct { int epoch; double loss, lr, top1, top5, seconds; } linprobe_epoch_t;
/* Collective. on_epoch (may be NULL) is called on every rank after each epoch's evaluation.
 * Returns 0, or -1 (err set, same on all ranks). */
int linprobe_run(const featset_t *train, const featset_t *val, const char *kind, const linprobe_cfg_t *cfg,
                 MPI_Comm comm, void (*on_epoch)(const linprobe_epoch_t *, void *), void *ctx, err_t *err);
#endif
