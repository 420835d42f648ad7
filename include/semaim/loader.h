/* The training data loader: each rank reads its share of the HDF5 shards (include/semaim/
 * shards.h) and a background thread reads and augments the next batch while the current one
 * trains. No MPI calls: rank and world come in the config, and everything a rank needs to
 * agree with the others (assignment, steps per epoch) is computed identically on every rank
 * from the shard image counts, without communication.
 *
 * Assignment per epoch e (train mode), one of two rules:
 *   by shard: the shard order is reshuffled from (seed, e); the shard at position k of that
 *     order goes to rank k mod world; a rank shuffles all its samples from (seed, e, rank).
 *     A rank touches only its own files.
 *   dealt: one global shuffle of all sample ids from (seed, e); the sample at position k goes
 *     to rank k mod world. Balanced to one sample, but every rank reads from every shard.
 * steps_per_epoch is the same for every epoch and rank: floor(m / batch), where m is the
 * fewest samples any rank can get in any epoch (by shard: the sum of the floor(shards/world)
 * smallest shards; dealt: floor(total/world)). A rank uses the first steps·batch samples of
 * its shuffled list; the rest of its list (its "tail") is DROPPED for that epoch (different
 * samples each epoch, since the lists are reshuffled). Per epoch the ranks' samples are
 * disjoint and cover every sample except the tails.
 * LOADER_ASSIGN_AUTO picks "by shard" when it keeps at least 90% of the samples every epoch
 * (world·steps·batch ≥ 0.9·total; always false when shards < world, where some rank would
 * get no shard), else "dealt". E.g. 1024 near-equal shards: by shard for up to 512 ranks,
 * where each rank gets 2+ shards.
 *
 * Eval mode (train = 0): no shuffle and no randomness: rank r gets the contiguous global ids
 * [floor(r·N/world), floor((r+1)·N/world)) in order, transformed by augment_eval;
 * steps_per_epoch = ceil(ceil(N/world)/batch) on every rank and the last batches are padded
 * (batch.n < batch; padding has id −1, label −1, zero image). Nothing is dropped. With a
 * `limit`, N is the first `limit` images of the split. Every epoch is the same in eval mode.
 *
 * Augmentation of global sample g in epoch e uses rng_key(seed, AUG_RNG_TAG, e, g, 0): the
 * same crop and flip on any rank, world size or thread count.
 * With a `recipe` (semaim-finetune) train mode is timm's create_transform(is_training=True) of
 * data/augment.h instead: RandomResizedCrop with the recipe's area scale and flip, the crop
 * rounded to uint8, RandAugment, normalisation, random erasing, each stage drawn from its own
 * key of (seed, epoch, g) (augment_finetune; jpeg shards: the decoder resamples the crop and
 * augment_finetune_finish does the rest). Pretraining passes none and keeps SPEC §1's transform.
 *
 * jpeg shards (include/semaim/shards.h): each image is decoded in the augmentation threads
 * (data/jpeg.h: libjpeg-turbo, DCT scaling to the smallest scale that still covers the crop,
 * only the crop's window), and RandomResizedCrop samples its box against the whole stored
 * image, as torchvision's on the photo; evaluation resizes the shorter side to eval_resize
 * (0: augment_eval_resize's ⌊S/0.875⌋ of each image) and centre-crops S. Raw shards use the
 * same rule: S×S ones pass through unchanged, others are resized to eval_resize or ⌊S/0.875⌋.
 *
 * Threads: one loader thread owns all HDF5 reads (under shards_hdf5_lock) and augments with
 * `threads` OpenMP threads (default 1: reading + augmenting a 256² → 224² sample costs about
 * 0.5–1.3 ms here, decoding + augmenting a stored JPEG a few ms (tests/bench/loader.sh), far
 * less than its share of a training step, and more threads would compete with the training's
 * OpenMP team). Every buffer is allocated at open (the jpeg byte stage grows to the largest
 * batch once): nothing per image. Reads are one H5Dread per image, or per run of consecutive
 * images of one shard. */
#ifndef SEMAIM_LOADER_H
#define SEMAIM_LOADER_H
#include <stdint.h>
#include "semaim/err.h"

