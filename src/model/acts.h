/* The activation buffers behind the opaque acts_t of model.h (internal to the library; beside its code). */
#ifndef SEMAIM_ACTS_H
#define SEMAIM_ACTS_H
#include <stddef.h>
#include "semaim/model.h"

typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *mid, *ln2, *ln2_mean, *ln2_rstd, *fc1, *gelu;
} enc_saved_t;
typedef struct {
    float *lng, *lng_mean, *lng_rstd, *lnh, *lnh_mean, *lnh_rstd, *q, *k, *v, *att, *atty;
    float *mid, *ln2, *ln2_mean, *ln2_rstd, *fc1, *gelu;
} dec_saved_t;

struct acts {
    int B;                       /* capacity; a step may use fewer images */
    int Bcur;                    /* images in the last forward */
    void *block; size_t bytes;
    /* inputs, in prediction order for the training pass */
    float *patches_nat, *patches, *target_nat, *target, *target_scratch, *emb;
    int *perm;                   /* [B][L]: patch at token position 1+k */
    float *h, *g;                /* residual streams: (depth+1) and (dec_depth+1) snapshots of [B,T,D] */
    enc_saved_t *enc;
    dec_saved_t *dec;
    float *norm, *norm_mean, *norm_rstd, *head_fc1, *head_gelu, *pred;
    /* backward scratch */
    float *dres_h, *dres_g, *dD1, *dD2, *d3D, *dF1, *dF2, *dpred, *att_scratch;
    /* permutation pass */
    float *sim;                  /* [B][L] cls-to-patch cosine similarity */
    void *order_scratch;         /* order_scratch_bytes(B, L) */
};
/* Aborts on a batch outside 1..capacity: a programming error, caught before any overflow. */
void acts_check_batch(const acts_t *a, int B);
#endif
