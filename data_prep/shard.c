/* HDF5 shards, --store raw: /images uint8 [N,S,S,3]; --store jpeg: /jpeg uint8 [total bytes],
 * /offsets uint64 [N+1], /widths and /heights int32 [N]; both: /labels int32 [N], /keys
 * fixed-length strings [N], root attributes. Contiguous, unfiltered, and without object
 * timestamps so that the same input gives the same bytes on every run and rank count.
 * Serial HDF5: main thread only. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hdf5.h>
#include "prep.h"

void prep_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* Every shard has a single writer under a private temporary name, so HDF5's file locks buy
 * nothing, and on parallel file systems without flock() they make H5Fcreate fail. */
static hid_t fapl_nolock(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#if H5_VERSION_GE(1, 10, 7)
    H5Pset_file_locking(fapl, 0, 1);
#endif
    return fapl;
}

static int attr_int(hid_t loc, const char *name, int v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int32_t x = v;
    herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT32, &x);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc < 0 ? -1 : 0;
}

static int attr_str(hid_t loc, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, json_utf8_valid(v) ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp); H5Tclose(t);
    return rc < 0 ? -1 : 0;
}

static hid_t dataset(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_layout(dcpl, H5D_CONTIGUOUS);
    H5Pset_obj_track_times(dcpl, 0);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);     /* every byte is written once anyway */
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);   /* fixed file layout, even for N = 0 */
    hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl); H5Sclose(sp);
    return d;
}

void prep_recipe_text(char *buf, size_t len, const prep_shard_info *si) {
    if (si->store == PREP_STORE_JPEG)
        snprintf(buf, len, "%s: JPEG bytes per image, the longer side at most %d px: baseline YCbCr JPEGs within it stored "
                 "as they are, others (larger, progressive, grayscale, CMYK, YCCK, or decoded with a warning) resized "
                 "with a %s filter (JPEG DCT prescale by 1/2, 1/4 or 1/8 while the decoded image still covers the target) "
                 "and encoded at quality %d", prep_split_name[si->split], si->max_side, "triangle (antialiased bilinear)",
                 si->quality);
    else
        snprintf(buf, len, "%s: shorter side resized to %d px with a %s filter (JPEG DCT prescale by 1/2, 1/4 or 1/8 "
                 "while the decoded image still covers the target), centre crop %dx%d (offsets rounded down), RGB uint8",
                 prep_split_name[si->split], si->resize, "triangle (antialiased bilinear)", si->size, si->size);
}

