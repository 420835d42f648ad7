/* Model tensors to and from named files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "semaim/model_io.h"

int model_write_safetensors(const model_t *m, const float *buf, const char *prefix, int with_pos,
                            const st_tensor_t *extra, int nextra, const char *path, char *err, size_t errlen) {
    int n = m->ntensors + (with_pos ? 1 : 0) + nextra;
    st_tensor_t *t = calloc(n, sizeof *t);
    char (*names)[PARAM_NAME_MAX + 16] = calloc(n, sizeof *names);
    if (!t || !names) { free(t); free(names); snprintf(err, errlen, "%s: out of memory", path); return -1; }
    int k = 0;
    for (int i = 0; i < nextra; i++) t[k++] = extra[i];
    if (with_pos) {
        t[k] = (st_tensor_t){"pos_embed", ST_F32, 3, {1, m->T, m->D, 0}, m->pos_embed};
        k++;
    }
    for (int i = 0; i < m->ntensors; i++, k++) {
        const param_info_t *p = &m->info[i];
        snprintf(names[k], sizeof names[k], "%s%s", prefix, p->name);
        t[k].name = names[k]; t[k].dtype = ST_F32; t[k].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) t[k].shape[d] = p->shape[d];
        t[k].data = buf + p->offset;
    }
    int rc = st_write(path, t, n, err, errlen);
    free(t); free(names);
    return rc;
}
