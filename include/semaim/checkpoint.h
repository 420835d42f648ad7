/* Training checkpoints: a fixed header (magic, version, config, counters, RNG/loader state,
 * payload size and CRC32) followed by the parameter buffer and both AdamW moments, in the
 * model's single layout. Written to a temporary file, fsynced, renamed; the last K kept. */
#ifndef SEMAIM_CHECKPOINT_H
#define SEMAIM_CHECKPOINT_H
#include <stddef.h>
#include <stdint.h>
#include "semaim/model.h"

#define CKPT_MAGIC "SEMAIMCK"
#define CKPT_VERSION 1u

typedef struct {
    int64_t step;            /* optimizer steps completed */
    int64_t epoch;           /* epoch of the next batch */
    int64_t epoch_step;      /* batches of that epoch already consumed */
    uint64_t seed;           /* run seed: every random draw derives from it and the counters */
    int32_t world;           /* ranks that wrote it (resume must match for bit-exactness) */
    int32_t batch;           /* per-rank batch */
} ckpt_state_t;

/* Writes dir/ckpt-<step>.bin atomically, then deletes all but the newest keep files.
 * Returns 0, or -1 with a one-line reason in err. */
int ckpt_save(const char *dir, const model_t *m, const ckpt_state_t *st, int keep, char *err, size_t errlen);
/* Reads only the header of path: the model config and state it was written with, so a
 * program can build the matching model before loading. Returns 0, or -1 with the reason. */
int ckpt_read_header(const char *path, semaim_config_t *cfg, ckpt_state_t *st, char *err, size_t errlen);
/* Loads path into m (whose config must match) and st. Returns 0, or -1 with the reason. */
int ckpt_load(const char *path, model_t *m, ckpt_state_t *st, char *err, size_t errlen);
/* Loads the newest checkpoint in dir whose header and CRC verify; ones that do not are
 * reported on stderr and skipped. Returns 1 if one was loaded, 0 if dir has none, -1 if
 * some exist but none is usable (err says why). path_out (may be NULL) gets its path. */
int ckpt_load_latest(const char *dir, model_t *m, ckpt_state_t *st, char *path_out, size_t pathlen, char *err,
                     size_t errlen);
#endif
