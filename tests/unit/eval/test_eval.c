/* Evaluation pieces without shards: the safetensors reader (valid and broken files), export /
 * import by names and shapes, k-NN (vote weighting, distributed merge, a separable set), the
 * linear probe on a separable set, and features files. MPI runs as a singleton (one rank). */
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "semaim/eval.h"
#include "semaim/model_io.h"
#include "semaim/rng.h"
#include "semaim/safetensors.h"

/* Open MPI's dlopen'ed components keep allocations until exit; with the fast unwinder their
 * stacks end in "<unknown module>" and tests/lsan.supp cannot match them. (Read by ASan only;
 * ASAN_OPTIONS from the environment still override it.) */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

static char dir[] = "/tmp/semaim-evaltest-XXXXXX";

static const char *tmp(const char *name) {
    static char buf[8][4096];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Writes 8-byte length + header + data bytes verbatim (for malformed files). */
static void write_raw(const char *path, const char *hdr, long data_bytes) {
    FILE *f = fopen(path, "wb");
    unsigned long long n = strlen(hdr);
    fwrite(&n, 8, 1, f);
    fputs(hdr, f);
    for (long i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
}

static int open_fails(const char *path, const char *needle, err_t *e) {
    st_file_t f;
    if (st_open(&f, path, e) == 0) { st_close(&f); return 0; }
    const char *err = e->msg;
    return strstr(err, needle) != NULL && strstr(err, path) != NULL && !strchr(err, '\n') && e->kind == ERR_INPUT;
}

static void test_safetensors(void) {
    err_t err_v = {0}; char *err = err_v.msg;
    test_begin("safetensors_round_trip_with_metadata");
    float a[6] = {1, 2, 3, 4, 5, 6};
    double b[2] = {0.5, -1.25};
    st_tensor_t t[2] = {{"x\"q", ST_F32, 2, {2, 3}, a}, {"y", ST_F64, 1, {2}, b}};
    const char *k[] = {"format", "note"}, *v[] = {"pt", "a \"quoted\" value"};
    CHECK(st_write_meta(tmp("a.st"), t, 2, k, v, 2, &err_v) == 0, "write: %s", err);
    st_file_t f;
    CHECK(st_open(&f, tmp("a.st"), &err_v) == 0, "open: %s", err);
    if (f.n == 2) {
        const st_entry_t *x = st_find(&f, "x\"q"), *y = st_find(&f, "y");
        CHECK(x && x->ndim == 2 && x->shape[0] == 2 && x->shape[1] == 3 && x->dtype == ST_F32, "x entry");
        CHECK(y && y->dtype == ST_F64 && st_numel(y) == 2, "y entry");
        float got[6] = {0}, gy[2] = {0};
        CHECK(x && st_read_f32(&f, x, got, &err_v) == 0 && !memcmp(got, a, sizeof a), "x data");
        CHECK(y && st_read_f32(&f, y, gy, &err_v) == 0 && gy[0] == 0.5f && gy[1] == -1.25f, "y data (F64)");
        CHECK(st_meta(&f, "note") && !strcmp(st_meta(&f, "note"), "a \"quoted\" value"), "metadata");
        st_close(&f);
    } else CHECK(0, "expected 2 tensors, got %d", f.n);
    /* F16 and BF16 conversion: 1.5 = 0x3e00 (half), 0x3fc0 (bfloat16); -2 = 0xc000 / 0xc000 */
    write_raw(tmp("h.st"), "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                           "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}", 0);
    FILE *fp = fopen(tmp("h.st"), "ab");
    unsigned short hv[4] = {0x3e00, 0xc000, 0x3fc0, 0xc000};
    fwrite(hv, 2, 4, fp);
    fclose(fp);
    float hf[2] = {0}, bf[2] = {0};
    CHECK(st_open(&f, tmp("h.st"), &err_v) == 0, "open f16: %s", err);
    if (f.n == 2) {
        CHECK(st_read_f32(&f, st_find(&f, "h"), hf, &err_v) == 0 && hf[0] == 1.5f && hf[1] == -2.0f,
              "F16 -> %g %g", hf[0], hf[1]);
        CHECK(st_read_f32(&f, st_find(&f, "b"), bf, &err_v) == 0 && bf[0] == 1.5f && bf[1] == -2.0f,
              "BF16 -> %g %g", bf[0], bf[1]);
        st_close(&f);
    }
    test_end();

    test_begin("safetensors_bad_files_one_line_errors");
    const char *p = tmp("bad.st");
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 20);
    CHECK(open_fails(p, "outside the 20 data bytes", &err_v), "truncated data: %s", err);
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24);
    CHECK(open_fails(p, "20 bytes for 6 F32", &err_v), "size mismatch: %s", err);
    write_raw(p, "{\"x\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    CHECK(open_fails(p, "unsupported dtype 'Q8'", &err_v), "dtype: %s", err);
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    CHECK(open_fails(p, "overlap", &err_v), "overlap: %s", err);
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    CHECK(open_fails(p, "appears twice", &err_v), "duplicate: %s", err);
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    CHECK(open_fails(p, "non-negative", &err_v), "negative dim: %s", err);
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4);
    CHECK(open_fails(p, "expected '}'", &err_v), "unterminated JSON: %s", err);
    write_raw(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
    CHECK(open_fails(p, "must have dtype, shape and data_offsets", &err_v), "missing key: %s", err);
    FILE *fx = fopen(p, "wb");
    fwrite("\xff\xff\xff\xff\x00\x00\x00\x00{}", 1, 10, fx);
    fclose(fx);
    CHECK(open_fails(p, "does not fit the file", &err_v), "huge header length: %s", err);
    CHECK(open_fails(tmp("nonexistent.st"), "cannot open", &err_v), "missing file: %s", err);
    test_end();
}

static void test_import_export(void) {
    err_t err_v = {0}; char *err = err_v.msg;
    semaim_config_t c = {16, 4, 32, 2, 1, 2};
    model_t a, b, e;
    model_init(&a, &c, 1, &err_v);
    for (long i = 0; i < a.w.nparams; i++) a.w.params[i] += 0.001f * (float)(i % 97);   /* not the init */
    st_file_t f;
    semaim_config_t got, zero = {0};
    int has_dec;

    test_begin("export_full_import_bit_exact");
    CHECK(model_export_safetensors(&a, 1, NULL, NULL, 0, tmp("full.st"), &err_v) == 0, "export: %s", err);
    CHECK(st_open(&f, tmp("full.st"), &err_v) == 0, "open: %s", err);
    CHECK(f.n == a.w.ntensors + 1 && !strcmp(f.t[0].name, "cls_token") && !strcmp(f.t[1].name, "pos_embed"),
          "timm order: cls_token, pos_embed first (%d tensors)", f.n);
    CHECK(model_infer_config(&f, &zero, &got, &has_dec, &err_v) == 0 && !memcmp(&got, &c, sizeof c) && has_dec,
          "inferred %d %d %d %d %d %d: %s", got.image, got.patch, got.width, got.depth, got.dec_depth, got.heads, err);
    model_init(&b, &c, 2, &err_v);
    CHECK(model_load_safetensors(&b, &f, 1, NULL, &err_v) == 0, "load: %s", err);
    CHECK(!memcmp(a.w.params, b.w.params, sizeof(float) * a.w.nparams), "params bit-exact");
    st_close(&f);
    model_free(&b);
    test_end();

    test_begin("export_encoder_only_names_and_config");
    CHECK(model_export_safetensors(&a, 0, NULL, NULL, 0, tmp("enc.st"), &err_v) == 0, "export: %s", err);
    CHECK(st_open(&f, tmp("enc.st"), &err_v) == 0, "open: %s", err);
    int enc = 0;
    for (int i = 0; i < a.w.ntensors; i++) enc += model_tensor_is_backbone(a.w.info[i].name);
    CHECK(f.n == enc + 1 && st_find(&f, "norm.weight") && !st_find(&f, "query_blocks.0.norm1.weight") &&
              !st_find(&f, "prediction_head.fc1.weight"), "encoder + norm only (%d tensors)", f.n);
    const st_entry_t *pw = st_find(&f, "patch_embed.proj.weight"), *qkv = st_find(&f, "blocks.1.attn.qkv.weight");
    CHECK(pw && pw->ndim == 4 && pw->shape[0] == 32 && pw->shape[1] == 3 && pw->shape[2] == 4 && pw->shape[3] == 4,
          "patch_embed.proj.weight (D,3,P,P)");
    CHECK(qkv && qkv->ndim == 2 && qkv->shape[0] == 96 && qkv->shape[1] == 32, "qkv (3D,D)");
    CHECK(model_infer_config(&f, &zero, &got, &has_dec, &err_v) == 0 && got.dec_depth == 1 && !has_dec,
          "encoder-only infer: %s", err);
    model_init(&b, &c, 3, &err_v);
    float dec0 = b.w.params[params_find(&b.w, "query_blocks.0.attn.q.weight")->offset];
    CHECK(model_load_safetensors(&b, &f, 0, NULL, &err_v) == 0, "load encoder: %s", err);
    const param_info_t *qb = params_find(&b.w, "query_blocks.0.norm1.weight");
    CHECK(!memcmp(a.w.params, b.w.params, sizeof(float) * qb->offset), "encoder bit-exact");
    CHECK(b.w.params[params_find(&b.w, "query_blocks.0.attn.q.weight")->offset] == dec0, "decoder untouched");
    CHECK(model_load_safetensors(&b, &f, 1, NULL, &err_v) == -1 && strstr(err, "missing tensor 'query_blocks.0"),
          "full model required: %s", err);
    semaim_config_t wrong = {0, 0, 64, 0, 0, 0};
    CHECK(model_infer_config(&f, &wrong, &got, NULL, &err_v) == -1 && strstr(err, "width 32, not the --width 64"),
          "given width disagrees: %s", err);
    st_close(&f);
    model_free(&b);
    test_end();

    test_begin("import_missing_wrong_shape_dtype");
    /* a file like the encoder export but with one tensor dropped, one reshaped, one integer */
    model_init(&e, &c, 4, &err_v);
    st_tensor_t t[64];
    int n = 0;
    int32_t ibuf[32] = {0};
    for (int i = 0; i < e.w.ntensors && n < 60; i++) {
        const param_info_t *p = &e.w.info[i];
        if (!model_tensor_is_backbone(p->name)) continue;
        t[n] = (st_tensor_t){p->name, ST_F32, p->ndim, {p->shape[0], p->shape[1], p->shape[2], p->shape[3]},
                             e.w.params + p->offset};
        n++;
    }
    st_tensor_t keep[64];
    memcpy(keep, t, sizeof t);
    /* missing */
    int j = 0;
    for (int i = 0; i < n; i++) if (strcmp(t[i].name, "blocks.1.mlp.fc2.weight")) t[j++] = keep[i];
    st_write(tmp("miss.st"), t, j, &err_v);
    model_init(&b, &c, 5, &err_v);
    CHECK(st_open(&f, tmp("miss.st"), &err_v) == 0, "open: %s", err);
    CHECK(model_load_safetensors(&b, &f, 0, NULL, &err_v) == -1 && strstr(err, "missing tensor 'blocks.1.mlp.fc2.weight'"),
          "missing: %s", err);
    st_close(&f);
    /* wrong shape: fc1 weight transposed */
    memcpy(t, keep, sizeof t);
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, "blocks.0.mlp.fc1.weight")) { long s0 = t[i].shape[0]; t[i].shape[0] = t[i].shape[1]; t[i].shape[1] = s0; }
    st_write(tmp("shape.st"), t, n, &err_v);
    CHECK(st_open(&f, tmp("shape.st"), &err_v) == 0, "open: %s", err);
    CHECK(model_load_safetensors(&b, &f, 0, NULL, &err_v) == -1 &&
              strstr(err, "'blocks.0.mlp.fc1.weight' has shape [32,128], expected [128,32]"), "shape: %s", err);
    st_close(&f);
    /* integer dtype */
    memcpy(t, keep, sizeof t);
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, "blocks.0.norm1.bias")) { t[i].dtype = ST_I32; t[i].data = ibuf; }
    st_write(tmp("dtype.st"), t, n, &err_v);
    CHECK(st_open(&f, tmp("dtype.st"), &err_v) == 0, "open: %s", err);
    CHECK(model_load_safetensors(&b, &f, 0, NULL, &err_v) == -1 && strstr(err, "dtype I32"), "dtype: %s", err);
    st_close(&f);
    /* a width with no multiple of 64 and no metadata: heads must be given */
    CHECK(st_open(&f, tmp("miss.st"), &err_v) == 0, "open: %s", err);
    semaim_config_t i16 = {16, 0, 0, 0, 0, 0}, h2 = {16, 0, 0, 0, 0, 2};
    CHECK(model_infer_config(&f, &zero, &got, NULL, &err_v) == -1 && strstr(err, "give --image"), "image: %s", err);
    CHECK(model_infer_config(&f, &i16, &got, NULL, &err_v) == -1 && strstr(err, "give --heads"), "heads: %s", err);
    CHECK(model_infer_config(&f, &h2, &got, NULL, &err_v) == 0 && got.heads == 2 && got.image == 16,
          "heads given: %s", err);
    st_close(&f);
    model_free(&b);
    model_free(&e);
    test_end();
    model_free(&a);
}

