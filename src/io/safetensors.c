/* safetensors writer and validating reader (format: include/semaim/safetensors.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
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

/* Appends s as a JSON string literal to h (cap checked by the caller's sizing). */
static size_t put_json_string(char *h, size_t cap, const char *s) {
    size_t len = 0;
    len += snprintf(h + len, cap - len, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') len += snprintf(h + len, cap - len, "\\%c", c);
        else if (c < 0x20) len += snprintf(h + len, cap - len, "\\u%04x", c);
        else len += snprintf(h + len, cap - len, "%c", c);
    }
    len += snprintf(h + len, cap - len, "\"");
    return len;
}

int st_write_meta(const char *path, const st_tensor_t *t, int n, const char *const *keys, const char *const *vals,
                  int nmeta, char *err, size_t errlen) {
    /* header JSON; a string can grow 6x when escaped */
    size_t cap = 256 + (size_t)n * 256;
    for (int i = 0; i < n; i++) cap += 6 * strlen(t[i].name);
    for (int i = 0; i < nmeta; i++) cap += 6 * (strlen(keys[i]) + strlen(vals[i])) + 16;
    size_t len = 0;
    char *h = malloc(cap);
    if (!h) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    long off = 0;
    len += snprintf(h + len, cap - len, "{");
    if (nmeta > 0) {
        len += snprintf(h + len, cap - len, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) h[len++] = ',';
            len += put_json_string(h + len, cap - len, keys[i]);
            h[len++] = ':';
            len += put_json_string(h + len, cap - len, vals[i]);
        }
        len += snprintf(h + len, cap - len, "}%s", n ? "," : "");
    }
    for (int i = 0; i < n; i++) {
        long bytes = numel(&t[i]) * dtype_size[t[i].dtype];
        if (i) h[len++] = ',';
        len += put_json_string(h + len, cap - len, t[i].name);
        len += snprintf(h + len, cap - len, ":{\"dtype\":\"%s\",\"shape\":[", dtype_name[t[i].dtype]);
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

int st_write(const char *path, const st_tensor_t *t, int n, char *err, size_t errlen) {
    return st_write_meta(path, t, n, NULL, NULL, 0, err, errlen);
}

/* ---------------------------------------------------------------- header parser
 * A strict parser for exactly the header grammar: an object whose values are tensor entries
 * {dtype, shape, data_offsets} or, under "__metadata__", an object of strings. */
typedef struct {
    const char *p, *e;
    const char *path;
    char *err; size_t errlen;
    int failed;
} jp_t;

static int jfail(jp_t *j, const char *fmt, const char *a, const char *b) {
    if (!j->failed) {
        char msg[512];
        snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
        snprintf(j->err, j->errlen, "%s: safetensors header: %s", j->path, msg);
    }
    j->failed = 1;
    return -1;
}
static void jws(jp_t *j) { while (j->p < j->e && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++; }
static int jexpect(jp_t *j, char c, const char *what) {
    jws(j);
    if (j->p >= j->e || *j->p != c) {
        char cs[2] = {c, 0};
        return jfail(j, "expected '%s' %s", cs, what);
    }
    j->p++;
    return 0;
}
static int jpeek(jp_t *j, char c) { jws(j); return j->p < j->e && *j->p == c; }

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A JSON string into a malloc'd UTF-8 buffer. */
static int jstring(jp_t *j, char **out) {
    *out = NULL;
    if (jexpect(j, '"', "(a string)")) return -1;
    size_t cap = 32, n = 0;
    char *s = malloc(cap);
    if (!s) return jfail(j, "out of memory%s%s", NULL, NULL);
    for (;;) {
        if (j->p >= j->e) { free(s); return jfail(j, "unterminated string%s%s", NULL, NULL); }
        unsigned char c = (unsigned char)*j->p++;
        uint32_t cp;
        if (c == '"') break;
        if (c < 0x20) { free(s); return jfail(j, "control character in a string%s%s", NULL, NULL); }
        if (c != '\\') cp = c;
        else {
            if (j->p >= j->e) { free(s); return jfail(j, "unterminated string%s%s", NULL, NULL); }
            char x = *j->p++;
            switch (x) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                if (j->e - j->p < 4) { free(s); return jfail(j, "bad \\u escape%s%s", NULL, NULL); }
                cp = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(j->p[i]);
                    if (h < 0) { free(s); return jfail(j, "bad \\u escape%s%s", NULL, NULL); }
                    cp = cp * 16 + (uint32_t)h;
                }
                j->p += 4;
                if (cp == 0) { free(s); return jfail(j, "NUL character in a string%s%s", NULL, NULL); }
                break;
            }
            default: free(s); return jfail(j, "bad escape in a string%s%s", NULL, NULL);
            }
        }
        if (n + 8 > cap) {
            cap *= 2;
            char *t = realloc(s, cap);
            if (!t) { free(s); return jfail(j, "out of memory%s%s", NULL, NULL); }
            s = t;
        }
        /* raw bytes (already UTF-8) pass through; \u escapes become UTF-8 (surrogates as-is) */
        if (c != '\\' || cp < 0x80) s[n++] = (char)cp;
        else if (cp < 0x800) { s[n++] = (char)(0xC0 | cp >> 6); s[n++] = (char)(0x80 | (cp & 63)); }
        else { s[n++] = (char)(0xE0 | cp >> 12); s[n++] = (char)(0x80 | ((cp >> 6) & 63)); s[n++] = (char)(0x80 | (cp & 63)); }
    }
    s[n] = 0;
    *out = s;
    return 0;
}

