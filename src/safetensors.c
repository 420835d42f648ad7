#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "semaim/safetensors.h"

static const char *dtype_name[] = {"F32", "I32", "F64", "U8", "I64"};
static const int dtype_size[] = {4, 4, 8, 1, 8};

static long numel(const st_tensor_t *t) {
    long n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int st_write(const char *path, const st_tensor_t *t, int n, char *err, size_t errlen) {
    /* header JSON */
    size_t cap = 256 + (size_t)n * 256, len = 0;
    char *h = malloc(cap);
    if (!h) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    long off = 0;
    len += snprintf(h + len, cap - len, "{");
    for (int i = 0; i < n; i++) {
        long bytes = numel(&t[i]) * dtype_size[t[i].dtype];
        len += snprintf(h + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", t[i].name,
                        dtype_name[t[i].dtype]);
        for (int d = 0; d < t[i].ndim; d++) len += snprintf(h + len, cap - len, "%s%ld", d ? "," : "", t[i].shape[d]);
        len += snprintf(h + len, cap - len, "],\"data_offsets\":[%ld,%ld]}", off, off + bytes);
        off += bytes;
    }
    len += snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' ';          /* keep the data 8-byte aligned */

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno)); free(h); return -1; }
    uint64_t hl = len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hl >> (8 * i));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(h, 1, len, f) == len;
    for (int i = 0; ok && i < n; i++) {
        size_t bytes = (size_t)numel(&t[i]) * dtype_size[t[i].dtype];
        ok = fwrite(t[i].data, 1, bytes, f) == bytes;
    }
    free(h);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
