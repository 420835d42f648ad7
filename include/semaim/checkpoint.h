/* Checkpoints of both trainers in one format: a fixed 200-byte header (magic SEMAIMCK,
 * version 4, the model config, its parameter count, the run state, the KIND — pretraining or
 * fine-tuning — with the precision and GEMM backend that wrote it, the class count, the
 * objective (target_cfg_t: blur K (i32 at 96; 0 = none), norm-pix, loss, order signal (a byte
 * each at 100..102), blur sigma (f64 at 104), the target kind (a byte at 112: TARGET_*) and for
 * a teacher its layout (byte at 113), token width (i32 at 116), file size (i64 at 120) and base
 * name (64 bytes at 128); fine-tuning files carry the defaults), a CRC32 of
 * the payload and one of the header) followed by the parameter buffer and both AdamW moments,
 * in the model's one layout (params.h), always f32 (a bf16 run's master weights are f32 too).
 * The EMA (version 4): the byte at 103 (version 3's padding, always 0) holds CKPT_EMA_* bits;
 * with CKPT_EMA_WEIGHTS the payload carries a fourth buffer in the same layout after the
 * moments, the EMA of the parameters (ema.h), and CKPT_EMA_ORDER records --ema-order (part of
 * the objective, target_cfg_t.ema_order; it needs the weights).
 * The kind is a u16 at offset 88, precision and backend a byte each at 90 and 91 (0 = not
 * recorded: files from before they were; the field was a u32 kind, so those bytes were 0).
 * Files are dir/ckpt-<8-digit step>.bin (pretraining) or dir/ft-<step>.bin (fine-tuning),
 * written through a temporary name (core/files.h), the newest K kept. Version 3 files (120
 * bytes: the header up to the blur sigma, then the CRCs; their runs had the pixel target and no
 * EMA),
 * version 2 files (the same without the objective, 104 bytes: they mean the default objective) and version 1 files
 * (pretraining "SEMAIMCK" v1 and fine-tuning "SEMAIMFT" v1, the same payload) are still read. */
#ifndef SEMAIM_CHECKPOINT_H
#define SEMAIM_CHECKPOINT_H
#include <stddef.h>
#include <stdint.h>
#include "semaim/compute.h"
#include "semaim/finetune.h"
#include "semaim/model.h"

#define CKPT_MAGIC "SEMAIMCK"
#define CKPT_VERSION 4u
enum { CKPT_EMA_WEIGHTS = 1, CKPT_EMA_ORDER = 2 };   /* the bits of the header byte at 103 */

enum { CKPT_PRETRAIN = 0, CKPT_FINETUNE = 1 };

typedef struct {
    int64_t step;            /* optimizer steps completed */
    int64_t epoch;           /* epoch of the next batch */
    int64_t epoch_step;      /* batches of that epoch already consumed */
    uint64_t seed;           /* run seed: every random draw derives from it and the counters */
    int32_t world;           /* ranks that wrote it (resume must match for bit-exactness) */
    int32_t batch;           /* per-rank batch */
} ckpt_state_t;

/* The compute a checkpoint was written with (0: not recorded). */
enum { CKPT_PREC_FP32 = 1, CKPT_PREC_BF16 = 2, CKPT_PREC_BF16_EMULATED = 3 };
enum { CKPT_GEMM_OPENBLAS = 1, CKPT_GEMM_ONEDNN = 2 };

/* What a checkpoint is for: a load must find the same kind, config, classes and size, and a
 * pretraining load the same objective (tgt: resuming with another target, blur, loss, signal or
 * EMA order would silently change what the run optimises) and the same EMA presence; the compute is a record (resuming with another is
 * allowed, run_resume says so). */
