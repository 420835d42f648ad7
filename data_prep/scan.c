/* The plan: which files go into which shard with which label. Everything here depends only
 * on the source tree, the labels files and the flags, never on ranks or threads. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "prep.h"

const char *const prep_split_name[2] = {"train", "val"};
const char *const prep_store_name[2] = {"raw", "jpeg"};

void prep_opts_default(prep_opts *o) {
    memset(o, 0, sizeof *o);
    o->shards[PREP_TRAIN] = 1024; o->shards[PREP_VAL] = 64;
    o->size[PREP_TRAIN] = 256; o->size[PREP_VAL] = 224;
    o->resize[PREP_TRAIN] = 256; o->resize[PREP_VAL] = 256;   /* 224 / 0.875 */
    o->store = PREP_STORE_JPEG;   /* why: data_prep/README.md, "Which store" */
    o->max_side = 512; o->quality = 90;
    o->range_lo = 0; o->range_hi = LONG_MAX;
    o->status_every = 30;
    o->progress = -1;
}

/* ---------------------------------------------------------------- notes */
int prep_notes_add(prep_notes *ns, const char *file, const char *reason) {
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? 2 * ns->cap : 16;
        prep_note *v = realloc(ns->v, cap * sizeof *v);
        if (!v) return -1;
        ns->v = v; ns->cap = cap;
    }
    prep_note *n = &ns->v[ns->n];
    n->file = strdup(file); n->reason = strdup(reason);
    if (!n->file || !n->reason) { free(n->file); free(n->reason); return -1; }
    ns->n++;
    return 0;
}

static int note_cmp(const void *a, const void *b) {
    const prep_note *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->reason, y->reason);
}
void prep_notes_sort(prep_notes *ns) { if (ns->n > 1) qsort(ns->v, ns->n, sizeof *ns->v, note_cmp); }

void prep_notes_free(prep_notes *ns) {
    for (size_t i = 0; i < ns->n; i++) { free(ns->v[i].file); free(ns->v[i].reason); }
    free(ns->v);
    memset(ns, 0, sizeof *ns);
}

/* ---------------------------------------------------------------- directory listing */
typedef struct { char *name; int isdir; } dent;

static int dent_cmp(const void *a, const void *b) { return strcmp(((const dent *)a)->name, ((const dent *)b)->name); }

static void dents_free(dent *d, size_t n) { for (size_t i = 0; i < n; i++) free(d[i].name); free(d); }

/* Sorted entries of dir (without . and ..). Symlinks are followed; a broken one is listed
 * as a file so that it is reported rather than lost. */
static int list_dir(const char *dir, dent **out, size_t *nout) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    dent *v = NULL; size_t n = 0, cap = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            dent *nv = realloc(v, cap * sizeof *v);
            if (!nv) { dents_free(v, n); closedir(d); errno = ENOMEM; return -1; }
            v = nv;
        }
        int isdir = 0;
        if (e->d_type == DT_DIR) isdir = 1;
        else if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
            char full[PATH_MAX + 256];
            struct stat st;
            snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
            isdir = !stat(full, &st) && S_ISDIR(st.st_mode);
        }
        v[n].name = strdup(e->d_name);
        if (!v[n].name) { dents_free(v, n); closedir(d); errno = ENOMEM; return -1; }
        v[n++].isdir = isdir;
        errno = 0;
    }
    int err = errno;
    closedir(d);
    if (err) { dents_free(v, n); errno = err; return -1; }
    if (n > 1) qsort(v, n, sizeof *v, dent_cmp);
    *out = v; *nout = n;
    return 0;
}

static int is_jpeg_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

typedef struct { prep_item *v; size_t n, cap; } items;

static int items_add(items *it, const char *rel, int32_t label) {
    if (it->n == it->cap) {
        size_t cap = it->cap ? 2 * it->cap : 1024;
        prep_item *v = realloc(it->v, cap * sizeof *v);
        if (!v) return -1;
        it->v = v; it->cap = cap;
    }
    it->v[it->n].rel = strdup(rel);
    if (!it->v[it->n].rel) return -1;
    it->v[it->n++].label = label;
    return 0;
}

