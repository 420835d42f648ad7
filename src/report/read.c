/* Reading run folders for the scaling report: metrics.jsonl line by line (a bad line is a
 * warning with file and line, never the end of the report) and the search for run folders. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include "core/buf.h"
#include "core/files.h"
#include "core/json.h"
#include "semaim/metrics.h"
#include "report/lines.h"
#include "semaim/report.h"

#define REPORT_KEEP_WARNINGS 200

void report_default_opts(report_opts_t *o) {
    o->warmup_min = 2;
    o->warmup_frac = 0.1;
    o->bootstrap = 1000;
    o->seed = 0x5ca1e;
}

report_t *report_new(const report_opts_t *o) {
    report_t *R = calloc(1, sizeof *R);
    if (!R) return NULL;
    if (o) R->opt = *o; else report_default_opts(&R->opt);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(R->created, sizeof R->created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return R;
}

static void run_free(report_run_t *r) {
    free(r->path); free(r->name); free(r->config); free(r->model); free(r->nodes); free(r->slurm_jobs);
    free(r->version_mpi); free(r->version_hdf5); free(r->version_openblas); free(r->steps);
    memset(r, 0, sizeof *r);
}

void report_free(report_t *R) {
    if (!R) return;
    for (int i = 0; i < R->nruns; i++) run_free(&R->runs[i]);
    free(R->runs);
    for (int s = 0; s < R->nseries; s++) {
        for (int p = 0; p < R->series[s].npoints; p++) free(R->series[s].points[p].runs);
        free(R->series[s].points);
    }
    free(R->series);
    for (int i = 0; i < R->nwarn; i++) free(R->warn[i]);
    free(R->warn);
    free(R->in_series);
    free(R);
}

void report_warn(report_t *R, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (R->log) fprintf(R->log, "semaim-report: %s\n", msg);
    R->nwarn_total++;
    /* a file of garbage would otherwise make the report as long as the file */
    if (R->nwarn >= REPORT_KEEP_WARNINGS) return;
    if (R->nwarn == R->warn_cap) {
        int cap = R->warn_cap ? 2 * R->warn_cap : 16;
        char **w = realloc(R->warn, (size_t)cap * sizeof *w);
        if (!w) return;
        R->warn = w;
        R->warn_cap = cap;
    }
    char *copy = strdup(msg);
    if (copy) R->warn[R->nwarn++] = copy;
}

/* ------------------------------------------------------------------ one metrics line */

int report_get_num(const json_t *o, const char *key, double *v) {
    return json_getnum(o, key, v) == 0 && isfinite(*v) ? 0 : -1;
}

int report_get_int(const json_t *o, const char *key, long lo, long hi, long *v) {
    double d;
    if (report_get_num(o, key, &d) || d != floor(d) || d < lo || d > hi) return -1;
    *v = (long)d;
    return 0;
}

/* The settings that describe the model, in the order people read them. */
static const char *const model_keys[] = {"preset", "image", "patch", "width", "depth", "dec-depth", "heads", "order", "allreduce"};

void report_model_text(const json_t *settings, long params, char *out, size_t n) {
    char val[9][128];
    for (int k = 0; k < 9; k++) json_text(json_get(settings, model_keys[k]), val[k], sizeof val[k]);
    /* the preset and whatever overrides it (0 = the preset's) */
    int len = snprintf(out, n, "%s", *val[0] ? val[0] : "model");
    for (int k = 1; k < 7 && len < (int)n; k++)
        if (*val[k] && strcmp(val[k], "0")) len += snprintf(out + len, n - len, " %s %s", model_keys[k], val[k]);
    if (params && len < (int)n) len += snprintf(out + len, n - len, ", %.3g M params", params / 1e6);
    if (*val[7] && len < (int)n) len += snprintf(out + len, n - len, ", %s order", val[7]);
    if (*val[8] && len < (int)n) snprintf(out + len, n - len, ", %s all-reduce", val[8]);
}

/* Appends s to the comma-separated set *list unless it is there already. */
static int set_add(char **list, const char *s) {
    if (!s || !*s) return 0;
    size_t n = strlen(s), have = *list ? strlen(*list) : 0;
    for (const char *p = *list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !memcmp(p, s, n)) return 0;
        p = e ? e + 1 : p + len;
    }
    char *grown = realloc(*list, have + n + 2);
    if (!grown) return -1;
    if (have) grown[have++] = ',';
    memcpy(grown + have, s, n + 1);
    *list = grown;
    return 0;
}