typedef struct {
    int kind;                /* CKPT_PRETRAIN or CKPT_FINETUNE */
    semaim_config_t cfg;
    int classes;             /* fine-tuning; 0 for pretraining */
    long nparams;
    int precision, backend;  /* CKPT_PREC_*, CKPT_GEMM_* */
    target_cfg_t tgt;        /* pretraining's objective; the defaults for fine-tuning */
    int ema;                 /* the payload carries the EMA weights (params_t.ema; pretraining only) */
} ckpt_model_t;
/* The codes of a compute choice, and the name of a recorded one ("onednn bf16"; "not recorded"). */
void ckpt_compute_codes(const gemm_config_t *c, int *precision, int *backend);
const char *ckpt_compute_name(int precision, int backend);
static inline ckpt_model_t ckpt_pretrain(const model_t *m) {
    ckpt_model_t c = {CKPT_PRETRAIN, m->cfg, 0, m->w.nparams, 0, 0, m->tgt, m->w.ema != NULL};
    ckpt_compute_codes(gemm_global_config(), &c.precision, &c.backend);
    return c;
}
static inline ckpt_model_t ckpt_finetune(const ft_model_t *f) {
    ckpt_model_t c = {CKPT_FINETUNE, f->cfg, f->C, f->w.nparams, 0, 0, target_defaults(), 0};
    ckpt_compute_codes(gemm_global_config(), &c.precision, &c.backend);
    return c;
}
const char *ckpt_prefix(int kind);   /* "ckpt-" or "ft-" */
const char *ckpt_kind_name(int kind);   /* "pretraining" or "fine-tuning" */

/* Bytes of the step file of a model id (header and payload). */
long long ckpt_file_bytes(const ckpt_model_t *id);
/* Writes dir/<prefix><step>.bin atomically, then deletes all but the newest keep files of the
 * kind (keep <= 0: none). 0, or -1 (ERR_RUNTIME). */
int ckpt_save(const char *dir, const ckpt_model_t *id, const params_t *w, const ckpt_state_t *st, int keep,
              err_t *err);
/* Reads only the header of path: what it is for and the state it was written with, so a
 * program can build the matching model before loading. 0, or -1 (ERR_INPUT). */
int ckpt_read_header(const char *path, ckpt_model_t *id, ckpt_state_t *st, err_t *err);
/* Loads path into w (whose model must be id) and st. 0, or -1 (ERR_INPUT) with the reason. */
int ckpt_load(const char *path, const ckpt_model_t *id, params_t *w, ckpt_state_t *st, err_t *err);
/* Loads the newest checkpoint of id's kind in dir that verifies; ones that do not are
 * reported on stderr and skipped. 1 if one was loaded, 0 if dir has none, -1 if some exist
 * but none is usable (ERR_INPUT). path_out (may be NULL) gets its path. */
int ckpt_load_latest(const char *dir, const ckpt_model_t *id, params_t *w, ckpt_state_t *st, char *path_out,
                     size_t pathlen, err_t *err);
/* Removes what killed writers left in dir: temporaries of step files of the kind. */
void ckpt_remove_stale(const char *dir, int kind);
/* Without knowing the model beforehand (no MPI; the collective loader of programs is
 * source_load in source.h): builds m from a pretraining checkpoint's header (config, seed,
 * objective) and loads its parameters (and its EMA weights into m->w.ema when it has them). ckpt_load_model: that file, 0 or -1 (ERR_INPUT); ..._latest: the newest
 * that verifies in dir, with ckpt_load_latest's returns. On failure m holds nothing. */
int ckpt_load_model(const char *path, model_t *m, ckpt_state_t *st, err_t *err);
int ckpt_load_model_latest(const char *dir, model_t *m, ckpt_state_t *st, char *path_out, size_t pathlen, err_t *err);
/* The same for a fine-tuning checkpoint: builds the classifier of its header (batch capacity
 * 1; the fixed position table) and loads it. 0, or -1 (ERR_INPUT) with f holding nothing. */
int ckpt_load_classifier(const char *path, ft_model_t *f, ckpt_state_t *st, err_t *err);
#endif
