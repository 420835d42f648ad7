/* The run helpers of both trainers (semaim/run.h). */
#include <cblas.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/clock.h"
#include "core/files.h"
#include "core/json.h"
#include "core/mpi_start.h"
#include "kernels/gemm.h"
#include "semaim/dist.h"
#include "semaim/metrics.h"
#include "semaim/run.h"
#include "semaim/shards.h"

/* written by the signal handler and by the signal thread, read by the main thread: a lock-free
 * atomic serves both (async-signal-safe, and no data race between threads) */
static atomic_int stop_signal = 0;
static void on_signal(int sig) { stop_signal = sig; }

/* SIGUSR1/SIGTERM are taken by this thread alone (sigwait): every thread the program starts
 * after run_init inherits them blocked, so a stop request never interrupts a compute thread.
 * A signal delivered asynchronously into a thread running oneDNN's kernels corrupted the heap
 * (3 of 90 runs under load stopped by SIGUSR1; never with OpenBLAS, never without the
 * signal). The handler stays for threads MPI started before run_init, which may still take
 * them. */
static sigset_t stop_set;
static void *signal_thread(void *arg) {
    (void)arg;
    for (;;) {
        int sig;
        if (sigwait(&stop_set, &sig) == 0) stop_signal = sig;
    }
    return NULL;
}

static const char *nonfinite_name(double x) { return isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf"; }

/* Appends r->line to metrics.jsonl (rank 0). A line the disk refuses is a logged skip, not
 * the end of the run: metrics_write leaves whole lines only, the first loss is reported on
 * stderr and run_end counts them (metrics_lines_lost). */
static void metrics_line(run_t *r) {
    if (metrics_write(&r->line, r->metrics) == 0) return;
    if (r->metrics_lost++ == 0)
        fprintf(stderr, "%s: warning: %s/metrics.jsonl: cannot append a line (%s); training goes on, lines are lost until "
                "the disk takes them again\n", r->prog, r->out, strerror(errno));
}

void run_init(run_t *r, int *argc, char ***argv, const char *prog, int kind) {
    memset(r, 0, sizeof *r);
    mpi_start(argc, argv);
    /* first, so a stop request during start-up (data scan, resume) is honoured at the first
     * step boundary instead of killing the rank */
    signal(SIGUSR1, on_signal);
    signal(SIGTERM, on_signal);
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGUSR1);
    sigaddset(&stop_set, SIGTERM);
    pthread_t st;
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    if (pthread_create(&st, NULL, signal_thread, NULL) == 0) pthread_detach(st);
    else pthread_sigmask(SIG_UNBLOCK, &stop_set, NULL);   /* no thread: take them here, as before */
    MPI_Comm_rank(MPI_COMM_WORLD, &r->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &r->world);
    r->prog = prog;
    r->kind = kind;
    r->end_reason = "done";
    r->t_start = clock_now();
    r->note_step = -1;
}

void run_agree(run_t *r, err_t *e) { dist_agree_or_exit(MPI_COMM_WORLD, r->prog, e); }

void run_compute(run_t *r, const char **gemm, const char **precision) {
    err_t e = {0};
    gemm_config_t c;
    dist_compute_setup(MPI_COMM_WORLD, *gemm, *precision, &c, &e);
    run_agree(r, &e);
    *gemm = gemm_backend_name(c.backend);
    *precision = gemm_precision_name(&c);
}

void cli_parse_or_exit(const char *prog, option_t *opts, int n, int argc, char **argv, int first, const char *synopsis) {
    err_t e = {0};
    int rank, rc = options_parse(opts, n, argc, argv, first, &e);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rc == 1) {
        if (rank == 0) {
            printf("usage: %s\noptions:\n", synopsis);
            options_usage(stdout, opts, n);
        }
        dist_finish(0);
    }
    dist_agree_or_exit(MPI_COMM_WORLD, prog, &e);
}

void run_parse(run_t *r, option_t *opts, int n, int argc, char **argv, int first, const char *synopsis) {
    r->opts = opts;
    r->nopt = n;
    cli_parse_or_exit(r->prog, opts, n, argc, argv, first, synopsis);
}