typedef struct {
    int ranks, threads;
    long global_batch, params;
    double gflop;
    char config[2048], model[512], nodes[64], job[128];
    char mpi[512], hdf5[64], openblas[512];
} start_t;

/* Fills st from a run_start object; returns a reason on a line the report cannot use. */
static const char *parse_start(const json_t *o, start_t *st) {
    long v;
    memset(st, 0, sizeof *st);
    if (report_get_int(o, MET_RANKS, 1, 10000000, &v)) return "run_start without an integer \"ranks\" >= 1";
    st->ranks = (int)v;
    if (report_get_int(o, MET_GLOBAL_BATCH, 1, 1L << 40, &st->global_batch)) return "run_start without an integer \"global_batch\" >= 1";
    if (st->global_batch % st->ranks) return "run_start: \"global_batch\" is not a multiple of \"ranks\"";
    if (report_get_int(o, MET_THREADS, 1, 1000000, &v)) return "run_start without an integer \"threads\" >= 1";
    st->threads = (int)v;
    if (report_get_int(o, MET_PARAMS, 0, 1L << 50, &st->params)) st->params = 0;
    if (report_get_num(o, MET_GFLOP_PER_IMAGE, &st->gflop) || st->gflop < 0) st->gflop = 0;
    json_text(json_get(o, MET_NODES_HINT), st->nodes, sizeof st->nodes);
    json_text(json_get(o, MET_SLURM_JOB), st->job, sizeof st->job);
    const json_t *ver = json_get(o, MET_VERSIONS);
    json_text(json_get(ver, "mpi"), st->mpi, sizeof st->mpi);
    json_text(json_get(ver, "hdf5"), st->hdf5, sizeof st->hdf5);
    json_text(json_get(ver, "openblas"), st->openblas, sizeof st->openblas);
    /* The settings that change the work per image or how it is done: runs that differ in any
     * of them never share a series. */
    const json_t *set = json_get(o, MET_SETTINGS);
    static const char *const keys[] = {"preset", "image", "patch", "width", "depth", "dec-depth", "heads",
                                       "order", "allreduce", "segment", "loader-threads"};
    char val[11][128];
    for (int k = 0; k < 11; k++) json_text(json_get(set, keys[k]), val[k], sizeof val[k]);
    snprintf(st->config, sizeof st->config,
             "params=%ld gflop=%.4f threads=%d preset=%s image=%s patch=%s width=%s depth=%s dec-depth=%s heads=%s "
             "order=%s allreduce=%s segment=%s loader-threads=%s",
             st->params, st->gflop, st->threads, val[0], val[1], val[2], val[3], val[4], val[5], val[6], val[7],
             val[8], val[9], val[10]);
    report_model_text(set, st->params, st->model, sizeof st->model);
    return NULL;
}

static const char *parse_step(const json_t *o, report_step_t *s) {
    if (report_get_num(o, MET_STEP_S, &s->step_s) || !(s->step_s > 0)) return "step line without a finite \"step_s\" > 0";
    if (report_get_num(o, MET_DATA_WAIT_S, &s->wait_s) || s->wait_s < 0) return "step line without a finite \"data_wait_s\" >= 0";
    if (report_get_num(o, MET_COMPUTE_S, &s->compute_s) || s->compute_s < 0) return "step line without a finite \"compute_s\" >= 0";
    if (report_get_num(o, MET_COMM_S, &s->comm_s) || s->comm_s < 0) return "step line without a finite \"comm_s\" >= 0";
    return NULL;
}

/* ------------------------------------------------------------------ one metrics file */

typedef struct {
    report_run_t *runs;   /* this file's runs, one per configuration */
    int n, cap;
    int cur;              /* run of the current invocation, -1 before the first run_start */
    report_step_t *seg;   /* the current invocation's steps, warm-up included */
    long nseg, segcap;
} file_state_t;

static int push_step(report_step_t **a, long *n, long *cap, const report_step_t *s) {
    if (*n == *cap) {
        long c = *cap ? 2 * *cap : 64;
        report_step_t *g = realloc(*a, (size_t)c * sizeof *g);
        if (!g) return -1;
        *a = g;
        *cap = c;
    }
    (*a)[(*n)++] = *s;
    return 0;
}

