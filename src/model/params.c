/* The parameter table builder and the one buffer (see table.h and params.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/gemm.h"
#include "model/table.h"
#include "semaim/rng.h"

typedef struct { int kind; double std; uint64_t stream; } init_t;

struct table {
    params_t *w;      /* info == NULL while counting */
    init_t *init;
    long off;
};

void table_add(table_t *t, int init, double std, uint64_t stream, int ndim, int s0, int s1, int s2, int s3,
               const char *fmt, ...) {
    params_t *w = t->w;
    if (w->info) {
        param_info_t *p = &w->info[w->ntensors];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->name, PARAM_NAME_MAX, fmt, ap);
        va_end(ap);
        int s[4] = {s0, s1, s2, s3};
        p->ndim = ndim;
        p->numel = 1;
        for (int i = 0; i < 4; i++) { p->shape[i] = i < ndim ? s[i] : 1; if (i < ndim) p->numel *= s[i]; }
        p->offset = t->off;
        p->decay = ndim >= 2;
        p->lr_scale = 1.0;
        t->init[w->ntensors] = (init_t){init, std, stream};
        t->off += p->numel;
    }
    w->ntensors++;
}

void table_norm(table_t *t, int D, const char *prefix) {
    table_add(t, INIT_ONE, 0, 0, 1, D, 0, 0, 0, "%s.weight", prefix);
    table_add(t, INIT_ZERO, 0, 0, 1, D, 0, 0, 0, "%s.bias", prefix);
}

void table_linear(table_t *t, int in, int out, const char *prefix) {
    table_add(t, INIT_XAVIER, 0, 0, 2, out, in, 0, 0, "%s.weight", prefix);
    table_add(t, INIT_ZERO, 0, 0, 1, out, 0, 0, 0, "%s.bias", prefix);
}

void table_mlp(table_t *t, int D, const char *block) {
    char n[PARAM_NAME_MAX];
    snprintf(n, sizeof n, "%s.norm2", block); table_norm(t, D, n);
    snprintf(n, sizeof n, "%s.mlp.fc1", block); table_linear(t, D, 4 * D, n);
    snprintf(n, sizeof n, "%s.mlp.fc2", block); table_linear(t, 4 * D, D, n);
}

void table_encoder(table_t *t, const semaim_config_t *c) {
    int D = c->width, P = c->patch;
    char blk[PARAM_NAME_MAX - 16], n[PARAM_NAME_MAX];
    table_add(t, INIT_NORMAL, 0.02, 0, 3, 1, 1, D, 0, "cls_token");
    table_add(t, INIT_XAVIER, 0, 0, 4, D, 3, P, P, "patch_embed.proj.weight");
    table_add(t, INIT_ZERO, 0, 0, 1, D, 0, 0, 0, "patch_embed.proj.bias");
    for (int i = 0; i < c->depth; i++) {
        snprintf(blk, sizeof blk, "blocks.%d", i);
        snprintf(n, sizeof n, "%s.norm1", blk); table_norm(t, D, n);
        snprintf(n, sizeof n, "%s.attn.qkv", blk); table_linear(t, D, 3 * D, n);
        snprintf(n, sizeof n, "%s.attn.proj", blk); table_linear(t, D, D, n);
        table_mlp(t, D, blk);
    }
}