static int oom(void) { prep_err("out of memory while scanning"); return -1; }

/* Files of one class folder: JPEG names become items, everything else a note. */
static int scan_class(const char *src, const char *split, const char *cls, int32_t label, items *it, prep_notes *skipped) {
    char dir[PATH_MAX], rel[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s/%s", src, split, cls);
    dent *d; size_t n;
    if (list_dir(dir, &d, &n)) { prep_err("%s: %s", dir, strerror(errno)); return -1; }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        snprintf(rel, sizeof rel, "%s/%s/%s", split, cls, d[i].name);
        if (d[i].isdir) rc = prep_notes_add(skipped, rel, "directory inside a class folder (not scanned)");
        else if (!is_jpeg_name(d[i].name)) rc = prep_notes_add(skipped, rel, "not a .jpg/.jpeg file name");
        else rc = items_add(it, rel, label);
        if (rc) rc = oom();
    }
    dents_free(d, n);
    return rc;
}

static int find_class(const prep_plan *p, const char *name) {
    int lo = 0, hi = p->nclass - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(p->classes[mid], name);
        if (!c) return mid;
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* ---------------------------------------------------------------- val labels files */
typedef struct { char *id, *wnid; } idmap;
static int idmap_cmp(const void *a, const void *b) { return strcmp(((const idmap *)a)->id, ((const idmap *)b)->id); }

typedef struct {
    int kind;                  /* 1: LOC_val_solution.csv, 2: ground truth + class order */
    idmap *loc; size_t nloc;
    int *gt; size_t ngt;       /* devkit class id (1-based) per validation image number */
    char **order; size_t norder;
    char path[PATH_MAX];
} labels;

static void labels_free(labels *l) {
    for (size_t i = 0; i < l->nloc; i++) { free(l->loc[i].id); free(l->loc[i].wnid); }
    for (size_t i = 0; i < l->norder; i++) free(l->order[i]);
    free(l->loc); free(l->gt); free(l->order);
}

/* Splits text into lines in place; returns the count. */
static size_t split_lines(char *text, char ***lines) {
    size_t n = 0, cap = 0;
    char **v = NULL;
    for (char *p = text; *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        size_t len = strlen(p);
        if (len && p[len - 1] == '\r') p[len - 1] = 0;
        if (n == cap) { cap = cap ? 2 * cap : 1024; char **nv = realloc(v, cap * sizeof *v); if (!nv) { free(v); *lines = NULL; return (size_t)-1; } v = nv; }
        v[n++] = p;
        if (!e) break;
        p = e + 1;
    }
    *lines = v;
    return n;
}

static char *first_token(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s;
    while (*e && *e != ' ' && *e != '\t' && *e != ',') e++;
    *e = 0;
    return s;
}

static int load_labels(labels *l, const char *path, const char *order_path, const prep_plan *p) {
    char *text; size_t n;
    snprintf(l->path, sizeof l->path, "%s", path);
    if (file_slurp(path, &text, &n)) { prep_err("%s: %s", path, strerror(errno)); return -1; }
    char **lines;
    size_t nl = split_lines(text, &lines);
    int rc = 0;
    if (nl == (size_t)-1) { free(text); return oom(); }
    if (nl > 0 && !strncmp(lines[0], "ImageId", 7)) {
        l->kind = 1;
        l->loc = calloc(nl, sizeof *l->loc);
        if (!l->loc) rc = oom();
        for (size_t i = 1; i < nl && !rc; i++) {
            char *line = lines[i];
            if (!*line) continue;
            char *comma = strchr(line, ',');
            if (!comma || comma == line) { prep_err("%s:%zu: expected 'ImageId,PredictionString'", path, i + 1); rc = -1; break; }
            *comma = 0;
            char *wnid = first_token(comma + 1);
            if (!*wnid) { prep_err("%s:%zu: empty PredictionString", path, i + 1); rc = -1; break; }
            l->loc[l->nloc].id = strdup(line); l->loc[l->nloc].wnid = strdup(wnid);
            if (!l->loc[l->nloc].id || !l->loc[l->nloc].wnid) { l->nloc++; rc = oom(); break; }
            l->nloc++;
        }
        if (!rc) {
            qsort(l->loc, l->nloc, sizeof *l->loc, idmap_cmp);
            for (size_t i = 1; i < l->nloc; i++)
                if (!strcmp(l->loc[i].id, l->loc[i - 1].id)) { prep_err("%s: image %s listed twice", path, l->loc[i].id); rc = -1; break; }
        }
    } else {
        l->kind = 2;
        if (!order_path) {
            prep_err("%s: devkit ground truth uses devkit class ids: pass --val-class-order FILE (one wnid per line, in devkit order)", path);
            free(lines); free(text);
            return -1;
        }
        l->gt = malloc((nl ? nl : 1) * sizeof *l->gt);
        if (!l->gt) rc = oom();
        for (size_t i = 0; i < nl && !rc; i++) {
            if (!*lines[i] && i == nl - 1) break;
            long v;
            if (prep_parse_long(first_token(lines[i]), 1, 1000000, &v)) {
                prep_err("%s:%zu: expected a class id (a positive integer), got '%s'", path, i + 1, lines[i]);
                rc = -1; break;
            }
            l->gt[l->ngt++] = (int)v;
        }
        char *otext = NULL; size_t on;
        if (!rc && file_slurp(order_path, &otext, &on)) { prep_err("%s: %s", order_path, strerror(errno)); rc = -1; }
        if (!rc) {
            char **ol;
            size_t no = split_lines(otext, &ol);
            if (no == (size_t)-1) rc = oom();
            else {
                l->order = calloc(no ? no : 1, sizeof *l->order);
                if (!l->order) rc = oom();
                for (size_t i = 0; i < no && !rc; i++) {
                    char *w = first_token(ol[i]);
                    if (!*w && i == no - 1) break;
                    if (!*w) { prep_err("%s:%zu: empty line", order_path, i + 1); rc = -1; break; }
                    if (find_class(p, w) < 0) { prep_err("%s:%zu: '%s' is not a class folder of train/", order_path, i + 1, w); rc = -1; break; }
                    if (!(l->order[l->norder++] = strdup(w))) rc = oom();
                }
                free(ol);
            }
            for (size_t i = 0; i < l->ngt && !rc; i++)
                if ((size_t)l->gt[i] > l->norder) {
                    prep_err("%s:%zu: class id %d but %s lists %zu classes", path, i + 1, l->gt[i], order_path, l->norder);
                    rc = -1;
                }
        }
        free(otext);
    }
    free(lines); free(text);
    return rc;
}

/* Label of flat val file `name` or -1 with a reason. */
static int32_t val_label(const labels *l, const prep_plan *p, const char *name, char *why, size_t wlen) {
    char stem[PATH_MAX];
    snprintf(stem, sizeof stem, "%s", name);
    char *dot = strrchr(stem, '.');
    if (dot) *dot = 0;
    const char *wnid = NULL;
    const char *base = strrchr(l->path, '/');
    base = base ? base + 1 : l->path;
    if (l->kind == 1) {
        idmap key = {stem, NULL};
        idmap *hit = l->nloc ? bsearch(&key, l->loc, l->nloc, sizeof *l->loc, idmap_cmp) : NULL;
        if (hit) wnid = hit->wnid;
    } else {
        char *us = strrchr(stem, '_');
        long num;
        if (us && !prep_parse_long(us + 1, 1, LONG_MAX, &num) && (size_t)num <= l->ngt) wnid = l->order[l->gt[num - 1] - 1];
    }
    if (!wnid) { snprintf(why, wlen, "no label for this file in %s", base); return -1; }
    int c = find_class(p, wnid);
    if (c < 0) { snprintf(why, wlen, "label '%s' from %s is not a class folder of train/", wnid, base); return -1; }
    return c;
}

static int file_exists(const char *path) { struct stat st; return !stat(path, &st) && S_ISREG(st.st_mode); }

/* ---------------------------------------------------------------- plan */
static int item_cmp(const void *a, const void *b) { return strcmp(((const prep_item *)a)->rel, ((const prep_item *)b)->rel); }

void prep_shuffle(prep_item *v, size_t n, uint64_t seed, int split) {
    /* Sorted by path first so the result does not depend on readdir order, then a
     * Fisher-Yates shuffle driven by splitmix64 seeded with 2*seed + split. */
    if (n > 1) qsort(v, n, sizeof *v, item_cmp);
    uint64_t st = seed * 2 + (uint64_t)split;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)prep_bounded(&st, i);
        prep_item t = v[i - 1]; v[i - 1] = v[j]; v[j] = t;
    }
}

