/* A growable NUL-terminated byte buffer for building text (JSON, Markdown, SVG, headers).
 * Appends never fail loudly: on out of memory the buffer sets oom and ignores further text,
 * so a caller checks once at the end. */
#ifndef SEMAIM_BUF_H
#define SEMAIM_BUF_H
#include <stddef.h>

typedef struct buf { char *s; size_t len, cap; int oom; } buf_t;

int buf_reserve(buf_t *b, size_t extra);
void buf_add(buf_t *b, const void *s, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(buf_t *b);

/* Scratch that grows to the largest need seen and is then reused: makes the block *pp (a
 * pointer variable, NULL at first) hold at least need bytes, keeping its contents; *cap is its
 * size. 0, or -1 when out of memory (*pp and *cap unchanged). */
int mem_grow(void *pp, size_t *cap, size_t need);
#endif
