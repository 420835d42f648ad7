/* semaim-eval: evaluation and export of a pretrained SemAIM encoder (SPEC §5).
 *   features  encoder features of one split → HDF5
 *   knn       k-NN top-1/top-5 (train split = memory bank, val split = queries)
 *   linprobe  linear probe on frozen features
 *   export    checkpoint → safetensors with timm / authors' tensor names (a fine-tuning
 *             checkpoint: timm's classifier with global_pool='avg', fc_norm and head)
 *   import    safetensors → checkpoint (config inferred from the shapes or given)
 *   finetune  moved to semaim-finetune; still accepted here and run there
 * Every subcommand runs under mpirun (features and k-NN are split by rank); export and import
 * work on rank 0. Exit codes: 0 success, 1 runtime error, 2 bad input, 3 non-finite loss. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/clock.h"
#include "core/mpi_start.h"
#include "semaim/checkpoint.h"
#include "semaim/dist.h"
#include "semaim/eval.h"
#include "semaim/metrics.h"
#include "semaim/model_io.h"
#include "semaim/run.h"
#include "semaim/source.h"

#define PROG "semaim-eval"

static int rank_, world_;

static void agree(err_t *e) { dist_agree_or_exit(MPI_COMM_WORLD, PROG, e); }

static void parse(option_t *opts, int n, int argc, char **argv, const char *cmd, const char *synopsis) {
    char syn[4096];
    snprintf(syn, sizeof syn, PROG " %s %s", cmd, synopsis);
    cli_parse_or_exit(PROG, opts, n, argc, argv, 2, syn);
}

/* --gemm / --precision of the subcommands that run the encoder (bad or unsupported: exit 2). */
static void compute(const char *gemm, const char *precision) {
    err_t e = {0};
    gemm_config_t c;
    dist_compute_setup(MPI_COMM_WORLD, gemm, precision, &c, &e);
    agree(&e);
}

static void load(const source_t *src, model_t *m, source_info_t *info, int need_decoder) {
    err_t e;
    source_load(src, PROG, m, info, need_decoder, &e);
    agree(&e);
}

/* ---------------------------------------------------------------------------- results */

static void ensure_dir(const char *dir) {
    err_t e = {0};
    if (rank_ == 0 && dir && mkdir(dir, 0755) && errno != EEXIST)
        err_set(&e, ERR_INPUT, "%s: cannot create results folder: %s", dir, strerror(errno));
    agree(&e);
}

/* Starts a result line for DIR/eval.jsonl with the fields every result has. */
static void result_begin(buf_t *b, const char *event, const source_info_t *info, const source_t *src) {
    metrics_begin(b, event);
    metrics_num(b, "time", "%.3f", (double)time(NULL));
    metrics_str(b, "source", info->desc);
    metrics_int(b, "step", src->at_init ? 0 : info->step);
    metrics_raw(b, "at_init", src->at_init ? "true" : "false");
    metrics_str(b, MET_GEMM, gemm_backend_name(gemm_global_config()->backend));
    metrics_str(b, MET_PRECISION, gemm_precision_name(gemm_global_config()));
}

/* Appends the line to DIR/eval.jsonl (rank 0; a failure is reported, the result stands). */
static void result_write(buf_t *b, const char *dir) {
    if (rank_ != 0 || !dir) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/eval.jsonl", dir);
    FILE *f = fopen(path, "a");
    if (metrics_write(b, f) | (f ? fclose(f) : -1))
        fprintf(stderr, PROG ": %s: cannot append results: %s\n", path, strerror(errno));
}

/* Features of one split for the given model, or from a features file. */
static void get_features(featset_t *fs, model_t *m, const char *data, const char *split, const char *file, int batch) {
    err_t e = {0};
    if (file) featfile_read(file, fs, rank_, world_, &e);
    else features_compute(fs, m, data, split, batch, rank_, world_, &e);
    agree(&e);
}

/* ---------------------------------------------------------------------------- features */