static int scan_train(prep_plan *p, const prep_opts *o, items *it) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/train", o->src);
    dent *d; size_t n;
    if (list_dir(dir, &d, &n)) { prep_err("%s: %s", dir, strerror(errno)); return -1; }
    p->classes = calloc(n ? n : 1, sizeof *p->classes);
    if (!p->classes) { dents_free(d, n); return oom(); }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char rel[PATH_MAX];
        snprintf(rel, sizeof rel, "train/%s", d[i].name);
        if (!d[i].isdir) rc = prep_notes_add(&p->skipped, rel, "not inside a class folder");
        else if (d[i].name[0] == '.') rc = prep_notes_add(&p->skipped, rel, "hidden directory (not scanned)");
        else if (!(p->classes[p->nclass++] = strdup(d[i].name))) rc = -1;
        if (rc) rc = oom();
    }
    dents_free(d, n);
    if (rc) return rc;
    if (!p->nclass) { prep_err("%s: no class folders (expected %s/<class>/*.JPEG)", dir, dir); return -1; }
    if (o->shards[PREP_TRAIN] > 0)
        for (int c = 0; c < p->nclass && !rc; c++) rc = scan_class(o->src, "train", p->classes[c], c, it, &p->skipped);
    if (!rc && o->shards[PREP_TRAIN] > 0 && it->n == 0) { prep_err("%s: no .jpg/.jpeg files in its class folders", dir); rc = -1; }
    return rc;
}

