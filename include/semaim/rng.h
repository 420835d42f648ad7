/* Counter-based random numbers: every draw is a pure function of (seed, stream ids, counter),
 * so results do not depend on thread count, rank count or call order, and a checkpoint only
 * needs the counters. mix64 is the splitmix64 finaliser. */
#ifndef SEMAIM_RNG_H
#define SEMAIM_RNG_H
#include <stdint.h>

static inline uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
/* A key for one stream: hash of the seed and up to four ids (e.g. purpose, epoch, rank, sample). */
static inline uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    return mix64(mix64(mix64(mix64(mix64(seed) ^ a) ^ b) ^ c) ^ d);
}
static inline uint64_t rng_u64(uint64_t key, uint64_t counter) { return mix64(key ^ mix64(counter)); }
/* Uniform in [0,1) with 24 bits (float) or 53 bits (double). */
static inline float rng_uniform(uint64_t key, uint64_t counter) {
    return (float)(rng_u64(key, counter) >> 40) * (1.0f / 16777216.0f);
}
static inline double rng_uniform_d(uint64_t key, uint64_t counter) {
    return (double)(rng_u64(key, counter) >> 11) * (1.0 / 9007199254740992.0);
}
/* A sequential stream over the counter, for code that draws many values in order. */
typedef struct { uint64_t key, ctr; } rng_t;
static inline rng_t rng_make(uint64_t key) { rng_t r = {key, 0}; return r; }
static inline uint64_t rng_next(rng_t *r) { return rng_u64(r->key, r->ctr++); }
static inline float rng_nextf(rng_t *r) { return rng_uniform(r->key, r->ctr++); }
static inline double rng_nextd(rng_t *r) { return rng_uniform_d(r->key, r->ctr++); }
/* Uniform integer in [0, n) (n > 0), Lemire's multiply-shift; bias < 2^-32 for n < 2^32. */
static inline uint64_t rng_below(rng_t *r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}
/* Standard normal by Box–Muller (two uniforms per value; the second is discarded for simplicity). */
double rng_normal(rng_t *r);
/* Beta(a, b) from two Gamma draws (Marsaglia–Tsang; a < 1 boosted by U^(1/a)), a, b > 0:
 * Mixup's λ. The number of draws it takes varies (rejection), so give it its own counters. */
double rng_beta(rng_t *r, double a, double b);
/* Fisher–Yates shuffle of idx[0..n). */
void rng_shuffle_i64(rng_t *r, int64_t *idx, int64_t n);
#endif
