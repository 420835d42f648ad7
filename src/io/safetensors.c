/* safetensors writer and validating reader (format: include/semaim/safetensors.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/files.h"
#include "core/json.h"
#include "semaim/safetensors.h"

static const char *dtype_name[] = {"F32", "I32", "F64", "U8", "I64", "F16", "BF16"};
static const int dtype_size[] = {4, 4, 8, 1, 8, 2, 2};
#define NDTYPES ((int)(sizeof dtype_name / sizeof dtype_name[0]))
/* A header larger than this is not a weights file we can mean. */
#define ST_MAX_HEADER (100L << 20)

const char *st_dtype_name(st_dtype_t d) { return (int)d >= 0 && (int)d < NDTYPES ? dtype_name[d] : "?"; }

static long numel(const st_tensor_t *t) {
    long n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int st_write_meta(const char *path, const st_tensor_t *t, int n, const char *const *keys, const char *const *vals,
                  int nmeta, err_t *err) {
    buf_t h = {0};
    buf_puts(&h, "{");
    if (nmeta > 0) {
        buf_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) buf_puts(&h, ",");
            json_str(&h, keys[i]);
            buf_puts(&h, ":");
            json_str(&h, vals[i]);
        }
        buf_puts(&h, n ? "}," : "}");
    }
    long off = 0;
    for (int i = 0; i < n; i++) {
        long bytes = numel(&t[i]) * dtype_size[t[i].dtype];
        if (i) buf_puts(&h, ",");
        json_str(&h, t[i].name);
        buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dtype_name[t[i].dtype]);
        for (int d = 0; d < t[i].ndim; d++) buf_printf(&h, "%s%ld", d ? "," : "", t[i].shape[d]);
        buf_printf(&h, "],\"data_offsets\":[%ld,%ld]}", off, off + bytes);
        off += bytes;
    }
    buf_puts(&h, "}");
    while (h.len % 8) buf_puts(&h, " ");       /* keep the data 8-byte aligned */
    span_t *sp = malloc(sizeof(span_t) * (size_t)(n + 2));
    if (h.oom || !sp) {
        buf_free(&h);
        free(sp);
        return err_set(err, ERR_RUNTIME, "%s: out of memory", path);
    }
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    sp[0] = (span_t){le, 8};
    sp[1] = (span_t){h.s, h.len};
    for (int i = 0; i < n; i++) sp[2 + i] = (span_t){(void *)t[i].data, (size_t)numel(&t[i]) * dtype_size[t[i].dtype]};
    int rc = file_write_atomic(path, sp, n + 2, err);
    free(sp);
    buf_free(&h);
    return rc;
}

int st_write(const char *path, const st_tensor_t *t, int n, err_t *err) {
    return st_write_meta(path, t, n, NULL, NULL, 0, err);
}

/* ---------------------------------------------------------------- header checks
 * The header is parsed by the project's JSON reader; this checks the tree against exactly
 * the header grammar: an object whose values are tensor entries {dtype, shape, data_offsets}
 * or, under "__metadata__", an object of strings. */
typedef struct {
    const char *path;
    err_t *err;
    int failed;
} hdr_t;

static int hfail(hdr_t *c, const char *fmt, const char *a, const char *b) {
    if (!c->failed) {
        char msg[ERR_MSG_MAX];
        snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
        err_set(c->err, ERR_INPUT, "%s: safetensors header: %s", c->path, msg);
    }
    c->failed = 1;
    return -1;
}

/* A non-negative integer written without fraction or exponent, below 2^63. */
static int hint(hdr_t *c, const json_t *v, uint64_t *out, const char *where, const char *name) {
    if (v->type != JSON_NUM || !v->integral || v->num < 0)
        return hfail(c, "tensor '%s': %s must be non-negative integers", name, where);
    if (v->num >= 9223372036854775808.0) return hfail(c, "tensor '%s': %s value too large", name, where);
    *out = (uint64_t)v->num;
    return 0;
}

