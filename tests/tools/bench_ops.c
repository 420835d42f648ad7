/* Kernel timings for tests/bench/ops.sh: attention forward+backward per mask mode on the fused
 * qkv layout the encoder uses, plus a large SGEMM as the machine's reference rate.
 * Also: GELU and LayerNorm forward+backward on B·T rows of the tiny preset (768 and 192 wide),
 * and the pixel target of B 224×224 images; best of a few runs.
 * Usage: bench_ops [B T NH hd iters]   (default 32 197 3 64 10)
 * GFLOP/s count only useful work: 4·hd multiply-add FLOPs per visible (query, key) pair forward
 * (Q·Kᵀ, P·V) and 8·hd backward (dP, dV, dQ, dK); softmax work is not counted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>
#include <omp.h>
#include "core/clock.h"
#include "kernels/ops.h"

static int parse_pos(const char *s, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v <= 0 || v > 100000) {
        fprintf(stderr, "bench_ops: %s '%s' is not a positive integer <= 100000\n", what, s);
        exit(2);
    }
    return (int)v;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "bench_ops: cannot allocate %zu bytes\n", n); exit(2); }
    return p;
}

static void fill(float *x, long n, unsigned seed) {
    for (long i = 0; i < n; i++) { seed = seed * 1664525u + 1013904223u; x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f; }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 1 && argc != 6) {
        fprintf(stderr, "usage: bench_ops [B T NH hd iters]\n");
        return 2;
    }
    int B = 32, T = 197, NH = 3, hd = 64, iters = 10;
    if (argc == 6) {
        B = parse_pos(argv[1], "B"); T = parse_pos(argv[2], "T"); NH = parse_pos(argv[3], "NH");
        hd = parse_pos(argv[4], "hd"); iters = parse_pos(argv[5], "iters");
    }
    const int D = NH * hd;
    const long nqkv = (long)B * T * 3 * D, nout = (long)B * T * D, natt = (long)B * NH * T * T;
    float *qkv = xmalloc(nqkv * sizeof(float)), *dqkv = xmalloc(nqkv * sizeof(float));
    float *out = xmalloc(nout * sizeof(float)), *dout = xmalloc(nout * sizeof(float));
    float *att = xmalloc(natt * sizeof(float));
    float *scratch = xmalloc(attention_scratch_floats(B, T, NH, hd) * sizeof(float));
    double *times = xmalloc(iters * sizeof(double));
    fill(qkv, nqkv, 1); fill(dout, nout, 2); fill(dqkv, nqkv, 3);
    printf("attention B=%d T=%d NH=%d hd=%d, fused qkv, %d threads, median of %d\n",
           B, T, NH, hd, omp_get_max_threads(), iters);
    const char *names[3] = {"full", "causal", "strict"};
    for (int mode = 0; mode < 3; mode++) {
        long nnz = 0;
        for (int i = 0; i < T; i++) nnz += attn_last_key(mode, i, T) + 1;
        const double flops_f = 4.0 * hd * nnz * B * NH, flops_b = 8.0 * hd * nnz * B * NH;
        double tf[64], tb[64];
        int n = iters < 64 ? iters : 64;
        for (int it = -1; it < n; it++) {   // one warm-up round
            double t0 = clock_now();
            attention_forward(out, att, qkv, qkv + D, qkv + 2 * D, 3 * D, 3 * D, B, T, NH, hd, mode);
            double t1 = clock_now();
            attention_backward(dqkv, dqkv + D, dqkv + 2 * D, scratch, dout, att, qkv, qkv + D, qkv + 2 * D,
                               3 * D, 3 * D, B, T, NH, hd, mode);
            double t2 = clock_now();
            if (it >= 0) { tf[it] = t1 - t0; tb[it] = t2 - t1; times[it] = t2 - t0; }
        }
        qsort(tf, n, sizeof(double), cmp_double);
        qsort(tb, n, sizeof(double), cmp_double);
        qsort(times, n, sizeof(double), cmp_double);
        double mf = tf[n / 2], mb = tb[n / 2], mt = times[n / 2];
        printf("bench attn_%s_fwd_ms: %.3f ms\n", names[mode], 1e3 * mf);
        printf("bench attn_%s_bwd_ms: %.3f ms\n", names[mode], 1e3 * mb);
        printf("bench attn_%s_fwd_gflops: %.1f GFLOP/s\n", names[mode], flops_f / mf * 1e-9);
        printf("bench attn_%s_bwd_gflops: %.1f GFLOP/s\n", names[mode], flops_b / mb * 1e-9);
        printf("bench attn_%s_fwdbwd_gflops: %.1f GFLOP/s\n", names[mode], (flops_f + flops_b) / mt * 1e-9);
    }
    // the elementwise kernels at the tiny preset's sizes (B·T = 32·197 rows)
    {
        const long N = (long)B * T;
        const int C = 192, H4 = 4 * C;
        float *x = xmalloc(N * H4 * sizeof(float)), *y = xmalloc(N * H4 * sizeof(float)), *dx = xmalloc(N * H4 * sizeof(float));
        float *w = xmalloc(C * sizeof(float)), *bb = xmalloc(C * sizeof(float)), *mu = xmalloc(N * sizeof(float)),
              *rs = xmalloc(N * sizeof(float)), *dw = xmalloc(C * sizeof(float)), *db = xmalloc(C * sizeof(float));
        fill(x, N * H4, 6); fill(w, C, 7); fill(bb, C, 8);
        for (long i = 0; i < N * H4; i++) dx[i] = 0;
        for (int i = 0; i < C; i++) dw[i] = db[i] = 0;
        double tg = 1e30, tl = 1e30;
        for (int it = 0; it < 5; it++) {
            double t0 = clock_now();
            gelu_forward(y, x, N * H4);
            gelu_backward(dx, y, x, N * H4);
            double t1 = clock_now();
            layernorm_forward(y, mu, rs, x, w, bb, N, C);
            layernorm_backward(dx, dw, db, x, x, w, mu, rs, N, C);
            double t2 = clock_now();
            if (it > 0) { tg = t1 - t0 < tg ? t1 - t0 : tg; tl = t2 - t1 < tl ? t2 - t1 : tl; }
        }
        printf("bench gelu_fwdbwd_%ldx%d_ms: %.3f ms\n", N, H4, 1e3 * tg);
        printf("bench layernorm_fwdbwd_%ldx%d_ms: %.3f ms\n", N, C, 1e3 * tl);
        free(x); free(y); free(dx); free(w); free(bb); free(mu); free(rs); free(dw); free(db);
        const int HW = 224, P = 16;
        const long nimg = (long)B * 3 * HW * HW;
        float *img = xmalloc(nimg * sizeof(float)), *tgt = xmalloc(nimg * sizeof(float)),
              *scr = xmalloc(pixel_target_scratch_floats(B, HW, HW, P) * sizeof(float));
        fill(img, nimg, 9);
        double tp = 1e30;
        for (int it = 0; it < 4; it++) {
            double t0 = clock_now();
            pixel_target(tgt, scr, img, B, HW, HW, P);
            double t = clock_now() - t0;
            if (it > 0 && t < tp) tp = t;
        }
        printf("bench pixel_target_B%d_224_ms: %.3f ms\n", B, 1e3 * tp);
        free(img); free(tgt); free(scr);
    }
    // reference: one large square SGEMM on all threads
    const int M = 1024;
    float *a = xmalloc((size_t)M * M * sizeof(float)), *b = xmalloc((size_t)M * M * sizeof(float)),
          *c = xmalloc((size_t)M * M * sizeof(float));
    fill(a, (long)M * M, 4); fill(b, (long)M * M, 5);
    double best = 1e30;
    for (int it = 0; it < 4; it++) {
        double t0 = clock_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, M, M, 1.0f, a, M, b, M, 0.0f, c, M);
        double t = clock_now() - t0;
        if (it > 0 && t < best) best = t;
    }
    printf("bench sgemm_1024_gflops: %.1f GFLOP/s\n", 2.0 * M * M * M / best * 1e-9);
    free(a); free(b); free(c);
    free(qkv); free(dqkv); free(out); free(dout); free(att); free(scratch); free(times);
    return 0;
}
