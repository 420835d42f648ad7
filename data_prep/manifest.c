/* Per-shard records (OUT/.prep/<shard>.json), the plan file (OUT/.prep/plan.json) and their
 * union, OUT/manifest.json. A record is written, atomically, right after its shard is
 * renamed into place; the manifest is a pure function of plan + records, so the one-process,
 * MPI and Slurm-array paths all produce the same bytes. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "prep.h"

void prep_shard_name(int split, int index, int count, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s-%05d-of-%05d.h5", prep_split_name[split], prep_split_name[split], index, count);
}

void prep_record_path(const char *out, int split, int index, int count, char *buf, size_t len) {
    snprintf(buf, len, "%s/.prep/%s-%05d-of-%05d.json", out, prep_split_name[split], index, count);
}

static void notes_json(buf_t *b, const prep_notes *ns, const char *second, const char *indent) {
    buf_puts(b, "[");
    for (size_t i = 0; i < ns->n; i++) {
        buf_printf(b, "%s\n%s{\"file\": ", i ? "," : "", indent);
        json_str(b, ns->v[i].file);
        buf_printf(b, ", \"%s\": ", second);
        json_str(b, ns->v[i].reason);
        buf_puts(b, "}");
    }
    buf_printf(b, "%s]", ns->n ? "\n  " : "");
}

void prep_record_json(const prep_record *r, buf_t *b) {
    char name[128];
    prep_shard_name(r->split, r->index, r->count, name, sizeof name);
    buf_printf(b, "{\"file\": \"%s\", \"split\": \"%s\", \"index\": %d, \"count\": %d, \"images\": %zu, "
                    "\"bytes\": %" PRIu64 ", \"crc32\": %" PRIu32 ", \"fp\": \"%016" PRIx64 "\",\n  \"skipped\": ",
                    name, prep_split_name[r->split], r->index, r->count, r->images, r->bytes, r->crc, r->fp);
    notes_json(b, &r->skipped, "reason", "    ");
    buf_puts(b, ",\n  \"warnings\": ");
    notes_json(b, &r->warnings, "message", "    ");
    buf_puts(b, "}\n");
}

static int notes_from_json(const json_t *a, const char *second, prep_notes *ns) {
    if (!a || a->type != JSON_ARR) return -1;
    for (size_t i = 0; i < a->n; i++) {
        const char *f = json_gets(&a->items[i], "file"), *w = json_gets(&a->items[i], second);
        if (!f || !w || prep_notes_add(ns, f, w)) return -1;
    }
    return 0;
}

static int split_of(const char *s) {
    if (!s) return -1;
    return !strcmp(s, "train") ? PREP_TRAIN : !strcmp(s, "val") ? PREP_VAL : -1;
}

int prep_record_from_json(const json_t *v, prep_record *r) {
    memset(r, 0, sizeof *r);
    double idx, cnt, img, bytes, crc;
    const char *fp = json_gets(v, "fp");
    r->split = split_of(json_gets(v, "split"));
    if (r->split < 0 || !fp || json_getnum(v, "index", &idx) || json_getnum(v, "count", &cnt) ||
        json_getnum(v, "images", &img) || json_getnum(v, "bytes", &bytes) || json_getnum(v, "crc32", &crc))
        return -1;
    r->index = (int)idx; r->count = (int)cnt; r->images = (size_t)img;
    r->bytes = (uint64_t)bytes; r->crc = (uint32_t)crc;
    char *end;
    r->fp = strtoull(fp, &end, 16);
    if (*end || notes_from_json(json_get(v, "skipped"), "reason", &r->skipped) ||
        notes_from_json(json_get(v, "warnings"), "message", &r->warnings)) {
        prep_record_free(r);
        return -1;
    }
    r->valid = 1;
    return 0;
}

int prep_record_load(const char *path, prep_record *r) {
    char *text; size_t n;
    memset(r, 0, sizeof *r);
    if (file_slurp(path, &text, &n)) return -1;
    json_t v;
    err_t e;
    int rc = json_parse(text, n, &v, &e);
    free(text);
    if (rc) return -1;
    rc = prep_record_from_json(&v, r);
    json_free(&v);
    return rc;
}

void prep_record_free(prep_record *r) {
    prep_notes_free(&r->skipped);
    prep_notes_free(&r->warnings);
    r->valid = 0;
}

/* ---------------------------------------------------------------- plan.json */
static void recipe_json(buf_t *b, const prep_plan *p, const prep_opts *o) {
    buf_printf(b, "{\"format_version\": %d, \"store\": \"%s\", ", PREP_FORMAT_VERSION, prep_store_name[o->store]);
    if (o->store == PREP_STORE_JPEG)
        buf_printf(b, "\"max_side\": %d, \"quality\": %d, "
                        "\"keep\": \"baseline 8-bit YCbCr JPEGs within max_side that decode without a warning: their bytes\", "
                        "\"resize\": \"longer side to max_side, shorter side rounded to nearest; never enlarged\", "
                        "\"encoder\": \"%s\", ", o->max_side, o->quality, prep_encoder_name());
    else
        buf_printf(b, "\"train\": {\"size\": %d, \"resize\": %d}, \"val\": {\"size\": %d, \"resize\": %d}, "
                        "\"crop\": \"centre, offsets rounded down\", ", o->size[0], o->resize[0], o->size[1], o->resize[1]);
    buf_printf(b, "\"filter\": \"triangle (antialiased bilinear; PIL BILINEAR, torch antialias=True)\", "
                    "\"dct_prescale\": \"decode at 1/2, 1/4 or 1/8 while the decoded image still covers the resized size\", "
                    "\"color\": \"RGB; grayscale replicated; CMYK and YCCK converted, Adobe files as inverted CMYK\", "
                    "\"order\": \"paths sorted bytewise, Fisher-Yates with splitmix64 seeded 2*seed+split (train 0, val 1), dealt in contiguous runs\", "
                    "\"seed\": %" PRIu64 ", \"train_shards\": %d, \"val_shards\": %d, \"decoder\": \"%s\"}",
                    o->seed, p->shards[0], p->shards[1], prep_decoder_name());
}

