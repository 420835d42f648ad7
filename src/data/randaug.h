/* RandAugment as timm's rand_augment_transform (timm/data/auto_augment.py), the fine-tuning
 * recipe's `rand-m9-mstd0.5-inc1` (SPEC §5; MAE/BEiT/SemAIM main_finetune through timm's
 * create_transform), on uint8 HWC RGB images in place. The loader's workers (with a recipe,
 * semaim-finetune) call randaug_image() on the cropped S×S uint8 image before normalising it:
 * augment_finetune() / augment_finetune_finish() in data/augment.h do the chain.
 *
 * Sampling, per image (timm's RandAugment.__call__ and AugmentOp.__call__):
 *   n ops drawn uniformly WITH replacement from the 15-op set (timm's np.random.choice with
 *   no weights); each is applied with probability p (skipped when u > p); its magnitude is
 *   m + N(0, mstd²) (uniform in [0, m] when mstd > 100, as timm), clipped to [0, mmax]; the
 *   ops with a signed argument flip its sign with probability 0.5 (timm's _randomly_negate).
 *   Geometric ops use timm's fill img_mean = round(255·ImageNet mean) = (124, 116, 104) and
 *   the interpolation create_transform passes: the recipe's callers (MAE, SemAIM datasets.py)
 *   give interpolation='bicubic', so RA_BICUBIC; RA_RANDOM is timm's default when no
 *   interpolation is given (bilinear or bicubic with probability 1/2 per op).
 *   The draws are a pure function of the key: rng_key(seed, RANDAUG_RNG_TAG, epoch, sample
 *   id, 0) makes an image's ops independent of rank, thread and world size. Layer l draws
 *   from counters [16·l, 16·l + 16), so the count of a layer's draws never shifts another's.
 *
 * Magnitude → argument (level = magnitude / 10, timm's _LEVEL_DENOM):
 *   Rotate         ±30·level degrees            ShearX/Y   ±0.3·level
 *   TranslateXRel/YRel  ±0.45·level × width/height pixels
 *   inc1 set: PosterizeIncreasing bits 4 − ⌊4·level⌋; SolarizeIncreasing threshold
 *     256 − ⌊256·level⌋; Color/Contrast/Brightness/SharpnessIncreasing factor
 *     max(0.1, 1 ± 0.9·level)
 *   inc0 set: Posterize bits ⌊4·level⌋; Solarize threshold ⌊256·level⌋; Color/Contrast/
 *     Brightness/Sharpness factor 1.8·level + 0.1 (no sign)
 *   SolarizeAdd    add ⌊110·level⌋ to values < 128 (capped at 255); AutoContrast, Equalize,
 *   Invert take no argument.
 *
 * The ops are PIL's (timm calls PIL; torchvision's functional ops on PIL images call the same
 * PIL code), written from PIL's definitions and checked pixel-exact against torchvision 0.14 /
 * Pillow 9.4 by tests/t_randaug_torch.sh:
 *   geometry      PIL Image.transform(AFFINE) / Image.rotate (expand=False, centre (W/2, H/2),
 *                 matrix entries rounded to 15 decimals as PIL does): output pixel centre
 *                 (x+½, y+½) maps to source (a0·x'+a1·y'+a2, a3·x'+a4·y'+a5); outside [0,W)×[0,H)
 *                 → fill; else PIL's transform filters: bilinear, or PIL's transform bicubic
 *                 (cubic convolution with a = −1, NOT the a = −0.5 of PIL's resize), edge
 *                 pixels replicated, result truncated (not rounded) to uint8 after clamping.
 *   enhance       PIL ImageEnhance: blend(degenerate, image, f) in float, truncated, clamped
 *                 when f ∉ [0,1]; f = 0 / 1 copy degenerate / image. Degenerates: Color =
 *                 luma L = (19595 R + 38470 G + 7471 B + 2¹⁵) >> 16; Contrast = the constant
 *                 ⌊mean(L) + 0.5⌋; Brightness = 0; Sharpness = PIL's SMOOTH 3×3 filter
 *                 (1 1 1 / 1 5 1 / 1 1 1)/13 rounded, border pixels kept.
 *   histogram     AutoContrast (per channel lo..hi → 0..255 by ⌊(v−lo)·255/(hi−lo)⌋ in double),
 *                 Equalize (PIL's per-channel LUT: step = (N − count of the top value) / 255).
 *   point         Invert 255 − v; Posterize v & ~(2^(8−bits) − 1) (bits ≤ 0 → 0, ≥ 8 → v);
 *                 Solarize v ≥ t → 255 − v; SolarizeAdd.
 *
 * Spec strings (randaug_parse): timm's syntax `rand-<section>-…`, sections m<int> (magnitude,
 * default 10), n<int> (ops per image, default 2), mstd<float> (default 0), mmax<int>
 * (default 10), inc<0|1> (default 0). Stricter than timm on purpose: a section without a
 * value or with an unknown key is an error (timm skips the first, asserts on the second),
 * inc takes only 0 or 1 (timm's bool("0") is True), and w<int> (weighted op choice) is
 * refused as not implemented. */
