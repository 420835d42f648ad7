/* The model a program evaluates or fine-tunes: a pretraining checkpoint, a safetensors file
 * with timm / the authors' names, or either at initialisation. The same flags and the same
 * loading for semaim-eval and semaim-finetune. */
#ifndef SEMAIM_SOURCE_H
#define SEMAIM_SOURCE_H
#include <mpi.h>
#include "semaim/err.h"
#include "semaim/model.h"
#include "semaim/options.h"

typedef struct {
    const char *checkpoint, *weights;
    int at_init;
    semaim_config_t given;   /* 0 = not given */
    long seed;
} source_t;

typedef struct {
    char desc[4200];   /* the checkpoint or weights path (for results) */
    long step;         /* the checkpoint's step; -1 for weights */
    int has_decoder;
} source_info_t;

/* The option-table rows of a source (put them first in a program's table). */
#define SOURCE_OPTIONS(src)                                                                                         \
    {"checkpoint", OPT_STRING, &(src).checkpoint, "pretraining checkpoint (ckpt-*.bin) to evaluate", 0, 0, 0},      \
    {"weights", OPT_STRING, &(src).weights, "or: a safetensors file with timm / authors' names", 0, 0, 0},          \
    {"at-init", OPT_FLAG, &(src).at_init, "evaluate the encoder at initialisation (same config and run seed)", 0, 0, 0}, \
    {"image", OPT_INT, &(src).given.image, "model image size (checked against the checkpoint/file; 0 = infer)", 0, 8192, 0}, \
    {"patch", OPT_INT, &(src).given.patch, "patch size (0 = infer)", 0, 8192, 0},                                   \
    {"width", OPT_INT, &(src).given.width, "width D (0 = infer)", 0, 16384, 0},                                     \
    {"depth", OPT_INT, &(src).given.depth, "encoder depth (0 = infer)", 0, 1024, 0},                                \
    {"dec-depth", OPT_INT, &(src).given.dec_depth, "decoder depth (0 = infer; 1 if the file has no decoder)", 0, 1024, 0}, \
    {"heads", OPT_INT, &(src).given.heads, "attention heads (0 = infer: metadata, else width/64)", 0, 1024, 0},      \
    {"seed", OPT_LONG, &(src).seed, "init seed with --weights --at-init (a checkpoint brings its own)", 0, 9.2e18, 0}

/* Collective: builds m on every rank from src (rank 0 reads, everyone receives). need_decoder:
 * the whole pretraining model must come from a weights file. 0, or -1 on every rank with the
 * first failing rank's error (ERR_INPUT for bad files and flags). Unused tensors of a weights
 * file (e.g. a classifier head) are noted on stderr by rank 0 as "<prog>: note: ...". */
int source_load(const source_t *src, const char *prog, model_t *m, source_info_t *info, int need_decoder, err_t *err);
#endif
