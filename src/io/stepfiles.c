#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/files.h"
#include "io/stepfiles.h"

void stepfile_path(char *out, size_t outlen, const char *dir, const char *prefix, long long step) {
    snprintf(out, outlen, "%s/%s%08lld.bin", dir, prefix, step);
}

static int cmp_desc(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int stepfile_list(const char *dir, const char *prefix, long long **steps) {
    DIR *d = opendir(dir);
    *steps = NULL;
    if (!d) return 0;
    size_t pl = strlen(prefix);
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long long s;
        int len = 0;
        if (strncmp(e->d_name, prefix, pl) || sscanf(e->d_name + pl, "%lld.bin%n", &s, &len) != 1 ||
            e->d_name[pl + len] != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            long long *t = realloc(*steps, sizeof(long long) * cap);
            if (!t) break;
            *steps = t;
        }
        (*steps)[n++] = s;
    }
    closedir(d);
    if (n > 1) qsort(*steps, n, sizeof(long long), cmp_desc);
    return n;
}

int stepfile_write(const char *dir, const char *prefix, long long step, const span_t *s, int k, int keep, err_t *err) {
    char path[4096];
    stepfile_path(path, sizeof path, dir, prefix, step);
    if (file_write_atomic(path, s, k, err)) return -1;
    long long *steps;
    int n = stepfile_list(dir, prefix, &steps);
    for (int i = keep > 0 ? keep : n; i < n; i++) {
        stepfile_path(path, sizeof path, dir, prefix, steps[i]);
        unlink(path);
    }
    free(steps);
    return 0;
}

int stepfile_read_payload(FILE *f, const char *path, const span_t *s, int k, uint32_t crc, err_t *err) {
    for (int i = 0; i < k; i++)
        if (fread(s[i].p, 1, s[i].n, f) != s[i].n) return err_set(err, ERR_INPUT, "%s: truncated payload", path);
    if (fgetc(f) != EOF) return err_set(err, ERR_INPUT, "%s: trailing bytes after payload", path);
    if (crc32_spans(s, k) != crc) return err_set(err, ERR_INPUT, "%s: payload CRC mismatch (corrupt)", path);
    return 0;
}

int stepfile_load_latest(const char *dir, const char *prefix, const char *what,
                         int (*load)(const char *path, void *ctx, err_t *err), void *ctx,
                         char *path_out, size_t pathlen, err_t *err) {
    long long *steps;
    int n = stepfile_list(dir, prefix, &steps), rc = n ? -1 : 0;
    char path[4096];
    for (int i = 0; i < n; i++) {
        stepfile_path(path, sizeof path, dir, prefix, steps[i]);
        if (load(path, ctx, err) == 0) {
            if (path_out) snprintf(path_out, pathlen, "%s", path);
            rc = 1;
            break;
        }
        fprintf(stderr, "semaim: skipping checkpoint: %s\n", err->msg);
    }
    if (rc == -1) err_set(err, ERR_INPUT, "%s: %d %s(s) found, none verifies (see messages above)", dir, n, what);
    else err_clear(err);   /* a file skipped on the way is not this call's failure */
    free(steps);
    return rc;
}
