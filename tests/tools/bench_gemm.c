/* GEMM rates on the model's own shapes, for tests/bench/gemm.sh: preset tiny (D = 192, 3 heads
 * of 64, T = 197 tokens, patch dim 768, depth 12 with a decoder block after each encoder block)
 * at batch B, every backend and precision this machine runs natively: OpenBLAS fp32, oneDNN
 * fp32, oneDNN bf16 (bf16 inputs, f32 output; and with f32 inputs rounded by gemm_run, the
 * transition path linear_* take today).
 * Linear layers: out = in·Wᵀ (NT), dinp += dout·W (NN), dW += doutᵀ·in (TN), N = B·T rows.
 * Attention: the per-(batch, head) block GEMMs exactly as src/kernels/attention.c issues them
 * (query blocks of at most 48 rows, keys up to the block's last visible one), from a parallel
 * region over the blocks (forward) or the heads (backward), each thread on its own scratch.
 * Each shape's time is the best of --reps rounds (the machine may be shared); the weighted
 * rate is the step's GEMM FLOPs over the time they take when each shape occurs as often as in
 * one training step with the semantic order (permutation pass: 12 encoder blocks forward with
 * the full mask; training pass: 12 encoder blocks causal and 12 decoder blocks strict, forward
 * and backward; head; patch embedding without dinp).
 * Prints "bench <name>: <value> <unit>" lines.
 * Usage: bench_gemm [--batch 32] [--reps 5] [--only NAME]   (NAME: openblas_fp32, onednn_fp32, ...) */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/gemm.h"

enum { D = 192, NH = 3, HD = 64, T = 197, PD = 768, DEPTH = 12, ATT_BLK = 48 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static void *xalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "bench_gemm: out of memory (%zu bytes)\n", n); exit(2); }
    return p;
}
static void fill(float *x, long n, unsigned seed) {
    for (long i = 0; i < n; i++) { seed = seed * 1664525u + 1013904223u; x[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.1f; }
}

typedef struct { const char *name; gemm_config_t cfg; int bf16_in; } config_t;

/* ---- linear layers: (rows, in, out) and how often forward / backward run per step */
typedef struct { const char *name; long rows; int C, OC, nfwd, nbwd, dinp; } layer_t;

/* ---- attention: the block GEMMs of one call, as attention.c makes them */
static int att_rows(void) { int nblk = (T + ATT_BLK - 1) / ATT_BLK; return (T + nblk - 1) / nblk; }
static int last_key(int mode, int i) { return mode == 0 ? T - 1 : mode == 1 ? i : (i > 0 ? i - 1 : 0); }
static void block(int mode, int blk, int *i0, int *m, int *nk) {
    const int rows = att_rows();
    *i0 = blk * rows;
    *m = T - *i0 < rows ? T - *i0 : rows;
    *nk = last_key(mode, *i0 + *m - 1) + 1;
}
/* g: 0 scores, 1 P·V, 2 dV, 3 dP, 4 dQ, 5 dK; s = q/k/v row stride (3D fused, D separate). */
static gemm_shape_t att_shape(int g, int m, int nk, int s) {
    const float sc = 1.0f / sqrtf((float)HD);
    switch (g) {
    case 0: return (gemm_shape_t){0, 1, m, nk, HD, s, s, T, sc, 0};
    case 1: return (gemm_shape_t){0, 0, m, HD, nk, T, s, D, 1, 0};
    case 2: return (gemm_shape_t){1, 0, nk, HD, m, T, D, s, 1, 1};
    case 3: return (gemm_shape_t){0, 1, m, nk, HD, D, s, nk, 1, 0};
    case 4: return (gemm_shape_t){0, 0, m, HD, nk, nk, s, s, sc, 1};
    default: return (gemm_shape_t){1, 0, nk, HD, m, nk, s, s, sc, 1};
    }
}

static struct { float *A, *B, *C, *C2; bf16_t *Ah, *Bh; void **scr; int nt; size_t scr_bytes; } buf;

static void make_plan(gemm_plan_t **p, const config_t *c, const gemm_shape_t *s, unsigned fl) {
    err_t e = {0};
    if (gemm_plan_create(p, &c->cfg, s, fl | (c->bf16_in ? GEMM_PLAN_BF16_IN : 0), &e)) {
        fprintf(stderr, "bench_gemm: %s: %s\n", c->name, e.msg);
        exit(1);
    }
    if (gemm_plan_scratch_bytes(*p) > buf.scr_bytes) {
        buf.scr_bytes = gemm_plan_scratch_bytes(*p);
        for (int i = 0; i < buf.nt; i++) { free(buf.scr[i]); buf.scr[i] = xalloc(buf.scr_bytes); }
    }
}
static const void *in_a(const config_t *c) { return c->bf16_in ? (const void *)buf.Ah : buf.A; }
static const void *in_b(const config_t *c) { return c->bf16_in ? (const void *)buf.Bh : buf.B; }

/* Seconds for one run of a linear GEMM (best of reps, each round long enough to time). */
static double time_linear(const config_t *c, const gemm_shape_t *s, int reps, const char **impl) {
    gemm_plan_t *p;
    make_plan(&p, c, s, 0);
    *impl = gemm_plan_impl(p);
    gemm_run(p, in_a(c), in_b(c), buf.C, buf.scr[0]);   // warm-up
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        int n = 0;
        const double t0 = now();
        double t;
        do { gemm_run(p, in_a(c), in_b(c), buf.C, buf.scr[0]); n++; } while ((t = now() - t0) < 0.05);
        if (t / n < best) best = t / n;
    }
    gemm_plan_free(p);
    return best;
}

