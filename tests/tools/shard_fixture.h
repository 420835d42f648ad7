/* Writes small shards in the data_prep format with the HDF5 C API, for the loader tests (so
 * they do not depend on data_prep): raw, /images uint8 [N,H,W,3] contiguous; jpeg, /jpeg with
 * /offsets, /widths, /heights (images encoded here with libjpeg); both /labels int32 [N],
 * /keys fixed-length strings, root attributes. Pixel and label values are functions of the
 * global sample id, so a test can check that the loader delivered the right sample. */
#ifndef SEMAIM_SHARD_FIXTURE_H
#define SEMAIM_SHARD_FIXTURE_H
#include <hdf5.h>
#include <jpeglib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static inline uint8_t fx_pixel(long g, int y, int x, int c) { return (uint8_t)((g * 37 + y * 5 + x * 3 + c * 71) & 255); }
#define FX_CLASSES 10
static inline int32_t fx_label(long g) { return (int32_t)((g * 13) % FX_CLASSES); }

static inline int fx_attr_int(hid_t f, const char *name, int n, const int *v) {
    hsize_t d = (hsize_t)n;
    hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &d, NULL), a = H5Acreate2(f, name, H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = H5Awrite(a, H5T_NATIVE_INT, v);
    H5Aclose(a); H5Sclose(sp);
    return rc;
}

/* Flaws to write on purpose. */
enum { FX_NEG_LABEL = 1, FX_BIG_LABEL = 2, FX_VERSION_NEXT = 4, FX_BAD_JPEG = 8, FX_BAD_SIZE = 16 };

/* Shard `index` of `count` holding global ids first..first+n−1, with the FX_* flaws in flags. */
static inline int fx_write_shard(const char *path, const char *split, int index, int count, long n,
                                 int H, int W, long first, int flags) {
    char tmp[8192];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    size_t img = (size_t)H * W * 3;
    uint8_t *pix = malloc(img * (size_t)(n > 0 ? n : 1));
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    char *keys = calloc((size_t)(n > 0 ? n : 1), 16);
    for (long i = 0; i < n; i++) {
        long g = first + i;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) pix[i * img + ((size_t)y * W + x) * 3 + c] = fx_pixel(g, y, x, c);
        lab[i] = fx_label(g);
        snprintf(keys + 16 * i, 16, "img-%010ld", g % 10000000000L);   /* ids stay far below; the bound tells the compiler the key fits */
    }
    if ((flags & FX_NEG_LABEL) && n > 0) lab[0] = -5;
    if ((flags & FX_BIG_LABEL) && n > 0) lab[n - 1] = FX_CLASSES;
    hsize_t di[4] = {(hsize_t)n, (hsize_t)H, (hsize_t)W, 3}, dl = (hsize_t)n;
    hid_t sp = H5Screate_simple(4, di, NULL);
    hid_t d = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, pix);
    H5Dclose(d); H5Sclose(sp);
    sp = H5Screate_simple(1, &dl, NULL);
    d = H5Dcreate2(f, "labels", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab);
    H5Dclose(d);
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 16);
    d = H5Dcreate2(f, "keys", st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc |= H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, keys);
    H5Dclose(d); H5Sclose(sp);
    int version = flags & FX_VERSION_NEXT ? 3 : 1, ncls = FX_CLASSES;
    rc |= fx_attr_int(f, "format_version", 1, &version);
    rc |= fx_attr_int(f, "shard_index", 1, &index);
    rc |= fx_attr_int(f, "shard_count", 1, &count);
    if (H == W) rc |= fx_attr_int(f, "image_size", 1, &H);
    rc |= fx_attr_int(f, "num_classes", 1, &ncls);
    H5Tset_size(st, strlen(split) + 1);
    sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "split", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    rc |= H5Awrite(a, st, split);
    H5Aclose(a); H5Sclose(sp); H5Tclose(st);
    H5Fclose(f);
    free(pix); free(lab); free(keys);
    if (rc < 0) return -1;
    return rename(tmp, path);
}

/* The jpeg fixture's image sizes: they vary with the id, so boxes of all shapes occur. */
static inline int fx_jw(long g) { return 9 + (int)((g * 7) % 41); }
static inline int fx_jh(long g) { return 7 + (int)((g * 11) % 37); }

static inline void fx_dset(hid_t f, const char *name, hid_t ftype, hid_t mtype, hsize_t n, const void *data, int *rc) {
    hid_t sp = H5Screate_simple(1, &n, NULL), d = H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (n) *rc |= H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d); H5Sclose(sp);
}

/* A jpeg shard (format_version 2, store "jpeg") of ids first..first+n−1: image g is the raw
 * fixture's pixels at size fx_jw(g) × fx_jh(g), quality 90. FX_BAD_JPEG: image 1's entropy
 * data is cut short; FX_BAD_SIZE: /widths of image 0 is off by one. */
