/* Mixup / CutMix (timm's Mixup, mode 'batch'); see data/mixup.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "data/mixup.h"
#include "kernels/ops.h"

mixup_config mixup_recipe(void) {
    mixup_config c = {0.8, 1.0, 1.0, 0.5, 0.1, 1};
    return c;
}

int mixup_active(const mixup_config *c) { return (c->mixup_alpha > 0 || c->cutmix_alpha > 0) && c->prob > 0; }

const char *mixup_check(const mixup_config *c, int B, char *err, size_t errlen) {
    if (!(c->mixup_alpha >= 0) || !(c->cutmix_alpha >= 0) || !isfinite(c->mixup_alpha) || !isfinite(c->cutmix_alpha))
        snprintf(err, errlen, "mixup: alphas must be finite and >= 0 (mixup %g, cutmix %g)", c->mixup_alpha, c->cutmix_alpha);
    else if (!(c->prob >= 0 && c->prob <= 1))
        snprintf(err, errlen, "mixup: probability %g outside [0, 1]", c->prob);
    else if (!(c->switch_prob >= 0 && c->switch_prob <= 1))
        snprintf(err, errlen, "mixup: switch probability %g outside [0, 1]", c->switch_prob);
    else if (!(c->smoothing >= 0 && c->smoothing < 1))
        snprintf(err, errlen, "mixup: label smoothing %g outside [0, 1)", c->smoothing);
    else if (mixup_active(c) && (B < 2 || B % 2))
        snprintf(err, errlen, "mixup: global batch %d must be even (image i is mixed with image B-1-i)", B);
    else return NULL;
    return err;
}

static int clip(int v, int hi) { return v < 0 ? 0 : v > hi ? hi : v; }

void mixup_box(mixup_params *p, int H, int W, double lam, int cy, int cx, int correct_lam) {
    double ratio = sqrt(1.0 - lam);
    int ch = (int)(H * ratio), cw = (int)(W * ratio);
    p->y0 = clip(cy - ch / 2, H); p->y1 = clip(cy + ch / 2, H);
    p->x0 = clip(cx - cw / 2, W); p->x1 = clip(cx + cw / 2, W);
    p->lam = correct_lam ? 1.0 - (double)(p->y1 - p->y0) * (p->x1 - p->x0) / ((double)H * W) : lam;
}

void mixup_sample(mixup_params *p, const mixup_config *c, int H, int W, uint64_t key) {
    memset(p, 0, sizeof *p);
    p->lam = 1.0;
    rng_t r = rng_make(key);
    /* fixed counters for the decisions and the box centre; the Beta draw's variable count
     * starts at 16 */
    double u_mix = rng_nextd(&r), u_switch = rng_nextd(&r);
    int cy = (int)rng_below(&r, (uint64_t)H), cx = (int)rng_below(&r, (uint64_t)W);
    if (!mixup_active(c) || !(u_mix < c->prob)) return;
    double alpha;
    if (c->mixup_alpha > 0 && c->cutmix_alpha > 0) {
        p->cutmix = u_switch < c->switch_prob;
        alpha = p->cutmix ? c->cutmix_alpha : c->mixup_alpha;
    } else {
        p->cutmix = c->cutmix_alpha > 0;
        alpha = p->cutmix ? c->cutmix_alpha : c->mixup_alpha;
    }
    r.ctr = 16;
    double lam = rng_beta(&r, alpha, alpha);
    if (lam == 1.0) return;   /* timm leaves the batch and the targets' λ at 1 */
    p->mixed = 1;
    if (p->cutmix) mixup_box(p, H, W, lam, cy, cx, c->correct_lam);
    else p->lam = lam;
}

void mixup_images(float *out, const float *x, const float *partner, int B, int C, int H, int W, const mixup_params *p) {
    const long img = (long)C * H * W;
    if (!p->mixed) { memcpy(out, x, sizeof(float) * (size_t)(B * img)); return; }
    if (p->cutmix) {
        memcpy(out, x, sizeof(float) * (size_t)(B * img));
        const int bw = p->x1 - p->x0;
        if (bw <= 0 || p->y1 <= p->y0) return;
        for (int i = 0; i < B; i++) {
            float *a = out + i * img;
            const float *b = partner + (long)(B - 1 - i) * img;
            for (int c = 0; c < C; c++)
                for (int y = p->y0; y < p->y1; y++) {
                    const long o = ((long)c * H + y) * W + p->x0;
                    memcpy(a + o, b + o, sizeof(float) * (size_t)bw);
                }
        }
        return;
    }
    const float l = (float)p->lam, m = (float)(1.0 - p->lam);
    for (int i = 0; i < B; i++) {
        float *a = out + i * img;
        const float *u = x + i * img, *v = partner + (long)(B - 1 - i) * img;
        for (long k = 0; k < img; k++) a[k] = u[k] * l + v[k] * m;
    }
}

void mixup_targets(float *t, const int32_t *labels, const int32_t *partner_labels, int B, int K, double lam,
                   double smoothing) {
    label_targets(t, labels, B, K, smoothing);
    /* the partner's smoothed one-hot row with label_targets' values, blended in */
    const float off = (float)(smoothing / K), on = (float)(1.0 - smoothing + smoothing / K);
    const float l = (float)lam, m = (float)(1.0 - lam);
    for (int i = 0; i < B; i++) {
        float *a = t + (long)i * K;
        int y = partner_labels[B - 1 - i], ok = y >= 0 && y < K;
        for (int k = 0; k < K; k++) a[k] = a[k] * l + (!ok ? 0.0f : k == y ? on : off) * m;
    }
}
