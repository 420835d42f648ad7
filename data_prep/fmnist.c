/* `fmnist`: Fashion-MNIST IDX files (Debian's dataset-fashion-mnist) -> class folders of
 * grayscale JPEGs, so that the built-in demo goes through the same JPEG path as ImageNet.
 * train/ comes from the 60k training set, val/ (class folders too) from the 10k test set. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <turbojpeg.h>
#include <zlib.h>
#include "prep.h"

static const char *const fm_class[10] = {"0_T-shirt-top", "1_Trouser", "2_Pullover", "3_Dress", "4_Coat",
                                         "5_Sandal", "6_Shirt", "7_Sneaker", "8_Bag", "9_Ankle-boot"};

/* Whole gzip file into memory; IDX files are at most 47 MB uncompressed. */
static int gunzip(const char *path, unsigned char **out, size_t *n) {
    gzFile f = gzopen(path, "rb");
    if (!f) { prep_err("%s: %s", path, errno ? strerror(errno) : "cannot open"); return -1; }
    size_t cap = 1 << 20, len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) { gzclose(f); prep_err("%s: out of memory", path); return -1; }
        if (len == cap) {
            if (cap >= (size_t)1 << 30) { free(buf); gzclose(f); prep_err("%s: larger than 1 GiB uncompressed: not an IDX file", path); return -1; }
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; continue; }
            buf = nb;
        }
        int r = gzread(f, buf + len, (unsigned)(cap - len));
        if (r < 0) { int e; const char *msg = gzerror(f, &e); prep_err("%s: %s", path, msg); free(buf); gzclose(f); return -1; }
        if (r == 0) break;
        len += (size_t)r;
    }
    int eof_ok = gzclose(f) == Z_OK;
    if (!eof_ok) { prep_err("%s: truncated or corrupt gzip data", path); free(buf); return -1; }
    *out = buf; *n = len;
    return 0;
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

typedef struct { unsigned char *img, *lab; size_t n; int rows, cols; } idx_set;

static int load_set(const char *dir, const char *stem, idx_set *s) {
    char pi[PATH_MAX], pl[PATH_MAX];
    snprintf(pi, sizeof pi, "%s/%s-images-idx3-ubyte.gz", dir, stem);
    snprintf(pl, sizeof pl, "%s/%s-labels-idx1-ubyte.gz", dir, stem);
    size_t ni, nl;
    memset(s, 0, sizeof *s);
    if (gunzip(pi, &s->img, &ni)) return -1;
    if (gunzip(pl, &s->lab, &nl)) return -1;
    if (ni < 16 || be32(s->img) != 0x803) { prep_err("%s: not an IDX image file (magic 0x%08x, expected 0x00000803)", pi, ni >= 4 ? be32(s->img) : 0); return -1; }
    if (nl < 8 || be32(s->lab) != 0x801) { prep_err("%s: not an IDX label file (magic 0x%08x, expected 0x00000801)", pl, nl >= 4 ? be32(s->lab) : 0); return -1; }
    uint32_t n = be32(s->img + 4), r = be32(s->img + 8), c = be32(s->img + 12);
    if (!r || !c || r > 4096 || c > 4096) { prep_err("%s: image size %ux%u is not plausible", pi, r, c); return -1; }
    if (ni != 16 + (size_t)n * r * c) { prep_err("%s: %zu bytes, header promises %u images of %ux%u (truncated?)", pi, ni, n, r, c); return -1; }
    if (be32(s->lab + 4) != n || nl != 8 + (size_t)n) { prep_err("%s: %u labels in %zu bytes, %s has %u images", pl, be32(s->lab + 4), nl, pi, n); return -1; }
    for (uint32_t i = 0; i < n; i++)
        if (s->lab[8 + i] > 9) { prep_err("%s: label %u of image %u is not a Fashion-MNIST class (0..9)", pl, s->lab[8 + i], i); return -1; }
    s->n = n; s->rows = (int)r; s->cols = (int)c;
    return 0;
}

/* Our own earlier output (<split>_NNNNN.jpg) goes first, so a smaller --limit leaves no extras. */
static void clear_ours(const char *dir, const char *split) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    size_t pl = strlen(split);
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (strncmp(nm, split, pl) || nm[pl] != '_' || strlen(nm) != pl + 10 || strcmp(nm + pl + 6, ".jpg")) continue;
        char full[PATH_MAX + 300];
        snprintf(full, sizeof full, "%s/%s", dir, nm);
        unlink(full);
    }
    closedir(d);
}