static inline int fx_write_jpeg_shard(const char *path, const char *split, int index, int count, long n, long first, int flags) {
    char tmp[8192];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    size_t cap = 1 << 16, used = 0;
    uint8_t *all = malloc(cap), *pix = malloc(64 * 64 * 3);
    uint64_t *off = malloc(sizeof(uint64_t) * (size_t)(n + 1));
    int32_t *w = malloc(sizeof(int32_t) * (size_t)(n + 1)), *h = malloc(sizeof(int32_t) * (size_t)(n + 1)),
            *lab = malloc(sizeof(int32_t) * (size_t)(n + 1));
    off[0] = 0;
    for (long i = 0; i < n; i++) {
        long g = first + i;
        w[i] = fx_jw(g); h[i] = fx_jh(g); lab[i] = fx_label(g);
        for (int y = 0; y < h[i]; y++)
            for (int x = 0; x < w[i]; x++)
                for (int c = 0; c < 3; c++) pix[((size_t)y * w[i] + x) * 3 + c] = fx_pixel(g, y, x, c);
        struct jpeg_compress_struct ci;
        struct jpeg_error_mgr jerr;
        unsigned char *buf = NULL;
        unsigned long sz = 0;
        ci.err = jpeg_std_error(&jerr);
        jpeg_create_compress(&ci);
        jpeg_mem_dest(&ci, &buf, &sz);
        ci.image_width = (JDIMENSION)w[i]; ci.image_height = (JDIMENSION)h[i];
        ci.input_components = 3; ci.in_color_space = JCS_RGB;
        jpeg_set_defaults(&ci);
        jpeg_set_quality(&ci, 90, TRUE);
        jpeg_start_compress(&ci, TRUE);
        for (int y = 0; y < h[i]; y++) { JSAMPROW row = pix + (size_t)y * w[i] * 3; jpeg_write_scanlines(&ci, &row, 1); }
        jpeg_finish_compress(&ci);
        jpeg_destroy_compress(&ci);
        if ((flags & FX_BAD_JPEG) && i == 1) sz = sz * 2 / 3;   /* entropy data ends early */
        while (used + sz > cap) { cap *= 2; all = realloc(all, cap); }
        memcpy(all + used, buf, sz);
        used += sz;
        off[i + 1] = used;
        free(buf);
    }
    if ((flags & FX_BAD_SIZE) && n > 0) w[0]++;
    int rc = 0;
    fx_dset(f, "jpeg", H5T_STD_U8LE, H5T_NATIVE_UINT8, used, all, &rc);
    fx_dset(f, "offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, (hsize_t)n + 1, off, &rc);
    fx_dset(f, "widths", H5T_STD_I32LE, H5T_NATIVE_INT32, (hsize_t)n, w, &rc);
    fx_dset(f, "heights", H5T_STD_I32LE, H5T_NATIVE_INT32, (hsize_t)n, h, &rc);
    fx_dset(f, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, (hsize_t)n, lab, &rc);
    int version = 2, ncls = FX_CLASSES;
    rc |= fx_attr_int(f, "format_version", 1, &version);
    rc |= fx_attr_int(f, "shard_index", 1, &index);
    rc |= fx_attr_int(f, "shard_count", 1, &count);
    rc |= fx_attr_int(f, "num_classes", 1, &ncls);
    hid_t st = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    const char *names[2] = {"split", "store"}, *vals[2] = {split, "jpeg"};
    for (int k = 0; k < 2; k++) {
        H5Tset_size(st, strlen(vals[k]) + 1);
        hid_t a = H5Acreate2(f, names[k], st, sp, H5P_DEFAULT, H5P_DEFAULT);
        rc |= H5Awrite(a, st, vals[k]);
        H5Aclose(a);
    }
    H5Sclose(sp); H5Tclose(st);
    H5Fclose(f);
    free(all); free(pix); free(off); free(w); free(h); free(lab);
    if (rc < 0) return -1;
    return rename(tmp, path);
}

/* dir/split/split-K-of-M.h5 for K < nshards with counts[K] images each (global ids in order). */
/* The same as raw (H × W) or, jpeg = 1, jpeg shards. */
static inline int fx_write_set_kind(const char *dir, const char *split, int nshards, const long *counts, int H, int W, int jpeg) {
    char sub[4096], path[4200];
    mkdir(dir, 0755);
    snprintf(sub, sizeof sub, "%s/%s", dir, split);
    mkdir(sub, 0755);
    long first = 0;
    for (int k = 0; k < nshards; k++) {
        snprintf(path, sizeof path, "%s/%s-%05d-of-%05d.h5", sub, split, k, nshards);
        if (jpeg ? fx_write_jpeg_shard(path, split, k, nshards, counts[k], first, 0)
                 : fx_write_shard(path, split, k, nshards, counts[k], H, W, first, 0)) return -1;
        first += counts[k];
    }
    return 0;
}

static inline int fx_write_set(const char *dir, const char *split, int nshards, const long *counts, int H, int W) {
    return fx_write_set_kind(dir, split, nshards, counts, H, W, 0);
}
#endif
