/* One pretraining step's local work, the same function for the trainer, the no-allocation
 * test, the benchmark and the PyTorch parity dump: the prediction orders (the permutation
 * pass for the semantic and similarity orders), zeroed gradients, the training pass forward
 * and its backward. The all-reduce (run.h) and optim_update (optim.h) follow in the caller. */
#ifndef SEMAIM_TRAIN_STEP_H
#define SEMAIM_TRAIN_STEP_H
#include "semaim/encoder.h"
#include "semaim/optim.h"
#include "semaim/teacher.h"

/* Where a feature target's tokens come from (docs/objective.md); NULL as a whole, or a NULL
 * field, means the default. */
typedef struct {
    /* inference and ema: the encoder whose tokens are the targets; NULL: the model itself (the
     * inference target). For ema a model_t whose views point at the EMA weights. When it is also
     * the order's encoder, one unmasked pass gives both the order and the targets. */
    model_t *encoder;
    /* the encoder whose pass gives the semantic and similarity orders; NULL: the model itself.
     * The EMA shadow with --ema-order (ema.h). Both share the model's arena. */
    model_t *order;
    /* teacher: the frozen ViT and its activations (teacher.h), made once beside the arena */
    const teacher_t *teacher;
    teacher_acts_t *tacts;
} target_src_t;

/* noise [B][L] (order_noise); ranks [B][L] receives the orders. With noise NULL no order is
 * computed and the caller's ranks are used as they are (the parity dump keeps one order for a
 * whole trajectory, as its reference does); a feature target's tokens are computed anyway.
 * phase_s (may be NULL) receives the seconds of the permutation (and target) pass, the forward
 * and the backward. Returns the loss. */
float train_step(model_t *m, acts_t *a, const target_src_t *src, order_t order, const float *images, const float *noise,
                 int B, int *ranks, double *phase_s);
/* How many forward-only encoder passes of m's size one train_step with these arguments makes
 * besides its forward and backward (with_order: noise is not NULL): the permutation pass when
 * the order comes from the model, a target encoder's pass, one pass when both are the same
 * encoder; a teacher's forward is not one of them. For the step's FLOP count
 * (semaim_flops_per_image); test_noalloc checks it against acts_encoder_passes. */
int train_step_encoder_passes(const model_t *m, const target_src_t *src, order_t order, int with_order);
/* FLOPs per image of one train_step that computes its orders: the training pass forward and
 * backward, the encoder passes above, a teacher's forward. The run_start figure and the
 * benchmark's GFLOP/s. */
double train_step_flops_per_image(const model_t *m, const target_src_t *src, order_t order);
#endif
