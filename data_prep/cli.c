/* Command line: semaim-prep convert | verify | manifest | fmnist. Every flag is checked and a
 * bad one ends the run with one line naming it (exit 2); runtime failures exit 1. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prep.h"

#define JPEG_MAX_SIDE 65500   /* the largest dimension a JPEG can have */

static const char *usage_main =
    "usage: semaim-prep COMMAND [options]    (semaim-prep COMMAND --help for details)\n"
    "\n"
    "  convert   JPEG class-folder tree (ImageNet layout) -> HDF5 shards + manifest.json\n"
    "  verify    re-read the shards of an output directory and check them against manifest.json\n"
    "  manifest  assemble manifest.json from per-shard records (after a Slurm array of converts)\n"
    "  fmnist    Fashion-MNIST IDX files -> class folders of JPEGs (input for convert)\n"
    "\n"
    "Format and examples: data_prep/README.md\n";

static const char *usage_convert =
    "usage: semaim-prep convert --src ROOT --out OUT [options]\n"
    "\n"
    "Reads ROOT/train/<class>/*.jpg|*.jpeg (any case) and ROOT/val/ (class folders, or flat with\n"
    "LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt) and writes\n"
    "OUT/train/train-NNNNN-of-TTTTT.h5, OUT/val/val-NNNNN-of-VVVVV.h5 and OUT/manifest.json.\n"
    "Labels are 0..C-1 in sorted class-folder order of train/. Shards already finished (record\n"
    "and CRC32 match) are kept, so an interrupted run resumes where it stopped.\n"
    "\n"
    "  --src ROOT             source tree (required)\n"
    "  --out OUT              output directory, created if needed (required)\n"
    "  --train-shards N       number of train shards (default 1024)\n"
    "  --val-shards M         number of val shards, 0 for none (default 64)\n"
    "  --store jpeg|raw       jpeg (default): each image as JPEG bytes, decoded by the loader, which\n"
    "                         crops from the whole photo; raw: decoded, resized and centre-cropped\n"
    "                         RGB pixels (about 10x the bytes)\n"
    "  --max-side N           jpeg: longer side capped at N, aspect kept, never enlarged (default 512)\n"
    "  --quality Q            jpeg: quality 1..100 of images that must be re-encoded (resized, or\n"
    "                         progressive, grayscale, CMYK, YCCK); others keep their bytes (default 90)\n"
    "  --size S               raw, train: shorter side resized to S, centre crop SxS (default 256)\n"
    "  --val-size S           raw, val: centre crop SxS (default 224)\n"
    "  --val-resize R         raw, val: shorter side resized to R first (default floor(S/0.875) = 256)\n"
    "  --seed N               shuffle seed, 0 <= N < 2^53 (default 0)\n"
    "  --val-labels FILE      labels for a flat val/: LOC_val_solution.csv or the devkit's\n"
    "                         ILSVRC2012_validation_ground_truth.txt (default: looked up in ROOT)\n"
    "  --val-class-order FILE one wnid per line in devkit class-id order (needed with the\n"
    "                         ground-truth file, whose ids are not in sorted wnid order)\n"
    "  --threads N            decoding threads per process (default: OMP_NUM_THREADS or all cores)\n"
    "  --shard-range A:B      convert only global shards A..B-1 (train 0..T-1, then val T..T+V-1)\n"
    "  --task I/N | slurm     convert the I-th of N equal slices of all shards; 'slurm' takes I and\n"
    "                         N from SLURM_ARRAY_TASK_ID/_MIN/_COUNT. Finish with `semaim-prep manifest`\n"
    "                         (the last task to finish also writes the manifest by itself)\n"
    "  --force                convert every selected shard even if it is already complete\n"
    "  --progress MODE        auto (bar on a terminal, status lines otherwise), bar, lines, none\n"
    "  --status-every SEC     seconds between status lines (default 30)\n"
    "\n"
    "Under mpirun/srun, ranks take disjoint shards (shard g -> rank g mod ranks) and rank 0 writes\n"
    "the manifest; output is byte-identical for any rank and thread count.\n"
    "Exit status: 0 done, 1 failed, 2 bad command line.\n";

