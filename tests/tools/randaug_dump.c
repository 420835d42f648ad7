/* Runs the fine-tuning augmentations on cases from a file, for tests/tools/randaug_torch.py.
 * Usage: randaug_dump IN OUT. IN: int32 ncases, then per case int32 [mode, H, W, op, interp,
 * a, b, c], int64 key, float64 arg, and H·W·3 uint8 (HWC RGB). Modes and what OUT gets:
 *   0 randaug_op(op, arg, interp, fill (a,b,c))            → H·W·3 uint8
 *   1 randaug_image with the recipe config (interp = RA_BICUBIC or RA_RANDOM), key
 *                                                          → H·W·3 uint8, int32 n, n × (int32
 *                                                            op, apply, interp, negate;
 *                                                            float64 magnitude, arg)
 *   2 augment_u8_to_chw then erase_image (recipe, key)     → 3·H·W float32, int32 n, n × int32
 *                                                            (top, left, h, w)
 *   3 augment_crop_u8 of box (x0,y0,w,h) = (a, b, c, op), flip = interp, to S = arg
 *                                                          → S·S·3 uint8
 *   4 augment_eval to S = arg, R = augment_eval_resize(S, H, W, 0.875)
 *                                                          → int32 R, 3·S·S float32 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "data/augment.h"

static void die(const char *what, int t) {
    fprintf(stderr, "randaug_dump: case %d: %s\n", t, what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: randaug_dump IN OUT\n"); return 2; }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) { fprintf(stderr, "randaug_dump: cannot open %s or %s\n", argv[1], argv[2]); return 1; }
    int32_t n;
    if (fread(&n, 4, 1, in) != 1 || n < 0) die("bad header", -1);
    for (int t = 0; t < n; t++) {
        int32_t h[8];
        int64_t key;
        double arg;
        if (fread(h, 4, 8, in) != 8 || fread(&key, 8, 1, in) != 1 || fread(&arg, 8, 1, in) != 1) die("truncated", t);
        const int mode = h[0], H = h[1], W = h[2];
        if (H < 1 || W < 1 || H > 4096 || W > 4096 || mode < 0 || mode > 4) die("bad sizes or mode", t);
        const int S = mode >= 3 ? (int)arg : 0;
        if (mode >= 3 && (S < 1 || S > 4096)) die("bad output size", t);
        const size_t nb = (size_t)H * W * 3;
        uint8_t *img = malloc(nb), *scratch = malloc(nb);
        if (!img || !scratch || fread(img, 1, nb, in) != nb) die("truncated image", t);
        if (mode == 0) {
            const uint8_t fill[3] = {(uint8_t)h[5], (uint8_t)h[6], (uint8_t)h[7]};
            randaug_op(img, H, W, h[3], arg, h[4], fill, scratch);
            fwrite(img, 1, nb, out);
        } else if (mode == 1) {
            randaug_config c = randaug_recipe();
            c.interp = h[4];
            ra_plan p;
            randaug_sample(&p, &c, H, W, (uint64_t)key);
            randaug_apply(img, H, W, &p, c.fill, scratch);
            fwrite(img, 1, nb, out);
            fwrite(&p.n, 4, 1, out);
            for (int l = 0; l < p.n; l++) {
                const ra_layer *L = &p.layer[l];
                int32_t v[4] = {L->op, L->apply, L->interp, L->negate};
                double d[2] = {L->magnitude, L->arg};
                fwrite(v, 4, 4, out); fwrite(d, 8, 2, out);
            }
        } else if (mode == 2) {
            float *x = malloc(sizeof(float) * nb);
            if (!x || H != W) die("erasing cases must be square", t);
            augment_u8_to_chw(x, img, H);
            erase_config c = erase_recipe();
            erase_box b[4];
            int32_t k = erase_sample(b, &c, H, W, (uint64_t)key);
            if (erase_image(x, 3, H, W, &c, (uint64_t)key) != k) die("erase_image and erase_sample disagree", t);
            fwrite(x, sizeof(float), nb, out);
            fwrite(&k, 4, 1, out);
            for (int i = 0; i < k; i++) { int32_t v[4] = {b[i].top, b[i].left, b[i].h, b[i].w}; fwrite(v, 4, 4, out); }
            free(x);
        } else {
            float *x = malloc(sizeof(float) * 3 * S * S);
            void *ws = malloc(augment_scratch_bytes(H, W, S, INTERP_PIL));
            uint8_t *o = malloc((size_t)S * S * 3);
            if (!x || !ws || !o) die("out of memory", t);
            if (mode == 3) {
                aug_params p = {h[5], h[6], h[7], h[3], h[4]};
                if (augment_crop_u8(o, x, img, H, W, S, &p, INTERP_PIL, ws)) die("crop failed", t);
                fwrite(o, 1, (size_t)S * S * 3, out);
            } else {
                int32_t R = augment_eval_resize(S, H, W, AUG_EVAL_CROP_PCT);
                if (R < S || augment_eval(x, img, H, W, S, R, INTERP_PIL)) die("eval failed", t);
                fwrite(&R, 4, 1, out);
                fwrite(x, sizeof(float), (size_t)3 * S * S, out);
            }
            free(x); free(ws); free(o);
        }
        free(img); free(scratch);
    }
    if (fclose(out)) { fprintf(stderr, "randaug_dump: writing %s failed\n", argv[2]); return 1; }
    fclose(in);
    return 0;
}
