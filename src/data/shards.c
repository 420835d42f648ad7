/* Shard discovery, validation and reads; see include/semaim/shards.h. */
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include "core/buf.h"
#include <unistd.h>
#include "semaim/shards.h"

/* Recursive so that code already holding it may call shards_scan. */
static pthread_mutex_t hdf5_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
void shards_hdf5_lock(void) { pthread_mutex_lock(&hdf5_mu); }
void shards_hdf5_unlock(void) { pthread_mutex_unlock(&hdf5_mu); }

/* Bad data: the checks below chain as `e = fail(...)` (the message, NULL = fine). */
#define fail(err, ...) err_say(err, ERR_INPUT, __VA_ARGS__)

/* HDF5 prints its error stack to stderr by default; we report one line ourselves instead. */
typedef struct { H5E_auto2_t fn; void *data; } quiet_t;
static quiet_t quiet_begin(void) {
    quiet_t q;
    H5Eget_auto2(H5E_DEFAULT, &q.fn, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return q;
}
static void quiet_end(quiet_t q) { H5Eset_auto2(H5E_DEFAULT, q.fn, q.data); }

/* Read-only open without file locking: shared and network file systems often refuse flock,
 * and nobody writes a shard while we train on it. */
static hid_t open_ro(const char *path) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    H5Pset_file_locking(fapl, 0, 1);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return f;
}

/* Checks one dataset: integer of the given byte size/sign (size 0: any), rank nd; fills dims. */
static const char *check_dset(err_t *err, const char *path, hid_t f, const char *name,
                              int size, int want_unsigned, int nd, hsize_t *dims, hid_t *dset_out) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0)
        return fail(err, "shard %s: no %s dataset", path, name);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return fail(err, "shard %s: %s is not a readable dataset", path, name);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    int ok_type = t >= 0 && H5Tget_class(t) == H5T_INTEGER && (size == 0 || (int)H5Tget_size(t) == size) &&
                  (!want_unsigned || H5Tget_sign(t) == H5T_SGN_NONE);
    int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (rank == nd) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    const char *e = NULL;
    if (!ok_type)
        e = fail(err, "shard %s: %s has the wrong element type (want %s)", path, name,
                 want_unsigned ? "uint8" : "an integer type");
    else if (rank != nd)
        e = fail(err, "shard %s: %s has %d dimensions, want %d", path, name, rank, nd);
    if (e || !dset_out) H5Dclose(d);
    else *dset_out = d;
    return e;
}

/* Optional integer root attribute: 1 if present (value in *v), 0 if absent, −1 if unreadable. */
static int attr_int(hid_t f, const char *name, long *v) {
    if (H5Aexists(f, name) <= 0) return 0;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1;
    long long x = 0;
    int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Sget_simple_extent_npoints(sp) == 1 &&
             H5Aread(a, H5T_NATIVE_LLONG, &x) >= 0;
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    *v = (long)x;
    return ok ? 1 : -1;
}

/* Optional string root attribute: 1 if present (in buf), 0 if absent, −1 if unreadable. */
static int attr_str(hid_t f, const char *name, char *buf, size_t len) {
    if (H5Aexists(f, name) <= 0) return 0;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
    int ok = t >= 0 && H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) && H5Tget_size(t) < len;
    memset(buf, 0, len);
    if (ok) ok = H5Aread(a, t, buf) >= 0;
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return ok ? 1 : -1;
}

/* The root attributes the loader relies on when present (data_prep writes them; the loader
 * works without): format_version, store naming the layout, shard_index / shard_count agreeing
 * with the file name, num_classes (−1 if absent). */