enum { LOADER_ASSIGN_AUTO = 0, LOADER_ASSIGN_SHARDS = 1, LOADER_ASSIGN_DEAL = 2 };
/* "auto", "shards", "deal" (the trainers' --assign) → LOADER_ASSIGN_*, −1 if unknown. */
int loader_assign_from_name(const char *name);

typedef struct {
    const char *data_dir;   /* holds <split>/<split>-K-of-M.h5 (or the shards directly) */
    const char *split;      /* "train", "val" */
    int image_size;         /* S: output images are [3,S,S] */
    int batch;              /* images per rank per step */
    uint64_t seed;
    int rank, world;
    int train;              /* 1: shuffle, RandomResizedCrop + flip, drop tails; 0: eval */
    int assign;             /* LOADER_ASSIGN_*: train-mode assignment rule (see above) */
    int interp;             /* INTERP_PIL (0, default) or INTERP_TORCH: see augment.h */
    int eval_resize;        /* eval: shorter side resized to this first; 0 = no resize if the
                               shards are already S×S, else ⌊S/0.875⌋ (256 for 224) */
    int threads;            /* OpenMP threads for augmentation in the loader thread; 0 = 1 */
    int prefetch;           /* batch buffers; 0 = 2 (double buffering) */
    int max_open;           /* open shard files kept per rank (LRU); 0 = min(shards, 512,
                               half the open-file limit) */
    int jpeg_full_scale;    /* tests: decode jpeg shards at full size (no DCT scaling) */
    int no_upsample;        /* refuse raw shards smaller than S (ERR_INPUT): upsampling small
                               shards into a bigger model's input is never what a checkpoint of
                               another config meant. jpeg shards are resized per image, as the
                               paper's photos, and always pass */
    long limit;             /* eval: serve only the first `limit` images of the split (global ids
                               0..limit-1; the shards are shuffled when written, so a random
                               sample); 0 = all. Train mode: must be 0 */
    int start_epoch;        /* first batch returned: (start_epoch, start_step) */
    long start_step;
    const struct aug_recipe *recipe;   /* train mode: the fine-tuning chain (data/augment.h; copied at
                                          open, its interp must be `interp`); NULL = pretraining's */
} loader_config;

typedef struct {
    float *images;     /* [batch,3,S,S] */
    int32_t *labels;   /* [batch] */
    int64_t *ids;      /* [batch] global sample ids */
    int n;             /* valid images (== batch in train mode) */
    int epoch;
    long step;         /* 0..steps_per_epoch−1 */
} loader_batch;

typedef struct loader loader;

/* Scans and validates the shards and starts the loader thread. 0, or -1 with a one-line error
 * naming the file/flag and problem (ERR_INPUT; ERR_RUNTIME when out of memory). Every rank
 * validates every shard, so bad data fail identically on all ranks. */
int loader_open(loader **out, const loader_config *cfg, err_t *err);
/* The next batch, valid until the next loader_next/loader_seek/loader_close. *waited: seconds
 * this call blocked for data. 0, or -1 with the loader thread's error (a shard that vanished
 * or changed: ERR_INPUT naming the file); after an error the loader returns the same error. */
int loader_next(loader *L, const loader_batch **batch, double *waited, err_t *err);
/* Position of the batch the next loader_next returns: save it in a checkpoint... */
void loader_tell(const loader *L, int *epoch, long *step);
/* ...and continue from it exactly on resume (or use start_epoch/start_step). */
int loader_seek(loader *L, int epoch, long step, err_t *err);
void loader_close(loader *L);

long loader_steps_per_epoch(const loader *L);
int loader_assignment(const loader *L);       /* LOADER_ASSIGN_SHARDS or _DEAL (train mode) */
long loader_total_samples(const loader *L);   /* over all shards (eval: the first `limit` of them) */
int loader_image_height(const loader *L);     /* raw shards' image size; 0 for jpeg shards (sizes vary) */
int loader_image_width(const loader *L);
int loader_num_classes(const loader *L);      /* the shards' num_classes attribute, 0 if absent */
/* This rank's samples in epoch e and how many of them it drops (its tail). */
void loader_epoch_info(const loader *L, int epoch, long *rank_samples, long *dropped);
/* Loader-thread time so far: seconds in HDF5 reads and in augmentation, and batches made. */
void loader_stats(loader *L, double *read_s, double *augment_s, long *batches);
#endif