void run_open_folder(run_t *r, const char *out) {
    err_t e = {0};
    r->out = out;
    if (r->rank == 0 && mkdir(out, 0755) && errno != EEXIST)
        err_set(&e, ERR_INPUT, "%s: cannot create run folder: %s", out, strerror(errno));
    run_agree(r, &e);
}

/* The settings in r->resume_same (comma-separated option names) against the settings.json of
 * the run folder that holds the resumed file (rank 0). */
static void check_same_settings(const run_t *r, err_t *e) {
    char dir[4200], p[4300];
    file_dirname(r->resumed_from, dir, sizeof dir);
    snprintf(p, sizeof p, "%s/settings.json", dir);
    char *text = NULL;
    size_t n = 0;
    if (file_slurp(p, &text, &n)) {
        fprintf(stderr, "%s: note: %s: cannot read it (%s): the resumed run's %s are not checked\n", r->prog, p,
                strerror(errno), r->resume_same);
        return;
    }
    json_t old = {0}, cur = {0};
    buf_t b = {0};
    options_json(&b, r->opts, r->nopt);
    if (json_parse(text, n, &old, e)) err_prefix(e, "%s", p);
    else if (b.oom || json_parse(b.s, b.len, &cur, e)) err_set(e, ERR_RUNTIME, "settings: out of memory");
    for (const char *s = r->resume_same; !e->kind && s && *s;) {
        size_t len = strcspn(s, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)len, s);
        s += len + (s[len] == ',');
        const json_t *a = json_get(&old, name), *c = json_get(&cur, name);
        int same = a && c && a->type == c->type &&
                   ((a->type == JSON_STR && !strcmp(a->str, c->str)) || (a->type == JSON_NUM && a->num == c->num));
        if (same || !c) continue;
        char ov[128] = "setting", cv[128];
        if (a) json_text(a, ov, sizeof ov);
        json_text(c, cv, sizeof cv);
        err_set(e, ERR_INPUT, "%s: the run that wrote it had %s%s %s, this run --%s %s (resume needs the same; pass "
                "--resume no to start over)", r->resumed_from, a ? "--" : "no --", name, ov, name, cv);
    }
    json_free(&old); json_free(&cur);
    buf_free(&b);
    free(text);
}

