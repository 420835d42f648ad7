/* semaim-train: SemAIM pretraining as an MPI job. Every rank holds a model replica, reads its
 * own shards through the background loader, computes the semantic orders of its images,
 * and averages gradients with the ring all-reduce; rank 0 writes checkpoints and metrics.
 *
 * A step: next batch → orders → forward/backward → one small all-reduce that agrees on
 * loss, errors and stop requests → gradient all-reduce → clip → AdamW. Everything random
 * derives from (seed, epoch, global sample id), so a run is reproducible and the same global
 * batch gives the same losses on any number of ranks. The stages shared with fine-tuning are
 * the run helpers of semaim/run.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/clock.h"
#include "semaim/dist.h"
#include "semaim/ema.h"
#include "semaim/loader.h"
#include "semaim/metrics.h"
#include "semaim/monitor.h"
#include "semaim/run.h"
#include "semaim/teacher_io.h"
#include "semaim/train_step.h"

typedef struct {
    const char *preset, *order, *data, *out, *allreduce, *resume, *assign, *monitor_data, *gemm, *precision;
    const char *blur, *norm_pix, *loss, *order_signal, *target, *teacher;
    int image, patch, width, depth, dec_depth, heads, batch, keep, log_every, check_every, loader_threads, ema_order;
    long epochs, steps, warmup_steps, ckpt_every, segment, max_steps_this_run, monitor_every, monitor_bank, monitor_queries;
    double base_lr, min_lr, warmup_epochs, weight_decay, clip, beta1, beta2;
    long seed;
    double stall_timeout;
} settings_t;

/* Checks the settings and resolves the model config (the sizes given on top of the preset,
 * written back so settings.json records them), the objective, the order and the assignment
 * rule. */
static int resolve(settings_t *s, semaim_config_t *cfg, target_cfg_t *tgt, order_t *order, int *assign, err_t *e) {
    if (!s->data) return err_set(e, ERR_INPUT, "--data is required");
    if (config_preset(s->preset, cfg)) return err_set(e, ERR_INPUT, "unknown --preset '%s'", s->preset);
    if (s->image) cfg->image = s->image;
    if (s->patch) cfg->patch = s->patch;
    if (s->width) cfg->width = s->width;
    if (s->depth) cfg->depth = s->depth;
    if (s->dec_depth) cfg->dec_depth = s->dec_depth;
    if (s->heads) cfg->heads = s->heads;
    s->image = cfg->image; s->patch = cfg->patch; s->width = cfg->width;
    s->depth = cfg->depth; s->dec_depth = cfg->dec_depth; s->heads = cfg->heads;
    if (config_validate(cfg, s->batch, e)) return -1;
    *tgt = target_defaults();
    if (target_parse_blur(s->blur, tgt, e) || target_parse_norm_pix(s->norm_pix, tgt, e) ||
        target_parse_loss(s->loss, tgt, e) || target_parse_signal(s->order_signal, tgt, e) ||
        target_parse_kind(s->target, tgt, e))
        return -1;
    if (tgt->kind == TARGET_TEACHER && !s->teacher)
        return err_set(e, ERR_INPUT, "--target teacher needs --teacher FILE.safetensors");
    if (tgt->kind != TARGET_TEACHER && s->teacher)
        return err_set(e, ERR_INPUT, "--teacher %s is only used with --target teacher (this run has --target %s)", s->teacher,
                       s->target);
    if (tgt->kind == TARGET_TEACHER && tgt->signal == SIGNAL_SELF)
        return err_set(e, ERR_INPUT, "--order-signal self is not available with --target teacher (the order comes from "
                       "the teacher's tokens: cls or gap)");
    if (order_parse(s->order, order)) return err_set(e, ERR_INPUT, "unknown --order '%s'", s->order);
    tgt->ema_order = s->ema_order;
    if (s->ema_order && !order_uses_model(*order))
        return err_set(e, ERR_INPUT, "--ema-order: the %s order does not come from the model (it needs semantic or "
                       "similarity)", s->order);
    if (strcmp(s->allreduce, "ring") && strcmp(s->allreduce, "mpi"))
        return err_set(e, ERR_INPUT, "--allreduce must be ring or mpi, not '%s'", s->allreduce);
    if ((*assign = loader_assign_from_name(s->assign)) < 0) return err_set(e, ERR_INPUT, "--assign must be auto, shards or deal");
    return 0;
}