/* Ends an invocation: its first steps are warm-up, the rest go to its run. */
static int flush_segment(report_t *R, file_state_t *fs) {
    if (fs->cur >= 0 && fs->nseg > 0) {
        long skip = (long)ceil(R->opt.warmup_frac * (double)fs->nseg - 1e-9);
        if (skip < R->opt.warmup_min) skip = R->opt.warmup_min;
        report_run_t *r = &fs->runs[fs->cur];
        for (long i = skip; i < fs->nseg; i++)
            if (push_step(&r->steps, &r->nsteps, &r->cap, &fs->seg[i])) return -1;
    }
    fs->nseg = 0;
    return 0;
}

static int start_run(file_state_t *fs, const start_t *st, const char *path, const char *name, int kind_hint) {
    for (int i = 0; i < fs->n; i++) {
        report_run_t *r = &fs->runs[i];
        if (r->ranks == st->ranks && r->global_batch == st->global_batch && !strcmp(r->config, st->config)) {
            fs->cur = i;
            r->invocations++;
            if (set_add(&r->nodes, st->nodes) || set_add(&r->slurm_jobs, st->job)) return -1;
            return 0;
        }
    }
    if (fs->n == fs->cap) {
        int c = fs->cap ? 2 * fs->cap : 4;
        report_run_t *g = realloc(fs->runs, (size_t)c * sizeof *g);
        if (!g) return -1;
        fs->runs = g;
        fs->cap = c;
    }
    report_run_t *r = &fs->runs[fs->n];
    memset(r, 0, sizeof *r);
    char label[4200];
    if (fs->n == 0) snprintf(label, sizeof label, "%s", name);
    else snprintf(label, sizeof label, "%s#%d", name, fs->n + 1);
    r->path = strdup(path);
    r->name = strdup(label);
    r->config = strdup(st->config);
    r->model = strdup(st->model);
    r->slurm_jobs = strdup("");
    r->nodes = strdup("");
    r->version_mpi = strdup(st->mpi);
    r->version_hdf5 = strdup(st->hdf5);
    r->version_openblas = strdup(st->openblas);
    fs->cur = fs->n++;
    if (!r->path || !r->name || !r->config || !r->model || !r->slurm_jobs || !r->nodes || !r->version_mpi ||
        !r->version_hdf5 || !r->version_openblas)
        return -1;
    r->kind_hint = kind_hint;
    r->ranks = st->ranks;
    r->threads = st->threads;
    r->global_batch = st->global_batch;
    r->batch = st->global_batch / st->ranks;
    r->params = st->params;
    r->gflop_per_image = st->gflop;
    r->invocations = 1;
    if (set_add(&r->nodes, st->nodes) || set_add(&r->slurm_jobs, st->job)) return -1;
    return 0;
}

const char report_line_stop[] = "stop", report_line_oom[] = "out of memory";

