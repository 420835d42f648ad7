/* `convert`: plan -> shards -> records -> manifest. Ranks take disjoint shards (shard g goes to
 * rank (g - first) mod size); within a process, OpenMP threads decode the files of one shard
 * in parallel and the main thread writes it. A shard whose record and CRC match is kept. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jpeglib.h>
#include "prep.h"

enum { MAX_NOTE_LINES = 20 };   /* per process, so a tree full of junk does not flood stderr */

static uint64_t shard_fp(const prep_plan *p, const prep_opts *o, int s, int k) {
    /* Everything the shard's bytes depend on: recipe, decoder, label space and its files. */
    uint64_t h = prep_fnv_str(PREP_FNV0, "semaim-prep shard");
    h = prep_fnv_int(h, PREP_FORMAT_VERSION);
    h = prep_fnv_str(h, prep_decoder_name());
    h = prep_fnv_int(h, s); h = prep_fnv_int(h, k); h = prep_fnv_int(h, p->shards[s]);
    h = prep_fnv_int(h, o->store);
    if (o->store == PREP_STORE_JPEG) { h = prep_fnv_str(h, prep_encoder_name()); h = prep_fnv_int(h, o->max_side); h = prep_fnv_int(h, o->quality); }
    else { h = prep_fnv_int(h, o->size[s]); h = prep_fnv_int(h, o->resize[s]); }
    h = prep_fnv_int(h, p->nclass);
    size_t lo = slice_lo(p->n[s], k, p->shards[s]), hi = slice_lo(p->n[s], k + 1, p->shards[s]);
    for (size_t i = lo; i < hi; i++) { h = prep_fnv_str(h, p->items[s][i].rel); h = prep_fnv_int(h, p->items[s][i].label); }
    return h;
}

typedef struct {
    int nt;
    prep_decoder **dec;
    uint8_t **fbuf; size_t *fcap;
    uint8_t *img; size_t img_cap;          /* raw: the shard's images */
    uint8_t **blob; size_t *blen, *bcap;   /* jpeg: each file's stored bytes; buffers kept for the next shard */
    int32_t *sw, *sh;                      /* jpeg: stored sizes */
    uint8_t *flat; size_t flat_cap;        /* jpeg: the shard's /jpeg */
    uint64_t *offsets;
    int32_t *labels; char *keys; size_t keys_cap;
    int *status; char (*msg)[200]; size_t cap;
    int notes_printed;
    int manifest_gone;   /* manifest.json removed before the first shard this process rewrites */
} work;

static void work_free(work *w) {
    for (int t = 0; t < w->nt; t++) { if (w->dec) prep_decoder_free(w->dec[t]); if (w->fbuf) free(w->fbuf[t]); }
    for (size_t i = 0; w->blob && i < w->cap; i++) free(w->blob[i]);
    free(w->dec); free(w->fbuf); free(w->fcap);
    free(w->blob); free(w->blen); free(w->bcap); free(w->sw); free(w->sh); free(w->flat); free(w->offsets);
    free(w->img); free(w->labels); free(w->keys); free(w->status); free(w->msg);
}

static int work_init(work *w, int nt) {
    memset(w, 0, sizeof *w);
    w->nt = nt;
    w->dec = calloc((size_t)nt, sizeof *w->dec);
    w->fbuf = calloc((size_t)nt, sizeof *w->fbuf);
    w->fcap = calloc((size_t)nt, sizeof *w->fcap);
    if (!w->dec || !w->fbuf || !w->fcap) return -1;
    for (int t = 0; t < nt; t++) if (!(w->dec[t] = prep_decoder_new())) return -1;
    return 0;
}

/* A table of old_n entries grown to n (contents kept). */
static int table_grow(void *pp, size_t old_n, size_t n, size_t esize) {
    size_t cap = old_n * esize;
    return mem_grow(pp, &cap, n * esize);
}

