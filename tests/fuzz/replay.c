/* The fuzz targets without libFuzzer: runs LLVMFuzzerTestOneInput once on every file named
 * (a folder: every file in it), so make test replays the regression inputs and seeds with
 * the project's own compiler and under ASan+UBSan, wherever clang cannot fuzz. Prints
 * "replayed N inputs"; a crash or a failed property aborts like it did under the fuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "core/files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static long replayed;

static int one(const char *path) {
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    err_t e;
    if (file_read(path, 1L << 30, "a fuzz input", &buf, &cap, &n, &e)) {
        fprintf(stderr, "replay: %s: %s\n", path, e.msg);
        return -1;
    }
    /* a copy of exactly n bytes, so reading past the input is an ASan error as in libFuzzer */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) { free(buf); return -1; }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    replayed++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int folder(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) { perror(dir); return -1; }
    char **names = NULL;
    size_t k = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (k == cap) {
            cap = cap ? 2 * cap : 64;
            char **g = realloc(names, cap * sizeof *g);
            if (!g) break;
            names = g;
        }
        if (!(names[k] = strdup(e->d_name))) break;
        k++;
    }
    closedir(d);
    if (k) qsort(names, k, sizeof *names, cmp_str);   /* the same order every time; an empty folder has no array */
    int rc = 0;
    for (size_t i = 0; i < k; i++) {
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        struct stat st;
        if (!stat(p, &st) && S_ISREG(st.st_mode) && one(p)) rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st)) { perror(argv[i]); rc = 1; continue; }
        if (S_ISDIR(st.st_mode) ? folder(argv[i]) : one(argv[i])) rc = 1;
    }
    printf("replayed %ld inputs\n", replayed);
    return rc;
}
