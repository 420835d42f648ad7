/* Image batch [B,3,H,W] to patch rows [B,L,3·P·P]; patches row-major over the (H/P)×(W/P) grid. */
#include "kernels/ops.h"

void patchify(float *out, const float *img, int B, int H, int W, int P, int order) {
    const int GH = H / P, GW = W / P, L = GH * GW, E = 3 * P * P;
    const long ntask = (long)B * L;
    #pragma omp parallel for schedule(static)
    for (long t = 0; t < ntask; t++) {
        const int b = (int)(t / L), p = (int)(t % L), gy = p / GW, gx = p % GW;
        float *o = out + t * E;
        for (int c = 0; c < 3; c++)
            for (int py = 0; py < P; py++) {
                const float *src = img + (((long)b * 3 + c) * H + (long)gy * P + py) * W + (long)gx * P;
                if (order == PATCH_CPP) {   // (c, py, px): a contiguous copy per pixel row
                    float *dst = o + (c * P + py) * P;
                    for (int px = 0; px < P; px++) dst[px] = src[px];
                } else {                    // (py, px, c): channels interleaved
                    float *dst = o + py * P * 3 + c;
                    for (int px = 0; px < P; px++) dst[px * 3] = src[px];
                }
            }
    }
}
