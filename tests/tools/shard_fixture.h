/* Writes small shards in the data_prep format with the HDF5 C API, for the loader tests (so
 * they do not depend on data_prep): /images uint8 [N,H,W,3] contiguous, /labels int32 [N],
 * /keys fixed-length strings, root attributes. Pixel and label values are functions of the
 * global sample id, so a test can check that the loader delivered the right sample. */
#ifndef SEMAIM_SHARD_FIXTURE_H
#define SEMAIM_SHARD_FIXTURE_H
#include <hdf5.h>
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
enum { FX_NEG_LABEL = 1, FX_BIG_LABEL = 2, FX_VERSION2 = 4 };

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
        snprintf(keys + 16 * i, 16, "img-%010ld", g);
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
    int version = flags & FX_VERSION2 ? 2 : 1, ncls = FX_CLASSES;
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

/* dir/split/split-K-of-M.h5 for K < nshards with counts[K] images each (global ids in order). */
static inline int fx_write_set(const char *dir, const char *split, int nshards, const long *counts, int H, int W) {
    char sub[4096], path[4200];
    mkdir(dir, 0755);
    snprintf(sub, sizeof sub, "%s/%s", dir, split);
    mkdir(sub, 0755);
    long first = 0;
    for (int k = 0; k < nshards; k++) {
        snprintf(path, sizeof path, "%s/%s-%05d-of-%05d.h5", sub, split, k, nshards);
        if (fx_write_shard(path, split, k, nshards, counts[k], H, W, first, 0)) return -1;
        first += counts[k];
    }
    return 0;
}
#endif