int prep_shard_write(const char *path, const prep_shard_info *si, size_t n, const prep_shard_data *px,
                     const int32_t *labels, const char *keys, size_t keylen, int crash, char *why, size_t wlen) {
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    hid_t fapl = fapl_nolock();
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl); H5Pclose(fapl);
    if (f < 0) { snprintf(why, wlen, "%s: cannot create HDF5 file (disk full or I/O error?)", path); return -1; }
    int rc = 0, jpeg = si->store == PREP_STORE_JPEG;
    char recipe[1024];
    prep_recipe_text(recipe, sizeof recipe, si);
    rc |= attr_str(f, "format", "semaim-prep shard");
    rc |= attr_int(f, "format_version", PREP_FORMAT_VERSION);
    rc |= attr_str(f, "store", prep_store_name[si->store]);
    rc |= attr_str(f, "split", prep_split_name[si->split]);
    rc |= attr_int(f, "shard_index", si->index);
    rc |= attr_int(f, "shard_count", si->count);
    if (jpeg) {
        rc |= attr_int(f, "max_side", si->max_side);
        rc |= attr_int(f, "quality", si->quality);
    } else {
        rc |= attr_int(f, "image_size", si->size);
        rc |= attr_int(f, "resize", si->resize);
        rc |= attr_str(f, "crop", "centre");
    }
    rc |= attr_str(f, "resize_filter", "triangle");
    rc |= attr_int(f, "num_classes", si->nclass);
    rc |= attr_str(f, "recipe", recipe);
    hsize_t idims[4] = {n, (hsize_t)si->size, (hsize_t)si->size, 3}, ldims[1] = {n}, odims[1] = {n + 1};
    hsize_t bdims[1] = {jpeg ? (hsize_t)px->offsets[n] : 0};
    hid_t di = jpeg ? dataset(f, "jpeg", H5T_STD_U8LE, 1, bdims) : dataset(f, "images", H5T_STD_U8LE, 4, idims);
    hid_t doff = jpeg ? dataset(f, "offsets", H5T_STD_U64LE, 1, odims) : 0;
    hid_t dw = jpeg ? dataset(f, "widths", H5T_STD_I32LE, 1, ldims) : 0;
    hid_t dh = jpeg ? dataset(f, "heights", H5T_STD_I32LE, 1, ldims) : 0;
    hid_t dl = dataset(f, "labels", H5T_STD_I32LE, 1, ldims);
    int utf8 = 1;
    for (size_t i = 0; i < n && utf8; i++) {
        char k[4096];
        size_t m = keylen < sizeof k - 1 ? keylen : sizeof k - 1;
        memcpy(k, keys + i * keylen, m); k[m] = 0;
        utf8 = json_utf8_valid(k);
    }
    hid_t kt = H5Tcopy(H5T_C_S1);
    H5Tset_size(kt, keylen ? keylen : 1);
    H5Tset_strpad(kt, H5T_STR_NULLPAD);
    H5Tset_cset(kt, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
    hid_t dk = dataset(f, "keys", kt, 1, ldims);
    if (di < 0 || dl < 0 || dk < 0 || doff < 0 || dw < 0 || dh < 0) rc = -1;
    if (!rc && jpeg) rc |= H5Dwrite(doff, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, px->offsets) < 0;
    if (!rc && n) {
        if (jpeg && bdims[0]) rc |= H5Dwrite(di, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, px->bytes) < 0;
        if (!jpeg) rc |= H5Dwrite(di, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, px->images) < 0;
        if (crash) raise(SIGKILL);   /* test hook: die with a half-written temporary */
        if (jpeg) {
            rc |= H5Dwrite(dw, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, px->widths) < 0;
            rc |= H5Dwrite(dh, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, px->heights) < 0;
        }
        rc |= H5Dwrite(dl, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) < 0;
        rc |= H5Dwrite(dk, kt, H5S_ALL, H5S_ALL, H5P_DEFAULT, keys) < 0;
    }
    hid_t all[] = {di, doff, dw, dh, dl, dk};
    for (int i = 0; i < 6; i++) if (all[i] > 0) H5Dclose(all[i]);
    H5Tclose(kt);
    if (H5Fclose(f) < 0) rc = -1;
    if (rc) snprintf(why, wlen, "%s: HDF5 write failed (disk full?)", path);
    return rc ? -1 : 0;
}

/* ---------------------------------------------------------------- reading back (verify) */
static int read_attr_int(hid_t f, const char *name, int *v) {
    if (H5Aexists(f, name) <= 0) return -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t sp = H5Aget_space(a);
    int ok = H5Sget_simple_extent_npoints(sp) == 1;
    int32_t x = 0;
    if (ok && H5Aread(a, H5T_NATIVE_INT32, &x) < 0) ok = 0;
    H5Sclose(sp); H5Aclose(a);
    *v = x;
    return ok ? 0 : -1;
}

static int read_attr_str(hid_t f, const char *name, char *buf, size_t len) {
    if (H5Aexists(f, name) <= 0) return -1;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    /* one string: H5Aread writes every element of an array attribute */
    int ok = H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) && H5Sget_simple_extent_npoints(sp) == 1;
    H5Sclose(sp);
    size_t sz = ok ? H5Tget_size(t) : 0;
    char *tmp = ok ? calloc(sz + 1, 1) : NULL;
    if (ok && (!tmp || H5Aread(a, t, tmp) < 0)) ok = 0;
    if (ok) snprintf(buf, len, "%s", tmp);
    free(tmp);
    H5Tclose(t); H5Aclose(a);
    return ok ? 0 : -1;
}

