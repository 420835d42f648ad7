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

void featset_free(featset_t *fs) {
    free(fs->cls); free(fs->mean); free(fs->labels);
    memset(fs, 0, sizeof *fs);
}

const float *featset_rows(const featset_t *fs, const char *kind) {
    if (!strcmp(kind, "cls")) return fs->cls;
    if (!strcmp(kind, "mean")) return fs->mean;
    return NULL;
}

static hid_t create_file(const char *tmp, long N, int D, int num_classes, const char *split, const char *source, long step,
                         hid_t *dc, hid_t *dm, hid_t *dl) {
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    *dc = *dm = *dl = -1;
    if (f < 0) return -1;
    hsize_t d2[2] = {(hsize_t)N, (hsize_t)D}, d1[1] = {(hsize_t)N};
    hid_t s2 = H5Screate_simple(2, d2, NULL), s1 = H5Screate_simple(1, d1, NULL);
    *dc = H5Dcreate2(f, "cls", H5T_IEEE_F32LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    *dm = H5Dcreate2(f, "mean", H5T_IEEE_F32LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    *dl = H5Dcreate2(f, "labels", H5T_STD_I32LE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(s2); H5Sclose(s1);
    int bad = *dc < 0 || *dm < 0 || *dl < 0 || write_attr_str(f, "format", FEATFILE_FORMAT) ||
              write_attr_i64(f, "format_version", FEATFILE_VERSION) || write_attr_str(f, "split", split) ||
              write_attr_i64(f, "num_classes", num_classes) || write_attr_str(f, "source", source ? source : "") ||
              write_attr_i64(f, "step", step);
    if (bad) {
        if (*dc >= 0) H5Dclose(*dc);
        if (*dm >= 0) H5Dclose(*dm);
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
    const int D = fs->dim;
    const long N = fs->total;
    /* rank 0 receives and writes one chunk of rows at a time: memory stays bounded however
     * large the split (ImageNet train at width 768 would be 7.8 GB at once) */
    long R = featfile_chunk(D);
    char tmp[4200];
    file_tmp_name(path, tmp, sizeof tmp);
    hid_t f = -1, dc = -1, dm = -1, dl = -1;
    float *bc = NULL, *bm = NULL;
    int32_t *bl = NULL;
    int bad = 0;
    H5E_auto2_t efn = NULL;
    void *edata = NULL;
    if (rank == 0) {
        bc = malloc(sizeof(float) * (size_t)R * D);
        bm = malloc(sizeof(float) * (size_t)R * D);
        bl = malloc(sizeof(int32_t) * (size_t)R);
        shards_hdf5_lock();
        H5Eget_auto2(H5E_DEFAULT, &efn, &edata);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        f = create_file(tmp, N, D, fs->num_classes, split, source, step, &dc, &dm, &dl);
        shards_hdf5_unlock();
        if (f < 0 || !bc || !bm || !bl) {
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
                    MPI_Send(fs->cls + o * D, c * D, MPI_FLOAT, 0, 1, comm);
                    MPI_Send(fs->mean + o * D, c * D, MPI_FLOAT, 0, 2, comm);
                    MPI_Send(fs->labels + o, c, MPI_INT32_T, 0, 3, comm);
                } else if (rank == 0) {
                    const float *pc = fs->cls + o * D, *pm = fs->mean + o * D;
                    const int32_t *pl = fs->labels + o;
                    if (r != 0) {
                        MPI_Recv(bc, c * D, MPI_FLOAT, r, 1, comm, MPI_STATUS_IGNORE);
                        MPI_Recv(bm, c * D, MPI_FLOAT, r, 2, comm, MPI_STATUS_IGNORE);
                        MPI_Recv(bl, c, MPI_INT32_T, r, 3, comm, MPI_STATUS_IGNORE);
                        pc = bc; pm = bm; pl = bl;
                    }
                    shards_hdf5_lock();
                    /* after a failed write keep receiving, so no sender blocks */
                    bad = bad || write_rows(dc, H5T_NATIVE_FLOAT, lo + o, c, (hsize_t)D, 2, pc) ||
                          write_rows(dm, H5T_NATIVE_FLOAT, lo + o, c, (hsize_t)D, 2, pm) ||
                          write_rows(dl, H5T_NATIVE_INT32, lo + o, c, 1, 1, pl);
                    shards_hdf5_unlock();
                }
            }
        }
        if (rank == 0) {
            shards_hdf5_lock();
            H5Dclose(dc); H5Dclose(dm); H5Dclose(dl);
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
    free(bc); free(bm); free(bl);
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
    hid_t dc = -1, dm = -1, dl = -1;
    int rc = -1;
    char fmt[64];
    long long ver = 0, ncls = 0;
    hsize_t cdim[2] = {0, 0}, mdim[2] = {0, 0}, ldim[1] = {0};
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
    dc = open_dset(f, "cls", H5T_FLOAT, 2, cdim);
    dm = open_dset(f, "mean", H5T_FLOAT, 2, mdim);
    dl = open_dset(f, "labels", H5T_INTEGER, 1, ldim);
    if (dc < 0 || dm < 0 || dl < 0) {
        const char *which = dc < 0 ? "/cls" : dm < 0 ? "/mean" : "/labels";
        int code = dc < 0 ? (int)dc : dm < 0 ? (int)dm : (int)dl;
        const char *want = dc < 0 || dm < 0 ? "a 2-D float dataset" : "a 1-D integer dataset";
        if (code == -1) err_set(err, ERR_INPUT, "%s: %s is missing", path, which);
        else err_set(err, ERR_INPUT, "%s: %s must be %s", path, which, want);
        goto out;
    }
    if (cdim[0] != mdim[0] || cdim[1] != mdim[1]) {
        err_set(err, ERR_INPUT, "%s: /cls is [%llu,%llu] but /mean is [%llu,%llu]", path, (unsigned long long)cdim[0],
                 (unsigned long long)cdim[1], (unsigned long long)mdim[0], (unsigned long long)mdim[1]);
        goto out;
    }
    if (ldim[0] != cdim[0]) {
        err_set(err, ERR_INPUT, "%s: labels do not match the features: /labels has %llu entries but /cls has %llu rows",
                 path, (unsigned long long)ldim[0], (unsigned long long)cdim[0]);
        goto out;
    }
    if (cdim[1] < 1 || cdim[1] > 65536) { err_set(err, ERR_INPUT, "%s: feature width %llu out of range", path, (unsigned long long)cdim[1]); goto out; }
    long N = (long)cdim[0];
    fs->total = N;
    fs->dim = (int)cdim[1];
    fs->num_classes = (int)ncls;
    fs->lo = slice_lo(N, rank, world);
    fs->n = slice_lo(N, rank + 1, world) - fs->lo;
    size_t rows = (size_t)(fs->n > 0 ? fs->n : 1);
    fs->cls = malloc(sizeof(float) * rows * fs->dim);
    fs->mean = malloc(sizeof(float) * rows * fs->dim);
    fs->labels = malloc(sizeof(int32_t) * rows);
    if (!fs->cls || !fs->mean || !fs->labels) { err_set(err, ERR_RUNTIME, "%s: out of memory for %ld rows", path, fs->n); goto out; }
    if (read_rows(dc, H5T_NATIVE_FLOAT, fs->lo, fs->n, cdim[1], 2, fs->cls) ||
        read_rows(dm, H5T_NATIVE_FLOAT, fs->lo, fs->n, cdim[1], 2, fs->mean) ||
        read_rows(dl, H5T_NATIVE_INT32, fs->lo, fs->n, 1, 1, fs->labels)) {
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
    if (dc >= 0) H5Dclose(dc);
    if (dm >= 0) H5Dclose(dm);
    if (dl >= 0) H5Dclose(dl);
    if (f >= 0) H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, efn, edata);
    shards_hdf5_unlock();
    if (rc) featset_free(fs);
    return rc;
}
