/* The converter's own utilities: its one-line error printer, the fingerprint hash and the
 * shuffle's random numbers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prep.h"
#include "semaim/rng.h"

const char *prep_prog = "semaim-prep";

void prep_err(const char *fmt, ...) {
    /* One line per problem, whole lines only: ranks and threads share stderr. */
    char line[2048];
    int n = snprintf(line, sizeof line, "%s: ", prep_prog);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    if (len + 1 < sizeof line) { line[len] = '\n'; line[len + 1] = 0; }
    fputs(line, stderr);
    fflush(stderr);
}

/* ---------------------------------------------------------------- hashing, random */
uint64_t prep_fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001B3ull; }
    return h;
}

uint64_t prep_fnv_str(uint64_t h, const char *s) { return prep_fnv(h, s, strlen(s) + 1); }

uint64_t prep_fnv_int(uint64_t h, int64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)v >> (8 * i));
    return prep_fnv(h, b, 8);
}

uint64_t prep_splitmix(uint64_t *s) {
    /* splitmix64: the state walks by the golden-ratio step, the output is rng.h's finaliser */
    uint64_t z = mix64(*s);
    *s += 0x9E3779B97F4A7C15ull;
    return z;
}

uint64_t prep_bounded(uint64_t *s, uint64_t n) {
    /* Lemire's multiply-shift with rejection: unbiased, and easy to reproduce elsewhere. */
    unsigned __int128 m = (unsigned __int128)prep_splitmix(s) * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = (0 - n) % n;
        while (l < t) { m = (unsigned __int128)prep_splitmix(s) * n; l = (uint64_t)m; }
    }
    return (uint64_t)(m >> 64);
}

int prep_parse_long(const char *s, long lo, long hi, long *v) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}
