/* Image augmentation of SPEC §1 (RandomResizedCrop, horizontal flip, ImageNet normalisation)
 * and the evaluation transform (resize shorter side, centre crop), on uint8 HWC RGB images.
 * Outputs are float CHW [3,S,S], normalised: (pixel/255 − mean[c]) / std[c].
 *
 * Randomness: a sample's crop and flip are a pure function of one rng key; the loader uses
 * rng_key(seed, AUG_RNG_TAG, epoch, global sample id, 0), so an image gets the same
 * augmentation whichever rank or thread processes it, for any world size.
 *
 * Resampling (bicubic, separable, crop borders replicated/renormalised as below):
 *   INTERP_PIL   (default) what the authors' pipeline does (torchvision on PIL images):
 *                Keys cubic a = −0.5, and when downscaling the kernel is stretched by the
 *                scale factor (antialiasing); taps outside the crop are dropped and the
 *                weights renormalised. Equals torch.nn.functional.interpolate(mode='bicubic',
 *                align_corners=False, antialias=True) in float, i.e. PIL without its uint8
 *                rounding between the two passes.
 *   INTERP_TORCH torch.nn.functional.interpolate(mode='bicubic', align_corners=False) without
 *                antialias: a = −0.75, 4 taps, source indices clamped to the crop.
 * Both resample only inside the crop box (as torchvision's crop-then-resize does). */
#ifndef SEMAIM_AUGMENT_H
#define SEMAIM_AUGMENT_H
#include <stdint.h>

enum { INTERP_PIL = 0, INTERP_TORCH = 1 };
#define AUG_RNG_TAG 0x6175676d656e74ULL   /* "augment": the rng purpose id of crop/flip draws */

extern const float aug_mean[3], aug_std[3];

/* One sample's random choices: crop box (x0,y0,w,h) inside the H×W source, and flip. */
typedef struct { int x0, y0, w, h, flip; } aug_params;

/* torchvision RandomResizedCrop.get_params with scale [0.2,1], ratio [3/4,4/3]: up to 10
 * attempts of area U(0.2,1)·H·W and log-uniform ratio, w = round(√(area·ratio)),
 * h = round(√(area/ratio)) (round half to even, like Python), accepted if it fits, offsets
 * uniform; else a central crop with the ratio clamped. Then flip with p = 0.5. */
void augment_sample(aug_params *p, int H, int W, uint64_t key);

/* Resample the box (y0,x0,h,w) of img (uint8 H×W×3) to a virtual OH×OW image and write its
 * window rows [oy0,oy0+oh), cols [ox0,ox0+ow) to out as float CHW [3,oh,ow], values in
 * 0..255 (not normalised, not clamped: bicubic overshoots). Returns 0, or −1 if out of memory
 * or the box / window is outside the image / output. */
int resize_window(float *out, int oh, int ow, const uint8_t *img, int H, int W,
                  int y0, int x0, int h, int w, int OH, int OW, int oy0, int ox0, int interp);

/* Normalise a CHW [3,S,S] image of 0..255 values in place, mirroring columns if flip. */
void augment_normalize(float *chw, int S, int flip);

/* Crop p's box, resize to S×S, flip if p->flip, normalise. Returns 0 or −1 (as resize_window). */
int augment_apply(float *out, const uint8_t *img, int H, int W, int S, const aug_params *p, int interp);
/* augment_sample + augment_apply. */
int augment_train(float *out, const uint8_t *img, int H, int W, int S, uint64_t key, int interp);
/* Evaluation: torchvision Resize(R) (shorter side → R, longer → floor(R·long/short)) then
 * CenterCrop(S) (offset round((len − S)/2)), normalise; no randomness. R ≥ S. When R equals
 * the shorter side no resampling happens (the crop copies pixels exactly). */
int augment_eval(float *out, const uint8_t *img, int H, int W, int S, int R, int interp);
#endif