static int work_reserve(work *w, size_t n, size_t isz, int jpeg) {
    if (!jpeg && n * isz > w->img_cap) {
        free(w->img);
        w->img = malloc(n * isz);
        w->img_cap = w->img ? n * isz : 0;
        if (!w->img) return -1;
    }
    if (n > w->cap) {
        size_t c = w->cap;
        free(w->labels); free(w->status); free(w->msg);
        w->labels = malloc(n * sizeof *w->labels);
        w->status = malloc(n * sizeof *w->status);
        w->msg = malloc(n * sizeof *w->msg);
        if (!w->labels || !w->status || !w->msg) return -1;
        if (jpeg) {
            /* the per-file buffers survive: realloc the tables, zero the new entries */
            if (table_grow(&w->blob, c, n, sizeof *w->blob) || table_grow(&w->blen, c, n, sizeof *w->blen) ||
                table_grow(&w->bcap, c, n, sizeof *w->bcap) || table_grow(&w->sw, c, n, sizeof *w->sw) ||
                table_grow(&w->sh, c, n, sizeof *w->sh) || table_grow(&w->offsets, c + 1, n + 1, sizeof *w->offsets))
                return -1;
            for (size_t i = c; i < n; i++) { w->blob[i] = NULL; w->bcap[i] = 0; }
        }
        w->cap = n;
    }
    return 0;
}

static void note_line(work *w, prep_progress *pg, const char *fmt, const char *file, const char *why) {
    if (w->notes_printed++ >= MAX_NOTE_LINES) return;
    prep_progress_clear(pg);
    char line[1024];
    snprintf(line, sizeof line, fmt, file, why);
    prep_err("%s", line);
    if (w->notes_printed == MAX_NOTE_LINES) prep_err("further skipped files are listed in manifest.json only");
}

/* Keeps a finished shard whose record matches the plan and whose bytes match the record. */
static int try_reuse(const prep_opts *o, int s, int k, int K, uint64_t fp, prep_record *rec, prep_progress *pg) {
    char rp[PATH_MAX], name[128], sp[PATH_MAX];
    prep_record_path(o->out, s, k, K, rp, sizeof rp);
    if (access(rp, F_OK)) return 0;
    if (prep_record_load(rp, rec)) return 0;
    if (rec->fp != fp || rec->split != s || rec->index != k || rec->count != K) { prep_record_free(rec); return 0; }
    prep_shard_name(s, k, K, name, sizeof name);
    snprintf(sp, sizeof sp, "%s/%s", o->out, name);
    uint32_t crc; uint64_t bytes;
    if (crc32_file(sp, &crc, &bytes)) { prep_record_free(rec); return 0; }
    if (crc != rec->crc || bytes != rec->bytes) {
        prep_progress_clear(pg);
        prep_err("note: %s does not match its record (size or CRC32): converting it again", sp);
        prep_record_free(rec);
        return 0;
    }
    return 1;
}

