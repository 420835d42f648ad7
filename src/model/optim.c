#include <math.h>
#include "kernels/gemm.h"
#include "semaim/optim.h"

optim_cfg_t optim_defaults(void) {
    optim_cfg_t o = {2e-4, 0.0, 0.05, 0.9, 0.95, 1e-8, 3.0, 0, 0};
    return o;
}

double optim_peak_lr(const optim_cfg_t *o, long global_batch) { return o->base_lr * (double)global_batch / 256.0; }

double optim_lr_at(double peak, double min_lr, long it, long warmup, long total) {
    if (it < warmup) return peak * (double)it / (double)warmup;
    if (total <= warmup) return peak;
    double prog = (double)(it - warmup) / (double)(total - warmup);
    if (prog > 1) prog = 1;
    return min_lr + (peak - min_lr) * 0.5 * (1.0 + cos(M_PI * prog));
}

long optim_warmup_iters(double warmup_epochs, long warmup_steps, long steps_per_epoch, long total, double max_fraction) {
    if (warmup_steps >= 0) return warmup_steps;
    double w = warmup_epochs * (double)steps_per_epoch, cap = max_fraction * (double)total;
    return llround(w < cap ? w : cap);
}

double grad_norm(const float *g, long n) {
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (long i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

void clip_grad(float *g, long n, double norm, double max_norm) {
    if (max_norm <= 0) return;
    double coef = max_norm / (norm + 1e-6);
    if (coef >= 1.0) return;
    float c = (float)coef;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) g[i] *= c;
}

void adamw_step(params_t *w, double lr, const optim_cfg_t *o, long t) {
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    /* torch: p -= lr·wd·p; m,v updated; p -= lr/bc1 · m / (sqrt(v)/sqrt(bc2) + eps) */
    double bc1 = 1.0 - pow(o->beta1, (double)t);
    float rbc2 = (float)(1.0 / sqrt(1.0 - pow(o->beta2, (double)t)));
    for (int k = 0; k < w->ntensors; k++) {
        const param_info_t *ti = &w->info[k];
        double lrk = lr * ti->lr_scale;
        float step = (float)(lrk / bc1);
        float decay = ti->decay ? (float)(1.0 - lrk * o->weight_decay) : 1.0f;
        float *p = w->params + ti->offset, *g = w->grads + ti->offset;
        float *mm = w->m + ti->offset, *vv = w->v + ti->offset;
        bf16_t *h = w->half ? w->half + ti->offset : NULL;
        /* chunks: the bf16 copy of the weights is rounded from a chunk just updated, in cache */
        const long chunk = 4096, n = ti->numel;
#pragma omp parallel for schedule(static) if (n > 16384)
        for (long c0 = 0; c0 < n; c0 += chunk) {
            const long c1 = n - c0 < chunk ? n : c0 + chunk;
            for (long i = c0; i < c1; i++) {
                float gi = g[i];
                mm[i] = b1 * mm[i] + (1 - b1) * gi;
                vv[i] = b2 * vv[i] + (1 - b2) * gi * gi;
                p[i] = p[i] * decay - step * mm[i] / (sqrtf(vv[i]) * rbc2 + eps);
            }
            if (h) bf16_from_f32(h + c0, p + c0, c1 - c0);
        }
    }
}

void optim_update(params_t *w, const optim_cfg_t *o, double lr, long t, double gnorm) {
    clip_grad(w->grads, w->nparams, gnorm, o->clip);
    adamw_step(w, lr, o, t);
}
