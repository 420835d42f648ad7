/* Files named <prefix><8-digit step>.bin in one folder — the pretraining and fine-tuning
 * checkpoints. The mechanics both share: a CRC32 over several buffers, writing a file from
 * buffers under a temporary name (fsync, rename, fsync of the folder), keeping the newest K,
 * reading a payload back and verifying it, and loading the newest file that verifies. */
#ifndef SEMAIM_STEPFILES_H
#define SEMAIM_STEPFILES_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "core/crc.h"
#include "semaim/err.h"

void stepfile_path(char *out, size_t outlen, const char *dir, const char *prefix, long long step);
/* Writes the spans in order to dir/<prefix><step>.bin atomically, then deletes all but the
 * newest keep files of that prefix (keep <= 0: none deleted). 0, or -1 with err set. */
int stepfile_write(const char *dir, const char *prefix, long long step, const span_t *s, int k, int keep, err_t *err);
/* Steps of the files of that prefix in dir, newest first (malloc'd). Returns the count. */
int stepfile_list(const char *dir, const char *prefix, long long **steps);
/* Reads the spans from f (positioned after the header), requires end of file after them and
 * their CRC to equal crc. 0, or -1 with a reason naming path. */
int stepfile_read_payload(FILE *f, const char *path, const span_t *s, int k, uint32_t crc, err_t *err);
/* Tries the files of that prefix newest first with load(path, ctx, err); ones that fail are
 * reported on stderr and skipped. 1 if one loaded (its path in path_out, may be NULL), 0 if
 * there are none, -1 if none verifies (err says so; what names the kind of file). */
int stepfile_load_latest(const char *dir, const char *prefix, const char *what,
                         int (*load)(const char *path, void *ctx, err_t *err), void *ctx,
                         char *path_out, size_t pathlen, err_t *err);
#endif
