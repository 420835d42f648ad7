/* Fine-tuning augmentation throughput on one thread, for tests/bench/augment.sh:
 *   randaug_erasing   RandAugment (the recipe, rand-m9-mstd0.5-inc1) on a 224×224 uint8 image,
 *                     ToTensor + Normalize and random erasing (0.25, pixel): the part the
 *                     fine-tuning recipe adds to a loader worker's image
 *   finetune_chain    the whole augment_finetune of a 256×256 source (RandomResizedCrop 0.08–1,
 *                     flip, the above) to 224
 *   per op            each RandAugment op alone (the geometric ones with bicubic), to see which
 *                     dominate
 *   mixup             Mixup/CutMix + soft targets of a batch of 32 (per batch)
 * Every image draws fresh ops from its own key (sample id), as in training.
 * Usage: bench_randaug [images]   (default 400) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "data/augment.h"
#include "data/mixup.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "bench_randaug: cannot allocate %zu bytes\n", n); exit(2); }
    return p;
}

/* A photo-like source: smooth gradients plus texture, so histogram ops see a spread. */
static void fill_image(uint8_t *img, int H, int W) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                unsigned v = (unsigned)(x * (c + 1) + y * (3 - c) + ((x * 7919u + y * 104729u + c * 31u) % 61u));
                img[((size_t)y * W + x) * 3 + c] = (uint8_t)(v & 255u);
            }
}

int main(int argc, char **argv) {
    int n = 400;
    if (argc == 2) {
        char *end;
        long v = strtol(argv[1], &end, 10);
        if (*end || v < 1 || v > 1000000) { fprintf(stderr, "bench_randaug: images '%s' is not 1..1000000\n", argv[1]); return 2; }
        n = (int)v;
    } else if (argc > 2) { fprintf(stderr, "usage: bench_randaug [images]\n"); return 2; }
    const int S = 224, H0 = 256;
    const size_t nb = (size_t)S * S * 3;
    uint8_t *src = xmalloc(nb), *img = xmalloc(nb), *scratch = xmalloc(nb), *big = xmalloc((size_t)H0 * H0 * 3);
    float *out = xmalloc(sizeof(float) * 3 * S * S);
    fill_image(src, S, S);
    fill_image(big, H0, H0);
    aug_recipe r = augment_recipe_finetune();
    double sink = 0;

    double t0 = now();
    for (int i = 0; i < n; i++) {
        memcpy(img, src, nb);
        randaug_image(img, S, S, &r.ra, rng_key(1, RANDAUG_RNG_TAG, 0, (uint64_t)i, 0), scratch);
        augment_u8_to_chw(out, img, S);
        erase_image(out, 3, S, S, &r.re, rng_key(1, ERASE_RNG_TAG, 0, (uint64_t)i, 0));
        sink += out[i % (3 * S * S)];
    }
    double t = now() - t0;
    printf("bench randaug_erasing_224: %.1f images/s\n", n / t);

    void *work = xmalloc(augment_finetune_work_bytes(H0, H0, S, r.interp));
    t0 = now();
    for (int i = 0; i < n; i++) {
        augment_finetune(out, big, H0, H0, S, &r, 1, 0, i, work);
        sink += out[i % (3 * S * S)];
    }
    t = now() - t0;
    printf("bench finetune_chain_256_to_224: %.1f images/s\n", n / t);

    const uint8_t *fill = r.ra.fill;
    for (int k = 0; k < RA_SET_SIZE; k++) {
        int op = randaug_set_op(1, k), reps = n / 8 > 10 ? n / 8 : 10;
        double arg = randaug_arg(op, 9, 0, S, S);
        t0 = now();
        for (int i = 0; i < reps; i++) {
            memcpy(img, src, nb);
            randaug_op(img, S, S, op, arg, RA_BICUBIC, fill, scratch);
            sink += img[i % nb];
        }
        t = now() - t0;
        printf("bench randaug_op_%s: %.3f ms/image\n", randaug_op_name(op), 1e3 * t / reps);
    }

    const int B = 32, K = 1000;
    float *batch = xmalloc(sizeof(float) * B * 3 * S * S), *mixed = xmalloc(sizeof(float) * B * 3 * S * S), *targets = xmalloc(sizeof(float) * B * K);
    int32_t labels[32];
    for (int b = 0; b < B; b++) { labels[b] = b * 31 % K; memcpy(batch + (size_t)b * 3 * S * S, out, sizeof(float) * 3 * S * S); }
    mixup_config mc = mixup_recipe();
    int nbatch = n / 20 > 5 ? n / 20 : 5;
    t0 = now();
    for (int s = 0; s < nbatch; s++) {
        mixup_params p;
        mixup_sample(&p, &mc, S, S, rng_key(1, MIXUP_RNG_TAG, (uint64_t)s, 0, 0));
        mixup_images(mixed, batch, batch, B, 3, S, S, &p);
        mixup_targets(targets, labels, labels, B, K, p.lam, mc.smoothing);
        sink += mixed[s] + targets[s];
    }
    t = now() - t0;
    printf("bench mixup_batch32_224: %.3f ms/batch\n", 1e3 * t / nbatch);
    fprintf(stderr, "(checksum %g)\n", sink);
    free(src); free(img); free(scratch); free(big); free(out); free(work); free(batch); free(mixed); free(targets);
    return 0;
}
