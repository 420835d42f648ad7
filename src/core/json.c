/* See core/json.h. The reader is strict (RFC 8259 values, no comments, no trailing commas,
 * depth at most 64) because its inputs come from outside: manifests, records, metrics lines,
 * safetensors headers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/json.h"

int json_utf8_len(const unsigned char *s) {
    /* Length of a valid UTF-8 sequence at s, or 0. */
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 2 && c < 0xC2) return 0;
    for (int i = 1; i < n; i++) if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && c == 0xE0 && s[1] < 0xA0) return 0;
    if (n == 3 && c == 0xED && s[1] >= 0xA0) return 0;   /* surrogates */
    if (n == 4 && ((c == 0xF0 && s[1] < 0x90) || c > 0xF4 || (c == 0xF4 && s[1] >= 0x90))) return 0;
    return n;
}

int json_utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) { int n = json_utf8_len(p); if (!n) return 0; p += n; }
    return 1;
}

void json_str(buf_t *b, const char *s) {
    if (!s) s = "";
    buf_add(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; buf_add(b, e, 2); p++; }
        else if (c < 0x20) {
            const char *esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
            if (esc) buf_puts(b, esc); else buf_printf(b, "\\u%04x", c);
            p++;
        } else if (c < 0x80) { buf_add(b, (const char *)p, 1); p++; }
        else {
            int n = json_utf8_len(p);
            if (n) { buf_add(b, (const char *)p, (size_t)n); p += n; }
            else { buf_printf(b, "\\u%04x", c); p++; }
        }
    }
    buf_add(b, "\"", 1);
}

/* ---------------------------------------------------------------- reader */
typedef struct { const char *p, *end, *start; err_t *err; int failed, depth; } jp;

static void skip_ws(jp *j) { while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')) j->p++; }

static int fail(jp *j, const char *what) {
    if (!j->failed && j->err) err_set(j->err, ERR_INPUT, "%s at byte %ld", what, (long)(j->p - j->start));
    j->failed = 1;
    return -1;
}

static int hex4(const char *p, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        *v <<= 4;
        if (c >= '0' && c <= '9') *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') *v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    return 0;
}

static void put_utf8(buf_t *b, unsigned cp) {
    char u[4]; size_t n;
    if (cp < 0x80) { u[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 63)); n = 2; }
    else if (cp < 0x10000) { u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | (cp >> 6 & 63)); u[2] = (char)(0x80 | (cp & 63)); n = 3; }
    else { u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | (cp >> 12 & 63)); u[2] = (char)(0x80 | (cp >> 6 & 63)); u[3] = (char)(0x80 | (cp & 63)); n = 4; }
    buf_add(b, u, n);
}

static int parse_string(jp *j, char **out) {
    buf_t b = {0};
    j->p++;   /* opening quote */
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        if (c < 0x20) { buf_free(&b); return fail(j, "control character in string"); }
        if (c != '\\') { buf_add(&b, j->p, 1); j->p++; continue; }
        if (j->p + 1 >= j->end) break;
        char e = j->p[1];
        j->p += 2;
        switch (e) {
        case '"': buf_add(&b, "\"", 1); break;
        case '\\': buf_add(&b, "\\", 1); break;
        case '/': buf_add(&b, "/", 1); break;
        case 'b': buf_add(&b, "\b", 1); break;
        case 'f': buf_add(&b, "\f", 1); break;
        case 'n': buf_add(&b, "\n", 1); break;
        case 'r': buf_add(&b, "\r", 1); break;
        case 't': buf_add(&b, "\t", 1); break;
        case 'u': {
            unsigned cp;
            if (j->end - j->p < 4 || hex4(j->p, &cp)) { buf_free(&b); return fail(j, "bad \\u escape"); }
            j->p += 4;
            if (cp == 0) { buf_free(&b); return fail(j, "NUL character in string"); }
            if (cp >= 0xD800 && cp < 0xDC00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
                unsigned lo;
                if (!hex4(j->p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); j->p += 6; }
            }
            /* \u0080-\u00ff stand for raw bytes of a non-UTF-8 file name (see the writer) */
            if (cp >= 0x80 && cp < 0x100) { char raw = (char)cp; buf_add(&b, &raw, 1); }
            else put_utf8(&b, cp);
            break;
        }
        default: buf_free(&b); return fail(j, "bad escape");
        }
    }
    if (j->p >= j->end) { buf_free(&b); return fail(j, "unterminated string"); }
    j->p++;
    if (b.oom) { buf_free(&b); return fail(j, "out of memory"); }
    if (!b.s) { b.s = calloc(1, 1); if (!b.s) return fail(j, "out of memory"); }
    *out = b.s;
    return 0;
}

static int parse_value(jp *j, json_t *v);

static int push(json_t *v, json_t *item, char *key) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        json_t *it = realloc(v->items, cap * sizeof *it);
        if (!it) return -1;
        v->items = it;
        if (v->type == JSON_OBJ) {
            char **k = realloc(v->keys, cap * sizeof *k);
            if (!k) return -1;
            v->keys = k;
        }
        v->cap = cap;
    }
    v->items[v->n] = *item;
    if (v->type == JSON_OBJ) v->keys[v->n] = key;
    v->n++;
    return 0;
}