static int check_entry(hdr_t *c, const json_t *v, st_entry_t *t) {
    int have_dtype = 0, have_shape = 0, have_off = 0;
    if (v->type != JSON_OBJ) return hfail(c, "tensor '%s': entry must be an object%s", t->name, NULL);
    for (size_t i = 0; i < v->n; i++) {
        const char *k = v->keys[i];
        const json_t *x = &v->items[i];
        if (!strcmp(k, "dtype") && !have_dtype) {
            int found = -1;
            for (int d = 0; x->type == JSON_STR && d < NDTYPES; d++) if (!strcmp(x->str, dtype_name[d])) found = d;
            if (found < 0) return hfail(c, "tensor '%s': unsupported dtype '%s'", t->name, x->type == JSON_STR ? x->str : "?");
            t->dtype = (st_dtype_t)found;
            have_dtype = 1;
        } else if (!strcmp(k, "shape") && !have_shape) {
            if (x->type != JSON_ARR) return hfail(c, "tensor '%s': shape must be an array%s", t->name, NULL);
            if (x->n > ST_MAX_DIMS) return hfail(c, "tensor '%s': more than 8 dimensions%s", t->name, NULL);
            t->ndim = (int)x->n;
            for (size_t d = 0; d < x->n; d++) {
                uint64_t dim;
                if (hint(c, &x->items[d], &dim, "shape", t->name)) return -1;
                if (dim > (1ULL << 40)) return hfail(c, "tensor '%s': dimension too large%s", t->name, NULL);
                t->shape[d] = (long)dim;
            }
            have_shape = 1;
        } else if (!strcmp(k, "data_offsets") && !have_off) {
            if (x->type != JSON_ARR || x->n != 2) return hfail(c, "tensor '%s': data_offsets has two values%s", t->name, NULL);
            if (hint(c, &x->items[0], &t->begin, "data_offsets", t->name) ||
                hint(c, &x->items[1], &t->end, "data_offsets", t->name)) return -1;
            have_off = 1;
        } else return hfail(c, "tensor '%s': unexpected or repeated key '%s'", t->name, k);
    }
    if (!have_dtype || !have_shape || !have_off)
        return hfail(c, "tensor '%s': entry must have dtype, shape and data_offsets%s", t->name, NULL);
    return 0;
}

static int check_meta(hdr_t *c, const json_t *v, st_file_t *f) {
    if (f->meta_key) return hfail(c, "__metadata__ appears twice%s%s", NULL, NULL);
    if (v->type != JSON_OBJ) return hfail(c, "__metadata__ must map strings to strings%s%s", NULL, NULL);
    f->meta_key = calloc(v->n + 1, sizeof(char *));
    f->meta_val = calloc(v->n + 1, sizeof(char *));
    if (!f->meta_key || !f->meta_val) return hfail(c, "out of memory%s%s", NULL, NULL);
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i].type != JSON_STR) return hfail(c, "__metadata__ must map strings to strings%s%s", NULL, NULL);
        f->meta_key[f->nmeta] = strdup(v->keys[i]);
        f->meta_val[f->nmeta] = strdup(v->items[i].str);
        f->nmeta++;
        if (!f->meta_key[f->nmeta - 1] || !f->meta_val[f->nmeta - 1]) return hfail(c, "out of memory%s%s", NULL, NULL);
    }
    return 0;
}

long st_numel(const st_entry_t *e) {
    long n = 1;
    for (int i = 0; i < e->ndim; i++) n *= e->shape[i];
    return n;
}

static const st_file_t *sort_file;
static int cmp_begin(const void *a, const void *b) {
    const st_entry_t *x = &sort_file->t[*(const int *)a], *y = &sort_file->t[*(const int *)b];
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1 : x->end > y->end;
}
static int cmp_name(const void *a, const void *b) {
    return strcmp(sort_file->t[*(const int *)a].name, sort_file->t[*(const int *)b].name);
}

