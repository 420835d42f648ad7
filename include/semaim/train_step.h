/* One pretraining step's local work, the same function for the trainer, the no-allocation
 * test, the benchmark and the PyTorch parity dump: the prediction orders (the permutation
 * pass for the semantic and similarity orders), zeroed gradients, the training pass forward
 * and its backward. The all-reduce (run.h) and optim_update (optim.h) follow in the caller. */
#ifndef SEMAIM_TRAIN_STEP_H
#define SEMAIM_TRAIN_STEP_H
#include "semaim/encoder.h"
#include "semaim/optim.h"

/* noise [B][L] (order_noise); ranks [B][L] receives the orders. With noise NULL no order is
 * computed and the caller's ranks are used as they are (the parity dump keeps one order for a
 * whole trajectory, as its reference does). order_m is the model whose encoder gives the
 * semantic and similarity orders: m itself (or NULL), or the EMA shadow (ema.h, --ema-order);
 * it shares m's arena. phase_s (may be NULL) receives the seconds of the
 * permutation pass, the forward and the backward. Returns the loss. */
float train_step(model_t *m, model_t *order_m, acts_t *a, order_t order, const float *images, const float *noise, int B,
                 int *ranks, double *phase_s);
#endif
