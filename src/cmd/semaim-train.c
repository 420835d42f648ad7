/* semaim-train: SemAIM pretraining as an MPI job. Every rank holds a model replica, reads its
 * own shards through the background loader, computes the semantic orders of its images,
 * and averages gradients with the ring all-reduce; rank 0 writes checkpoints and metrics.
 *
 * A step: next batch → orders → forward/backward → one small all-reduce that agrees on
 * loss, errors and stop requests → gradient all-reduce → clip → AdamW. Everything random
 * derives from (seed, epoch, global sample id), so a run is reproducible and the same global
 * batch gives the same losses on any number of ranks. */
#include <cblas.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "semaim/allreduce.h"
#include "semaim/checkpoint.h"
#include "semaim/loader.h"
#include "semaim/model.h"
#include "semaim/optim.h"
#include "semaim/options.h"
#include "semaim/rng.h"
#include "semaim/shards.h"
#include "train/watchdog.h"

#define ORDER_RNG_TAG 0x6f72646572ULL   /* "order": noise of the prediction orders */

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { stop_requested = sig; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int rank_, world_;

static const char *nonfinite_name(double x) { return isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf"; }

/* Ends the job on every rank with one message from rank 0 (the caller guarantees all ranks
 * reach this together, or that it is the lone rank with a local problem before any collective). */
static void finish(int code) {
    fflush(stdout);
    MPI_Finalize();
    exit(code);
}

/* All ranks call this after a step that may have failed locally: any failure ends all. */
static void agree_or_die(int failed, const char *msg, int code) {
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) {
        if (failed) fprintf(stderr, "semaim-train: rank %d: %s\n", rank_, msg);
        finish(code);
    }
}

typedef struct {
    const char *preset, *order, *data, *out, *allreduce, *resume, *assign;
    int image, patch, width, depth, dec_depth, heads, batch, keep, log_every, check_every, loader_threads, help;
    long epochs, steps, warmup_steps, ckpt_every, segment, max_steps_this_run;
    double base_lr, min_lr, warmup_epochs, weight_decay, clip, beta1, beta2;
    long seed;
} settings_t;

int main(int argc, char **argv) {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    /* Installed first, so a stop request during start-up (data scan, resume) is honoured at
     * the first step boundary instead of killing the rank. */
    signal(SIGUSR1, on_signal);
    signal(SIGTERM, on_signal);
    settings_t s = {
        .preset = "tiny", .order = "semantic", .data = NULL, .out = "runs/semaim", .allreduce = "ring",
        .resume = "auto", .assign = "auto", .batch = 64, .keep = 3, .log_every = 10, .check_every = 100,
        .loader_threads = 1, .epochs = 800, .steps = 0, .warmup_steps = -1, .ckpt_every = 1000, .segment = 0,
        .max_steps_this_run = 0, .base_lr = 2e-4, .min_lr = 0, .warmup_epochs = 30, .weight_decay = 0.05,
        .clip = 3.0, .beta1 = 0.9, .beta2 = 0.95, .seed = 0};
    double stall_timeout = 1800;
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
        {"warmup-epochs", OPT_DOUBLE, &s.warmup_epochs, "linear warmup length in epochs", 0, 1e9, 0},
        {"warmup-steps", OPT_LONG, &s.warmup_steps, "warmup in steps (overrides --warmup-epochs when >= 0)", -1, 1e12, 0},
        {"weight-decay", OPT_DOUBLE, &s.weight_decay, "AdamW weight decay (not on biases and norms)", 0, 10, 0},
        {"clip", OPT_DOUBLE, &s.clip, "global gradient-norm clip; 0 = off", 0, 1e9, 0},
        {"beta1", OPT_DOUBLE, &s.beta1, "AdamW beta1", 0, 1, 0},
        {"beta2", OPT_DOUBLE, &s.beta2, "AdamW beta2", 0, 1, 0},
        {"order", OPT_STRING, &s.order, "prediction order: semantic, raster, stochastic, similarity, center", 0, 0, 0},
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
        {"stall-timeout", OPT_DOUBLE, &stall_timeout, "abort the job (exit 1) when no step completes in this many seconds; 0 = off", 0, 1e9, 0},
    };
    int nopt = sizeof opts / sizeof opts[0];
    char err[4608];
    int rc = options_parse(opts, nopt, argc, argv, 1, err, sizeof err);
    if (rc == 1) {
        if (rank_ == 0) {
            printf("usage: semaim-train --data DIR [--out DIR] [options]\n"
                   "SemAIM pretraining; run under mpirun/srun for several ranks.\n"
                   "Exit codes: 0 done or stopped by SIGUSR1/SIGTERM with a checkpoint, 1 runtime error,\n"
                   "2 bad input, 3 loss or gradients not finite.\noptions:\n");
            options_usage(stdout, opts, nopt);
        }
        finish(0);
    }
    semaim_config_t cfg;
    order_t order;
    if (rc == 0 && !s.data) { snprintf(err, sizeof err, "--data is required"); rc = -1; }
    if (rc == 0 && config_preset(s.preset, &cfg)) { snprintf(err, sizeof err, "unknown --preset '%s'", s.preset); rc = -1; }
    if (rc == 0) {
        if (s.image) cfg.image = s.image;
        if (s.patch) cfg.patch = s.patch;
        if (s.width) cfg.width = s.width;
        if (s.depth) cfg.depth = s.depth;
        if (s.dec_depth) cfg.dec_depth = s.dec_depth;
        if (s.heads) cfg.heads = s.heads;
        if (config_validate(&cfg, s.batch, err, sizeof err)) rc = -1;
        /* record the resolved sizes, not "0 = the preset's" */
        s.image = cfg.image; s.patch = cfg.patch; s.width = cfg.width;
        s.depth = cfg.depth; s.dec_depth = cfg.dec_depth; s.heads = cfg.heads;
    }
    if (rc == 0 && order_parse(s.order, &order)) { snprintf(err, sizeof err, "unknown --order '%s'", s.order); rc = -1; }
    if (rc == 0 && strcmp(s.allreduce, "ring") && strcmp(s.allreduce, "mpi")) {
        snprintf(err, sizeof err, "--allreduce must be ring or mpi, not '%s'", s.allreduce); rc = -1;
    }
    int assign = LOADER_ASSIGN_AUTO;
    if (rc == 0) {
        if (!strcmp(s.assign, "shards")) assign = LOADER_ASSIGN_SHARDS;
        else if (!strcmp(s.assign, "deal")) assign = LOADER_ASSIGN_DEAL;
        else if (strcmp(s.assign, "auto")) { snprintf(err, sizeof err, "--assign must be auto, shards or deal"); rc = -1; }
    }
    if (rc) {   /* every rank parsed the same argv, so every rank is here */
        if (rank_ == 0) fprintf(stderr, "semaim-train: %s\n", err);
        finish(2);
    }

    /* run folder (rank 0), then everyone checks it exists */
    int bad = 0;
    if (rank_ == 0 && mkdir(s.out, 0755) && errno != EEXIST) {
        snprintf(err, sizeof err, "%s: cannot create run folder: %s", s.out, strerror(errno));
        bad = 1;
    }
    agree_or_die(bad, err, 2);

    /* model (same seed on every rank → same init; resume overrides it) */
    model_t m;
    if (model_init(&m, &cfg, (uint64_t)s.seed, err, sizeof err)) agree_or_die(1, err, 2);
    loader *ld = NULL;
    loader_config lc = {.data_dir = s.data, .split = "train", .image_size = cfg.image, .batch = s.batch,
                        .seed = (uint64_t)s.seed, .rank = rank_, .world = world_, .train = 1, .assign = assign,
                        .threads = s.loader_threads};
    const char *lerr = loader_open(&ld, &lc);
    if (lerr) snprintf(err, sizeof err, "%s", lerr);
    agree_or_die(lerr != NULL, err, 2);
    long spe = loader_steps_per_epoch(ld);
    if (spe < 1) {
        if (rank_ == 0)
            fprintf(stderr, "semaim-train: %s: too few images for batch %d on %d ranks (%ld images)\n", s.data,
                    s.batch, world_, loader_total_samples(ld));
        finish(2);
    }
    long total_steps = s.steps > 0 ? s.steps : s.epochs * spe;
    long warmup = s.warmup_steps >= 0 ? s.warmup_steps : (long)llround(s.warmup_epochs * spe);
    optim_cfg_t oc = {s.base_lr, s.min_lr, s.weight_decay, s.beta1, s.beta2, 1e-8, s.clip, warmup, total_steps};
    long global_batch = (long)s.batch * world_;
    double peak_lr = optim_peak_lr(&oc, global_batch);

    /* resume: rank 0 reads, everyone receives the same bytes */
    ckpt_state_t st = {0, 0, 0, (uint64_t)s.seed, world_, s.batch};
    char ckpt_path[4096] = "";
    int found = 0;
    bad = 0;
    if (rank_ == 0 && strcmp(s.resume, "no")) {
        if (!strcmp(s.resume, "auto")) {
            found = ckpt_load_latest(s.out, &m, &st, ckpt_path, sizeof ckpt_path, err, sizeof err);
            if (found < 0) bad = 1;
        } else if (ckpt_load(s.resume, &m, &st, err, sizeof err)) bad = 1;
        else { found = 1; snprintf(ckpt_path, sizeof ckpt_path, "%s", s.resume); }
        if (found == 1 && (st.seed != (uint64_t)s.seed || st.world != world_ || st.batch != s.batch)) {
            snprintf(err, sizeof err,
                     "%s: checkpoint was written with seed %llu, %d ranks, batch %d; this run has seed %ld, %d ranks, "
                     "batch %d (pass --resume no to start over)",
                     ckpt_path, (unsigned long long)st.seed, st.world, st.batch, s.seed, world_, s.batch);
            bad = 1;
        }
    }
    agree_or_die(bad, err, 2);
    MPI_Bcast(&found, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (found) {
        MPI_Bcast(&st, sizeof st, MPI_BYTE, 0, MPI_COMM_WORLD);
        /* counts above INT_MAX would need chunking; the large preset has 3.1e8 floats */
        MPI_Bcast(m.params, (int)m.nparams, MPI_FLOAT, 0, MPI_COMM_WORLD);
        MPI_Bcast(m.m, (int)m.nparams, MPI_FLOAT, 0, MPI_COMM_WORLD);
        MPI_Bcast(m.v, (int)m.nparams, MPI_FLOAT, 0, MPI_COMM_WORLD);
        lerr = loader_seek(ld, (int)st.epoch, st.epoch_step);
        if (lerr) snprintf(err, sizeof err, "%s", lerr);
        agree_or_die(lerr != NULL, err, 1);
    }

    allreduce_t *ar = allreduce_create(MPI_COMM_WORLD, m.nparams, s.segment, !strcmp(s.allreduce, "mpi"));
    if (!ar) finish(1);   /* allreduce_create reported the reason on every rank */
    acts_t *a = acts_create(&m, s.batch);
    int L = m.L;
    float *noise = malloc(sizeof(float) * s.batch * L);
    int *ranks = malloc(sizeof(int) * s.batch * L);
    agree_or_die(!a || !noise || !ranks, "out of memory for activations", 1);

    FILE *mf = NULL;
    if (rank_ == 0) {
        char p[4200], tmp[4300];
        snprintf(p, sizeof p, "%s/settings.json", s.out);
        snprintf(tmp, sizeof tmp, "%s.tmp", p);
        FILE *sf = fopen(tmp, "w");
        if (sf) {
            options_json(sf, opts, nopt);
            fputc('\n', sf);
            if (fclose(sf) == 0) rename(tmp, p);
        }
        snprintf(p, sizeof p, "%s/metrics.jsonl", s.out);
        mf = fopen(p, "a");
        if (!mf) { snprintf(err, sizeof err, "%s: cannot open metrics: %s", p, strerror(errno)); bad = 1; }
    }
    agree_or_die(bad, err, 2);

    if (rank_ == 0) {
        char mpiv[MPI_MAX_LIBRARY_VERSION_STRING];
        int len;
        MPI_Get_library_version(mpiv, &len);
        char *nl = strchr(mpiv, '\n');
        if (nl) *nl = 0;
        unsigned h5maj, h5min, h5rel;
        shards_hdf5_lock();   /* the loader thread owns HDF5 while it runs */
        H5get_libversion(&h5maj, &h5min, &h5rel);
        shards_hdf5_unlock();
        const char *job = getenv("SLURM_JOB_ID"), *restart = getenv("SLURM_RESTART_COUNT");
        char host[256] = "?", cpu[256] = "?", line[512];
        gethostname(host, sizeof host - 1);
        FILE *ci = fopen("/proc/cpuinfo", "r");
        while (ci && fgets(line, sizeof line, ci))
            if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
                snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        if (ci) fclose(ci);
        fprintf(mf, "{\"event\": \"run_start\", \"time\": %.3f, \"ranks\": %d, \"threads\": %d, \"host\": ",
                (double)time(NULL), world_, omp_get_max_threads());
        json_string(mf, host);
        fprintf(mf, ", \"cpu\": ");
        json_string(mf, cpu);
        fprintf(mf, ", \"cores\": %ld, \"nodes_hint\": ", sysconf(_SC_NPROCESSORS_ONLN));
        json_string(mf, getenv("SLURM_JOB_NUM_NODES") ? getenv("SLURM_JOB_NUM_NODES") : "1");
        fprintf(mf, ", \"slurm_job_id\": ");
        if (job) json_string(mf, job); else fputs("null", mf);
        fprintf(mf, ", \"slurm_restart_count\": %s, \"resumed_from\": ", restart ? restart : "0");
        if (found) json_string(mf, ckpt_path); else fputs("null", mf);
        fprintf(mf, ", \"start_step\": %lld, \"global_batch\": %ld, \"steps_per_epoch\": %ld, \"total_steps\": %ld, "
                    "\"peak_lr\": %.9g, \"params\": %ld, \"gflop_per_image\": %.4f, \"versions\": {\"mpi\": ",
                (long long)st.step, global_batch, spe, total_steps, peak_lr, m.nparams,
                semaim_flops_per_image(&m) / 1e9);
        json_string(mf, mpiv);
        fprintf(mf, ", \"hdf5\": \"%u.%u.%u\", \"openblas\": ", h5maj, h5min, h5rel);
        json_string(mf, openblas_get_config());
        fprintf(mf, "}, \"settings\": ");
        options_json(mf, opts, nopt);
        fprintf(mf, "}\n");
        fflush(mf);
        printf("semaim-train: %d ranks x %d threads, global batch %ld, %ld steps/epoch, %ld steps, peak lr %.3g, %s\n",
               world_, omp_get_max_threads(), global_batch, spe, total_steps, peak_lr,
               found ? "resuming" : "from scratch");
        if (found) printf("semaim-train: resumed from %s at step %lld\n", ckpt_path, (long long)st.step);
        fflush(stdout);
    }

    long step = st.step, steps_this_run = 0;
    int exit_code = 0;
    const char *end_reason = "done";
    double t_run = now();
    agree_or_die(watchdog_start(stall_timeout, "semaim-train") != 0, "cannot start the stall watchdog", 1);
    while (step < total_steps) {
        double t0 = now(), waited = 0;
        const loader_batch *bt = NULL;
        watchdog_phase(step + 1, WATCHDOG_DATA);
        lerr = loader_next(ld, &bt, &waited);
        double t1 = now();
        float loss = 0;
        watchdog_phase(step + 1, WATCHDOG_COMPUTE);
        if (!lerr) {
            /* order noise per (epoch, sample): identical whichever rank holds the sample */
            for (int b = 0; b < s.batch; b++) {
                uint64_t key = rng_key((uint64_t)s.seed, ORDER_RNG_TAG, (uint64_t)bt->epoch, (uint64_t)bt->ids[b], 0);
                for (int p = 0; p < L; p++) noise[b * L + p] = rng_uniform(key, (uint64_t)p);
            }
            compute_order(&m, a, order, bt->images, noise, s.batch, ranks, NULL);
            model_zero_grad(&m);
            loss = semaim_forward(&m, a, bt->images, ranks, s.batch);
            semaim_backward(&m, a);
        }
        double t2 = now();
        /* one small reduction: loss sum, loader failures, stop requests */
        watchdog_phase(step + 1, WATCHDOG_ALLREDUCE);
        double red[3] = {loss, lerr ? 1 : 0, stop_requested ? 1 : 0}, tot[3];
        MPI_Allreduce(red, tot, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (tot[1] > 0) {
            if (lerr) fprintf(stderr, "semaim-train: rank %d: %s\n", rank_, lerr);
            exit_code = 1; end_reason = "data error";
            break;
        }
        double gloss = tot[0] / world_;
        if (!isfinite(gloss)) {
            if (rank_ == 0)
                fprintf(stderr, "semaim-train: loss is %s at step %ld; stopping (last good checkpoint kept)\n",
                        nonfinite_name(gloss), step);
            exit_code = 3; end_reason = "non-finite loss";
            break;
        }
        int arc = allreduce_mean(ar, m.grads, m.nparams);
        if (arc != MPI_SUCCESS) {
            if (rank_ == 0) fprintf(stderr, "semaim-train: gradient all-reduce failed (MPI error %d)\n", arc);
            exit_code = 1; end_reason = "all-reduce error";
            break;
        }
        double t3 = now();
        double gn = grad_norm(m.grads, m.nparams);   /* identical on every rank: the buffers are */
        if (!isfinite(gn)) {
            if (rank_ == 0)
                fprintf(stderr, "semaim-train: gradient norm is %s at step %ld; stopping (last good checkpoint kept)\n",
                        nonfinite_name(gn), step);
            exit_code = 3; end_reason = "non-finite gradients";
            break;
        }
        clip_grad(m.grads, m.nparams, gn, oc.clip);
        double lr = optim_lr_at(peak_lr, oc.min_lr, step, warmup, total_steps);
        adamw_step(&m, lr, &oc, step + 1);
        double t4 = now();
        step++; steps_this_run++;
        st.step = step;
        int next_epoch;
        loader_tell(ld, &next_epoch, &st.epoch_step);
        st.epoch = next_epoch;
        /* slowest rank's times */
        double tm[4] = {t1 - t0, (t2 - t1) + (t4 - t3), t3 - t2, t4 - t0}, tmax[4];
        MPI_Reduce(tm, tmax, 4, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        if (rank_ == 0) {
            fprintf(mf,
                    "{\"event\": \"step\", \"step\": %ld, \"epoch\": %d, \"loss\": %.7g, \"lr\": %.7g, \"grad_norm\": "
                    "%.7g, \"images_per_s\": %.3f, \"step_s\": %.5f, \"data_wait_s\": %.5f, \"compute_s\": %.5f, "
                    "\"comm_s\": %.5f}\n",
                    step, bt->epoch, gloss, lr, gn, global_batch / tmax[3], tmax[3], tmax[0], tmax[1], tmax[2]);
            fflush(mf);
            if (step % s.log_every == 0 || step == total_steps)
                printf("step %6ld/%ld  epoch %3d  loss %.4f  lr %.3g  |g| %.3f  %.1f img/s  (data %.0f ms, comm %.0f ms)\n",
                       step, total_steps, bt->epoch, gloss, lr, gn, global_batch / tmax[3], 1e3 * tmax[0], 1e3 * tmax[2]);
            fflush(stdout);
        }
        if (step % s.check_every == 0) {
            uint64_t mine;
            int who = check_replicas_consistent(MPI_COMM_WORLD, m.params, m.nparams, &mine);
            if (who != 0) {
                if (rank_ == 0)
                    fprintf(stderr, "semaim-train: replicas diverged at step %ld: rank %d's parameters differ from rank 0's\n",
                            step, who - 1);
                exit_code = 1; end_reason = "replica mismatch";
                break;
            }
        }
        int stop = tot[2] > 0 || (s.max_steps_this_run > 0 && steps_this_run >= s.max_steps_this_run);
        if (step % s.ckpt_every == 0 || step == total_steps || stop) {
            watchdog_phase(step, WATCHDOG_CHECKPOINT);
            bad = 0;
            if (rank_ == 0) {
                double tc = now();
                if (ckpt_save(s.out, &m, &st, s.keep, err, sizeof err)) bad = 1;
                else {
                    fprintf(mf, "{\"event\": \"checkpoint\", \"step\": %ld, \"epoch\": %lld, \"seconds\": %.3f}\n", step,
                            (long long)st.epoch, now() - tc);
                    fflush(mf);
                }
            }
            agree_or_die(bad, err, 1);
        }
        if (stop) {
            end_reason = tot[2] > 0 ? "signal" : "max-steps-this-run";
            if (rank_ == 0) printf("semaim-train: stopping at step %ld (%s), checkpoint written\n", step, end_reason);
            break;
        }
    }
    watchdog_stop();
    if (rank_ == 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        /* which signal rank 0 saw: lets a job script tell Slurm's USR1 warning from a TERM */
        const char *sig = stop_requested == SIGUSR1 ? "\"SIGUSR1\"" : stop_requested == SIGTERM ? "\"SIGTERM\"" : "null";
        fprintf(mf, "{\"event\": \"run_end\", \"step\": %ld, \"reason\": \"%s\", \"signal\": %s, \"exit_code\": %d, "
                    "\"seconds\": %.3f, \"peak_rss_gib\": %.3f}\n", step, end_reason, sig, exit_code, now() - t_run,
                ru.ru_maxrss / 1048576.0);
        fclose(mf);
        if (exit_code == 0) printf("semaim-train: run folder %s (metrics.jsonl, settings.json, checkpoints)\n", s.out);
    }
    loader_close(ld);
    allreduce_free(ar);
    acts_free(a);
    free(noise); free(ranks);
    model_free(&m);
    finish(exit_code);
}