void st_close(st_file_t *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    for (int i = 0; i < f->nmeta; i++) { free(f->meta_key[i]); free(f->meta_val[i]); }
    free(f->t); free(f->meta_key); free(f->meta_val); free(f->path);
    memset(f, 0, sizeof *f);
}

int st_open(st_file_t *f, const char *path, err_t *err) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) { err_set(err, ERR_INPUT, "%s: cannot open: %s", path, strerror(errno)); return -1; }
    struct stat sb;
    unsigned char le[8];
    if (fstat(fileno(fp), &sb) || fread(le, 1, 8, fp) != 8) {
        err_set(err, ERR_INPUT, "%s: too short for a safetensors file (%lld bytes)", path, (long long)sb.st_size);
        fclose(fp);
        return -1;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)le[i] << (8 * i);
    uint64_t fsize = (uint64_t)sb.st_size;
    if (hl > fsize - 8 || hl > (uint64_t)ST_MAX_HEADER) {
        err_set(err, ERR_INPUT, "%s: header length %llu does not fit the file of %llu bytes (not a safetensors file, or truncated)",
                 path, (unsigned long long)hl, (unsigned long long)fsize);
        fclose(fp);
        return -1;
    }
    char *h = malloc(hl + 1);
    if (!h) { err_set(err, ERR_RUNTIME, "%s: out of memory for the header", path); fclose(fp); return -1; }
    if (fread(h, 1, hl, fp) != hl) {
        err_set(err, ERR_INPUT, "%s: cannot read the header", path);
        free(h); fclose(fp);
        return -1;
    }
    fclose(fp);
    h[hl] = 0;
    f->path = strdup(path);
    f->data_start = 8 + hl;
    uint64_t dsize = fsize - f->data_start;
    hdr_t c = {path, err, 0};
    json_t root = {0};
    err_t je;
    if (!f->path) hfail(&c, "out of memory%s%s", NULL, NULL);
    else if (json_parse(h, hl, &root, &je)) hfail(&c, "%s%s", je.msg, NULL);
    free(h);
    if (!c.failed && root.type != JSON_OBJ) hfail(&c, "expected '{' at the start%s%s", NULL, NULL);
    if (!c.failed && root.n) {
        f->t = calloc(root.n, sizeof *f->t);
        if (!f->t) hfail(&c, "out of memory%s%s", NULL, NULL);
    }
    for (size_t i = 0; !c.failed && i < root.n; i++) {
        const char *name = root.keys[i];
        if (!strcmp(name, "__metadata__")) {
            check_meta(&c, &root.items[i], f);
            continue;
        }
        st_entry_t *t = &f->t[f->n++];
        t->name = strdup(name);
        if (!t->name) { hfail(&c, "out of memory%s%s", NULL, NULL); break; }
        if (check_entry(&c, &root.items[i], t)) break;
        long n = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] && n > (1L << 60) / t->shape[d]) { hfail(&c, "tensor '%s': too many elements%s", name, NULL); break; }
            n *= t->shape[d];
        }
        if (c.failed) break;
        if (t->begin > t->end || t->end > dsize) {
            char r[96];
            snprintf(r, sizeof r, "[%llu, %llu] outside the %llu data bytes (truncated file?)",
                     (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)dsize);
            hfail(&c, "tensor '%s': data_offsets %s", name, r);
            break;
        }
        if (t->end - t->begin != (uint64_t)n * dtype_size[t->dtype]) {
            char r[128];
            snprintf(r, sizeof r, "%llu bytes for %ld %s elements (expected %llu)",
                     (unsigned long long)(t->end - t->begin), n, dtype_name[t->dtype],
                     (unsigned long long)n * dtype_size[t->dtype]);
            hfail(&c, "tensor '%s': %s", name, r);
            break;
        }
    }
    json_free(&root);
    if (!c.failed && f->n > 1) {
        int *idx = malloc(sizeof(int) * f->n);
        if (!idx) hfail(&c, "out of memory%s%s", NULL, NULL);
        else {
            sort_file = f;   /* qsort has no context argument; the reader is not used concurrently */
            for (int i = 0; i < f->n; i++) idx[i] = i;
            qsort(idx, f->n, sizeof(int), cmp_name);
            for (int i = 1; i < f->n && !c.failed; i++)
                if (!strcmp(f->t[idx[i]].name, f->t[idx[i - 1]].name)) hfail(&c, "tensor '%s' appears twice%s", f->t[idx[i]].name, NULL);
            qsort(idx, f->n, sizeof(int), cmp_begin);
            for (int i = 1; i < f->n && !c.failed; i++) {
                const st_entry_t *a = &f->t[idx[i - 1]], *b = &f->t[idx[i]];
                if (b->begin < a->end && b->begin < b->end) hfail(&c, "tensors '%s' and '%s' overlap", a->name, b->name);
            }
            free(idx);
        }
    }
    if (c.failed) { st_close(f); return -1; }
    return 0;
}

