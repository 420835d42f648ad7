/* Random erasing as timm's RandomErasing (timm/data/random_erasing.py), applied to one
 * normalised float CHW image after augment_u8_to_chw, as timm's transform does (the recipe:
 * probability 0.25, mode 'pixel', count 1).
 *
 * Per image: skipped when u > prob; else `count` regions (count = max_count, or uniform in
 * 1..max_count when max_count > 1), each from up to 10 attempts of area
 * U(min_area, max_area)·H·W/count and aspect exp(U(log min_aspect, log max_aspect)),
 * h = round(√(area·aspect)), w = round(√(area/aspect)) (half to even, as Python's round),
 * accepted when w < W and h < H (strictly, as timm), top uniform in 0..H−h and left in
 * 0..W−w (inclusive); no region when all 10 attempts fail. The region [top, top+h) ×
 * [left, left+w) of every channel is overwritten: 'pixel' with independent N(0,1) values
 * (normalised space, i.e. noise around the dataset mean), 'rand' with one N(0,1) value per
 * channel, 'const' with 0.
 * The draws are a pure function of the key: rng_key(seed, ERASE_RNG_TAG, epoch, sample id, 0).
 * Counter 0 decides whether to erase and 1 the count; region r draws its geometry from
 * counters [64(r+1), 64(r+2)) and its noise from a stream of its own, so the number of
 * attempts never shifts another draw. */
#ifndef SEMAIM_ERASING_H
#define SEMAIM_ERASING_H
#include <stddef.h>
#include <stdint.h>

#define ERASE_RNG_TAG 0x657261736531ULL   /* "erase1" */
enum { ERASE_CONST = 0, ERASE_RAND = 1, ERASE_PIXEL = 2 };

typedef struct {
    double prob;                   /* 0 = off */
    double min_area, max_area;     /* fractions of the image */
    double min_aspect, max_aspect; /* h/w */
    int mode;                      /* ERASE_* */
    int max_count;                 /* >= 1 */
} erase_config;

/* One erased region (h = w = 0: none). */
typedef struct { int top, left, h, w; } erase_box;

/* The recipe: prob 0.25, area 0.02–1/3, aspect 0.3–1/0.3, pixel mode, one region. */
erase_config erase_recipe(void);
/* Checks a config. Returns NULL or err (one line). */
const char *erase_check(const erase_config *c, char *err, size_t errlen);
/* timm's mode names "const", "rand", "pixel" → ERASE_*, −1 if unknown. */
int erase_mode_from_name(const char *name);

/* The regions of one H×W image: writes up to max_count boxes, returns how many. */
int erase_sample(erase_box *boxes, const erase_config *c, int H, int W, uint64_t key);
/* Fills box b (the b-th region of the sample with this key) of img [C,H,W]. */
void erase_fill(float *img, int C, int H, int W, const erase_box *box, int b, int mode, uint64_t key);
/* erase_sample + erase_fill of every region; returns the number of regions erased. */
int erase_image(float *img, int C, int H, int W, const erase_config *c, uint64_t key);
#endif