/* One attention call's GEMMs (fwd: 0 and 1 per block; bwd: 2–5 per block), B·NH heads. */
static double time_attention(const config_t *c, int B, int mode, int fwd, int stride, int reps, double *flops) {
    const int rows = att_rows(), nblk = (T + rows - 1) / rows, g0 = fwd ? 0 : 2, g1 = fwd ? 1 : 5;
    gemm_plan_t *plans[8][6] = {{0}};
    *flops = 0;
    for (int blk = 0; blk < nblk; blk++) {
        int i0, m, nk;
        block(mode, blk, &i0, &m, &nk);
        for (int g = g0; g <= g1; g++) {
            const gemm_shape_t s = att_shape(g, m, nk, stride);
            make_plan(&plans[blk][g], c, &s, GEMM_PLAN_INNER);
            *flops += 2.0 * s.M * s.N * s.K * B * NH;
        }
    }
    const long ntask = fwd ? (long)B * NH * nblk : (long)B * NH;
    double best = 1e30;
    for (int r = -1; r < reps; r++) {   // one warm-up round
        const double t0 = now();
        #pragma omp parallel for schedule(dynamic)
        for (long task = 0; task < ntask; task++) {
            void *scr = buf.scr[omp_get_thread_num()];
            // every head reads its own slice of the inputs and writes its own outputs
            const long head = fwd ? task / nblk : task;
            const long off = (head / NH) * T * stride + (head % NH) * HD;
            for (int blk = fwd ? (int)(task % nblk) : 0; blk < (fwd ? (int)(task % nblk) + 1 : nblk); blk++)
                for (int g = g0; g <= g1; g++) {
                    const int out_big = g == 2 || g == 4 || g == 5;
                    float *C = out_big ? buf.C2 + off : buf.C + head * (long)T * T + blk * (long)rows * T;
                    gemm_run(plans[blk][g], (const char *)in_a(c) + off * (c->bf16_in ? 2 : 4),
                             (const char *)in_b(c) + off * (c->bf16_in ? 2 : 4), C, scr);
                }
        }
        const double t = now() - t0;
        if (r >= 0 && t < best) best = t;
    }
    for (int blk = 0; blk < nblk; blk++)
        for (int g = g0; g <= g1; g++) gemm_plan_free(plans[blk][g]);
    return best;
}

