/* RandAugment (timm's rand-m9-mstd0.5-inc1) on uint8 HWC images; see data/randaug.h for the
 * definitions. The pixel arithmetic mirrors PIL's (double for geometry, float for blends,
 * truncation where PIL truncates), because the comparison against torchvision on PIL images is
 * meant to be exact; the Makefile's -std=c11 keeps GCC from contracting it into FMAs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/augment.h"
#include "data/randaug.h"
#include "semaim/rng.h"

static const char *const op_names[RA_NUM_OPS] = {
    "AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd",
    "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel",
    "TranslateYRel",
    "PosterizeIncreasing", "SolarizeIncreasing", "ColorIncreasing", "ContrastIncreasing",
    "BrightnessIncreasing", "SharpnessIncreasing",
};
/* timm's _RAND_INCREASING_TRANSFORMS: the inc0 list with 7 ops swapped for their variants */
static const int inc_set[RA_SET_SIZE] = {
    RA_AUTOCONTRAST, RA_EQUALIZE, RA_INVERT, RA_ROTATE, RA_POSTERIZE_INC, RA_SOLARIZE_INC,
    RA_SOLARIZE_ADD, RA_COLOR_INC, RA_CONTRAST_INC, RA_BRIGHTNESS_INC, RA_SHARPNESS_INC,
    RA_SHEAR_X, RA_SHEAR_Y, RA_TRANSLATE_X_REL, RA_TRANSLATE_Y_REL,
};

const char *randaug_op_name(int op) { return op >= 0 && op < RA_NUM_OPS ? op_names[op] : "?"; }

int randaug_op_from_name(const char *name) {
    for (int k = 0; k < RA_NUM_OPS; k++)
        if (name && strcmp(name, op_names[k]) == 0) return k;
    return -1;
}

int randaug_set_op(int increasing, int k) { return increasing ? inc_set[k] : k; }

randaug_config randaug_recipe(void) {
    randaug_config c = {2, 9, 0.5, 10, 0.5, 1, RA_BICUBIC, {0, 0, 0}};
    /* timm's img_mean: round(255 · ImageNet mean) = (124, 116, 104) */
    for (int k = 0; k < 3; k++) c.fill[k] = (uint8_t)rint(255.0 * aug_mean[k]);
    return c;
}

const char *randaug_check(const randaug_config *c, char *err, size_t errlen) {
    if (c->num_ops < 0 || c->num_ops > RANDAUG_MAX_OPS)
        snprintf(err, errlen, "randaug: %d ops per image, must be 0..%d", c->num_ops, RANDAUG_MAX_OPS);
    else if (!(c->magnitude >= 0) || !(c->magnitude_std >= 0) || !(c->magnitude_max >= 0))
        snprintf(err, errlen, "randaug: magnitude %g, std %g and max %g must be >= 0", c->magnitude,
                 c->magnitude_std, c->magnitude_max);
    else if (!(c->prob >= 0 && c->prob <= 1))
        snprintf(err, errlen, "randaug: op probability %g outside [0, 1]", c->prob);
    else if (c->interp != RA_BILINEAR && c->interp != RA_BICUBIC && c->interp != RA_RANDOM)
        snprintf(err, errlen, "randaug: unknown interpolation %d", c->interp);
    else return NULL;
    return err;
}