/* n points of C well-separated Gaussian clusters in D dims; uneven per-dim scales and offsets
 * so the probe's BatchNorm has something to do. */
static void clusters(float *x, int32_t *y, long n, int D, int C, float noise, uint64_t seed) {
    rng_t r = rng_make(rng_key(seed, 1, 0, 0, 0));
    float *cent = malloc(sizeof(float) * C * D);
    rng_t rc = rng_make(rng_key(77, 2, 0, 0, 0));   /* the same centres for every call */
    for (int i = 0; i < C * D; i++) cent[i] = (float)(2.0 * rng_normal(&rc));
    for (long i = 0; i < n; i++) {
        y[i] = (int32_t)(i % C);
        for (int d = 0; d < D; d++)
            x[i * D + d] = (cent[y[i] * D + d] + noise * (float)rng_normal(&r)) * (1.0f + d) + 5.0f * d;
    }
    free(cent);
}

static void test_knn(void) {
    test_begin("knn_temperature_weighted_vote");
    /* one class-0 neighbour at 0.9 against two class-1 neighbours at 0.8 */
    float sim[3] = {0.9f, 0.8f, 0.8f};
    int32_t lab[3] = {0, 1, 1}, p5[5];
    knn_vote(sim, lab, 1, 3, 3, 0.07, p5);
    CHECK(p5[0] == 0 && p5[1] == 1 && p5[2] == 2 && p5[3] == -1, "T=0.07 -> class 0 (got %d %d %d)", p5[0], p5[1], p5[2]);
    knn_vote(sim, lab, 1, 3, 3, 1.0, p5);
    CHECK(p5[0] == 1, "T=1 -> class 1 (got %d)", p5[0]);
    test_end();

    test_begin("knn_merge_of_slices_equals_whole_bank");
    int D = 8, k = 5;
    long nb = 103, nq = 17;
    float *bank = malloc(sizeof(float) * nb * D), *q = malloc(sizeof(float) * nq * D);
    int32_t *bl = malloc(sizeof(int32_t) * nb), *ql = malloc(sizeof(int32_t) * nq);
    clusters(bank, bl, nb, D, 4, 1.0f, 1);
    clusters(q, ql, nq, D, 4, 1.0f, 2);
    memcpy(bank + 10 * D, bank + 3 * D, sizeof(float) * D);   /* an exact tie: the lower id must win */
    l2_normalize_rows(bank, nb, D);
    l2_normalize_rows(q, nq, D);
    float ws[17 * 5], ps[3 * 17 * 5], ms[17 * 5];
    int64_t wi[17 * 5], pi[3 * 17 * 5], mi[17 * 5];
    int32_t wl[17 * 5], pl[3 * 17 * 5], ml[17 * 5];
    knn_topk(q, nq, bank, bl, nb, 0, D, k, ws, wi, wl);
    long cut[4] = {0, 40, 41, nb};   /* one slice of a single row */
    for (int s = 0; s < 3; s++)
        knn_topk(q, nq, bank + cut[s] * D, bl + cut[s], cut[s + 1] - cut[s], cut[s], D, k, ps + s * nq * k, pi + s * nq * k,
                 pl + s * nq * k);
    knn_merge(ps, pi, pl, 3, nq, k, ms, mi, ml);
    /* GEMM blocking differs between slices, so similarities may differ in the last bits */
    int same = 0;
    for (int i = 0; i < 17 * 5; i++) same += wi[i] == mi[i] && wl[i] == ml[i] && fabsf(ws[i] - ms[i]) <= 1e-6f;
    CHECK(same == 17 * 5, "merged == whole (%d of %d agree)", same, 17 * 5);
    int sorted = 1, tie = 0;
    for (long i = 0; i < nq; i++)
        for (int j = 1; j < k; j++) sorted &= ws[i * k + j - 1] >= ws[i * k + j];
    for (long i = 0; i < nq * k; i++) tie |= wi[i] == 10 && !(i % k && wi[i - 1] == 3) && (i % k == 0 || ws[i - 1] == ws[i]);
    CHECK(sorted, "neighbours best first");
    CHECK(!tie, "tied duplicate ranked after the lower id");
    free(bank); free(q); free(bl); free(ql);
    test_end();

    test_begin("knn_separable_set_100_percent");
    featset_t tr = {0}, va = {0};
    D = 16;
    tr.total = tr.n = 300; va.total = va.n = 100; tr.dim = va.dim = D; tr.num_classes = va.num_classes = 6;
    tr.cls = malloc(sizeof(float) * 300 * D); tr.mean = malloc(sizeof(float) * 300 * D); tr.labels = malloc(4 * 300);
    va.cls = malloc(sizeof(float) * 100 * D); va.mean = malloc(sizeof(float) * 100 * D); va.labels = malloc(4 * 100);
    clusters(tr.cls, tr.labels, 300, D, 6, 0.3f, 3);
    clusters(va.cls, va.labels, 100, D, 6, 0.3f, 4);
    /* the "mean" rows: uninformative noise, so the kind really selects the rows */
    rng_t r = rng_make(9);
    for (long i = 0; i < 300 * D; i++) tr.mean[i] = (float)rng_normal(&r);
    for (long i = 0; i < 100 * D; i++) va.mean[i] = (float)rng_normal(&r);
    err_t err_v = {0}; char *err = err_v.msg;
    knn_result_t res;
    CHECK(knn_eval(&tr, &va, "cls", 20, 0.07, MPI_COMM_WORLD, &res, &err_v) == 0, "knn: %s", err);
    CHECK(res.top1 == 100.0 && res.top5 == 100.0 && res.k == 20 && res.num_classes == 6, "cls top1 %.2f top5 %.2f",
          res.top1, res.top5);
    CHECK(knn_eval(&tr, &va, "mean", 20, 0.07, MPI_COMM_WORLD, &res, &err_v) == 0 && res.top1 < 40,
          "noise features near chance: top1 %.2f", res.top1);
    knn_result_t r7;
    eval_set_chunks(0, 7);   /* merge blocks of 7 queries: the same answer */
    CHECK(knn_eval(&tr, &va, "mean", 20, 0.07, MPI_COMM_WORLD, &r7, &err_v) == 0 && r7.top1 == res.top1 &&
              r7.top5 == res.top5, "chunked merge: top1 %.2f vs %.2f", r7.top1, res.top1);
    eval_set_chunks(0, 0);
    CHECK(knn_eval(&tr, &va, "gap", 20, 0.07, MPI_COMM_WORLD, &r7, &err_v) == -1 && strstr(err, "no /gap rows"),
          "a set without gap rows: %s", err);
    CHECK(knn_eval(&tr, &va, "avg", 20, 0.07, MPI_COMM_WORLD, &r7, &err_v) == -1 && strstr(err, "cls, mean or gap"),
          "an unknown kind: %s", err);
    test_end();

    test_begin("linprobe_separable_set");
    linprobe_cfg_t lc = {30, 32, 0.1, 0.9, 0.0, 2, 1};
    linprobe_epoch_t last = {0};
    void keep(const linprobe_epoch_t *e, void *ctx);
    CHECK(linprobe_run(&tr, &va, "cls", &lc, MPI_COMM_WORLD, keep, &last, &err_v) == 0, "probe: %s", err);
    CHECK(last.epoch == 30 && last.top1 >= 98.0 && last.top5 == 100.0 && last.loss < 0.2,
          "epoch %d top1 %.2f top5 %.2f loss %.3f", last.epoch, last.top1, last.top5, last.loss);
    CHECK(linprobe_run(&tr, &va, "mean", &lc, MPI_COMM_WORLD, keep, &last, &err_v) == 0 && last.top1 < 40,
          "noise features near chance: top1 %.2f", last.top1);
    test_end();

    test_begin("labels_that_do_not_match_are_refused");
    va.labels[7] = 6;   /* a class the train set does not have */
    CHECK(knn_eval(&tr, &va, "cls", 20, 0.07, MPI_COMM_WORLD, &res, &err_v) == -1 &&
              strstr(err, "labels do not match"), "knn: %s", err);
    CHECK(linprobe_run(&tr, &va, "cls", &lc, MPI_COMM_WORLD, NULL, NULL, &err_v) == -1 &&
              strstr(err, "labels do not match"), "probe: %s", err);
    va.labels[7] = 1;
    va.num_classes = 7;
    CHECK(knn_eval(&tr, &va, "cls", 20, 0.07, MPI_COMM_WORLD, &res, &err_v) == -1 && strstr(err, "6 classes"),
          "class counts differ: %s", err);
    va.num_classes = 6;
    va.dim = 8;
    CHECK(knn_eval(&tr, &va, "cls", 20, 0.07, MPI_COMM_WORLD, &res, &err_v) == -1 && strstr(err, "width"),
          "widths differ: %s", err);
    va.dim = D;
    test_end();

    test_begin("features_file_round_trip_and_slices");
    tr.gap = malloc(sizeof(float) * 300 * D);
    for (long i = 0; i < 300 * D; i++) tr.gap[i] = -0.5f * tr.cls[i] + 0.25f;
    eval_set_chunks(13, 0);   /* written in chunks of 13 rows */
    CHECK(featfile_write(tmp("f.h5"), &tr, "train", "ckpt-x.bin", 42, MPI_COMM_WORLD, &err_v) == 0, "write: %s", err);
    eval_set_chunks(0, 0);
    featset_t s0, s1;
    CHECK(featfile_read(tmp("f.h5"), &s0, 0, 2, &err_v) == 0, "read 0/2: %s", err);
    CHECK(featfile_read(tmp("f.h5"), &s1, 1, 2, &err_v) == 0, "read 1/2: %s", err);
    CHECK(s0.total == 300 && s0.lo == 0 && s0.n == 150 && s1.lo == 150 && s1.n == 150 && s0.dim == D && s0.num_classes == 6,
          "slices");
    CHECK(!memcmp(s1.cls, tr.cls + 150 * D, sizeof(float) * 150 * D) && !memcmp(s1.mean, tr.mean + 150 * D, sizeof(float) * 150 * D) &&
              !memcmp(s1.labels, tr.labels + 150, 4 * 150) && !memcmp(s0.cls, tr.cls, sizeof(float) * 150 * D) &&
              !memcmp(s0.gap, tr.gap, sizeof(float) * 150 * D) && !memcmp(s1.gap, tr.gap + 150 * D, sizeof(float) * 150 * D),
          "rows");
    featset_free(&s0); featset_free(&s1);
    /* files as written before /gap existed: one whose /labels has fewer entries than rows, one
     * that is fine and still serves cls and mean */
    for (int nl = 3; nl <= 4; nl++) {
        hid_t f = H5Fcreate(tmp(nl == 3 ? "bad.h5" : "old.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t d2[2] = {4, 3}, d1[1] = {(hsize_t)nl};
        float z[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
        int32_t zl[4] = {0, 1, 0, 1};
        hid_t sp2 = H5Screate_simple(2, d2, NULL), sp1 = H5Screate_simple(1, d1, NULL), ss = H5Screate(H5S_SCALAR);
        hid_t st = H5Tcopy(H5T_C_S1);
        H5Tset_size(st, 16);
        hid_t at = H5Acreate2(f, "format", st, ss, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(at, st, "semaim features");
        H5Aclose(at);
        long long one = 1;
        at = H5Acreate2(f, "format_version", H5T_STD_I64LE, ss, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(at, H5T_NATIVE_LLONG, &one);
        H5Aclose(at);
        const char *names[2] = {"cls", "mean"};
        for (int i = 0; i < 2; i++) {
            hid_t ds = H5Dcreate2(f, names[i], H5T_IEEE_F32LE, sp2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, z);
            H5Dclose(ds);
        }
        hid_t ds = H5Dcreate2(f, "labels", H5T_STD_I32LE, sp1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, zl);
        H5Dclose(ds);
        H5Sclose(sp2); H5Sclose(sp1); H5Sclose(ss); H5Tclose(st); H5Fclose(f);
    }
    CHECK(featfile_read(tmp("bad.h5"), &s0, 0, 1, &err_v) == -1 &&
              strstr(err, "labels do not match the features: /labels has 3 entries but /cls has 4 rows") &&
              strstr(err, "bad.h5"), "%s", err);
    CHECK(featfile_read(tmp("old.h5"), &s0, 0, 1, &err_v) == 0 && s0.gap == NULL && s0.total == 4 && s0.mean[11] == 11,
          "a file without /gap still reads: %s", err);
    CHECK(knn_eval(&s0, &s0, "mean", 3, 0.07, MPI_COMM_WORLD, &res, &err_v) == 0, "its mean rows serve k-NN: %s", err);
    CHECK(knn_eval(&s0, &s0, "gap", 3, 0.07, MPI_COMM_WORLD, &res, &err_v) == -1 && strstr(err, "compute it again"),
          "gap asked of an old file: %s", err);
    featset_free(&s0);
    CHECK(featfile_read(tmp("a.st"), &s0, 0, 1, &err_v) == -1 && strstr(err, "not an HDF5 file"), "%s", err);
    test_end();
    featset_free(&tr);
    featset_free(&va);
}

void keep(const linprobe_epoch_t *e, void *ctx) { *(linprobe_epoch_t *)ctx = *e; }

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (!mkdtemp(dir)) return 1;
    test_safetensors();
    test_import_export();
    test_knn();
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("  (could not remove %s)\n", dir);
    MPI_Finalize();
    return test_exit();
}
