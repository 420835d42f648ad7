/* HDF5 files generated from fuzz input, for the targets that fuzz what OUR code checks in
 * HDF5 files (shards, features files) rather than the HDF5 library's own parser: the input
 * chooses, for each dataset and attribute the reader looks at, whether it is there, its
 * type, rank, dimensions, layout, whether and how much of its data is written, and the
 * values; a "natural" choice gives what a real file has, so inputs reach the deeper checks.
 * The file may then be cut at an input-chosen length (a truncated copy). */
#ifndef SEMAIM_H5GEN_H
#define SEMAIM_H5GEN_H
#include <hdf5.h>
#include "fuzz.h"

enum { G_U8, G_I8, G_I16, G_U16, G_I32, G_I64, G_F32, G_F64, G_STR, G_NTYPES };

static inline hid_t gen_type(int t) {
    static hid_t str = -1;
    switch (t) {
    case G_U8: return H5T_STD_U8LE;
    case G_I8: return H5T_STD_I8LE;
    case G_I16: return H5T_STD_I16LE;
    case G_U16: return H5T_STD_U16LE;
    case G_I32: return H5T_STD_I32LE;
    case G_I64: return H5T_STD_I64LE;
    case G_F32: return H5T_IEEE_F32LE;
    case G_F64: return H5T_IEEE_F64LE;
    default:
        if (str < 0) { str = H5Tcopy(H5T_C_S1); H5Tset_size(str, 8); }
        return str;
    }
}

/* A dimension: mostly the natural one or small, sometimes large (never written then). */
static inline hsize_t gen_dim(fz_t *z, hsize_t natural, int *large) {
    static const hsize_t big[] = {64, 4096, 1u << 20, 1ull << 31, 1ull << 40, 1ull << 62};
    unsigned v = fz_u8(z);
    if (v < 160) return natural;
    if (v < 250) return v % 6;
    *large = 1;
    return big[v - 250];
}

/* A dataset `name` in f: the natural type, rank and dims given, or what the input says. */
static inline void gen_dataset(fz_t *z, hid_t f, const char *name, int ntype, int nrank, const hsize_t *ndims) {
    unsigned present = fz_pick(z, 16);
    if (present == 0) return;                         /* absent */
    if (present == 1) { hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT); if (g >= 0) H5Gclose(g); return; }
    int natural = present >= 4;
    int type = natural ? ntype : (int)fz_pick(z, G_NTYPES);
    int rank = natural ? nrank : (int)fz_pick(z, 5);
    hsize_t dims[4] = {0, 0, 0, 0};
    int large = 0;
    hsize_t elems = 1;
    for (int d = 0; d < rank; d++) {
        dims[d] = gen_dim(z, d < nrank ? ndims[d] : 1, &large);
        if (dims[d] && elems > ((hsize_t)1 << 62) / dims[d]) large = 1;
        elems *= dims[d];
    }
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    unsigned layout = fz_pick(z, 4);   /* 0, 1 contiguous, 2 chunked, 3 compact */
    size_t esize = H5Tget_size(gen_type(type));
    if (layout == 2 && rank) {
        hsize_t ch[4];
        for (int d = 0; d < rank; d++) ch[d] = dims[d] ? (dims[d] < 2 ? dims[d] : 2) : 1;
        int ok = 1;
        for (int d = 0; d < rank; d++) ok &= dims[d] > 0;
        if (ok) H5Pset_chunk(dcpl, rank, ch);
    } else if (layout == 3 && !large && elems * esize < 16000) H5Pset_layout(dcpl, H5D_COMPACT);
    hid_t d = H5Dcreate2(f, name, gen_type(type), sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    unsigned write = fz_pick(z, 8);   /* 0 never, 1 the first element only, else all */
    if (d >= 0 && write && !large && elems * esize <= (1u << 20)) {
        size_t nb = (size_t)elems * esize;
        uint8_t *buf = calloc(nb ? nb : 1, 1);
        if (buf) {
            size_t got;
            const uint8_t *p = fz_take(z, nb, &got);
            memcpy(buf, p, got);
            if (type == G_STR) for (size_t i = 0; i < nb; i++) if (i % 8 == 7) buf[i] = 0;
            if (write == 1 && rank && elems > 1) {
                hsize_t start[4] = {0, 0, 0, 0}, cnt[4] = {1, 1, 1, 1};
                hid_t fs = H5Dget_space(d), ms = H5Screate_simple(rank, cnt, NULL);
                H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
                H5Dwrite(d, gen_type(type), ms, fs, H5P_DEFAULT, buf);
                H5Sclose(ms); H5Sclose(fs);
            } else H5Dwrite(d, gen_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
            free(buf);
        }
    }
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
}

/* A root attribute `name`: the natural integer or string (str != NULL), or another type,
 * shape or value. */
static inline void gen_attr(fz_t *z, hid_t f, const char *name, long long nvalue, const char *str) {
    unsigned how = fz_pick(z, 16);
    if (how == 0) return;   /* absent */
    int natural = how >= 5;
    int type = natural ? (str ? G_STR : G_I32) : (int)fz_pick(z, G_NTYPES);
    int points = natural ? 1 : (int)fz_pick(z, 3);   /* 0: scalar, else a 1-D array */
    hsize_t dims[1] = {(hsize_t)(points ? points : 1)};
    hid_t sp = points ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t t = H5Tcopy(gen_type(type));
    char text[256] = "";
    if (type == G_STR) {
        if (natural && str) snprintf(text, sizeof text, "%s", str);
        else { size_t got; const uint8_t *p = fz_take(z, fz_pick(z, 40), &got); memcpy(text, p, got); text[got] = 0; }
        H5Tset_size(t, strlen(text) + 1);
    }
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        long long v[2] = {nvalue, nvalue};
        if (!natural || fz_pick(z, 4) == 0) { v[0] = (long long)fz_u64(z); v[1] = (long long)fz_u64(z); }
        if (fz_pick(z, 4) == 0) v[0] = (int32_t)fz_u32(z);
        double dv[2] = {(double)v[0], (double)v[1]};
        if (type == G_STR) H5Awrite(a, t, text);
        else if (type == G_F32 || type == G_F64) H5Awrite(a, H5T_NATIVE_DOUBLE, dv);
        else H5Awrite(a, H5T_NATIVE_LLONG, v);
        H5Aclose(a);
    }
    H5Tclose(t);
    H5Sclose(sp);
}

/* The targets that include this read HDF5 files meant to be wrong: HDF5's own error stack
 * on stderr would drown the fuzzer's output (our readers report one line each anyway). */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

/* Cuts path at an input-chosen length, sometimes (a truncated copy). */
static inline void gen_maybe_cut(fz_t *z, const char *path) {
    if (fz_pick(z, 8) != 0) return;
    struct stat st;
    if (stat(path, &st) || st.st_size == 0) return;
    if (truncate(path, (off_t)(fz_u32(z) % (uint32_t)st.st_size))) return;
}

static inline hid_t gen_create(const char *path) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_file_locking(fapl, 0, 1);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}
#endif