/* A whole-string number: integer when integer is set. */
static int parse_num(const char *s, int integer, double *out) {
    char *end;
    errno = 0;
    double v = integer ? (double)strtol(s, &end, 10) : strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

const char *randaug_parse(randaug_config *c, const char *spec, char *err, size_t errlen) {
    *c = randaug_recipe();
    c->num_ops = 2; c->magnitude = 10; c->magnitude_std = 0; c->magnitude_max = 10; c->increasing = 0;
    if (!spec || !*spec || strcmp(spec, "none") == 0) { c->num_ops = 0; return NULL; }
    char buf[256];
    if (strlen(spec) >= sizeof buf) { snprintf(err, errlen, "randaug: spec '%.40s...' is too long", spec); return err; }
    strcpy(buf, spec);
    char *save = NULL, *sec = strtok_r(buf, "-", &save);
    if (!sec || strcmp(sec, "rand") != 0 || spec[0] == '-') {
        snprintf(err, errlen, "randaug: '%s' is not a RandAugment spec (timm's form: rand-m9-mstd0.5-inc1)", spec);
        return err;
    }
    /* strtok_r folds "--" into one separator; an empty section is malformed, so look for it */
    if (strstr(spec, "--") || spec[strlen(spec) - 1] == '-') {
        snprintf(err, errlen, "randaug: '%s' has an empty section", spec);
        return err;
    }
    while ((sec = strtok_r(NULL, "-", &save))) {
        size_t k = 0;
        while (sec[k] && !(sec[k] >= '0' && sec[k] <= '9')) k++;   /* key = letters before the first digit */
        char key[16];
        if (k == 0 || k >= sizeof key || !sec[k]) {
            snprintf(err, errlen, "randaug: section '%s' of '%s' is not <key><number> (keys: m, n, mstd, mmax, inc)", sec, spec);
            return err;
        }
        memcpy(key, sec, k); key[k] = 0;
        const char *val = sec + k;
        double v = 0;
        int ok = 1;
        if (strcmp(key, "m") == 0) { ok = parse_num(val, 1, &v) == 0; c->magnitude = v; }
        else if (strcmp(key, "n") == 0) { ok = parse_num(val, 1, &v) == 0 && v >= 0 && v <= RANDAUG_MAX_OPS; c->num_ops = (int)v; }
        else if (strcmp(key, "mstd") == 0) { ok = parse_num(val, 0, &v) == 0; c->magnitude_std = v; }
        else if (strcmp(key, "mmax") == 0) { ok = parse_num(val, 1, &v) == 0; c->magnitude_max = v; }
        else if (strcmp(key, "inc") == 0) { ok = parse_num(val, 1, &v) == 0 && (v == 0 || v == 1); c->increasing = (int)v; }
        else if (strcmp(key, "w") == 0) {
            snprintf(err, errlen, "randaug: section '%s' of '%s': weighted op choice (w) is not implemented", sec, spec);
            return err;
        } else {
            snprintf(err, errlen, "randaug: unknown section '%s' in '%s' (keys: m, n, mstd, mmax, inc)", sec, spec);
            return err;
        }
        if (!ok) {
            snprintf(err, errlen, "randaug: bad value '%s' in section '%s' of '%s'", val, sec, spec);
            return err;
        }
    }
    return randaug_check(c, err, errlen);
}

double randaug_arg(int op, double m, int negate, int H, int W) {
    /* timm's *_level_to_arg with _LEVEL_DENOM 10, in its evaluation order */
    double level = m / 10.0, s = negate ? -1.0 : 1.0;
    switch (op) {
    case RA_ROTATE: return s * (level * 30.0);
    case RA_POSTERIZE: return (int)(level * 4);
    case RA_POSTERIZE_INC: return 4 - (int)(level * 4);
    case RA_SOLARIZE: return (int)(level * 256);
    case RA_SOLARIZE_INC: return 256 - (int)(level * 256);
    case RA_SOLARIZE_ADD: return (int)(level * 110);
    case RA_COLOR: case RA_CONTRAST: case RA_BRIGHTNESS: case RA_SHARPNESS: return level * 1.8 + 0.1;
    case RA_COLOR_INC: case RA_CONTRAST_INC: case RA_BRIGHTNESS_INC: case RA_SHARPNESS_INC: {
        double f = 1.0 + s * (level * 0.9);
        return f > 0.1 ? f : 0.1;
    }
    case RA_SHEAR_X: case RA_SHEAR_Y: return s * (level * 0.3);
    case RA_TRANSLATE_X_REL: return s * (level * 0.45) * W;
    case RA_TRANSLATE_Y_REL: return s * (level * 0.45) * H;
    default: return 0;
    }
}

void randaug_sample(ra_plan *p, const randaug_config *c, int H, int W, uint64_t key) {
    p->n = c->num_ops;
    for (int l = 0; l < p->n; l++) {
        ra_layer *L = &p->layer[l];
        rng_t r = {key, 16 * (uint64_t)l};
        L->op = randaug_set_op(c->increasing, (int)rng_below(&r, RA_SET_SIZE));
        L->apply = !(rng_nextd(&r) > c->prob);   /* timm skips when random() > prob */
        double m = c->magnitude;
        if (c->magnitude_std > 100) m = c->magnitude * rng_nextd(&r);
        else if (c->magnitude_std > 0) m = c->magnitude + c->magnitude_std * rng_normal(&r);
        m = m < c->magnitude_max ? m : c->magnitude_max;
        L->magnitude = m > 0 ? m : 0;
        r.ctr = 16 * (uint64_t)l + 4;
        L->negate = rng_nextd(&r) > 0.5;
        L->interp = c->interp == RA_RANDOM ? (rng_nextd(&r) < 0.5 ? RA_BILINEAR : RA_BICUBIC) : c->interp;
        L->arg = randaug_arg(L->op, L->magnitude, L->negate, H, W);
    }
}

/* ------------------------------------------------------------------ point and histogram ops */

static void apply_lut(uint8_t *img, long npix, uint8_t lut[3][256]) {
    for (long i = 0; i < npix; i++, img += 3) { img[0] = lut[0][img[0]]; img[1] = lut[1][img[1]]; img[2] = lut[2][img[2]]; }
}

/* PIL ImageOps.autocontrast (cutoff 0): lo..hi → 0..255 by int(v·scale + offset). */
static void autocontrast_lut(uint8_t lut[256], const long h[256]) {
    int lo = 0, hi = 255;
    while (lo < 255 && !h[lo]) lo++;
    while (hi > 0 && !h[hi]) hi--;
    double scale = hi > lo ? 255.0 / (hi - lo) : 0, offset = -lo * scale;
    for (int v = 0; v < 256; v++) {
        int o = (int)(v * scale + offset);   /* Python int(): toward zero */
        lut[v] = (uint8_t)(hi <= lo ? v : o < 0 ? 0 : o > 255 ? 255 : o);
    }
}

/* PIL ImageOps.equalize. */
static void equalize_lut(uint8_t lut[256], const long h[256], long npix) {
    long nonzero = 0, last = 0;
    for (int v = 0; v < 256; v++)
        if (h[v]) { nonzero++; last = h[v]; }
    long step = nonzero > 1 ? (npix - last) / 255 : 0, n = step / 2;
    for (int v = 0; v < 256; v++) {
        /* PIL's point() stores the LUT as uint8 with clipping: the top entry can reach 256+ */
        long o = step ? n / step : v;
        lut[v] = (uint8_t)(o > 255 ? 255 : o);
        n += h[v];
    }
}

/* AutoContrast or Equalize: a LUT per channel from that channel's histogram. */
static void histogram_op(uint8_t *img, long npix, int op) {
    long h[3][256];
    uint8_t lut[3][256];
    memset(h, 0, sizeof h);
    const uint8_t *p = img;
    for (long i = 0; i < npix; i++, p += 3) { h[0][p[0]]++; h[1][p[1]]++; h[2][p[2]]++; }
    for (int c = 0; c < 3; c++) {
        if (op == RA_EQUALIZE) equalize_lut(lut[c], h[c], npix);
        else autocontrast_lut(lut[c], h[c]);
    }
    apply_lut(img, npix, lut);
}

static void point_op(uint8_t *img, long npix, int op, int a) {
    uint8_t lut[3][256];
    for (int v = 0; v < 256; v++) {
        int o = v;
        if (op == RA_INVERT) o = 255 - v;
        else if (op == RA_POSTERIZE || op == RA_POSTERIZE_INC) o = a >= 8 ? v : a <= 0 ? 0 : v & ~((1 << (8 - a)) - 1);
        else if (op == RA_SOLARIZE || op == RA_SOLARIZE_INC) o = v < a ? v : 255 - v;
        else if (op == RA_SOLARIZE_ADD) o = v < 128 ? (v + a < 255 ? v + a : 255) : v;
        lut[0][v] = lut[1][v] = lut[2][v] = (uint8_t)o;
    }
    apply_lut(img, npix, lut);
}

/* ------------------------------------------------------------------ enhance (PIL ImageBlend) */

/* PIL's ImagingBlend(degenerate, image, (float)factor) for one value. */
static inline uint8_t blend1(int d, int v, float a) {
    float t = (float)d + a * (float)(v - d);
    if (a >= 0 && a <= 1.0f) return (uint8_t)t;
    return t <= 0.0f ? 0 : t >= 255.0f ? 255 : (uint8_t)t;
}

/* deg: a full degenerate image, or NULL for the constant dconst. */
static void blend(uint8_t *img, long n, const uint8_t *deg, int dconst, double factor) {
    float a = (float)factor;
    if (a == 1.0f) return;
    if (!deg) {
        uint8_t lut[3][256];
        for (int v = 0; v < 256; v++) lut[0][v] = lut[1][v] = lut[2][v] = a == 0.0f ? (uint8_t)dconst : blend1(dconst, v, a);
        apply_lut(img, n / 3, lut);
    } else if (a == 0.0f) memcpy(img, deg, (size_t)n);
    else for (long i = 0; i < n; i++) img[i] = blend1(deg[i], img[i], a);
}

static inline int luma(const uint8_t *p) { return (p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16; }

static void enhance(uint8_t *img, int H, int W, int op, double factor, uint8_t *scratch) {
    long npix = (long)H * W, n = npix * 3;
    if (op == RA_COLOR || op == RA_COLOR_INC) {
        for (long i = 0; i < npix; i++) scratch[3 * i] = scratch[3 * i + 1] = scratch[3 * i + 2] = (uint8_t)luma(img + 3 * i);
        blend(img, n, scratch, 0, factor);
    } else if (op == RA_CONTRAST || op == RA_CONTRAST_INC) {
        /* ImageStat mean of the L image (exact integer sum, one double division), + 0.5, int() */
        long s = 0;
        for (long i = 0; i < npix; i++) s += luma(img + 3 * i);
        blend(img, n, NULL, (int)((double)s / npix + 0.5), factor);
    } else if (op == RA_BRIGHTNESS || op == RA_BRIGHTNESS_INC) {
        blend(img, n, NULL, 0, factor);
    } else {
        /* ImageFilter.SMOOTH: the float sum + 0.5 truncated is round(Σ/13) exactly, since Σ/13
         * is never within 1/26 of a half; PIL copies the border (and images under 3×3) */
        memcpy(scratch, img, (size_t)n);
        const long row = 3L * W;
        for (int y = 1; y < H - 1; y++)
            for (int x = 1; x < W - 1; x++)
                for (int c = 0; c < 3; c++) {
                    const uint8_t *p = img + y * row + 3 * x + c;
                    int s = p[-row - 3] + p[-row] + p[-row + 3] + p[-3] + 5 * p[0] + p[3] + p[row - 3] + p[row] + p[row + 3];
                    scratch[y * row + 3 * x + c] = (uint8_t)((2 * s + 13) / 26);
                }
        blend(img, n, scratch, 0, factor);
    }
}

/* ------------------------------------------------------------------ geometry (PIL transform) */

static inline int pil_floor(double x) { return x < 0.0 ? (int)floor(x) : (int)x; }
static inline int clampi(int v, int hi) { return v < 0 ? 0 : v > hi ? hi : v; }

/* PIL's BICUBIC macro: cubic convolution with a = −1 in Horner form, in PIL's order. */
static inline double cubic4(double v1, double v2, double v3, double v4, double d) {
    double p1 = v2, p2 = -v1 + v3, p3 = 2 * (v1 - v2) + v3 - v4, p4 = -v1 + v2 - v3 + v4;
    return p1 + d * (p2 + d * (p3 + d * p4));
}

/* dst ← src under the inverse affine map a (output pixel centre → source point). */
static void warp(uint8_t *dst, const uint8_t *src, int H, int W, const double a[6], int interp, const uint8_t fill[3]) {
    const long row = 3L * W;
    for (int y = 0; y < H; y++) {
        uint8_t *o = dst + y * row;
        const double yc = y + 0.5;
        for (int x = 0; x < W; x++, o += 3) {
            const double xc = x + 0.5;
            double xs = a[0] * xc + a[1] * yc + a[2], ys = a[3] * xc + a[4] * yc + a[5];
            if (!(xs >= 0.0 && xs < W && ys >= 0.0 && ys < H)) { o[0] = fill[0]; o[1] = fill[1]; o[2] = fill[2]; continue; }
            xs -= 0.5; ys -= 0.5;
            int ix = pil_floor(xs), iy = pil_floor(ys);
            double dx = xs - ix, dy = ys - iy;
            if (interp == RA_BILINEAR) {
                const uint8_t *r0 = src + clampi(iy, H - 1) * row, *r1 = src + clampi(iy + 1, H - 1) * row;
                int x0 = 3 * clampi(ix, W - 1), x1 = 3 * clampi(ix + 1, W - 1);
                for (int c = 0; c < 3; c++) {
                    double v1 = r0[x0 + c] + (r0[x1 + c] - r0[x0 + c]) * dx;
                    double v2 = r1[x0 + c] + (r1[x1 + c] - r1[x0 + c]) * dx;
                    o[c] = (uint8_t)(v1 + (v2 - v1) * dy);
                }
            } else {
                /* rows and columns clamped: what PIL's "reuse the previous row" amounts to.
                 * A zero fraction (shears and translations along one axis) makes a cubic return
                 * its second tap exactly (v2 + 0·finite), so those taps are skipped. */
                const uint8_t *r[4];
                int xi[4];
                for (int k = 0; k < 4; k++) { r[k] = src + clampi(iy - 1 + k, H - 1) * row; xi[k] = 3 * clampi(ix - 1 + k, W - 1); }
                const int k0 = dy == 0.0 ? 1 : 0, k1 = dy == 0.0 ? 2 : 4;
                for (int c = 0; c < 3; c++) {
                    double v[4];
                    for (int k = k0; k < k1; k++)
                        v[k] = dx == 0.0 ? r[k][xi[1] + c] : cubic4(r[k][xi[0] + c], r[k][xi[1] + c], r[k][xi[2] + c], r[k][xi[3] + c], dx);
                    double t = dy == 0.0 ? v[1] : cubic4(v[0], v[1], v[2], v[3], dy);
                    o[c] = t <= 0.0 ? 0 : t >= 255.0 ? 255 : (uint8_t)t;
                }
            }
        }
    }
}

/* Python's round(v, 15): the correctly rounded 15-decimal string read back, as CPython does. */
static double py_round15(double v) {
    char b[64];
    snprintf(b, sizeof b, "%.15f", v);
    return strtod(b, NULL);
}

/* PIL Image.rotate(angle, expand=False): exact transposes for multiples of 90° (180 always,
 * 90/270 on square images), else the affine map about (W/2, H/2). Returns 1 if it wrote dst. */
static int rotate(uint8_t *dst, const uint8_t *src, int H, int W, double angle, int interp, const uint8_t fill[3]) {
    double ang = fmod(angle, 360.0);   /* Python's float %: the sign of the divisor */
    if (ang != 0 && ang < 0) ang += 360.0;
    if (ang == 0) return 0;
    const long row = 3L * W;
    if (ang == 180 || ((ang == 90 || ang == 270) && H == W)) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sy = ang == 180 ? H - 1 - y : ang == 90 ? x : W - 1 - x;
                int sx = ang == 180 ? W - 1 - x : ang == 90 ? H - 1 - y : y;
                memcpy(dst + y * row + 3 * x, src + sy * row + 3 * sx, 3);
            }
        return 1;
    }
    double r = -(ang * (M_PI / 180.0)), cx = W / 2.0, cy = H / 2.0;
    double m[6] = {py_round15(cos(r)), py_round15(sin(r)), 0.0, py_round15(-sin(r)), py_round15(cos(r)), 0.0};
    m[2] = m[0] * -cx + m[1] * -cy + 0.0 + cx;
    m[5] = m[3] * -cx + m[4] * -cy + 0.0 + cy;
    warp(dst, src, H, W, m, interp, fill);
    return 1;
}

