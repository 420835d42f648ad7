/* Mixup / CutMix as timm's Mixup(mode='batch') (timm/data/mixup.py), the recipe's mixup 0.8,
 * cutmix 1.0, prob 1, switch 0.5, label smoothing 0.1, correct_lam, on one float batch
 * [B,C,H,W] of normalised images (after random erasing, as in MAE's training loop).
 *
 * Per batch (timm's _params_per_batch and cutmix_bbox_and_lam):
 *   with probability prob the batch is mixed; with both alphas > 0, CutMix is chosen with
 *   probability switch_prob, else Mixup; λ ~ Beta(α, α) of the chosen one (one alpha 0: the
 *   other always). Mixup: x_i ← λ·x_i + (1−λ)·x_{B−1−i} (float32, λ and 1−λ rounded to
 *   float first, as torch's scalar multiply). CutMix: ratio = √(1−λ), cut = ⌊H·ratio⌋ ×
 *   ⌊W·ratio⌋, centre (cy, cx) uniform on the pixel grid, box rows
 *   [clip(cy − ⌊cut_h/2⌋), clip(cy + ⌊cut_h/2⌋)) (clip to 0..H; columns likewise), the box of
 *   x_i replaced by that of the original x_{B−1−i}; with correct_lam, λ ← 1 − box area/(H·W).
 *   λ = 1 leaves the batch as it is.
 * Soft targets (timm's mixup_target): off = smoothing/K, on = 1 − smoothing + off for K
 * classes, t_i = λ·onehot(y_i) + (1−λ)·onehot(y_{B−1−i}); so the smoothing lives in the
 * targets and the loss (softce_forward in kernels/ops.h) must not smooth again. Unmixed
 * batches still get smoothed targets (λ = 1), as timm.
 *
 * Determinism: mixup_sample draws from one key per step, rng_key(seed, MIXUP_RNG_TAG, global
 * step, 0, 0), identical on every rank, so every rank uses the same λ, choice and box.
 * Partners: timm flips the batch (i ↔ B−1−i). mixup_images and mixup_targets take the partner
 * batch separately: the batch itself reproduces timm on one process; semaim-finetune passes
 * the batch of the mirror rank W−1−r (dist_mirror_exchange), which with the loader's dealt
 * assignment (global position j = i·W + r) makes the pairing timm's flip j ↔ G−1−j of the
 * GLOBAL batch of G = B·W images — the same mixed images for any rank count. */
#ifndef SEMAIM_MIXUP_H
#define SEMAIM_MIXUP_H
#include <stddef.h>
#include <stdint.h>
#include "semaim/rng.h"

#define MIXUP_RNG_TAG 0x6d69787570ULL   /* "mixup" */

typedef struct {
    double mixup_alpha;    /* 0: no Mixup */
    double cutmix_alpha;   /* 0: no CutMix */
    double prob;           /* probability of mixing a batch */
    double switch_prob;    /* probability of CutMix when both are on */
    double smoothing;      /* label smoothing folded into the targets */
    int correct_lam;       /* 1: λ from the clipped box area (timm's default) */
} mixup_config;

typedef struct {
    int mixed;             /* 0: images untouched */
    int cutmix;            /* 1: box swap, 0: blend */
    double lam;            /* the targets' λ (after the area correction) */
    int y0, y1, x0, x1;    /* CutMix box rows [y0,y1), columns [x0,x1) */
} mixup_params;

/* The recipe: mixup 0.8, cutmix 1.0, prob 1, switch 0.5, smoothing 0.1, correct_lam. */
mixup_config mixup_recipe(void);
/* Checks a config for global batches of B images (timm pairs i with B−1−i and needs B even).
 * Returns NULL or err (one line). */
const char *mixup_check(const mixup_config *c, int B, char *err, size_t errlen);
/* 1 when some batch can be mixed (an alpha > 0 and prob > 0). */
int mixup_active(const mixup_config *c);

/* The parameters of one batch of H×W images. */
void mixup_sample(mixup_params *p, const mixup_config *c, int H, int W, uint64_t key);
/* The CutMix box of λ and centre (cy, cx), and the corrected λ (timm's rand_bbox). */
void mixup_box(mixup_params *p, int H, int W, double lam, int cy, int cx, int correct_lam);
/* out [B,C,H,W] = the mix of image i of x [B,C,H,W] with image B−1−i of partner (x itself:
 * timm's flip of one batch); out aliases neither. A copy of x unless p->mixed. */
void mixup_images(float *out, const float *x, const float *partner, int B, int C, int H, int W, const mixup_params *p);
/* Soft targets [B][K] for λ: row i = λ·smoothed one-hot(labels[i]) + (1−λ)·smoothed
 * one-hot(partner_labels[B−1−i]) (partner_labels = labels: one batch); a label outside 0..K−1
 * contributes a zero row. */
void mixup_targets(float *targets, const int32_t *labels, const int32_t *partner_labels, int B, int K, double lam,
                   double smoothing);
#endif
