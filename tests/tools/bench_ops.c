/* Kernel timings for tests/bench/ops.sh: attention forward+backward per mask mode on the fused
 * qkv layout the encoder uses, plus a large SGEMM as the machine's reference rate.
 * Also: GELU and LayerNorm forward+backward on B·T rows of the tiny preset (768 and 192 wide),
 * the pixel target of B 224×224 images, and what each fusion of the model saves against the
 * unfused sequence it replaced, GEMM included, in fp32 and in bf16 (emulated here when the CPU
 * has no bf16: then the GEMM's conversions weigh in too) — best of a few runs:
 *   fc1 + bias + GELU   fused: GEMM (no bias) → bias_gelu_forward; unfused: bias preload → GEMM
 *                       adding to it → GELU pass
 *   proj + residual     fused: bias + residual preload → GEMM; unfused: bias preload → GEMM →
 *                       residual add pass
 *   LayerNorm → bf16    fused: LayerNorm writing bf16; unfused: LayerNorm in f32 → conversion
 *   qkv → bf16          fused: GEMM → bias_store writing bf16; unfused: bias preload → GEMM →
 *                       conversion
 * Usage: bench_ops [B T NH hd iters]   (default 32 197 3 64 10)
 * GFLOP/s count only useful work: 4·hd multiply-add FLOPs per visible (query, key) pair forward
 * (Q·Kᵀ, P·V) and 8·hd backward (dP, dV, dQ, dK); softmax work is not counted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#include <omp.h>
#include "core/clock.h"
#include "kernels/ops.h"

static void need(int rc, const err_t *e) {
    if (rc) { fprintf(stderr, "bench_ops: %s\n", e->msg); exit(2); }
}

/* A workspace for every thread (workspace_alloc), or the test ends. */
static void *make_ws(workspace_t *ws, size_t slot0, size_t slotn) {
    void *m = workspace_alloc(ws, slot0, slotn);
    if (!m) { fprintf(stderr, "bench_ops: out of memory\n"); exit(2); }
    return m;
}

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
    double *times = xmalloc(iters * sizeof(double));
    const gemm_config_t *gc = gemm_global_config();
    err_t e = {0};
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
        att_plan_t ap;
        need(attention_plan(&ap, gc, T, NH, hd, 3 * D, 3 * D, mode, 1, &e), &e);
        workspace_t ws;
        void *wsm = make_ws(&ws, ap.thread_bytes, ap.thread_bytes);
        for (int it = -1; it < n; it++) {   // one warm-up round
            double t0 = clock_now();
            attention_forward(out, att, qkv, qkv + D, qkv + 2 * D, B, &ap, &ws);
            double t1 = clock_now();
            attention_backward(dqkv, dqkv + D, dqkv + 2 * D, dout, att, qkv, qkv + D, qkv + 2 * D, B, &ap, &ws);
            double t2 = clock_now();
            if (it >= 0) { tf[it] = t1 - t0; tb[it] = t2 - t1; times[it] = t2 - t0; }
        }
        attention_plan_free(&ap);
        free(wsm);
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
            bias_gelu_forward(y, 0, x, NULL, N, H4);
            gelu_backward(dx, y, x, N * H4);
            double t1 = clock_now();
            layernorm_forward(y, 0, mu, rs, x, w, bb, N, C);
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
            pixel_target(tgt, scr, img, NULL, B, HW, HW, P, 9, 1.0, 1);
            double t = clock_now() - t0;
            if (it > 0 && t < tp) tp = t;
        }
        printf("bench pixel_target_B%d_224_ms: %.3f ms\n", B, 1e3 * tp);
        free(img); free(tgt); free(scr);
    }
    // the fusions, fp32 and bf16 (native where the CPU has it, else emulated)
    {
        const long N = (long)B * T;
        const int C = D, H4 = 4 * D;
        gemm_config_t cf[2] = {{GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0}, {GEMM_BACKEND_OPENBLAS, GEMM_PREC_BF16, 1}};
        gemm_config_t nat;
        if (gemm_select(&nat, GEMM_BACKEND_ONEDNN, GEMM_PREC_FP32, 0, &e) == 0) cf[0] = nat;
        if (gemm_select(&nat, GEMM_BACKEND_ONEDNN, GEMM_PREC_BF16, 0, &e) == 0) cf[1] = nat;
        float *in = xmalloc(N * H4 * sizeof(float)), *fx = xmalloc(N * H4 * sizeof(float)), *res = xmalloc(N * C * sizeof(float));
        float *wt = xmalloc((size_t)H4 * C * sizeof(float)), *bias = xmalloc(H4 * sizeof(float)), *lw = xmalloc(C * sizeof(float));
        void *act = xmalloc(N * H4 * sizeof(float)), *inh = xmalloc(N * H4 * sizeof(float)), *wh = xmalloc((size_t)H4 * C * sizeof(float));
        float *mu = xmalloc(N * sizeof(float)), *rs = xmalloc(N * sizeof(float)), *tmp = xmalloc(N * H4 * sizeof(float));
        memset(tmp, 0, N * H4 * sizeof(float));
        fill(in, N * H4, 11); fill(wt, (long)H4 * C, 12); fill(bias, H4, 13); fill(res, N * C, 14); fill(lw, C, 15);
        for (int k = 0; k < 2; k++) {
            const gemm_config_t *g = &cf[k];
            const int h = g->precision == GEMM_PREC_BF16;
            const char *tag = h ? "bf16" : "fp32";
            if (h) { bf16_from_f32(inh, in, N * H4); bf16_from_f32(wh, wt, (long)H4 * C); }
            else { memcpy(inh, in, N * H4 * sizeof(float)); memcpy(wh, wt, (size_t)H4 * C * sizeof(float)); }
            lin_plan_t up, ap, up2, ap2, uq, aq;   // fc1 (D→4D), proj (D→D), qkv (D→3D): unfused/fused plans
            need(linear_plan(&up, g, N, C, H4, LIN_ACCUMULATE, &e) || linear_plan(&ap, g, N, C, H4, 0, &e) ||
                 linear_plan(&up2, g, N, C, C, LIN_ACCUMULATE, &e) || linear_plan(&ap2, g, N, C, C, LIN_ACCUMULATE, &e) ||
                 linear_plan(&uq, g, N, C, 3 * C, LIN_ACCUMULATE, &e) || linear_plan(&aq, g, N, C, 3 * C, 0, &e), &e);
            size_t s0 = 0;
            const lin_plan_t *all[] = {&up, &ap, &up2, &ap2, &uq, &aq};
            for (int i = 0; i < 6; i++) if (linear_plan_scratch(all[i]) > s0) s0 = linear_plan_scratch(all[i]);
            workspace_t ws;
            void *wsm = make_ws(&ws, s0, 0);
            double best[8];
            for (int i = 0; i < 8; i++) best[i] = 1e30;
            for (int it = 0; it < 4; it++) {
                double t[9];
                t[0] = clock_now();
                linear_forward(fx, inh, wh, bias, NULL, N, C, H4, &up, &ws);                 // unfused fc1 + GELU
                bias_gelu_forward(h ? (void *)tmp : act, 0, fx, NULL, N, H4);
                if (h) bf16_from_f32(act, tmp, N * H4);
                t[1] = clock_now();
                linear_forward(fx, inh, wh, NULL, NULL, N, C, H4, &ap, &ws);                 // fused
                bias_gelu_forward(act, h, fx, bias, N, H4);
                t[2] = clock_now();
                linear_forward(fx, inh, wh, bias, NULL, N, C, C, &up2, &ws);                 // unfused residual
                #pragma omp parallel for schedule(static)
                for (long i = 0; i < N * C; i++) fx[i] += res[i];
                t[3] = clock_now();
                linear_forward(fx, inh, wh, bias, res, N, C, C, &ap2, &ws);                  // fused
                t[4] = clock_now();
                layernorm_forward(fx, 0, mu, rs, res, lw, bias, N, C);                       // unfused LN → bf16
                bf16_from_f32(act, fx, N * C);
                t[5] = clock_now();
                layernorm_forward(act, 1, mu, rs, res, lw, bias, N, C);                      // fused
                t[6] = clock_now();
                linear_forward(fx, inh, wh, bias, NULL, N, C, 3 * C, &uq, &ws);              // unfused qkv → bf16
                bf16_from_f32(act, fx, N * 3 * C);
                t[7] = clock_now();
                linear_forward(fx, inh, wh, NULL, NULL, N, C, 3 * C, &aq, &ws);              // fused
                bias_store(act, 1, fx, bias, N, 3 * C);
                t[8] = clock_now();
                if (it > 0)
                    for (int i = 0; i < 8; i++) if (t[i + 1] - t[i] < best[i]) best[i] = t[i + 1] - t[i];
            }
            printf("bench fuse_fc1_gelu_%s_unfused_ms: %.2f ms\n", tag, 1e3 * best[0]);
            printf("bench fuse_fc1_gelu_%s_fused_ms: %.2f ms\n", tag, 1e3 * best[1]);
            printf("bench fuse_proj_residual_%s_unfused_ms: %.2f ms\n", tag, 1e3 * best[2]);
            printf("bench fuse_proj_residual_%s_fused_ms: %.2f ms\n", tag, 1e3 * best[3]);
            if (h) {
                printf("bench fuse_layernorm_bf16_unfused_ms: %.2f ms\n", 1e3 * best[4]);
                printf("bench fuse_layernorm_bf16_fused_ms: %.2f ms\n", 1e3 * best[5]);
                printf("bench fuse_qkv_bf16_unfused_ms: %.2f ms\n", 1e3 * best[6]);
                printf("bench fuse_qkv_bf16_fused_ms: %.2f ms\n", 1e3 * best[7]);
            }
            printf("# fusions %s: %s\n", tag, gemm_config_name(g));
            for (int i = 0; i < 6; i++) linear_plan_free((lin_plan_t *)all[i]);
            free(wsm);
        }
        free(in); free(fx); free(res); free(wt); free(bias); free(lw); free(act); free(inh); free(wh); free(mu); free(rs); free(tmp);
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
    free(qkv); free(dqkv); free(out); free(dout); free(att); free(times);
    return 0;
}
