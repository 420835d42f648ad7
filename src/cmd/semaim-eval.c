/* semaim-eval: evaluation and export of a pretrained SemAIM encoder (SPEC §5).
 *   features  encoder features of one split → HDF5
 *   knn       k-NN top-1/top-5 (train split = memory bank, val split = queries)
 *   linprobe  linear probe on frozen cls features
 *   export    checkpoint → safetensors with timm / authors' tensor names
 *   import    safetensors → checkpoint (config inferred from the shapes or given)
 * Every subcommand runs under mpirun (features and k-NN are split by rank); export and import
 * work on rank 0. Exit codes: 0 success, 1 runtime error, 2 bad input, 3 non-finite loss. */
#include <errno.h>
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
#include "core/buf.h"
#include "core/clock.h"
#include "core/files.h"
#include "core/json.h"
#include "semaim/allreduce.h"
#include "semaim/checkpoint.h"
#include "semaim/eval.h"
#include "semaim/finetune.h"
#include "semaim/loader.h"
#include "semaim/model.h"
#include "semaim/model_io.h"
#include "semaim/optim.h"
#include "semaim/options.h"

static int rank_, world_;

static void finish(int code) {
    fflush(stdout);
    fflush(stderr);
    MPI_Finalize();
    exit(code);
}

/* Every rank calls this at the same point; if any failed, the first failing rank's message is
 * printed once (by rank 0) and all exit with code. */
static void agree_or_die(int failed, const char *msg, int code) {
    int who = failed ? rank_ : world_, first;
    MPI_Allreduce(&who, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == world_) return;
    char buf[4096] = "";
    if (rank_ == first) snprintf(buf, sizeof buf, "%s", msg);
    MPI_Bcast(buf, sizeof buf, MPI_CHAR, first, MPI_COMM_WORLD);
    if (rank_ == 0) fprintf(stderr, "semaim-eval: %s\n", buf);
    finish(code);
}

