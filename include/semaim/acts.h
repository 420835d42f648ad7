/* Activation memory for one (config, batch, mode): one allocation sized at start-up and
 * carved into named buffers, with the GEMM plans of every pass it serves (made once, for the
 * process's compute choice at creation: semaim/compute.h; their scratch is carved from the
 * same allocation), so nothing is allocated inside a step. In a bf16 arena what the GEMMs read
 * (layer inputs, attention q/k/v and probabilities) is stored in bf16 — about a third less
 * memory than fp32. The mode says which passes the arena serves:
 *   ACTS_PRETRAIN  the SemAIM training pass (forward saves what backward needs) and the
 *                  permutation pass;
 *   ACTS_ENCODER   forward-only encoder passes (permutation pass, evaluation features):
 *                  one block's buffers and two stream snapshots, whatever the depth;
 *   ACTS_FINETUNE  the fine-tuning classifier's forward and backward (encoder saved per block,
 *                  pooled features, logits for `classes` classes; no decoder). */
#ifndef SEMAIM_ACTS_H
#define SEMAIM_ACTS_H
#include <stddef.h>
#include "semaim/config.h"
#include "semaim/err.h"

enum { ACTS_PRETRAIN = 0, ACTS_ENCODER = 1, ACTS_FINETUNE = 2 };

typedef struct acts acts_t;
/* NULL with err set when out of memory, when a GEMM plan cannot be made (ERR_RUNTIME), or for
 * B < 1 (ERR_INPUT). classes: ACTS_FINETUNE's class count; for ACTS_PRETRAIN the prediction
 * head's outputs per token (model_t.out; 0 means the pixel target's P·P·3); unused by
 * ACTS_ENCODER. A forward may run fewer images than the capacity B; a backward runs all B. */
acts_t *acts_create(const semaim_config_t *cfg, int B, int mode, int classes, err_t *err);
void acts_free(acts_t *a);
size_t acts_bytes(const acts_t *a);
int acts_capacity(const acts_t *a);   /* the batch it was sized for */
/* Forward-only encoder passes (permutation pass, a target encoder's tokens, features) made in
 * this arena so far: what the step's FLOP count assumes (train_step_encoder_passes) is checked
 * against it. */
long acts_encoder_passes(const acts_t *a);
#endif