int main(int argc, char **argv) {
    int B = 32, reps = 5;
    const char *only = NULL;
    static struct option opts[] = {{"batch", 1, 0, 'b'}, {"reps", 1, 0, 'r'}, {"only", 1, 0, 'o'}, {0, 0, 0, 0}};
    for (int ch; (ch = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (ch == 'b') B = atoi(optarg);
        else if (ch == 'r') reps = atoi(optarg);
        else if (ch == 'o') only = optarg;
        else { fprintf(stderr, "usage: bench_gemm [--batch 32] [--reps 5] [--only NAME]\n"); return 2; }
    }
    if (B < 1 || B > 1024 || reps < 1 || reps > 100) { fprintf(stderr, "bench_gemm: batch 1..1024, reps 1..100\n"); return 2; }
    const long N = (long)B * T, L = (long)B * (T - 1);
    // per step: the permutation pass runs the 12 encoder blocks forward once more
    const layer_t layers[] = {
        {"D_3D", N, D, 3 * D, 2 * DEPTH, DEPTH, 1},
        {"D_D", N, D, D, 2 * DEPTH + 4 * DEPTH, DEPTH + 4 * DEPTH, 1},   // enc proj; dec q, k, v, proj
        {"D_4D", N, D, 4 * D, 2 * DEPTH + DEPTH + 1, DEPTH + DEPTH + 1, 1},   // enc, dec, head fc1
        {"4D_D", N, 4 * D, D, 2 * DEPTH + DEPTH, DEPTH + DEPTH, 1},
        {"4D_768", N, 4 * D, PD, 1, 1, 1},     // head fc2
        {"768_D", L, PD, D, 2, 1, 0},          // patch embedding (no dinp)
    };
    const int nl = sizeof layers / sizeof layers[0];
    // attention calls per step: (mode, fused qkv stride or separate, forward count, backward count)
    const struct { const char *name; int mode, stride, nfwd, nbwd; } atts[] = {
        {"enc_full", 0, 3 * D, DEPTH, 0},       // permutation pass
        {"enc_causal", 1, 3 * D, DEPTH, DEPTH},
        {"dec_strict", 2, D, DEPTH, DEPTH},
    };

    // the configurations this machine runs natively
    config_t cfgs[4];
    int nc = 0;
    err_t ev = {0};
    const char *err = ev.msg;
    gemm_config_t g;
    if (!gemm_select(&g, GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0, &ev)) cfgs[nc++] = (config_t){"openblas_fp32", g, 0};
    if (!gemm_select(&g, GEMM_BACKEND_ONEDNN, GEMM_PREC_FP32, 0, &ev)) cfgs[nc++] = (config_t){"onednn_fp32", g, 0};
    if (!gemm_select(&g, GEMM_BACKEND_ONEDNN, GEMM_PREC_BF16, 0, &ev)) {
        cfgs[nc++] = (config_t){"onednn_bf16", g, 1};
        cfgs[nc++] = (config_t){"onednn_bf16_from_f32", g, 0};
    } else {
        printf("# bf16 not measured: %s\n", err);
    }
    if (only) {
        int k = 0;
        for (int i = 0; i < nc; i++) if (strcmp(cfgs[i].name, only) == 0) cfgs[k++] = cfgs[i];
        if (!k) { fprintf(stderr, "bench_gemm: --only %s: not a configuration this machine runs\n", only); return 2; }
        nc = k;
    }
    printf("# bench_gemm: preset tiny, batch %d (N = %ld rows), %d threads, oneDNN %s (ISA %s), best of %d\n", B, N,
           omp_get_max_threads(), gemm_onednn_built() ? "built" : "absent", gemm_onednn_isa(), reps);

    const long big = N * 4 * D > 768L * 768 ? N * 4 * D : 768L * 768;
    const long att = (long)B * NH * T * T;
    buf.A = xalloc(sizeof(float) * big); buf.B = xalloc(sizeof(float) * big);
    buf.C = xalloc(sizeof(float) * (big > att ? big : att));
    buf.C2 = xalloc(sizeof(float) * big);   // dQ, dK, dV: apart from the per-head blocks
    buf.Ah = xalloc(sizeof(bf16_t) * big); buf.Bh = xalloc(sizeof(bf16_t) * big);
    fill(buf.A, big, 1); fill(buf.B, big, 2); fill(buf.C, big > att ? big : att, 3); fill(buf.C2, big, 4);
    bf16_from_f32(buf.Ah, buf.A, big); bf16_from_f32(buf.Bh, buf.B, big);
    buf.nt = omp_get_max_threads();
    buf.scr = calloc((size_t)buf.nt, sizeof *buf.scr);
    for (int i = 0; i < buf.nt; i++) buf.scr[i] = xalloc(64);

    double step_flops = 0, step_time[4] = {0};
    for (int l = 0; l < nl; l++) {
        const layer_t *y = &layers[l];
        const gemm_shape_t fwd = {0, 1, y->rows, y->OC, y->C, y->C, y->C, y->OC, 1, 1};
        const gemm_shape_t dinp = {0, 0, y->rows, y->C, y->OC, y->OC, y->C, y->C, 1, 1};
        const gemm_shape_t dw = {1, 0, y->OC, y->C, y->rows, y->OC, y->C, y->C, 1, 1};
        const double fl = 2.0 * y->rows * y->C * y->OC;
        step_flops += fl * (y->nfwd + y->nbwd * (1 + y->dinp));
        for (int k = 0; k < nc; k++) {
            const char *impl;
            const double tf = time_linear(&cfgs[k], &fwd, reps, &impl), tw = time_linear(&cfgs[k], &dw, reps, &impl);
            const double ti = y->dinp ? time_linear(&cfgs[k], &dinp, reps, &impl) : 0;
            step_time[k] += y->nfwd * tf + y->nbwd * (tw + ti);
            printf("bench gemm_%s_%s_fwd_gflops: %.1f GFLOP/s\n", cfgs[k].name, y->name, fl / tf * 1e-9);
            if (y->dinp) printf("bench gemm_%s_%s_dinp_gflops: %.1f GFLOP/s\n", cfgs[k].name, y->name, fl / ti * 1e-9);
            printf("bench gemm_%s_%s_dw_gflops: %.1f GFLOP/s\n", cfgs[k].name, y->name, fl / tw * 1e-9);
            if (l == 0) printf("# %s: %s\n", cfgs[k].name, impl);
        }
    }
    for (size_t a = 0; a < sizeof atts / sizeof atts[0]; a++)
        for (int fwd = 1; fwd >= 0; fwd--) {
            const int count = fwd ? atts[a].nfwd : atts[a].nbwd;
            if (!count) continue;
            for (int k = 0; k < nc; k++) {
                double fl;
                const double t = time_attention(&cfgs[k], B, atts[a].mode, fwd, atts[a].stride, reps, &fl);
                step_time[k] += count * t;
                if (k == 0) step_flops += count * fl;
                printf("bench gemm_%s_attn_%s_%s_gflops: %.1f GFLOP/s\n", cfgs[k].name, atts[a].name, fwd ? "fwd" : "bwd",
                       fl / t * 1e-9);
            }
        }
    printf("# one step issues %.1f GFLOP of GEMMs\n", step_flops * 1e-9);
    for (int k = 0; k < nc; k++) {
        printf("bench gemm_%s_weighted_gflops: %.1f GFLOP/s\n", cfgs[k].name, step_flops / step_time[k] * 1e-9);
        printf("bench gemm_%s_step_gemm_ms: %.1f ms\n", cfgs[k].name, step_time[k] * 1e3);
    }
    for (int i = 0; i < buf.nt; i++) free(buf.scr[i]);
    free(buf.scr); free(buf.A); free(buf.B); free(buf.C); free(buf.C2); free(buf.Ah); free(buf.Bh);
    return 0;
}
