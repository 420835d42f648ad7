/* The one parameter buffer (llm.c style): every trainable tensor of a model lives in ONE
 * contiguous float buffer described by a table of named tensors (timm / the authors' names
 * and shapes). Gradients and both AdamW moments use the same layout, so the optimiser is one
 * loop, a checkpoint one write, the gradient all-reduce one call and the replica check one
 * hash. The pretraining model (model.h) and the fine-tuning classifier (finetune.h) each build
 * their table with the same builder and hold one params_t.
 * A model built while the process's precision is bf16 (semaim/compute.h) also keeps `half`, a
 * bf16 copy of params in the same layout: what the GEMMs read. The f32 params stay the master
 * weights; AdamW refreshes the copy in its own loop, and whatever else writes params (init,
 * loading, resume, a broadcast) calls params_sync_half. */
#ifndef SEMAIM_PARAMS_H
#define SEMAIM_PARAMS_H

#include <stdint.h>

#define PARAM_NAME_MAX 64

typedef struct {
    char name[PARAM_NAME_MAX];
    int ndim, shape[4];
    long offset, numel;
    int decay;            /* AdamW weight decay applies to this tensor */
    double lr_scale;      /* multiplies the schedule's lr (layer-wise decay in fine-tuning, else 1) */
} param_info_t;

typedef struct {
    param_info_t *info;
    int ntensors;
    long nparams;
    float *params, *grads, *m, *v;   /* nparams floats each, one layout; m, v: AdamW moments */
    uint16_t *half;                  /* bf16 copy of params (bf16 runs), else NULL */
} params_t;

const param_info_t *params_find(const params_t *w, const char *name);
void params_zero_grad(params_t *w);
/* half = params rounded to bf16 (nothing without a copy). */
void params_sync_half(params_t *w);
void params_free(params_t *w);
#endif