static const char *check_attrs(err_t *err, const char *path, hid_t f, int index, int count, int jpeg, long *ncls) {
    long v;
    int r;
    char st[16];
    if ((r = attr_int(f, "format_version", &v)) < 0 || (r && (v < 1 || v > SHARDS_FORMAT_VERSION)))
        return r < 0 ? fail(err, "shard %s: unreadable format_version attribute", path)
                     : fail(err, "shard %s: format_version %ld, this loader reads versions 1 to %d", path, v, SHARDS_FORMAT_VERSION);
    if (r && v == 1 && jpeg) return fail(err, "shard %s: format_version 1 with a /jpeg dataset (version 1 is raw only)", path);
    if ((r = attr_str(f, "store", st, sizeof st)) < 0 || (r && strcmp(st, jpeg ? "jpeg" : "raw")))
        return fail(err, "shard %s: store attribute %s but the datasets are the %s layout", path, r < 0 ? "unreadable" : st,
                    jpeg ? "jpeg" : "raw");
    if ((r = attr_int(f, "shard_index", &v)) < 0 || (r && v != index))
        return fail(err, "shard %s: shard_index attribute %ld disagrees with the file name (%d)", path, r < 0 ? -1 : v, index);
    if ((r = attr_int(f, "shard_count", &v)) < 0 || (r && v != count))
        return fail(err, "shard %s: shard_count attribute %ld disagrees with the file name (%d)", path, r < 0 ? -1 : v, count);
    if ((r = attr_int(f, "num_classes", &v)) < 0 || (r && v < 1))
        return fail(err, "shard %s: bad num_classes attribute", path);
    *ncls = r ? v : -1;
    return NULL;
}

/* A contiguous dataset whose data was never (fully) written would read as zeros. */
static const char *check_stored(err_t *err, const char *path, hid_t d, const char *name, hsize_t need) {
    hid_t dcpl = H5Dget_create_plist(d);
    hsize_t have = H5Dget_storage_size(d);
    const char *e = NULL;
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS && have < need)
        e = fail(err, "shard %s: %s stores %llu of %llu bytes (incomplete write)", path, name, (unsigned long long)have,
                 (unsigned long long)need);
    if (dcpl >= 0) H5Pclose(dcpl);
    return e;
}

/* A whole 1-D integer dataset of n elements as mtype into a new buffer (NULL on failure). */
static void *read_vec(hid_t f, const char *name, hid_t mtype, size_t esize, long n) {
    void *buf = malloc(esize * (size_t)(n > 0 ? n : 1));
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (!buf || d < 0 || (n > 0 && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)) { free(buf); buf = NULL; }
    if (d >= 0) H5Dclose(d);
    return buf;
}

/* The jpeg layout of a shard with n images: offsets from 0 increasing to the byte count of
 * /jpeg (fully stored), sizes 1..65535. The offsets and sizes when wanted (off_out NULL:
 * checked and freed); the largest width and height in *mw, *mh. */
