#include <math.h>
#include "semaim/rng.h"

double rng_normal(rng_t *r) {
    double u1 = rng_nextd(r), u2 = rng_nextd(r);
    if (u1 < 1e-300) u1 = 1e-300;   /* log(0) guard; probability 2^-53 */
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void rng_shuffle_i64(rng_t *r, int64_t *idx, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_below(r, (uint64_t)i + 1);
        int64_t t = idx[i]; idx[i] = idx[j]; idx[j] = t;
    }
}