/* Checks one dataset's type class/size, shape, layout and filters. */
static int check_dset(hid_t f, const char *name, H5T_class_t cls, size_t tsize, int rank, const hsize_t *dims, char *why, size_t wlen) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) { snprintf(why, wlen, "no /%s dataset", name); return -1; }
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) { snprintf(why, wlen, "/%s cannot be opened", name); return -1; }
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d), pl = H5Dget_create_plist(d);
    int rc = 0;
    hsize_t got[8] = {0};
    int r = H5Sget_simple_extent_ndims(sp);
    if (H5Tget_class(t) != cls || (tsize && H5Tget_size(t) != tsize)) { snprintf(why, wlen, "/%s has the wrong element type", name); rc = -1; }
    else if (r != rank || H5Sget_simple_extent_dims(sp, got, NULL) < 0) { snprintf(why, wlen, "/%s has rank %d, expected %d", name, r, rank); rc = -1; }
    else {
        for (int i = 0; i < rank && !rc; i++)
            if (got[i] != dims[i]) {
                snprintf(why, wlen, "/%s dimension %d is %llu, expected %llu", name, i, (unsigned long long)got[i], (unsigned long long)dims[i]);
                rc = -1;
            }
    }
    if (!rc && H5Pget_layout(pl) != H5D_CONTIGUOUS) { snprintf(why, wlen, "/%s is not contiguous", name); rc = -1; }
    if (!rc && H5Pget_nfilters(pl) != 0) { snprintf(why, wlen, "/%s has filters", name); rc = -1; }
    H5Pclose(pl); H5Sclose(sp); H5Tclose(t); H5Dclose(d);
    return rc;
}

/* Reads a whole 1-D dataset of n elements of the given memory type into a new buffer. */
static void *read_all(hid_t f, const char *name, hid_t mtype, size_t n, size_t esize) {
    void *buf = malloc(n ? n * esize : 1);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (!buf || d < 0 || (n && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)) { free(buf); buf = NULL; }
    if (d >= 0) H5Dclose(d);
    return buf;
}

/* --store jpeg: offsets run from 0 up to the byte count, every image is a JPEG whose header
 * gives its recorded size within the cap, and is one the loader reads as it is. */
static int check_jpeg(hid_t f, const prep_shard_info *si, size_t n, char *why, size_t wlen) {
    hsize_t odims[1] = {n + 1}, ldims[1] = {n};
    if (check_dset(f, "offsets", H5T_INTEGER, 8, 1, odims, why, wlen) || check_dset(f, "widths", H5T_INTEGER, 4, 1, ldims, why, wlen) ||
        check_dset(f, "heights", H5T_INTEGER, 4, 1, ldims, why, wlen))
        return -1;
    uint64_t *off = read_all(f, "offsets", H5T_NATIVE_UINT64, n + 1, 8);
    int32_t *w = read_all(f, "widths", H5T_NATIVE_INT32, n, 4), *h = read_all(f, "heights", H5T_NATIVE_INT32, n, 4);
    uint8_t *bytes = NULL;
    prep_decoder *dec = NULL;
    int rc = -1;
    if (!off || !w || !h) { snprintf(why, wlen, "/offsets, /widths or /heights cannot be read"); goto out; }
    if (off[0] != 0) { snprintf(why, wlen, "/offsets[0] is %llu, not 0", (unsigned long long)off[0]); goto out; }
    for (size_t i = 0; i < n; i++)
        if (off[i + 1] <= off[i]) { snprintf(why, wlen, "/offsets[%zu..%zu] do not increase", i, i + 1); goto out; }
    hsize_t bdims[1] = {off[n]};
    if (check_dset(f, "jpeg", H5T_INTEGER, 1, 1, bdims, why, wlen)) goto out;
    if (!(bytes = read_all(f, "jpeg", H5T_NATIVE_UINT8, (size_t)off[n], 1)) || !(dec = prep_decoder_new())) {
        snprintf(why, wlen, "/jpeg cannot be read (or out of memory)");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        prep_img_info info;
        if (w[i] < 1 || h[i] < 1 || w[i] > si->max_side || h[i] > si->max_side) {
            snprintf(why, wlen, "image %zu is %dx%d, outside 1..%d", i, w[i], h[i], si->max_side);
            goto out;
        }
        if (prep_header(dec, bytes + off[i], (size_t)(off[i + 1] - off[i]), &info)) {
            snprintf(why, wlen, "image %zu: %s", i, info.msg);
            goto out;
        }
        if (info.w != w[i] || info.h != h[i]) {
            snprintf(why, wlen, "image %zu: its JPEG header says %dx%d, /widths and /heights %dx%d", i, info.w, info.h, w[i], h[i]);
            goto out;
        }
        if (info.progressive || !info.ycc) {
            snprintf(why, wlen, "image %zu is not a baseline YCbCr JPEG", i);
            goto out;
        }
    }
    rc = 0;
out:
    prep_decoder_free(dec);
    free(off); free(w); free(h); free(bytes);
    return rc;
}