static const char *check_jpeg(err_t *err, const char *path, hid_t f, long n, uint64_t **off_out, int32_t **w_out,
                              int32_t **h_out, int *mw, int *mh) {
    hsize_t dj[1], dof[1], dw[1], dh[1];
    hid_t dset = -1;
    const char *e = check_dset(err, path, f, "/jpeg", 1, 1, 1, dj, &dset);
    if (!e) e = check_dset(err, path, f, "/offsets", 0, 0, 1, dof, NULL);
    if (!e) e = check_dset(err, path, f, "/widths", 0, 0, 1, dw, NULL);
    if (!e) e = check_dset(err, path, f, "/heights", 0, 0, 1, dh, NULL);
    if (!e && ((long)dof[0] != n + 1 || (long)dw[0] != n || (long)dh[0] != n))
        e = fail(err, "shard %s: /offsets has %llu entries, /widths %llu and /heights %llu, want %ld, %ld and %ld "
                 "(/labels has %ld)", path, (unsigned long long)dof[0], (unsigned long long)dw[0], (unsigned long long)dh[0],
                 n + 1, n, n, n);
    uint64_t *off = NULL;
    int32_t *w = NULL, *h = NULL;
    if (!e) {
        off = read_vec(f, "/offsets", H5T_NATIVE_UINT64, 8, n + 1);
        w = read_vec(f, "/widths", H5T_NATIVE_INT32, 4, n);
        h = read_vec(f, "/heights", H5T_NATIVE_INT32, 4, n);
        if (!off || !w || !h) e = fail(err, "shard %s: cannot read /offsets, /widths or /heights", path);
    }
    if (!e && off[0] != 0) e = fail(err, "shard %s: /offsets[0] is %llu, not 0", path, (unsigned long long)off[0]);
    for (long i = 0; !e && i < n; i++)
        if (off[i + 1] <= off[i]) e = fail(err, "shard %s: /offsets[%ld..%ld] do not increase", path, i, i + 1);
        else if (w[i] < 1 || h[i] < 1 || w[i] > 65535 || h[i] > 65535)
            e = fail(err, "shard %s: image %ld has size %dx%d", path, i, w[i], h[i]);
    if (!e && off[n] != dj[0])
        e = fail(err, "shard %s: /offsets ends at byte %llu but /jpeg holds %llu", path, (unsigned long long)off[n],
                 (unsigned long long)dj[0]);
    if (!e) e = check_stored(err, path, dset, "/jpeg", dj[0]);
    if (dset >= 0) H5Dclose(dset);
    *mw = *mh = 0;
    for (long i = 0; !e && i < n; i++) {
        if (w[i] > *mw) *mw = w[i];
        if (h[i] > *mh) *mh = h[i];
    }
    if (e || !off_out) { free(off); free(w); free(h); }
    else { *off_out = off; *w_out = w; *h_out = h; }
    return e;
}

static long long mtime_ns(const struct stat *st) { return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec; }

/* Opens a shard and checks its attributes, /labels [N] and either /images uint8 [N,H,W,3]
 * fully stored (raw: *H, *W) or the jpeg layout (*H = *W = 0; the largest image in *mh, *mw). */
static const char *inspect(err_t *err, const char *path, int index, int count, long *n, int *jpeg, int *H, int *W,
                           int *mh, int *mw, long *ncls, struct stat *seen) {
    struct stat st;
    if (stat(path, &st) != 0) return fail(err, "shard %s: %s", path, strerror(errno));
    *seen = st;
    hid_t f = open_ro(path);
    if (f < 0) return fail(err, "shard %s: cannot open as HDF5 (truncated, corrupt or not HDF5)", path);
    hsize_t di[4], dl[1];
    hid_t img = -1;
    *jpeg = H5Lexists(f, "/jpeg", H5P_DEFAULT) > 0;
    const char *e = check_attrs(err, path, f, index, count, *jpeg, ncls);
    if (!e && *jpeg) {
        e = check_dset(err, path, f, "/labels", 0, 0, 1, dl, NULL);
        if (!e) e = check_jpeg(err, path, f, (long)dl[0], NULL, NULL, NULL, mw, mh);
        *H = *W = 0;
    }
    if (!e && !*jpeg) {
        e = check_dset(err, path, f, "/images", 1, 1, 4, di, &img);
        if (!e && di[3] != 3)
            e = fail(err, "shard %s: /images is [%llu,%llu,%llu,%llu], want [N,H,W,3] RGB", path,
                     (unsigned long long)di[0], (unsigned long long)di[1], (unsigned long long)di[2], (unsigned long long)di[3]);
        if (!e && (di[1] == 0 || di[2] == 0 || di[1] > 65536 || di[2] > 65536))
            e = fail(err, "shard %s: /images has image size %llux%llu", path,
                     (unsigned long long)di[1], (unsigned long long)di[2]);
        if (!e) e = check_stored(err, path, img, "/images", di[0] * di[1] * di[2] * 3);
        if (img >= 0) H5Dclose(img);
        if (!e) e = check_dset(err, path, f, "/labels", 0, 0, 1, dl, NULL);
        if (!e && dl[0] != di[0])
            e = fail(err, "shard %s: /labels has %llu entries but /images has %llu", path,
                     (unsigned long long)dl[0], (unsigned long long)di[0]);
        if (!e) { *H = *mh = (int)di[1]; *W = *mw = (int)di[2]; }
    }
    H5Fclose(f);
    if (e) return e;
    *n = (long)dl[0];
    return NULL;
}