static const char *usage_verify =
    "usage: semaim-prep verify OUT\n"
    "\n"
    "Re-reads every shard listed in OUT/manifest.json and checks its size and CRC32, its HDF5\n"
    "structure (datasets, types, shapes, contiguous layout, no filters), its attributes and its\n"
    "label range, and that the manifest lists every shard once. One line per problem; exit 1 if\n"
    "any. Runs under mpirun too (ranks split the shards).\n";

static const char *usage_manifest =
    "usage: semaim-prep manifest OUT\n"
    "\n"
    "Writes OUT/manifest.json from OUT/.prep/plan.json and the per-shard records\n"
    "OUT/.prep/<shard>.json, after checking every shard's size and CRC32 against its record.\n"
    "Use it after a Slurm array of `convert --task` jobs; exit 1 if a shard is missing or damaged.\n";

static const char *usage_fmnist =
    "usage: semaim-prep fmnist --src DIR --out ROOT [--limit N] [--quality Q] [--threads N]\n"
    "\n"
    "Converts Fashion-MNIST (DIR holds train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; Debian: /usr/share/datasets/fashion-mnist)\n"
    "into ROOT/train/<class>/train_NNNNN.jpg and ROOT/val/<class>/val_NNNNN.jpg, grayscale JPEGs,\n"
    "class folders 0_T-shirt-top .. 9_Ankle-boot (sorted order = Fashion-MNIST label).\n"
    "\n"
    "  --limit N     at most the first N images of each split (default: all)\n"
    "  --quality Q   JPEG quality 1..100 (default 95)\n"
    "  --threads N   encoding threads (default: OMP_NUM_THREADS or all cores)\n";

typedef struct { int argc, i; char **argv; const char *cmd; } args;

/* Next flag's value: "--name value" or "--name=value". */
static const char *value(args *a, const char *flag, const char *eq) {
    if (eq) return eq + 1;
    if (a->i + 1 >= a->argc) { prep_err("%s needs a value (see semaim-prep %s --help)", flag, a->cmd); return NULL; }
    return a->argv[++a->i];
}

static int int_flag(const char *flag, const char *v, long lo, long hi, int *out) {
    long x;
    if (prep_parse_long(v, lo, hi, &x)) { prep_err("%s: expected an integer in %ld..%ld, got '%s'", flag, lo, hi, v); return -1; }
    *out = (int)x;
    return 0;
}

static int match(const char *arg, const char *name, const char **eq) {
    size_t n = strlen(name);
    if (strncmp(arg, name, n)) return 0;
    if (arg[n] == 0) { *eq = NULL; return 1; }
    if (arg[n] == '=') { *eq = arg + n; return 1; }
    return 0;
}

static int env_long(const char *name, long lo, long hi, long *v) {
    const char *e = getenv(name);
    if (!e) { prep_err("--task slurm: %s is not set (not a Slurm array job?)", name); return -1; }
    if (prep_parse_long(e, lo, hi, v)) { prep_err("--task slurm: %s=%s is not an integer in %ld..%ld", name, e, lo, hi); return -1; }
    return 0;
}

static int parse_task(const char *v, prep_opts *o) {
    if (!strcmp(v, "slurm")) {
        long id, mn = 0, cnt;
        if (env_long("SLURM_ARRAY_TASK_ID", 0, INT_MAX, &id) || env_long("SLURM_ARRAY_TASK_COUNT", 1, INT_MAX, &cnt)) return -1;
        if (getenv("SLURM_ARRAY_TASK_MIN") && env_long("SLURM_ARRAY_TASK_MIN", 0, INT_MAX, &mn)) return -1;
        if (id < mn || id - mn >= cnt) { prep_err("--task slurm: task id %ld outside %ld..%ld (use a contiguous array)", id, mn, mn + cnt - 1); return -1; }
        o->task_i = (int)(id - mn); o->task_n = (int)cnt;
        return 0;
    }
    const char *slash = strchr(v, '/');
    char a[32];
    long i, n;
    if (!slash || (size_t)(slash - v) >= sizeof a) { prep_err("--task: expected I/N or 'slurm', got '%s'", v); return -1; }
    snprintf(a, sizeof a, "%.*s", (int)(slash - v), v);
    if (prep_parse_long(a, 0, INT_MAX, &i) || prep_parse_long(slash + 1, 1, INT_MAX, &n) || i >= n) {
        prep_err("--task: expected I/N with 0 <= I < N, got '%s'", v);
        return -1;
    }
    o->task_i = (int)i; o->task_n = (int)n;
    return 0;
}

