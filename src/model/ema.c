/* The EMA teacher: decay schedule, update and the shadow model (semaim/ema.h). */
#include <stdlib.h>
#include <string.h>
#include "kernels/gemm.h"
#include "semaim/ema.h"

double ema_decay(long step, long steps_per_epoch) {
    long epoch = steps_per_epoch > 0 ? step / steps_per_epoch : 0;
    if (epoch >= EMA_RAMP_EPOCHS) return EMA_DECAY_END;
    /* in the authors' order of operations, so the values are theirs to the last bit */
    return EMA_DECAY_START + (double)epoch / EMA_RAMP_EPOCHS * (EMA_DECAY_END - EMA_DECAY_START);
}

int ema_init(ema_t *e, model_t *live, err_t *err) {
    memset(e, 0, sizeof *e);
    if (params_attach_ema(&live->w, err)) return -1;
    if (model_shadow(&e->m, live, live->w.ema, err))
        return err_set(err, ERR_RUNTIME, "out of memory for the EMA model");
    return 0;
}

void ema_update(ema_t *e, const float *weights, double decay) {
    float *x = e->m.w.params;
    bf16_t *h = e->m.w.half;
    /* float32 factors, as a float32 tensor times a Python float in the authors' PyTorch */
    const float a = (float)decay, b = (float)(1.0 - decay);
    const long n = e->m.w.nparams, chunk = 4096;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (long c0 = 0; c0 < n; c0 += chunk) {
        const long c1 = n - c0 < chunk ? n : c0 + chunk;
        for (long i = c0; i < c1; i++) x[i] = a * x[i] + b * weights[i];
        if (h) bf16_from_f32(h + c0, x + c0, c1 - c0);   /* from the chunk just written, in cache */
    }
}

void ema_free(ema_t *e) { model_shadow_free(&e->m); }
