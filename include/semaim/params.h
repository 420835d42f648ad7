/* The one parameter buffer (llm.c style): every trainable tensor of a model lives in ONE
 * contiguous float buffer described by a table of named tensors (timm / the authors' names
 * and shapes). Gradients and both AdamW moments use the same layout, so the optimiser is one
 * loop, a checkpoint one write, the gradient all-reduce one call and the replica check one
 * hash. The pretraining model (model.h) and the fine-tuning classifier (finetune.h) each build
 * their table with the same builder and hold one params_t.
 * A model built while the process's precision is bf16 (semaim/compute.h) also keeps `half`, a
 * bf16 copy of params in the same layout: what the GEMMs read. The f32 params stay the master
 * weights; AdamW refreshes the copy in its own loop, and whatever else writes params (init,
 * loading, resume, a broadcast) calls params_sync_half.
 * A pretraining run whose objective needs the EMA teacher (ema.h) keeps one more buffer in the
 * layout, `ema`: allocated only then (it costs one more parameter buffer), saved with the
 * checkpoint, freed by params_free. */
#ifndef SEMAIM_PARAMS_H
#define SEMAIM_PARAMS_H

#include <stdint.h>
#include "semaim/err.h"

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
    float *ema;                      /* exponential moving average of params (ema.h), NULL unless attached */
} params_t;

const param_info_t *params_find(const params_t *w, const char *name);
void params_zero_grad(params_t *w);
/* half = params rounded to bf16 (nothing without a copy). */
void params_sync_half(params_t *w);
/* w->ema = a copy of params (the EMA starts at the weights); nothing when it is there. 0, or -1
 * (ERR_RUNTIME) when out of memory. */
int params_attach_ema(params_t *w, err_t *err);
void params_free(params_t *w);
#endif
