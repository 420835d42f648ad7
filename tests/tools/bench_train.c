/* Times full training steps (permutation pass + forward + backward + AdamW) on random
 * images and reports images/s, ms per phase, achieved GFLOP/s (SPEC §6 count), the sgemm
 * rate measured on the model's own GEMM shapes in the same run, their ratio, and peak RSS.
 * Usage: bench_train [--preset tiny] [--batch 32] [--steps 3] [--order semantic] */
#include <cblas.h>
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "core/clock.h"
#include "semaim/encoder.h"
#include "semaim/model.h"
#include "semaim/train_step.h"
#include "semaim/optim.h"
#include "semaim/rng.h"

/* GFLOP/s of out[N,OC] = in[N,C]·Wᵀ and its two backward GEMMs, as the model issues them. */
static double sgemm_rate(long N, int C, int OC, double *flop_out) {
    float *A = calloc((size_t)N * C, 4), *W = calloc((size_t)OC * C, 4), *O = calloc((size_t)N * OC, 4);
    for (long i = 0; i < N * C; i++) A[i] = (float)(i % 13) * 0.01f;
    for (long i = 0; i < (long)OC * C; i++) W[i] = (float)(i % 7) * 0.01f;
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t = clock_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1, A, C, W, C, 0, O, OC);   /* forward */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1, O, OC, W, C, 0, A, C);  /* dinp */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1, O, OC, A, C, 1, W, C);    /* dW */
        t = clock_now() - t;
        if (t < best) best = t;
    }
    free(A); free(W); free(O);
    *flop_out = 3 * 2.0 * N * C * OC;
    return *flop_out / best / 1e9;
}

int main(int argc, char **argv) {
    const char *preset = "tiny", *order_s = "semantic";
    int B = 32, steps = 3;
    static struct option opts[] = {{"preset", 1, 0, 'p'}, {"batch", 1, 0, 'b'}, {"steps", 1, 0, 's'},
                                   {"order", 1, 0, 'o'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'p') preset = optarg;
        else if (ch == 'b') B = atoi(optarg);
        else if (ch == 's') steps = atoi(optarg);
        else if (ch == 'o') order_s = optarg;
        else { fprintf(stderr, "bench_train: bad option\n"); return 2; }
    }
    semaim_config_t c;
    err_t err_v = {0}; char *err = err_v.msg;
    order_t order;
    if (config_preset(preset, &c) || order_parse(order_s, &order) || config_validate(&c, B, &err_v) || steps < 1) {
        fprintf(stderr, "bench_train: bad preset, order, batch or steps\n");
        return 2;
    }
    model_t m;
    if (model_init(&m, &c, 1, &err_v)) { fprintf(stderr, "bench_train: %s\n", err); return 2; }
    acts_t *a = acts_create(&m.cfg, B, ACTS_PRETRAIN, 0);
    if (!a) { fprintf(stderr, "bench_train: out of memory\n"); return 2; }
    int H = c.image, L = m.d.L;
    float *img = malloc(sizeof(float) * B * 3 * H * H), *noise = malloc(sizeof(float) * B * L);
    int *ranks = malloc(sizeof(int) * B * L);
    rng_t r = rng_make(rng_key(1, 2, 3, 4, 5));
    for (long i = 0; i < (long)B * 3 * H * H; i++) img[i] = 2 * rng_nextf(&r) - 1;
    for (long i = 0; i < (long)B * L; i++) noise[i] = rng_nextf(&r);
    optim_cfg_t oc = optim_defaults();
    double tp = 0, tf = 0, tb = 0, to = 0;
    for (int s = -1; s < steps; s++) {   /* step -1 warms up */
        double ph[3], t0 = clock_now();
        float loss = train_step(&m, a, order, img, noise, B, ranks, ph);
        double t3 = clock_now();
        double gn = grad_norm(m.w.grads, m.w.nparams);
        optim_update(&m.w, &oc, 1e-4, s + 2, gn);
        double t4 = clock_now();
        if (s >= 0) { tp += ph[0]; tf += ph[1]; tb += ph[2]; to += t4 - t3; }
        fprintf(stderr, "step %d: loss %.4f, %.2f s\n", s, loss, t4 - t0);
    }
    double total = tp + tf + tb + to, ips = (double)B * steps / total;
    double flops = semaim_flops_per_image(&m), gflops = flops * ips / 1e9;
    /* the model's GEMM shapes, weighted by their FLOPs */
    long N = (long)B * m.d.T;
    int D = m.d.D;
    int shapes[][2] = {{D, 3 * D}, {D, D}, {D, 4 * D}, {4 * D, D}, {4 * D, m.d.PD}};
    double fsum = 0, tsum = 0;
    for (int i = 0; i < 5; i++) {
        double f, rate = sgemm_rate(N, shapes[i][0], shapes[i][1], &f);
        fsum += f; tsum += f / (rate * 1e9);
    }
    double sgemm = fsum / tsum / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bench train_%s_b%d_images_per_s: %.3f images/s\n", preset, B, ips);
    printf("bench train_%s_b%d_ms_permutation: %.1f ms\n", preset, B, 1e3 * tp / steps);
    printf("bench train_%s_b%d_ms_forward: %.1f ms\n", preset, B, 1e3 * tf / steps);
    printf("bench train_%s_b%d_ms_backward: %.1f ms\n", preset, B, 1e3 * tb / steps);
    printf("bench train_%s_b%d_ms_adamw: %.1f ms\n", preset, B, 1e3 * to / steps);
    printf("bench train_%s_b%d_gflops: %.1f GFLOP/s\n", preset, B, gflops);
    printf("bench train_%s_b%d_sgemm_gflops: %.1f GFLOP/s\n", preset, B, sgemm);
    printf("bench train_%s_b%d_fraction_of_sgemm: %.3f ratio\n", preset, B, gflops / sgemm);
    printf("bench train_%s_b%d_peak_rss: %.2f GiB\n", preset, B, ru.ru_maxrss / 1048576.0);
    printf("# %d threads, %.1f GFLOP per image, activations %.2f GiB, %ld parameters\n", omp_get_max_threads(),
           flops / 1e9, acts_bytes(a) / 1073741824.0, m.w.nparams);
    free(img); free(noise); free(ranks);
    acts_free(a);
    model_free(&m);
    return 0;
}
