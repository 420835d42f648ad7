/* Activation memory for one (config, batch, mode): one allocation sized at start-up and
 * carved into named buffers, so nothing is allocated inside a step. The mode says which
 * passes the arena serves:
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

enum { ACTS_PRETRAIN = 0, ACTS_ENCODER = 1, ACTS_FINETUNE = 2 };

typedef struct acts acts_t;
/* NULL when out of memory (or B < 1). classes is used by ACTS_FINETUNE only. */
acts_t *acts_create(const semaim_config_t *cfg, int B, int mode, int classes);
void acts_free(acts_t *a);
size_t acts_bytes(const acts_t *a);
int acts_capacity(const acts_t *a);   /* the batch it was sized for */
#endif