/* "<split>-<digits>-of-<digits>.h5" → index, count; 0 if the name does not match. */
static int parse_name(const char *name, const char *split, int *k, int *m) {
    size_t ls = strlen(split);
    if (strncmp(name, split, ls) != 0 || name[ls] != '-') return 0;
    const char *p = name + ls + 1;
    char *end;
    if (*p < '0' || *p > '9') return 0;
    long a = strtol(p, &end, 10);
    if (strncmp(end, "-of-", 4) != 0) return 0;
    p = end + 4;
    if (*p < '0' || *p > '9') return 0;
    long b = strtol(p, &end, 10);
    if (strcmp(end, ".h5") != 0 || a < 0 || b < 1 || b > 1000000) return 0;
    *k = (int)(a > 2000000000 ? 2000000000 : a); *m = (int)b;
    return 1;
}

void shards_free(shard_set *s) {
    if (s->sh)
        for (int k = 0; k < s->count; k++) free(s->sh[k].path);
    free(s->sh);
    free(s->dir);
    memset(s, 0, sizeof *s);
}

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

int shards_scan(shard_set *s, const char *data_dir, const char *split, err_t *err) {
    memset(s, 0, sizeof *s);
    struct stat st;
    if (stat(data_dir, &st) != 0) { fail(err, "data path %s: %s", data_dir, strerror(errno)); return -1; }
    if (!S_ISDIR(st.st_mode)) { fail(err, "data path %s: not a directory", data_dir); return -1; }
    char *sub = join(data_dir, split);
    if (!sub) { fail(err, "data path %s: out of memory", data_dir); return -1; }
    if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode)) s->dir = sub;
    else { free(sub); s->dir = strdup(data_dir); }
    if (!s->dir) { fail(err, "data path %s: out of memory", data_dir); return -1; }

    const char *e = NULL;
    DIR *d = opendir(s->dir);
    if (!d) { e = fail(err, "data path %s: %s", s->dir, strerror(errno)); goto out; }
    int m = 0, found = 0;
    char first_name[256] = "";
    struct dirent *de;
    while (!e && (de = readdir(d))) {
        int k, mm;
        if (!parse_name(de->d_name, split, &k, &mm)) continue;
        if (!s->sh) {
            m = mm;
            snprintf(first_name, sizeof first_name, "%s", de->d_name);
            s->sh = calloc((size_t)m, sizeof *s->sh);
            if (!s->sh) { e = fail(err, "data path %s: out of memory for %d shards", s->dir, m); break; }
            s->count = m;
        }
        if (mm != m)
            e = fail(err, "data path %s: %s says %d shards but %s says %d", s->dir, de->d_name, mm, first_name, m);
        else if (k >= m)
            e = fail(err, "data path %s: %s has index %d, not below its count %d", s->dir, de->d_name, k, m);
        else if (s->sh[k].path)
            e = fail(err, "data path %s: %s and %s are both shard %d", s->dir, de->d_name, s->sh[k].path, k);
        else if (!(s->sh[k].path = join(s->dir, de->d_name)))
            e = fail(err, "data path %s: out of memory", s->dir);
        else { s->sh[k].index = k; found++; }
    }
    closedir(d);
    if (e) goto out;
    if (found == 0) { e = fail(err, "data path %s: no shards named %s-K-of-M.h5", s->dir, split); goto out; }
    if (found < m) {
        int k = 0;
        while (s->sh[k].path) k++;
        e = fail(err, "data path %s: %d of %d shards missing, first %s-%05d-of-%05d.h5", s->dir,
                 m - found, m, split, k, m);
        goto out;
    }
    shards_hdf5_lock();
    quiet_t q = quiet_begin();
    long total = 0, ncls0 = -1;
    int H0 = 0, W0 = 0, jpeg0 = 0, mh = 0, mw = 0;
    for (int k = 0; k < m && !e; k++) {
        long n = 0, ncls = -1;
        int H = 0, W = 0, jpeg = 0, sh = 0, sw = 0;
        struct stat st = {0};
        e = inspect(err, s->sh[k].path, k, m, &n, &jpeg, &H, &W, &sh, &sw, &ncls, &st);
        if (e) break;
        if (k > 0 && jpeg != jpeg0) {
            e = fail(err, "shard %s is a %s shard but %s is a %s shard", s->sh[k].path, jpeg ? "jpeg" : "raw", s->sh[0].path,
                     jpeg0 ? "jpeg" : "raw");
            break;
        }
        if (k > 0 && (H != H0 || W != W0)) {
            e = fail(err, "shard %s: images are %dx%d but %s has %dx%d", s->sh[k].path, H, W,
                     s->sh[0].path, H0, W0);
            break;
        }
        if (k > 0 && ncls != ncls0) {
            e = fail(err, "shard %s: num_classes %ld but %s has %ld", s->sh[k].path, ncls, s->sh[0].path, ncls0);
            break;
        }
        if (k == 0) { H0 = H; W0 = W; ncls0 = ncls; jpeg0 = jpeg; }
        if (sh > mh) mh = sh;
        if (sw > mw) mw = sw;
        s->sh[k].n = n; s->sh[k].first = total; total += n;
        s->sh[k].bytes = (long long)st.st_size; s->sh[k].mtime_ns = mtime_ns(&st);
    }
    quiet_end(q);
    shards_hdf5_unlock();
    if (!e && total == 0) e = fail(err, "data path %s: the %d shards hold no images", s->dir, m);
    if (!e) {
        s->total = total; s->H = H0; s->W = W0; s->jpeg = jpeg0; s->max_h = mh; s->max_w = mw;
        s->num_classes = ncls0 > 0 ? (int)ncls0 : 0;
    }
