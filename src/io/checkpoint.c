/* Checkpoints (semaim/checkpoint.h): the header, its checks, and the legacy readers. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "core/files.h"
#include "io/stepfiles.h"
#include "semaim/checkpoint.h"

/* Versions 1 and 2 (104 bytes): everything but the objective, which then was the defaults. */
typedef struct {
    char magic[8];
    uint32_t version, header_bytes;
    int32_t cfg[6];           /* image, patch, width, depth, dec_depth, heads */
    int64_t nparams;
    ckpt_state_t st;
    uint16_t kind;            /* version 1 had uint64 payload_bytes from here (always 12·nparams) */
    uint8_t precision, backend;   /* CKPT_PREC_*, CKPT_GEMM_* (0: not recorded; kind was a u32) */
    uint32_t classes;
    uint32_t payload_crc, header_crc;   /* header_crc covers everything before it */
} ckpt_header2_t;
_Static_assert(sizeof(ckpt_header2_t) == 104, "the header layout is part of the file format");
_Static_assert(offsetof(ckpt_header2_t, kind) == 88 && offsetof(ckpt_header2_t, precision) == 90 &&
               offsetof(ckpt_header2_t, backend) == 91 && offsetof(ckpt_header2_t, classes) == 92,
               "the header layout is part of the file format");

/* Version 4 (200 bytes): version 2's fields in the same places, the pixel objective with the
 * EMA flags in version 3's pad byte, then the target kind and its teacher (target_cfg_t), then
 * the two CRCs. Version 3 (120 bytes) is the same up to the blur sigma (offset 112), then its
 * two CRCs; its runs had the pixel target and no EMA (its pad byte was always 0). */
enum { V3_HEADER_BYTES = 120 };
typedef struct {
    char magic[8];
    uint32_t version, header_bytes;
    int32_t cfg[6];
    int64_t nparams;
    ckpt_state_t st;
    uint16_t kind;
    uint8_t precision, backend;
    uint32_t classes;
    int32_t blur_k;           /* 0: no blur */
    uint8_t norm_pix, loss, signal, ema;   /* LOSS_*, SIGNAL_*, CKPT_EMA_* bits (version 3: 0) */
    double blur_sigma;
    uint8_t target, teacher_layout;   /* TARGET_*, teacher_layout_t */
    uint16_t pad2;
    int32_t teacher_width;    /* 0 unless the target is a teacher */
    int64_t teacher_bytes;
    char teacher_file[TARGET_FILE_MAX];   /* base name, NUL-padded */
    uint32_t payload_crc, header_crc;
} ckpt_header_t;
_Static_assert(sizeof(ckpt_header_t) == 200, "the header layout is part of the file format");
_Static_assert(offsetof(ckpt_header_t, classes) == 92 && offsetof(ckpt_header_t, blur_k) == 96 &&
               offsetof(ckpt_header_t, norm_pix) == 100 && offsetof(ckpt_header_t, ema) == 103 &&
               offsetof(ckpt_header_t, blur_sigma) == 104 &&
               offsetof(ckpt_header_t, target) == 112 && offsetof(ckpt_header_t, teacher_width) == 116 &&
               offsetof(ckpt_header_t, teacher_bytes) == 120 && offsetof(ckpt_header_t, teacher_file) == 128 &&
               offsetof(ckpt_header_t, payload_crc) == 192, "the header layout is part of the file format");

/* Version 1 of fine-tuning checkpoints, read for runs started before the formats became one. */
typedef struct {
    char magic[8];
    uint32_t version, header_bytes;
    int32_t cfg[6];
    int32_t classes, pad;
    int64_t n_enc, nhead;
    ckpt_state_t st;
    uint64_t payload_bytes;
    uint32_t payload_crc, header_crc;
} ft1_header_t;

const char *ckpt_prefix(int kind) { return kind == CKPT_FINETUNE ? "ft-" : "ckpt-"; }

