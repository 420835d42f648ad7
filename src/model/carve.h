/* One allocation carved into named buffers (internal to the model room): the activation arenas
 * of the model (acts.c) and of the teacher (teacher.c). A fill function takes its buffers with
 * carve_take in a fixed order; carve_alloc runs it twice, to size (base NULL: every buffer NULL)
 * and over the memory, so the size and the layout cannot disagree. */
#ifndef SEMAIM_CARVE_H
#define SEMAIM_CARVE_H
#include <stddef.h>

typedef struct { char *base; size_t off; } carve_t;

/* base + off (NULL while sizing), then off advances by n elements of es bytes, 64-byte aligned. */
static inline void *carve_take(carve_t *c, size_t n, size_t es) {
    void *p = c->base ? c->base + c->off : NULL;
    c->off += (n * es + 63) / 64 * 64;
    return p;
}

/* The block for fill(ctx, ·), zeroed — the GEMMs run at an arena's capacity, so the rows past a
 * partial batch's are read: zeros, not whatever the allocator left there (ops.h, linear) — and
 * carved. NULL when out of memory; *bytes gets the size either way. */
void *carve_alloc(void (*fill)(void *ctx, carve_t *c), void *ctx, size_t *bytes);
#endif
