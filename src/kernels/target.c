/* Pixel target of SPEC §3: blur the normalised image, patchify (py, px, c), standardise per
 * patch. Scratch holds the blurred image and the per-patch mean/rstd (kept only because
 * patchnorm_forward saves them). */
#include "kernels/ops.h"

long pixel_target_scratch_floats(int B, int H, int W, int P) {
    const long L = (long)(H / P) * (W / P);
    return (long)B * 3 * H * W + 2 * (long)B * L;
}

void pixel_target(float *target, float *scratch, const float *img, const int *perm, int B, int H, int W, int P) {
    const long L = (long)(H / P) * (W / P), N = (long)B * L;
    float *blurred = scratch, *mean = scratch + (long)B * 3 * H * W, *rstd = mean + N;
    blur9_forward(blurred, img, B, 3, H, W);
    patchify(target, 0, blurred, perm, B, H, W, P, PATCH_PPC);
    patchnorm_forward(target, mean, rstd, target, N, 3 * P * P);   // in place is safe
}