static float *alloc_floats(long n) {
    size_t bytes = sizeof(float) * (size_t)(n > 0 ? n : 1);
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

/* frozen: the parameters alone (zeros), for weights that are loaded and never trained. */
static int build(params_t *w, void (*list)(table_t *t, const void *ctx), const void *ctx, uint64_t seed, int frozen,
                 err_t *err) {
    memset(w, 0, sizeof *w);
    table_t t = {w, NULL, 0};
    list(&t, ctx);                                   /* count */
    w->info = calloc((size_t)w->ntensors, sizeof *w->info);
    t.init = calloc((size_t)w->ntensors, sizeof *t.init);
    if (!w->info || !t.init) goto oom;
    w->ntensors = 0;
    list(&t, ctx);                                   /* fill */
    w->nparams = t.off;
    w->params = alloc_floats(w->nparams);
    if (!w->params) goto oom;
    if (frozen) {
        memset(w->params, 0, sizeof(float) * (size_t)w->nparams);
        free(t.init);
        return 0;
    }
    w->grads = alloc_floats(w->nparams);
    w->m = alloc_floats(w->nparams);
    w->v = alloc_floats(w->nparams);
    if (!w->grads || !w->m || !w->v) goto oom;
    if (params_add_half(w)) goto oom;
    size_t bytes = sizeof(float) * (size_t)w->nparams;
    memset(w->grads, 0, bytes); memset(w->m, 0, bytes); memset(w->v, 0, bytes);
    for (int i = 0; i < w->ntensors; i++) {
        const param_info_t *p = &w->info[i];
        const init_t *in = &t.init[i];
        float *x = w->params + p->offset;
        rng_t r = rng_make(in->stream ? rng_key(seed, in->stream, 0, 0, 0) : rng_key(seed, 0x1417, (uint64_t)i, 0, 0));
        if (in->kind == INIT_XAVIER) {
            /* Linear weights (out, in); the patch embed counts as its (D, 3·P·P) view. */
            long fan_out = p->shape[0], fan_in = p->numel / p->shape[0];
            float bound = (float)sqrt(6.0 / (double)(fan_in + fan_out));
            for (long j = 0; j < p->numel; j++) x[j] = (2.0f * rng_nextf(&r) - 1.0f) * bound;
        } else if (in->kind == INIT_NORMAL) {
            for (long j = 0; j < p->numel; j++) x[j] = (float)(in->std * rng_normal(&r));
        } else {
            float val = in->kind == INIT_ONE ? 1.0f : 0.0f;
            for (long j = 0; j < p->numel; j++) x[j] = val;
        }
    }
    free(t.init);
    params_sync_half(w);
    return 0;
oom:
    free(t.init);
    params_free(w);
    return err_set(err, ERR_RUNTIME, "out of memory allocating the parameters");
}

int params_add_half(params_t *w) {
    if (w->half || gemm_global_config()->precision != GEMM_PREC_BF16) return 0;
    w->half = aligned_alloc(64, (sizeof(bf16_t) * (size_t)(w->nparams > 0 ? w->nparams : 1) + 63) / 64 * 64);
    return w->half ? 0 : -1;
}

int params_attach_ema(params_t *w, err_t *err) {
    if (w->ema) return 0;
    if (!(w->ema = alloc_floats(w->nparams)))
        return err_set(err, ERR_RUNTIME, "out of memory for the EMA weights (one more parameter buffer, %.1f MiB)",
                       4.0 * (double)w->nparams / 1048576.0);
    memcpy(w->ema, w->params, sizeof(float) * (size_t)w->nparams);
    return 0;
}

int params_build(params_t *w, void (*list)(table_t *t, const void *ctx), const void *ctx, uint64_t seed, err_t *err) {
    return build(w, list, ctx, seed, 0, err);
}

int params_build_frozen(params_t *w, void (*list)(table_t *t, const void *ctx), const void *ctx, err_t *err) {
    return build(w, list, ctx, 0, 1, err);
}

void params_free(params_t *w) {
    free(w->info); free(w->params); free(w->grads); free(w->m); free(w->v); free(w->half); free(w->ema);
    memset(w, 0, sizeof *w);
}

void params_zero_grad(params_t *w) { memset(w->grads, 0, sizeof(float) * (size_t)w->nparams); }

void params_sync_half(params_t *w) {
    if (!w->half) return;
    const long chunk = 1L << 16;
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < w->nparams; i += chunk)
        bf16_from_f32(w->half + i, w->params + i, w->nparams - i < chunk ? w->nparams - i : chunk);
}

const param_info_t *params_find(const params_t *w, const char *name) {
    for (int i = 0; i < w->ntensors; i++)
        if (strcmp(w->info[i].name, name) == 0) return &w->info[i];
    return NULL;
}
