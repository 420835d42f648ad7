/* Image batch [B,3,H,W] to patch rows [B,L,3·P·P]; patches row-major over the (H/P)×(W/P) grid,
 * or in a prediction order (the training pass reads them permuted: patchifying in that order
 * is the gather, without a copy of its own). */
#include "kernels/ops.h"

void patchify(gemm_in_t *out, int bf16, const float *img, const int *perm, int B, int H, int W, int P, int order) {
    ERR_ASSERT(!bf16 || order == PATCH_CPP, "patchify: bf16 rows are for the patch embedding (PATCH_CPP)");
    const int GH = H / P, GW = W / P, L = GH * GW, E = 3 * P * P;
    const long ntask = (long)B * L;
    #pragma omp parallel for schedule(static)
    for (long t = 0; t < ntask; t++) {
        const int b = (int)(t / L), p = perm ? perm[t] : (int)(t % L), gy = p / GW, gx = p % GW;
        for (int c = 0; c < 3; c++)
            for (int py = 0; py < P; py++) {
                const float *src = img + (((long)b * 3 + c) * H + (long)gy * P + py) * W + (long)gx * P;
                if (bf16) {                 // (c, py, px) as PATCH_CPP, rounded
                    bf16_from_f32((bf16_t *)out + t * E + (c * P + py) * P, src, P);
                } else if (order == PATCH_CPP) {   // (c, py, px): a contiguous copy per pixel row
                    float *dst = (float *)out + t * E + (c * P + py) * P;
                    for (int px = 0; px < P; px++) dst[px] = src[px];
                } else {                    // (py, px, c): channels interleaved
                    float *dst = (float *)out + t * E + py * P * 3 + c;
                    for (int px = 0; px < P; px++) dst[px * 3] = src[px];
                }
            }
    }
}
