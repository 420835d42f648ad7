/* Loader test and benchmark driver.
 *   loader_check make DIR NSHARDS H W [--counts MIN MAX] [--seed S] [--odd K H2 W2] [--bad-label K]
 *       writes DIR/train/train-K-of-M.h5 (tests/tools/shard_fixture.h), image counts drawn
 *       from [MIN,MAX]; --odd gives shard K another image size, --bad-label a negative label.
 *   mpirun -np W loader_check run DIR [--batch B] [--size S] [--epochs E] [--dump FILE]
 *       every rank runs the loader in each mode (by shard, dealt, auto, eval) for E epochs;
 *       rank 0 gathers the ids and checks per epoch that the ranks' samples are disjoint,
 *       cover the data except the reported tails, and carry the right labels. Prints
 *       PASS/FAIL lines. --dump writes "mode epoch id checksum" of every train image, to
 *       compare augmentations across world sizes. Bad data: every rank prints its error and
 *       the job exits non-zero (an error inside the loader thread aborts the job).
 *   loader_check bench DIR [--batch B] [--size S] [--steps N] [--threads T] [--split NAME]
 *       images/s of the loader alone (the consumer does nothing), one process.
 *   loader_check dump DIR OUT [--split NAME] [--train 0|1] [--batch B] [--size S] [--epochs E]
 *                [--full-scale 0|1] [--interp 0|1] [--threads T]
 *       one process (world 1): every sample the loader returns, to OUT as int32
 *       [id, label, W, H, x0, y0, w, h, flip, m] (the stored image's size, the crop box and
 *       flip drawn for it, the DCT scale numerator m/8 the loader decodes at; eval: box 0)
 *       then float32 [3,S,S], for tests/tools/loader_jpeg_torch.py. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/clock.h"
#include "../tools/shard_fixture.h"
#include "data/augment.h"
#include "data/jpeg.h"
#include "semaim/shards.h"
#include "semaim/loader.h"
#include "semaim/rng.h"
#include "check.h"

/* The loader's calls with its error as a message (NULL = fine), the form these checks read. */
static _Thread_local err_t lerr_;
static const char *lopen(loader **L, const loader_config *c) { return loader_open(L, c, &lerr_) ? lerr_.msg : NULL; }
static const char *lnext(loader *L, const loader_batch **b, double *w) { return loader_next(L, b, w, &lerr_) ? lerr_.msg : NULL; }

static long arg_long(int argc, char **argv, const char *name, long def) {
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) {
            char *end;
            long v = strtol(argv[i + 1], &end, 10);
            if (*end || end == argv[i + 1]) { fprintf(stderr, "loader_check: %s: not a number: %s\n", name, argv[i + 1]); exit(2); }
            return v;
        }
    return def;
}
static const char *arg_str(int argc, char **argv, const char *name) {
    for (int i = 0; i + 1 < argc; i++) if (!strcmp(argv[i], name)) return argv[i + 1];
    return NULL;
}

static int cmd_make(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: loader_check make DIR NSHARDS H W [options]\n"); return 2; }
    const char *dir = argv[2];
    int m = atoi(argv[3]), H = atoi(argv[4]), W = atoi(argv[5]);
    if (m < 1 || H < 1 || W < 1) { fprintf(stderr, "loader_check make: bad sizes\n"); return 2; }
    long lo = 15, hi = 25, odd = -1, bad = -1;
    int H2 = H, W2 = W;
    for (int i = 6; i < argc; i++) {
        if (!strcmp(argv[i], "--counts") && i + 2 < argc) { lo = atol(argv[i + 1]); hi = atol(argv[i + 2]); i += 2; }
        else if (!strcmp(argv[i], "--odd") && i + 3 < argc) { odd = atol(argv[i + 1]); H2 = atoi(argv[i + 2]); W2 = atoi(argv[i + 3]); i += 3; }
        else if (!strcmp(argv[i], "--bad-label") && i + 1 < argc) { bad = atol(argv[++i]); }
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) { i++; }
        else { fprintf(stderr, "loader_check make: unknown option %s\n", argv[i]); return 2; }
    }
    rng_t r = rng_make(rng_key((uint64_t)arg_long(argc, argv, "--seed", 1), 0, 0, 0, 0));
    char sub[4096], path[4200];
    mkdir(dir, 0755);
    snprintf(sub, sizeof sub, "%s/train", dir);
    mkdir(sub, 0755);
    long first = 0;
    for (int k = 0; k < m; k++) {
        long n = lo + (long)rng_below(&r, (uint64_t)(hi - lo + 1));
        snprintf(path, sizeof path, "%s/train-%05d-of-%05d.h5", sub, k, m);
        int h = k == odd ? H2 : H, w = k == odd ? W2 : W;
        if (fx_write_shard(path, "train", k, m, n, h, w, first, k == bad ? FX_NEG_LABEL : 0)) {
            fprintf(stderr, "loader_check make: cannot write %s\n", path);
            return 1;
        }
        first += n;
    }
    printf("wrote %d shards, %ld images, to %s\n", m, first, sub);
    return 0;
}