void ckpt_compute_codes(const gemm_config_t *c, int *precision, int *backend) {
    *precision = c->precision == GEMM_PREC_BF16 ? (c->emulated_bf16 ? CKPT_PREC_BF16_EMULATED : CKPT_PREC_BF16)
                 : c->precision == GEMM_PREC_FP32 ? CKPT_PREC_FP32 : 0;
    *backend = c->backend == GEMM_BACKEND_ONEDNN ? CKPT_GEMM_ONEDNN : c->backend == GEMM_BACKEND_OPENBLAS ? CKPT_GEMM_OPENBLAS : 0;
}

const char *ckpt_compute_name(int precision, int backend) {
    static char buf[64];
    static const char *p[] = {"?", "fp32", "bf16", "bf16-emulated"}, *b[] = {"?", "openblas", "onednn"};
    if (!precision && !backend) return "not recorded";
    snprintf(buf, sizeof buf, "%s %s", (unsigned)backend < 3 ? b[backend] : "?", (unsigned)precision < 4 ? p[precision] : "?");
    return buf;
}
const char *ckpt_kind_name(int kind) { return kind == CKPT_FINETUNE ? "fine-tuning" : "pretraining"; }

static void cfg_pack(const semaim_config_t *c, int32_t *o) {
    o[0] = c->image; o[1] = c->patch; o[2] = c->width; o[3] = c->depth; o[4] = c->dec_depth; o[5] = c->heads;
}
static semaim_config_t cfg_unpack(const int32_t *o) { semaim_config_t c = {o[0], o[1], o[2], o[3], o[4], o[5]}; return c; }

/* The payload: parameters, both AdamW moments, then the EMA weights when there are, all in the
 * model's one layout. Returns the number of spans. */
static int payload(const params_t *w, span_t *s) {
    size_t nb = sizeof(float) * (size_t)w->nparams;
    s[0] = (span_t){w->params, nb}; s[1] = (span_t){w->m, nb}; s[2] = (span_t){w->v, nb};
    if (!w->ema) return 3;
    s[3] = (span_t){w->ema, nb};
    return 4;
}

long long ckpt_file_bytes(const ckpt_model_t *id) {
    return (long long)sizeof(ckpt_header_t) + (id->ema ? 16LL : 12LL) * id->nparams;
}

int ckpt_save(const char *dir, const ckpt_model_t *id, const params_t *w, const ckpt_state_t *st, int keep,
              err_t *err) {
    ckpt_header_t h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CKPT_MAGIC, 8);
    h.version = CKPT_VERSION; h.header_bytes = sizeof h;
    cfg_pack(&id->cfg, h.cfg);
    h.nparams = w->nparams; h.st = *st;
    h.kind = (uint16_t)id->kind; h.classes = (uint32_t)id->classes;
    h.precision = (uint8_t)id->precision; h.backend = (uint8_t)id->backend;
    h.blur_k = id->tgt.blur_k; h.blur_sigma = id->tgt.blur_k ? id->tgt.blur_sigma : 0;
    h.norm_pix = (uint8_t)id->tgt.norm_pix; h.loss = (uint8_t)id->tgt.loss; h.signal = (uint8_t)id->tgt.signal;
    h.ema = (uint8_t)((w->ema ? CKPT_EMA_WEIGHTS : 0) | (id->tgt.ema_order ? CKPT_EMA_ORDER : 0));
    h.target = (uint8_t)id->tgt.kind;
    if (id->tgt.kind == TARGET_TEACHER) {
        h.teacher_layout = (uint8_t)id->tgt.teacher_layout; h.teacher_width = id->tgt.teacher_width;
        h.teacher_bytes = id->tgt.teacher_bytes;
        memcpy(h.teacher_file, id->tgt.teacher_file, TARGET_FILE_MAX);
        h.teacher_file[TARGET_FILE_MAX - 1] = 0;
    }
    span_t s[5];
    s[0] = (span_t){&h, sizeof h};
    int k = payload(w, s + 1);
    h.payload_crc = crc32_spans(s + 1, k);
    h.header_crc = crc32_bytes(&h, offsetof(ckpt_header_t, header_crc));
    return stepfile_write(dir, ckpt_prefix(id->kind), st->step, s, k + 1, keep, err);
}

/* Opens path and reads and checks its header (any version); returns the open file, positioned
 * at the payload, or NULL with err set. */