void randaug_op(uint8_t *img, int H, int W, int op, double arg, int interp, const uint8_t fill[3], uint8_t *scratch) {
    const long npix = (long)H * W;
    double a[6] = {1, 0, 0, 0, 1, 0};
    switch (op) {
    case RA_AUTOCONTRAST: case RA_EQUALIZE: histogram_op(img, npix, op); return;
    case RA_INVERT: case RA_POSTERIZE: case RA_POSTERIZE_INC: case RA_SOLARIZE: case RA_SOLARIZE_INC:
    case RA_SOLARIZE_ADD:
        point_op(img, npix, op, (int)arg); return;
    case RA_COLOR: case RA_CONTRAST: case RA_BRIGHTNESS: case RA_SHARPNESS: case RA_COLOR_INC:
    case RA_CONTRAST_INC: case RA_BRIGHTNESS_INC: case RA_SHARPNESS_INC:
        enhance(img, H, W, op, arg, scratch); return;
    case RA_ROTATE:
        if (rotate(scratch, img, H, W, arg, interp, fill)) memcpy(img, scratch, (size_t)npix * 3);
        return;
    case RA_SHEAR_X: a[1] = arg; break;
    case RA_SHEAR_Y: a[3] = arg; break;
    case RA_TRANSLATE_X_REL: a[2] = arg; break;
    case RA_TRANSLATE_Y_REL: a[5] = arg; break;
    default: return;
    }
    warp(scratch, img, H, W, a, interp, fill);
    memcpy(img, scratch, (size_t)npix * 3);
}

void randaug_apply(uint8_t *img, int H, int W, const ra_plan *p, const uint8_t fill[3], uint8_t *scratch) {
    for (int l = 0; l < p->n; l++)
        if (p->layer[l].apply) randaug_op(img, H, W, p->layer[l].op, p->layer[l].arg, p->layer[l].interp, fill, scratch);
}

void randaug_image(uint8_t *img, int H, int W, const randaug_config *c, uint64_t key, uint8_t *scratch) {
    if (c->num_ops <= 0) return;
    ra_plan p;
    randaug_sample(&p, c, H, W, key);
    randaug_apply(img, H, W, &p, c->fill, scratch);
}