static int convert_shard(const prep_opts *o, const prep_plan *p, int s, int k, uint64_t fp, work *w,
                         prep_record *rec, prep_progress *pg, size_t *done, size_t base, int crash) {
    int K = p->shards[s], S = o->size[s], jpeg = o->store == PREP_STORE_JPEG;
    size_t lo = slice_lo(p->n[s], k, K), hi = slice_lo(p->n[s], k + 1, K), n = hi - lo;
    size_t isz = (size_t)S * S * 3;
    if (work_reserve(w, n, isz, jpeg)) {
        if (jpeg) prep_err("out of memory for a shard of %zu images", n);
        else prep_err("out of memory for a shard of %zu images of %dx%d (use more shards)", n, S, S);
        return -1;
    }
    size_t counter = 0, done0 = *done;
    const prep_item *items = p->items[s] + lo;
    #pragma omp parallel num_threads(w->nt)
    {
        int t = omp_get_thread_num();
        #pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < n; i++) {
            char path[PATH_MAX * 2];
            snprintf(path, sizeof path, "%s/%s", o->src, items[i].rel);
            size_t len;
            err_t fe;
            prep_img_info info;
            if (file_read(path, PREP_MAX_FILE, "an image", &w->fbuf[t], &w->fcap[t], &len, &fe)) {
                snprintf(w->msg[i], sizeof w->msg[i], "%.*s", (int)sizeof w->msg[i] - 1, fe.msg);
                w->status[i] = PREP_IMG_SKIP;
            }
            else if (!jpeg) {
                w->status[i] = prep_decode(w->dec[t], w->fbuf[t], len, o->resize[s], S, w->img + i * isz, &info);
                memcpy(w->msg[i], info.msg, sizeof w->msg[i]);
            }
            else {
                const uint8_t *bytes;
                size_t blen;
                w->status[i] = prep_store_jpeg(w->dec[t], w->fbuf[t], len, o->max_side, o->quality, &bytes, &blen, &info);
                memcpy(w->msg[i], info.msg, sizeof w->msg[i]);
                if (w->status[i] != PREP_IMG_SKIP) {
                    if (mem_grow(&w->blob[i], &w->bcap[i], blen)) {
                        snprintf(w->msg[i], sizeof w->msg[i], "out of memory");
                        w->status[i] = PREP_IMG_SKIP;
                    } else {
                        memcpy(w->blob[i], bytes, blen);
                        w->blen[i] = blen; w->sw[i] = info.sw; w->sh[i] = info.sh;
                    }
                }
            }
            size_t c;
            #pragma omp atomic capture
            c = ++counter;
            if (t == 0) prep_progress_update(pg, done0 + c, base, 0);
        }
    }
    *done = done0 + n;
    memset(rec, 0, sizeof *rec);
    rec->split = s; rec->index = k; rec->count = K; rec->fp = fp;
    size_t m = 0, keylen = 1;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (w->status[i] == PREP_IMG_SKIP) {
            if (prep_notes_add(&rec->skipped, items[i].rel, w->msg[i])) goto oom;
            note_line(w, pg, "skipped %s: %s", items[i].rel, w->msg[i]);
            continue;
        }
        if (w->status[i] == PREP_IMG_WARN && prep_notes_add(&rec->warnings, items[i].rel, w->msg[i])) goto oom;
        size_t kl = strlen(prep_item_key(&items[i]));
        if (kl > keylen) keylen = kl;
        if (!jpeg && m != i) memmove(w->img + m * isz, w->img + i * isz, isz);
        if (jpeg) { total += w->blen[i]; w->sw[m] = w->sw[i]; w->sh[m] = w->sh[i]; }
        w->labels[m] = items[i].label;
        m++;
    }
    if (jpeg && mem_grow(&w->flat, &w->flat_cap, (size_t)total)) goto oom;
    if (m * keylen > w->keys_cap || !w->keys) {
        free(w->keys);
        w->keys_cap = m * keylen;
        if (!(w->keys = malloc(w->keys_cap ? w->keys_cap : 1))) { w->keys_cap = 0; goto oom; }
    }
    memset(w->keys, 0, m * keylen);
    if (jpeg) w->offsets[0] = 0;
    for (size_t i = 0, j = 0; i < n; i++) {
        if (w->status[i] == PREP_IMG_SKIP) continue;
        const char *key = prep_item_key(&items[i]);
        memcpy(w->keys + j * keylen, key, strlen(key));
        if (jpeg) {
            memcpy(w->flat + w->offsets[j], w->blob[i], w->blen[i]);
            w->offsets[j + 1] = w->offsets[j] + w->blen[i];
        }
        j++;
    }
    rec->images = m;
    char name[128], final[PATH_MAX], tmp[PATH_MAX + 128], why[PATH_MAX + 256] = "";
    prep_shard_name(s, k, K, name, sizeof name);
    snprintf(final, sizeof final, "%s/%s", o->out, name);
    file_remove_stale_tmp(final);
    file_tmp_name(final, tmp, sizeof tmp);
    if (!w->manifest_gone) {
        /* The old manifest would describe shards that are about to change: only a complete
         * run writes one again. */
        char mp[PATH_MAX];
        snprintf(mp, sizeof mp, "%s/manifest.json", o->out);
        if (unlink(mp) && errno != ENOENT) { prep_progress_clear(pg); prep_err("%s: %s", mp, strerror(errno)); prep_record_free(rec); return -1; }
        w->manifest_gone = 1;
    }
    prep_shard_info si = {.split = s, .index = k, .count = K, .nclass = p->nclass, .version = PREP_FORMAT_VERSION,
                          .store = o->store, .size = S, .resize = o->resize[s], .max_side = o->max_side, .quality = o->quality};
    prep_shard_data px = {w->img, w->flat, w->offsets, w->sw, w->sh};
    if (prep_shard_write(tmp, &si, m, &px, w->labels, w->keys, keylen, crash, why, sizeof why)) {
        unlink(tmp);
        prep_progress_clear(pg);
        prep_err("%s", why);
        prep_record_free(rec);
        return -1;
    }
    err_t e;
    if (crc32_file(tmp, &rec->crc, &rec->bytes) ? err_set(&e, ERR_RUNTIME, "%s: %s", tmp, strerror(errno))
                                                : file_commit(tmp, final, &e)) {
        unlink(tmp);
        prep_progress_clear(pg);
        prep_err("%s", e.msg);
        prep_record_free(rec);
        return -1;
    }
    buf_t b = {0};
    prep_record_json(rec, &b);
    char rp[PATH_MAX];
    prep_record_path(o->out, s, k, K, rp, sizeof rp);
    int rc = b.oom ? err_set(&e, ERR_RUNTIME, "out of memory") : file_write_atomic(rp, &(span_t){b.s, b.len}, 1, &e);
    if (rc) { prep_progress_clear(pg); prep_err("%s", e.msg); prep_record_free(rec); }
    buf_free(&b);
    if (!rc) rec->valid = 1;
    return rc;
