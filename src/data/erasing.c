/* Random erasing (timm's RandomErasing); see data/erasing.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "data/erasing.h"
#include "semaim/rng.h"

#define ERASE_MAX_COUNT 64

erase_config erase_recipe(void) {
    erase_config c = {0.25, 0.02, 1.0 / 3.0, 0.3, 1.0 / 0.3, ERASE_PIXEL, 1};
    return c;
}

const char *erase_check(const erase_config *c, char *err, size_t errlen) {
    if (!(c->prob >= 0 && c->prob <= 1))
        snprintf(err, errlen, "erasing: probability %g outside [0, 1]", c->prob);
    else if (!(c->min_area > 0 && c->min_area <= c->max_area && c->max_area <= 1))
        snprintf(err, errlen, "erasing: area range %g..%g must satisfy 0 < min <= max <= 1", c->min_area, c->max_area);
    else if (!(c->min_aspect > 0 && c->min_aspect <= c->max_aspect && isfinite(c->max_aspect)))
        snprintf(err, errlen, "erasing: aspect range %g..%g must satisfy 0 < min <= max", c->min_aspect, c->max_aspect);
    else if (c->mode != ERASE_CONST && c->mode != ERASE_RAND && c->mode != ERASE_PIXEL)
        snprintf(err, errlen, "erasing: unknown mode %d", c->mode);
    else if (c->max_count < 1 || c->max_count > ERASE_MAX_COUNT)
        snprintf(err, errlen, "erasing: count %d must be 1..%d", c->max_count, ERASE_MAX_COUNT);
    else return NULL;
    return err;
}

int erase_mode_from_name(const char *name) {
    static const char *const names[] = {"const", "rand", "pixel"};
    for (int k = 0; k < 3; k++)
        if (name && strcmp(name, names[k]) == 0) return k;
    return -1;
}

int erase_sample(erase_box *boxes, const erase_config *c, int H, int W, uint64_t key) {
    rng_t r = rng_make(key);
    if (rng_nextd(&r) > c->prob) return 0;
    int count = c->max_count > 1 ? 1 + (int)rng_below(&r, (uint64_t)c->max_count) : 1;
    const double area = (double)H * W, la = log(c->min_aspect), lb = log(c->max_aspect);
    int n = 0;
    for (int k = 0; k < count; k++) {
        r.ctr = 64 * (uint64_t)(k + 1);
        for (int attempt = 0; attempt < 10; attempt++) {
            double target = (c->min_area + (c->max_area - c->min_area) * rng_nextd(&r)) * area / count;
            double aspect = exp(la + (lb - la) * rng_nextd(&r));
            int h = (int)rint(sqrt(target * aspect)), w = (int)rint(sqrt(target / aspect));
            if (w < W && h < H) {
                boxes[n].top = (int)rng_below(&r, (uint64_t)(H - h + 1));
                boxes[n].left = (int)rng_below(&r, (uint64_t)(W - w + 1));
                boxes[n].h = h; boxes[n].w = w;
                n++;
                break;
            }
        }
    }
    return n;
}

void erase_fill(float *img, int C, int H, int W, const erase_box *box, int b, int mode, uint64_t key) {
    rng_t r = rng_make(mix64(key ^ (0x6e6f697365ULL + (uint64_t)b)));   /* "noise" + region */
    for (int c = 0; c < C; c++) {
        float v = mode == ERASE_RAND ? (float)rng_normal(&r) : 0.0f;
        for (int y = box->top; y < box->top + box->h; y++) {
            float *row = img + ((long)c * H + y) * W + box->left;
            if (mode == ERASE_PIXEL)
                for (int x = 0; x < box->w; x++) row[x] = (float)rng_normal(&r);
            else
                for (int x = 0; x < box->w; x++) row[x] = v;
        }
    }
}

int erase_image(float *img, int C, int H, int W, const erase_config *c, uint64_t key) {
    if (c->prob <= 0) return 0;
    erase_box boxes[ERASE_MAX_COUNT];
    int n = erase_sample(boxes, c, H, W, key);
    for (int b = 0; b < n; b++) erase_fill(img, C, H, W, &boxes[b], b, c->mode, key);
    return n;
}
