/* Times full training steps (permutation pass + forward + backward + AdamW) on random images
 * for one compute choice and reports images/s, ms per phase, achieved GFLOP/s (SPEC §6 count),
 * the GEMMs' own rate inside the step and the share of the step spent outside GEMMs (every
 * gemm_run timed: kernels/gemm.h), and peak RSS. tests/bench/train.sh sets these against the
 * GEMM rate of the same backend and precision on the model's shapes (bench_gemm).
 * Usage: bench_train [--preset tiny] [--batch 32] [--steps 3] [--order semantic]
 *                    [--gemm auto] [--precision fp32] [--label NAME]
 *                    [--target pixel|inference|ema|teacher] [--teacher FILE.safetensors]
 * --target ema keeps the EMA teacher (ema.h): its pass gives the targets and its update runs
 * after AdamW (counted in the AdamW phase), as in semaim-train. With --target teacher the
 * teacher's forward is part of the permutation phase (it gives the order and the targets), as
 * in semaim-train.
 * Figures are named train_<preset>_b<batch>_<label>_* (label: backend_precision by default).
 * An unsupported --gemm/--precision prints one line and exits 2. */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "core/clock.h"
#include "kernels/gemm.h"
#include "semaim/compute.h"
#include "semaim/ema.h"
#include "semaim/encoder.h"
#include "semaim/model.h"
#include "semaim/optim.h"
#include "semaim/rng.h"
#include "semaim/teacher_io.h"
#include "semaim/train_step.h"