oom:
    prep_err("out of memory");
    prep_record_free(rec);
    return -1;
}

static int crash_after(long *v) {
    const char *e = getenv("SEMAIM_PREP_CRASH_AFTER");
    *v = -1;
    if (!e || !*e) return 0;
    if (prep_parse_long(e, 0, INT_MAX, v)) { prep_err("SEMAIM_PREP_CRASH_AFTER=%s: expected a shard count >= 0", e); return -1; }
    return 0;
}

/* Canonical form of a path that may not exist yet: realpath of its longest existing prefix
 * plus the rest. */
static void canon(const char *path, char *out, size_t len) {
    char p[PATH_MAX], rest[PATH_MAX] = "";
    snprintf(p, sizeof p, "%s", path);
    for (;;) {
        char r[PATH_MAX];
        if (realpath(p, r)) { snprintf(out, len, "%s%s", r, rest); return; }
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) { snprintf(out, len, "%s", path); return; }
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s%s", slash, rest);
        snprintf(rest, sizeof rest, "%s", tmp);
        *slash = 0;
    }
}

/* Shards written into the source tree would be scanned as images or classes next time. */
static int out_inside_src(const prep_opts *o) {
    char s[PATH_MAX], d[PATH_MAX];
    canon(o->src, s, sizeof s);
    canon(o->out, d, sizeof d);
    size_t n = strlen(s);
    if (!strcmp(s, d)) return 1;
    if (strncmp(s, d, n) || d[n] != '/') return 0;
    const char *sub = d + n + 1;
    return (!strncmp(sub, "train", 5) && (sub[5] == '/' || !sub[5])) || (!strncmp(sub, "val", 3) && (sub[3] == '/' || !sub[3]));
}