int report_read_lines(report_t *R, const char *path, report_line_fn fn, void *ctx, err_t *err) {
    FILE *f = fopen(path, "r");
    if (!f) return err_set(err, ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long ln = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        ln++;
        int complete = len > 0 && line[len - 1] == '\n';
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        size_t k = 0;
        while (k < (size_t)len && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == (size_t)len) continue;   /* a blank line carries nothing */
        json_t o;
        err_t je;
        if (json_parse(line, (size_t)len, &o, &je)) {
            /* the writer was killed mid-line, or is writing it now, or the file was cut: the usual
             * end of a crashed job or of a run that is still going */
            report_warn(R, "%s:%ld: not JSON (%s); line skipped", path, ln,
                        complete ? je.msg : "truncated line (no newline at the end of the file)");
            R->bad_lines++;
            continue;
        }
        const char *ev = json_gets(&o, MET_EVENT);
        const char *problem = o.type != JSON_OBJ ? "not a JSON object" : !ev ? "no \"event\" string" : fn(ctx, &o, ev, ln);
        json_free(&o);
        if (problem == report_line_stop) break;
        if (problem == report_line_oom) { rc = err_set(err, ERR_RUNTIME, "%s: out of memory", path); break; }
        if (problem) {
            report_warn(R, "%s:%ld: %s; line skipped", path, ln, problem);
            R->bad_lines++;
        }
    }
    if (!rc && ferror(f)) rc = err_set(err, ERR_INPUT, "%s: read error after line %ld: %s", path, ln, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

typedef struct {
    report_t *R;
    file_state_t fs;
    const char *path, *name;
    int kind_hint, other_kind;
} add_ctx_t;

static const char *add_line(void *arg, const json_t *o, const char *ev, long ln) {
    add_ctx_t *c = arg;
    file_state_t *fs = &c->fs;
    (void)ln;
    if (!strcmp(ev, MET_RUN_START) && json_gets(o, MET_KIND) && strcmp(json_gets(o, MET_KIND), MET_KIND_PRETRAIN)) {
        /* a fine-tuning (or other) run folder: its steps are not pretraining steps */
        report_warn(c->R, "%s: a %s run, not pretraining; left out of the scaling report", c->path, json_gets(o, MET_KIND));
        c->other_kind = 1;
        return report_line_stop;
    }
    if (!strcmp(ev, MET_RUN_START)) {
        start_t st;
        const char *problem = parse_start(o, &st);
        if (flush_segment(c->R, fs)) return report_line_oom;
        if (problem) {
            fs->cur = -1;   /* steps after an unusable start cannot be attributed to a configuration */
            return problem;
        }
        return start_run(fs, &st, c->path, c->name, c->kind_hint) ? report_line_oom : NULL;
    }
    if (!strcmp(ev, MET_STEP)) {
        report_step_t s;
        const char *problem = parse_step(o, &s);
        if (!problem && fs->cur < 0) problem = "step line without a valid run_start before it";
        if (problem) return problem;
        if (push_step(&fs->seg, &fs->nseg, &fs->segcap, &s)) return report_line_oom;
        fs->runs[fs->cur].step_lines++;
    }
    /* other events (checkpoint, monitor, run_end, ones added later) carry nothing the scaling report needs */
    return NULL;
}

int report_add_metrics(report_t *R, const char *path, const char *name, int kind_hint, err_t *err) {
    add_ctx_t c = {R, {NULL, 0, 0, -1, NULL, 0, 0}, path, name, kind_hint, 0};
    file_state_t *fs = &c.fs;
    int fail = report_read_lines(R, path, add_line, &c, err) ? -1 : 0;   /* err says which */
    if (c.other_kind) for (int i = 0; i < fs->n; i++) fs->runs[i].nsteps = -1;   /* none of them counts */
    if (!fail && flush_segment(R, fs)) fail = err_set(err, ERR_RUNTIME, "%s: out of memory", path);
    free(fs->seg);
    int added = 0;
    for (int i = 0; i < fs->n; i++) {
        report_run_t *r = &fs->runs[i];
        if (fail || r->nsteps <= 0) {
            if (!fail && r->nsteps == 0)
                report_warn(R, "%s: run on %d ranks (global batch %ld) has no steady-state steps (%ld step lines, the "
                            "first max(%d, %g%%) of each invocation are warm-up); left out",
                            path, r->ranks, r->global_batch, r->step_lines, R->opt.warmup_min, 100 * R->opt.warmup_frac);
            run_free(r);
            continue;
        }
        if (R->nruns == R->runs_cap) {
            int cap = R->runs_cap ? 2 * R->runs_cap : 16;
            report_run_t *g = realloc(R->runs, (size_t)cap * sizeof *g);
            if (!g) { fail = err_set(err, ERR_RUNTIME, "%s: out of memory", path); run_free(r); continue; }
            R->runs = g;
            R->runs_cap = cap;
        }
        R->runs[R->nruns++] = *r;
        added++;
    }
    free(fs->runs);
    if (fail) return -1;
    if (fs->n == 0 && !c.other_kind) report_warn(R, "%s: no valid run_start line; file left out", path);
    return added;
}

/* ------------------------------------------------------------------ folders of runs */

static int kind_of(const char *component) {
    if (!strncasecmp(component, "strong", 6)) return REPORT_STRONG;
    if (!strncasecmp(component, "weak", 4)) return REPORT_WEAK;
    return REPORT_ANY;
}

/* The first path component (of the name relative to the folder of runs) that says strong or
 * weak decides. */
static int kind_of_path(const char *rel) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", rel);
    for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        int k = kind_of(c);
        if (k) return k;
    }
    return REPORT_ANY;
}

typedef struct {
    report_t *R;
    const char *root;
    int metrics, runs, entries;
    err_t *err;
    int failed;
    dev_t *dev;           /* folders already walked: a symbolic link may lead back up the tree */
    ino_t *ino;
    int nseen, capseen;
} walk_t;

/* Returns 1 if the folder was walked before, else records it. */
static int seen_before(walk_t *w, const struct stat *st) {
    for (int i = 0; i < w->nseen; i++) if (w->dev[i] == st->st_dev && w->ino[i] == st->st_ino) return 1;
    if (w->nseen == w->capseen) {
        int c = w->capseen ? 2 * w->capseen : 64;
        dev_t *d = realloc(w->dev, (size_t)c * sizeof *d);
        if (d) w->dev = d;
        ino_t *n = realloc(w->ino, (size_t)c * sizeof *n);
        if (n) w->ino = n;
        if (!d || !n) return 1;   /* out of memory: walk no further rather than loop */
        w->capseen = c;
    }
    w->dev[w->nseen] = st->st_dev;
    w->ino[w->nseen++] = st->st_ino;
    return 0;
}

