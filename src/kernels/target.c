/* Pixel target of SPEC §3: blur the normalised image (unless K = 0), patchify (py, px, c),
 * standardise per patch (unless norm_pix is off). Scratch holds the blurred image and the
 * per-patch mean/rstd (kept only because patchnorm_forward saves them). */
#include "kernels/ops.h"

long pixel_target_scratch_floats(int B, int H, int W, int P) {
    const long L = (long)(H / P) * (W / P);
    return (long)B * 3 * H * W + 2 * (long)B * L;
}

void pixel_target(float *target, float *scratch, const float *img, const int *perm, int B, int H, int W, int P,
                  int blur_k, double blur_sigma, int norm_pix) {
    const long L = (long)(H / P) * (W / P), N = (long)B * L;
    float *blurred = scratch, *mean = scratch + (long)B * 3 * H * W, *rstd = mean + N;
    if (blur_k > 0) blur_forward(blurred, img, B, 3, H, W, blur_k, blur_sigma);
    patchify(target, 0, blur_k > 0 ? blurred : img, perm, B, H, W, P, PATCH_PPC);
    if (norm_pix) patchnorm_forward(target, mean, rstd, target, N, 3 * P * P);   // in place is safe
}