static int scan_val(prep_plan *p, const prep_opts *o, items *it) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/val", o->src);
    dent *d; size_t n;
    if (list_dir(dir, &d, &n)) { prep_err("%s: %s", dir, strerror(errno)); return -1; }
    int folders = 0, rc = 0;
    for (size_t i = 0; i < n; i++) folders |= d[i].isdir && d[i].name[0] != '.';
    if (folders) {
        snprintf(p->val_labels, sizeof p->val_labels, "class folders");
        for (size_t i = 0; i < n && !rc; i++) {
            char rel[PATH_MAX];
            snprintf(rel, sizeof rel, "val/%s", d[i].name);
            if (!d[i].isdir) { if (prep_notes_add(&p->skipped, rel, "not inside a class folder")) rc = oom(); continue; }
            if (d[i].name[0] == '.') { if (prep_notes_add(&p->skipped, rel, "hidden directory (not scanned)")) rc = oom(); continue; }
            int c = find_class(p, d[i].name);
            if (c < 0) { prep_err("%s/%s: not a class folder of train/ (val labels must use the train classes)", dir, d[i].name); rc = -1; break; }
            rc = scan_class(o->src, "val", d[i].name, c, it, &p->skipped);
        }
        dents_free(d, n);
        return rc;
    }
    /* Flat val/: labels from LOC_val_solution.csv or the devkit ground truth. */
    char path[PATH_MAX] = "";
    if (o->val_labels) snprintf(path, sizeof path, "%s", o->val_labels);
    else {
        const char *cand[] = {"LOC_val_solution.csv", "val/LOC_val_solution.csv", "ILSVRC2012_validation_ground_truth.txt",
                              "val/ILSVRC2012_validation_ground_truth.txt"};
        for (int i = 0; i < 4 && !path[0]; i++) {
            char c[PATH_MAX];
            snprintf(c, sizeof c, "%s/%s", o->src, cand[i]);
            if (file_exists(c)) snprintf(path, sizeof path, "%s", c);
        }
    }
    int njpeg = 0;
    for (size_t i = 0; i < n; i++) njpeg += !d[i].isdir && is_jpeg_name(d[i].name);
    if (!path[0] && njpeg) {
        prep_err("%s: flat folder of JPEGs but no labels file: pass --val-labels FILE (LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt)", dir);
        dents_free(d, n);
        return -1;
    }
    labels l;
    memset(&l, 0, sizeof l);
    if (njpeg && load_labels(&l, path, o->val_class_order, p)) { labels_free(&l); dents_free(d, n); return -1; }
    const char *base = strrchr(path, '/');
    snprintf(p->val_labels, sizeof p->val_labels, "%.500s", base ? base + 1 : path);
    for (size_t i = 0; i < n && !rc; i++) {
        char rel[PATH_MAX], why[PATH_MAX + 64];
        snprintf(rel, sizeof rel, "val/%s", d[i].name);
        if (d[i].isdir) rc = prep_notes_add(&p->skipped, rel, "hidden directory (not scanned)");
        else if (!is_jpeg_name(d[i].name)) {
            if (!strcmp(d[i].name, "LOC_val_solution.csv") || !strcmp(d[i].name, "ILSVRC2012_validation_ground_truth.txt")) continue;
            rc = prep_notes_add(&p->skipped, rel, "not a .jpg/.jpeg file name");
        } else {
            int32_t c = val_label(&l, p, d[i].name, why, sizeof why);
            rc = c < 0 ? prep_notes_add(&p->skipped, rel, why) : items_add(it, rel, c);
        }
        if (rc) rc = oom();
    }
    labels_free(&l);
    dents_free(d, n);
    return rc;
}