static void bcast_floats(float *buf, long n) {
    for (long o = 0; o < n; o += 1L << 30) {
        long c = n - o < (1L << 30) ? n - o : (1L << 30);
        MPI_Bcast(buf + o, (int)c, MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
}

/* ------------------------------------------------------------------ the model to evaluate */

typedef struct {
    const char *checkpoint, *weights;
    int at_init;
    semaim_config_t given;   /* 0 = not given */
    long seed;
} source_t;

#define SOURCE_OPTIONS(src)                                                                                         \
    {"checkpoint", OPT_STRING, &(src).checkpoint, "pretraining checkpoint (ckpt-*.bin) to evaluate", 0, 0, 0},      \
    {"weights", OPT_STRING, &(src).weights, "or: a safetensors file with timm / authors' names", 0, 0, 0},          \
    {"at-init", OPT_FLAG, &(src).at_init, "evaluate the encoder at initialisation (same config and run seed)", 0, 0, 0}, \
    {"image", OPT_INT, &(src).given.image, "model image size (checked against the checkpoint/file; 0 = infer)", 0, 8192, 0}, \
    {"patch", OPT_INT, &(src).given.patch, "patch size (0 = infer)", 0, 8192, 0},                                   \
    {"width", OPT_INT, &(src).given.width, "width D (0 = infer)", 0, 16384, 0},                                     \
    {"depth", OPT_INT, &(src).given.depth, "encoder depth (0 = infer)", 0, 1024, 0},                                \
    {"dec-depth", OPT_INT, &(src).given.dec_depth, "decoder depth (0 = infer; 1 if the file has no decoder)", 0, 1024, 0}, \
    {"heads", OPT_INT, &(src).given.heads, "attention heads (0 = infer: metadata, else width/64)", 0, 1024, 0},      \
    {"seed", OPT_LONG, &(src).seed, "init seed with --weights --at-init (a checkpoint brings its own)", 0, 9.2e18, 0}

typedef struct {
    char desc[4200];   /* the checkpoint or weights path (for results) */
    long step;         /* the checkpoint's step; -1 for weights */
    int has_decoder;
} source_info_t;

static int check_given(const char *path, const semaim_config_t *c, const semaim_config_t *g, char *err, size_t errlen) {
    const struct { const char *n; int have, want; } f[] = {{"image", c->image, g->image}, {"patch", c->patch, g->patch},
        {"width", c->width, g->width}, {"depth", c->depth, g->depth}, {"dec-depth", c->dec_depth, g->dec_depth},
        {"heads", c->heads, g->heads}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].want > 0 && f[i].want != f[i].have) {
            snprintf(err, errlen, "%s: checkpoint is for another config (image %d patch %d width %d depth %d dec-depth %d "
                     "heads %d), not the --%s %d given", path, c->image, c->patch, c->width, c->depth, c->dec_depth,
                     c->heads, f[i].n, f[i].want);
            return -1;
        }
    return 0;
}

/* Builds m on every rank from src: rank 0 reads, everyone receives. need_decoder: the whole
 * pretraining model must come from a weights file. Exits with code 2 on bad input. */
static void load_source(const source_t *src, model_t *m, source_info_t *info, int need_decoder) {
    char err[4608] = "";
    int bad = 0;
    semaim_config_t cfg = {0};
    ckpt_state_t st = {0};
    st_file_t sf = {0};
    memset(info, 0, sizeof *info);
    info->step = -1;
    if (!!src->checkpoint == !!src->weights) {
        snprintf(err, sizeof err, "give exactly one of --checkpoint CKPT or --weights FILE.safetensors");
        bad = 1;
    } else if (rank_ == 0) {
        if (src->checkpoint) {
            bad = ckpt_read_header(src->checkpoint, &cfg, &st, err, sizeof err) ||
                  check_given(src->checkpoint, &cfg, &src->given, err, sizeof err);
            info->step = st.step;
            info->has_decoder = 1;
        } else {
            bad = st_open(&sf, src->weights, err, sizeof err) ||
                  model_infer_config(&sf, &src->given, &cfg, &info->has_decoder, err, sizeof err);
            st.seed = (uint64_t)src->seed;
            if (!bad && need_decoder && !info->has_decoder) {
                snprintf(err, sizeof err, "%s: holds only the encoder; the whole pretraining model is needed here",
                         src->weights);
                bad = 1;
            }
        }
        snprintf(info->desc, sizeof info->desc, "%s", src->checkpoint ? src->checkpoint : src->weights);
    }
    agree_or_die(bad, err, 2);
    MPI_Bcast(&cfg, sizeof cfg, MPI_BYTE, 0, MPI_COMM_WORLD);
    MPI_Bcast(&st, sizeof st, MPI_BYTE, 0, MPI_COMM_WORLD);
    MPI_Bcast(info, sizeof *info, MPI_BYTE, 0, MPI_COMM_WORLD);
    bad = model_init(m, &cfg, st.seed, err, sizeof err) != 0;
    agree_or_die(bad, err, 1);
    if (!src->at_init) {
        if (rank_ == 0) {
            if (src->checkpoint) bad = ckpt_load(src->checkpoint, m, &st, err, sizeof err) != 0;
            else {
                int ignored = 0;
                bad = model_load_safetensors(m, &sf, need_decoder, &ignored, err, sizeof err) != 0;
                if (!bad && ignored)
                    fprintf(stderr, "semaim-eval: note: %s: %d tensor(s) not used by the model (e.g. a classifier head) ignored\n",
                            src->weights, ignored);
            }
        }
        agree_or_die(bad, err, 2);
        bcast_floats(m->params, m->nparams);
        bcast_floats(m->pos_embed, (long)m->T * m->D);
    }
    if (rank_ == 0 && src->weights) st_close(&sf);
}

/* ---------------------------------------------------------------------------- results */

static void ensure_dir(const char *dir) {
    int bad = 0;
    char err[4608] = "";
    if (rank_ == 0 && dir && mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(err, sizeof err, "%s: cannot create results folder: %s", dir, strerror(errno));
        bad = 1;
    }
    agree_or_die(bad, err, 2);
}

/* Appends one line to DIR/eval.jsonl (rank 0; one buffered write, lines are < 8 KiB). */
static void append_result(const char *dir, const char *line) {
    if (rank_ != 0 || !dir) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/eval.jsonl", dir);
    FILE *f = fopen(path, "a");
    if (!f || fputs(line, f) < 0 || fputc('\n', f) < 0 || fclose(f)) {
        fprintf(stderr, "semaim-eval: %s: cannot append results: %s\n", path, strerror(errno));
    }
}

/* JSON string literal of s, for building result lines (valid until the next call on b). */
static const char *jstr(buf_t *b, const char *s) {
    b->len = 0;
    json_str(b, s);
    return b->s ? b->s : "\"\"";
}

static void usage_exit(const char *cmd, const char *synopsis, const option_t *opts, int n) {
    if (rank_ == 0) {
        printf("usage: semaim-eval %s %s\noptions:\n", cmd, synopsis);
        options_usage(stdout, opts, n);
    }
    finish(0);
}

static void parse_or_die(option_t *opts, int n, int argc, char **argv, const char *cmd, const char *synopsis) {
    char err[4608];
    int rc = options_parse(opts, n, argc, argv, 2, err, sizeof err);
    if (rc == 1) usage_exit(cmd, synopsis, opts, n);
    if (rc) {
        if (rank_ == 0) fprintf(stderr, "semaim-eval %s: %s\n", cmd, err);
        finish(2);
    }
}

/* Features of one split for the given model, or from a features file. */
static void get_features(featset_t *fs, model_t *m, const char *data, const char *split, const char *file, int batch) {
    char err[4608] = "";
    int bad;
    if (file) bad = featfile_read(file, fs, rank_, world_, err, sizeof err) != 0;
    else bad = features_compute(fs, m, data, split, batch, rank_, world_, err, sizeof err) != 0;
    agree_or_die(bad, err, 2);
}

/* ---------------------------------------------------------------------------- features */

static int cmd_features(int argc, char **argv) {
    source_t src = {0};
    const char *data = NULL, *split = "val", *out = NULL;
    int batch = 64;
    option_t opts[] = {
        SOURCE_OPTIONS(src),
        {"data", OPT_STRING, &data, "shards folder (semaim-prep output) [required]", 0, 0, 0},
        {"split", OPT_STRING, &split, "train or val", 0, 0, 0},
        {"out", OPT_STRING, &out, "features file to write (HDF5) [required]", 0, 0, 0},
        {"batch", OPT_INT, &batch, "images per forward pass per rank", 1, 1 << 20, 0},
    };
    int n = sizeof opts / sizeof opts[0];
    const char *syn = "(--checkpoint CKPT | --weights FILE) --data SHARDS --out FILE.h5 [--split val]";
    parse_or_die(opts, n, argc, argv, "features", syn);
    if (!data || !out) agree_or_die(1, "features: --data and --out are required", 2);
    model_t m;
    source_info_t info;
    load_source(&src, &m, &info, 0);
    double t0 = clock_now();
    featset_t fs;
    get_features(&fs, &m, data, split, NULL, batch);
    char err[4608] = "";
    int bad = featfile_write(out, &fs, split, info.desc, src.at_init ? 0 : info.step, MPI_COMM_WORLD, err, sizeof err);
    agree_or_die(bad, err, 1);
    double dt = clock_now() - t0;
    if (rank_ == 0)
        printf("features: split %s, %ld images, width %d, %d ranks, %.1f s (%.0f img/s) -> %s\n", split, fs.total, fs.dim,
               world_, dt, fs.total / dt, out);
    featset_free(&fs);
    model_free(&m);
    return 0;
}

/* knn and linprobe: checks the source flags, then takes train and val features from files or
 * from the encoder, which is freed afterwards. *t0 is when feature work began (after loading). */
static void source_features(const char *cmd, const char *feature, const char *trf, const char *vaf, const char *data,
                            const source_t *src, const char *out, int batch, source_info_t *info, featset_t *tr,
                            featset_t *va, double *t0) {
    char msg[512];
    if (strcmp(feature, "cls") && strcmp(feature, "mean")) {
        snprintf(msg, sizeof msg, "%s: --feature must be cls or mean", cmd);
        agree_or_die(1, msg, 2);
    }
    int from_files = trf || vaf;
    if (from_files && (!trf || !vaf)) {
        snprintf(msg, sizeof msg, "%s: give both --train-features and --val-features", cmd);
        agree_or_die(1, msg, 2);
    }
    if (from_files && (data || src->checkpoint || src->weights || src->at_init)) {
        snprintf(msg, sizeof msg, "%s: features files replace --data/--checkpoint/--weights/--at-init; give one or the other",
                 cmd);
        agree_or_die(1, msg, 2);
    }
    if (!from_files && !data) {
        snprintf(msg, sizeof msg, "%s: --data is required (or --train-features and --val-features)", cmd);
        agree_or_die(1, msg, 2);
    }
    ensure_dir(out);
    model_t m = {0};
    *info = (source_info_t){.step = -1};
    if (!from_files) load_source(src, &m, info, 0);
    else snprintf(info->desc, sizeof info->desc, "%s", trf);
    *t0 = clock_now();
    get_features(tr, &m, data, "train", trf, batch);
    get_features(va, &m, data, "val", vaf, batch);
    if (!from_files) model_free(&m);
}

/* ---------------------------------------------------------------------------- k-NN */

static int cmd_knn(int argc, char **argv) {
    source_t src = {0};
    const char *data = NULL, *out = NULL, *feature = "cls", *trf = NULL, *vaf = NULL;
    int k = 20, batch = 64;
    double temperature = 0.07;
    option_t opts[] = {
        SOURCE_OPTIONS(src),
        {"data", OPT_STRING, &data, "shards folder with train/ and val/ splits", 0, 0, 0},
        {"train-features", OPT_STRING, &trf, "or: precomputed train features (semaim-eval features)", 0, 0, 0},
        {"val-features", OPT_STRING, &vaf, "and: precomputed val features", 0, 0, 0},
        {"k", OPT_INT, &k, "neighbours", 1, 10000, 0},
        {"temperature", OPT_DOUBLE, &temperature, "vote weight exp(sim / T)", 1e-6, 1e6, 0},
        {"feature", OPT_STRING, &feature, "cls (cls token after the final norm) or mean (mean patch token)", 0, 0, 0},
        {"batch", OPT_INT, &batch, "images per forward pass per rank", 1, 1 << 20, 0},
        {"out", OPT_STRING, &out, "results folder: appends a line to OUT/eval.jsonl", 0, 0, 0},
    };
    int n = sizeof opts / sizeof opts[0];
    const char *syn = "(--checkpoint CKPT | --weights FILE) --data SHARDS [--k 20] [--temperature 0.07] "
                      "[--feature cls|mean] [--at-init] [--batch N] [--out DIR]\n"
                      "       semaim-eval knn --train-features F --val-features F [...]";
    parse_or_die(opts, n, argc, argv, "knn", syn);
    source_info_t info;
    featset_t tr, va;
    double t0;
    source_features("knn", feature, trf, vaf, data, &src, out, batch, &info, &tr, &va, &t0);
    double t1 = clock_now();
    knn_result_t r;
    char err[4608] = "";
    int bad = knn_eval(&tr, &va, feature, k, temperature, MPI_COMM_WORLD, &r, err, sizeof err);
    agree_or_die(bad, err, 2);
    double t2 = clock_now();
    if (rank_ == 0) {
        char line[8192];
        buf_t s1 = {0};
        snprintf(line, sizeof line,
                 "{\"event\": \"knn\", \"time\": %.3f, \"source\": %s, \"step\": %ld, \"at_init\": %s, \"feature\": \"%s\", "
                 "\"k\": %d, \"temperature\": %g, \"top1\": %.4f, \"top5\": %.4f, \"bank\": %ld, \"queries\": %ld, "
                 "\"num_classes\": %d, \"ranks\": %d, \"features_s\": %.3f, \"knn_s\": %.3f}",
                 (double)time(NULL), jstr(&s1, info.desc), src.at_init ? 0 : info.step,
                 src.at_init ? "true" : "false", feature, r.k, temperature, r.top1, r.top5, r.bank, r.queries,
                 r.num_classes, world_, t1 - t0, t2 - t1);
        append_result(out, line);
        buf_free(&s1);
        printf("knn: top1=%.2f top5=%.2f k=%d T=%g feature=%s bank=%ld queries=%ld classes=%d%s source=%s (%.1f s)\n",
               r.top1, r.top5, r.k, temperature, feature, r.bank, r.queries, r.num_classes, src.at_init ? " at-init" : "",
               info.desc, t2 - t0);
    }
    featset_free(&tr);
    featset_free(&va);
    return 0;
}

/* ---------------------------------------------------------------------------- linear probe */

typedef struct { const char *out, *kind; int epochs; } lp_ctx_t;

static void lp_epoch(const linprobe_epoch_t *e, void *arg) {
    const lp_ctx_t *c = arg;
    if (rank_ != 0) return;
    char line[1024];
    snprintf(line, sizeof line,
             "{\"event\": \"linprobe_epoch\", \"time\": %.3f, \"epoch\": %d, \"feature\": \"%s\", \"loss\": %.6g, "
             "\"lr\": %.6g, \"top1\": %.4f, \"top5\": %.4f, \"seconds\": %.3f}",
             (double)time(NULL), e->epoch, c->kind, e->loss, e->lr, e->top1, e->top5, e->seconds);
    append_result(c->out, line);
    printf("linprobe epoch %d/%d: loss %.4f lr %.3g top1 %.2f top5 %.2f (%.1f s)\n", e->epoch, c->epochs, e->loss, e->lr,
           e->top1, e->top5, e->seconds);
    fflush(stdout);
}

static linprobe_epoch_t lp_last;
static void lp_epoch_keep(const linprobe_epoch_t *e, void *arg) {
    lp_last = *e;
    lp_epoch(e, arg);
}

static int cmd_linprobe(int argc, char **argv) {
    source_t src = {0};
    const char *data = NULL, *out = NULL, *feature = "cls", *trf = NULL, *vaf = NULL;
    int batch = 64;
    long seed = 0;
    linprobe_cfg_t lc = {90, 256, 0.1, 0.9, 0.0, 10, 0};
    option_t opts[] = {
        SOURCE_OPTIONS(src),
        {"data", OPT_STRING, &data, "shards folder with train/ and val/ splits", 0, 0, 0},
        {"train-features", OPT_STRING, &trf, "or: precomputed train features (semaim-eval features)", 0, 0, 0},
        {"val-features", OPT_STRING, &vaf, "and: precomputed val features", 0, 0, 0},
        {"feature", OPT_STRING, &feature, "cls (SPEC §5) or mean", 0, 0, 0},
        {"epochs", OPT_INT, &lc.epochs, "epochs", 1, 1000000, 0},
        {"probe-batch", OPT_INT, &lc.batch, "global batch of the probe", 1, 1 << 24, 0},
        {"base-lr", OPT_DOUBLE, &lc.base_lr, "lr = base-lr x probe-batch / 256", 0, 1e3, 0},
        {"momentum", OPT_DOUBLE, &lc.momentum, "SGD momentum", 0, 1, 0},
        {"weight-decay", OPT_DOUBLE, &lc.weight_decay, "weight decay (not on the bias)", 0, 10, 0},
        {"warmup-epochs", OPT_DOUBLE, &lc.warmup_epochs, "linear warmup, then half-cycle cosine to 0", 0, 1e6, 0},
        {"probe-seed", OPT_LONG, &seed, "seed of the probe's init and batch order", 0, 9.2e18, 0},
        {"batch", OPT_INT, &batch, "images per forward pass per rank (features)", 1, 1 << 20, 0},
        {"out", OPT_STRING, &out, "results folder: appends lines to OUT/eval.jsonl", 0, 0, 0},
    };
    int n = sizeof opts / sizeof opts[0];
    const char *syn = "(--checkpoint CKPT | --weights FILE) --data SHARDS [--epochs 90] [--probe-batch 256] [--out DIR]\n"
                      "       semaim-eval linprobe --train-features F --val-features F [...]";
    parse_or_die(opts, n, argc, argv, "linprobe", syn);
    lc.seed = (uint64_t)seed;
    source_info_t info;
    featset_t tr, va;
    double t0;
    source_features("linprobe", feature, trf, vaf, data, &src, out, batch, &info, &tr, &va, &t0);
    double t1 = clock_now();
    lp_ctx_t ctx = {out, feature, lc.epochs};
    char err[4608] = "";
    int bad = linprobe_run(&tr, &va, feature, &lc, MPI_COMM_WORLD, lp_epoch_keep, &ctx, err, sizeof err);
    agree_or_die(bad, err, strstr(err, "not finite") ? 3 : 2);
    double t2 = clock_now();
    if (rank_ == 0) {
        char line[8192];
        buf_t s1 = {0};
        snprintf(line, sizeof line,
                 "{\"event\": \"linprobe\", \"time\": %.3f, \"source\": %s, \"step\": %ld, \"at_init\": %s, "
                 "\"feature\": \"%s\", \"epochs\": %d, \"probe_batch\": %d, \"base_lr\": %g, \"top1\": %.4f, "
                 "\"top5\": %.4f, \"train\": %ld, \"val\": %ld, \"ranks\": %d, \"features_s\": %.3f, \"probe_s\": %.3f}",
                 (double)time(NULL), jstr(&s1, info.desc), src.at_init ? 0 : info.step,
                 src.at_init ? "true" : "false", feature, lc.epochs, lc.batch, lc.base_lr, lp_last.top1, lp_last.top5,
                 tr.total, va.total, world_, t1 - t0, t2 - t1);
        append_result(out, line);
        buf_free(&s1);
        printf("linprobe: top1=%.2f top5=%.2f epochs=%d feature=%s train=%ld val=%ld%s source=%s (%.1f s)\n", lp_last.top1,
               lp_last.top5, lc.epochs, feature, tr.total, va.total, src.at_init ? " at-init" : "", info.desc, t2 - t0);
    }
    featset_free(&tr);
    featset_free(&va);
    return 0;
}

/* ---------------------------------------------------------------------------- fine-tuning */

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { stop_requested = sig; }

typedef struct { double top1, top5, loss; long n; } ft_eval_t;

/* Top-1/top-5 and loss of f on the val split (every rank its slice, eval transform). */
static ft_eval_t ft_evaluate(ft_model_t *f, const char *data, int batch, float smoothing) {
    loader_config lc = {.data_dir = data, .split = "val", .image_size = f->m.cfg.image, .batch = batch,
                        .rank = rank_, .world = world_, .train = 0, .threads = 1};
    loader *ld = NULL;
    char err[4608] = "";
    const char *e = loader_open(&ld, &lc);
    if (e) snprintf(err, sizeof err, "%s", e);
    agree_or_die(e != NULL, err, 2);
    double cnt[4] = {0, 0, 0, 0}, tot[4];
    int32_t *p5 = malloc(sizeof(int32_t) * 5 * batch);
    long steps = loader_steps_per_epoch(ld);
    int bad = !p5;
    for (long s = 0; s < steps && !bad; s++) {
        const loader_batch *b;
        e = loader_next(ld, &b, NULL);
        if (e) { snprintf(err, sizeof err, "%s", e); bad = 1; break; }
        if (b->n == 0) continue;
        double l = ft_forward(f, b->images, b->labels, b->n, 0, smoothing);
        ft_top5(f, p5);
        for (int i = 0; i < b->n; i++) {
            int hit = 0;
            for (int j = 0; j < 5; j++) hit |= p5[i * 5 + j] == b->labels[i];
            cnt[0] += p5[i * 5] == b->labels[i];
            cnt[1] += hit;
        }
        cnt[2] += l * b->n;
        cnt[3] += b->n;
    }
    free(p5);
    loader_close(ld);
    agree_or_die(bad, err[0] ? err : "out of memory", 1);
    MPI_Allreduce(cnt, tot, 4, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    ft_eval_t r = {100 * tot[0] / fmax(tot[3], 1), 100 * tot[1] / fmax(tot[3], 1), tot[2] / fmax(tot[3], 1), (long)tot[3]};
    return r;
}

static void bcast_ft(ft_model_t *f) {
    bcast_floats(f->m.params, f->n_enc); bcast_floats(f->m.m, f->n_enc); bcast_floats(f->m.v, f->n_enc);
    bcast_floats(f->head, f->nhead); bcast_floats(f->mhead, f->nhead); bcast_floats(f->vhead, f->nhead);
    bcast_floats(f->m.pos_embed, (long)f->m.T * f->m.D);
}

static int cmd_finetune(int argc, char **argv) {
    source_t src = {0};
    const char *data = NULL, *out = "runs/finetune", *resume = "auto", *allred = "ring";
    int batch = 64, classes = 0, keep = 3, log_every = 10, check_every = 100, loader_threads = 1, eval_every = 1;
    long epochs = 100, steps = 0, warmup_steps = -1, ckpt_every = 1000, max_steps_this_run = 0, ft_seed = 0;
    double base_lr = 5e-4, min_lr = 1e-6, warmup_epochs = 20, weight_decay = 0.05, layer_decay = 0.65, drop_path = 0.1,
           smoothing = 0.1, beta1 = 0.9, beta2 = 0.999, clip = 0;
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
        {"warmup-epochs", OPT_DOUBLE, &warmup_epochs, "linear warmup length in epochs", 0, 1e9, 0},
        {"warmup-steps", OPT_LONG, &warmup_steps, "warmup in steps (overrides --warmup-epochs when >= 0)", -1, 1e12, 0},
        {"weight-decay", OPT_DOUBLE, &weight_decay, "AdamW weight decay (not on 1-D tensors and the cls token)", 0, 10, 0},
        {"layer-decay", OPT_DOUBLE, &layer_decay, "layer-wise lr decay", 0, 1, 0},
        {"drop-path", OPT_DOUBLE, &drop_path, "stochastic depth rate of the last block (linear from 0)", 0, 0.99, 0},
        {"smoothing", OPT_DOUBLE, &smoothing, "label smoothing", 0, 0.99, 0},
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
    };
    int nopt = sizeof opts / sizeof opts[0];
    const char *syn = "(--checkpoint CKPT | --weights FILE) --data SHARDS --out DIR [options]\n"
                      "Supervised fine-tuning (SPEC §5) as an MPI job; exit codes 0 done or stopped by SIGUSR1/SIGTERM\n"
                      "with a checkpoint, 1 runtime error, 2 bad input, 3 non-finite loss.";
    parse_or_die(opts, nopt, argc, argv, "finetune", syn);
    char err[4608] = "";
    if (!data) agree_or_die(1, "finetune: --data is required", 2);
    if (strcmp(allred, "ring") && strcmp(allred, "mpi")) agree_or_die(1, "finetune: --allreduce must be ring or mpi", 2);
    int bad = 0;
    if (rank_ == 0 && mkdir(out, 0755) && errno != EEXIST) {
        snprintf(err, sizeof err, "%s: cannot create run folder: %s", out, strerror(errno));
        bad = 1;
    }
    agree_or_die(bad, err, 2);
    model_t pm;
    source_info_t info;
    load_source(&src, &pm, &info, 0);
    loader *ld = NULL;
    loader_config lc = {.data_dir = data, .split = "train", .image_size = pm.cfg.image, .batch = batch,
                        .seed = (uint64_t)ft_seed, .rank = rank_, .world = world_, .train = 1, .threads = loader_threads};
    const char *lerr = loader_open(&ld, &lc);
    if (lerr) snprintf(err, sizeof err, "%s", lerr);
    agree_or_die(lerr != NULL, err, 2);
    if (loader_image_height(ld) < pm.cfg.image || loader_image_width(ld) < pm.cfg.image) {
        snprintf(err, sizeof err, "%s: shards hold %dx%d images, smaller than the model's %dx%d input (checkpoint of another "
                 "config?)", data, loader_image_height(ld), loader_image_width(ld), pm.cfg.image, pm.cfg.image);
        agree_or_die(1, err, 2);
    }
    int C = classes ? classes : loader_num_classes(ld);
    if (C < 1) agree_or_die(1, "finetune: the shards do not say how many classes there are: give --classes", 2);
    if (classes && loader_num_classes(ld) && classes != loader_num_classes(ld)) {
        snprintf(err, sizeof err, "finetune: --classes %d disagrees with the shards' num_classes %d", classes,
                 loader_num_classes(ld));
        agree_or_die(1, err, 2);
    }
    long spe = loader_steps_per_epoch(ld);
    long total = steps > 0 ? steps : epochs * spe;
    long warmup = warmup_steps >= 0 ? warmup_steps : (long)llround(warmup_epochs * spe);
    long gbatch = (long)batch * world_;
    double peak = base_lr * gbatch / 256.0;
    ft_optim_t oc = {base_lr, min_lr, weight_decay, beta1, beta2, 1e-8, layer_decay, clip, warmup, total};
    ft_model_t f;
    bad = ft_init(&f, &pm.cfg, C, batch, (uint64_t)ft_seed, err, sizeof err) != 0;
    agree_or_die(bad, err, 1);
    if (!src.at_init) ft_load_encoder(&f, &pm, err, sizeof err);   /* same config by construction */
    model_free(&pm);

    ckpt_state_t st = {0, 0, 0, (uint64_t)ft_seed, world_, batch};
    char ckpt_path[4200] = "";
    int found = 0;
    bad = 0;
    if (rank_ == 0 && strcmp(resume, "no")) {
        if (!strcmp(resume, "auto")) {
            found = ft_ckpt_load_latest(out, &f, &st, ckpt_path, sizeof ckpt_path, err, sizeof err);
            if (found < 0) bad = 1;
        } else if (ft_ckpt_load(resume, &f, &st, err, sizeof err)) bad = 1;
        else { found = 1; snprintf(ckpt_path, sizeof ckpt_path, "%s", resume); }
        if (found == 1 && (st.seed != (uint64_t)ft_seed || st.world != world_ || st.batch != batch)) {
            snprintf(err, sizeof err, "%s: checkpoint was written with ft-seed %llu, %d ranks, batch %d; this run has %ld, %d, %d "
                     "(pass --resume no to start over)", ckpt_path, (unsigned long long)st.seed, st.world, st.batch, ft_seed,
                     world_, batch);
            bad = 1;
        }
    }
    agree_or_die(bad, err, 2);
    MPI_Bcast(&found, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (found) {
        MPI_Bcast(&st, sizeof st, MPI_BYTE, 0, MPI_COMM_WORLD);
        lerr = loader_seek(ld, (int)st.epoch, st.epoch_step);
        if (lerr) snprintf(err, sizeof err, "%s", lerr);
        agree_or_die(lerr != NULL, err, 1);
    }
    bcast_ft(&f);   /* resumed or not: every replica starts from rank 0's bytes */
    allreduce_t *ar = allreduce_create(MPI_COMM_WORLD, f.n_enc > f.nhead ? f.n_enc : f.nhead, 0, !strcmp(allred, "mpi"));
    if (!ar) finish(1);
    signal(SIGUSR1, on_signal);
    signal(SIGTERM, on_signal);

    FILE *mf = NULL;
    if (rank_ == 0) {
        char p[4300];
        buf_t s1 = {0};
        snprintf(p, sizeof p, "%s/settings.json", out);
        buf_t sj = {0};
        options_json(&sj, opts, nopt);
        buf_puts(&sj, "\n");
        err_t we;
        if (!sj.oom) file_write_atomic(p, &(span_t){sj.s, sj.len}, 1, &we);
        buf_free(&sj);
        snprintf(p, sizeof p, "%s/metrics.jsonl", out);
        mf = fopen(p, "a");
        if (!mf) { snprintf(err, sizeof err, "%s: cannot open metrics: %s", p, strerror(errno)); bad = 1; }
        else {
            long np = f.n_enc + f.nhead;
            fprintf(mf, "{\"event\": \"run_start\", \"kind\": \"finetune\", \"time\": %.3f, \"ranks\": %d, \"threads\": %d, "
                        "\"source\": %s, \"source_step\": %ld, \"at_init\": %s, \"resumed_from\": ",
                    (double)time(NULL), world_, omp_get_max_threads(), jstr(&s1, info.desc), info.step,
                    src.at_init ? "true" : "false");
            if (found) fputs(jstr(&s1, ckpt_path), mf); else fputs("null", mf);
            fprintf(mf, ", \"start_step\": %lld, \"global_batch\": %ld, \"steps_per_epoch\": %ld, \"total_steps\": %ld, "
                        "\"peak_lr\": %.9g, \"params\": %ld, \"classes\": %d, \"settings\": ",
                    (long long)st.step, gbatch, spe, total, peak, np, C);
            buf_t oj = {0};
            options_json(&oj, opts, nopt);
            fprintf(mf, "%s}\n", oj.s ? oj.s : "{}");
            buf_free(&oj);
            buf_free(&s1);
            fflush(mf);
            printf("semaim-eval finetune: %d ranks x %d threads, global batch %ld, %ld steps/epoch, %ld steps, peak lr %.3g, "
                   "%d classes, %s\n", world_, omp_get_max_threads(), gbatch, spe, total, peak, C,
                   found ? "resuming" : src.at_init ? "encoder at initialisation" : "pretrained encoder");
            fflush(stdout);
        }
    }
    agree_or_die(bad, err, 2);

    long step = st.step, this_run = 0;
    int exit_code = 0;
    const char *reason = "done";
    ft_eval_t ev = {-1, -1, 0, 0};
    long ev_step = -1;
    double t_run = clock_now();
    while (step < total) {
        double t0 = clock_now(), waited = 0;
        const loader_batch *bt = NULL;
        lerr = loader_next(ld, &bt, &waited);
        double t1 = clock_now();
        double loss = 0;
        static char lab_err[256];
        for (int i = 0; !lerr && i < batch; i++)
            if (bt->labels[i] < 0 || bt->labels[i] >= C) {
                snprintf(lab_err, sizeof lab_err, "%s: image %lld has label %d, outside 0..%d (--classes?)", data,
                         (long long)bt->ids[i], bt->labels[i], C - 1);
                lerr = lab_err;
            }
        if (!lerr) {
            ft_drop_path(&f, drop_path, (uint64_t)ft_seed, step, bt->ids, batch);
            ft_zero_grad(&f);
            loss = ft_forward(&f, bt->images, bt->labels, batch, 1, (float)smoothing);
            ft_backward(&f);
        }
        double t2 = clock_now();
        double red[4] = {loss, lerr ? 1 : 0, stop_requested ? 1 : 0, lerr == lab_err ? 1 : 0}, tot[4];
        MPI_Allreduce(red, tot, 4, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (tot[1] > 0) {
            if (lerr) fprintf(stderr, "semaim-eval: rank %d: %s\n", rank_, lerr);
            exit_code = tot[3] > 0 ? 2 : 1; reason = "data error";
            break;
        }
        double gl = tot[0] / world_;
        if (!isfinite(gl)) {
            if (rank_ == 0) fprintf(stderr, "semaim-eval: fine-tuning loss is %s at step %ld; stopping (last good checkpoint kept)\n",
                                    isnan(gl) ? "NaN" : "infinite", step);
            exit_code = 3; reason = "non-finite loss";
            break;
        }
        int arc = allreduce_mean(ar, f.m.grads, f.n_enc);
        if (arc == MPI_SUCCESS) arc = allreduce_mean(ar, f.ghead, f.nhead);
        if (arc != MPI_SUCCESS) {
            if (rank_ == 0) fprintf(stderr, "semaim-eval: gradient all-reduce failed (MPI error %d)\n", arc);
            exit_code = 1; reason = "all-reduce error";
            break;
        }
        double t3 = clock_now();
        double gn = ft_grad_norm(&f);
        if (!isfinite(gn)) {
            if (rank_ == 0) fprintf(stderr, "semaim-eval: gradient norm is not finite at step %ld; stopping\n", step);
            exit_code = 3; reason = "non-finite gradients";
            break;
        }
        if (clip > 0 && gn > clip) ft_scale_grads(&f, (float)(clip / (gn + 1e-6)));
        double lr = optim_lr_at(peak, min_lr, step, warmup, total);
        ft_adamw(&f, lr, &oc, step + 1);
        double t4 = clock_now();
        step++; this_run++;
        st.step = step;
        int ne;
        loader_tell(ld, &ne, &st.epoch_step);
        st.epoch = ne;
        double tm[4] = {t1 - t0, (t2 - t1) + (t4 - t3), t3 - t2, t4 - t0}, tmax[4];
        MPI_Reduce(tm, tmax, 4, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        if (rank_ == 0) {
            fprintf(mf, "{\"event\": \"step\", \"step\": %ld, \"epoch\": %d, \"loss\": %.7g, \"lr\": %.7g, \"grad_norm\": %.7g, "
                        "\"images_per_s\": %.3f, \"step_s\": %.5f, \"data_wait_s\": %.5f, \"compute_s\": %.5f, \"comm_s\": %.5f}\n",
                    step, bt->epoch, gl, lr, gn, gbatch / tmax[3], tmax[3], tmax[0], tmax[1], tmax[2]);
            fflush(mf);
            if (step % log_every == 0 || step == total)
                printf("step %6ld/%ld  epoch %3d  loss %.4f  lr %.3g  |g| %.3f  %.1f img/s\n", step, total, bt->epoch, gl, lr,
                       gn, gbatch / tmax[3]);
            fflush(stdout);
        }
        if (step % check_every == 0) {
            int who = check_replicas_consistent(MPI_COMM_WORLD, f.m.params, f.n_enc, NULL);
            if (who == 0) who = check_replicas_consistent(MPI_COMM_WORLD, f.head, f.nhead, NULL);
            if (who != 0) {
                if (rank_ == 0) fprintf(stderr, "semaim-eval: replicas diverged at step %ld\n", step);
                exit_code = 1; reason = "replica mismatch";
                break;
            }
        }
        /* evaluation at the end of every eval-every-th epoch, and of the run */
        if ((step % spe == 0 && (step / spe) % eval_every == 0) || step == total) {
            double te = clock_now();
            ev = ft_evaluate(&f, data, batch, (float)smoothing);
            ev_step = step;
            if (rank_ == 0) {
                fprintf(mf, "{\"event\": \"eval\", \"step\": %ld, \"epoch\": %.3f, \"top1\": %.4f, \"top5\": %.4f, \"loss\": %.6g, "
                            "\"images\": %ld, \"seconds\": %.3f}\n", step, (double)step / spe, ev.top1, ev.top5, ev.loss, ev.n,
                        clock_now() - te);
                fflush(mf);
                printf("eval  step %ld  epoch %.2f  top1 %.2f  top5 %.2f  loss %.4f\n", step, (double)step / spe, ev.top1,
                       ev.top5, ev.loss);
                fflush(stdout);
            }
        }
        int stop = tot[2] > 0 || (max_steps_this_run > 0 && this_run >= max_steps_this_run);
        if (step % ckpt_every == 0 || step == total || stop) {
            bad = 0;
            if (rank_ == 0) {
                double tc = clock_now();
                if (ft_ckpt_save(out, &f, &st, keep, err, sizeof err)) bad = 1;
                else {
                    fprintf(mf, "{\"event\": \"checkpoint\", \"step\": %ld, \"epoch\": %lld, \"seconds\": %.3f}\n", step,
                            (long long)st.epoch, clock_now() - tc);
                    fflush(mf);
                }
            }
            agree_or_die(bad, err, 1);
        }
        if (stop) {
            reason = tot[2] > 0 ? "signal" : "max-steps-this-run";
            if (rank_ == 0) printf("semaim-eval finetune: stopping at step %ld (%s), checkpoint written\n", step, reason);
            break;
        }
    }
    if (exit_code == 0 && step >= total && ev_step != step) {   /* a resumed run that was already complete */
        ev = ft_evaluate(&f, data, batch, (float)smoothing);
        ev_step = step;
    }
    if (rank_ == 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(mf, "{\"event\": \"run_end\", \"step\": %ld, \"reason\": \"%s\", \"exit_code\": %d, \"seconds\": %.3f, "
                    "\"peak_rss_gib\": %.3f}\n", step, reason, exit_code, clock_now() - t_run, ru.ru_maxrss / 1048576.0);
        fclose(mf);
        if (exit_code == 0 && step >= total) {
            char line[8192];
        buf_t s1 = {0};
            snprintf(line, sizeof line,
                     "{\"event\": \"finetune\", \"time\": %.3f, \"source\": %s, \"step\": %ld, \"at_init\": %s, \"top1\": %.4f, "
                     "\"top5\": %.4f, \"val_loss\": %.6g, \"steps\": %ld, \"epochs\": %.3f, \"global_batch\": %ld, \"classes\": %d, "
                     "\"ranks\": %d}",
                     (double)time(NULL), jstr(&s1, info.desc), info.step, src.at_init ? "true" : "false", ev.top1,
                     ev.top5, ev.loss, step, (double)step / spe, gbatch, C, world_);
            append_result(out, line);
            buf_free(&s1);
            printf("finetune: top1=%.2f top5=%.2f steps=%ld epochs=%.2f classes=%d%s source=%s\n", ev.top1, ev.top5, step,
                   (double)step / spe, C, src.at_init ? " at-init" : "", info.desc);
        }
    }
    loader_close(ld);
    allreduce_free(ar);
    ft_free(&f);
    finish(exit_code);
    return exit_code;
}

/* ---------------------------------------------------------------------------- export / import */

static int cmd_export(int argc, char **argv) {
    source_t src = {0};
    const char *out = NULL;
    int full = 0;
    option_t opts[] = {
        SOURCE_OPTIONS(src),
        {"out", OPT_STRING, &out, "safetensors file to write [required]", 0, 0, 0},
        {"full", OPT_FLAG, &full, "the whole pretraining model (adds query_blocks.*, prediction_head.*)", 0, 0, 0},
    };
    int n = sizeof opts / sizeof opts[0];
    parse_or_die(opts, n, argc, argv, "export", "(--checkpoint CKPT | --weights FILE) --out FILE.safetensors [--full]");
    if (!out) agree_or_die(1, "export: --out is required", 2);
    model_t m;
    source_info_t info;
    load_source(&src, &m, &info, full);
    char err[4608] = "";
    int bad = 0;
    if (rank_ == 0) {
        char step[32];
        snprintf(step, sizeof step, "%ld", info.step);
        const char *k[] = {"source", "step"}, *v[] = {info.desc, step};
        bad = model_export_safetensors(&m, full, k, v, 2, out, err, sizeof err) != 0;
        if (!bad) {
            long cnt = 0, params = (long)m.T * m.D;
            for (int i = 0; i < m.ntensors; i++)
                if (full || model_tensor_is_encoder(m.info[i].name)) { cnt++; params += m.info[i].numel; }
            printf("export: %ld tensors (%s), %ld values -> %s\n", cnt + 1, full ? "encoder + decoder" : "encoder",
                   params, out);
        }
    }
    agree_or_die(bad, err, 1);
    model_free(&m);
    return 0;
}

static int cmd_import(int argc, char **argv) {
    source_t src = {0};
    const char *out = NULL;
    int full = 0;
    option_t opts[] = {
        SOURCE_OPTIONS(src),
        {"out", OPT_STRING, &out, "folder for the checkpoint ckpt-00000000.bin [required]", 0, 0, 0},
        {"full", OPT_FLAG, &full, "require the decoder too (else it keeps its initialisation)", 0, 0, 0},
    };
    int n = sizeof opts / sizeof opts[0];
    parse_or_die(opts, n, argc, argv, "import", "--weights FILE.safetensors --out DIR [--heads N ...] [--full]");
    if (!out || !src.weights || src.checkpoint) agree_or_die(1, "import: --weights and --out are required", 2);
    model_t m;
    source_info_t info;
    load_source(&src, &m, &info, full);
    char err[4608] = "";
    int bad = 0;
    if (rank_ == 0) {
        double dev = model_pos_embed_deviation(&m);
        if (dev > 1e-4) {
            snprintf(err, sizeof err, "%s: pos_embed differs from the fixed 2-D sin-cos table (max %.3g), which checkpoints "
                     "do not store; evaluate the file directly with --weights", src.weights, dev);
            bad = 1;
        } else if (mkdir(out, 0755) && errno != EEXIST) {
            snprintf(err, sizeof err, "%s: cannot create folder: %s", out, strerror(errno));
            bad = 1;
        } else {
            ckpt_state_t st = {0, 0, 0, (uint64_t)src.seed, 1, 1};
            memset(m.m, 0, sizeof(float) * m.nparams);
            memset(m.v, 0, sizeof(float) * m.nparams);
            bad = ckpt_save(out, &m, &st, 0, err, sizeof err) != 0;
            if (!bad)
                printf("import: image %d patch %d width %d depth %d dec-depth %d heads %d%s -> %s/ckpt-00000000.bin\n",
                       m.cfg.image, m.cfg.patch, m.cfg.width, m.cfg.depth, m.cfg.dec_depth, m.cfg.heads,
                       info.has_decoder ? "" : " (decoder at initialisation)", out);
        }
    }
    agree_or_die(bad, err, 2);
    model_free(&m);
    return 0;
}

/* ---------------------------------------------------------------------------- main */

int main(int argc, char **argv) {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "features")) cmd_features(argc, argv);
    else if (!strcmp(cmd, "knn")) cmd_knn(argc, argv);
    else if (!strcmp(cmd, "linprobe")) cmd_linprobe(argc, argv);
    else if (!strcmp(cmd, "finetune")) cmd_finetune(argc, argv);
    else if (!strcmp(cmd, "export")) cmd_export(argc, argv);
    else if (!strcmp(cmd, "import")) cmd_import(argc, argv);
    else {
        int help = !strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help");
        if (rank_ == 0) {
            if (!help) fprintf(stderr, "semaim-eval: %s'%s' (see semaim-eval --help)\n", *cmd ? "unknown command " : "no command", cmd);
            else printf("usage: semaim-eval COMMAND [options]   (COMMAND --help for its options)\n"
                        "  features  encoder features of a split -> HDF5\n"
                        "  knn       k-NN top-1/top-5 (DINO style)\n"
                        "  linprobe  linear probe (BatchNorm + Linear, SGD) on frozen features\n"
                        "  finetune  supervised fine-tuning (MPI job: checkpoints, metrics, resume)\n"
                        "  export    checkpoint -> safetensors (timm names)\n"
                        "  import    safetensors -> checkpoint\n"
                        "Exit codes: 0 success, 1 runtime error, 2 bad input, 3 non-finite loss.\n");
        }
        finish(help ? 0 : 2);
    }
    finish(0);
}
