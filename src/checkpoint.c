#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "semaim/checkpoint.h"

typedef struct {
    char magic[8];
    uint32_t version, header_bytes;
    int32_t cfg[6];           /* image, patch, width, depth, dec_depth, heads */
    int64_t nparams;
    ckpt_state_t st;
    uint64_t payload_bytes;
    uint32_t payload_crc, header_crc;   /* header_crc covers everything before it */
} ckpt_header_t;

static void cfg_pack(const semaim_config_t *c, int32_t *o) {
    o[0] = c->image; o[1] = c->patch; o[2] = c->width; o[3] = c->depth; o[4] = c->dec_depth; o[5] = c->heads;
}

static uint32_t crc_bufs(const model_t *m) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const float *b[3] = {m->params, m->m, m->v};
    for (int i = 0; i < 3; i++) {
        const unsigned char *p = (const unsigned char *)b[i];
        size_t left = sizeof(float) * (size_t)m->nparams;
        while (left) {   /* crc32 takes a uInt length */
            uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
            crc = crc32(crc, p, n);
            p += n; left -= n;
        }
    }
    return (uint32_t)crc;
}

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w;
    }
    return 0;
}

static int is_ckpt_name(const char *name, long long *step) {
    int len = 0;
    if (sscanf(name, "ckpt-%lld.bin%n", step, &len) == 1 && name[len] == 0) return 1;
    return 0;
}

static int cmp_desc(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Steps of the checkpoints in dir, newest first. Returns the count (array malloc'd). */
static int list_ckpts(const char *dir, long long **steps) {
    DIR *d = opendir(dir);
    *steps = NULL;
    if (!d) return 0;
    int n = 0, cap = 0;
    struct dirent *e;
    long long s;
    while ((e = readdir(d)))
        if (is_ckpt_name(e->d_name, &s)) {
            if (n == cap) { cap = cap ? 2 * cap : 16; *steps = realloc(*steps, sizeof(long long) * cap); }
            (*steps)[n++] = s;
        }
    closedir(d);
    if (n > 1) qsort(*steps, n, sizeof(long long), cmp_desc);
    return n;
}

int ckpt_save(const char *dir, const model_t *m, const ckpt_state_t *st, int keep, char *err, size_t errlen) {
    ckpt_header_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 8);
    h.version = CKPT_VERSION; h.header_bytes = sizeof h;
    cfg_pack(&m->cfg, h.cfg);
    h.nparams = m->nparams; h.st = *st;
    h.payload_bytes = 3 * sizeof(float) * (uint64_t)m->nparams;
    h.payload_crc = crc_bufs(m);
    h.header_crc = (uint32_t)crc32(0L, (const Bytef *)&h, offsetof(ckpt_header_t, header_crc));
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/ckpt-%08lld.bin", dir, (long long)st->step);
    snprintf(tmp, sizeof tmp, "%s/.ckpt-%08lld.bin.tmp", dir, (long long)st->step);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno)); return -1; }
    size_t nb = sizeof(float) * (size_t)m->nparams;
    int bad = write_all(fd, &h, sizeof h) || write_all(fd, m->params, nb) || write_all(fd, m->m, nb) ||
              write_all(fd, m->v, nb) || fsync(fd);
    if (close(fd)) bad = 1;
    if (bad || rename(tmp, path)) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);   /* make the rename itself durable */
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    long long *steps;
    int n = list_ckpts(dir, &steps);
    for (int i = keep > 0 ? keep : n; i < n; i++) {
        snprintf(path, sizeof path, "%s/ckpt-%08lld.bin", dir, steps[i]);
        unlink(path);
    }
    free(steps);
    return 0;
}