static int parse_range(const char *v, prep_opts *o) {
    const char *colon = strchr(v, ':');
    char a[32];
    long lo, hi;
    if (!colon || (size_t)(colon - v) >= sizeof a) { prep_err("--shard-range: expected A:B, got '%s'", v); return -1; }
    snprintf(a, sizeof a, "%.*s", (int)(colon - v), v);
    if (prep_parse_long(a, 0, 1L << 40, &lo) || prep_parse_long(colon + 1, 1, 1L << 40, &hi) || lo >= hi) {
        prep_err("--shard-range: expected A:B with 0 <= A < B, got '%s'", v);
        return -1;
    }
    o->range_lo = lo; o->range_hi = hi; o->ranged = 1;
    return 0;
}

static int parse_convert(args *a, prep_opts *o) {
    prep_opts_default(o);
    int val_resize = 0, threads = 0, store = -1;
    const char *raw_flag = NULL, *jpeg_flag = NULL;   /* the first flag of each store given */
    for (a->i = 2; a->i < a->argc; a->i++) {
        const char *arg = a->argv[a->i], *eq, *v;
        int rc = 0;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) { fputs(usage_convert, stdout); return 1; }
        else if (match(arg, "--src", &eq)) { if (!(o->src = value(a, "--src", eq))) return -1; }
        else if (match(arg, "--out", &eq)) { if (!(o->out = value(a, "--out", eq))) return -1; }
        else if (match(arg, "--train-shards", &eq)) rc = !(v = value(a, arg, eq)) || int_flag("--train-shards", v, 0, 99999, &o->shards[PREP_TRAIN]);
        else if (match(arg, "--val-shards", &eq)) rc = !(v = value(a, arg, eq)) || int_flag("--val-shards", v, 0, 99999, &o->shards[PREP_VAL]);
        else if (match(arg, "--store", &eq)) {
            if (!(v = value(a, arg, eq))) return -1;
            if (!strcmp(v, "raw")) store = PREP_STORE_RAW;
            else if (!strcmp(v, "jpeg")) store = PREP_STORE_JPEG;
            else { prep_err("--store: expected jpeg or raw, got '%s'", v); return -1; }
        }
        else if (match(arg, "--max-side", &eq)) {
            rc = !(v = value(a, arg, eq)) || int_flag("--max-side", v, 1, JPEG_MAX_SIDE, &o->max_side);
            if (!jpeg_flag) jpeg_flag = "--max-side";
        }
        else if (match(arg, "--quality", &eq)) {
            rc = !(v = value(a, arg, eq)) || int_flag("--quality", v, 1, 100, &o->quality);
            if (!jpeg_flag) jpeg_flag = "--quality";
        }
        else if (match(arg, "--size", &eq)) {
            rc = !(v = value(a, arg, eq)) || int_flag("--size", v, 1, 8192, &o->size[PREP_TRAIN]);
            if (!raw_flag) raw_flag = "--size";
        }
        else if (match(arg, "--val-size", &eq)) {
            rc = !(v = value(a, arg, eq)) || int_flag("--val-size", v, 1, 8192, &o->size[PREP_VAL]);
            if (!raw_flag) raw_flag = "--val-size";
        }
        else if (match(arg, "--val-resize", &eq)) {
            rc = !(v = value(a, arg, eq)) || int_flag("--val-resize", v, 1, 8192, &val_resize);
            if (!raw_flag) raw_flag = "--val-resize";
        }
        else if (match(arg, "--threads", &eq)) rc = !(v = value(a, arg, eq)) || int_flag("--threads", v, 1, 1024, &threads);
        else if (match(arg, "--seed", &eq)) {
            long s;
            if (!(v = value(a, arg, eq))) return -1;
            if (prep_parse_long(v, 0, (1L << 53) - 1, &s)) { prep_err("--seed: expected an integer in 0..2^53-1, got '%s'", v); return -1; }
            o->seed = (uint64_t)s;
        }
        else if (match(arg, "--val-labels", &eq)) { if (!(o->val_labels = value(a, arg, eq))) return -1; }
        else if (match(arg, "--val-class-order", &eq)) { if (!(o->val_class_order = value(a, arg, eq))) return -1; }
        else if (match(arg, "--shard-range", &eq)) rc = !(v = value(a, arg, eq)) || parse_range(v, o);
        else if (match(arg, "--task", &eq)) rc = !(v = value(a, arg, eq)) || parse_task(v, o);
        else if (!strcmp(arg, "--force")) o->force = 1;
        else if (match(arg, "--progress", &eq)) {
            if (!(v = value(a, arg, eq))) return -1;
            if (!strcmp(v, "auto")) o->progress = -1;
            else if (!strcmp(v, "bar")) o->progress = 1;
            else if (!strcmp(v, "lines")) o->progress = 2;
            else if (!strcmp(v, "none")) o->progress = 0;
            else { prep_err("--progress: expected auto, bar, lines or none, got '%s'", v); return -1; }
        }
        else if (match(arg, "--status-every", &eq)) {
            if (!(v = value(a, arg, eq))) return -1;
            char *end;
            double x = strtod(v, &end);
            if (*end || !(x > 0 && x < 1e6)) { prep_err("--status-every: expected seconds > 0, got '%s'", v); return -1; }
            o->status_every = x;
        }
        else { prep_err("unknown option '%s' (see semaim-prep convert --help)", arg); return -1; }
        if (rc) return -1;
    }
    if (!o->src) { prep_err("--src ROOT is required (see semaim-prep convert --help)"); return -1; }
    if (!o->out) { prep_err("--out OUT is required (see semaim-prep convert --help)"); return -1; }
    if (!*o->src || !*o->out) { prep_err("--src and --out must not be empty"); return -1; }
    if (!o->shards[PREP_TRAIN] && !o->shards[PREP_VAL]) { prep_err("--train-shards and --val-shards are both 0: nothing to do"); return -1; }
    if (o->ranged && o->task_n) { prep_err("--shard-range and --task both select shards: give one"); return -1; }
    if (store >= 0) o->store = store;
    /* A flag of the other store would be silently ignored: say so instead. */
    if (o->store == PREP_STORE_JPEG && raw_flag) {
        if (store < 0) prep_err("%s applies to --store raw only, and the default store is jpeg: add --store raw or drop %s", raw_flag, raw_flag);
        else prep_err("%s applies to --store raw only, not --store jpeg", raw_flag);
        return -1;
    }
    if (o->store == PREP_STORE_RAW && jpeg_flag) { prep_err("%s applies to --store jpeg only, not --store raw", jpeg_flag); return -1; }
    o->resize[PREP_TRAIN] = o->size[PREP_TRAIN];
    o->resize[PREP_VAL] = val_resize ? val_resize : (int)((long)o->size[PREP_VAL] * 8 / 7);
    if (o->resize[PREP_VAL] < o->size[PREP_VAL]) {
        prep_err("--val-resize %d is smaller than --val-size %d: the crop would not fit", o->resize[PREP_VAL], o->size[PREP_VAL]);
        return -1;
    }
    o->threads = threads;
    return 0;
}