static int parse_value(jp *j, json_t *v) {
    memset(v, 0, sizeof *v);
    skip_ws(j);
    if (j->p >= j->end) return fail(j, "unexpected end of input");
    if (++j->depth > 64) return fail(j, "nesting too deep");
    int rc = 0;
    char c = *j->p;
    if (c == '{' || c == '[') {
        v->type = c == '{' ? JSON_OBJ : JSON_ARR;
        char close = c == '{' ? '}' : ']';
        j->p++;
        skip_ws(j);
        if (j->p < j->end && *j->p == close) { j->p++; j->depth--; return 0; }
        for (;;) {
            char *key = NULL;
            skip_ws(j);
            if (v->type == JSON_OBJ) {
                if (j->p >= j->end || *j->p != '"') { rc = fail(j, "expected a key"); break; }
                if (parse_string(j, &key)) { rc = -1; break; }
                skip_ws(j);
                if (j->p >= j->end || *j->p != ':') { free(key); rc = fail(j, "expected ':'"); break; }
                j->p++;
            }
            json_t item;
            if (parse_value(j, &item)) { free(key); json_free(&item); rc = -1; break; }
            if (push(v, &item, key)) { free(key); json_free(&item); rc = fail(j, "out of memory"); break; }
            skip_ws(j);
            if (j->p < j->end && *j->p == ',') { j->p++; continue; }
            if (j->p < j->end && *j->p == close) { j->p++; break; }
            rc = fail(j, close == '}' ? "expected '}' or ','" : "expected ']' or ','");
            break;
        }
    } else if (c == '"') {
        v->type = JSON_STR;
        rc = parse_string(j, &v->str);
    } else if (c == 't' && j->end - j->p >= 4 && !memcmp(j->p, "true", 4)) { v->type = JSON_BOOL; v->num = 1; j->p += 4; }
    else if (c == 'f' && j->end - j->p >= 5 && !memcmp(j->p, "false", 5)) { v->type = JSON_BOOL; j->p += 5; }
    else if (c == 'n' && j->end - j->p >= 4 && !memcmp(j->p, "null", 4)) { v->type = JSON_NULL; j->p += 4; }
    else if (c == '-' || (c >= '0' && c <= '9')) {
        char tmp[64]; size_t n = 0;
        while (j->p + n < j->end && n < sizeof tmp - 1 && strchr("+-0123456789.eE", j->p[n])) { tmp[n] = j->p[n]; n++; }
        tmp[n] = 0;
        char *end;
        v->type = JSON_NUM;
        v->num = strtod(tmp, &end);
        v->integral = !strpbrk(tmp, ".eE");
        if (*end || n == 0) rc = fail(j, "bad number");
        /* 1e999 would be infinity, which no JSON writer can write back */
        else if (!isfinite(v->num)) rc = fail(j, "number out of range");
        j->p += n;
    } else rc = fail(j, "unexpected character");
    j->depth--;
    return rc;
}

int json_parse(const char *text, size_t len, json_t *root, err_t *err) {
    jp j = {text, text + len, text, err, 0, 0};
    if (parse_value(&j, root)) { json_free(root); memset(root, 0, sizeof *root); return -1; }
    skip_ws(&j);
    if (j.p != j.end) { json_free(root); memset(root, 0, sizeof *root); return fail(&j, "trailing data"); }
    return 0;
}

void json_free(json_t *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items); free(v->keys); free(v->str);
    memset(v, 0, sizeof *v);
}

const json_t *json_get(const json_t *o, const char *key) {
    if (!o || o->type != JSON_OBJ) return NULL;
    for (size_t i = 0; i < o->n; i++) if (!strcmp(o->keys[i], key)) return &o->items[i];
    return NULL;
}

const char *json_gets(const json_t *o, const char *key) {
    const json_t *v = json_get(o, key);
    return v && v->type == JSON_STR ? v->str : NULL;
}

int json_getnum(const json_t *o, const char *key, double *out) {
    const json_t *v = json_get(o, key);
    if (!v || v->type != JSON_NUM) return -1;
    *out = v->num;
    return 0;
}

void json_write(buf_t *b, const json_t *v) {
    switch (v->type) {
    case JSON_NULL: buf_puts(b, "null"); break;
    case JSON_BOOL: buf_puts(b, v->num ? "true" : "false"); break;
    case JSON_NUM:
        if (v->num == floor(v->num) && fabs(v->num) < 9007199254740992.0) buf_printf(b, "%.0f", v->num);
        else buf_printf(b, "%.17g", v->num);
        break;
    case JSON_STR: json_str(b, v->str); break;
    case JSON_ARR: case JSON_OBJ:
        buf_puts(b, v->type == JSON_ARR ? "[" : "{");
        for (size_t i = 0; i < v->n; i++) {
            if (i) buf_puts(b, ", ");
            if (v->type == JSON_OBJ) { json_str(b, v->keys[i]); buf_puts(b, ": "); }
            json_write(b, &v->items[i]);
        }
        buf_puts(b, v->type == JSON_ARR ? "]" : "}");
        break;
    }
}

void json_text(const json_t *v, char *out, size_t n) {
    if (!v || v->type == JSON_NULL) snprintf(out, n, "%s", "");
    else if (v->type == JSON_STR) snprintf(out, n, "%s", v->str);
    else if (v->type == JSON_NUM) snprintf(out, n, "%.10g", v->num);
    else {
        buf_t b = {0};
        json_write(&b, v);
        snprintf(out, n, "%s", b.s ? b.s : "");
        buf_free(&b);
    }
}

void json_fstr(FILE *f, const char *s) {
    buf_t b = {0};
    json_str(&b, s);
    if (b.s) fputs(b.s, f);
    buf_free(&b);
}