out:
    if (e) shards_free(s);
    return e ? -1 : 0;
}

int shards_locate(const shard_set *s, long g, long *local) {
    int lo = 0, hi = s->count - 1;
    while (lo < hi) {   /* last shard with first <= g (skips empty shards) */
        int mid = (lo + hi + 1) / 2;
        if (s->sh[mid].first <= g) lo = mid;
        else hi = mid - 1;
    }
    while (lo > 0 && s->sh[lo].n == 0) lo--;
    *local = g - s->sh[lo].first;
    return lo;
}

/* ---- reader ---- */

typedef struct {
    hid_t file, dset, space;   /* /images or /jpeg */
    int fd;          /* the same file, for fstat: is it still the one the scan saw? */
    int32_t *labels;
    uint64_t *off;             /* jpeg: offsets, widths, heights (kept, like the labels) */
    int32_t *w, *h;
    long last_use;   /* 0: not open */
} open_shard;

struct shard_reader {
    const shard_set *s;
    open_shard *o;
    int max_open, nopen;
    long clock;
};

shard_reader *shard_reader_new(const shard_set *s, int max_open) {
    shard_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->o = calloc((size_t)s->count, sizeof *r->o);
    if (!r->o) { free(r); return NULL; }
    r->s = s;
    r->max_open = max_open > 0 ? max_open : 1;
    return r;
}

static void close_one(shard_reader *r, int k) {
    open_shard *o = &r->o[k];
    if (!o->last_use) return;
    H5Sclose(o->space); H5Dclose(o->dset); H5Fclose(o->file);
    close(o->fd);
    o->last_use = 0;
    r->nopen--;
}

/* NULL while the file behind fd is the one the scan saw (same size and modification time,
 * still linked), else the reason. */
static const char *unchanged(const shard_info *si, int fd, err_t *err) {
    struct stat st;
    if (fstat(fd, &st)) return fail(err, "shard %s: cannot stat: %s", si->path, strerror(errno));
    if (st.st_nlink == 0) return fail(err, "shard %s: removed or replaced while the job reads it (the data must not change under a running job)", si->path);
    if ((long long)st.st_size != si->bytes || mtime_ns(&st) != si->mtime_ns)
        return fail(err, "shard %s: changed since the job started (%s differs from the scan's; the data must not change under "
                    "a running job)", si->path, (long long)st.st_size != si->bytes ? "its size" : "its modification time");
    return NULL;
}