static int parse_out_only(args *a, const char *usage, const char **out) {
    *out = NULL;
    for (a->i = 2; a->i < a->argc; a->i++) {
        const char *arg = a->argv[a->i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) { fputs(usage, stdout); return 1; }
        if (arg[0] == '-' && arg[1]) { prep_err("unknown option '%s' (see semaim-prep %s --help)", arg, a->cmd); return -1; }
        if (*out) { prep_err("one output directory expected, got '%s' and '%s'", *out, arg); return -1; }
        *out = arg;
    }
    if (!*out || !**out) { prep_err("the output directory is required: semaim-prep %s OUT", a->cmd); return -1; }
    return 0;
}

static int parse_fmnist(args *a, prep_fmnist_opts *o) {
    memset(o, 0, sizeof *o);
    o->limit = -1; o->quality = 95;
    for (a->i = 2; a->i < a->argc; a->i++) {
        const char *arg = a->argv[a->i], *eq, *v;
        int rc = 0;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) { fputs(usage_fmnist, stdout); return 1; }
        else if (match(arg, "--src", &eq)) { if (!(o->src = value(a, arg, eq))) return -1; }
        else if (match(arg, "--out", &eq)) { if (!(o->out = value(a, arg, eq))) return -1; }
        else if (match(arg, "--limit", &eq)) {
            if (!(v = value(a, arg, eq))) return -1;
            if (prep_parse_long(v, 1, LONG_MAX, &o->limit)) { prep_err("--limit: expected a positive integer, got '%s'", v); return -1; }
        }
        else if (match(arg, "--quality", &eq)) rc = !(v = value(a, arg, eq)) || int_flag("--quality", v, 1, 100, &o->quality);
        else if (match(arg, "--threads", &eq)) rc = !(v = value(a, arg, eq)) || int_flag("--threads", v, 1, 1024, &o->threads);
        else { prep_err("unknown option '%s' (see semaim-prep fmnist --help)", arg); return -1; }
        if (rc) return -1;
    }
    if (!o->src || !*o->src) { prep_err("--src DIR is required (see semaim-prep fmnist --help)"); return -1; }
    if (!o->out || !*o->out) { prep_err("--out ROOT is required (see semaim-prep fmnist --help)"); return -1; }
    return 0;
}