static int cmd_features(int argc, char **argv) {
    source_t src = {0};
    const char *data = NULL, *split = "val", *out = NULL, *gemm = "auto", *precision = "fp32";
    int batch = 64;
    option_t opts[] = {
        SOURCE_OPTIONS(src),
        {"data", OPT_STRING, &data, "shards folder (semaim-prep output) [required]", 0, 0, 0},
        {"split", OPT_STRING, &split, "train or val", 0, 0, 0},
        {"out", OPT_STRING, &out, "features file to write (HDF5) [required]", 0, 0, 0},
        {"batch", OPT_INT, &batch, "images per forward pass per rank", 1, 1 << 20, 0},
        COMPUTE_OPTIONS(gemm, precision),
    };
    int n = sizeof opts / sizeof opts[0];
    parse(opts, n, argc, argv, "features", "(--checkpoint CKPT | --weights FILE) --data SHARDS --out FILE.h5 [--split val]");
    err_t e = {0};
    if (!data || !out) err_set(&e, ERR_INPUT, "features: --data and --out are required");
    agree(&e);
    compute(gemm, precision);
    model_t m;
    source_info_t info;
    load(&src, &m, &info, 0);
    double t0 = clock_now();
    featset_t fs;
    get_features(&fs, &m, data, split, NULL, batch);
    featfile_write(out, &fs, split, info.desc, src.at_init ? 0 : info.step, MPI_COMM_WORLD, &e);
    agree(&e);
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
static void source_features(const char *cmd, const char **feature, int raw, const char *trf, const char *vaf,
                            const char *data, const source_t *src, const char *out, int batch, const char *gemm,
                            const char *precision, source_info_t *info, featset_t *tr, featset_t *va, double *t0) {
    err_t e = {0};
    int from_files = trf || vaf;
    if (raw) {   /* the baseline: no model at all, the images themselves on the same bank */
        if (from_files || src->checkpoint || src->weights || src->at_init)
            err_set(&e, ERR_INPUT, "%s: --raw-pixels takes the images of --data; it does not go with --checkpoint, "
                    "--weights, --at-init or features files", cmd);
        else if (!data) err_set(&e, ERR_INPUT, "%s: --raw-pixels needs --data", cmd);
        agree(&e);
        ensure_dir(out);
        *feature = FEATSET_PIXELS;
        *info = (source_info_t){.step = -1};
        snprintf(info->desc, sizeof info->desc, "raw pixels of %s", data);
        *t0 = clock_now();
        features_pixels(tr, src->given.image, data, "train", batch, rank_, world_, &e);
        if (!e.kind) features_pixels(va, src->given.image, data, "val", batch, rank_, world_, &e);
        else memset(va, 0, sizeof *va);
        agree(&e);
        if (tr->dim != va->dim) err_set(&e, ERR_INPUT, "%s: --raw-pixels: the train and val shards differ in image size "
                                        "(give --image)", cmd);
        agree(&e);
        return;
    }
    if (!featset_kind_valid(*feature)) err_set(&e, ERR_INPUT, "%s: --feature must be cls, mean or gap, not '%s'", cmd, *feature);
    else if (from_files && (!trf || !vaf)) err_set(&e, ERR_INPUT, "%s: give both --train-features and --val-features", cmd);
    else if (from_files && (data || src->checkpoint || src->weights || src->at_init))
        err_set(&e, ERR_INPUT, "%s: features files replace --data/--checkpoint/--weights/--at-init; give one or the other",
                cmd);
    else if (!from_files && !data)
        err_set(&e, ERR_INPUT, "%s: --data is required (or --train-features and --val-features)", cmd);
    agree(&e);
    compute(gemm, precision);   /* checked even when features come from files */
    ensure_dir(out);
    model_t m = {0};
    *info = (source_info_t){.step = -1};
    if (!from_files) load(src, &m, info, 0);
    else snprintf(info->desc, sizeof info->desc, "%s", trf);
    *t0 = clock_now();
    get_features(tr, &m, data, "train", trf, batch);
    get_features(va, &m, data, "val", vaf, batch);
    if (!from_files) model_free(&m);
}

/* ---------------------------------------------------------------------------- k-NN */

static int cmd_knn(int argc, char **argv) {
    source_t src = {0};
    const char *data = NULL, *out = NULL, *feature = "cls", *trf = NULL, *vaf = NULL, *gemm = "auto", *precision = "fp32";
    int k = 20, batch = 64, raw = 0;
    double temperature = 0.07;
    option_t opts[] = {
        SOURCE_OPTIONS(src),
        {"data", OPT_STRING, &data, "shards folder with train/ and val/ splits", 0, 0, 0},
        {"train-features", OPT_STRING, &trf, "or: precomputed train features (semaim-eval features)", 0, 0, 0},
        {"val-features", OPT_STRING, &vaf, "and: precomputed val features", 0, 0, 0},
        {"k", OPT_INT, &k, "neighbours", 1, 10000, 0},
        {"temperature", OPT_DOUBLE, &temperature, "vote weight exp(sim / T)", 1e-6, 1e6, 0},
        {"feature", OPT_STRING, &feature, "cls (cls token after the final norm; usually the weakest readout for this "
                                           "model family), mean (mean normed patch token) or gap (mean patch token before "
                                           "the norm, then LayerNorm without affine: the authors' probe readout)", 0, 0, 0},
        {"batch", OPT_INT, &batch, "images per forward pass per rank", 1, 1 << 20, 0},
        {"raw-pixels", OPT_FLAG, &raw, "no model: the images of --data themselves (eval transform, at --image or the "
         "shards' size) as features, the baseline an encoder must beat on the same bank", 0, 0, 0},
        {"out", OPT_STRING, &out, "results folder: appends a line to OUT/eval.jsonl", 0, 0, 0},
        COMPUTE_OPTIONS(gemm, precision),
    };
    int n = sizeof opts / sizeof opts[0];
    parse(opts, n, argc, argv, "knn",
          "(--checkpoint CKPT | --weights FILE) --data SHARDS [--k 20] [--temperature 0.07] "
          "[--feature cls|mean|gap] [--at-init] [--batch N] [--out DIR]\n"
          "       semaim-eval knn --train-features F --val-features F [...]\n"
          "       semaim-eval knn --raw-pixels --data SHARDS [--image S] [...]   (the raw-pixel baseline)");
    source_info_t info;
    featset_t tr, va;
    double t0;
    source_features("knn", &feature, raw, trf, vaf, data, &src, out, batch, gemm, precision, &info, &tr, &va, &t0);
    double t1 = clock_now();
    knn_result_t r;
    err_t e = {0};
    knn_eval(&tr, &va, feature, k, temperature, MPI_COMM_WORLD, &r, &e);
    agree(&e);
    double t2 = clock_now();
    if (rank_ == 0) {
        buf_t b = {0};
        result_begin(&b, "knn", &info, &src);
        metrics_str(&b, "feature", feature);
        metrics_int(&b, "k", r.k);
        metrics_num(&b, "temperature", "%g", temperature);
        metrics_num(&b, "top1", "%.4f", r.top1);
        metrics_num(&b, "top5", "%.4f", r.top5);
        metrics_int(&b, "bank", r.bank);
        metrics_int(&b, "queries", r.queries);
        metrics_int(&b, "num_classes", r.num_classes);
        metrics_int(&b, "ranks", world_);
        metrics_num(&b, "features_s", "%.3f", t1 - t0);
        metrics_num(&b, "knn_s", "%.3f", t2 - t1);
        result_write(&b, out);
        buf_free(&b);
        printf("knn: top1=%.2f top5=%.2f k=%d T=%g feature=%s bank=%ld queries=%ld classes=%d%s source=%s (%.1f s)\n",
               r.top1, r.top5, r.k, temperature, feature, r.bank, r.queries, r.num_classes, src.at_init ? " at-init" : "",
               info.desc, t2 - t0);
    }
    featset_free(&tr);
    featset_free(&va);
    return 0;
}

/* ---------------------------------------------------------------------------- linear probe */

typedef struct { const char *out, *kind; int epochs; linprobe_epoch_t last; } lp_ctx_t;

static void lp_epoch(const linprobe_epoch_t *ep, void *arg) {
    lp_ctx_t *c = arg;
    c->last = *ep;
    if (rank_ != 0) return;
    buf_t b = {0};
    metrics_begin(&b, "linprobe_epoch");
    metrics_num(&b, "time", "%.3f", (double)time(NULL));
    metrics_int(&b, "epoch", ep->epoch);
    metrics_str(&b, "feature", c->kind);
    metrics_num(&b, "loss", "%.6g", ep->loss);
    metrics_num(&b, "lr", "%.6g", ep->lr);
    metrics_num(&b, "top1", "%.4f", ep->top1);
    metrics_num(&b, "top5", "%.4f", ep->top5);
    metrics_num(&b, "seconds", "%.3f", ep->seconds);
    result_write(&b, c->out);
    buf_free(&b);
    printf("linprobe epoch %d/%d: loss %.4f lr %.3g top1 %.2f top5 %.2f (%.1f s)\n", ep->epoch, c->epochs, ep->loss, ep->lr,
           ep->top1, ep->top5, ep->seconds);
    fflush(stdout);
}

static int cmd_linprobe(int argc, char **argv) {
    source_t src = {0};
    const char *data = NULL, *out = NULL, *feature = "cls", *trf = NULL, *vaf = NULL, *gemm = "auto", *precision = "fp32";
    int batch = 64, raw = 0;
    long seed = 0;
    linprobe_cfg_t lc = {90, 256, 0.1, 0.9, 0.0, 10, 0};
    option_t opts[] = {
        SOURCE_OPTIONS(src),
        {"data", OPT_STRING, &data, "shards folder with train/ and val/ splits", 0, 0, 0},
        {"train-features", OPT_STRING, &trf, "or: precomputed train features (semaim-eval features)", 0, 0, 0},
        {"val-features", OPT_STRING, &vaf, "and: precomputed val features", 0, 0, 0},
        {"feature", OPT_STRING, &feature, "cls (cls token after the final norm), mean (mean normed patch token) or gap "
                                           "(the authors' global pool: mean patch token before the norm, LayerNorm without "
                                           "affine); cls is usually the weakest for this model family", 0, 0, 0},
        {"epochs", OPT_INT, &lc.epochs, "epochs", 1, 1000000, 0},
        {"probe-batch", OPT_INT, &lc.batch, "global batch of the probe", 1, 1 << 24, 0},
        {"base-lr", OPT_DOUBLE, &lc.base_lr, "lr = base-lr x probe-batch / 256", 0, 1e3, 0},
        {"momentum", OPT_DOUBLE, &lc.momentum, "SGD momentum", 0, 1, 0},
        {"weight-decay", OPT_DOUBLE, &lc.weight_decay, "weight decay (not on the bias)", 0, 10, 0},
        {"warmup-epochs", OPT_DOUBLE, &lc.warmup_epochs, "linear warmup, then half-cycle cosine to 0", 0, 1e6, 0},
        {"probe-seed", OPT_LONG, &seed, "seed of the probe's init and batch order", 0, 9.2e18, 0},
        {"batch", OPT_INT, &batch, "images per forward pass per rank (features)", 1, 1 << 20, 0},
        {"raw-pixels", OPT_FLAG, &raw, "no model: the images of --data themselves (eval transform, at --image or the "
         "shards' size) as features, the baseline an encoder must beat on the same bank", 0, 0, 0},
        {"out", OPT_STRING, &out, "results folder: appends lines to OUT/eval.jsonl", 0, 0, 0},
        COMPUTE_OPTIONS(gemm, precision),
    };
    int n = sizeof opts / sizeof opts[0];
    parse(opts, n, argc, argv, "linprobe",
          "(--checkpoint CKPT | --weights FILE) --data SHARDS [--epochs 90] [--probe-batch 256] [--out DIR]\n"
          "       semaim-eval linprobe --train-features F --val-features F [...]");
    lc.seed = (uint64_t)seed;
    source_info_t info;
    featset_t tr, va;
    double t0;
    source_features("linprobe", &feature, raw, trf, vaf, data, &src, out, batch, gemm, precision, &info, &tr, &va, &t0);
    double t1 = clock_now();
    lp_ctx_t ctx = {out, feature, lc.epochs, {0}};
    err_t e = {0};
    linprobe_run(&tr, &va, feature, &lc, MPI_COMM_WORLD, lp_epoch, &ctx, &e);
    agree(&e);
    double t2 = clock_now();
    if (rank_ == 0) {
        buf_t b = {0};
        result_begin(&b, "linprobe", &info, &src);
        metrics_str(&b, "feature", feature);
        metrics_int(&b, "epochs", lc.epochs);
        metrics_int(&b, "probe_batch", lc.batch);
        metrics_num(&b, "base_lr", "%g", lc.base_lr);
        metrics_num(&b, "top1", "%.4f", ctx.last.top1);
        metrics_num(&b, "top5", "%.4f", ctx.last.top5);
        metrics_int(&b, "train", tr.total);
        metrics_int(&b, "val", va.total);
        metrics_int(&b, "ranks", world_);
        metrics_num(&b, "features_s", "%.3f", t1 - t0);
        metrics_num(&b, "probe_s", "%.3f", t2 - t1);
        result_write(&b, out);
        buf_free(&b);
        printf("linprobe: top1=%.2f top5=%.2f epochs=%d feature=%s train=%ld val=%ld%s source=%s (%.1f s)\n", ctx.last.top1,
               ctx.last.top5, lc.epochs, feature, tr.total, va.total, src.at_init ? " at-init" : "", info.desc, t2 - t0);
    }
    featset_free(&tr);
    featset_free(&va);
    return 0;
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
    parse(opts, n, argc, argv, "export", "(--checkpoint CKPT | --weights FILE) --out FILE.safetensors [--full]\n"
          "A fine-tuning checkpoint (ft-*.bin) exports as timm's vit_* classifier with global_pool='avg'.");
    err_t e = {0};
    if (!out) err_set(&e, ERR_INPUT, "export: --out is required");
    agree(&e);
    /* a fine-tuning checkpoint: the classifier, in timm's names (rank 0) */
    int classifier = 0;
    ckpt_model_t hid;
    ckpt_state_t hst;
    err_t he = {0};
    if (rank_ == 0 && src.checkpoint && !src.weights && !ckpt_read_header(src.checkpoint, &hid, &hst, &he))
        classifier = hid.kind == CKPT_FINETUNE;
    MPI_Bcast(&classifier, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (classifier) {
        if (full || src.at_init) err_set(&e, ERR_INPUT, "export: %s is a fine-tuning checkpoint: --%s does not apply",
                                         src.checkpoint, full ? "full" : "at-init");
        ft_model_t f;
        if (rank_ == 0 && !e.kind && !ckpt_load_classifier(src.checkpoint, &f, &hst, &e)) {
            char step[32], cls[32];
            snprintf(step, sizeof step, "%lld", (long long)hst.step);
            snprintf(cls, sizeof cls, "%d", f.C);
            const char *k[] = {"source", "step", "classes", "global_pool"}, *v[] = {src.checkpoint, step, cls, "avg"};
            if (model_export_classifier(&f, k, v, 4, out, &e) == 0)
                printf("export: classifier of %d classes, %d tensors (timm vit_*, global_pool='avg'), %ld values -> %s\n",
                       f.C, f.w.ntensors + 1, f.w.nparams + (long)f.d.T * f.d.D, out);
            ft_free(&f);
        }
        agree(&e);
        return 0;
    }
    model_t m;
    source_info_t info;
    load(&src, &m, &info, full);
    if (rank_ == 0) {
        char step[32];
        snprintf(step, sizeof step, "%ld", info.step);
        const char *k[] = {"source", "step"}, *v[] = {info.desc, step};
        if (model_export_safetensors(&m, full, k, v, 2, out, &e) == 0) {
            long cnt = 0, params = (long)m.d.T * m.d.D;
            for (int i = 0; i < m.w.ntensors; i++)
                if (full || model_tensor_is_backbone(m.w.info[i].name)) { cnt++; params += m.w.info[i].numel; }
            printf("export: %ld tensors (%s), %ld values -> %s\n", cnt + 1, full ? "encoder + decoder" : "encoder",
                   params, out);
        }
    }
    agree(&e);
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
    parse(opts, n, argc, argv, "import", "--weights FILE.safetensors --out DIR [--heads N ...] [--full]");
    err_t e = {0};
    if (!out || !src.weights || src.checkpoint) err_set(&e, ERR_INPUT, "import: --weights and --out are required");
    agree(&e);
    model_t m;
    source_info_t info;
    load(&src, &m, &info, full);
    if (rank_ == 0) {
        double dev = model_pos_embed_deviation(&m);
        if (dev > 1e-4)
            err_set(&e, ERR_INPUT, "%s: pos_embed differs from the fixed 2-D sin-cos table (max %.3g), which checkpoints "
                    "do not store; evaluate the file directly with --weights", src.weights, dev);
        else if (mkdir(out, 0755) && errno != EEXIST)
            err_set(&e, ERR_INPUT, "%s: cannot create folder: %s", out, strerror(errno));
        else {
            ckpt_state_t st = {0, 0, 0, (uint64_t)src.seed, 1, 1};
            ckpt_model_t id = ckpt_pretrain(&m);
            memset(m.w.m, 0, sizeof(float) * m.w.nparams);
            memset(m.w.v, 0, sizeof(float) * m.w.nparams);
            if (ckpt_save(out, &id, &m.w, &st, 0, &e) == 0)
                printf("import: image %d patch %d width %d depth %d dec-depth %d heads %d%s -> %s/ckpt-00000000.bin\n",
                       m.cfg.image, m.cfg.patch, m.cfg.width, m.cfg.depth, m.cfg.dec_depth, m.cfg.heads,
                       info.has_decoder ? "" : " (decoder at initialisation)", out);
        }
    }
    agree(&e);
    model_free(&m);
    return 0;
}

/* ---------------------------------------------------------------------------- main */

/* `semaim-eval finetune ...` runs semaim-finetune (beside this program) with the same
 * arguments, before MPI starts here, so it works alike under mpirun and srun. Its messages
 * carry the name the user typed. */
static void finetune_moved(int argc, char **argv) {
    char self[PATH_MAX], path[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) { perror(PROG ": finetune: cannot find semaim-finetune"); exit(1); }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    snprintf(path, sizeof path, "%s/semaim-finetune", self);
    const char *r = getenv("OMPI_COMM_WORLD_RANK") ? getenv("OMPI_COMM_WORLD_RANK") : getenv("PMIX_RANK");
    if (!r || !strcmp(r, "0"))
        fprintf(stderr, PROG ": note: finetune moved to semaim-finetune (same options); running %s\n", path);
    argv[1] = PROG " finetune";   /* its argv[0]: the name errors are reported under */
    execv(path, argv + 1);
    fprintf(stderr, PROG ": finetune: cannot run %s: %s\n", path, strerror(errno));
    (void)argc;
    exit(1);
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "finetune")) finetune_moved(argc, argv);
    mpi_start(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_);
    if (!strcmp(cmd, "features")) cmd_features(argc, argv);
    else if (!strcmp(cmd, "knn")) cmd_knn(argc, argv);
    else if (!strcmp(cmd, "linprobe")) cmd_linprobe(argc, argv);
    else if (!strcmp(cmd, "export")) cmd_export(argc, argv);
    else if (!strcmp(cmd, "import")) cmd_import(argc, argv);
    else {
        int help = !strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help");
        if (rank_ == 0) {
            if (!help) fprintf(stderr, PROG ": %s'%s' (see semaim-eval --help)\n", *cmd ? "unknown command " : "no command", cmd);
            else printf("usage: semaim-eval COMMAND [options]   (COMMAND --help for its options)\n"
                        "  features  encoder features of a split -> HDF5\n"
                        "  knn       k-NN top-1/top-5 (DINO style)\n"
                        "  linprobe  linear probe (BatchNorm + Linear, SGD) on frozen features\n"
                        "  export    checkpoint -> safetensors (timm names)\n"
                        "  import    safetensors -> checkpoint\n"
                        "  finetune  moved to semaim-finetune (still accepted here: runs it)\n"
                        "Exit codes: 0 success, 1 runtime error, 2 bad input, 3 non-finite loss.\n");
        }
        dist_finish(help ? 0 : 2);
    }
    dist_finish(0);
}
