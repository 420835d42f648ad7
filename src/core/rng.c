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

/* Marsaglia & Tsang (2000), a >= 1. */
static double gamma_mt(rng_t *r, double a) {
    const double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do { x = rng_normal(r); v = 1.0 + c * x; } while (v <= 0);
        v = v * v * v;
        double u = rng_nextd(r);
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

static double gamma_draw(rng_t *r, double a) {
    if (a >= 1) return gamma_mt(r, a);
    double u = rng_nextd(r);
    return gamma_mt(r, a + 1) * pow(u, 1.0 / a);
}

double rng_beta(rng_t *r, double a, double b) {
    double x = gamma_draw(r, a), y = gamma_draw(r, b);
    return x + y > 0 ? x / (x + y) : 0.5;   /* both underflow only for tiny alphas */
}
