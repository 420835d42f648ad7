/* The workspace of a pass (kernels/ops.h): per-thread slots of scratch. */
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "kernels/ops.h"

static size_t round64(size_t x) { return (x + 63) / 64 * 64; }

size_t workspace_bytes(size_t slot0, size_t slotn, int nslots) {
    slot0 = round64(slot0);
    return (slot0 ? slot0 : 64) + (size_t)(nslots > 1 ? nslots - 1 : 0) * round64(slotn);
}

void workspace_init(workspace_t *w, void *mem, size_t slot0, size_t slotn, int nslots) {
    memset(w, 0, sizeof *w);
    w->base = mem;
    w->slot0 = round64(slot0) ? round64(slot0) : 64;
    w->slotn = round64(slotn);
    w->nslots = nslots;
}

void *workspace_alloc(workspace_t *w, size_t slot0, size_t slotn) {
    const int nt = omp_get_max_threads();
    void *m = aligned_alloc(64, workspace_bytes(slot0, slotn, nt));
    if (m) workspace_init(w, m, slot0, slotn, nt);
    return m;
}