static int write_split(const prep_fmnist_opts *o, const idx_set *s, int split, size_t n) {
    char dir[PATH_MAX];
    for (int c = 0; c < 10; c++) {
        snprintf(dir, sizeof dir, "%s/%s/%s", o->out, prep_split_name[split], fm_class[c]);
        if (file_mkdirs(dir)) { prep_err("--out %s: cannot create %s: %s", o->out, dir, strerror(errno)); return -1; }
        clear_ours(dir, prep_split_name[split]);
    }
    int failed = 0;
    int nt = o->threads > 0 ? o->threads : omp_get_max_threads();
    #pragma omp parallel num_threads(nt)
    {
        tjhandle tj = tjInitCompress();
        unsigned char *jpg = NULL;
        unsigned long cap = 0;
        if (tj) cap = tjBufSize(s->cols, s->rows, TJSAMP_GRAY);
        if (tj && cap) jpg = tjAlloc((int)cap);
        if (!tj || !jpg) {
            #pragma omp critical(fm_err)
            {
                if (!failed) prep_err("cannot start the JPEG encoder");
                #pragma omp atomic write
                failed = 1;
            }
        }
        #pragma omp for schedule(dynamic, 64)
        for (size_t i = 0; i < n; i++) {
            int stop;
            #pragma omp atomic read
            stop = failed;
            if (stop || !jpg) continue;
            unsigned long len = cap;
            const unsigned char *px = s->img + 16 + i * (size_t)s->rows * s->cols;
            char path[PATH_MAX], tmp[PATH_MAX + 128], why[PATH_MAX + 128];
            snprintf(path, sizeof path, "%s/%s/%s/%s_%05zu.jpg", o->out, prep_split_name[split], fm_class[s->lab[8 + i]],
                     prep_split_name[split], i);
            int rc = tjCompress2(tj, px, s->cols, 0, s->rows, TJPF_GRAY, &jpg, &len, TJSAMP_GRAY, o->quality,
                                 TJFLAG_NOREALLOC | TJFLAG_ACCURATEDCT);
            if (rc) snprintf(why, sizeof why, "%s: JPEG encoding failed: %s", path, tjGetErrorStr2(tj));
            else {
                /* Renamed into place, but not fsynced one by one: 70k fsyncs would dominate;
                 * the directories are synced at the end. */
                file_tmp_name(path, tmp, sizeof tmp);
                FILE *f = fopen(tmp, "wb");
                if (!f || fwrite(jpg, 1, len, f) != len) rc = -1;
                if (f && fclose(f)) rc = -1;
                if (!rc && rename(tmp, path)) rc = -1;
                if (rc) { snprintf(why, sizeof why, "%s: %s", path, strerror(errno)); unlink(tmp); }
            }
            if (rc) {
                #pragma omp critical(fm_err)
                {
                    if (!failed) prep_err("%s", why);
                    #pragma omp atomic write
                    failed = 1;
                }
            }
        }
        if (jpg) tjFree(jpg);
        if (tj) tjDestroy(tj);
    }
    for (int c = 0; c < 10 && !failed; c++) {
        snprintf(dir, sizeof dir, "%s/%s/%s", o->out, prep_split_name[split], fm_class[c]);
        if (file_fsync_dir(dir)) { prep_err("%s: fsync: %s", dir, strerror(errno)); failed = 1; }
    }
    return failed ? -1 : 0;
}

int prep_fmnist(const prep_fmnist_opts *o) {
    idx_set tr, te;
    int rc = 0;
    memset(&te, 0, sizeof te);
    if (load_set(o->src, "train", &tr) || load_set(o->src, "t10k", &te)) rc = -1;
    size_t ntr = 0, nte = 0;
    if (!rc) {
        ntr = o->limit >= 0 && (size_t)o->limit < tr.n ? (size_t)o->limit : tr.n;
        nte = o->limit >= 0 && (size_t)o->limit < te.n ? (size_t)o->limit : te.n;
        if (file_mkdirs(o->out)) { prep_err("--out %s: %s", o->out, strerror(errno)); rc = -1; }
    }
    if (!rc) rc = write_split(o, &tr, PREP_TRAIN, ntr);
    if (!rc) rc = write_split(o, &te, PREP_VAL, nte);
    if (!rc) prep_err("wrote %zu train + %zu val %dx%d grayscale JPEGs (quality %d) in 10 class folders under %s",
                      ntr, nte, tr.cols, tr.rows, o->quality, o->out);
    free(tr.img); free(tr.lab); free(te.img); free(te.lab);
    return rc ? 1 : 0;
}
