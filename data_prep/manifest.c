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

static void notes_json(prep_buf *b, const prep_notes *ns, const char *second, const char *indent) {
    prep_buf_puts(b, "[");
    for (size_t i = 0; i < ns->n; i++) {
        prep_buf_printf(b, "%s\n%s{\"file\": ", i ? "," : "", indent);
        prep_json_str(b, ns->v[i].file);
        prep_buf_printf(b, ", \"%s\": ", second);
        prep_json_str(b, ns->v[i].reason);
        prep_buf_puts(b, "}");
    }
    prep_buf_printf(b, "%s]", ns->n ? "\n  " : "");
}

void prep_record_json(const prep_record *r, prep_buf *b) {
    char name[128];
    prep_shard_name(r->split, r->index, r->count, name, sizeof name);
    prep_buf_printf(b, "{\"file\": \"%s\", \"split\": \"%s\", \"index\": %d, \"count\": %d, \"images\": %zu, "
                    "\"bytes\": %" PRIu64 ", \"crc32\": %" PRIu32 ", \"fp\": \"%016" PRIx64 "\",\n  \"skipped\": ",
                    name, prep_split_name[r->split], r->index, r->count, r->images, r->bytes, r->crc, r->fp);
    notes_json(b, &r->skipped, "reason", "    ");
    prep_buf_puts(b, ",\n  \"warnings\": ");
    notes_json(b, &r->warnings, "message", "    ");
    prep_buf_puts(b, "}\n");
}

static int notes_from_json(const prep_jv *a, const char *second, prep_notes *ns) {
    if (!a || a->type != PREP_JARR) return -1;
    for (size_t i = 0; i < a->n; i++) {
        const char *f = prep_json_gets(&a->items[i], "file"), *w = prep_json_gets(&a->items[i], second);
        if (!f || !w || prep_notes_add(ns, f, w)) return -1;
    }
    return 0;
}

static int split_of(const char *s) {
    if (!s) return -1;
    return !strcmp(s, "train") ? PREP_TRAIN : !strcmp(s, "val") ? PREP_VAL : -1;
}

int prep_record_from_json(const prep_jv *v, prep_record *r) {
    memset(r, 0, sizeof *r);
    double idx, cnt, img, bytes, crc;
    const char *fp = prep_json_gets(v, "fp");
    r->split = split_of(prep_json_gets(v, "split"));
    if (r->split < 0 || !fp || prep_json_getnum(v, "index", &idx) || prep_json_getnum(v, "count", &cnt) ||
        prep_json_getnum(v, "images", &img) || prep_json_getnum(v, "bytes", &bytes) || prep_json_getnum(v, "crc32", &crc))
        return -1;
    r->index = (int)idx; r->count = (int)cnt; r->images = (size_t)img;
    r->bytes = (uint64_t)bytes; r->crc = (uint32_t)crc;
    char *end;
    r->fp = strtoull(fp, &end, 16);
    if (*end || notes_from_json(prep_json_get(v, "skipped"), "reason", &r->skipped) ||
        notes_from_json(prep_json_get(v, "warnings"), "message", &r->warnings)) {
        prep_record_free(r);
        return -1;
    }
    r->valid = 1;
    return 0;
}

int prep_record_load(const char *path, prep_record *r) {
    char *text; size_t n;
    memset(r, 0, sizeof *r);
    if (prep_slurp(path, &text, &n)) return -1;
    prep_jv v;
    char err[128];
    int rc = prep_json_parse(text, n, &v, err, sizeof err);
    free(text);
    if (rc) return -1;
    rc = prep_record_from_json(&v, r);
    prep_json_free(&v);
    return rc;
}

void prep_record_free(prep_record *r) {
    prep_notes_free(&r->skipped);
    prep_notes_free(&r->warnings);
    r->valid = 0;
}

void prep_json_write(prep_buf *b, const prep_jv *v) {
    switch (v->type) {
    case PREP_JNULL: prep_buf_puts(b, "null"); break;
    case PREP_JBOOL: prep_buf_puts(b, v->num ? "true" : "false"); break;
    case PREP_JNUM:
        if (v->num == floor(v->num) && fabs(v->num) < 9007199254740992.0) prep_buf_printf(b, "%.0f", v->num);
        else prep_buf_printf(b, "%.17g", v->num);
        break;
    case PREP_JSTR: prep_json_str(b, v->str); break;
    case PREP_JARR: case PREP_JOBJ:
        prep_buf_puts(b, v->type == PREP_JARR ? "[" : "{");
        for (size_t i = 0; i < v->n; i++) {
            if (i) prep_buf_puts(b, ", ");
            if (v->type == PREP_JOBJ) { prep_json_str(b, v->keys[i]); prep_buf_puts(b, ": "); }
            prep_json_write(b, &v->items[i]);
        }
        prep_buf_puts(b, v->type == PREP_JARR ? "]" : "}");
        break;
    }
}