static const char *open_one(shard_reader *r, int k, err_t *err) {
    const shard_info *si = &r->s->sh[k];
    open_shard *o = &r->o[k];
    if (r->nopen >= r->max_open) {
        int victim = -1;
        for (int j = 0; j < r->s->count; j++)
            if (r->o[j].last_use && (victim < 0 || r->o[j].last_use < r->o[victim].last_use)) victim = j;
        if (victim >= 0) close_one(r, victim);
    }
    int fd = open(si->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return fail(err, "shard %s: cannot open: %s (removed since the job started?)", si->path, strerror(errno));
    const char *changed = unchanged(si, fd, err);
    if (changed) { close(fd); return changed; }
    hid_t f = open_ro(si->path);
    if (f < 0) { close(fd); return fail(err, "shard %s: cannot open as HDF5 (removed, truncated or corrupt)", si->path); }
    const char *e = NULL;
    if (r->s->jpeg && !o->off) {
        /* checked again: the file may have changed since the scan */
        int mw, mh;
        e = check_jpeg(err, si->path, f, si->n, &o->off, &o->w, &o->h, &mw, &mh);
        if (!e && (mw > r->s->max_w || mh > r->s->max_h)) {
            e = fail(err, "shard %s: holds a %dx%d image, larger than any when the loader started", si->path, mw, mh);
            free(o->off); free(o->w); free(o->h);
            o->off = NULL; o->w = o->h = NULL;
        }
    }
    hid_t d = e ? -1 : H5Dopen2(f, r->s->jpeg ? "/jpeg" : "/images", H5P_DEFAULT), sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t dims[4] = {0, 0, 0, 0};
    int ok = r->s->jpeg ? sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, dims, NULL) == 1 &&
                              dims[0] == o->off[si->n]
                        : sp >= 0 && H5Sget_simple_extent_ndims(sp) == 4 && H5Sget_simple_extent_dims(sp, dims, NULL) == 4 &&
                              (long)dims[0] == si->n && (int)dims[1] == r->s->H && (int)dims[2] == r->s->W && dims[3] == 3;
    if (!e && !ok) e = fail(err, "shard %s: %s changed since the loader started", si->path, r->s->jpeg ? "/jpeg" : "/images");
    if (!e && !o->labels && si->n > 0) {
        int32_t *lab = read_vec(f, "/labels", H5T_NATIVE_INT32, sizeof(int32_t), si->n);
        if (!lab) e = fail(err, "shard %s: cannot read /labels", si->path);
        for (long i = 0; !e && i < si->n; i++)
            if (lab[i] < 0) e = fail(err, "shard %s: /labels[%ld] = %d is negative", si->path, i, lab[i]);
            else if (r->s->num_classes && lab[i] >= r->s->num_classes)
                e = fail(err, "shard %s: /labels[%ld] = %d is not below num_classes %d", si->path, i,
                         lab[i], r->s->num_classes);
        if (e) free(lab);
        else o->labels = lab;
    }
    if (e) {
        if (sp >= 0) H5Sclose(sp);
        if (d >= 0) H5Dclose(d);
        H5Fclose(f);
        close(fd);
        return e;
    }
    o->file = f; o->dset = d; o->space = sp; o->fd = fd;
    o->last_use = ++r->clock;
    r->nopen++;
    return NULL;
}

static void check_request(const shard_reader *r, int k, long local, long count, int jpeg) {
    if (k < 0 || k >= r->s->count || local < 0 || count < 1 || local + count > r->s->sh[k].n || r->s->jpeg != jpeg)
        ERR_ASSERT(0, "shard reader: bad request shard %d images %ld+%ld (%s read of a %s set)", k, local, count,
                   jpeg ? "jpeg" : "raw", r->s->jpeg ? "jpeg" : "raw");
}

