/* safetensors files (the format timm and PyTorch users exchange weights in): an 8-byte
 * little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then the
 * raw little-endian tensors. Written to a temporary name and renamed when complete. */
#ifndef SEMAIM_SAFETENSORS_H
#define SEMAIM_SAFETENSORS_H
#include <stddef.h>

typedef enum { ST_F32, ST_I32, ST_F64, ST_U8, ST_I64 } st_dtype_t;
typedef struct {
    const char *name;
    st_dtype_t dtype;
    int ndim;
    long shape[4];
    const void *data;
} st_tensor_t;

/* Returns 0, or -1 with a one-line reason (naming the file) in err. */
int st_write(const char *path, const st_tensor_t *t, int n, char *err, size_t errlen);
#endif
