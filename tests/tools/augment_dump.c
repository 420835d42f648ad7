/* Runs the augmentation on cases from a file, for tests/tools/augment_torch.py.
 * Usage: augment_dump IN OUT. IN: int32 ncases, then per case int32
 * [mode, H, W, x0, y0, w, h, OH, OW, interp, flip, R] and H·W·3 uint8 (HWC RGB).
 * mode 0: resize_window of the box to OH×OW (0..255 values); 1: augment_apply to S = OH
 * (flip, normalise); 2: augment_eval to S = OH with shorter side R. OUT: the float32 outputs
 * [3,OH,OW] of all cases, concatenated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "data/augment.h"

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: augment_dump IN OUT\n"); return 2; }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) { fprintf(stderr, "augment_dump: cannot open %s or %s\n", argv[1], argv[2]); return 1; }
    int32_t n;
    if (fread(&n, 4, 1, in) != 1 || n < 0) { fprintf(stderr, "augment_dump: %s: bad header\n", argv[1]); return 1; }
    for (int t = 0; t < n; t++) {
        int32_t h[12];
        if (fread(h, 4, 12, in) != 12) { fprintf(stderr, "augment_dump: %s: truncated\n", argv[1]); return 1; }
        int mode = h[0], H = h[1], W = h[2], OH = h[7], OW = h[8];
        if (H < 1 || W < 1 || H > 4096 || W > 4096 || OH < 1 || OW < 1 || OH > 4096 || OW > 4096) {
            fprintf(stderr, "augment_dump: %s: case %d: bad sizes\n", argv[1], t); return 1;
        }
        uint8_t *img = malloc((size_t)H * W * 3);
        float *o = malloc(sizeof(float) * 3 * OH * OW);
        if (!img || !o || fread(img, 1, (size_t)H * W * 3, in) != (size_t)H * W * 3) {
            fprintf(stderr, "augment_dump: %s: case %d: truncated\n", argv[1], t); return 1;
        }
        aug_params p = {h[3], h[4], h[5], h[6], h[10]};
        int rc = mode == 0 ? resize_window(o, OH, OW, img, H, W, p.y0, p.x0, p.h, p.w, OH, OW, 0, 0, h[9])
               : mode == 1 ? augment_apply(o, img, H, W, OH, &p, h[9])
                           : augment_eval(o, img, H, W, OH, h[11], h[9]);
        if (rc || fwrite(o, sizeof(float), (size_t)3 * OH * OW, out) != (size_t)3 * OH * OW) {
            fprintf(stderr, "augment_dump: case %d failed\n", t); return 1;
        }
        free(img); free(o);
    }
    if (fclose(out)) { fprintf(stderr, "augment_dump: writing %s failed\n", argv[2]); return 1; }
    fclose(in);
    return 0;
}