int main(int argc, char **argv) {
    run_t run;
    run_init(&run, &argc, &argv, "semaim-train", CKPT_PRETRAIN);
    settings_t s = {
        .preset = "tiny", .order = "semantic", .data = NULL, .out = "runs/semaim", .allreduce = "ring",
        .resume = "auto", .assign = "auto", .gemm = "auto", .precision = "fp32", .batch = 64, .keep = 3, .log_every = 10, .check_every = 100,
        .loader_threads = 1, .epochs = 800, .steps = 0, .warmup_steps = -1, .ckpt_every = 1000, .segment = 0,
        .max_steps_this_run = 0, .base_lr = 2e-4, .min_lr = 0, .warmup_epochs = 30, .weight_decay = 0.05,
        .clip = 3.0, .beta1 = 0.9, .beta2 = 0.95, .seed = 0, .stall_timeout = 1800, .monitor_data = NULL, .blur = "9,1", .norm_pix = "on", .loss = "l2",
        .order_signal = "cls", .target = "pixel", .teacher = NULL,
        .monitor_every = 500, .monitor_bank = 2000, .monitor_queries = 1000};
    option_t opts[] = {
        {"config", OPT_STRING, &(const char *){NULL}, "settings file of 'name = value' lines (flags override it)", 0, 0, 0},
        {"preset", OPT_STRING, &s.preset, "model preset: tiny, small, base, large", 0, 0, 0},
        {"image", OPT_INT, &s.image, "image size; 0 = the preset's", 1, 8192, 0},
        {"patch", OPT_INT, &s.patch, "patch size; 0 = the preset's", 1, 8192, 0},
        {"width", OPT_INT, &s.width, "embedding width D; 0 = the preset's", 1, 16384, 0},
        {"depth", OPT_INT, &s.depth, "encoder depth; 0 = the preset's", 1, 1024, 0},
        {"dec-depth", OPT_INT, &s.dec_depth, "decoder depth, divides depth; 0 = the preset's", 1, 1024, 0},
        {"heads", OPT_INT, &s.heads, "attention heads; 0 = the preset's", 1, 1024, 0},
        {"data", OPT_STRING, &s.data, "folder with train/train-*.h5 shards (semaim-prep output) [required]", 0, 0, 0},
        {"out", OPT_STRING, &s.out, "run folder: settings, metrics, checkpoints", 0, 0, 0},
        {"batch", OPT_INT, &s.batch, "images per rank per step (global batch = batch x ranks)", 1, 1 << 20, 0},
        {"epochs", OPT_LONG, &s.epochs, "training length in epochs", 1, 1e9, 0},
        {"steps", OPT_LONG, &s.steps, "training length in steps (overrides --epochs when > 0)", 0, 1e12, 0},
        {"max-steps-this-run", OPT_LONG, &s.max_steps_this_run,
         "stop (with a checkpoint) after this many steps in this invocation; 0 = no limit", 0, 1e12, 0},
        {"base-lr", OPT_DOUBLE, &s.base_lr, "lr per 256 images: lr = base-lr x global batch / 256", 0, 10, 0},
        {"min-lr", OPT_DOUBLE, &s.min_lr, "lr at the end of the cosine", 0, 10, 0},
        {"warmup-epochs", OPT_DOUBLE, &s.warmup_epochs, "linear warmup length in epochs, at most a fifth of the run",
         0, 1e9, 0},
        {"warmup-steps", OPT_LONG, &s.warmup_steps, "warmup in steps (overrides --warmup-epochs when >= 0)", -1, 1e12, 0},
        {"weight-decay", OPT_DOUBLE, &s.weight_decay, "AdamW weight decay (not on biases and norms)", 0, 10, 0},
        {"clip", OPT_DOUBLE, &s.clip, "global gradient-norm clip; 0 = off", 0, 1e9, 0},
        {"beta1", OPT_DOUBLE, &s.beta1, "AdamW beta1", 0, 1, 0},
        {"beta2", OPT_DOUBLE, &s.beta2, "AdamW beta2", 0, 1, 0},
        {"order", OPT_STRING, &s.order, "prediction order: semantic, raster, stochastic, similarity, center", 0, 0, 0},
        {"target", OPT_STRING, &s.target,
         "what the head predicts: pixel (SPEC's pixel target), inference (the model's own encoder tokens, no "
         "gradient), ema, teacher (a frozen ViT from --teacher)", 0, 0, 0},
        {"teacher", OPT_STRING, &s.teacher,
         "--target teacher: the frozen ViT, a timm/DINO or OpenAI CLIP safetensors file (layout from the names)", 0, 0,
         0},
        {"blur", OPT_STRING, &s.blur, "pixel target's Gaussian blur K,SIGMA (odd K 1..63, SIGMA > 0) or none", 0, 0, 0},
        {"norm-pix", OPT_STRING, &s.norm_pix, "pixel target's per-patch standardisation: on or off", 0, 0, 0},
        {"loss", OPT_STRING, &s.loss, "loss on the pixel target: l2 (mean squared) or l1 (mean absolute)", 0, 0, 0},
        {"order-signal", OPT_STRING, &s.order_signal,
         "semantic/similarity orders' signal: cls (cls-token cosine), gap (mean-token cosine), self (last block's cls "
         "attention)", 0, 0, 0},
        {"ema-order", OPT_FLAG, &s.ema_order,
         "take the semantic/similarity order from the EMA of the weights (decay 0.999 -> 0.9999 over 100 epochs) "
         "instead of the live ones; costs one more parameter buffer", 0, 0, 0},
        {"seed", OPT_LONG, &s.seed, "run seed (init, data order, augmentation, orders)", 0, 9.2e18, 0},
        {"ckpt-every", OPT_LONG, &s.ckpt_every, "checkpoint every N steps (and at the end)", 1, 1e12, 0},
        {"keep", OPT_INT, &s.keep, "checkpoints kept", 1, 1000000, 0},
        {"resume", OPT_STRING, &s.resume, "auto (newest valid checkpoint in --out), no, or a checkpoint path", 0, 0, 0},
        {"log-every", OPT_INT, &s.log_every, "human-readable line on stdout every N steps", 1, 1 << 30, 0},
        {"check-every", OPT_INT, &s.check_every, "compare parameter checksums across ranks every N steps", 1, 1 << 30, 0},
        {"allreduce", OPT_STRING, &s.allreduce, "gradient all-reduce: ring or mpi (MPI_Allreduce)", 0, 0, 0},
        {"segment", OPT_LONG, &s.segment, "ring segment in floats; 0 = default", 0, 1 << 30, 0},
        {"assign", OPT_STRING, &s.assign, "shards to ranks: auto, shards (shard k -> rank k mod N) or deal", 0, 0, 0},
        {"loader-threads", OPT_INT, &s.loader_threads, "augmentation threads in the loader thread", 1, 256, 0},
        {"stall-timeout", OPT_DOUBLE, &s.stall_timeout,
         "abort the job (exit 1) when no step completes in this many seconds; 0 = off", 0, 1e9, 0},
        {"monitor-data", OPT_STRING, &s.monitor_data,
         "k-NN monitor: shards folder with train/ (bank) and val/ (queries); default none (off)", 0, 0, 0},
        {"monitor-every", OPT_LONG, &s.monitor_every,
         "k-NN monitor every N steps (and at step 0 and the last step); 0 = off", 0, 1e12, 0},
        {"monitor-bank", OPT_LONG, &s.monitor_bank, "k-NN monitor: labelled bank, the first N train images", 1, 1e9, 0},
        {"monitor-queries", OPT_LONG, &s.monitor_queries, "k-NN monitor: queries, the first N val images", 1, 1e9, 0},
        COMPUTE_OPTIONS(s.gemm, s.precision),
    };
    int nopt = sizeof opts / sizeof opts[0];
    run_parse(&run, opts, nopt, argc, argv, 1,
              "semaim-train --data DIR [--out DIR] [options]\n"
              "SemAIM pretraining; run under mpirun/srun for several ranks.\n"
              "Exit codes: 0 done or stopped by SIGUSR1/SIGTERM with a checkpoint, 1 runtime error,\n"
              "2 bad input, 3 loss or gradients not finite.");

    /* settings: every rank parsed the same argv, so every rank reaches the same verdict */
    err_t e = {0};
    semaim_config_t cfg;
    target_cfg_t tgt;
    order_t order = ORDER_SEMANTIC;
    int assign = LOADER_ASSIGN_AUTO;
    resolve(&s, &cfg, &tgt, &order, &assign, &e);
    run_agree(&run, &e);
    run_compute(&run, &s.gemm, &s.precision);   /* before the model: a bf16 model keeps bf16 weights */
    /* the teacher: every rank reads the file (a read-only file on a shared file system, and no
     * broadcast of its weights to write), checked before anything of the run is written */
    teacher_t teach = {0};
    if (tgt.kind == TARGET_TEACHER) {
        if (teacher_load(&teach, s.teacher, cfg.image, cfg.patch, &e) == 0) {
            char line[256];
            if (run.rank == 0) printf("semaim-train: teacher %s: %s\n", s.teacher, teacher_describe(&teach.a, line, sizeof line));
            target_set_teacher(&tgt, s.teacher, teach.a.layout, teach.a.out, &e);
        }
    }
    run_agree(&run, &e);
    run_open_folder(&run, s.out);

    /* model (same seed on every rank → same init; resume overrides it), data */
    model_t m;
    ema_t ema = {0};   /* the EMA teacher, kept only when the objective needs it */
    const int use_ema = tgt.ema_order || tgt.kind == TARGET_EMA;
    /* the EMA buffer now, so the checkpoint id and the resume see it; its shadow after the resume */
    if (model_init_target(&m, &cfg, &tgt, (uint64_t)s.seed, &e) == 0 && use_ema) params_attach_ema(&m.w, &e);
    run_agree(&run, &e);
    loader *ld = NULL;
    loader_config lc = {.data_dir = s.data, .split = "train", .image_size = cfg.image, .batch = s.batch,
                        .seed = (uint64_t)s.seed, .rank = run.rank, .world = run.world, .train = 1, .assign = assign,
                        .threads = s.loader_threads};
    loader_open(&ld, &lc, &e);
    run_agree(&run, &e);
    long spe = loader_steps_per_epoch(ld);
    run.total_steps = s.steps > 0 ? s.steps : s.epochs * spe;
    long warmup = optim_warmup_iters(s.warmup_epochs, s.warmup_steps, spe, run.total_steps, OPTIM_WARMUP_MAX_FRACTION);
    optim_cfg_t oc = {s.base_lr, s.min_lr, s.weight_decay, s.beta1, s.beta2, 1e-8, s.clip, warmup, run.total_steps};
    run.global_batch = (long)s.batch * run.world;
    run.log_every = s.log_every; run.check_every = s.check_every; run.ckpt_every = s.ckpt_every;
    run.keep = s.keep; run.max_steps_this_run = s.max_steps_this_run; run.stall_timeout = s.stall_timeout;
    double peak_lr = optim_peak_lr(&oc, run.global_batch);

    /* resume: rank 0 reads, everyone receives the same bytes */
    ckpt_model_t id = ckpt_pretrain(&m);
    ckpt_state_t st = {0, 0, 0, (uint64_t)s.seed, run.world, s.batch};
    int found = run_resume(&run, s.resume, &id, &m.w, &st, "seed");
    if (use_ema) ema_init(&ema, &m, &e);   /* over the resumed EMA: its bf16 copy is made from it */
    run_agree(&run, &e);
    /* the EMA's tokens are the targets with --target ema, the order its with --ema-order */
    target_src_t src = {.encoder = tgt.kind == TARGET_EMA ? &ema.m : NULL, .order = tgt.ema_order ? &ema.m : NULL};
    if (found) {
        loader_seek(ld, (int)st.epoch, st.epoch_step, &e);
        run_agree(&run, &e);
    }

    acts_t *a = acts_create(&cfg, s.batch, ACTS_PRETRAIN, m.out, &e);
    if (a && tgt.kind == TARGET_TEACHER) {
        src.teacher = &teach;
        src.tacts = teacher_acts_create(&teach, s.batch, &e);
    }
    int L = m.d.L;
    float *noise = malloc(sizeof(float) * s.batch * L);
    int *ranks = malloc(sizeof(int) * s.batch * L);
    if (a && (!noise || !ranks)) err_set(&e, ERR_RUNTIME, "out of memory for activations");
    run_agree(&run, &e);
    /* the k-NN monitor: its loaders, feature rows and arena are made here, once */
    monitor_t *mon = NULL;
    if (s.monitor_data && s.monitor_every > 0) {
        monitor_cfg_t mc = {s.monitor_data, s.monitor_bank, s.monitor_queries, 20, 0.07, s.batch};
        if (monitor_open(&mon, &mc, &m, run.rank, run.world, &e))
            err_prefix(&e, "--monitor-data");
    }
    run_agree(&run, &e);
    buf_t extra = {0};
    metrics_num(&extra, MET_GFLOP_PER_IMAGE, "%.4f", train_step_flops_per_image(&m, &src, order) / 1e9);
    run_start(&run, &m.w, spe, peak_lr, !strcmp(s.allreduce, "mpi"), s.segment, extra.s,
              found ? "resuming" : "from scratch");
    buf_free(&extra);

    int failed = mon && run_monitor_due(&run, s.monitor_every, run.step) && run_monitor(&run, mon, &m, run.step);
    while (!failed && run.step < run.total_steps) {
        double t0 = clock_now(), waited = 0;
        const loader_batch *bt = NULL;
        err_t local = {0};
        run_phase(&run, WATCHDOG_DATA);
        loader_next(ld, &bt, &waited, &local);
        double t1 = clock_now();
        float loss = 0;
        run_phase(&run, WATCHDOG_COMPUTE);
        if (!local.kind) {
            /* order noise per (epoch, sample): identical whichever rank holds the sample */
            order_noise(noise, (uint64_t)s.seed, bt->epoch, bt->ids, s.batch, L);
            loss = train_step(&m, a, &src, order, bt->images, noise, s.batch, ranks, NULL);
        }
        double t2 = clock_now(), gloss;
        run_phase(&run, WATCHDOG_ALLREDUCE);
        if (run_step_agree(&run, loss, &local, &gloss) || run_check_finite(&run, "loss", gloss)) break;
        if (run_allreduce(&run, &m.w)) break;
        double t3 = clock_now();
        run_phase(&run, WATCHDOG_COMPUTE);
        double lr, gn;
        if (run_update(&run, &m.w, &oc, &lr, &gn)) break;
        if (use_ema) ema_update(&ema, m.w.params, ema_decay(run.step, spe));
        double t4 = clock_now();
        /* the monitor sees the weights of this step before its line is written, so that line can show it */
        if (mon && run_monitor_due(&run, s.monitor_every, run.step + 1) && run_monitor(&run, mon, &m, run.step + 1)) break;
        run_step_done(&run, ld, &st, bt->epoch, gloss, lr, gn, &(run_times_t){t1 - t0, (t2 - t1) + (t4 - t3), t3 - t2, t4 - t0});
        if (run_check_replicas(&run, &m.w)) break;
        run_phase(&run, WATCHDOG_CHECKPOINT);
        if (run_checkpoint(&run, &id, &m.w, &st) || run.stop) break;
    }
    int code = run_end(&run);
    if (run.rank == 0 && code == 0) printf("semaim-train: run folder %s (metrics.jsonl, settings.json, checkpoints)\n", s.out);
    loader_close(ld);
    monitor_close(mon);
    acts_free(a);
    teacher_acts_free(src.tacts);
    teacher_free(&teach);
    free(noise); free(ranks);
    ema_free(&ema);
    model_free(&m);
    dist_finish(code);
}