/* ---------------------------------------------------------------- plan.json */
static void recipe_json(prep_buf *b, const prep_plan *p, const prep_opts *o) {
    prep_buf_printf(b, "{\"format_version\": %d, \"train\": {\"size\": %d, \"resize\": %d}, \"val\": {\"size\": %d, \"resize\": %d}, "
                    "\"filter\": \"triangle (antialiased bilinear; PIL BILINEAR, torch antialias=True)\", "
                    "\"crop\": \"centre, offsets rounded down\", "
                    "\"dct_prescale\": \"decode at 1/2, 1/4 or 1/8 while the decoded image still covers the resized size\", "
                    "\"color\": \"RGB; grayscale replicated; CMYK and YCCK converted, Adobe files as inverted CMYK\", "
                    "\"order\": \"paths sorted bytewise, Fisher-Yates with splitmix64 seeded 2*seed+split (train 0, val 1), dealt in contiguous runs\", "
                    "\"seed\": %" PRIu64 ", \"train_shards\": %d, \"val_shards\": %d, \"decoder\": \"%s\"}",
                    PREP_FORMAT_VERSION, o->size[0], o->resize[0], o->size[1], o->resize[1], o->seed,
                    p->shards[0], p->shards[1], prep_decoder_name());
}

int prep_planfile_write(const char *out, const prep_plan *p, const prep_opts *o, const uint64_t *fps) {
    prep_buf b = {0};
    prep_buf_printf(&b, "{\n\"format\": \"semaim-prep plan\",\n\"format_version\": %d,\n\"source\": ", PREP_FORMAT_VERSION);
    prep_json_str(&b, o->src);
    prep_buf_puts(&b, ",\n\"recipe\": ");
    recipe_json(&b, p, o);
    prep_buf_puts(&b, ",\n\"classes\": [");
    for (int c = 0; c < p->nclass; c++) { if (c) prep_buf_puts(&b, ", "); prep_json_str(&b, p->classes[c]); }
    prep_buf_puts(&b, "],\n\"val_labels\": ");
    prep_json_str(&b, p->val_labels);
    prep_buf_puts(&b, ",\n\"splits\": {");
    size_t g = 0;
    for (int s = 0; s < 2; s++) {
        prep_buf_printf(&b, "%s\n \"%s\": {\"files\": %zu, \"shards\": [", s ? "," : "", prep_split_name[s], p->n[s]);
        for (int k = 0; k < p->shards[s]; k++, g++) {
            char name[128];
            prep_shard_name(s, k, p->shards[s], name, sizeof name);
            prep_buf_printf(&b, "%s\n  {\"file\": \"%s\", \"fp\": \"%016" PRIx64 "\"}", k ? "," : "", name, fps[g]);
        }
        prep_buf_puts(&b, "]}");
    }
    prep_buf_puts(&b, "},\n\"skipped\": ");
    notes_json(&b, &p->skipped, "reason", "  ");
    prep_buf_puts(&b, "\n}\n");
    char path[PATH_MAX], why[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/.prep/plan.json", out);
    int rc = b.oom ? -1 : prep_write_atomic(path, b.s, b.len, why, sizeof why);
    if (rc) prep_err("%s", b.oom ? "out of memory" : why);
    prep_buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- manifest.json */
static int load_json(const char *path, prep_jv *v) {
    char *text; size_t n;
    if (prep_slurp(path, &text, &n)) { prep_err("%s: %s", path, strerror(errno)); return -1; }
    char err[128];
    int rc = prep_json_parse(text, n, v, err, sizeof err);
    free(text);
    if (rc) prep_err("%s: not valid JSON (%s)", path, err);
    return rc;
}

static int merge_notes(prep_notes *dst, const prep_notes *src) {
    for (size_t i = 0; i < src->n; i++) if (prep_notes_add(dst, src->v[i].file, src->v[i].reason)) return -1;
    return 0;
}

int prep_manifest_assemble(const char *out, prep_record *recs, size_t nrecs, int check_crc, int *n_missing) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.prep/plan.json", out);
    prep_jv plan;
    if (load_json(path, &plan)) return -1;
    const prep_jv *splits = prep_json_get(&plan, "splits"), *recipe = prep_json_get(&plan, "recipe"),
                  *classes = prep_json_get(&plan, "classes");
    const char *source = prep_json_gets(&plan, "source"), *val_labels = prep_json_gets(&plan, "val_labels");
    if (!splits || !recipe || !classes || classes->type != PREP_JARR || !source || !val_labels) {
        prep_err("%s: not a semaim-prep plan file", path);
        prep_json_free(&plan);
        return -1;
    }
    prep_record *all = NULL;
    size_t nall = 0, g = 0;
    const prep_jv *sh[2];
    int missing = 0, bad = 0;
    prep_notes skipped = {0}, warnings = {0};
    for (int s = 0; s < 2; s++) {
        const prep_jv *sp = prep_json_get(splits, prep_split_name[s]);
        sh[s] = sp ? prep_json_get(sp, "shards") : NULL;
        if (!sh[s] || sh[s]->type != PREP_JARR) { prep_err("%s: no shard list for %s", path, prep_split_name[s]); bad = 1; break; }
        nall += sh[s]->n;
    }
    if (!bad && notes_from_json(prep_json_get(&plan, "skipped"), "reason", &skipped)) { prep_err("%s: bad skipped list", path); bad = 1; }
    if (!bad && !(all = calloc(nall ? nall : 1, sizeof *all))) { prep_err("out of memory"); bad = 1; }
    for (int s = 0; s < 2 && !bad; s++) {
        for (size_t k = 0; k < sh[s]->n && !bad; k++, g++) {
            const char *fp = prep_json_gets(&sh[s]->items[k], "fp"), *file = prep_json_gets(&sh[s]->items[k], "file");
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
                if (prep_file_crc(sp, &crc, &bytes)) { prep_err("%s: %s", sp, strerror(errno)); missing++; r->valid = 0; continue; }
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
        prep_buf b = {0};
        size_t imgs[2] = {0, 0};
        for (size_t i = 0; i < nall; i++) {
            imgs[all[i].split] += all[i].images;
            if (merge_notes(&skipped, &all[i].skipped) || merge_notes(&warnings, &all[i].warnings)) b.oom = 1;
        }
        prep_notes_sort(&skipped);
        prep_notes_sort(&warnings);
        prep_buf_printf(&b, "{\n\"format\": \"semaim-prep manifest\",\n\"format_version\": %d,\n\"source\": ", PREP_FORMAT_VERSION);
        prep_json_str(&b, source);
        prep_buf_puts(&b, ",\n\"recipe\": ");
        prep_json_write(&b, recipe);
        prep_buf_puts(&b, ",\n\"classes\": ");
        prep_json_write(&b, classes);
        prep_buf_puts(&b, ",\n\"val_labels\": ");
        prep_json_str(&b, val_labels);
        prep_buf_puts(&b, ",\n\"splits\": {");
        for (int s = 0; s < 2; s++) {
            size_t nskip = 0, pl = strlen(prep_split_name[s]);
            for (size_t i = 0; i < skipped.n; i++)
                nskip += !strncmp(skipped.v[i].file, prep_split_name[s], pl) && skipped.v[i].file[pl] == '/';
            prep_buf_printf(&b, "%s\"%s\": {\"shards\": %zu, \"images\": %zu, \"skipped\": %zu}", s ? ", " : "",
                            prep_split_name[s], sh[s]->n, imgs[s], nskip);
        }
        prep_buf_puts(&b, "},\n\"shards\": [");
        for (size_t i = 0; i < nall; i++) {
            char name[128];
            prep_shard_name(all[i].split, all[i].index, all[i].count, name, sizeof name);
            prep_buf_printf(&b, "%s\n  {\"file\": \"%s\", \"split\": \"%s\", \"index\": %d, \"images\": %zu, \"bytes\": %" PRIu64
                            ", \"crc32\": %" PRIu32 "}", i ? "," : "", name, prep_split_name[all[i].split], all[i].index,
                            all[i].images, all[i].bytes, all[i].crc);
        }
        prep_buf_puts(&b, "\n],\n\"skipped\": ");
        notes_json(&b, &skipped, "reason", "  ");
        prep_buf_puts(&b, ",\n\"warnings\": ");
        notes_json(&b, &warnings, "message", "  ");
        prep_buf_puts(&b, "\n}\n");
        char mp[PATH_MAX], why[PATH_MAX + 128];
        snprintf(mp, sizeof mp, "%s/manifest.json", out);
        if (b.oom) { prep_err("out of memory writing %s", mp); rc = -1; }
        else if (prep_write_atomic(mp, b.s, b.len, why, sizeof why)) { prep_err("%s", why); rc = -1; }
        prep_buf_free(&b);
    }
    for (size_t i = 0; i < nall; i++) prep_record_free(&all[i]);
    free(all);
    prep_notes_free(&skipped);
    prep_notes_free(&warnings);
    prep_json_free(&plan);
    return rc;
}