static int looks_like_run(const char *dir, const char *base) {
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/settings.json", dir);
    if (!stat(p, &st)) return 1;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int yes = kind_of(base) != REPORT_ANY;
    struct dirent *e;
    while (!yes && (e = readdir(d))) yes = !strncmp(e->d_name, "ckpt-", 5);
    closedir(d);
    return yes;
}

static void walk(walk_t *w, const char *dir, const char *rel, int depth) {
    if (w->failed) return;
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, versionsort);
    if (n < 0) {
        if (depth == 0) { err_set(w->err, ERR_INPUT, "%s: cannot list: %s", dir, strerror(errno)); w->failed = 1; }
        else report_warn(w->R, "%s: cannot list: %s; left out", dir, strerror(errno));
        return;
    }
    char p[4200], r[4200];
    struct stat st;
    int has_metrics = 0, subdirs = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = ents[i]->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..")) w->entries += depth == 0;
        if (!strcmp(nm, "metrics.jsonl")) {
            snprintf(p, sizeof p, "%s/%s", dir, nm);
            if (!stat(p, &st) && S_ISREG(st.st_mode)) has_metrics = 1;
        }
    }
    if (has_metrics) {
        snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
        const char *base = strrchr(w->root, '/');
        base = base && base[1] ? base + 1 : w->root;
        const char *name = *rel ? rel : base;
        w->metrics++;
        int got = report_add_metrics(w->R, p, name, kind_of_path(*rel ? rel : base), w->err);
        if (got < 0) {
            report_warn(w->R, "%s; left out", w->err->msg);
            err_clear(w->err);
        } else w->runs += got;
    }
    for (int i = 0; i < n; i++) {
        const char *nm = ents[i]->d_name;
        if (nm[0] == '.' || depth >= 16) continue;   /* hidden: temporary and tool folders */
        snprintf(p, sizeof p, "%s/%s", dir, nm);
        /* symbolic links are followed (a report folder may link runs from elsewhere), once each */
        if (stat(p, &st) || !S_ISDIR(st.st_mode) || seen_before(w, &st)) continue;
        subdirs++;
        if (*rel) snprintf(r, sizeof r, "%s/%s", rel, nm); else snprintf(r, sizeof r, "%s", nm);
        walk(w, p, r, depth + 1);
    }
    if (!has_metrics && depth > 0 && looks_like_run(dir, strrchr(dir, '/') + 1) && (!subdirs || kind_of(strrchr(dir, '/') + 1)))
        report_warn(w->R, "%s: run folder without metrics.jsonl (the run did not start, or wrote elsewhere); left out", dir);
    for (int i = 0; i < n; i++) free(ents[i]);
    free(ents);
}

int report_add_folder(report_t *R, const char *dir, err_t *err) {
    struct stat st;
    if (stat(dir, &st)) { err_set(err, ERR_INPUT, "%s: %s", dir, strerror(errno)); return -1; }
    if (!S_ISDIR(st.st_mode)) { err_set(err, ERR_INPUT, "%s: not a folder (--runs wants a folder of run folders)", dir); return -1; }
    snprintf(R->runs_dir, sizeof R->runs_dir, "%s", dir);
    char root[4096];
    snprintf(root, sizeof root, "%s", dir);
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/') root[--n] = 0;
    err_clear(err);
    walk_t w = {R, root, 0, 0, 0, err, 0, NULL, NULL, 0, 0};
    seen_before(&w, &st);
    walk(&w, root, "", 0);
    free(w.dev);
    free(w.ino);
    if (w.failed) return -1;
    if (w.entries == 0) { err_set(err, ERR_INPUT, "%s: the folder is empty (no run folders)", dir); return -1; }
    if (w.metrics == 0) {
        err_set(err, ERR_INPUT, "%s: no metrics.jsonl found in it or below (run folders are semaim-train --out folders)", dir);
        return -1;
    }
    if (w.runs == 0) {
        err_set(err, ERR_INPUT, "%s: none of its %d metrics.jsonl files has a run with steady-state steps (see the "
                 "warnings above)", dir, w.metrics);
        return -1;
    }
    return w.runs;
}