static uint64_t checksum(const float *p, long n) {
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *b = (const unsigned char *)p;
    for (long i = 0; i < n * 4; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static int cmd_run(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (argc < 3) { if (!rank) fprintf(stderr, "usage: loader_check run DIR [options]\n"); MPI_Finalize(); return 2; }
    int B = (int)arg_long(argc, argv, "--batch", 4), S = (int)arg_long(argc, argv, "--size", 16);
    int E = (int)arg_long(argc, argv, "--epochs", 2);
    const char *dump = arg_str(argc, argv, "--dump");
    FILE *df = NULL;
    if (dump && rank == 0 && !(df = fopen(dump, "w"))) { fprintf(stderr, "loader_check: cannot write %s\n", dump); MPI_Abort(MPI_COMM_WORLD, 1); }
    const char *names[4] = {"by_shard", "dealt", "auto", "eval"};
    for (int mode = 0; mode < 4; mode++) {
        loader_config c = {0};
        c.data_dir = argv[2]; c.split = "train"; c.image_size = S; c.batch = B; c.seed = 7;
        c.rank = rank; c.world = world; c.train = mode < 3;
        c.assign = mode == 0 ? LOADER_ASSIGN_SHARDS : mode == 1 ? LOADER_ASSIGN_DEAL : LOADER_ASSIGN_AUTO;
        loader *L = NULL;
        const char *e = lopen(&L, &c);
        /* every rank validates every shard, so all fail alike; agree before any other collective */
        int bad = e != NULL, anybad;
        MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (anybad) {
            fprintf(stderr, "loader_check: rank %d: %s\n", rank, e ? e : "another rank failed to open the data");
            if (L) loader_close(L);
            MPI_Finalize();
            return 1;
        }
        long steps = loader_steps_per_epoch(L), N = loader_total_samples(L);
        long per = E * steps * B;
        int64_t *ids = malloc(sizeof(int64_t) * per);
        int32_t *lab = malloc(sizeof(int32_t) * per);
        uint64_t *sum = malloc(sizeof(uint64_t) * per);
        long *dropped = malloc(sizeof(long) * E);
        double wait = 0;
        for (int ep = 0; ep < E; ep++) {
            long rs;
            loader_epoch_info(L, ep, &rs, &dropped[ep]);
            for (long s = 0; s < steps; s++) {
                const loader_batch *b;
                double w;
                if ((e = lnext(L, &b, &w))) {   /* a read failed mid-run: abort the whole job */
                    fprintf(stderr, "loader_check: rank %d: %s\n", rank, e);
                    MPI_Abort(MPI_COMM_WORLD, 1);
                }
                wait += w;
                for (int i = 0; i < B; i++) {
                    long j = (ep * steps + s) * B + i;
                    ids[j] = b->ids[i]; lab[j] = b->labels[i];
                    sum[j] = checksum(b->images + (long)i * 3 * S * S, 3L * S * S);
                }
            }
        }
        int assign = c.train ? loader_assignment(L) : -1;
        loader_close(L);
        int64_t *all_ids = NULL;
        int32_t *all_lab = NULL;
        uint64_t *all_sum = NULL;
        long *all_drop = NULL;
        if (rank == 0) {
            all_ids = malloc(sizeof(int64_t) * per * world);
            all_lab = malloc(sizeof(int32_t) * per * world);
            all_sum = malloc(sizeof(uint64_t) * per * world);
            all_drop = malloc(sizeof(long) * E * world);
        }
        MPI_Gather(ids, (int)per, MPI_INT64_T, all_ids, (int)per, MPI_INT64_T, 0, MPI_COMM_WORLD);
        MPI_Gather(lab, (int)per, MPI_INT32_T, all_lab, (int)per, MPI_INT32_T, 0, MPI_COMM_WORLD);
        MPI_Gather(sum, (int)per, MPI_UINT64_T, all_sum, (int)per, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        MPI_Gather(dropped, E, MPI_LONG, all_drop, E, MPI_LONG, 0, MPI_COMM_WORLD);
        double wait_max;
        MPI_Reduce(&wait, &wait_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
        if (rank == 0) {
            char *seen = calloc((size_t)N, 1);
            int ok = 1;
            char why[256] = "";
            for (int ep = 0; ep < E && ok; ep++) {
                memset(seen, 0, (size_t)N);
                long covered = 0, drop = 0;
                for (int r = 0; r < world; r++) drop += all_drop[r * E + ep];
                for (int r = 0; r < world && ok; r++)
                    for (long j = ep * steps * B; j < (ep + 1) * steps * B; j++) {
                        long g = all_ids[r * per + j];
                        if (g == -1 && mode == 3) continue;   /* eval padding */
                        if (g < 0 || g >= N) { ok = 0; snprintf(why, sizeof why, "epoch %d: id %ld out of range", ep, g); break; }
                        if (seen[g]++) { ok = 0; snprintf(why, sizeof why, "epoch %d: sample %ld on two ranks or twice", ep, g); break; }
                        if (all_lab[r * per + j] != fx_label(g)) { ok = 0; snprintf(why, sizeof why, "sample %ld: wrong label", g); break; }
                        covered++;
                        if (df && mode < 3) fprintf(df, "%s %d %ld %016llx\n", names[mode], ep, g, (unsigned long long)all_sum[r * per + j]);
                    }
                if (ok && covered + drop != N) {
                    ok = 0; snprintf(why, sizeof why, "epoch %d: %ld used + %ld dropped != %ld", ep, covered, drop, N);
                }
                if (ok && mode < 3 && covered != (long)world * steps * B) {
                    ok = 0; snprintf(why, sizeof why, "epoch %d: %ld used, want %ld", ep, covered, (long)world * steps * B);
                }
            }
            long drop0 = 0;
            for (int r = 0; r < world; r++) drop0 += all_drop[r * E];
            /* rank 0 holds everything gathered: it alone checks and reports */
            test_begin("mpi_world%d_%s_disjoint_cover (%ld images, %ld steps of %d per rank, %ld dropped in epoch 0%s; "
                       "max wait %.4f s over %ld steps)", world, names[mode], N, steps, B, drop0,
                       assign == LOADER_ASSIGN_DEAL ? ", dealt" : assign == LOADER_ASSIGN_SHARDS ? ", by shard" : "",
                       wait_max, E * steps);
            CHECK(ok, "%s", why);
            test_end();
            free(seen); free(all_ids); free(all_lab); free(all_sum); free(all_drop);
        }
        free(ids); free(lab); free(sum); free(dropped);
    }
    if (df && fclose(df)) { fprintf(stderr, "loader_check: writing %s failed\n", dump); check_failures_++; }
    MPI_Bcast(&check_failures_, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return test_exit();
}

static int cmd_bench(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: loader_check bench DIR [options]\n"); return 2; }
    loader_config c = {0};
    c.data_dir = argv[2]; c.split = "train"; c.seed = 1; c.world = 1; c.train = 1;
    c.batch = (int)arg_long(argc, argv, "--batch", 64);
    c.image_size = (int)arg_long(argc, argv, "--size", 224);
    c.threads = (int)arg_long(argc, argv, "--threads", 1);
    c.interp = (int)arg_long(argc, argv, "--interp", INTERP_PIL);
    if (arg_str(argc, argv, "--split")) c.split = arg_str(argc, argv, "--split");
    long steps = arg_long(argc, argv, "--steps", 16);
    loader *L;
    const char *e = lopen(&L, &c);
    if (e) { fprintf(stderr, "loader_check: %s\n", e); return 1; }
    const loader_batch *b;
    double w, t0 = 0;
    for (long s = 0; s <= steps; s++) {
        if ((e = lnext(L, &b, &w))) { fprintf(stderr, "loader_check: %s\n", e); loader_close(L); return 1; }
        if (s == 0) t0 = clock_now();   /* the first batch includes opening files: not counted */
    }
    double t = clock_now() - t0, rs, as;
    long nb;
    loader_stats(L, &rs, &as, &nb);
    printf("images/s %.1f read_ms_per_image %.4f augment_ms_per_image %.4f\n", steps * c.batch / t,
           1e3 * rs / (nb * c.batch), 1e3 * as / (nb * c.batch));
    loader_close(L);
    return 0;
}

static int cmd_dump(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: loader_check dump DIR OUT [options]\n"); return 2; }
    loader_config c = {0};
    c.data_dir = argv[2]; c.split = arg_str(argc, argv, "--split") ? arg_str(argc, argv, "--split") : "train";
    c.seed = 3; c.world = 1;
    c.train = (int)arg_long(argc, argv, "--train", 1);
    c.batch = (int)arg_long(argc, argv, "--batch", 4);
    c.image_size = (int)arg_long(argc, argv, "--size", 32);
    c.threads = (int)arg_long(argc, argv, "--threads", 1);
    c.interp = (int)arg_long(argc, argv, "--interp", INTERP_PIL);
    c.jpeg_full_scale = (int)arg_long(argc, argv, "--full-scale", 0);
    long epochs = arg_long(argc, argv, "--epochs", 1);
    const int S = c.image_size;
    loader *L;
    shard_set set;
    err_t e;
    const char *m = lopen(&L, &c);
    if (m) { fprintf(stderr, "loader_check: %s\n", m); return 1; }
    if (shards_scan(&set, c.data_dir, c.split, &e)) { fprintf(stderr, "loader_check: %s\n", e.msg); return 1; }
    /* the stored sizes, through the reader the loader uses */
    shard_reader *rd = shard_reader_new(&set, 4);
    uint8_t *buf = NULL;
    size_t cap = 0;
    FILE *out = fopen(argv[3], "wb");
    if (!out || !rd) { fprintf(stderr, "loader_check: cannot write %s\n", argv[3]); return 1; }
    long steps = loader_steps_per_epoch(L) * epochs;
    for (long st = 0; st < steps; st++) {
        const loader_batch *b;
        if ((m = lnext(L, &b, NULL))) { fprintf(stderr, "loader_check: %s\n", m); return 1; }
        for (int i = 0; i < b->n; i++) {
            long local;
            int k = shards_locate(&set, b->ids[i], &local);
            shard_jpeg ref = {0, 0, set.W, set.H};
            int32_t lab;
            size_t used = 0;
            shards_hdf5_lock();
            int rc = set.jpeg ? shard_reader_read_jpeg(rd, k, local, 1, &buf, &cap, &used, &ref, &lab, &e) : 0;
            shards_hdf5_unlock();
            if (rc) { fprintf(stderr, "loader_check: %s\n", e.msg); return 1; }
            aug_params p = {0, 0, 0, 0, 0};
            int32_t R = augment_eval_resize(S, ref.h, ref.w, AUG_EVAL_CROP_PCT), OH, OW, oy, ox, mm;
            if (c.train) {
                augment_sample(&p, ref.h, ref.w, rng_key(c.seed, AUG_RNG_TAG, (uint64_t)b->epoch, (uint64_t)b->ids[i], 0));
                mm = jpeg_dct_scale(p.w, p.h, S, S);
            } else {
                augment_eval_geometry(ref.h, ref.w, S, R, &OH, &OW, &oy, &ox);
                mm = jpeg_dct_scale(ref.w, ref.h, OW, OH);
            }
            if (c.jpeg_full_scale) mm = 8;
            int32_t hdr[10] = {(int32_t)b->ids[i], b->labels[i], ref.w, ref.h, p.x0, p.y0, p.w, p.h, p.flip, mm};
            fwrite(hdr, sizeof hdr, 1, out);
            fwrite(b->images + (size_t)i * 3 * S * S, sizeof(float), (size_t)3 * S * S, out);
        }
    }
    shards_hdf5_lock();
    shard_reader_free(rd);
    shards_hdf5_unlock();
    shards_free(&set);
    free(buf);
    loader_close(L);
    return fclose(out) ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "make")) return cmd_make(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "run")) return cmd_run(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "bench")) return cmd_bench(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "dump")) return cmd_dump(argc, argv);
    fprintf(stderr, "usage: loader_check make|run|bench|dump ...\n");
    return 2;
}
