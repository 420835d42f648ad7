/* Features files (HDF5): one writer (rank 0, after a gather), one reader per rank reading
 * only its slice. Every HDF5 call holds shards_hdf5_lock(): a loader may run in the process. */
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/files.h"
#include "core/slice.h"
#include "semaim/featfile.h"
#include "semaim/shards.h"

#define FEATFILE_FORMAT "semaim features"

static int write_attr_str(hid_t f, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, t, v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp); H5Tclose(t);
    return ok ? 0 : -1;
}

static int write_attr_i64(hid_t f, const char *name, long long v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

/* Creates the file (datasets sized for N rows) and its attributes. Caller holds the HDF5 lock. */
static long chunk_rows = 0;
void featfile_set_chunk(long rows) { chunk_rows = rows > 0 ? rows : 0; }
long featfile_chunk(int D) {
    long r = chunk_rows ? chunk_rows : (16L << 20) / (2L * D + 1);
    return r > 0 ? r : 1;
}

const char *const featset_kinds[FEATSET_KINDS] = {"cls", "mean", "gap"};

/* The rows of readout k (featset_kinds[k]). */
static float **rows_of(featset_t *fs, int k) { return k == 0 ? &fs->cls : k == 1 ? &fs->mean : &fs->gap; }

int featset_alloc(featset_t *fs, long n, int dim) {
    size_t rows = (size_t)(n > 0 ? n : 1);
    int ok = 1;
    for (int k = 0; k < FEATSET_KINDS; k++) ok = (*rows_of(fs, k) = malloc(sizeof(float) * rows * dim)) && ok;
    fs->labels = malloc(sizeof(int32_t) * rows);
    if (ok && fs->labels) return 0;
    featset_free(fs);
    return -1;
}

void featset_free(featset_t *fs) {
    free(fs->cls); free(fs->mean); free(fs->gap); free(fs->pixels); free(fs->labels);
    memset(fs, 0, sizeof *fs);
}

const float *featset_rows(const featset_t *fs, const char *kind) {
    if (!strcmp(kind, FEATSET_PIXELS)) return fs->pixels;
    for (int k = 0; k < FEATSET_KINDS; k++)
        if (!strcmp(kind, featset_kinds[k])) return *rows_of((featset_t *)fs, k);
    return NULL;
}

int featset_kind_valid(const char *kind) {
    for (int k = 0; k < FEATSET_KINDS; k++)
        if (!strcmp(kind, featset_kinds[k])) return 1;
    return 0;
}

int featset_pair_rows(const featset_t *train, const featset_t *val, const char *kind, const float **tr,
                      const float **va, err_t *err) {
    if (!featset_kind_valid(kind) && strcmp(kind, FEATSET_PIXELS))
        return err_set(err, ERR_INPUT, "unknown feature kind '%s' (cls, mean or gap)", kind);
    *tr = featset_rows(train, kind);
    *va = featset_rows(val, kind);
    if (!*tr || !*va)
        return err_set(err, ERR_INPUT, "the %s features have no /%s rows (a features file written before it existed: "
                       "compute it again with semaim-eval features)", !*tr ? "train" : "val", kind);
    return 0;
}

static hid_t create_file(const char *tmp, long N, int D, int num_classes, const char *split, const char *source, long step,
                         hid_t *dk, hid_t *dl) {
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    for (int k = 0; k < FEATSET_KINDS; k++) dk[k] = -1;
    *dl = -1;
    if (f < 0) return -1;
    hsize_t d2[2] = {(hsize_t)N, (hsize_t)D}, d1[1] = {(hsize_t)N};
    hid_t s2 = H5Screate_simple(2, d2, NULL), s1 = H5Screate_simple(1, d1, NULL);
    int bad = 0;
    for (int k = 0; k < FEATSET_KINDS; k++)
        bad |= (dk[k] = H5Dcreate2(f, featset_kinds[k], H5T_IEEE_F32LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0;
    *dl = H5Dcreate2(f, "labels", H5T_STD_I32LE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(s2); H5Sclose(s1);
    bad = bad || *dl < 0 || write_attr_str(f, "format", FEATFILE_FORMAT) ||
          write_attr_i64(f, "format_version", FEATFILE_VERSION) || write_attr_str(f, "split", split) ||
          write_attr_i64(f, "num_classes", num_classes) || write_attr_str(f, "source", source ? source : "") ||
          write_attr_i64(f, "step", step);
    if (bad) {
        for (int k = 0; k < FEATSET_KINDS; k++) if (dk[k] >= 0) H5Dclose(dk[k]);
        if (*dl >= 0) H5Dclose(*dl);
        H5Fclose(f);
        return -1;
    }
    return f;
}

/* Writes rows [lo, lo+n) of a dataset with `cols` columns from buf. */
static int write_rows(hid_t d, hid_t mtype, long lo, long n, hsize_t cols, int nd, const void *buf) {
    if (n == 0) return 0;
    hsize_t start[2] = {(hsize_t)lo, 0}, count[2] = {(hsize_t)n, cols};
    hid_t fsp = H5Dget_space(d), msp = H5Screate_simple(nd, count, NULL);
    int ok = fsp >= 0 && msp >= 0 && H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Dwrite(d, mtype, msp, fsp, H5P_DEFAULT, buf) >= 0;
    if (fsp >= 0) H5Sclose(fsp);
    if (msp >= 0) H5Sclose(msp);
    return ok ? 0 : -1;
}

int featfile_write(const char *path, const featset_t *fs, const char *split, const char *source, long step,
                   MPI_Comm comm, err_t *err) {
    int rank, world;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &world);
    ERR_ASSERT(fs->cls && fs->mean && fs->gap, "featfile_write needs all %d readouts", FEATSET_KINDS);
    const int D = fs->dim;
    const long N = fs->total;
    /* rank 0 receives and writes one chunk of rows at a time: memory stays bounded however
     * large the split (ImageNet train at width 768 would be 7.8 GB at once) */
    long R = featfile_chunk(D);
    char tmp[4200];
    file_tmp_name(path, tmp, sizeof tmp);
    hid_t f = -1, dk[FEATSET_KINDS], dl = -1;
    float *bk[FEATSET_KINDS] = {NULL};
    int32_t *bl = NULL;
    int bad = 0;
    H5E_auto2_t efn = NULL;
    void *edata = NULL;
    if (rank == 0) {
        int oom = 0;
        for (int k = 0; k < FEATSET_KINDS; k++) oom |= !(bk[k] = malloc(sizeof(float) * (size_t)R * D));
        oom |= !(bl = malloc(sizeof(int32_t) * (size_t)R));
        shards_hdf5_lock();
        H5Eget_auto2(H5E_DEFAULT, &efn, &edata);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        f = create_file(tmp, N, D, fs->num_classes, split, source, step, dk, &dl);
        shards_hdf5_unlock();
        if (f < 0 || oom) {
            err_set(err, ERR_RUNTIME, "%s: cannot write the features file: %s", path,
                    f < 0 ? "cannot create its temporary (disk full or I/O error?)" : "out of memory");
            bad = 1;
        }
    }
    MPI_Bcast(&bad, 1, MPI_INT, 0, comm);
    if (!bad) {
        for (int r = 0; r < world; r++) {
            long lo = slice_lo(N, r, world), n = slice_lo(N, r + 1, world) - lo;
            for (long o = 0; o < n; o += R) {
                int c = (int)(n - o < R ? n - o : R);
                if (rank == r && r != 0) {
                    for (int k = 0; k < FEATSET_KINDS; k++)
                        MPI_Send(*rows_of((featset_t *)fs, k) + o * D, c * D, MPI_FLOAT, 0, 1 + k, comm);
                    MPI_Send(fs->labels + o, c, MPI_INT32_T, 0, 0, comm);
                } else if (rank == 0) {
                    const float *pk[FEATSET_KINDS];
                    const int32_t *pl = fs->labels + o;
                    for (int k = 0; k < FEATSET_KINDS; k++) {
                        pk[k] = *rows_of((featset_t *)fs, k) + o * D;
                        if (r != 0) {
                            MPI_Recv(bk[k], c * D, MPI_FLOAT, r, 1 + k, comm, MPI_STATUS_IGNORE);
                            pk[k] = bk[k];
                        }
                    }
                    if (r != 0) {
                        MPI_Recv(bl, c, MPI_INT32_T, r, 0, comm, MPI_STATUS_IGNORE);
                        pl = bl;
                    }
                    shards_hdf5_lock();
                    /* after a failed write keep receiving, so no sender blocks */
                    for (int k = 0; k < FEATSET_KINDS; k++)
                        bad = bad || write_rows(dk[k], H5T_NATIVE_FLOAT, lo + o, c, (hsize_t)D, 2, pk[k]);
                    bad = bad || write_rows(dl, H5T_NATIVE_INT32, lo + o, c, 1, 1, pl);
                    shards_hdf5_unlock();
                }
            }
        }
        if (rank == 0) {
            shards_hdf5_lock();
            for (int k = 0; k < FEATSET_KINDS; k++) H5Dclose(dk[k]);
            H5Dclose(dl);
            if (H5Fclose(f) < 0) bad = 1;
            shards_hdf5_unlock();
            if (bad) err_set(err, ERR_RUNTIME, "%s: cannot write the features file: HDF5 write failed (disk full or I/O error?)", path);
            else if (file_commit(tmp, path, err)) bad = 1;
        }
    }
    if (rank == 0) {
        if (bad) unlink(tmp);
        shards_hdf5_lock();
        H5Eset_auto2(H5E_DEFAULT, efn, edata);
        shards_hdf5_unlock();
    }
    MPI_Bcast(&bad, 1, MPI_INT, 0, comm);
    for (int k = 0; k < FEATSET_KINDS; k++) free(bk[k]);
    free(bl);
    return bad ? -1 : 0;
}

/* ------------------------------------------------------------------------------- reading */

/* Whether attribute a is one value of class cls: H5Aread writes every element, so an array
 * attribute would overrun the caller's one value. */
static int attr_one(hid_t a, H5T_class_t cls) {
    hid_t t = a >= 0 ? H5Aget_type(a) : -1, sp = a >= 0 ? H5Aget_space(a) : -1;
    int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == cls && H5Sget_simple_extent_npoints(sp) == 1;
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    return ok;
}

/* 1 present (value in *v), 0 absent, -1 unusable. */
static int attr_i64(hid_t f, const char *name, long long *v) {
    if (H5Aexists(f, name) <= 0) return 0;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    int ok = attr_one(a, H5T_INTEGER) && H5Aread(a, H5T_NATIVE_LLONG, v) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok ? 1 : -1;
}

static int attr_str(hid_t f, const char *name, char *buf, size_t len) {
    buf[0] = 0;
    if (H5Aexists(f, name) <= 0) return 0;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    int ok = attr_one(a, H5T_STRING) && !H5Tis_variable_str(t) && H5Tget_size(t) < len;
    if (ok) {
        hid_t mt = H5Tcopy(t);
        ok = H5Aread(a, mt, buf) >= 0;
        H5Tclose(mt);
        buf[H5Tget_size(t)] = 0;
    }
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return ok ? 1 : -1;
}

/* Opens dataset name, checks class/rank; fills dims. */
static hid_t open_dset(hid_t f, const char *name, H5T_class_t cls, int nd, hsize_t *dims) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == cls && H5Sget_simple_extent_ndims(sp) == nd;
    if (ok) H5Sget_simple_extent_dims(sp, dims, NULL);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (!ok) { H5Dclose(d); return -2; }
    return d;
}

static int read_rows(hid_t d, hid_t mtype, long lo, long n, hsize_t cols, int nd, void *dst) {
    if (n == 0) return 0;
    hsize_t start[2] = {(hsize_t)lo, 0}, count[2] = {(hsize_t)n, cols};
    hid_t fsp = H5Dget_space(d);
    hid_t msp = H5Screate_simple(nd, count, NULL);
    int ok = fsp >= 0 && msp >= 0 && H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
             H5Dread(d, mtype, msp, fsp, H5P_DEFAULT, dst) >= 0;
    if (fsp >= 0) H5Sclose(fsp);
    if (msp >= 0) H5Sclose(msp);
    return ok ? 0 : -1;
}

int featfile_read(const char *path, featset_t *fs, int rank, int world, err_t *err) {
    memset(fs, 0, sizeof *fs);
    if (access(path, R_OK)) { err_set(err, ERR_INPUT, "%s: cannot open features file: %s", path, strerror(errno)); return -1; }
    shards_hdf5_lock();
    H5E_auto2_t efn; void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efn, &edata);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_file_locking(fapl, 0, 1);   /* several ranks read at once; shared file systems refuse flock */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    hid_t dk[FEATSET_KINDS], dl = -1;
    for (int k = 0; k < FEATSET_KINDS; k++) dk[k] = -1;
    int rc = -1;
    char fmt[64];
    long long ver = 0, ncls = 0;
    hsize_t kdim[FEATSET_KINDS][2] = {{0, 0}}, ldim[1] = {0};
    if (f < 0) { err_set(err, ERR_INPUT, "%s: not an HDF5 file (or unreadable)", path); goto out; }
    if (attr_str(f, "format", fmt, sizeof fmt) != 1 || strcmp(fmt, FEATFILE_FORMAT)) {
        err_set(err, ERR_INPUT, "%s: not a semaim features file (format attribute missing or wrong)", path);
        goto out;
    }
    if (attr_i64(f, "format_version", &ver) != 1 || ver != FEATFILE_VERSION) {
        err_set(err, ERR_INPUT, "%s: features format_version %lld is not supported (this build reads %d)", path, ver,
                 FEATFILE_VERSION);
        goto out;
    }
    if (attr_i64(f, "num_classes", &ncls) < 0 || ncls < 0 || ncls > (1 << 30)) {
        err_set(err, ERR_INPUT, "%s: bad num_classes attribute", path);
        goto out;
    }
    for (int k = 0; k < FEATSET_KINDS; k++) {
        dk[k] = open_dset(f, featset_kinds[k], H5T_FLOAT, 2, kdim[k]);
        /* /gap came later: a file without it still serves cls and mean */
        if (dk[k] == -1 && k == 2) continue;
        if (dk[k] < 0) {
            if (dk[k] == -1) err_set(err, ERR_INPUT, "%s: /%s is missing", path, featset_kinds[k]);
            else err_set(err, ERR_INPUT, "%s: /%s must be a 2-D float dataset", path, featset_kinds[k]);
            goto out;
        }
        if (kdim[k][0] != kdim[0][0] || kdim[k][1] != kdim[0][1]) {
            err_set(err, ERR_INPUT, "%s: /cls is [%llu,%llu] but /%s is [%llu,%llu]", path, (unsigned long long)kdim[0][0],
                     (unsigned long long)kdim[0][1], featset_kinds[k], (unsigned long long)kdim[k][0],
                     (unsigned long long)kdim[k][1]);
            goto out;
        }
    }
    dl = open_dset(f, "labels", H5T_INTEGER, 1, ldim);
    if (dl < 0) {
        if (dl == -1) err_set(err, ERR_INPUT, "%s: /labels is missing", path);
        else err_set(err, ERR_INPUT, "%s: /labels must be a 1-D integer dataset", path);
        goto out;
    }
    if (ldim[0] != kdim[0][0]) {
        err_set(err, ERR_INPUT, "%s: labels do not match the features: /labels has %llu entries but /cls has %llu rows",
                 path, (unsigned long long)ldim[0], (unsigned long long)kdim[0][0]);
        goto out;
    }
    if (kdim[0][1] < 1 || kdim[0][1] > 65536) { err_set(err, ERR_INPUT, "%s: feature width %llu out of range", path, (unsigned long long)kdim[0][1]); goto out; }
    long N = (long)kdim[0][0];
    fs->total = N;
    fs->dim = (int)kdim[0][1];
    fs->num_classes = (int)ncls;
    fs->lo = slice_lo(N, rank, world);
    fs->n = slice_lo(N, rank + 1, world) - fs->lo;
    if (featset_alloc(fs, fs->n, fs->dim)) { err_set(err, ERR_RUNTIME, "%s: out of memory for %ld rows", path, fs->n); goto out; }
    if (dk[2] < 0) { free(fs->gap); fs->gap = NULL; }
    for (int k = 0; k < FEATSET_KINDS; k++)
        if (dk[k] >= 0 && read_rows(dk[k], H5T_NATIVE_FLOAT, fs->lo, fs->n, kdim[0][1], 2, *rows_of(fs, k))) {
            err_set(err, ERR_INPUT, "%s: read failed (truncated or corrupt file?)", path);
            goto out;
        }
    if (read_rows(dl, H5T_NATIVE_INT32, fs->lo, fs->n, 1, 1, fs->labels)) {
        err_set(err, ERR_INPUT, "%s: read failed (truncated or corrupt file?)", path);
        goto out;
    }
    for (long i = 0; i < fs->n; i++) {
        int32_t l = fs->labels[i];
        if (l < 0 || (ncls > 0 && l >= ncls)) {
            err_set(err, ERR_INPUT, "%s: label %d of image %ld is outside 0..%lld", path, l, fs->lo + i,
                     ncls > 0 ? ncls - 1 : (long long)INT32_MAX);
            goto out;
        }
    }
    rc = 0;
out:
    for (int k = 0; k < FEATSET_KINDS; k++) if (dk[k] >= 0) H5Dclose(dk[k]);
    if (dl >= 0) H5Dclose(dl);
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, efn, edata);
    shards_hdf5_unlock();
    if (rc) featset_free(fs);
    return rc;
}
