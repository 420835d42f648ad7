/* The buffers behind the opaque acts_t (semaim/acts.h), internal to the model room. A buffer
 * a mode does not use is NULL. gemm_in_t buffers hold what a GEMM reads, in the arena's
 * precision (float in fp32 arenas, bf16_t in bf16 ones); the others are float. */
#ifndef SEMAIM_ARENA_H
#define SEMAIM_ARENA_H
#include <stddef.h>
#include "kernels/ops.h"
#include "semaim/acts.h"
#include "semaim/err.h"

typedef struct {
    gemm_in_t *ln1, *qkv, *att, *atty, *ln2, *gelu;
    float *ln1_mean, *ln1_rstd, *mid, *ln2_mean, *ln2_rstd, *fc1;
} enc_saved_t;
typedef struct {
    gemm_in_t *lng, *lnh, *q, *k, *v, *att, *atty, *ln2, *gelu;
    float *lng_mean, *lng_rstd, *lnh_mean, *lnh_rstd, *mid, *ln2_mean, *ln2_rstd, *fc1;
} dec_saved_t;

/* The GEMM plans of an arena: one per distinct layer shape of the passes it serves, made with
 * the arena for its capacity, so no pass creates one. Their dinp GEMMs write the gradient
 * (LIN_DINP_SET) except the decoder's v, whose input gradient adds to k's. */
typedef struct {
    lin_plan_t patch, qkv, proj, fc1, fc2;   /* encoder blocks (fc1 also the head's fc1) */
    lin_plan_t q, v, head2;                  /* decoder q and k, v (its dinp adds to k's); prediction head fc2 (ACTS_PRETRAIN) */
    lin_plan_t cls;                          /* the classifier head (ACTS_FINETUNE) */
    att_plan_t full;                         /* forward-only full attention of encoder passes */
    att_plan_t enc, dec;                     /* the training pass: encoder (causal; fine-tuning: full), decoder */
} plans_t;

/* What the buffers hold now: a backward needs the forward it undoes. */
enum { HOLDS_NOTHING = 0, HOLDS_PRETRAIN_FWD, HOLDS_FINETUNE_FWD, HOLDS_ENCODER_PASS };

struct acts {
    int mode;                    /* ACTS_* */
    semaim_config_t cfg;
    int B;                       /* capacity; a forward may use fewer images, a backward not */
    int Bcur;                    /* images in the last forward */
    int holds;                   /* HOLDS_*: set by the training forwards and the encoder passes (whose tokens
                                    and last-block attention an order may then be taken from) */
    int C;                       /* classes (ACTS_FINETUNE) */
    int out;                     /* the prediction head's outputs per token (ACTS_PRETRAIN) */
    int targets_for;             /* images whose feature targets semaim_feature_targets set for the next forward */
    gemm_config_t gemm;          /* the process's choice when the arena was made */
    int bf16;                    /* gemm.precision is bf16 */
    plans_t pl;
    workspace_t ws;              /* per-thread GEMM and attention scratch, linear backward's bf16 staging */
    void *block; size_t bytes;
    gemm_in_t *patches;          /* [B,L,PD]: natural order (encoder passes) or prediction order (training) */
    float *target, *target_scratch, *emb;   /* target [B,L,out] in prediction order */
    int *perm;                   /* [B][L]: patch at token position 1+k */
    float *h, *g;                /* residual streams: (depth+1) and (dec_depth+1) snapshots of [B,T,D]
                                    (ACTS_ENCODER: two snapshots of h, no g) */
    enc_saved_t *enc;            /* [depth] (ACTS_ENCODER: [1], shared by every block) */
    dec_saved_t *dec;
    float *stage;                /* bf16 arenas: f32 output of the q/k/v GEMMs before bias_store rounds it
                                    (the training modes lend d3D, idle in forward) */
    gemm_in_t *norm;             /* the head's input: final norm of the query stream (ACTS_PRETRAIN) */
    float *tok, *norm_mean, *norm_rstd;   /* encoder passes: final norm of the tokens, f32 (aliases norm) */
    float *head_fc1, *pred;
    gemm_in_t *head_gelu;
    /* backward scratch */
    float *dres_h, *dres_g, *dD1, *dD2, *d3D, *dF1, *dpred;
    /* permutation pass */
    float *sim;                  /* [B][L] cls-to-patch cosine similarity */
    void *order_scratch;         /* order_scratch_bytes(B, L) */
    long encoder_passes;         /* forward-only encoder passes made in this arena (acts_encoder_passes) */
    /* the global pool [B,D] (mean of the patch tokens before the final norm) and the statistics
     * [B] of its LayerNorm (fc_norm; without affine for the gap readout): every mode */
    float *pool, *fcn_mean, *fcn_rstd;
    /* fine-tuning classifier (ACTS_FINETUNE) */
    float *logits, *dlogits, *dfcn, *dpool;   /* [B,D] / [B,C] */
    gemm_in_t *fcn;              /* [B,D]: fc_norm output, the head's input */
    float *targets, *probs;      /* [B,C]: the soft targets and softmax of the last forward */
};

/* Aborts unless 1 <= B <= capacity and the arena serves mode: programming errors, caught
 * before any overflow. */
void acts_check(const acts_t *a, int B, int mode);
#endif
