/* carve_alloc (model/carve.h). */
#include <stdlib.h>
#include <string.h>
#include "model/carve.h"

void *carve_alloc(void (*fill)(void *ctx, carve_t *c), void *ctx, size_t *bytes) {
    carve_t c = {NULL, 0};
    fill(ctx, &c);
    *bytes = c.off;
    void *block = aligned_alloc(64, c.off > 0 ? c.off : 64);
    if (!block) return NULL;
    memset(block, 0, c.off);
    c.base = block;
    c.off = 0;
    fill(ctx, &c);
    return block;
}