static FILE *open_checked(const char *path, ckpt_model_t *id, ckpt_state_t *st, uint32_t *crc, err_t *err) {
    FILE *f = fopen(path, "rb");
    if (!f) { err_set(err, ERR_INPUT, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    union { ckpt_header_t h; ckpt_header2_t h2; ft1_header_t ft; } u;
    memset(&u, 0, sizeof u);
    size_t got = fread(&u, 1, sizeof u, f);
    const uint32_t version = u.h.version;
    const size_t want_bytes = version == CKPT_VERSION ? sizeof u.h : version == 3 ? V3_HEADER_BYTES : sizeof u.h2;
    const size_t crc_at = want_bytes - 4;   /* every version ends with the payload CRC and the header CRC */
    uint32_t header_crc, payload_crc;
    memcpy(&header_crc, (const char *)&u + crc_at, 4);
    memcpy(&payload_crc, (const char *)&u + crc_at - 4, 4);
    if (got < sizeof u.h2) err_set(err, ERR_INPUT, "%s: truncated header", path);
    else if (!memcmp(u.h.magic, "SEMAIMFT", 8)) {
        ft1_header_t *h = &u.ft;
        if (got < sizeof *h) err_set(err, ERR_INPUT, "%s: truncated header", path);
        else if (h->version != 1 || h->header_bytes != sizeof *h)
            err_set(err, ERR_INPUT, "%s: fine-tuning checkpoint version %u is not supported (this build reads 1 and %s 1 to %u)",
                    path, h->version, CKPT_MAGIC, CKPT_VERSION);
        else if (h->header_crc != crc32_bytes(h, offsetof(ft1_header_t, header_crc)))
            err_set(err, ERR_INPUT, "%s: header CRC mismatch (corrupt)", path);
        else {
            *id = (ckpt_model_t){CKPT_FINETUNE, cfg_unpack(h->cfg), h->classes, (long)(h->n_enc + h->nhead), 0, 0,
                                 target_defaults(), 0};
            *st = h->st;
            *crc = h->payload_crc;
            fseek(f, (long)sizeof *h, SEEK_SET);
            return f;
        }
    } else if (memcmp(u.h.magic, CKPT_MAGIC, 8)) err_set(err, ERR_INPUT, "%s: not a semaim checkpoint (bad magic)", path);
    else if (version < 1 || version > CKPT_VERSION || u.h.header_bytes != want_bytes)
        err_set(err, ERR_INPUT, "%s: checkpoint version %u is not supported (this build reads 1 to %u)", path,
                version, CKPT_VERSION);
    else if (got < want_bytes) err_set(err, ERR_INPUT, "%s: truncated header", path);
    else if (header_crc != crc32_bytes(&u, crc_at))
        err_set(err, ERR_INPUT, "%s: header CRC mismatch (corrupt)", path);
    else {
        ckpt_header2_t *h = &u.h2;   /* the fields both layouts share sit at the same offsets */
        int v1 = version == 1;   /* v1: pretraining, and kind/classes hold the payload size */
        *id = (ckpt_model_t){v1 ? CKPT_PRETRAIN : (int)h->kind, cfg_unpack(h->cfg), v1 ? 0 : (int)h->classes,
                             (long)h->nparams, v1 ? 0 : h->precision, v1 ? 0 : h->backend, target_defaults(), 0};
        if (version >= 3) {   /* v3 and v4 share the pixel objective's fields; v3 runs were pixel, without EMA */
            const unsigned ema = version >= 4 ? u.h.ema : 0;
            id->tgt = (target_cfg_t){u.h.blur_k, u.h.blur_sigma, u.h.norm_pix, u.h.loss, u.h.signal,
                                     (ema & CKPT_EMA_ORDER) != 0, TARGET_PIXEL, 0, 0, 0, ""};
            id->ema = (ema & CKPT_EMA_WEIGHTS) != 0;
            if (version >= 4) {
                id->tgt.kind = u.h.target;
                if (u.h.target == TARGET_TEACHER) {
                    id->tgt.teacher_layout = u.h.teacher_layout; id->tgt.teacher_width = u.h.teacher_width;
                    id->tgt.teacher_bytes = u.h.teacher_bytes;
                    memcpy(id->tgt.teacher_file, u.h.teacher_file, TARGET_FILE_MAX);
                    id->tgt.teacher_file[TARGET_FILE_MAX - 1] = 0;
                }
            }
            err_t te = {0};
            target_cfg_t chk = target_defaults();
            char blur[64];
            snprintf(blur, sizeof blur, "%d,%.17g", u.h.blur_k, u.h.blur_sigma);
            /* the EMA order and the EMA target need the EMA weights, and only pretraining has any */
            int ema_bad = (ema & ~(unsigned)(CKPT_EMA_WEIGHTS | CKPT_EMA_ORDER)) || ((ema & CKPT_EMA_ORDER) && !id->ema) ||
                          (ema && id->kind != CKPT_PRETRAIN) || (id->tgt.kind == TARGET_EMA && !id->ema);
            const int bad_teacher = id->tgt.kind == TARGET_TEACHER &&
                                    (id->tgt.teacher_layout > 1 || id->tgt.teacher_width < 1 || id->tgt.teacher_width > 65536);
            if ((u.h.blur_k && target_parse_blur(blur, &chk, &te)) || u.h.norm_pix > 1 || u.h.loss > LOSS_L1 ||
                u.h.signal > SIGNAL_SELF || ema_bad || id->tgt.kind > TARGET_TEACHER || bad_teacher) {
                err_set(err, ERR_INPUT, "%s: invalid objective in header (blur %d,%g norm-pix %u loss %u signal %u ema %u "
                        "target %d)", path, u.h.blur_k, u.h.blur_sigma, u.h.norm_pix, u.h.loss, u.h.signal, ema,
                        id->tgt.kind);
                fclose(f);
                return NULL;
            }
        }
        *st = h->st;
        *crc = payload_crc;
        fseek(f, (long)want_bytes, SEEK_SET);
        return f;
    }
    fclose(f);
    return NULL;
}

int ckpt_read_header(const char *path, ckpt_model_t *id, ckpt_state_t *st, err_t *err) {
    ckpt_state_t s;
    uint32_t crc;
    FILE *f = open_checked(path, id, &s, &crc, err);
    if (!f) return -1;
    fclose(f);
    if (config_validate(&id->cfg, -1, err)) return err_prefix(err, "%s: invalid model config in header", path);
    if (st) *st = s;
    return 0;
}

int ckpt_load(const char *path, const ckpt_model_t *want, params_t *w, ckpt_state_t *st, err_t *err) {
    ckpt_model_t id;
    ckpt_state_t s;
    uint32_t crc;
    FILE *f = open_checked(path, &id, &s, &crc, err);
    if (!f) return -1;
    int rc = -1;
    int32_t a[6], b[6];
    cfg_pack(&want->cfg, a);
    cfg_pack(&id.cfg, b);
    const semaim_config_t *c = &id.cfg;
    if (id.kind != want->kind)
        err_set(err, ERR_INPUT, "%s: is a %s checkpoint, not a %s one", path, ckpt_kind_name(id.kind),
                ckpt_kind_name(want->kind));
    /* the objective before the size: another target kind also changes the head's size, and
     * naming the target says more than "another model" */
    else if (!memcmp(a, b, sizeof a) && id.classes == want->classes && id.kind == CKPT_PRETRAIN &&
             !target_equal(&id.tgt, &want->tgt)) {
        char x[200], y[200];
        err_set(err, ERR_INPUT, "%s: checkpoint was trained with %s; this run has %s (resume needs the same objective; pass "
                "--resume no to start over)", path, target_describe(&id.tgt, x, sizeof x),
                target_describe(&want->tgt, y, sizeof y));
    } else if (memcmp(a, b, sizeof a) || id.classes != want->classes || id.nparams != w->nparams) {
        if (id.kind == CKPT_FINETUNE)
            err_set(err, ERR_INPUT, "%s: checkpoint is for another model (image %d patch %d width %d depth %d heads %d, "
                    "%d classes)", path, c->image, c->patch, c->width, c->depth, c->heads, id.classes);
        else
            err_set(err, ERR_INPUT, "%s: checkpoint is for another model (image %d patch %d width %d depth %d dec-depth %d "
                    "heads %d)", path, c->image, c->patch, c->width, c->depth, c->dec_depth, c->heads);
    } else if (id.ema != want->ema) {
        err_set(err, ERR_INPUT, "%s: checkpoint %s EMA weights; this run %s (resume needs the same objective; pass "
                "--resume no to start over)", path, id.ema ? "has" : "has no", id.ema ? "keeps none" : "needs them");
    } else {
        ERR_ASSERT(!want->ema == !w->ema, "ckpt_load: the model's EMA buffer does not match its id (ckpt_pretrain)");
        span_t sp[4];
        int k = payload(w, sp);
        if (stepfile_read_payload(f, path, sp, k, crc, err) == 0) { *st = s; rc = 0; }
    }
    fclose(f);
    return rc;
}

void ckpt_remove_stale(const char *dir, int kind) { file_remove_stale_tmps(dir, ckpt_prefix(kind)); }

typedef struct { const ckpt_model_t *id; params_t *w; ckpt_state_t *st; } load_ctx_t;
static int load_one(const char *path, void *ctx, err_t *err) {
    load_ctx_t *c = ctx;
    return ckpt_load(path, c->id, c->w, c->st, err);
}

int ckpt_load_latest(const char *dir, const ckpt_model_t *id, params_t *w, ckpt_state_t *st, char *path_out,
                     size_t pathlen, err_t *err) {
    load_ctx_t c = {id, w, st};
    return stepfile_load_latest(dir, ckpt_prefix(id->kind), id->kind == CKPT_FINETUNE ? "fine-tuning checkpoint" : "checkpoint",
                                load_one, &c, path_out, pathlen, err);
}

/* Builds the model a pretraining checkpoint's header describes and loads it (the model is
 * freed again when that fails). */
static int load_model(const char *path, void *ctx, err_t *err) {
    void **c = ctx;
    model_t *m = c[0];
    ckpt_state_t *st = c[1];
    ckpt_model_t id;
    if (ckpt_read_header(path, &id, st, err)) return -1;
    if (id.kind != CKPT_PRETRAIN)
        return err_set(err, ERR_INPUT, "%s: is a %s checkpoint; a pretraining checkpoint is needed here", path,
                       ckpt_kind_name(id.kind));
    /* the model is the one the file describes, objective (and so the head's width) and EMA included */
    if (model_init_target(m, &id.cfg, &id.tgt, st->seed, err)) return err_prefix(err, "%s", path);
    if (id.ema && params_attach_ema(&m->w, err)) { model_free(m); return err_prefix(err, "%s", path); }
    ckpt_model_t want = ckpt_pretrain(m);
    if (ckpt_load(path, &want, &m->w, st, err) == 0) return 0;
    model_free(m);
    return -1;
}

int ckpt_load_model(const char *path, model_t *m, ckpt_state_t *st, err_t *err) {
    void *c[2] = {m, st};
    return load_model(path, c, err);
}

int ckpt_load_model_latest(const char *dir, model_t *m, ckpt_state_t *st, char *path_out, size_t pathlen, err_t *err) {
    void *c[2] = {m, st};
    return stepfile_load_latest(dir, ckpt_prefix(CKPT_PRETRAIN), "checkpoint", load_model, c, path_out, pathlen, err);
}

int ckpt_load_classifier(const char *path, ft_model_t *f, ckpt_state_t *st, err_t *err) {
    ckpt_model_t id;
    if (ckpt_read_header(path, &id, st, err)) return -1;
    if (id.kind != CKPT_FINETUNE)
        return err_set(err, ERR_INPUT, "%s: is a %s checkpoint; a fine-tuning checkpoint is needed here", path,
                       ckpt_kind_name(id.kind));
    /* the layer decay only scales learning rates: any value loads the same tensors */
    if (ft_init(f, &id.cfg, id.classes, 1, 1.0, st->seed, err)) return err_prefix(err, "%s", path);
    ckpt_model_t want = ckpt_finetune(f);
    if (ckpt_load(path, &want, &f->w, st, err) == 0) return 0;
    ft_free(f);
    return -1;
}