int run_resume(run_t *r, const char *resume, const ckpt_model_t *id, params_t *w, ckpt_state_t *st,
               const char *seed_flag) {
    err_t e = {0};
    int found = 0;
    ckpt_state_t want = *st;
    /* a job killed while writing (kill -9, node failure) leaves its temporary behind */
    if (r->rank == 0) ckpt_remove_stale(r->out, id->kind);
    if (r->rank == 0 && strcmp(resume, "no")) {
        if (!strcmp(resume, "auto")) {
            found = ckpt_load_latest(r->out, id, w, st, r->resumed_from, sizeof r->resumed_from, &e);
            if (found < 0) found = 0;   /* e says why */
        } else if (ckpt_load(resume, id, w, st, &e) == 0) {
            found = 1;
            snprintf(r->resumed_from, sizeof r->resumed_from, "%s", resume);
        }
        if (found && (st->seed != want.seed || st->world != want.world || st->batch != want.batch))
            err_set(&e, ERR_INPUT, "%s: checkpoint was written with %s %llu, %d ranks, batch %d; this run has %s %llu, "
                    "%d ranks, batch %d (pass --resume no to start over)", r->resumed_from, seed_flag,
                    (unsigned long long)st->seed, st->world, st->batch, seed_flag, (unsigned long long)want.seed,
                    want.world, want.batch);
        ckpt_model_t was;
        err_t he = {0};
        r->resumed_compute[0] = 0;
        if (found && !e.kind && ckpt_read_header(r->resumed_from, &was, NULL, &he) == 0 && was.precision &&
            (was.precision != id->precision || was.backend != id->backend)) {
            snprintf(r->resumed_compute, sizeof r->resumed_compute, "%s", ckpt_compute_name(was.precision, was.backend));
            printf("%s: note: %s was written with %s; continuing with %s (allowed: weights and moments are f32; the run "
                   "is not bit-identical to one that kept %s)\n", r->prog, r->resumed_from, r->resumed_compute,
                   ckpt_compute_name(id->precision, id->backend), r->resumed_compute);
            fflush(stdout);
        }
        if (found && !e.kind && r->resume_same) check_same_settings(r, &e);
    }
    run_agree(r, &e);
    MPI_Bcast(&found, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (found) {
        MPI_Bcast(st, (int)sizeof *st, MPI_BYTE, 0, MPI_COMM_WORLD);
        MPI_Bcast(r->resumed_from, (int)sizeof r->resumed_from, MPI_CHAR, 0, MPI_COMM_WORLD);
        dist_bcast_floats(MPI_COMM_WORLD, w->params, w->nparams);
        dist_bcast_floats(MPI_COMM_WORLD, w->m, w->nparams);
        dist_bcast_floats(MPI_COMM_WORLD, w->v, w->nparams);
        if (w->ema) dist_bcast_floats(MPI_COMM_WORLD, w->ema, w->nparams);
        params_sync_half(w);
    } else r->resumed_from[0] = 0;
    r->start_step = r->step = st->step;
    return found;
}

/* The settings as JSON: the run's kind and oneDNN's ISA, then the option table (with the
 * resolved --gemm and --precision). */
static void settings_json(const run_t *r, buf_t *b) {
    buf_puts(b, "{");
    json_str(b, MET_KIND);
    buf_puts(b, ": ");
    json_str(b, r->kind == CKPT_FINETUNE ? MET_KIND_FINETUNE : MET_KIND_PRETRAIN);
    buf_puts(b, ", ");
    json_str(b, MET_ONEDNN_ISA);
    buf_puts(b, ": ");
    json_str(b, gemm_onednn_isa());
    buf_t o = {0};
    options_json(&o, r->opts, r->nopt);
    if (o.s && o.len > 2) { buf_puts(b, ", "); buf_add(b, o.s + 1, o.len - 1); }   /* the table's pairs */
    else buf_puts(b, "}");
    buf_free(&o);
}

static void cpu_name(char *cpu, size_t n) {
    char line[512];
    snprintf(cpu, n, "?");
    FILE *ci = fopen("/proc/cpuinfo", "r");
    while (ci && fgets(line, sizeof line, ci))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(cpu, n, "%s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
    if (ci) fclose(ci);
}

void run_start(run_t *r, const params_t *w, long steps_per_epoch, double peak_lr, int use_mpi_allreduce,
               long segment, const char *extra, const char *banner) {
    err_t e = {0};
    r->steps_per_epoch = steps_per_epoch;
    r->ar = allreduce_create(MPI_COMM_WORLD, w->nparams, segment, use_mpi_allreduce);
    if (!r->ar) dist_finish(1);   /* allreduce_create reported the reason on every rank */
    if (watchdog_start(r->stall_timeout, r->prog)) err_set(&e, ERR_RUNTIME, "cannot start the stall watchdog");
    run_agree(r, &e);
    if (r->rank == 0) {
        char p[4200];
        buf_t sj = {0};
        settings_json(r, &sj);
        buf_puts(&sj, "\n");
        snprintf(p, sizeof p, "%s/settings.json", r->out);
        file_remove_stale_tmp(p);
        if (sj.oom) err_set(&e, ERR_RUNTIME, "%s: out of memory", p);
        else file_write_atomic(p, &(span_t){sj.s, sj.len}, 1, &e);
        buf_free(&sj);
        snprintf(p, sizeof p, "%s/metrics.jsonl", r->out);
        if (!e.kind && !(r->metrics = fopen(p, "a")))
            err_set(&e, err_kind_of_errno(errno), "%s: cannot open metrics: %s", p, strerror(errno));
    }
    run_agree(r, &e);
    if (r->rank != 0) return;
    char mpiv[MPI_MAX_LIBRARY_VERSION_STRING], host[256] = "?", cpu[256], h5[64];
    int len;
    MPI_Get_library_version(mpiv, &len);
    mpiv[strcspn(mpiv, "\n")] = 0;
    unsigned h5maj, h5min, h5rel;
    shards_hdf5_lock();   /* a loader thread owns HDF5 while it runs */
    H5get_libversion(&h5maj, &h5min, &h5rel);
    shards_hdf5_unlock();
    snprintf(h5, sizeof h5, "%u.%u.%u", h5maj, h5min, h5rel);
    gethostname(host, sizeof host - 1);
    cpu_name(cpu, sizeof cpu);
    const char *job = getenv("SLURM_JOB_ID"), *restart = getenv("SLURM_RESTART_COUNT"), *nodes = getenv("SLURM_JOB_NUM_NODES");
    buf_t *b = &r->line, v = {0}, s = {0};
    const gemm_config_t *gc = gemm_global_config();   /* what the GEMMs of this run use */
    metrics_begin(b, MET_RUN_START);
    metrics_str(b, MET_KIND, r->kind == CKPT_FINETUNE ? MET_KIND_FINETUNE : MET_KIND_PRETRAIN);
    metrics_num(b, MET_TIME, "%.3f", (double)time(NULL));
    metrics_int(b, MET_RANKS, r->world);
    metrics_int(b, MET_THREADS, omp_get_max_threads());
    metrics_str(b, MET_HOST, host);
    metrics_str(b, MET_CPU, cpu);
    metrics_int(b, "cores", sysconf(_SC_NPROCESSORS_ONLN));
    metrics_str(b, MET_NODES_HINT, nodes ? nodes : "1");
    metrics_str(b, MET_SLURM_JOB, job);
    metrics_raw(b, MET_RESTART_COUNT, restart && *restart && strspn(restart, "0123456789") == strlen(restart) ? restart : "0");
    metrics_str(b, MET_RESUMED_FROM, r->resumed_from[0] ? r->resumed_from : NULL);
    metrics_int(b, MET_START_STEP, r->start_step);
    metrics_int(b, MET_GLOBAL_BATCH, r->global_batch);
    metrics_int(b, MET_STEPS_PER_EPOCH, steps_per_epoch);
    metrics_int(b, MET_TOTAL_STEPS, r->total_steps);
    metrics_num(b, MET_PEAK_LR, "%.9g", peak_lr);
    metrics_int(b, MET_PARAMS, w->nparams);
    metrics_str(b, MET_GEMM, gemm_backend_name(gc->backend));
    metrics_str(b, MET_PRECISION, gemm_precision_name(gc));
    metrics_str(b, MET_ONEDNN_ISA, gemm_onednn_isa());
    metrics_str(b, MET_RESUMED_COMPUTE, r->resumed_compute[0] ? r->resumed_compute : NULL);
    if (extra) buf_puts(b, extra);
    buf_puts(&v, "{");
    json_str(&v, "mpi"); buf_puts(&v, ": "); json_str(&v, mpiv);
    buf_puts(&v, ", "); json_str(&v, "hdf5"); buf_puts(&v, ": "); json_str(&v, h5);
    buf_puts(&v, ", "); json_str(&v, "openblas"); buf_puts(&v, ": "); json_str(&v, openblas_get_config());
    buf_puts(&v, ", "); json_str(&v, "onednn"); buf_puts(&v, ": "); json_str(&v, gemm_onednn_version());
    buf_puts(&v, "}");
    metrics_raw(b, MET_VERSIONS, v.s ? v.s : "{}");
    options_json(&s, r->opts, r->nopt);
    metrics_raw(b, MET_SETTINGS, s.s ? s.s : "{}");
    metrics_line(r);
    buf_free(&v);
    buf_free(&s);
    printf("%s: %d ranks x %d threads, global batch %ld, %ld steps/epoch, %ld steps, peak lr %.3g, %s, %s\n", r->prog,
           r->world, omp_get_max_threads(), r->global_batch, steps_per_epoch, r->total_steps, peak_lr,
           gemm_config_name(gc), banner);
    if (r->resumed_from[0]) printf("%s: resumed from %s at step %ld\n", r->prog, r->resumed_from, r->start_step);
    fflush(stdout);
}

int run_step_agree(run_t *r, double loss, err_t *local, double *mean_loss) {
    double red[3] = {loss, local->kind != ERR_NONE, stop_signal != 0}, tot[3];
    MPI_Allreduce(red, tot, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (tot[1] > 0) {
        dist_agree(MPI_COMM_WORLD, local);   /* brings the first failing rank's error everywhere */
        if (r->rank == 0) fprintf(stderr, "%s: %s\n", r->prog, local->msg);
        r->exit_code = local->kind;
        r->end_reason = "data error";
        return -1;
    }
    r->signalled = tot[2] > 0;
    r->stop = r->signalled;
    *mean_loss = tot[0] / r->world;
    return 0;
}

int run_check_finite(run_t *r, const char *what, double x) {
    if (isfinite(x)) return 0;
    if (r->rank == 0)
        fprintf(stderr, "%s: %s is %s at step %ld; stopping (last good checkpoint kept)\n", r->prog, what,
                nonfinite_name(x), r->step);
    r->exit_code = ERR_NONFINITE;
    r->end_reason = !strcmp(what, "loss") ? "non-finite loss" : "non-finite gradients";
    return -1;
}

int run_allreduce(run_t *r, params_t *w) {
    int rc = allreduce_mean(r->ar, w->grads, w->nparams);
    if (rc == MPI_SUCCESS) return 0;
    if (r->rank == 0) fprintf(stderr, "%s: gradient all-reduce failed (MPI error %d)\n", r->prog, rc);
    r->exit_code = ERR_RUNTIME;
    r->end_reason = "all-reduce error";
    return -1;
}

int run_update(run_t *r, params_t *w, const optim_cfg_t *oc, double *lr, double *gnorm) {
    *gnorm = grad_norm(w->grads, w->nparams);   /* identical on every rank: the buffers are */
    if (run_check_finite(r, "gradient norm", *gnorm)) return -1;
    *lr = optim_lr_at(optim_peak_lr(oc, r->global_batch), oc->min_lr, r->step, oc->warmup_iters, oc->total_iters);
    optim_update(w, oc, *lr, r->step + 1, *gnorm);
    return 0;
}

void run_step_done(run_t *r, loader *ld, ckpt_state_t *st, int epoch, double loss, double lr, double gnorm,
                   const run_times_t *t) {
    /* the step's slowest-rank times and the replica check that follows are collectives: a
     * link that dies here is a stuck communication, not a stuck computation */
    run_phase(r, WATCHDOG_ALLREDUCE);
    int next_epoch;
    loader_tell(ld, &next_epoch, &st->epoch_step);
    st->epoch = next_epoch;
    st->step = r->step + 1;
    r->step++;
    r->steps_this_run++;
    if (r->max_steps_this_run > 0 && r->steps_this_run >= r->max_steps_this_run) r->stop = 1;
    double tm[4] = {t->data, t->compute, t->comm, t->step}, mx[4];   /* the slowest rank's */
    MPI_Reduce(tm, mx, 4, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (r->rank != 0) return;
    buf_t *b = &r->line;
    metrics_begin(b, MET_STEP);
    metrics_int(b, MET_STEP, r->step);
    metrics_int(b, MET_EPOCH, epoch);
    metrics_num(b, MET_LOSS, "%.7g", loss);
    metrics_num(b, MET_LR, "%.7g", lr);
    metrics_num(b, MET_GRAD_NORM, "%.7g", gnorm);
    metrics_num(b, MET_IMAGES_PER_S, "%.3f", r->global_batch / mx[3]);
    metrics_num(b, MET_STEP_S, "%.5f", mx[3]);
    metrics_num(b, MET_DATA_WAIT_S, "%.5f", mx[0]);
    metrics_num(b, MET_COMPUTE_S, "%.5f", mx[1]);
    metrics_num(b, MET_COMM_S, "%.5f", mx[2]);
    metrics_line(r);
    /* a fresh monitor result is always shown: in the step line, or alone when there is none */
    const char *note = r->note_step == r->step ? r->note : "";
    if (r->step % r->log_every == 0 || r->step == r->total_steps) {
        printf("step %6ld/%ld  epoch %3d  loss %.4f  lr %.3g  |g| %.3f  %.1f img/s  (data %.0f ms, comm %.0f ms)%s\n", r->step,
               r->total_steps, epoch, loss, lr, gnorm, r->global_batch / mx[3], 1e3 * mx[0], 1e3 * mx[2], note);
        fflush(stdout);
    } else if (*note) {
        printf("step %6ld/%ld%s\n", r->step, r->total_steps, note);
        fflush(stdout);
    }
}

int run_monitor_due(const run_t *r, long every, long step) {
    if (every <= 0) return 0;
    if (step == r->start_step && step > 0) return 0;   /* evaluated before that checkpoint was written */
    return step % every == 0 || step == r->total_steps;
}

int run_monitor(run_t *r, monitor_t *mon, model_t *m, long step) {
    watchdog_phase(step, WATCHDOG_EVAL);   /* the evaluation belongs to the step it measures */
    monitor_result_t res;
    err_t e;
    if (monitor_eval(mon, m, MPI_COMM_WORLD, &res, &e)) {
        if (r->rank == 0) fprintf(stderr, "%s: monitor: %s\n", r->prog, e.msg);
        r->exit_code = e.kind;
        r->end_reason = "monitor error";
        return -1;
    }
    double fk[2] = {res.features_s, res.knn_s}, mk[2];   /* the slowest rank's */
    MPI_Reduce(fk, mk, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    if (r->rank != 0) return 0;
    buf_t *b = &r->line;
    char key[64];
    metrics_begin(b, MET_MONITOR);
    metrics_int(b, MET_STEP, step);
    metrics_num(b, MET_EPOCH, "%.4f", r->steps_per_epoch > 0 ? (double)step / r->steps_per_epoch : 0.0);
    metrics_int(b, MET_MON_BANK, res.bank);
    metrics_int(b, MET_MON_QUERIES, res.queries);
    metrics_int(b, MET_MON_K, res.k);
    metrics_int(b, MET_MON_CLASSES, res.num_classes);
    for (int k = 0; k < FEATSET_KINDS; k++) {
        snprintf(key, sizeof key, MET_MON_TOP1 "%s", featset_kinds[k]);
        metrics_num(b, key, "%.4f", res.top1[k]);
        snprintf(key, sizeof key, MET_MON_TOP5 "%s", featset_kinds[k]);
        metrics_num(b, key, "%.4f", res.top5[k]);
    }
    metrics_num(b, MET_FEATURES_S, "%.3f", mk[0]);
    metrics_num(b, MET_KNN_S, "%.3f", mk[1]);
    metrics_num(b, MET_SECONDS, "%.3f", mk[0] + mk[1]);
    metrics_line(r);
    int n = snprintf(r->note, sizeof r->note, "  k-NN");
    for (int k = 0; k < FEATSET_KINDS && n < (int)sizeof r->note; k++)
        n += snprintf(r->note + n, sizeof r->note - n, " %s %.1f", featset_kinds[k], res.top1[k]);
    r->note_step = step;
    if (step == r->step) {   /* no step line follows for this step */
        printf("step %6ld/%ld%s  (bank %ld, queries %ld, %.1f s)\n", step, r->total_steps, r->note, res.bank, res.queries,
               mk[0] + mk[1]);
        fflush(stdout);
    }
    return 0;
}

int run_check_replicas(run_t *r, const params_t *w) {
    if (r->step % r->check_every) return 0;
    err_t e = {0};
    if (replicas_verify(MPI_COMM_WORLD, w->params, w->nparams, r->step, &e) == 0) return 0;
    if (r->rank == 0) fprintf(stderr, "%s: %s\n", r->prog, e.msg);
    r->exit_code = ERR_RUNTIME;
    r->end_reason = "replica mismatch";
    return -1;
}

/* Free space a step file needs beyond its own size: room for what else the folder gets
 * meanwhile (metrics, the file system's own blocks). */
#define CKPT_FREE_MARGIN (64LL << 20)

static void checkpoint_skipped(run_t *r, const char *reason, const char *error, long long free_b, long long need_b) {
    buf_t *b = &r->line;
    metrics_begin(b, MET_CHECKPOINT_SKIPPED);
    metrics_int(b, MET_STEP, r->step);
    metrics_str(b, MET_REASON, reason);
    metrics_str(b, "error", error);
    if (free_b >= 0) { metrics_int(b, "free_bytes", free_b); metrics_int(b, "need_bytes", need_b); }
    metrics_line(r);
}

int run_checkpoint(run_t *r, const ckpt_model_t *id, const params_t *w, const ckpt_state_t *st) {
    if (r->step % r->ckpt_every && r->step != r->total_steps && !r->stop) return 0;
    /* the last one (end of training, or a stop) must be written; the others may wait for the
     * next interval when the disk is full or failing: training goes on */
    int last = r->step == r->total_steps || r->stop;
    err_t e = {0};
    if (r->rank == 0) {
        long long need = ckpt_file_bytes(id) + CKPT_FREE_MARGIN, avail = -1;
        int short_of_space = file_free_bytes(r->out, &avail) == 0 && avail < need;
        if (short_of_space) {
            fprintf(stderr, "%s: warning: %s has %.1f MiB free, a checkpoint needs %.1f MiB%s\n", r->prog, r->out,
                    avail / 1048576.0, need / 1048576.0, last ? "; writing the last one anyway" : "; skipped until the next interval");
            if (!last) checkpoint_skipped(r, "low disk space", NULL, avail, need);
        }
        double t0 = clock_now();
        if (short_of_space && !last) { /* skipped */ }
        else if (ckpt_save(r->out, id, w, st, r->keep, &e) == 0) {
            buf_t *b = &r->line;
            metrics_begin(b, MET_CHECKPOINT);
            metrics_int(b, MET_STEP, r->step);
            metrics_int(b, MET_EPOCH, st->epoch);
            metrics_num(b, MET_SECONDS, "%.3f", clock_now() - t0);
            metrics_line(r);
        } else if (!last) {
            fprintf(stderr, "%s: warning: checkpoint at step %ld not written (%s); training goes on, the next one is due at "
                    "step %ld\n", r->prog, r->step, e.msg, (r->step / r->ckpt_every + 1) * r->ckpt_every);
            checkpoint_skipped(r, "write failed", e.msg, -1, -1);
            err_clear(&e);
        }
    }
    if (dist_agree(MPI_COMM_WORLD, &e)) {
        if (r->rank == 0) fprintf(stderr, "%s: %s (the last checkpoint could not be written; older ones are kept)\n", r->prog, e.msg);
        r->exit_code = ERR_RUNTIME;
        r->end_reason = "checkpoint error";
        return -1;
    }
    if (r->stop) {
        r->end_reason = r->signalled ? "signal" : "max-steps-this-run";
        if (r->rank == 0) printf("%s: stopping at step %ld (%s), checkpoint written\n", r->prog, r->step, r->end_reason);
    }
    return 0;
}

void run_phase(run_t *r, watchdog_phase_t phase) {
    int done = phase == WATCHDOG_CHECKPOINT || phase == WATCHDOG_EVAL;   /* they belong to the step just finished */
    watchdog_phase(done ? r->step : r->step + 1, phase);
}

void run_event(run_t *r, const char *event, const char *pairs) {
    if (r->rank != 0) return;
    metrics_begin(&r->line, event);
    if (pairs) buf_puts(&r->line, pairs);
    metrics_line(r);
}

int run_end(run_t *r) {
    watchdog_stop();
    if (r->rank == 0 && r->metrics) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        buf_t *b = &r->line;
        metrics_begin(b, MET_RUN_END);
        metrics_int(b, MET_STEP, r->step);
        metrics_str(b, MET_REASON, r->end_reason);
        /* which signal rank 0 saw: lets a job script tell Slurm's USR1 warning from a TERM */
        metrics_str(b, "signal", stop_signal == SIGUSR1 ? "SIGUSR1" : stop_signal == SIGTERM ? "SIGTERM" : NULL);
        metrics_int(b, MET_EXIT_CODE, r->exit_code);
        metrics_num(b, MET_SECONDS, "%.3f", clock_now() - r->t_start);
        metrics_num(b, MET_PEAK_RSS_GIB, "%.3f", ru.ru_maxrss / 1048576.0);
        metrics_int(b, "grad_allreduces", r->ar ? allreduce_calls(r->ar) : 0);
        metrics_int(b, MET_LINES_LOST, r->metrics_lost);
        metrics_line(r);
        if (r->metrics_lost)
            fprintf(stderr, "%s: warning: %ld metrics lines could not be written (see above)\n", r->prog, r->metrics_lost);
        fclose(r->metrics);
        r->metrics = NULL;
    }
    buf_free(&r->line);
    if (r->ar) allreduce_free(r->ar);
    r->ar = NULL;
    return r->exit_code;
}