/* The open shard k for a read of its images local..local+count−1 (opened if need be), or NULL
 * with the error. Caller has HDF5's messages quieted. */
static open_shard *use(shard_reader *r, int k, long local, long count, int jpeg, err_t *err) {
    check_request(r, k, local, count, jpeg);
    if (!r->o[k].last_use && open_one(r, k, err)) return NULL;
    r->o[k].last_use = ++r->clock;
    return &r->o[k];
}

/* One H5Dread of the nd-dimensional box start/cnt of o's dataset into dst: 0 or -1. */
static int read_box(open_shard *o, int nd, const hsize_t *start, const hsize_t *cnt, void *dst) {
    hid_t ms = H5Screate_simple(nd, cnt, NULL);
    int bad = ms < 0 || H5Sselect_hyperslab(o->space, H5S_SELECT_SET, start, NULL, cnt, NULL) < 0 ||
              H5Dread(o->dset, H5T_NATIVE_UINT8, ms, o->space, H5P_DEFAULT, dst) < 0;
    if (ms >= 0) H5Sclose(ms);
    return bad ? -1 : 0;
}

int shard_reader_read(shard_reader *r, int k, long local, long count, uint8_t *dst, int32_t *lab, err_t *err) {
    quiet_t q = quiet_begin();
    open_shard *o = use(r, k, local, count, 0, err);
    const char *e = o ? NULL : err->msg;
    hsize_t start[4] = {(hsize_t)local, 0, 0, 0}, cnt[4] = {(hsize_t)count, (hsize_t)r->s->H, (hsize_t)r->s->W, 3};
    if (o && read_box(o, 4, start, cnt, dst))
        e = fail(err, "shard %s: reading /images[%ld..%ld] failed", r->s->sh[k].path, local, local + count - 1);
    /* after the read: a change before or during it is seen here, before the images are used */
    if (!e) e = unchanged(&r->s->sh[k], o->fd, err);
    if (!e) memcpy(lab, o->labels + local, sizeof(int32_t) * (size_t)count);
    quiet_end(q);
    return e ? -1 : 0;
}

int shard_reader_read_jpeg(shard_reader *r, int k, long local, long count, uint8_t **buf, size_t *cap, size_t *used,
                           shard_jpeg *refs, int32_t *lab, err_t *err) {
    quiet_t q = quiet_begin();
    open_shard *o = use(r, k, local, count, 1, err);
    const char *e = o ? NULL : err->msg;
    uint64_t b0 = o ? o->off[local] : 0, nb = o ? o->off[local + count] - b0 : 0;
    if (!e && mem_grow(buf, cap, *used + (size_t)nb))
        e = err_say(err, ERR_RUNTIME, "loader: out of memory for %llu bytes of JPEG data", (unsigned long long)nb);
    hsize_t start[1] = {b0}, cnt[1] = {nb};
    if (!e && read_box(o, 1, start, cnt, *buf + *used))
        e = fail(err, "shard %s: reading /jpeg of images %ld..%ld failed", r->s->sh[k].path, local, local + count - 1);
    if (!e) e = unchanged(&r->s->sh[k], o->fd, err);
    for (long i = 0; !e && i < count; i++) {
        refs[i].at = *used + (size_t)(o->off[local + i] - b0);
        refs[i].len = (size_t)(o->off[local + i + 1] - o->off[local + i]);
        refs[i].w = o->w[local + i]; refs[i].h = o->h[local + i];
        lab[i] = o->labels[local + i];
    }
    if (!e) *used += (size_t)nb;
    quiet_end(q);
    return e ? -1 : 0;
}

void shard_reader_free(shard_reader *r) {
    if (!r) return;
    for (int k = 0; k < r->s->count; k++) {
        close_one(r, k);
        free(r->o[k].labels); free(r->o[k].off); free(r->o[k].w); free(r->o[k].h);
    }
    free(r->o);
    free(r);
}