/* A non-negative integer without fraction or exponent. */
static int juint(jp_t *j, uint64_t *v, const char *where, const char *name) {
    jws(j);
    if (j->p >= j->e || *j->p < '0' || *j->p > '9') return jfail(j, "tensor '%s': %s must be non-negative integers", name, where);
    uint64_t x = 0;
    while (j->p < j->e && *j->p >= '0' && *j->p <= '9') {
        if (x > (UINT64_MAX - 9) / 10) return jfail(j, "tensor '%s': %s value too large", name, where);
        x = x * 10 + (uint64_t)(*j->p++ - '0');
    }
    if (j->p < j->e && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return jfail(j, "tensor '%s': %s must be non-negative integers", name, where);
    *v = x;
    return 0;
}

static int parse_entry(jp_t *j, st_entry_t *t) {
    int have_dtype = 0, have_shape = 0, have_off = 0;
    if (jexpect(j, '{', "(a tensor entry)")) return -1;
    if (jpeek(j, '}')) return jfail(j, "tensor '%s': entry must have dtype, shape and data_offsets%s", t->name, NULL);
    do {
        char *k;
        if (jstring(j, &k) || jexpect(j, ':', "after a key")) { free(k); return -1; }
        if (!strcmp(k, "dtype") && !have_dtype) {
            char *d;
            if (jstring(j, &d)) { free(k); return -1; }
            int found = -1;
            for (int i = 0; i < NDTYPES; i++) if (!strcmp(d, dtype_name[i])) found = i;
            if (found < 0) { jfail(j, "tensor '%s': unsupported dtype '%s'", t->name, d); free(d); free(k); return -1; }
            free(d);
            t->dtype = (st_dtype_t)found;
            have_dtype = 1;
        } else if (!strcmp(k, "shape") && !have_shape) {
            if (jexpect(j, '[', "(shape)")) { free(k); return -1; }
            t->ndim = 0;
            if (!jpeek(j, ']'))
                do {
                    uint64_t v;
                    if (t->ndim == ST_MAX_DIMS) { free(k); return jfail(j, "tensor '%s': more than 8 dimensions%s", t->name, NULL); }
                    if (juint(j, &v, "shape", t->name)) { free(k); return -1; }
                    if (v > (1ULL << 40)) { free(k); return jfail(j, "tensor '%s': dimension too large%s", t->name, NULL); }
                    t->shape[t->ndim++] = (long)v;
                } while (jpeek(j, ',') && j->p++);
            if (jexpect(j, ']', "(end of shape)")) { free(k); return -1; }
            have_shape = 1;
        } else if (!strcmp(k, "data_offsets") && !have_off) {
            if (jexpect(j, '[', "(data_offsets)") || juint(j, &t->begin, "data_offsets", t->name) ||
                jexpect(j, ',', "in data_offsets") || juint(j, &t->end, "data_offsets", t->name) ||
                jexpect(j, ']', "(data_offsets has two values)")) { free(k); return -1; }
            have_off = 1;
        } else {
            jfail(j, "tensor '%s': unexpected or repeated key '%s'", t->name, k);
            free(k);
            return -1;
        }
        free(k);
    } while (jpeek(j, ',') && j->p++);
    if (jexpect(j, '}', "(end of a tensor entry)")) return -1;
    if (!have_dtype || !have_shape || !have_off)
        return jfail(j, "tensor '%s': entry must have dtype, shape and data_offsets%s", t->name, NULL);
    return 0;
}

static int parse_meta(jp_t *j, st_file_t *f) {
    if (jexpect(j, '{', "(__metadata__ object)")) return -1;
    if (jpeek(j, '}')) { j->p++; return 0; }
    do {
        char *k = NULL, *v = NULL;
        if (jstring(j, &k) || jexpect(j, ':', "after a key") || jstring(j, &v)) {
            free(k); free(v);
            return jfail(j, "__metadata__ must map strings to strings%s%s", NULL, NULL);
        }
        char **nk = realloc(f->meta_key, sizeof(char *) * (f->nmeta + 1));
        if (nk) f->meta_key = nk;
        char **nv = realloc(f->meta_val, sizeof(char *) * (f->nmeta + 1));
        if (nv) f->meta_val = nv;
        if (!nk || !nv) { free(k); free(v); return jfail(j, "out of memory%s%s", NULL, NULL); }
        f->meta_key[f->nmeta] = k; f->meta_val[f->nmeta] = v; f->nmeta++;
    } while (jpeek(j, ',') && j->p++);
    return jexpect(j, '}', "(end of __metadata__)");
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

int st_open(st_file_t *f, const char *path, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)); return -1; }
    struct stat sb;
    unsigned char le[8];
    if (fstat(fileno(fp), &sb) || fread(le, 1, 8, fp) != 8) {
        snprintf(err, errlen, "%s: too short for a safetensors file (%lld bytes)", path, (long long)sb.st_size);
        fclose(fp);
        return -1;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)le[i] << (8 * i);
    uint64_t fsize = (uint64_t)sb.st_size;
    if (hl > fsize - 8 || hl > (uint64_t)ST_MAX_HEADER) {
        snprintf(err, errlen, "%s: header length %llu does not fit the file of %llu bytes (not a safetensors file, or truncated)",
                 path, (unsigned long long)hl, (unsigned long long)fsize);
        fclose(fp);
        return -1;
    }
    char *h = malloc(hl + 1);
    if (!h) { snprintf(err, errlen, "%s: out of memory for the header", path); fclose(fp); return -1; }
    if (fread(h, 1, hl, fp) != hl) {
        snprintf(err, errlen, "%s: cannot read the header", path);
        free(h); fclose(fp);
        return -1;
    }
    fclose(fp);
    h[hl] = 0;
    f->path = strdup(path);
    f->data_start = 8 + hl;
    uint64_t dsize = fsize - f->data_start;
    jp_t j = {h, h + hl, path, err, errlen, 0};
    int cap = 0;
    if (!f->path) jfail(&j, "out of memory%s%s", NULL, NULL);
    if (!j.failed && !jexpect(&j, '{', "at the start") && !jpeek(&j, '}')) {
        do {
            char *name;
            if (jstring(&j, &name)) break;
            if (jexpect(&j, ':', "after a key")) { free(name); break; }
            if (!strcmp(name, "__metadata__")) {
                free(name);
                if (parse_meta(&j, f)) break;
                continue;
            }
            if (f->n == cap) {
                cap = cap ? 2 * cap : 64;
                st_entry_t *t = realloc(f->t, sizeof *t * cap);
                if (!t) { free(name); jfail(&j, "out of memory%s%s", NULL, NULL); break; }
                f->t = t;
            }
            st_entry_t *t = &f->t[f->n++];
            memset(t, 0, sizeof *t);
            t->name = name;
            if (parse_entry(&j, t)) break;
            long n = 1;
            for (int d = 0; d < t->ndim; d++) {
                if (t->shape[d] && n > (1L << 60) / t->shape[d]) { jfail(&j, "tensor '%s': too many elements%s", name, NULL); break; }
                n *= t->shape[d];
            }
            if (j.failed) break;
            if (t->begin > t->end || t->end > dsize) {
                char r[96];
                snprintf(r, sizeof r, "[%llu, %llu] outside the %llu data bytes (truncated file?)",
                         (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)dsize);
                jfail(&j, "tensor '%s': data_offsets %s", name, r);
                break;
            }
            if (t->end - t->begin != (uint64_t)n * dtype_size[t->dtype]) {
                char r[128];
                snprintf(r, sizeof r, "%llu bytes for %ld %s elements (expected %llu)",
                         (unsigned long long)(t->end - t->begin), n, dtype_name[t->dtype],
                         (unsigned long long)n * dtype_size[t->dtype]);
                jfail(&j, "tensor '%s': %s", name, r);
                break;
            }
        } while (jpeek(&j, ',') && j.p++);
    }
    if (!j.failed && !jexpect(&j, '}', "at the end of the header")) {
        jws(&j);
        if (j.p != j.e) jfail(&j, "trailing characters after the header object%s%s", NULL, NULL);
    }
    free(h);
    if (!j.failed && f->n > 1) {
        int *idx = malloc(sizeof(int) * f->n);
        if (!idx) jfail(&j, "out of memory%s%s", NULL, NULL);
        else {
            sort_file = f;   /* qsort has no context argument; the reader is not used concurrently */
            for (int i = 0; i < f->n; i++) idx[i] = i;
            qsort(idx, f->n, sizeof(int), cmp_name);
            for (int i = 1; i < f->n && !j.failed; i++)
                if (!strcmp(f->t[idx[i]].name, f->t[idx[i - 1]].name)) jfail(&j, "tensor '%s' appears twice%s", f->t[idx[i]].name, NULL);
            qsort(idx, f->n, sizeof(int), cmp_begin);
            for (int i = 1; i < f->n && !j.failed; i++) {
                const st_entry_t *a = &f->t[idx[i - 1]], *b = &f->t[idx[i]];
                if (b->begin < a->end && b->begin < b->end) jfail(&j, "tensors '%s' and '%s' overlap", a->name, b->name);
            }
            free(idx);
        }
    }
    if (j.failed) { st_close(f); return -1; }
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

int st_read_f32(const st_file_t *f, const st_entry_t *e, float *dst, char *err, size_t errlen) {
    if (e->dtype != ST_F32 && e->dtype != ST_F64 && e->dtype != ST_F16 && e->dtype != ST_BF16) {
        snprintf(err, errlen, "%s: tensor '%s' has dtype %s; a floating-point dtype (F32, F64, F16, BF16) is needed",
                 f->path, e->name, dtype_name[e->dtype]);
        return -1;
    }
    FILE *fp = fopen(f->path, "rb");
    if (!fp) { snprintf(err, errlen, "%s: cannot open: %s", f->path, strerror(errno)); return -1; }
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
    if (rc) snprintf(err, errlen, "%s: cannot read tensor '%s' (file changed or truncated?)", f->path, e->name);
    fclose(fp);
    return rc;
}