int prep_shard_check(const char *path, const prep_shard_info *si, size_t n, char *why, size_t wlen) {
    hid_t fapl = fapl_nolock();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) { snprintf(why, wlen, "not a readable HDF5 file"); return -1; }
    int rc = 0, v, jpeg = si->store == PREP_STORE_JPEG;
    char s[256];
    struct { const char *name; int want; } ints[] = {
        {"format_version", si->version}, {"shard_index", si->index}, {"shard_count", si->count}, {"num_classes", si->nclass},
        {jpeg ? "max_side" : "image_size", jpeg ? si->max_side : si->size}, {jpeg ? "quality" : "resize", jpeg ? si->quality : si->resize}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && !rc; i++) {
        if (read_attr_int(f, ints[i].name, &v)) { snprintf(why, wlen, "attribute %s missing", ints[i].name); rc = -1; }
        else if (v != ints[i].want) { snprintf(why, wlen, "attribute %s is %d, manifest says %d", ints[i].name, v, ints[i].want); rc = -1; }
    }
    if (!rc && (read_attr_str(f, "split", s, sizeof s) || strcmp(s, prep_split_name[si->split]))) {
        snprintf(why, wlen, "attribute split is not '%s'", prep_split_name[si->split]); rc = -1;
    }
    if (!rc && (read_attr_str(f, "format", s, sizeof s) || strcmp(s, "semaim-prep shard"))) { snprintf(why, wlen, "attribute format is not 'semaim-prep shard'"); rc = -1; }
    if (!rc && si->version >= 2 && (read_attr_str(f, "store", s, sizeof s) || strcmp(s, prep_store_name[si->store]))) {
        snprintf(why, wlen, "attribute store is not '%s'", prep_store_name[si->store]); rc = -1;
    }
    hsize_t idims[4] = {n, (hsize_t)si->size, (hsize_t)si->size, 3}, ldims[1] = {n};
    if (!rc) rc = jpeg ? check_jpeg(f, si, n, why, wlen) : check_dset(f, "images", H5T_INTEGER, 1, 4, idims, why, wlen);
    if (!rc) rc = check_dset(f, "labels", H5T_INTEGER, 4, 1, ldims, why, wlen);
    if (!rc) rc = check_dset(f, "keys", H5T_STRING, 0, 1, ldims, why, wlen);
    if (!rc && n) {
        int32_t *lab = read_all(f, "labels", H5T_NATIVE_INT32, n, sizeof *lab);
        if (!lab) { snprintf(why, wlen, "/labels cannot be read"); rc = -1; }
        for (size_t i = 0; i < n && !rc; i++)
            if (lab[i] < 0 || lab[i] >= si->nclass) { snprintf(why, wlen, "/labels[%zu] = %d is outside 0..%d", i, lab[i], si->nclass - 1); rc = -1; }
        free(lab);
    }
    if (!rc && n) {
        hid_t d = H5Dopen2(f, "keys", H5P_DEFAULT);
        hid_t t = H5Dget_type(d);
        size_t kl = H5Tget_size(t);
        char *k = malloc(n * kl);
        if (!k || H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, k) < 0) { snprintf(why, wlen, "/keys cannot be read"); rc = -1; }
        for (size_t i = 0; i < n && !rc; i++)
            if (!k[i * kl]) { snprintf(why, wlen, "/keys[%zu] is empty", i); rc = -1; }
        free(k);
        H5Tclose(t); H5Dclose(d);
    }
    if (H5Fclose(f) < 0 && !rc) { snprintf(why, wlen, "HDF5 close failed"); rc = -1; }
    return rc;
}
