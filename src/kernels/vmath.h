/* Elementary functions in plain float arithmetic, so loops that call them vectorise (glibc's
 * expf/erff only do under -ffast-math, which the build does not use). */
#ifndef SEMAIM_VMATH_H
#define SEMAIM_VMATH_H
#include <stdint.h>
#include <string.h>

/* e^x for x <= 0 (x > 0 is outside the contract), relative error < 2e-7.
 * x = n·ln2 + r with |r| <= ln2/2; degree-7 Taylor for e^r (truncation < 1e-8); 2^n goes into
 * the exponent bits. Clamping at −87 keeps 2^n a normal float: e^−87 ≈ 1.6e-38, which every
 * caller (softmax, Gaussian tails) treats as zero. */
static inline float vexp_nonpos(float x) {
    x = x < -87.0f ? -87.0f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;        // round to nearest
    float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;  // ln2 = hi + lo
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120
              + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    int32_t bits = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}
#endif
