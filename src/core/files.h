/* Files: whole-file reads with limits, directories, and the one way every writer of the
 * project finishes a file. A finished file is written under a temporary name beside its
 * final one (".<name>.tmp.<host>.<pid>", so a crashed writer's leftovers are recognisable and
 * never look finished), fsynced, renamed over the final name, and the folder is fsynced so
 * the rename survives a crash: a reader sees the old file or the new one, never half. */
#ifndef SEMAIM_FILES_H
#define SEMAIM_FILES_H
#include <stddef.h>
#include <stdint.h>
#include "core/crc.h"
#include "semaim/err.h"

void file_tmp_name(const char *path, char *tmp, size_t len);
/* tmp (complete, closed) becomes path: fsync, rename, fsync of the folder. On failure tmp
 * is removed and err (ERR_RUNTIME) names the file and the reason. */
int file_commit(const char *tmp, const char *path, err_t *err);
/* Writes the spans one after another as path (through a temporary name and file_commit). */
int file_write_atomic(const char *path, const span_t *s, int k, err_t *err);
/* The first half of file_write_atomic, for writers that commit several files together: the
 * spans as path's temporary (its name in tmp), complete and closed but not yet committed. On
 * failure the temporary is removed and err (ERR_RUNTIME) names path and the reason. */
int file_write_tmp(const char *path, const span_t *s, int k, char *tmp, size_t tmplen, err_t *err);
/* All n bytes to fd, retrying short writes and EINTR; 0, or -1 with errno. */
int file_write_all(int fd, const void *buf, size_t n);
/* Removes temporaries of crashed writers of path (".<name>.tmp.*" beside it). */
void file_remove_stale_tmp(const char *path);
/* Removes the temporaries of crashed writers of any file in dir whose name starts with
 * prefix (".<prefix>*.tmp.*"): a killed job's half-written step files. */
void file_remove_stale_tmps(const char *dir, const char *prefix);

/* Bytes an unprivileged writer may still put on dir's file system (statvfs); 0, or -1 with errno. */
int file_free_bytes(const char *dir, long long *bytes);
int file_fsync_dir(const char *dir);   /* 0 also where the file system cannot fsync folders */
int file_mkdirs(const char *path);     /* mkdir -p; 0, or -1 with errno */
void file_dirname(const char *path, char *dir, size_t len);

/* Reads a whole regular file of at most max_bytes (what it should be, for the message: "an
 * image") into *buf (grown as needed, NUL-terminated, *n bytes). Never blocks on a FIFO. err
 * (ERR_INPUT) gets the reason without the path. */
int file_read(const char *path, long max_bytes, const char *what, uint8_t **buf, size_t *cap, size_t *n, err_t *err);
/* A whole text file (at most 1 GiB) as a malloc'd NUL-terminated string; -1 with errno. */
int file_slurp(const char *path, char **text, size_t *n);
#endif
