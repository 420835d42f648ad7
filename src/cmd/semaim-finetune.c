/* semaim-finetune: supervised fine-tuning of a pretrained encoder (SPEC §5) as an MPI job —
 * the fine-tuning classifier (semaim/finetune.h) trained with the same run helpers as
 * pretraining (semaim/run.h): checkpoints (ft-*.bin), resume, signals, metrics; top-1/top-5
 * on the val split at the end of every --eval-every-th epoch and of the run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/buf.h"
#include "core/clock.h"
#include "data/augment.h"
#include "data/mixup.h"
#include "semaim/dist.h"
#include "semaim/eval.h"
#include "semaim/finetune.h"
#include "semaim/loader.h"
#include "semaim/metrics.h"
#include "semaim/optim.h"
#include "semaim/run.h"
#include "semaim/source.h"

/* "semaim-finetune", or the name it was started under ("semaim-eval finetune") */
static const char *prog_name(const char *argv0) {
    if (strchr(argv0, ' ')) return argv0;
    const char *s = strrchr(argv0, '/');
    return s ? s + 1 : argv0;
}

/* Labels outside 0..C-1 are bad data, reported with the image's id. */
static void check_labels(const loader_batch *bt, int C, const char *data, err_t *e) {
    for (int i = 0; i < bt->n && !e->kind; i++)
        if (bt->labels[i] < 0 || bt->labels[i] >= C)
            err_set(e, ERR_INPUT, "%s: image %lld has label %d, outside 0..%d (--classes?)", data, (long long)bt->ids[i],
                    bt->labels[i], C - 1);
}


/* The recipe's settings that make a run what it is: a resume must have them as they were. */
#define RECIPE_OPTIONS "randaug,reprob,remode,mixup,cutmix,mixup-switch-prob,mixup-prob,smoothing,crop-scale,drop-path"

/* The flags of the recipe (SPEC §5) into the loader's chain and the batch mixing; -1 and e
 * (ERR_INPUT, naming the flag) for a bad one. */
static int recipe_of_flags(aug_recipe *ar, mixup_config *mc, const char *randaug, const char *remode, double reprob,
                           double crop_scale, double mixup, double cutmix, double switch_prob, double mix_prob,
                           double smoothing, long global_batch, err_t *e) {
    char why[200];
    *ar = augment_recipe_finetune();
    ar->scale_min = crop_scale;
    if (randaug_parse(&ar->ra, randaug, why, sizeof why)) return err_set(e, ERR_INPUT, "finetune: --randaug %s: %s", randaug, why);
    ar->re.prob = reprob;
    if ((ar->re.mode = erase_mode_from_name(remode)) < 0)
        return err_set(e, ERR_INPUT, "finetune: --remode must be pixel, rand or const, not '%s'", remode);
    if (augment_recipe_check(ar, why, sizeof why)) return err_set(e, ERR_INPUT, "finetune: %s", why);
    *mc = mixup_recipe();
    mc->mixup_alpha = mixup; mc->cutmix_alpha = cutmix; mc->switch_prob = switch_prob; mc->prob = mix_prob;
    mc->smoothing = smoothing;
    if (mixup_check(mc, (int)(global_batch < 1 << 30 ? global_batch : 1 << 30), why, sizeof why))
        return err_set(e, ERR_INPUT, "finetune: %s", why);
    return 0;
}

/* Mixup/CutMix of this step's batch into `mixed` and its soft targets (data/mixup.h): the
 * same draws on every rank; image i of rank r pairs with image B−1−i of rank W−1−r, i.e.
 * timm's flip of the global batch whatever the rank count (the loader deals global position
 * i·W + r to rank r). Every rank takes part in the exchange, also one whose step failed. */
static int mix_batch(const mixup_config *mc, uint64_t seed, long step, const loader_batch *bt, int B, int S, int C,
                     float *mixed, float *partner, int32_t *plabels, float *targets, err_t *e) {
    mixup_params mp;
    mixup_sample(&mp, mc, S, S, rng_key(seed, MIXUP_RNG_TAG, (uint64_t)step, 0, 0));
    const long img = 3L * S * S;
    /* a failed rank sends whatever `mixed` holds (never the receive buffers themselves) */
    const float *x = bt ? bt->images : mixed;
    const int32_t *y = bt ? bt->labels : (const int32_t *)mixed;
    int self = 1;
    if (mp.mixed) {
        /* both exchanges always run, so the mirror never waits for a message that does not come */
        self = dist_mirror_exchange(MPI_COMM_WORLD, x, partner, sizeof(float) * (size_t)(B * img));
        if (dist_mirror_exchange(MPI_COMM_WORLD, y, plabels, sizeof(int32_t) * (size_t)B) < 0) self = -1;
        if (self < 0) return err_set(e, ERR_RUNTIME, "finetune: the Mixup exchange with rank %d failed",
                                     dist_mirror_rank(MPI_COMM_WORLD));
    }
    if (!bt || e->kind) return 0;
    mixup_images(mixed, x, self ? x : partner, B, 3, S, S, &mp);
    mixup_targets(targets, y, self ? y : plabels, B, C, mp.lam, mc->smoothing);
    return 0;
}