int prep_plan_build(prep_plan *p, const prep_opts *o) {
    memset(p, 0, sizeof *p);
    struct stat st;
    if (stat(o->src, &st)) { prep_err("--src %s: %s", o->src, strerror(errno)); return -1; }
    if (!S_ISDIR(st.st_mode)) { prep_err("--src %s: not a directory", o->src); return -1; }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/train", o->src);
    int has_train = !stat(dir, &st) && S_ISDIR(st.st_mode);
    snprintf(dir, sizeof dir, "%s/val", o->src);
    int has_val = !stat(dir, &st) && S_ISDIR(st.st_mode);
    if (!has_train) {
        prep_err("--src %s: no train/ directory (expected %s/train/<class>/*.JPEG; its class folders define the labels)", o->src, o->src);
        return -1;
    }
    items it[2] = {{0}, {0}};
    int rc = scan_train(p, o, &it[PREP_TRAIN]);
    if (!rc && o->shards[PREP_VAL] > 0) {
        if (has_val) rc = scan_val(p, o, &it[PREP_VAL]);
        else prep_err("note: %s/val does not exist: no val shards", o->src);
    }
    for (int s = 0; s < 2; s++) {
        p->items[s] = it[s].v; p->n[s] = it[s].n;
        p->shards[s] = p->n[s] ? o->shards[s] : 0;
    }
    if (rc) { prep_plan_free(p); return -1; }
    if (o->shards[PREP_VAL] > 0 && has_val && !p->n[PREP_VAL]) prep_err("note: %s/val holds no usable JPEGs: no val shards", o->src);
    for (int s = 0; s < 2; s++) {
        if (p->shards[s] && (size_t)p->shards[s] > p->n[s]) {
            prep_err("--%s-shards %d exceeds the %zu %s files: use at most %zu shards", prep_split_name[s], p->shards[s], p->n[s], prep_split_name[s], p->n[s]);
            prep_plan_free(p);
            return -1;
        }
        prep_shuffle(p->items[s], p->n[s], o->seed, s);
    }
    prep_notes_sort(&p->skipped);
    return 0;
}