/* Opens path and reads and checks its header; returns the open file or NULL with err set. */
static FILE *open_checked(const char *path, ckpt_header_t *h, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    if (fread(h, sizeof *h, 1, f) != 1) snprintf(err, errlen, "%s: truncated header", path);
    else if (memcmp(h->magic, CKPT_MAGIC, 8)) snprintf(err, errlen, "%s: not a semaim checkpoint (bad magic)", path);
    else if (h->version != CKPT_VERSION || h->header_bytes != sizeof *h)
        snprintf(err, errlen, "%s: checkpoint version %u is not supported (this build reads %u)", path, h->version,
                 CKPT_VERSION);
    else if (h->header_crc != (uint32_t)crc32(0L, (const Bytef *)h, offsetof(ckpt_header_t, header_crc)))
        snprintf(err, errlen, "%s: header CRC mismatch (corrupt)", path);
    else return f;
    fclose(f);
    return NULL;
}

int ckpt_read_header(const char *path, semaim_config_t *cfg, ckpt_state_t *st, char *err, size_t errlen) {
    ckpt_header_t h;
    FILE *f = open_checked(path, &h, err, errlen);
    if (!f) return -1;
    fclose(f);
    *cfg = (semaim_config_t){h.cfg[0], h.cfg[1], h.cfg[2], h.cfg[3], h.cfg[4], h.cfg[5]};
    if (config_validate(cfg, -1, err, errlen)) {
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "%s: invalid model config in header: %s", path, why);
        return -1;
    }
    if (st) *st = h.st;
    return 0;
}

int ckpt_load(const char *path, model_t *m, ckpt_state_t *st, char *err, size_t errlen) {
    ckpt_header_t h;
    FILE *f = open_checked(path, &h, err, errlen);
    if (!f) return -1;
    int rc = -1;
    int32_t cfg[6];
    cfg_pack(&m->cfg, cfg);
    if (memcmp(cfg, h.cfg, sizeof cfg) || h.nparams != m->nparams)
        snprintf(err, errlen,
                 "%s: checkpoint is for another model (image %d patch %d width %d depth %d dec-depth %d heads %d)",
                 path, h.cfg[0], h.cfg[1], h.cfg[2], h.cfg[3], h.cfg[4], h.cfg[5]);
    else {
        size_t nb = sizeof(float) * (size_t)m->nparams;
        if (fread(m->params, 1, nb, f) != nb || fread(m->m, 1, nb, f) != nb || fread(m->v, 1, nb, f) != nb)
            snprintf(err, errlen, "%s: truncated payload", path);
        else if (fgetc(f) != EOF) snprintf(err, errlen, "%s: trailing bytes after payload", path);
        else if (crc_bufs(m) != h.payload_crc) snprintf(err, errlen, "%s: payload CRC mismatch (corrupt)", path);
        else { *st = h.st; rc = 0; }
    }
    fclose(f);
    return rc;
}

int ckpt_load_latest(const char *dir, model_t *m, ckpt_state_t *st, char *path_out, size_t pathlen, char *err,
                     size_t errlen) {
    long long *steps;
    int n = list_ckpts(dir, &steps), rc = n ? -1 : 0;
    char path[4096];
    /* A failed load may have overwritten the buffers: keep the caller's until one verifies. */
    size_t nb = sizeof(float) * (size_t)m->nparams;
    float *save = n ? malloc(3 * nb) : NULL;
    if (save) { memcpy(save, m->params, nb); memcpy(save + m->nparams, m->m, nb); memcpy(save + 2 * m->nparams, m->v, nb); }
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/ckpt-%08lld.bin", dir, steps[i]);
        if (ckpt_load(path, m, st, err, errlen) == 0) {
            if (path_out) snprintf(path_out, pathlen, "%s", path);
            rc = 1;
            break;
        }
        fprintf(stderr, "semaim: skipping checkpoint: %s\n", err);
        if (save) { memcpy(m->params, save, nb); memcpy(m->m, save + m->nparams, nb); memcpy(m->v, save + 2 * m->nparams, nb); }
    }
    if (rc == -1) snprintf(err, errlen, "%s: %d checkpoint(s) found, none verifies (see messages above)", dir, n);
    free(save);
    free(steps);
    return rc;
}
