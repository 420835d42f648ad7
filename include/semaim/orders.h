/* Prediction orders (SPEC §1 step 2 and §2 "other orders"): a score per patch, smaller
 * scores predicted earlier, turned into ranks [B][L] (0 = predicted first). Pure functions of
 * their inputs; the semantic and similarity orders take the per-patch signal of the
 * permutation pass (cls-to-patch similarity by default; encoder_order_signal in encoder.h). */
#ifndef SEMAIM_ORDERS_H
#define SEMAIM_ORDERS_H
#include <stdint.h>

typedef enum { ORDER_SEMANTIC = 0, ORDER_RASTER, ORDER_STOCHASTIC, ORDER_SIMILARITY, ORDER_CENTER } order_t;
int order_parse(const char *s, order_t *o);   /* 0, or -1 for an unknown name */
const char *order_name(order_t o);
/* Does the order need the permutation pass? */
static inline int order_uses_model(order_t o) { return o == ORDER_SEMANTIC || o == ORDER_SIMILARITY; }

/* The u_p in [0,1) of every patch of every image: a pure function of (seed, epoch, global
 * sample id, patch), so a sample gets the same order on any rank. */
void order_noise(float *noise, uint64_t seed, int epoch, const int64_t *ids, int B, int L);

/* Ranks from the signal sim[B][L] (may be NULL for orders that do not use it) and
 * noise[B][L] (unused by raster); scratch holds order_scratch_bytes(B, L). center_out [B]
 * (may be NULL) receives the centre patch of the semantic order (-1 for others). */
long order_scratch_bytes(int B, int L);
void order_from_scores(order_t o, int G, const float *sim, const float *noise, int B, int *ranks, int *center_out,
                       void *scratch);
#endif