void prep_plan_free(prep_plan *p) {
    for (int c = 0; c < p->nclass; c++) free(p->classes[c]);
    free(p->classes);
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < p->n[s]; i++) free(p->items[s][i].rel);
        free(p->items[s]);
    }
    prep_notes_free(&p->skipped);
    memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------- pack for MPI broadcast */
static void put_u64(buf_t *b, uint64_t v) { buf_add(b, (const char *)&v, 8); }
static void put_str(buf_t *b, const char *s) { uint64_t n = strlen(s); put_u64(b, n); buf_add(b, s, n); }

int prep_plan_pack(const prep_plan *p, buf_t *b) {
    put_u64(b, 0x314E4C50u);  /* "PLN1" */
    put_u64(b, (uint64_t)p->nclass);
    for (int c = 0; c < p->nclass; c++) put_str(b, p->classes[c]);
    for (int s = 0; s < 2; s++) {
        put_u64(b, p->n[s]); put_u64(b, (uint64_t)p->shards[s]);
        for (size_t i = 0; i < p->n[s]; i++) { put_str(b, p->items[s][i].rel); put_u64(b, (uint64_t)(uint32_t)p->items[s][i].label); }
    }
    put_u64(b, p->skipped.n);
    for (size_t i = 0; i < p->skipped.n; i++) { put_str(b, p->skipped.v[i].file); put_str(b, p->skipped.v[i].reason); }
    put_str(b, p->val_labels);
    return b->oom ? -1 : 0;
}

typedef struct { const char *p, *end; int bad; } rd;
static uint64_t get_u64(rd *r) {
    uint64_t v = 0;
    if (r->end - r->p < 8) { r->bad = 1; return 0; }
    memcpy(&v, r->p, 8); r->p += 8;
    return v;
}
static char *get_str(rd *r) {
    uint64_t n = get_u64(r);
    if (r->bad || (uint64_t)(r->end - r->p) < n) { r->bad = 1; return NULL; }
    char *s = malloc(n + 1);
    if (!s) { r->bad = 1; return NULL; }
    memcpy(s, r->p, n); s[n] = 0; r->p += n;
    return s;
}

int prep_plan_unpack(prep_plan *p, const char *data, size_t n) {
    memset(p, 0, sizeof *p);
    rd r = {data, data + n, 0};
    if (get_u64(&r) != 0x314E4C50u) return -1;
    uint64_t nc = get_u64(&r);
    if (r.bad || nc > n) return -1;
    p->classes = calloc(nc ? nc : 1, sizeof *p->classes);
    if (!p->classes) return -1;
    for (uint64_t c = 0; c < nc && !r.bad; c++) { p->classes[c] = get_str(&r); p->nclass++; }
    for (int s = 0; s < 2 && !r.bad; s++) {
        uint64_t ni = get_u64(&r);
        p->shards[s] = (int)get_u64(&r);
        if (r.bad || ni > n) { r.bad = 1; break; }
        p->items[s] = calloc(ni ? ni : 1, sizeof **p->items);
        if (!p->items[s]) { r.bad = 1; break; }
        for (uint64_t i = 0; i < ni && !r.bad; i++) {
            p->items[s][i].rel = get_str(&r);
            p->items[s][i].label = (int32_t)(uint32_t)get_u64(&r);
            p->n[s]++;
        }
    }
    uint64_t ns = r.bad ? 0 : get_u64(&r);
    for (uint64_t i = 0; i < ns && !r.bad; i++) {
        char *f = get_str(&r), *why = get_str(&r);
        if (f && why && prep_notes_add(&p->skipped, f, why)) r.bad = 1;
        free(f); free(why);
    }
    char *vl = r.bad ? NULL : get_str(&r);
    if (vl) { snprintf(p->val_labels, sizeof p->val_labels, "%s", vl); free(vl); }
    if (r.bad) { prep_plan_free(p); return -1; }
    return 0;
}