int main(int argc, char **argv) {
    run_t run;
    run_init(&run, &argc, &argv, prog_name(argv[0]), CKPT_FINETUNE);
    source_t src = {0};
    const char *data = NULL, *out = "runs/finetune", *resume = "auto", *allred = "ring", *assign = "auto",
               *randaug = "rand-m9-mstd0.5-inc1", *remode = "pixel", *gemm = "auto", *precision = "fp32";
    int batch = 64, classes = 0, keep = 3, log_every = 10, check_every = 100, loader_threads = 1, eval_every = 1;
    long epochs = 100, steps = 0, warmup_steps = -1, ckpt_every = 1000, max_steps_this_run = 0, ft_seed = 0;
    double base_lr = 5e-4, min_lr = 1e-6, warmup_epochs = 20, weight_decay = 0.05, layer_decay = 0.65, drop_path = 0.1,
           smoothing = 0.1, beta1 = 0.9, beta2 = 0.999, clip = 0, stall_timeout = 1800, reprob = 0.25, crop_scale = 0.08,
           mixup = 0.8, cutmix = 1.0, mixup_switch = 0.5, mixup_prob = 1.0;
    option_t opts[] = {
        SOURCE_OPTIONS(src),
        {"config", OPT_STRING, &(const char *){NULL}, "settings file of 'name = value' lines (flags override it)", 0, 0, 0},
        {"data", OPT_STRING, &data, "shards folder with train/ and val/ splits [required]", 0, 0, 0},
        {"out", OPT_STRING, &out, "run folder: settings, metrics, fine-tuning checkpoints ft-*.bin", 0, 0, 0},
        {"classes", OPT_INT, &classes, "classes; 0 = the shards' num_classes attribute", 0, 1 << 24, 0},
        {"batch", OPT_INT, &batch, "images per rank per step", 1, 1 << 20, 0},
        {"epochs", OPT_LONG, &epochs, "training length in epochs", 1, 1e9, 0},
        {"steps", OPT_LONG, &steps, "training length in steps (overrides --epochs when > 0)", 0, 1e12, 0},
        {"max-steps-this-run", OPT_LONG, &max_steps_this_run, "stop (with a checkpoint) after this many steps; 0 = no limit", 0, 1e12, 0},
        {"base-lr", OPT_DOUBLE, &base_lr, "lr = base-lr x global batch / 256", 0, 10, 0},
        {"min-lr", OPT_DOUBLE, &min_lr, "lr at the end of the cosine", 0, 10, 0},
        {"warmup-epochs", OPT_DOUBLE, &warmup_epochs, "linear warmup length in epochs, at most a fifth of the run (the "
         "paper's 20 of 100)", 0, 1e9, 0},
        {"warmup-steps", OPT_LONG, &warmup_steps, "warmup in steps, exactly (overrides --warmup-epochs when >= 0)", -1, 1e12, 0},
        {"weight-decay", OPT_DOUBLE, &weight_decay, "AdamW weight decay (not on 1-D tensors and the cls token)", 0, 10, 0},
        {"layer-decay", OPT_DOUBLE, &layer_decay, "layer-wise lr decay", 0, 1, 0},
        {"drop-path", OPT_DOUBLE, &drop_path, "stochastic depth rate of the last block (linear from 0)", 0, 0.99, 0},
        {"smoothing", OPT_DOUBLE, &smoothing, "label smoothing (with Mixup/CutMix folded into the mixed targets)", 0, 0.99, 0},
        {"randaug", OPT_STRING, &randaug, "RandAugment as a timm spec (rand-m9-mstd0.5-inc1: 2 ops, magnitude 9 +- N(0, 0.5), "
         "increasing set); none = off", 0, 0, 0},
        {"reprob", OPT_DOUBLE, &reprob, "random erasing probability (after normalisation; 0 = off)", 0, 1, 0},
        {"remode", OPT_STRING, &remode, "random erasing fill: pixel (per-pixel N(0,1)), rand (per channel) or const (0)", 0, 0, 0},
        {"crop-scale", OPT_DOUBLE, &crop_scale, "RandomResizedCrop's smallest area fraction (timm's 0.08)", 1e-6, 1, 0},
        {"mixup", OPT_DOUBLE, &mixup, "Mixup alpha (0 = off)", 0, 1e6, 0},
        {"cutmix", OPT_DOUBLE, &cutmix, "CutMix alpha (0 = off)", 0, 1e6, 0},
        {"mixup-switch-prob", OPT_DOUBLE, &mixup_switch, "probability of CutMix rather than Mixup when both are on", 0, 1, 0},
        {"mixup-prob", OPT_DOUBLE, &mixup_prob, "probability of mixing a batch", 0, 1, 0},
        {"beta1", OPT_DOUBLE, &beta1, "AdamW beta1", 0, 1, 0},
        {"beta2", OPT_DOUBLE, &beta2, "AdamW beta2", 0, 1, 0},
        {"clip", OPT_DOUBLE, &clip, "global gradient-norm clip; 0 = off (MAE's fine-tuning default)", 0, 1e9, 0},
        {"ft-seed", OPT_LONG, &ft_seed, "seed of the head init, data order, augmentation and drop-path", 0, 9.2e18, 0},
        {"eval-every", OPT_INT, &eval_every, "evaluate on val every N epochs (and at the end)", 1, 1 << 30, 0},
        {"ckpt-every", OPT_LONG, &ckpt_every, "checkpoint every N steps (and at the end)", 1, 1e12, 0},
        {"keep", OPT_INT, &keep, "checkpoints kept", 1, 1000000, 0},
        {"resume", OPT_STRING, &resume, "auto (newest valid ft-*.bin in --out), no, or a checkpoint path", 0, 0, 0},
        {"log-every", OPT_INT, &log_every, "human-readable line on stdout every N steps", 1, 1 << 30, 0},
        {"check-every", OPT_INT, &check_every, "compare parameter checksums across ranks every N steps", 1, 1 << 30, 0},
        {"allreduce", OPT_STRING, &allred, "gradient all-reduce: ring or mpi", 0, 0, 0},
        {"loader-threads", OPT_INT, &loader_threads, "augmentation threads in the loader thread", 1, 256, 0},
        {"assign", OPT_STRING, &assign, "shards to ranks: auto, shards (shard k -> rank k mod N) or deal", 0, 0, 0},
        {"stall-timeout", OPT_DOUBLE, &stall_timeout,
         "abort the job (exit 1) when no step (evaluation and checkpoint included) completes in this many seconds; 0 = off",
         0, 1e9, 0},
        COMPUTE_OPTIONS(gemm, precision),
    };
    int nopt = sizeof opts / sizeof opts[0];
    char synopsis[512];
    snprintf(synopsis, sizeof synopsis, "%s (--checkpoint CKPT | --weights FILE) --data SHARDS --out DIR [options]\n"
             "Supervised fine-tuning (SPEC §5) as an MPI job; exit codes 0 done or stopped by SIGUSR1/SIGTERM\n"
             "with a checkpoint, 1 runtime error, 2 bad input, 3 non-finite loss.", run.prog);
    run_parse(&run, opts, nopt, argc, argv, 1, synopsis);
    err_t e = {0};
    if (!data) err_set(&e, ERR_INPUT, "finetune: --data is required");
    else if (strcmp(allred, "ring") && strcmp(allred, "mpi")) err_set(&e, ERR_INPUT, "finetune: --allreduce must be ring or mpi");
    int assign_rule = loader_assign_from_name(assign);
    if (!e.kind && assign_rule < 0) err_set(&e, ERR_INPUT, "finetune: --assign must be auto, shards or deal, not '%s'", assign);
    aug_recipe recipe;
    mixup_config mc;
    if (!e.kind)
        recipe_of_flags(&recipe, &mc, randaug, remode, reprob, crop_scale, mixup, cutmix, mixup_switch, mixup_prob, smoothing,
                        (long)batch * run.world, &e);
    run_agree(&run, &e);
    run_compute(&run, &gemm, &precision);   /* before the models: bf16 ones keep bf16 weights */
    run_open_folder(&run, out);

    /* the encoder, the data, the classifier */
    model_t pm;
    source_info_t info;
    source_load(&src, run.prog, &pm, &info, 0, &e);
    run_agree(&run, &e);
    loader *ld = NULL;
    loader_config lc = {.data_dir = data, .split = "train", .image_size = pm.cfg.image, .batch = batch,
                        .seed = (uint64_t)ft_seed, .rank = run.rank, .world = run.world, .train = 1,
                        .threads = loader_threads, .assign = assign_rule, .recipe = &recipe, .no_upsample = 1};
    loader_open(&ld, &lc, &e);
    run_agree(&run, &e);
    int C = classes ? classes : loader_num_classes(ld);
    if (C < 1) err_set(&e, ERR_INPUT, "finetune: the shards do not say how many classes there are: give --classes");
    else if (classes && loader_num_classes(ld) && classes != loader_num_classes(ld))
        err_set(&e, ERR_INPUT, "finetune: --classes %d disagrees with the shards' num_classes %d", classes,
                loader_num_classes(ld));
    run_agree(&run, &e);
    long spe = loader_steps_per_epoch(ld);
    run.total_steps = steps > 0 ? steps : epochs * spe;
    long warmup = optim_warmup_iters(warmup_epochs, warmup_steps, spe, run.total_steps, OPTIM_WARMUP_MAX_FRACTION);
    run.global_batch = (long)batch * run.world;
    run.log_every = log_every; run.check_every = check_every; run.ckpt_every = ckpt_every;
    run.keep = keep; run.max_steps_this_run = max_steps_this_run; run.stall_timeout = stall_timeout;
    optim_cfg_t oc = {base_lr, min_lr, weight_decay, beta1, beta2, 1e-8, clip, warmup, run.total_steps};
    double peak = optim_peak_lr(&oc, run.global_batch);
    ft_model_t f;
    ft_init(&f, &pm.cfg, C, batch, layer_decay, (uint64_t)ft_seed, &e);
    run_agree(&run, &e);
    /* with --at-init pm is the checkpoint's seed at initialisation: copied too, so the
     * from-scratch encoder is the one `semaim-eval --at-init` scores, not one drawn from --ft-seed */
    ft_load_encoder(&f, &pm, &e);   /* the same config by construction */
    run_agree(&run, &e);
    model_free(&pm);

    ckpt_model_t id = ckpt_finetune(&f);
    ckpt_state_t st = {0, 0, 0, (uint64_t)ft_seed, run.world, batch};
    run.resume_same = RECIPE_OPTIONS;
    int found = run_resume(&run, resume, &id, &f.w, &st, "ft-seed");
    /* the mixed batch and its partner: allocated once */
    const int S = f.cfg.image, mixing = mixup_active(&mc);
    const size_t img_bytes = sizeof(float) * (size_t)batch * 3 * S * S;
    float *mixed = mixing ? malloc(img_bytes) : NULL, *partner = mixing && run.world > 1 ? malloc(img_bytes) : NULL,
          *targets = mixing ? malloc(sizeof(float) * (size_t)batch * C) : NULL;
    int32_t *plabels = mixing ? calloc((size_t)batch, sizeof(int32_t)) : NULL;
    if (mixing && (!mixed || !targets || !plabels || (run.world > 1 && !partner)))
        err_set(&e, ERR_RUNTIME, "finetune: out of memory for the mixed batch (%d images)", batch);
    run_agree(&run, &e);
    if (found) {
        loader_seek(ld, (int)st.epoch, st.epoch_step, &e);
        run_agree(&run, &e);
    }
    buf_t extra = {0};
    metrics_str(&extra, "source", info.desc);
    metrics_int(&extra, "source_step", info.step);
    metrics_raw(&extra, "at_init", src.at_init ? "true" : "false");
    metrics_int(&extra, "classes", C);
    char banner[128];
    snprintf(banner, sizeof banner, "%d classes, %s", C,
             found ? "resuming" : src.at_init ? "encoder at initialisation" : "pretrained encoder");
    run_start(&run, &f.w, spe, peak, !strcmp(allred, "mpi"), 0, extra.s, banner);
    buf_free(&extra);

    ft_eval_t ev = {-1, -1, 0, 0};
    long ev_step = -1;
    while (run.step < run.total_steps) {
        double t0 = clock_now(), waited = 0;
        const loader_batch *bt = NULL;
        err_t local = {0};
        run_phase(&run, WATCHDOG_DATA);
        loader_next(ld, &bt, &waited, &local);
        double t1 = clock_now(), loss = 0;
        run_phase(&run, WATCHDOG_COMPUTE);
        if (!local.kind) check_labels(bt, C, data, &local);
        if (mixing) mix_batch(&mc, (uint64_t)ft_seed, run.step, local.kind ? NULL : bt, batch, S, C, mixed, partner, plabels,
                              targets, &local);
        if (!local.kind) {
            ft_drop_path(&f, drop_path, (uint64_t)ft_seed, run.step, bt->ids, batch);
            params_zero_grad(&f.w);
            loss = mixing ? ft_forward_targets(&f, mixed, targets, batch, 1)
                          : ft_forward(&f, bt->images, bt->labels, batch, 1, (float)smoothing);
            ft_backward(&f);
        }
        double t2 = clock_now(), gl;
        run_phase(&run, WATCHDOG_ALLREDUCE);
        if (run_step_agree(&run, loss, &local, &gl) || run_check_finite(&run, "loss", gl)) break;
        if (run_allreduce(&run, &f.w)) break;
        double t3 = clock_now();
        run_phase(&run, WATCHDOG_COMPUTE);
        double lr, gn;
        if (run_update(&run, &f.w, &oc, &lr, &gn)) break;
        double t4 = clock_now();
        run_step_done(&run, ld, &st, bt->epoch, gl, lr, gn, &(run_times_t){t1 - t0, (t2 - t1) + (t4 - t3), t3 - t2, t4 - t0});
        if (run_check_replicas(&run, &f.w)) break;
        /* evaluation at the end of every eval-every-th epoch, and of the run */
        if ((run.step % spe == 0 && (run.step / spe) % eval_every == 0) || run.step == run.total_steps) {
            double te = clock_now();
            run_phase(&run, WATCHDOG_EVAL);
            ft_evaluate(&f, data, batch, (float)smoothing, MPI_COMM_WORLD, &ev, &e);
            run_agree(&run, &e);
            ev_step = run.step;
            buf_t b = {0};
            metrics_int(&b, MET_STEP, run.step);
            metrics_num(&b, "epoch", "%.3f", (double)run.step / spe);
            metrics_num(&b, "top1", "%.4f", ev.top1);
            metrics_num(&b, "top5", "%.4f", ev.top5);
            metrics_num(&b, "loss", "%.6g", ev.loss);
            metrics_int(&b, "images", ev.n);
            metrics_num(&b, "seconds", "%.3f", clock_now() - te);
            run_event(&run, MET_EVAL, b.s);
            buf_free(&b);
            if (run.rank == 0) {
                printf("eval  step %ld  epoch %.2f  top1 %.2f  top5 %.2f  loss %.4f\n", run.step, (double)run.step / spe,
                       ev.top1, ev.top5, ev.loss);
                fflush(stdout);
            }
        }
        run_phase(&run, WATCHDOG_CHECKPOINT);
        if (run_checkpoint(&run, &id, &f.w, &st) || run.stop) break;
    }
    if (run.exit_code == 0 && run.step >= run.total_steps && ev_step != run.step) {   /* resumed when already complete */
        ft_evaluate(&f, data, batch, (float)smoothing, MPI_COMM_WORLD, &ev, &e);
        run_agree(&run, &e);
        ev_step = run.step;
    }
    int code = run_end(&run);
    if (run.rank == 0 && code == 0 && run.step >= run.total_steps) {
        buf_t b = {0};
        metrics_begin(&b, "finetune");
        metrics_num(&b, "time", "%.3f", (double)time(NULL));
        metrics_str(&b, "source", info.desc);
        metrics_int(&b, "step", info.step);
        metrics_raw(&b, "at_init", src.at_init ? "true" : "false");
        metrics_num(&b, "top1", "%.4f", ev.top1);
        metrics_num(&b, "top5", "%.4f", ev.top5);
        metrics_num(&b, "val_loss", "%.6g", ev.loss);
        metrics_int(&b, "steps", run.step);
        metrics_num(&b, "epochs", "%.3f", (double)run.step / spe);
        metrics_int(&b, "global_batch", run.global_batch);
        metrics_int(&b, "classes", C);
        metrics_int(&b, "ranks", run.world);
        char p[4200];
        snprintf(p, sizeof p, "%s/eval.jsonl", out);
        FILE *fp = fopen(p, "a");
        if (metrics_write(&b, fp) | (fp ? fclose(fp) : -1)) fprintf(stderr, "%s: %s: cannot append results\n", run.prog, p);
        buf_free(&b);
        printf("finetune: top1=%.2f top5=%.2f steps=%ld epochs=%.2f classes=%d%s source=%s\n", ev.top1, ev.top5, run.step,
               (double)run.step / spe, C, src.at_init ? " at-init" : "", info.desc);
    }
    loader_close(ld);
    ft_free(&f);
    free(mixed); free(partner); free(targets); free(plabels);
    dist_finish(code);
}
