/* The EMA teacher (SemAIM's "ema" feature target and --ema-order): an exponential moving
 * average of the model's parameters, one more buffer in the parameter layout (params_t.ema),
 * updated after every optimiser step over the whole buffer in one loop,
 *     ema = d·ema + (1 − d)·w,
 * starting equal to the initial weights. The fixed sin-cos position embedding is not a
 * parameter and is not averaged.
 *
 * The decay follows the authors' code (engine_pretrain.py: the EMA's decay is set once at the
 * start of each epoch): for the optimiser step of 0-based index `step`,
 *     epoch = floor(step / steps_per_epoch),
 *     d     = 0.999 + min(epoch, 100) / 100 · (0.9999 − 0.999),
 * so it rises linearly, epoch by epoch, from 0.999 (epoch 0) to 0.9999 (epoch 100 and after),
 * constant within an epoch. It depends on the step only, so a resumed run continues it exactly.
 *
 * The shadow is a model_t whose views point into the EMA buffer, for the forward-only encoder
 * passes (encoder.h) with the EMA weights: it shares the live model's table, config,
 * objective and position embedding, and carries its own bf16 copy of the EMA weights in bf16
 * runs (made by ema_init, refreshed by ema_update), so its passes read the EMA in either
 * precision.
 * It has no gradients and no moments: it is never trained, and never passed to model_free. */
#ifndef SEMAIM_EMA_H
#define SEMAIM_EMA_H
#include "semaim/err.h"
#include "semaim/model.h"

#define EMA_DECAY_START 0.999
#define EMA_DECAY_END 0.9999
#define EMA_RAMP_EPOCHS 100

typedef struct {
    model_t m;   /* the shadow: m.w.params is the live model's w.ema */
} ema_t;

/* The decay of the update after optimiser step `step` (0-based), as above. */
double ema_decay(long step, long steps_per_epoch);
/* Attaches the EMA buffer to live (a copy of its weights, unless it already has one: attached
 * earlier with params_attach_ema and loaded from a checkpoint) and builds the shadow over it,
 * its bf16 copy made from the buffer as it is then. So a trainer attaches the buffer, resumes,
 * then calls this. Set live->tgt first: the shadow's passes read its order signal. 0, or -1
 * (ERR_RUNTIME, out of memory) with the shadow holding nothing. */
int ema_init(ema_t *e, model_t *live, err_t *err);
/* ema = d·ema + (1 − d)·weights over the whole buffer (weights: the live params, same layout),
 * and the shadow's bf16 copy in the same loop. Allocates nothing. */
void ema_update(ema_t *e, const float *weights, double decay);
/* Frees the shadow's views and bf16 copy (the buffer belongs to the live model's params_t). */
void ema_free(ema_t *e);
#endif
