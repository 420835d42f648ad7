/* `verify`: re-read every shard and hold it against manifest.json: size, CRC32 of the bytes,
 * HDF5 structure and attributes, label range, and the shard and image counts; for jpeg shards
 * also the offsets and every image's JPEG header. Manifests of format_version 1 (raw, before
 * the store existed) verify as well. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "prep.h"

typedef struct {
    const char *file;
    int split, index;
    size_t images;
    uint64_t bytes;
    uint32_t crc;
    int bad;
    uint32_t got_crc; uint64_t got_bytes; int io_errno;
} vshard;

static int num(const json_t *o, const char *k, double lo, double hi, double *v) {
    return json_getnum(o, k, v) || *v < lo || *v > hi || *v != (double)(long long)*v ? -1 : 0;
}

static void leftover_temps(const char *out, const char *sub) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", out, sub);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp."))
            prep_err("note: %s/%s is a temporary left by an interrupted run (harmless; the next convert removes it)", dir, e->d_name);
    closedir(d);
}

int prep_verify(const char *out, const prep_comm *c) {
    prep_h5_quiet();
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/manifest.json", out);
    char *text; size_t tn;
    json_t m;
    int fail = 0;
    if (file_slurp(path, &text, &tn)) {
        if (c->rank == 0) prep_err("%s: %s", path, strerror(errno));
        return 1;
    }
    err_t e;
    if (json_parse(text, tn, &m, &e)) {
        if (c->rank == 0) prep_err("%s: not valid JSON (%s)", path, e.msg);
        free(text);
        return 1;
    }
    free(text);
    const json_t *recipe = json_get(&m, "recipe"), *classes = json_get(&m, "classes"),
                  *shards = json_get(&m, "shards"), *splits = json_get(&m, "splits");
    const char *fmt = json_gets(&m, "format");
    int size[2] = {0, 0}, resize[2] = {0, 0}, count[2] = {0, 0}, store = PREP_STORE_RAW, max_side = 0, quality = 0;
    size_t want_img[2] = {0, 0};
    double version = 0, ms, q;
    if (!fmt || strcmp(fmt, "semaim-prep manifest") || !recipe || !classes || classes->type != JSON_ARR || !classes->n ||
        !shards || shards->type != JSON_ARR || !splits || num(&m, "format_version", 1, PREP_FORMAT_VERSION, &version)) fail = 1;
    /* version 1 manifests have no store: raw */
    const char *st = fail ? NULL : json_gets(recipe, "store");
    if (st && !strcmp(st, "jpeg")) store = PREP_STORE_JPEG;
    else if (st && strcmp(st, "raw")) fail = 1;
    if (!fail && store == PREP_STORE_JPEG) {
        if (num(recipe, "max_side", 1, 65500, &ms) || num(recipe, "quality", 1, 100, &q)) fail = 1;
        else { max_side = (int)ms; quality = (int)q; }
    }
    for (int s = 0; s < 2 && !fail; s++) {
        const json_t *r = json_get(recipe, prep_split_name[s]), *sp = json_get(splits, prep_split_name[s]);
        double a, b, k, im;
        if (!sp || num(sp, "shards", 0, 1e6, &k) || num(sp, "images", 0, 1e15, &im)) { fail = 1; break; }
        if (store == PREP_STORE_RAW && (!r || num(r, "size", 1, 1e6, &a) || num(r, "resize", 1, 1e6, &b))) { fail = 1; break; }
        if (store == PREP_STORE_RAW) { size[s] = (int)a; resize[s] = (int)b; }
        count[s] = (int)k; want_img[s] = (size_t)im;
    }
    if (fail) {
        if (c->rank == 0) prep_err("%s: not a semaim-prep manifest (missing or malformed fields)", path);
        json_free(&m);
        return 1;
    }
    size_t n = shards->n;
    vshard *v = calloc(n ? n : 1, sizeof *v);
    int *seen[2] = {calloc((size_t)count[0] + 1, sizeof(int)), calloc((size_t)count[1] + 1, sizeof(int))};
    if (!v || !seen[0] || !seen[1]) { prep_err("out of memory"); free(v); free(seen[0]); free(seen[1]); json_free(&m); return 1; }
    size_t got_img[2] = {0, 0};
    int errors = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = &shards->items[i];
        const char *split = json_gets(e, "split");
        double idx, im, by, crc;
        v[i].file = json_gets(e, "file");
        v[i].split = !split ? -1 : !strcmp(split, "train") ? PREP_TRAIN : !strcmp(split, "val") ? PREP_VAL : -1;
        if (!v[i].file || v[i].split < 0 || num(e, "index", 0, 1e6, &idx) || num(e, "images", 0, 1e12, &im) ||
            num(e, "bytes", 0, 9e15, &by) || num(e, "crc32", 0, 4294967295.0, &crc) || idx >= count[v[i].split]) {
            if (c->rank == 0) prep_err("%s: shard entry %zu is malformed", path, i);
            v[i].bad = 1; errors++;
            continue;
        }
        v[i].index = (int)idx; v[i].images = (size_t)im; v[i].bytes = (uint64_t)by; v[i].crc = (uint32_t)crc;
        got_img[v[i].split] += v[i].images;
        char want[128];
        prep_shard_name(v[i].split, v[i].index, count[v[i].split], want, sizeof want);
        if (strcmp(want, v[i].file)) {
            if (c->rank == 0) prep_err("%s: shard entry %zu names %s, expected %s", path, i, v[i].file, want);
            v[i].bad = 1; errors++;
        }
        if (seen[v[i].split][v[i].index]++) {
            if (c->rank == 0) prep_err("%s: %s listed twice", path, v[i].file);
            errors++;
        }
    }
    if (c->rank == 0) {
        for (int s = 0; s < 2; s++) {
            for (int k = 0; k < count[s]; k++)
                if (!seen[s][k]) { prep_err("%s: %s shard %d of %d is not listed", path, prep_split_name[s], k, count[s]); errors++; }
            if (got_img[s] != want_img[s]) { prep_err("%s: %s shards hold %zu images but splits.%s.images says %zu", path, prep_split_name[s], got_img[s], prep_split_name[s], want_img[s]); errors++; }
        }
        leftover_temps(out, "train");
        leftover_temps(out, "val");
    }
    /* The CRC pass is pure I/O and hashing, so threads; HDF5 is serial and stays on this one. */
    #pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i++) {
        if (v[i].bad || (int)(i % (size_t)c->size) != c->rank) continue;
        char sp[PATH_MAX];
        snprintf(sp, sizeof sp, "%s/%s", out, v[i].file);
        if (crc32_file(sp, &v[i].got_crc, &v[i].got_bytes)) v[i].io_errno = errno ? errno : EIO;
    }
    int local = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].bad || (int)(i % (size_t)c->size) != c->rank) continue;
        char sp[PATH_MAX], why[512];
        snprintf(sp, sizeof sp, "%s/%s", out, v[i].file);
        if (v[i].io_errno) { prep_err("%s: %s", sp, strerror(v[i].io_errno)); local++; continue; }
        if (v[i].got_bytes != v[i].bytes) { prep_err("%s: %llu bytes, manifest says %llu", sp, (unsigned long long)v[i].got_bytes, (unsigned long long)v[i].bytes); local++; continue; }
        if (v[i].got_crc != v[i].crc) { prep_err("%s: CRC32 0x%08x, manifest says 0x%08x (file damaged)", sp, v[i].got_crc, v[i].crc); local++; continue; }
        prep_shard_info si = {.split = v[i].split, .index = v[i].index, .count = count[v[i].split], .nclass = (int)classes->n,
                              .version = (int)version, .store = store, .size = size[v[i].split], .resize = resize[v[i].split],
                              .max_side = max_side, .quality = quality};
        if (prep_shard_check(sp, &si, v[i].images, why, sizeof why)) { prep_err("%s: %s", sp, why); local++; }
    }
    long bad = prep_comm_sum(c, local) + errors;
    if (c->rank == 0) {
        if (bad) prep_err("%s: %ld problems in %zu shards", out, bad, n);
        else prep_err("%s: %zu shards OK (%zu train + %zu val images, %zu classes)", out, n, got_img[0], got_img[1], classes->n);
    }
    free(v); free(seen[0]); free(seen[1]);
    json_free(&m);
    return bad ? 1 : 0;
}
