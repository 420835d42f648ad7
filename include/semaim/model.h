/* The SemAIM network (SPEC §2): parameters, activations, the permutation pass, the training
 * pass forward/backward and the forward-only encoder used for evaluation.
 *
 * All trainable parameters live in ONE contiguous buffer described by a table of named
 * tensors (timm / authors' names and shapes). Gradients and the AdamW moments use the same
 * layout, so the optimiser is one loop, a checkpoint one write and the all-reduce one call.
 * The fixed sin-cos position embedding is not trainable and lives outside the buffer. */
#ifndef SEMAIM_MODEL_H
#define SEMAIM_MODEL_H
#include <stdint.h>
#include "semaim/config.h"

#define PARAM_NAME_MAX 64

typedef struct {
    char name[PARAM_NAME_MAX];
    int ndim, shape[4];
    long offset, numel;
    int decay;            /* AdamW weight decay applies (tensors with ndim >= 2) */
} param_info_t;

/* Views of one encoder block into a parameter (or gradient) buffer. */
typedef struct {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} enc_block_t;
/* Views of one decoder (query) block: cross-attention with separate q, k, v. */
typedef struct {
    float *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *proj_w, *proj_b;
    float *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} dec_block_t;
typedef struct {
    float *cls_token, *patch_w, *patch_b;
    enc_block_t *enc;     /* [depth] */
    dec_block_t *dec;     /* [dec_depth] */
    float *norm_w, *norm_b, *head1_w, *head1_b, *head2_w, *head2_b;
} views_t;

typedef struct {
    semaim_config_t cfg;
    int G, L, T, D, NH, hd, PD, step;   /* grid, patches, tokens (L+1), width, heads, head dim, patch dim, DE/DQ */
    param_info_t *info; int ntensors;
    long nparams;
    float *params, *grads, *m, *v;       /* each nparams floats, same layout */
    views_t p, g;                        /* named views into params and grads */
    float *pos_embed;                    /* [T, D], fixed */
} model_t;

/* Allocates and initialises (SPEC §2 init) from seed. Returns 0, or -1 with err set. */
int model_init(model_t *m, const semaim_config_t *cfg, uint64_t seed, char *err, size_t errlen);
void model_free(model_t *m);
void model_zero_grad(model_t *m);
const param_info_t *model_find(const model_t *m, const char *name);
/* Builds views over any buffer laid out like params. */
void model_views(const model_t *m, float *base, views_t *v);
/* Fixed 2-D sin-cos position embedding [T, D] (cls row zeros). */
void pos_embed_sincos(float *out, int G, int D);

/* Activations for one (config, batch), sized once; nothing is allocated inside a step. */
typedef struct acts acts_t;
acts_t *acts_create(const model_t *m, int B);
void acts_free(acts_t *a);
size_t acts_bytes(const acts_t *a);

/* Orders (SPEC §1 step 2 and the ablation orders). */
typedef enum { ORDER_SEMANTIC = 0, ORDER_RASTER, ORDER_STOCHASTIC, ORDER_SIMILARITY, ORDER_CENTER } order_t;
int order_parse(const char *s, order_t *o);
const char *order_name(order_t o);

/* Encoder with full attention + final norm over images [B,3,H,W] (B <= the acts' batch).
 * Leaves the normed tokens [B,T,D] in the acts and returns a pointer to them. */
const float *encoder_forward_full(model_t *m, acts_t *a, const float *images, int B);
/* Evaluation features: per image the cls token after the final norm and the mean of the
 * normed patch tokens, each [B, D]. Either output may be NULL. */
void encoder_features(model_t *m, acts_t *a, const float *images, int B, float *cls_out, float *mean_out);
/* Computes the prediction order of each image as ranks[B][L] (0 = predicted first).
 * noise [B][L] holds the u_p in [0,1) (unused by raster). The semantic and similarity orders
 * run the permutation pass with the current weights; center_out [B] (may be NULL) receives
 * the centre patch of the semantic order (-1 for others). */
void compute_order(model_t *m, acts_t *a, order_t o, const float *images, const float *noise,
                   int B, int *ranks, int *center_out);
/* The pure part of compute_order: ranks from cls-similarities sim[B][L] (may be NULL for
 * orders that do not use it); scratch holds order_scratch_bytes(B, L). Exposed for tests. */
long order_scratch_bytes(int B, int L);
void order_from_scores(order_t o, int G, const float *sim, const float *noise, int B, int *ranks, int *center_out,
                       void *scratch);

/* Training pass forward (SPEC §2–3): returns the loss. ranks as from compute_order. */
float semaim_forward(model_t *m, acts_t *a, const float *images, const int *ranks, int B);
/* Predictions of the last semaim_forward, [B, T, P·P·3] in prediction order: row 1+k of
 * image b predicts the patch of rank k (row 0, the cls position, predicts nothing). */
const float *semaim_predictions(const acts_t *a);
/* Backward of the last semaim_forward; ACCUMULATES into m->grads (call model_zero_grad first). */
void semaim_backward(model_t *m, acts_t *a);

/* Multiply-adds per image of one training step (SPEC §6), for throughput figures. */
double semaim_flops_per_image(const model_t *m);
#endif
