/* safetensors files (the format timm and PyTorch users exchange weights in): an 8-byte
 * little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} with an
 * optional "__metadata__" object of strings, then the raw little-endian tensors.
 * Written to a temporary name and renamed when complete. The reader checks everything it
 * relies on (header JSON, dtypes, shapes, offsets inside the file, no overlaps) and reports
 * the first problem as one line naming the file. */
#ifndef SEMAIM_SAFETENSORS_H
#define SEMAIM_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "semaim/err.h"

/* F16 and BF16 are read only (converted to float); the writer emits the first five. */
typedef enum { ST_F32, ST_I32, ST_F64, ST_U8, ST_I64, ST_F16, ST_BF16 } st_dtype_t;
#define ST_MAX_DIMS 8

typedef struct {
    const char *name;
    st_dtype_t dtype;
    int ndim;
    long shape[4];
    const void *data;
} st_tensor_t;

/* Returns 0, or -1 with a one-line reason naming the file (ERR_RUNTIME). */
int st_write(const char *path, const st_tensor_t *t, int n, err_t *err);
/* As st_write, plus an "__metadata__" object of nmeta string pairs (keys[i]: vals[i]). */
int st_write_meta(const char *path, const st_tensor_t *t, int n, const char *const *keys, const char *const *vals,
                  int nmeta, err_t *err);

/* ---- reading */
typedef struct {
    char *name;
    st_dtype_t dtype;
    int ndim;
    long shape[ST_MAX_DIMS];
    uint64_t begin, end;       /* byte offsets inside the data section */
} st_entry_t;

typedef struct {
    char *path;
    uint64_t data_start;       /* file offset of the data section */
    int n;
    st_entry_t *t;             /* in header order */
    int nmeta;
    char **meta_key, **meta_val;
} st_file_t;

/* Reads and validates the header of path. Returns 0, or -1 with the reason in err (nothing
 * to free then). */
int st_open(st_file_t *f, const char *path, err_t *err);
void st_close(st_file_t *f);
const st_entry_t *st_find(const st_file_t *f, const char *name);
const char *st_meta(const st_file_t *f, const char *key);   /* NULL if absent */
long st_numel(const st_entry_t *e);
const char *st_dtype_name(st_dtype_t d);
/* Reads tensor e as float (F32 copied, F64/F16/BF16 converted; integer dtypes refused) into
 * dst (st_numel(e) floats). Returns 0, or -1 with the reason in err. */
int st_read_f32(const st_file_t *f, const st_entry_t *e, float *dst, err_t *err);
#endif