int main(int argc, char **argv) {
    const char *preset = "tiny", *order_s = "semantic", *gemm = "auto", *precision = "fp32", *label = NULL;
    const char *target = "pixel", *teacher_path = NULL;
    int B = 32, steps = 3;
    static struct option opts[] = {{"preset", 1, 0, 'p'}, {"batch", 1, 0, 'b'}, {"steps", 1, 0, 's'}, {"order", 1, 0, 'o'},
                                   {"gemm", 1, 0, 'g'}, {"precision", 1, 0, 'r'}, {"label", 1, 0, 'l'},
                                   {"target", 1, 0, 't'}, {"teacher", 1, 0, 'e'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'p') preset = optarg;
        else if (ch == 'b') B = atoi(optarg);
        else if (ch == 's') steps = atoi(optarg);
        else if (ch == 'o') order_s = optarg;
        else if (ch == 'g') gemm = optarg;
        else if (ch == 'r') precision = optarg;
        else if (ch == 'l') label = optarg;
        else if (ch == 't') target = optarg;
        else if (ch == 'e') teacher_path = optarg;
        else { fprintf(stderr, "bench_train: bad option\n"); return 2; }
    }
    semaim_config_t c;
    err_t err_v = {0};
    const char *err = err_v.msg;
    order_t order;
    target_cfg_t tgt = target_defaults();
    if (config_preset(preset, &c) || order_parse(order_s, &order) || config_validate(&c, B, &err_v) || steps < 1 ||
        target_parse_kind(target, &tgt, &err_v)) {
        fprintf(stderr, "bench_train: bad preset, order, batch, steps or target\n");
        return 2;
    }
    gemm_config_t gc;
    if (gemm_setup(gemm, precision, &gc, &err_v)) { fprintf(stderr, "bench_train: %s\n", err); return 2; }
    char name[64];
    snprintf(name, sizeof name, "%s_b%d_%s_%s", preset, B, label ? label : gemm_backend_name(gc.backend),
             label ? "" : gemm_precision_name(&gc));
    if (label) name[strlen(name) - 1] = 0;   // no precision after a label: drop the trailing '_'
    for (char *q = name; *q; q++) if (*q == '-') *q = '_';
    teacher_t teach = {0};
    target_src_t src = {NULL, NULL, NULL, NULL};
    if ((tgt.kind == TARGET_TEACHER) != (teacher_path != NULL)) {
        fprintf(stderr, "bench_train: --target teacher goes with --teacher FILE\n");
        return 2;
    }
    if (teacher_path && (teacher_load(&teach, teacher_path, c.image, c.patch, &err_v) ||
                         target_set_teacher(&tgt, teacher_path, teach.a.layout, teach.a.out, &err_v))) {
        fprintf(stderr, "bench_train: %s\n", err);
        return 2;
    }
    model_t m;
    ema_t ema = {0};
    if (model_init_target(&m, &c, &tgt, 1, &err_v) || (tgt.kind == TARGET_EMA && ema_init(&ema, &m, &err_v))) {
        fprintf(stderr, "bench_train: %s\n", err);
        return 2;
    }
    src.encoder = tgt.kind == TARGET_EMA ? &ema.m : NULL;
    acts_t *a = acts_create(&m.cfg, B, ACTS_PRETRAIN, m.out, &err_v);
    if (!a) { fprintf(stderr, "bench_train: %s\n", err); return 2; }
    if (teacher_path) {
        src.teacher = &teach;
        if (!(src.tacts = teacher_acts_create(&teach, B, &err_v))) { fprintf(stderr, "bench_train: %s\n", err); return 2; }
    }
    int H = c.image, L = m.d.L;
    float *img = malloc(sizeof(float) * B * 3 * H * H), *noise = malloc(sizeof(float) * B * L);
    int *ranks = malloc(sizeof(int) * B * L);
    rng_t r = rng_make(rng_key(1, 2, 3, 4, 5));
    for (long i = 0; i < (long)B * 3 * H * H; i++) img[i] = 2 * rng_nextf(&r) - 1;
    for (long i = 0; i < (long)B * L; i++) noise[i] = rng_nextf(&r);
    optim_cfg_t oc = optim_defaults();
    double tp = 0, tf = 0, tb = 0, to = 0;
    for (int s = -1; s < steps; s++) {   /* step -1 warms up */
        if (s == 0) gemm_timing(1);
        double ph[3], t0 = clock_now();
        float loss = train_step(&m, a, &src, order, img, noise, B, ranks, ph);
        double t3 = clock_now();
        double gn = grad_norm(m.w.grads, m.w.nparams);
        optim_update(&m.w, &oc, 1e-4, s + 2, gn);
        if (tgt.kind == TARGET_EMA) ema_update(&ema, m.w.params, ema_decay(s + 1, 1000));
        double t4 = clock_now();
        if (s >= 0) { tp += ph[0]; tf += ph[1]; tb += ph[2]; to += t4 - t3; }
        fprintf(stderr, "step %d: loss %.4f, %.2f s\n", s, loss, t4 - t0);
    }
    const gemm_timing_t gt = gemm_timing_read();
    gemm_timing(0);
    const int nt = omp_get_max_threads();
    double total = tp + tf + tb + to, ips = (double)B * steps / total;
    /* the student's FLOPs only: a teacher's forward is extra work the figure leaves out */
    double flops = train_step_flops_per_image(&m, &src, order), gflops = flops * ips / 1e9;
    /* GEMMs run from parallel regions count their thread time: a team's wall time is that over
     * the threads (the region's work is split evenly enough for a benchmark figure) */
    const double gemm_s = gt.outer_s + gt.inner_thread_s / nt;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bench train_%s_images_per_s: %.3f images/s\n", name, ips);
    printf("bench train_%s_ms_permutation: %.1f ms\n", name, 1e3 * tp / steps);
    printf("bench train_%s_ms_forward: %.1f ms\n", name, 1e3 * tf / steps);
    printf("bench train_%s_ms_backward: %.1f ms\n", name, 1e3 * tb / steps);
    printf("bench train_%s_ms_adamw: %.1f ms\n", name, 1e3 * to / steps);
    printf("bench train_%s_gflops: %.1f GFLOP/s\n", name, gflops);
    printf("bench train_%s_gemm_ms_in_step: %.1f ms\n", name, 1e3 * gemm_s / steps);
    printf("bench train_%s_gemm_gflops_in_step: %.1f GFLOP/s\n", name, gt.flop / gemm_s / 1e9);
    printf("bench train_%s_outside_gemm_fraction: %.3f ratio\n", name, 1 - gemm_s / total);
    printf("bench train_%s_peak_rss: %.2f GiB\n", name, ru.ru_maxrss / 1048576.0);
    printf("# %s: %d threads, %s (oneDNN ISA %s), %.1f GFLOP per image, activations %.2f GiB, %ld parameters, "
           "%ld GEMM runs per step\n", name, nt, gemm_config_name(&gc), gemm_onednn_isa(), flops / 1e9,
           acts_bytes(a) / 1073741824.0, m.w.nparams, gt.runs / steps);
    free(img); free(noise); free(ranks);
    acts_free(a);
    ema_free(&ema);
    teacher_acts_free(src.tacts);
    teacher_free(&teach);
    model_free(&m);
    return 0;
}
