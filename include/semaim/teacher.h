/* A frozen teacher ViT for feature targets (SemAIM*): normalised images [B,3,H,W] in, one token
 * per position out, [B, T, out] with T = 1 + grid² (row 0 the class token, then the patches in
 * raster order). Forward only, no gradient, full attention, all threads, the process's GEMM
 * backend and precision (semaim/compute.h: build the teacher and its activations after
 * gemm_global_init). Two layouts, each computed as its own framework does:
 *   TEACHER_TIMM  timm / DINO VisionTransformer: conv patch embed with bias, cls_token, learned
 *                 pos_embed added to every token (cls included), pre-norm blocks (norm1,
 *                 attn.qkv fused q|k|v, attn.proj, norm2, mlp.fc1, exact-erf GELU, mlp.fc2),
 *                 the final `norm`; LayerNorm eps 1e-6; tokens = after `norm` (out = width).
 *   TEACHER_CLIP  OpenAI CLIP's visual tower: conv1 without bias, class_embedding,
 *                 positional_embedding, ln_pre, transformer.resblocks.N.{ln_1,
 *                 attn.in_proj_* (fused q|k|v), attn.out_proj, ln_2, mlp.c_fc, QuickGELU,
 *                 mlp.c_proj}, ln_post, proj [width, out] without bias; LayerNorm eps 1e-5;
 *                 tokens = ln_post of every token, then @ proj (as the SemAIM authors use it).
 * The weights are one params_t buffer (params.h; no gradients or moments: grads, m, v are
 * NULL) whose table carries the file's tensor names and shapes, so a loader (the io room's
 * teacher_io.h) can check a file against it and read straight into it. Activation memory is
 * a teacher_acts_t: one block's buffers plus the input patches and the output tokens, made once
 * for a batch capacity; a forward allocates nothing. */
#ifndef SEMAIM_TEACHER_H
#define SEMAIM_TEACHER_H
#include <stddef.h>
#include "semaim/err.h"
#include "semaim/model.h"
#include "semaim/params.h"

typedef enum { TEACHER_TIMM = 0, TEACHER_CLIP = 1 } teacher_layout_t;

/* The architecture: what the tensor shapes (and the head count's source) say. */
typedef struct {
    teacher_layout_t layout;
    int width, depth, heads, hidden;   /* hidden: the MLP's inner width */
    int patch, grid;                   /* the teacher reads images of patch·grid pixels a side */
    int out;                           /* token width: width (timm) or proj's columns (CLIP) */
    char prefix[16];                   /* before every tensor name in the file ("" or "visual.") */
} teacher_arch_t;

typedef struct {
    teacher_arch_t a;
    params_t w;          /* table with the file's names (prefix included), one buffer */
    int nfile;           /* table entries 0..nfile-1 come from the file; the rest are derived */
    /* views into w.params; NULL where the layout has no such tensor */
    float *cls, *pos, *patch_w, *patch_b, *pre_w, *pre_b, *norm_w, *norm_b, *proj;
    enc_block_t *blk;    /* [depth]: ln1 = norm1/ln_1, qkv = qkv/in_proj, proj = proj/out_proj,
                            ln2, fc1 = fc1/c_fc, fc2 = fc2/c_proj */
    float *proj_t;       /* CLIP: proj transposed to [out, width] (linear's weight layout), the
                            table's last, derived entry, filled by teacher_ready */
} teacher_t;

/* LayerNorm eps of a layout (timm 1e-6, OpenAI CLIP 1e-5). */
float teacher_ln_eps(teacher_layout_t layout);
/* "timm ViT" / "OpenAI CLIP visual tower". */
const char *teacher_layout_name(teacher_layout_t layout);
/* One line for the start of a run: "timm ViT, width 192, depth 12, heads 3, mlp 768, patch 16,
 * grid 14, tokens 197x192". Returns buf. */
const char *teacher_describe(const teacher_arch_t *a, char *buf, size_t n);
/* FLOPs (2 per multiply-add) of one image through the teacher's forward: patch embedding, the
 * blocks (q|k|v, projection, MLP of the hidden width, scores and weighted sum over all
 * tokens) and CLIP's output projection. */
double teacher_flops_per_image(const teacher_arch_t *a);

/* Builds the table and the buffer for a (zeros; bf16 runs: and its bf16 copy). 0, or -1:
 * ERR_INPUT when a is inconsistent (width not a multiple of heads, sizes < 1), ERR_RUNTIME when
 * out of memory. */
int teacher_init(teacher_t *t, const teacher_arch_t *a, err_t *err);
/* After the weights are in w.params: derives what the forward reads besides them (CLIP's
 * transposed proj, the bf16 copy). Call again after any change of w.params. */
void teacher_ready(teacher_t *t);
void teacher_free(teacher_t *t);

typedef struct teacher_acts teacher_acts_t;
/* Activation memory and GEMM plans for batches of up to B images. NULL with err set: B < 1
 * (ERR_INPUT), out of memory or a plan that cannot be made (ERR_RUNTIME). */
teacher_acts_t *teacher_acts_create(const teacher_t *t, int B, err_t *err);
void teacher_acts_free(teacher_acts_t *a);
size_t teacher_acts_bytes(const teacher_acts_t *a);
/* The tokens of images [B,3,S,S], S = patch·grid, B <= the capacity: [B, T, out] f32 in the
 * activations, valid until the next forward with them. */
const float *teacher_forward(const teacher_t *t, teacher_acts_t *a, const float *images, int B);
/* The feature targets of a training pass: dst [B, L, out] with row k of image b the patch token
 * tok[b, 1 + perm[b·L + k]] (perm as the model's: the patch at prediction position k; NULL:
 * natural order), the class token dropped — the rows featloss_forward compares with the
 * prediction rows 1..L of each image. */
void teacher_patch_targets(float *dst, const float *tok, const int *perm, int B, int L, int out);
#endif