#ifndef SEMAIM_RANDAUG_H
#define SEMAIM_RANDAUG_H
#include <stddef.h>
#include <stdint.h>

#define RANDAUG_RNG_TAG 0x72616e6461756755ULL   /* "randaugU": rng purpose id of op draws */
#define RANDAUG_MAX_OPS 16

/* timm's op names; the order of each set is timm's _RAND_TRANSFORMS / _RAND_INCREASING_TRANSFORMS
 * list, so op index k of a set is what timm's np.random.choice index k picks. */
enum {
    RA_AUTOCONTRAST, RA_EQUALIZE, RA_INVERT, RA_ROTATE, RA_POSTERIZE, RA_SOLARIZE, RA_SOLARIZE_ADD,
    RA_COLOR, RA_CONTRAST, RA_BRIGHTNESS, RA_SHARPNESS, RA_SHEAR_X, RA_SHEAR_Y, RA_TRANSLATE_X_REL,
    RA_TRANSLATE_Y_REL,
    RA_POSTERIZE_INC, RA_SOLARIZE_INC, RA_COLOR_INC, RA_CONTRAST_INC, RA_BRIGHTNESS_INC, RA_SHARPNESS_INC,
    RA_NUM_OPS
};
#define RA_SET_SIZE 15
enum { RA_BILINEAR = 0, RA_BICUBIC = 1, RA_RANDOM = 2 };

typedef struct {
    int num_ops;            /* n: ops per image (0 = RandAugment off) */
    double magnitude;       /* m */
    double magnitude_std;   /* mstd; > 100 → uniform in [0, m] */
    double magnitude_max;   /* mmax: upper clip of the noisy magnitude */
    double prob;            /* probability of applying each drawn op (timm: 0.5) */
    int increasing;         /* 1: the inc1 op set */
    int interp;             /* RA_BILINEAR, RA_BICUBIC or RA_RANDOM */
    uint8_t fill[3];        /* colour of pixels mapped from outside the image */
} randaug_config;

/* One drawn op of one image: what it is, whether it runs, and its argument. */
typedef struct {
    int op;          /* RA_* */
    int apply;       /* 0: skipped (the magnitude etc. are still drawn) */
    int interp;      /* RA_BILINEAR / RA_BICUBIC, for the geometric ops */
    double magnitude;  /* after noise and clipping */
    int negate;      /* the sign draw (used by signed ops only) */
    double arg;      /* the op's argument (see randaug_arg) */
} ra_layer;
typedef struct { int n; ra_layer layer[RANDAUG_MAX_OPS]; } ra_plan;

/* The recipe: rand-m9-mstd0.5-inc1, p 0.5, bicubic, fill (124,116,104). */
randaug_config randaug_recipe(void);
/* Parses a timm spec ("rand-m9-mstd0.5-inc1") into c (starting from timm's defaults m10 n2
 * mstd0 mmax10 inc0, p 0.5, bicubic, recipe fill). "none" or "" turns RandAugment off.
 * Returns NULL, or err holding one line naming the bad section. */
const char *randaug_parse(randaug_config *c, const char *spec, char *err, size_t errlen);
/* Checks a config filled by hand. Returns NULL or err (one line). */
const char *randaug_check(const randaug_config *c, char *err, size_t errlen);

/* timm's name of op (e.g. "SolarizeIncreasing"), and the op of a name (−1 if unknown). */
const char *randaug_op_name(int op);
int randaug_op_from_name(const char *name);
/* The op at index k (0..14) of the inc0 or inc1 set. */
int randaug_set_op(int increasing, int k);
/* The argument of op at a (clipped) magnitude and sign draw, per the table above: degrees,
 * shear factor, translation in pixels of a W×H image, posterize bits, solarize threshold,
 * solarize-add amount or enhance factor; 0 for the ops without one. */
double randaug_arg(int op, double magnitude, int negate, int H, int W);

/* The draws for one image of H×W (sizes matter only for translations). */
void randaug_sample(ra_plan *p, const randaug_config *c, int H, int W, uint64_t key);
/* Applies one op with argument arg to img (uint8 H×W×3, in place). scratch: H·W·3 bytes,
 * used by the geometric ops and Sharpness. interp RA_BILINEAR or RA_BICUBIC. */
void randaug_op(uint8_t *img, int H, int W, int op, double arg, int interp, const uint8_t fill[3], uint8_t *scratch);
/* Applies the ops of a plan in order. */
void randaug_apply(uint8_t *img, int H, int W, const ra_plan *p, const uint8_t fill[3], uint8_t *scratch);
/* randaug_sample + randaug_apply (a no-op when c->num_ops is 0). */
void randaug_image(uint8_t *img, int H, int W, const randaug_config *c, uint64_t key, uint8_t *scratch);
#endif
