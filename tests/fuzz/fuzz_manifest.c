/* semaim-prep's own files (data_prep/manifest.c, data_prep/verify.c): the plan file, shard
 * records and manifest.json, as `semaim-prep manifest` and `verify` read them. The input is
 * four parts separated by NUL bytes (JSON holds none): OUT/.prep/plan.json, the record of the
 * first train and val shard (under the names of a one- and a two-shard split), manifest.json,
 * and the bytes of those shard files. Then the record is read, the manifest assembled from
 * plan and records (CRC check on and off) and verified. Beyond not crashing: a record read
 * back is written again as JSON that parses, and a manifest the assembly writes parses. */
#include "prep.h"
#include "fuzz.h"

static void put(const char *out, const char *rel, const uint8_t *p, size_t n) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", out, rel);
    fuzz_write(path, p, n);
}

static void json_file_parses(const char *path) {
    char *text;
    size_t n;
    if (file_slurp(path, &text, &n)) return;
    json_t v;
    err_t e;
    FUZZ_CHECK(json_parse(text, n, &v, &e) == 0, "%s does not parse: %s", path, e.msg);
    json_free(&v);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const uint8_t *part[4];
    size_t len[4];
    fuzz_split(data, n, 0, 4, part, len);
    fuzz_reset();
    char out[4200], sub[4300];
    fuzz_path(out, sizeof out, "out");
    fuzz_mkdir(out);
    static const char *const dirs[] = {".prep", "train", "val"};
    for (int i = 0; i < 3; i++) { snprintf(sub, sizeof sub, "%s/%s", out, dirs[i]); fuzz_mkdir(sub); }
    put(out, ".prep/plan.json", part[0], len[0]);
    static const char *const recs[] = {"train-00000-of-00001", "train-00000-of-00002", "val-00000-of-00001"};
    for (int i = 0; i < 3; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, ".prep/%s.json", recs[i]);
        put(out, rel, part[1], len[1]);
        snprintf(rel, sizeof rel, "%.5s/%s.h5", recs[i], recs[i]);
        if (recs[i][0] == 'v') snprintf(rel, sizeof rel, "val/%s.h5", recs[i]);
        put(out, rel, part[3], len[3]);
    }
    put(out, "manifest.json", part[2], len[2]);

    char path[4400];
    snprintf(path, sizeof path, "%s/.prep/%s.json", out, recs[0]);
    prep_record r;
    if (prep_record_load(path, &r) == 0) {
        buf_t b = {0};
        prep_record_json(&r, &b);
        json_t v;
        err_t e;
        FUZZ_CHECK(!b.oom && json_parse(b.s, b.len, &v, &e) == 0, "a record read back does not write as JSON: %s", e.msg);
        json_free(&v);
        buf_free(&b);
        prep_record_free(&r);
    }
    snprintf(path, sizeof path, "%s/manifest.json", out);
    for (int crc = 0; crc < 2; crc++) {
        int missing = 0;
        unlink(path);
        if (prep_manifest_assemble(out, NULL, 0, crc, &missing) == 0) json_file_parses(path);
    }
    put(out, "manifest.json", part[2], len[2]);
    prep_comm c = {0, 1, 0};
    (void)prep_verify(out, &c);
    return 0;
}
