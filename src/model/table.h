/* Building a parameter table (internal to the model room): a model lists its tensors in
 * buffer order with table_add and the helpers below; params_build calls the list twice (count,
 * then fill), allocates the four buffers and initialises the parameters (SPEC §2 init). The
 * encoder part is listed by the same helper for the pretraining model and the fine-tuning
 * classifier, so both tables start with identical tensors in identical order. */
#ifndef SEMAIM_TABLE_H
#define SEMAIM_TABLE_H
#include <stdint.h>
#include "semaim/config.h"
#include "semaim/err.h"
#include "semaim/params.h"

enum { INIT_XAVIER, INIT_ZERO, INIT_ONE, INIT_NORMAL };

typedef struct table table_t;

/* One tensor. INIT_NORMAL draws N(0, std²) from the stream rng_key(seed, stream, 0, 0, 0),
 * or, with stream 0, from the tensor's own stream rng_key(seed, 0x1417, index, 0, 0) that
 * every other kind uses; decay defaults to ndim >= 2 and lr_scale to 1. */
void table_add(table_t *t, int init, double std, uint64_t stream, int ndim, int s0, int s1, int s2, int s3,
               const char *fmt, ...) __attribute__((format(printf, 10, 11)));
void table_norm(table_t *t, int D, const char *prefix);               /* prefix.weight 1, prefix.bias 0 */
void table_linear(table_t *t, int in, int out, const char *prefix);   /* xavier [out, in], bias 0 */
/* cls_token, patch_embed.proj.*, blocks.N.* (the encoder, without the final norm). */
void table_encoder(table_t *t, const semaim_config_t *c);
/* norm2 + mlp.fc1 + mlp.fc2 of a block, shared by the encoder and decoder blocks. */
void table_mlp(table_t *t, int D, const char *block);

/* Builds w from list(t, ctx) and initialises it from seed. 0, or -1 (out of memory). */
int params_build(params_t *w, void (*list)(table_t *t, const void *ctx), const void *ctx, uint64_t seed, err_t *err);
/* A frozen model's buffer (a teacher's): params only, zeros, to be loaded; grads, m, v and
 * half stay NULL (the caller adds half when it needs one). */
int params_build_frozen(params_t *w, void (*list)(table_t *t, const void *ctx), const void *ctx, err_t *err);
/* Allocates w->half (unset) when the process's precision is bf16; nothing under fp32. 0, or -1
 * when out of memory. */
int params_add_half(params_t *w);
#endif
