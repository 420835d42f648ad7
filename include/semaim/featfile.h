/* Feature sets and the features file. Of a split of N images, rank r holds the contiguous
 * global ids [floor(r·N/W), floor((r+1)·N/W)) in order (core/slice.h), like the loader's eval
 * mode, whether the features were computed (eval.h) or read from a features file. */
#ifndef SEMAIM_FEATFILE_H
#define SEMAIM_FEATFILE_H
#include <stdint.h>
#include <mpi.h>
#include "semaim/err.h"

typedef struct {
    long total;          /* images in the split */
    long lo, n;          /* this rank's rows: global ids lo..lo+n-1 */
    int dim;
    float *cls;          /* [n, dim]: cls token after the final norm */
    float *mean;         /* [n, dim]: mean of the normed patch tokens */
    float *gap;          /* [n, dim]: mean of the patch tokens before the final norm, then a
                            LayerNorm without affine (NULL: a file written before it existed) */
    float *pixels;       /* [n, dim]: the eval-transformed image itself, 3·S·S values (a raw-pixel
                            set of features_pixels: then the three readouts are NULL) */
    int32_t *labels;     /* [n] */
    int num_classes;     /* from the shards' attribute or the file; 0 if unknown */
} featset_t;

/* The readouts, in the order of the struct: "cls", "mean", "gap" (semaim/encoder.h). */
enum { FEATSET_KINDS = 3 };
extern const char *const featset_kinds[FEATSET_KINDS];
/* The kind of a raw-pixel set (features_pixels): the baseline any encoder must beat. Not
 * a readout, so not in featset_kinds nor in features files. */
#define FEATSET_PIXELS "pixels"

/* Rows for n images of width dim (all three readouts and the labels); lo, total and
 * num_classes are the caller's. 0, or -1 when out of memory (fs then holds nothing). */
int featset_alloc(featset_t *fs, long n, int dim);
void featset_free(featset_t *fs);
/* The rows of kind "cls", "mean", "gap" or FEATSET_PIXELS (NULL for anything else, for gap in
 * an old file, and for what a set does not hold). */
const float *featset_rows(const featset_t *fs, const char *kind);
/* Is kind one of featset_kinds? */
int featset_kind_valid(const char *kind);
/* The rows of kind (a readout or FEATSET_PIXELS) in a train and a val set, or -1 with the
 * reason (an unknown kind; gap asked of a file written before it existed). */
int featset_pair_rows(const featset_t *train, const featset_t *val, const char *kind, const float **tr,
                      const float **va, err_t *err);

/* Rows per message/write when rank 0 writes a features file: 0 = the default (16M floats'
 * worth); for tests of the chunked path. */
void featfile_set_chunk(long rows);
long featfile_chunk(int D);

/* Features file (HDF5): /cls, /mean and /gap float32 [N,D], /labels int32 [N]; root attributes
 * format = "semaim features", format_version, split, num_classes, source (checkpoint or
 * weights path), step. Collective over comm: rank 0 gathers every slice and writes path
 * through a temporary name. Returns 0 on every rank, or -1 on every rank (err set on rank 0). */
#define FEATFILE_VERSION 1
int featfile_write(const char *path, const featset_t *fs, const char *split, const char *source, long step,
                   MPI_Comm comm, err_t *err);
/* Reads this rank's slice of path (no MPI: every rank opens the file). Checks the format,
 * that /cls, /mean, /gap and /labels agree in rows, that labels are in 0..num_classes-1 (when
 * known) and non-negative. /gap may be missing (files written before it existed: fs->gap is
 * then NULL). Returns 0, or -1 with a one-line reason naming the file. */
int featfile_read(const char *path, featset_t *fs, int rank, int world, err_t *err);
#endif