const st_entry_t *st_find(const st_file_t *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

const char *st_meta(const st_file_t *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta_key[i], key)) return f->meta_val[i];
    return NULL;
}

static float half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 31) bits = s | 0x7f800000u | (m << 13);          /* inf / nan */
    else if (e) bits = s | ((e + 112) << 23) | (m << 13);     /* normal */
    else if (!m) bits = s;                                    /* zero */
    else {                                                    /* subnormal: renormalise */
        e = 113;
        while (!(m & 1024)) { m <<= 1; e--; }
        bits = s | (e << 23) | ((m & 1023) << 13);
    }
    float x;
    memcpy(&x, &bits, 4);
    return x;
}

int st_read_f32(const st_file_t *f, const st_entry_t *e, float *dst, err_t *err) {
    if (e->dtype != ST_F32 && e->dtype != ST_F64 && e->dtype != ST_F16 && e->dtype != ST_BF16) {
        err_set(err, ERR_INPUT, "%s: tensor '%s' has dtype %s; a floating-point dtype (F32, F64, F16, BF16) is needed",
                 f->path, e->name, dtype_name[e->dtype]);
        return -1;
    }
    FILE *fp = fopen(f->path, "rb");
    if (!fp) { err_set(err, ERR_INPUT, "%s: cannot open: %s", f->path, strerror(errno)); return -1; }
    int rc = -1;
    long n = st_numel(e);
    if (fseeko(fp, (off_t)(f->data_start + e->begin), SEEK_SET)) goto io;
    if (e->dtype == ST_F32) {
        if (fread(dst, 4, (size_t)n, fp) != (size_t)n) goto io;
        rc = 0;
    } else {
        int sz = dtype_size[e->dtype];
        enum { CH = 4096 };
        unsigned char buf[CH * 8];
        for (long i = 0; i < n; i += CH) {
            long c = n - i < CH ? n - i : CH;
            if (fread(buf, (size_t)sz, (size_t)c, fp) != (size_t)c) goto io;
            for (long k = 0; k < c; k++) {
                if (e->dtype == ST_F64) { double d; memcpy(&d, buf + 8 * k, 8); dst[i + k] = (float)d; }
                else {
                    uint16_t h; memcpy(&h, buf + 2 * k, 2);
                    if (e->dtype == ST_F16) dst[i + k] = half_to_float(h);
                    else { uint32_t b = (uint32_t)h << 16; memcpy(&dst[i + k], &b, 4); }
                }
            }
        }
        rc = 0;
    }
io:
    if (rc) err_set(err, ERR_INPUT, "%s: cannot read tensor '%s' (file changed or truncated?)", f->path, e->name);
    fclose(fp);
    return rc;
}
