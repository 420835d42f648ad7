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

int stepfile_write(const char *dir, const char *prefix, long long step, const span_t *s, int k, int keep, char *err,
                   size_t errlen) {
    char path[4096];
    stepfile_path(path, sizeof path, dir, prefix, step);
    err_t e;
    if (file_write_atomic(path, s, k, &e)) { snprintf(err, errlen, "%s", e.msg); return -1; }
    long long *steps;
    int n = stepfile_list(dir, prefix, &steps);
    for (int i = keep > 0 ? keep : n; i < n; i++) {
        stepfile_path(path, sizeof path, dir, prefix, steps[i]);
        unlink(path);
    }
    free(steps);
    return 0;
}

int stepfile_read_payload(FILE *f, const char *path, const span_t *s, int k, uint32_t crc, char *err, size_t errlen) {
    for (int i = 0; i < k; i++)
        if (fread(s[i].p, 1, s[i].n, f) != s[i].n) { snprintf(err, errlen, "%s: truncated payload", path); return -1; }
    if (fgetc(f) != EOF) { snprintf(err, errlen, "%s: trailing bytes after payload", path); return -1; }
    if (crc32_spans(s, k) != crc) { snprintf(err, errlen, "%s: payload CRC mismatch (corrupt)", path); return -1; }
    return 0;
}

int stepfile_load_latest(const char *dir, const char *prefix, const char *what,
                         int (*load)(const char *path, void *ctx, char *err, size_t errlen), void *ctx,
                         char *path_out, size_t pathlen, char *err, size_t errlen) {
    long long *steps;
    int n = stepfile_list(dir, prefix, &steps), rc = n ? -1 : 0;
    char path[4096];
    for (int i = 0; i < n; i++) {
        stepfile_path(path, sizeof path, dir, prefix, steps[i]);
        if (load(path, ctx, err, errlen) == 0) {
            if (path_out) snprintf(path_out, pathlen, "%s", path);
            rc = 1;
            break;
        }
        fprintf(stderr, "semaim: skipping checkpoint: %s\n", err);
    }
    if (rc == -1) snprintf(err, errlen, "%s: %d %s(s) found, none verifies (see messages above)", dir, n, what);
    free(steps);
    return rc;
}