int prep_convert(const prep_opts *o, const prep_comm *c) {
    prep_h5_quiet();
    prep_plan plan;
    memset(&plan, 0, sizeof plan);
    buf_t pk = {0};
    long crash_n;
    int fail = crash_after(&crash_n) != 0;
    if (c->rank == 0 && !fail && out_inside_src(o)) {
        prep_err("--out %s would put shards inside the source tree %s (its train/ or val/): choose another directory", o->out, o->src);
        fail = 1;
    }
    if (c->rank == 0 && !fail) {
        fail = prep_plan_build(&plan, o) != 0;
        if (!fail && c->size > 1 && prep_plan_pack(&plan, &pk)) { prep_err("out of memory"); fail = 1; }
    }
    if (prep_comm_any(c, fail)) { buf_free(&pk); if (c->rank == 0) prep_plan_free(&plan); return 1; }
    if (c->size > 1) {
        fail = prep_comm_bcast(c, &pk) != 0;
        if (!fail && c->rank != 0 && prep_plan_unpack(&plan, pk.s, pk.len)) { prep_err("rank %d: bad plan broadcast", c->rank); fail = 1; }
        buf_free(&pk);
        if (prep_comm_any(c, fail)) { prep_plan_free(&plan); return 1; }
    }
    int T = plan.shards[PREP_TRAIN], V = plan.shards[PREP_VAL];
    long G = (long)T + V, lo = o->range_lo, hi = o->range_hi < G ? o->range_hi : G;
    int ranged = o->ranged || o->task_n > 0;
    if (o->task_n > 0) {
        lo = G * o->task_i / o->task_n; hi = G * (o->task_i + 1) / o->task_n;
        if (lo == hi) {
            if (c->rank == 0) prep_err("note: task %d of %d has no shards (there are only %ld)", o->task_i, o->task_n, G);
            prep_plan_free(&plan);
            return 0;
        }
    }
    if (o->ranged && (lo >= G || lo >= hi)) {
        if (c->rank == 0) prep_err("--shard-range %ld:%ld selects no shard: there are %ld (train 0..%d, val %d..%ld)", o->range_lo, o->range_hi, G, T - 1, T, G - 1);
        prep_plan_free(&plan);
        return 1;
    }
    char dir[PATH_MAX];
    const char *sub[] = {"", "/.prep", "/train", "/val"};
    for (int i = 0; i < 4 && !fail; i++) {
        if ((i == 2 && !T) || (i == 3 && !V)) continue;
        snprintf(dir, sizeof dir, "%s%s", o->out, sub[i]);
        if (file_mkdirs(dir)) { prep_err("--out %s: cannot create %s: %s", o->out, dir, strerror(errno)); fail = 1; }
    }
    uint64_t *fps = calloc((size_t)G + 1, sizeof *fps);
    prep_record *recs = calloc((size_t)G + 1, sizeof *recs);
    if (!fps || !recs) { prep_err("out of memory"); fail = 1; }
    for (long g = 0; g < G && !fail; g++) fps[g] = g < T ? shard_fp(&plan, o, PREP_TRAIN, (int)g) : shard_fp(&plan, o, PREP_VAL, (int)(g - T));
    if (!fail && c->rank == 0) {
        fail = prep_planfile_write(o->out, &plan, o, fps) != 0;
        for (size_t i = 0; i < plan.skipped.n && i < MAX_NOTE_LINES; i++) prep_err("skipped %s: %s", plan.skipped.v[i].file, plan.skipped.v[i].reason);
        if (plan.skipped.n > MAX_NOTE_LINES) prep_err("... and %zu more files set aside while scanning (listed in manifest.json)", plan.skipped.n - MAX_NOTE_LINES);
    }
    work w;
    memset(&w, 0, sizeof w);
    int nt = o->threads > 0 ? o->threads : omp_get_max_threads();
    if (!fail && work_init(&w, nt)) { prep_err("out of memory creating %d decoders", nt); fail = 1; }
    if (prep_comm_any(c, fail)) {
        work_free(&w);
        free(fps); free(recs); prep_plan_free(&plan);
        return 1;
    }
    size_t total = 0, done = 0, base = 0;
    for (long g = lo; g < hi; g++) {
        if ((g - lo) % c->size != c->rank) continue;
        int s = g < T ? PREP_TRAIN : PREP_VAL, k = (int)(g < T ? g : g - T);
        total += slice_lo(plan.n[s], k + 1, plan.shards[s]) - slice_lo(plan.n[s], k, plan.shards[s]);
    }
    prep_progress pg;
    prep_progress_start(&pg, total, o->progress, o->status_every, c);
    int converted = 0, reused = 0;
    for (long g = lo; g < hi && !fail; g++) {
        if ((g - lo) % c->size != c->rank) continue;
        int s = g < T ? PREP_TRAIN : PREP_VAL, k = (int)(g < T ? g : g - T);
        size_t n = slice_lo(plan.n[s], k + 1, plan.shards[s]) - slice_lo(plan.n[s], k, plan.shards[s]);
        if (!o->force && try_reuse(o, s, k, plan.shards[s], fps[g], &recs[g], &pg)) {
            recs[g].valid = 1;
            reused++;
            done += n; base += n;
            prep_progress_update(&pg, done, base, 0);
            continue;
        }
        int crash = crash_n >= 0 && converted == crash_n;
        if (convert_shard(o, &plan, s, k, fps[g], &w, &recs[g], &pg, &done, base, crash)) fail = 1;
        else converted++;
        prep_progress_update(&pg, done, base, 0);
    }
    if (!fail) prep_progress_end(&pg); else prep_progress_clear(&pg);
    work_free(&w);
    fail = prep_comm_any(c, fail);
    converted = (int)prep_comm_sum(c, converted);
    reused = (int)prep_comm_sum(c, reused);
    /* Records travel to rank 0 by MPI, not through the file system, so the manifest does not
     * depend on how quickly a shared file system shows other nodes' files. */
    buf_t mine = {0}, all = {0};
    for (long g = lo; g < hi && !fail; g++)
        if (recs[g].valid) { prep_record_json(&recs[g], &mine); buf_add(&mine, "\0", 1); }
    int rc = fail;
    if (!fail && prep_comm_gather(c, &mine, &all)) { if (c->rank == 0) prep_err("gathering shard records failed"); rc = 1; }
    if (!rc && c->rank == 0) {
        prep_record *allrec = c->size > 1 ? calloc((size_t)G + 1, sizeof *allrec) : recs;
        if (!allrec) { prep_err("out of memory"); rc = 1; }
        for (size_t off = 0; c->size > 1 && allrec && off < all.len;) {
            size_t len = strlen(all.s + off);
            json_t v; prep_record r; err_t je = {0};
            if (json_parse(all.s + off, len, &v, &je) || prep_record_from_json(&v, &r)) { prep_err("bad gathered record: %s", je.msg); rc = 1; json_free(&v); break; }
            json_free(&v);
            off += len + 1;
            long g = r.split == PREP_TRAIN ? r.index : (long)T + r.index;
            if (g < 0 || g >= G) { prep_record_free(&r); continue; }
            if (allrec[g].valid) prep_record_free(&allrec[g]);
            allrec[g] = r;
        }
        int missing = 0;
        size_t nimg[2] = {0, 0}, nskip = plan.skipped.n, nwarn = 0;
        long mine_done = 0;
        if (!rc) {
            for (long g = lo; g < hi; g++) {
                if (!allrec[g].valid) continue;
                mine_done++;
                nimg[allrec[g].split] += allrec[g].images;
                nskip += allrec[g].skipped.n; nwarn += allrec[g].warnings.n;
            }
            int m = prep_manifest_assemble(o->out, allrec, (size_t)G, 0, &missing);
            if (m < 0) rc = 1;
            else if (m > 0 && !ranged) { prep_err("%d shards have no valid record after conversion", missing); rc = 1; }
            if (!rc) {
                prep_err("%s %ld shards (%d converted, %d already complete%s): %zu train + %zu val images; %zu files skipped, %zu converted with warnings",
                         ranged ? "shard range done:" : "done:", mine_done, converted, reused, "",
                         nimg[0], nimg[1], nskip, nwarn);
                if (m == 0) prep_err("wrote %s/manifest.json", o->out);
                else prep_err("%d of %ld shards are not finished yet; when every task is done, run: semaim-prep manifest %s", missing, G, o->out);
            }
        }
        if (allrec && allrec != recs) { for (long g = 0; g < G; g++) prep_record_free(&allrec[g]); free(allrec); }
    }
    rc = prep_comm_any(c, rc);
    for (long g = 0; g < G; g++) prep_record_free(&recs[g]);
    buf_free(&mine); buf_free(&all);
    free(fps); free(recs);
    prep_plan_free(&plan);
    return rc ? 1 : 0;
}

int prep_manifest_cmd(const char *out) {
    int missing = 0;
    int m = prep_manifest_assemble(out, NULL, 0, 1, &missing);
    if (m < 0) return 1;
    if (m > 0) { prep_err("%s: %d shards are missing, unfinished or damaged: run convert (same flags) to finish them", out, missing); return 1; }
    prep_err("wrote %s/manifest.json", out);
    return 0;
}
