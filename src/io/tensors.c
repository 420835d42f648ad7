/* Table-against-file checks shared by the weight loaders (io/tensors.h). */
#include <math.h>
#include <stdio.h>
#include "io/tensors.h"

void st_shape_str(char *buf, size_t n, const long *shape, int ndim) {
    size_t len = snprintf(buf, n, "[");
    for (int d = 0; d < ndim && len < n; d++) len += snprintf(buf + len, n - len, "%s%ld", d ? "," : "", shape[d]);
    if (len < n) snprintf(buf + len, n - len, "]");
}

const st_entry_t *st_expect(const st_file_t *f, const param_info_t *p, const char *why, err_t *err) {
    const st_entry_t *e = st_find(f, p->name);
    if (!e) { err_set(err, ERR_INPUT, "%s: missing tensor '%s'", f->path, p->name); return NULL; }
    long sh[4] = {p->shape[0], p->shape[1], p->shape[2], p->shape[3]};
    int same = e->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = e->shape[d] == sh[d];
    if (!same) {
        char s1[160], s2[160];
        st_shape_str(s1, sizeof s1, e->shape, e->ndim);
        st_shape_str(s2, sizeof s2, sh, p->ndim);
        err_set(err, ERR_INPUT, "%s: tensor '%s' has shape %s, expected %s %s", f->path, p->name, s1, s2, why);
        return NULL;
    }
    if (e->dtype != ST_F32 && e->dtype != ST_F64 && e->dtype != ST_F16 && e->dtype != ST_BF16) {
        err_set(err, ERR_INPUT, "%s: tensor '%s' has dtype %s; weights must be F32, F64, F16 or BF16", f->path, p->name,
                st_dtype_name(e->dtype));
        return NULL;
    }
    return e;
}

int st_read_finite(const st_file_t *f, const st_entry_t *e, float *dst, err_t *err) {
    if (st_read_f32(f, e, dst, err)) return -1;
    const long n = st_numel(e);
    for (long i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return err_set(err, ERR_INPUT, "%s: tensor '%s' holds %s values (first at element %ld)", f->path, e->name,
                           isnan(dst[i]) ? "NaN" : "infinite", i);
    return 0;
}