int prep_planfile_write(const char *out, const prep_plan *p, const prep_opts *o, const uint64_t *fps) {
    buf_t b = {0};
    buf_printf(&b, "{\n\"format\": \"semaim-prep plan\",\n\"format_version\": %d,\n\"source\": ", PREP_FORMAT_VERSION);
    json_str(&b, o->src);
    buf_puts(&b, ",\n\"recipe\": ");
    recipe_json(&b, p, o);
    buf_puts(&b, ",\n\"classes\": [");
    for (int c = 0; c < p->nclass; c++) { if (c) buf_puts(&b, ", "); json_str(&b, p->classes[c]); }
    buf_puts(&b, "],\n\"val_labels\": ");
    json_str(&b, p->val_labels);
    buf_puts(&b, ",\n\"splits\": {");
    size_t g = 0;
    for (int s = 0; s < 2; s++) {
        buf_printf(&b, "%s\n \"%s\": {\"files\": %zu, \"shards\": [", s ? "," : "", prep_split_name[s], p->n[s]);
        for (int k = 0; k < p->shards[s]; k++, g++) {
            char name[128];
            prep_shard_name(s, k, p->shards[s], name, sizeof name);
            buf_printf(&b, "%s\n  {\"file\": \"%s\", \"fp\": \"%016" PRIx64 "\"}", k ? "," : "", name, fps[g]);
        }
        buf_puts(&b, "]}");
    }
    buf_puts(&b, "},\n\"skipped\": ");
    notes_json(&b, &p->skipped, "reason", "  ");
    buf_puts(&b, "\n}\n");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.prep/plan.json", out);
    err_t e;
    int rc = b.oom ? err_set(&e, ERR_RUNTIME, "out of memory") : file_write_atomic(path, &(span_t){b.s, b.len}, 1, &e);
    if (rc) prep_err("%s", e.msg);
    buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- manifest.json */
static int load_json(const char *path, json_t *v) {
    char *text; size_t n;
    if (file_slurp(path, &text, &n)) { prep_err("%s: %s", path, strerror(errno)); return -1; }
    err_t e;
    int rc = json_parse(text, n, v, &e);
    free(text);
    if (rc) prep_err("%s: not valid JSON (%s)", path, e.msg);
    return rc;
}

static int merge_notes(prep_notes *dst, const prep_notes *src) {
    for (size_t i = 0; i < src->n; i++) if (prep_notes_add(dst, src->v[i].file, src->v[i].reason)) return -1;
    return 0;
}

int prep_manifest_assemble(const char *out, prep_record *recs, size_t nrecs, int check_crc, int *n_missing) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.prep/plan.json", out);
    json_t plan;
    if (load_json(path, &plan)) return -1;
    const json_t *splits = json_get(&plan, "splits"), *recipe = json_get(&plan, "recipe"),
                  *classes = json_get(&plan, "classes");
    const char *source = json_gets(&plan, "source"), *val_labels = json_gets(&plan, "val_labels");
    if (!splits || !recipe || !classes || classes->type != JSON_ARR || !source || !val_labels) {
        prep_err("%s: not a semaim-prep plan file", path);
        json_free(&plan);
        return -1;
    }
    prep_record *all = NULL;
    size_t nall = 0, g = 0;
    const json_t *sh[2];
    int missing = 0, bad = 0;
    prep_notes skipped = {0}, warnings = {0};
    for (int s = 0; s < 2; s++) {
        const json_t *sp = json_get(splits, prep_split_name[s]);
        sh[s] = sp ? json_get(sp, "shards") : NULL;
        if (!sh[s] || sh[s]->type != JSON_ARR) { prep_err("%s: no shard list for %s", path, prep_split_name[s]); bad = 1; break; }
        nall += sh[s]->n;
    }
    if (!bad && notes_from_json(json_get(&plan, "skipped"), "reason", &skipped)) { prep_err("%s: bad skipped list", path); bad = 1; }
    if (!bad && !(all = calloc(nall ? nall : 1, sizeof *all))) { prep_err("out of memory"); bad = 1; }
    for (int s = 0; s < 2 && !bad; s++) {
        for (size_t k = 0; k < sh[s]->n && !bad; k++, g++) {
            const char *fp = json_gets(&sh[s]->items[k], "fp"), *file = json_gets(&sh[s]->items[k], "file");
            if (!fp || !file) { prep_err("%s: bad shard entry", path); bad = 1; break; }
            uint64_t want = strtoull(fp, NULL, 16);
            prep_record *r = &all[g];
            if (g < nrecs && recs[g].valid) {
                *r = recs[g];
                memset(&r->skipped, 0, sizeof r->skipped); memset(&r->warnings, 0, sizeof r->warnings);
                if (merge_notes(&r->skipped, &recs[g].skipped) || merge_notes(&r->warnings, &recs[g].warnings)) { prep_err("out of memory"); bad = 1; }
            } else {
                char rp[PATH_MAX];
                prep_record_path(out, s, (int)k, (int)sh[s]->n, rp, sizeof rp);
                if (prep_record_load(rp, r)) { missing++; continue; }
            }
            if (r->fp != want || r->split != s || r->index != (int)k || r->count != (int)sh[s]->n) {
                missing++; r->valid = 0;
                continue;
            }
            if (!check_crc && !(g < nrecs && recs[g].valid)) {
                /* Another task's shard: its record vouches for the CRC, but the file must still be there. */
                char sp[PATH_MAX];
                struct stat st;
                snprintf(sp, sizeof sp, "%s/%s", out, file);
                if (stat(sp, &st) || (uint64_t)st.st_size != r->bytes) { missing++; r->valid = 0; continue; }
            }
            if (check_crc && !(g < nrecs && recs[g].valid)) {
                char sp[PATH_MAX];
                uint32_t crc; uint64_t bytes;
                snprintf(sp, sizeof sp, "%s/%s", out, file);
                if (crc32_file(sp, &crc, &bytes)) { prep_err("%s: %s", sp, strerror(errno)); missing++; r->valid = 0; continue; }
                if (crc != r->crc || bytes != r->bytes) {
                    prep_err("%s: size/CRC32 do not match its record (damaged or rewritten): convert again", sp);
                    missing++; r->valid = 0;
                    continue;
                }
            }
        }
    }
    if (n_missing) *n_missing = missing;
    int rc = bad ? -1 : missing ? 1 : 0;
    if (!rc) {
        buf_t b = {0};
        size_t imgs[2] = {0, 0};
        for (size_t i = 0; i < nall; i++) {
            imgs[all[i].split] += all[i].images;
            if (merge_notes(&skipped, &all[i].skipped) || merge_notes(&warnings, &all[i].warnings)) b.oom = 1;
        }
        prep_notes_sort(&skipped);
        prep_notes_sort(&warnings);
        buf_printf(&b, "{\n\"format\": \"semaim-prep manifest\",\n\"format_version\": %d,\n\"source\": ", PREP_FORMAT_VERSION);
        json_str(&b, source);
        buf_puts(&b, ",\n\"recipe\": ");
        json_write(&b, recipe);
        buf_puts(&b, ",\n\"classes\": ");
        json_write(&b, classes);
        buf_puts(&b, ",\n\"val_labels\": ");
        json_str(&b, val_labels);
        buf_puts(&b, ",\n\"splits\": {");
        for (int s = 0; s < 2; s++) {
            size_t nskip = 0, pl = strlen(prep_split_name[s]);
            for (size_t i = 0; i < skipped.n; i++)
                nskip += !strncmp(skipped.v[i].file, prep_split_name[s], pl) && skipped.v[i].file[pl] == '/';
            buf_printf(&b, "%s\"%s\": {\"shards\": %zu, \"images\": %zu, \"skipped\": %zu}", s ? ", " : "",
                            prep_split_name[s], sh[s]->n, imgs[s], nskip);
        }
        buf_puts(&b, "},\n\"shards\": [");
        for (size_t i = 0; i < nall; i++) {
            char name[128];
            prep_shard_name(all[i].split, all[i].index, all[i].count, name, sizeof name);
            buf_printf(&b, "%s\n  {\"file\": \"%s\", \"split\": \"%s\", \"index\": %d, \"images\": %zu, \"bytes\": %" PRIu64
                            ", \"crc32\": %" PRIu32 "}", i ? "," : "", name, prep_split_name[all[i].split], all[i].index,
                            all[i].images, all[i].bytes, all[i].crc);
        }
        buf_puts(&b, "\n],\n\"skipped\": ");
        notes_json(&b, &skipped, "reason", "  ");
        buf_puts(&b, ",\n\"warnings\": ");
        notes_json(&b, &warnings, "message", "  ");
        buf_puts(&b, "\n}\n");
        char mp[PATH_MAX];
        snprintf(mp, sizeof mp, "%s/manifest.json", out);
        err_t e;
        if (b.oom) { prep_err("out of memory writing %s", mp); rc = -1; }
        else if (file_write_atomic(mp, &(span_t){b.s, b.len}, 1, &e)) { prep_err("%s", e.msg); rc = -1; }
        buf_free(&b);
    }
    for (size_t i = 0; all && i < nall; i++) prep_record_free(&all[i]);   /* none when the plan was refused early */
    free(all);
    prep_notes_free(&skipped);
    prep_notes_free(&warnings);
    json_free(&plan);
    return rc;
}
