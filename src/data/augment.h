/* Image augmentation of SPEC §1 (RandomResizedCrop, horizontal flip, ImageNet normalisation),
 * the evaluation transform (resize shorter side, centre crop) and the fine-tuning chain of
 * SPEC §5 (with data/randaug.h and data/erasing.h; Mixup is per batch, data/mixup.h), on
 * uint8 HWC RGB images.
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
#include <stddef.h>
#include <stdint.h>
#include "data/erasing.h"
#include "data/randaug.h"

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
/* The same with area scale [scale_min, 1] (timm's fine-tuning default: 0.08). */
void augment_sample_scale(aug_params *p, int H, int W, double scale_min, uint64_t key);

/* Resample the box (y0,x0,h,w) of img (uint8 H×W×3) to a virtual OH×OW image and write its
 * window rows [oy0,oy0+oh), cols [ox0,ox0+ow) to out as float CHW [3,oh,ow], values in
 * 0..255 (not normalised, not clamped: bicubic overshoots). Returns 0, or −1 if out of memory
 * or the box / window is outside the image / output. */
int resize_window(float *out, int oh, int ow, const uint8_t *img, int H, int W,
                  int y0, int x0, int h, int w, int OH, int OW, int oy0, int ox0, int interp);
/* The same in caller memory (no allocation): scratch of augment_scratch_bytes(H, W, S, interp)
 * bytes serves any box inside H×W resized to an S×S window. Returns 0 or −1 (bad box). */
int resize_window_ws(float *out, int oh, int ow, const uint8_t *img, int H, int W, int y0, int x0, int h,
                     int w, int OH, int OW, int oy0, int ox0, int interp, void *scratch);
size_t augment_scratch_bytes(int H, int W, int S, int interp);
/* A box in pixels of a decoded image, not necessarily whole: a JPEG decoded with DCT scaling
 * at m/8 turns the box (x0, y0, w, h) of the stored image into (x0·m/8, y0·m/8, w·m/8, h·m/8)
 * of the decoded one. The resample reads only the pixels whose centres lie in the box (for
 * whole numbers exactly the box's pixels, as torchvision's crop-then-resize): */
typedef struct { double x0, y0, w, h; } aug_box;
/* the columns [c0, c1) and rows [r0, r1) of an H×W image those are (what a window decode must
 * provide; never empty). */
void aug_box_pixels(const aug_box *b, int H, int W, int *c0, int *c1, int *r0, int *r1);
/* resize_window_ws of a box b of an H×W image of which img holds a window: img points at
 * pixel (row0, col0), rows are `stride` bytes apart, and the window covers aug_box_pixels(b).
 * Scratch: augment_scratch_bytes(H, W, S, interp) with H, W at least the image's. A whole-
 * number box over the whole image gives exactly resize_window_ws. 0, or −1 for a box or
 * window outside the image / output. */
int resize_box_ws(float *out, int oh, int ow, const uint8_t *img, size_t stride, int row0, int col0, int H, int W,
                  const aug_box *b, int OH, int OW, int oy0, int ox0, int interp, void *scratch);

/* Normalise a CHW [3,S,S] image of 0..255 values in place, mirroring columns if flip. */
void augment_normalize(float *chw, int S, int flip);

/* Crop p's box, resize to S×S, flip if p->flip, normalise. Returns 0 or −1 (as resize_window). */
int augment_apply(float *out, const uint8_t *img, int H, int W, int S, const aug_params *p, int interp);
/* The same in caller memory: scratch of augment_scratch_bytes(H, W, S, interp) bytes. */
int augment_apply_ws(float *out, const uint8_t *img, int H, int W, int S, const aug_params *p, int interp, void *scratch);
/* augment_sample + augment_apply. */
int augment_train(float *out, const uint8_t *img, int H, int W, int S, uint64_t key, int interp);
/* Evaluation: torchvision Resize(R) (shorter side → R, longer → floor(R·long/short)) then
 * CenterCrop(S) (offset round((len − S)/2)), normalise; no randomness. R ≥ S. When R equals
 * the shorter side no resampling happens (the crop copies pixels exactly). */
