/* Prediction orders (semaim/orders.h). Scores are computed in double so that the same inputs
 * give the same order on every machine and in the PyTorch reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "semaim/orders.h"
#include "semaim/rng.h"

#define ORDER_RNG_TAG 0x6f72646572ULL   /* "order": noise of the prediction orders */

static const char *names[] = {"semantic", "raster", "stochastic", "similarity", "center"};

int order_parse(const char *s, order_t *o) {
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) { *o = (order_t)i; return 0; }
    if (strcmp(s, "center-out") == 0) { *o = ORDER_CENTER; return 0; }
    return -1;
}
const char *order_name(order_t o) { return (unsigned)o < 5 ? names[o] : "?"; }

typedef struct { double s; int p; } scored_t;
static int cmp_scored(const void *x, const void *y) {
    const scored_t *a = x, *b = y;
    if (a->s != b->s) return a->s < b->s ? -1 : 1;
    return a->p - b->p;   /* ties (never with noise) fall back to patch index */
}

long order_scratch_bytes(int B, int L) { return (long)B * L * (long)sizeof(scored_t); }

void order_from_scores(order_t o, int G, const float *sim, const float *noise, int B, int *ranks, int *center_out,
                       void *scratch) {
    int L = G * G;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        scored_t *sc = (scored_t *)scratch + (long)b * L;
        const float *u = noise ? noise + (long)b * L : NULL;
        const float *a = sim ? sim + (long)b * L : NULL;
        double rc = 0, cc = 0;
        int center = -1;
        if (o == ORDER_SEMANTIC) {
            center = 0;
            for (int p = 1; p < L; p++) if (a[p] > a[center]) center = p;
            rc = center / G; cc = center % G;
        } else if (o == ORDER_CENTER) {
            rc = cc = (G - 1) / 2.0;
        }
        for (int p = 0; p < L; p++) {
            double r = p / G, c = p % G, s;
            switch (o) {
            case ORDER_RASTER: s = p; break;
            case ORDER_STOCHASTIC: s = u[p]; break;
            case ORDER_SIMILARITY: s = 1.0 - (double)a[p]; break;
            default: s = sqrt((r - rc) * (r - rc) + (c - cc) * (c - cc)) + 1e-3 * (double)u[p]; break;
            }
            sc[p].s = s; sc[p].p = p;
        }
        qsort(sc, L, sizeof *sc, cmp_scored);
        for (int k = 0; k < L; k++) ranks[(long)b * L + sc[k].p] = k;
        if (center_out) center_out[b] = center;
    }
}

void order_noise(float *noise, uint64_t seed, int epoch, const int64_t *ids, int B, int L) {
    for (int b = 0; b < B; b++) {
        uint64_t key = rng_key(seed, ORDER_RNG_TAG, (uint64_t)epoch, (uint64_t)ids[b], 0);
        for (int p = 0; p < L; p++) noise[(long)b * L + p] = rng_uniform(key, (uint64_t)p);
    }
}
