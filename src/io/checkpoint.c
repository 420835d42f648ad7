#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "semaim/checkpoint.h"
#include "io/stepfiles.h"

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

/* The payload: parameters, then both AdamW moments, all in the model's one layout. */
static void payload(const model_t *m, span_t *s) {
    size_t nb = sizeof(float) * (size_t)m->nparams;
    s[0] = (span_t){m->params, nb}; s[1] = (span_t){m->m, nb}; s[2] = (span_t){m->v, nb};
}

int ckpt_save(const char *dir, const model_t *m, const ckpt_state_t *st, int keep, char *err, size_t errlen) {
    ckpt_header_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 8);
    h.version = CKPT_VERSION; h.header_bytes = sizeof h;
    cfg_pack(&m->cfg, h.cfg);
    h.nparams = m->nparams; h.st = *st;
    span_t s[4];
    s[0] = (span_t){&h, sizeof h};
    payload(m, s + 1);
    h.payload_bytes = 3 * sizeof(float) * (uint64_t)m->nparams;
    h.payload_crc = crc32_spans(s + 1, 3);
    h.header_crc = crc32_bytes(&h, offsetof(ckpt_header_t, header_crc));
    return stepfile_write(dir, "ckpt-", st->step, s, 4, keep, err, errlen);
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
    else if (h->header_crc != crc32_bytes(h, offsetof(ckpt_header_t, header_crc)))
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
        span_t sp[3];
        payload(m, sp);
        if (stepfile_read_payload(f, path, sp, 3, h.payload_crc, err, errlen) == 0) { *st = h.st; rc = 0; }
    }
    fclose(f);
    return rc;
}

typedef struct { model_t *m; ckpt_state_t *st; } load_ctx_t;
static int load_one(const char *path, void *ctx, char *err, size_t errlen) {
    load_ctx_t *c = ctx;
    return ckpt_load(path, c->m, c->st, err, errlen);
}

int ckpt_load_latest(const char *dir, model_t *m, ckpt_state_t *st, char *path_out, size_t pathlen, char *err,
                     size_t errlen) {
    load_ctx_t c = {m, st};
    return stepfile_load_latest(dir, "ckpt-", "checkpoint", load_one, &c, path_out, pathlen, err, errlen);
}
