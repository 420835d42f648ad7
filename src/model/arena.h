/* The buffers behind the opaque acts_t (semaim/acts.h), internal to the model room. A buffer
 * a mode does not use is NULL. */
#ifndef SEMAIM_ARENA_H
#define SEMAIM_ARENA_H
#include <stddef.h>
#include "semaim/acts.h"
#include "semaim/err.h"

typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *mid, *ln2, *ln2_mean, *ln2_rstd, *fc1, *gelu;
} enc_saved_t;
typedef struct {
    float *lng, *lng_mean, *lng_rstd, *lnh, *lnh_mean, *lnh_rstd, *q, *k, *v, *att, *atty;
    float *mid, *ln2, *ln2_mean, *ln2_rstd, *fc1, *gelu;
} dec_saved_t;

/* What the buffers hold now: a backward needs the forward it undoes. */
enum { HOLDS_NOTHING = 0, HOLDS_PRETRAIN_FWD, HOLDS_FINETUNE_FWD };

struct acts {
    int mode;                    /* ACTS_* */
    semaim_config_t cfg;
    int B;                       /* capacity; a step may use fewer images */
    int Bcur;                    /* images in the last forward */
    int holds;                   /* HOLDS_*: set by the training forwards, cleared by encoder passes */
    int C;                       /* classes (ACTS_FINETUNE) */
    void *block; size_t bytes;
    /* inputs, in prediction order for the training pass */
    float *patches_nat, *patches, *target_nat, *target, *target_scratch, *emb;
    int *perm;                   /* [B][L]: patch at token position 1+k */
    float *h, *g;                /* residual streams: (depth+1) and (dec_depth+1) snapshots of [B,T,D]
                                    (ACTS_ENCODER: two snapshots of h, no g) */
    enc_saved_t *enc;            /* [depth] (ACTS_ENCODER: [1], shared by every block) */
    dec_saved_t *dec;
    float *norm, *norm_mean, *norm_rstd, *head_fc1, *head_gelu, *pred;
    /* backward scratch */
    float *dres_h, *dres_g, *dD1, *dD2, *d3D, *dF1, *dF2, *dpred, *att_scratch;
    /* permutation pass */
    float *sim;                  /* [B][L] cls-to-patch cosine similarity */
    void *order_scratch;         /* order_scratch_bytes(B, L) */
    /* the global pool [B,D] (mean of the patch tokens before the final norm) and the statistics
     * [B] of its LayerNorm (fc_norm; without affine for the gap readout): every mode */
    float *pool, *fcn_mean, *fcn_rstd;
    /* fine-tuning classifier (ACTS_FINETUNE) */
    float *fcn, *logits, *dlogits, *dfcn, *dpool;   /* [B,D] / [B,C] */
    float *targets, *probs;      /* [B,C]: the soft targets and softmax of the last forward */
};

/* Aborts unless 1 <= B <= capacity and the arena serves mode: programming errors, caught
 * before any overflow. */
void acts_check(const acts_t *a, int B, int mode);
#endif