/* fmnist and manifest are serial: under a launcher only the first rank works, so that ranks
 * do not race on the same files. */
static int launched_rank(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

int prep_main(int argc, char **argv) {
    static char prog[64];
    prep_prog = "semaim-prep";
    if (argc < 2) { fputs(usage_main, stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        const char *topic = argc > 2 ? argv[2] : "";
        fputs(!strcmp(topic, "convert") ? usage_convert : !strcmp(topic, "verify") ? usage_verify :
              !strcmp(topic, "manifest") ? usage_manifest : !strcmp(topic, "fmnist") ? usage_fmnist : usage_main, stdout);
        return 0;
    }
    args a = {argc, 1, argv, cmd};
    int rc;
    if (!strcmp(cmd, "convert")) {
        snprintf(prog, sizeof prog, "semaim-prep convert");
        prep_prog = prog;
        prep_opts o;
        if ((rc = parse_convert(&a, &o))) return rc > 0 ? 0 : 2;
        prep_comm c;
        prep_comm_init(&c, &argc, &argv);
        rc = prep_convert(&o, &c);
        prep_comm_finalize(&c);
        return rc;
    }
    if (!strcmp(cmd, "verify")) {
        snprintf(prog, sizeof prog, "semaim-prep verify");
        prep_prog = prog;
        const char *out;
        if ((rc = parse_out_only(&a, usage_verify, &out))) return rc > 0 ? 0 : 2;
        prep_comm c;
        prep_comm_init(&c, &argc, &argv);
        rc = prep_verify(out, &c);
        prep_comm_finalize(&c);
        return rc;
    }
    if (!strcmp(cmd, "manifest")) {
        snprintf(prog, sizeof prog, "semaim-prep manifest");
        prep_prog = prog;
        const char *out;
        if ((rc = parse_out_only(&a, usage_manifest, &out))) return rc > 0 ? 0 : 2;
        return launched_rank() ? 0 : prep_manifest_cmd(out);
    }
    if (!strcmp(cmd, "fmnist")) {
        snprintf(prog, sizeof prog, "semaim-prep fmnist");
        prep_prog = prog;
        prep_fmnist_opts o;
        if ((rc = parse_fmnist(&a, &o))) return rc > 0 ? 0 : 2;
        return launched_rank() ? 0 : prep_fmnist(&o);
    }
    prep_err("unknown command '%s' (commands: convert, verify, manifest, fmnist; see semaim-prep --help)", cmd);
    return 2;
}