int augment_eval(float *out, const uint8_t *img, int H, int W, int S, int R, int interp);
/* The same in caller memory (augment_scratch_bytes(H, W, S, interp) bytes). */
int augment_eval_ws(float *out, const uint8_t *img, int H, int W, int S, int R, int interp, void *scratch);
/* Its geometry: the resized size OH×OW and the offsets of the centre S×S window in it. */
void augment_eval_geometry(int H, int W, int S, int R, int *OH, int *OW, int *oy0, int *ox0);
/* The R of augment_eval for crop ratio crop_pct (the recipe: AUG_EVAL_CROP_PCT, 256 for 224):
 * ⌊S/crop_pct⌋ in double, as the authors' int(S / crop_pct), timm's floor and data_prep's
 * ⌊S·8/7⌋ (the loader today rounds instead: 37 rather than 36 for S = 32). Shards already
 * S×S (data_prep's val split, resized and centre-cropped when written) pass through: R = S.
 * Other stored sizes are resized from what is stored: 256² shards for S = 224 give R = 256 =
 * their side, an exact centre crop; larger ones are resampled down to R (a second
 * resampling after data_prep's), smaller ones up (semaim-eval refuses shards smaller than
 * the model's input). −1 for S < 1 or crop_pct outside (0, 1]. The authors use crop_pct
 * 224/256 for S <= 224 and 1 above. */
#define AUG_EVAL_CROP_PCT 0.875
int augment_eval_resize(int S, int H, int W, double crop_pct);

/* ---- The fine-tuning chain (timm's create_transform(is_training=True) as MAE/SemAIM call it):
 * RandomResizedCrop (scale [scale_min, 1], ratio 3/4–4/3, bicubic) and flip → uint8 (PIL's
 * images are uint8: the float resize is rounded and clamped) → RandAugment → ToTensor +
 * Normalize → random erasing. */

/* The crop and flip of p as a uint8 HWC S×S image (what PIL would hold after
 * RandomResizedCrop + RandomHorizontalFlip). tmp: 3·S·S floats; scratch as resize_window_ws.
 * Returns 0 or −1 (bad box). */
int augment_crop_u8(uint8_t *out, float *tmp, const uint8_t *img, int H, int W, int S, const aug_params *p,
                    int interp, void *scratch);
/* uint8 HWC S×S → normalised float CHW [3,S,S] (ToTensor + Normalize). */
void augment_u8_to_chw(float *out, const uint8_t *hwc, int S);

typedef struct aug_recipe {
    double scale_min;      /* RandomResizedCrop's lower area scale (timm: 0.08) */
    int interp;            /* crop resampling: INTERP_PIL (timm's 'bicubic' on PIL images) */
    randaug_config ra;     /* ra.num_ops = 0: no RandAugment */
    erase_config re;       /* re.prob = 0: no erasing */
} aug_recipe;
/* The paper's recipe: scale 0.08, bicubic, rand-m9-mstd0.5-inc1, erasing 0.25 pixel. */
aug_recipe augment_recipe_finetune(void);
/* Checks every part. Returns NULL or err (one line). */
const char *augment_recipe_check(const aug_recipe *r, char *err, size_t errlen);
/* Bytes of work memory for augment_finetune of H×W sources to S (allocate once per worker). */
size_t augment_finetune_work_bytes(int H, int W, int S, int interp);
/* One training image: out [3,S,S] normalised. Keys per stage from (seed, epoch, global
 * sample id): crop/flip rng_key(seed, AUG_RNG_TAG, e, id, 0) (the pretraining key),
 * RandAugment RANDAUG_RNG_TAG, erasing ERASE_RNG_TAG, so an image's augmentation is the same
 * on any rank, thread or world size, and a resumed run repeats it. Returns 0 or −1. */
int augment_finetune(float *out, const uint8_t *img, int H, int W, int S, const aug_recipe *r, uint64_t seed,
                     int epoch, int64_t id, void *work);
/* Its second half, for a crop resampled elsewhere (the loader's JPEG decoder): out holds the
 * crop's float CHW [3,S,S] in 0..255, neither flipped nor normalised (resize_window_ws's
 * output); it becomes the normalised, augmented image of sample id. work:
 * augment_finish_work_bytes(S). augment_finetune = sample + resample + this. */
size_t augment_finish_work_bytes(int S);
void augment_finetune_finish(float *out, int S, int flip, const aug_recipe *r, uint64_t seed, int epoch, int64_t id,
                             void *work);
#endif
