/* JSON for everything the project writes or reads: run settings, metrics and eval lines,
 * manifests and shard records, benchmark records, safetensors headers. One escaping writer
 * and one strict recursive-descent reader into a small tree. */
#ifndef SEMAIM_JSON_H
#define SEMAIM_JSON_H
#include <stddef.h>
#include <stdio.h>
#include "core/buf.h"
#include "semaim/err.h"

enum { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };
typedef struct json {
    int type;
    double num;
    int integral;            /* a number written without fraction or exponent */
    char *str;
    struct json *items; char **keys;   /* arrays and objects (keys in file order, repeats kept) */
    size_t n, cap;
} json_t;

/* s as a JSON string literal. Bytes that are not UTF-8 (file names are bytes) are written as
 * the code point of the same value (\u00XX), so the output is always valid JSON; the reader
 * turns \u0080..\u00ff back into those bytes. */
void json_str(buf_t *b, const char *s);
/* The same literal written to a stream. */
void json_fstr(FILE *f, const char *s);
int json_utf8_valid(const char *s);
/* Bytes of the valid UTF-8 sequence at s (1..4), or 0 if none starts there. */
int json_utf8_len(const unsigned char *s);
/* The tree as JSON text (numbers that are integers without a fraction). */
void json_write(buf_t *b, const json_t *v);
/* A value as a command line or a report table spells it, into out[n]: a string without
 * quotes, a number as %.10g, absent (v NULL) or null as "", anything else as its JSON text. */
void json_text(const json_t *v, char *out, size_t n);

/* Parses text[0..len) (one value, nothing after it but white space). On failure err says
 * what was expected at which byte (kind ERR_INPUT) and *root is empty. */
int json_parse(const char *text, size_t len, json_t *root, err_t *err);
void json_free(json_t *v);
const json_t *json_get(const json_t *o, const char *key);   /* first value under key, or NULL */
const char *json_gets(const json_t *o, const char *key);    /* ... if it is a string */
int json_getnum(const json_t *o, const char *key, double *out);   /* 0, or -1 if absent or no number */
#endif
