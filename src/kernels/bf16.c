/* f32 ↔ bf16. Rounding is done on the bit pattern: adding 0x7fff plus the lowest kept bit
 * and truncating rounds to nearest with ties to even, carries into the exponent where the
 * mantissa overflows (so the largest finite values become inf, as IEEE rounding does), and
 * is exact for subnormals; only NaN needs a branch, or the carry could turn it into inf.
 * The vector paths use integer lanes for the same arithmetic, so they are bit-identical to
 * the scalar reference — unlike AVX512_BF16's vcvtneps2bf16, which flushes subnormals. */
#include <string.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#include "kernels/gemm.h"

void bf16_from_f32_ref(bf16_t *dst, const float *src, long n) {
    for (long i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], sizeof u);
        if ((u & 0x7fffffffu) > 0x7f800000u) dst[i] = (bf16_t)((u >> 16) | 0x0040u);
        else dst[i] = (bf16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}

#if defined(__AVX512F__)
/* 16 lanes: rounded high halves, still in 32-bit lanes. */
static inline __m512i round16(__m512 x) {
    const __m512i u = _mm512_castps_si512(x), hi = _mm512_srli_epi32(u, 16);
    const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_blend_epi32(nan, r, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
}
#elif defined(__AVX2__)
static inline __m256i round8(__m256 x) {
    const __m256i u = _mm256_castps_si256(x), hi = _mm256_srli_epi32(u, 16);
    const __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    return _mm256_blendv_epi8(r, _mm256_or_si256(hi, _mm256_set1_epi32(0x40)), nan);
}
#endif

void bf16_from_f32(bf16_t *dst, const float *src, long n) {
    long i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtepi32_epi16(round16(_mm512_loadu_ps(src + i))));
#elif defined(__AVX2__)
    for (; i + 16 <= n; i += 16) {
        // packus interleaves the 128-bit lanes of its two inputs; the permute restores order
        const __m256i p = _mm256_packus_epi32(round8(_mm256_loadu_ps(src + i)), round8(_mm256_loadu_ps(src + i + 8)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_permute4x64_epi64(p, 0xd8));
    }
#endif
    bf16_from_f32_ref(dst + i, src + i, n - i);
}

void bf16_round_f32(float *dst, const float *src, long n) {
    long i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(round16(_mm512_loadu_ps(src + i)), 16)));
#elif defined(__AVX2__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(round8(_mm256_loadu_ps(src + i)), 16)));
#endif
    for (; i < n; i++) dst[i] = bf16_to_f32_one(bf16_from_f32_one(src[i]));
}

void bf16_to_f32(float *dst, const bf16_t *src, long n) {
    long i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16) {
        const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
#elif defined(__AVX2__)
    for (; i + 8 <= n; i += 8) {
        const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
#endif
    for (; i < n; i++) dst[i] = bf16_to_f32_one(src[i]);
}
