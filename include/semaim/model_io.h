/* Model tensors to and from named files (safetensors with timm / authors' names). */
#ifndef SEMAIM_MODEL_IO_H
#define SEMAIM_MODEL_IO_H
#include "semaim/model.h"
#include "semaim/safetensors.h"

/* Writes every tensor of a buffer laid out like m->params (params, grads or moments), each
 * named prefix + table name, plus pos_embed if with_pos, plus nextra extra tensors first. */
int model_write_safetensors(const model_t *m, const float *buf, const char *prefix, int with_pos,
                            const st_tensor_t *extra, int nextra, const char *path, char *err, size_t errlen);
#endif
