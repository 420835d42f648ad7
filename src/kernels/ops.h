/* Layer kernels, llm.c style: x_forward(out, saved..., in, params..., dims) and
 * x_backward(din, dparams..., dout, saved..., in, params..., dims) on raw arrays.
 * Every backward ACCUMULATES (+=) into its outputs; a NULL gradient pointer is skipped.
 * Each fast kernel has a slow double-precision reference (suffix _ref) in the same file;
 * tests/unit/kernels/test_ops.c checks the references by finite differences and the fast
 * kernels against the references (tests/unit/kernels/test_gemm.c: the GEMM-using ones on every
 * backend and precision).
 * Kernels do not validate arguments (callers do, via config_validate): patchify and
 * pixel_target need H, W divisible by P; patchnorm needs C >= 2; every backward needs what
 * its forward saved (mean/rstd, attention probabilities).
 * Results do not depend on the thread count (fixed reduction orders).
 *
 * Precision. What a GEMM reads (gemm_in_t: layer inputs, weights, attention q/k/v and
 * probabilities) is stored in the run's precision: float in fp32 runs, bf16_t in bf16 runs.
 * The op that produces such an activation writes it in that type (LayerNorm, bias + GELU,
 * attention, patchify, the q/k/v bias epilogue: their `bf16` argument), so nothing is
 * converted in a pass of its own. Everything else — GEMM outputs, the residual streams,
 * LayerNorm statistics, softmax and GELU arithmetic, gradients — is f32.
 *
 * GEMMs. linear_* and attention_* run the GEMM plans made for them once (linear_plan,
 * attention_plan: by the activation arena for every pass it serves) with the scratch of a
 * workspace, so a pass allocates nothing. Threads: kernels parallelise with OpenMP; GEMMs go
 * through the GEMM layer (kernels/gemm.h: OpenBLAS or oneDNN, both on libgomp), which runs
 * single-threaded when called inside one of our parallel regions. */
#ifndef SEMAIM_OPS_H
#define SEMAIM_OPS_H
#include <stddef.h>
#include <stdint.h>
#include "kernels/gemm.h"
#include "semaim/err.h"

#define SEMAIM_LN_EPS 1e-6f

/* ---- The workspace of a pass: per-thread scratch for the GEMMs and for the kernels that run
 * GEMMs from a parallel region (attention), and the bf16 staging of linear backward. Carved
 * from the activation arena (or allocated by a test with workspace_bytes). Slot t serves
 * thread t of a team; slot 0 also the main thread outside regions. */
typedef struct {
    char *base;
    size_t slot0, slotn;   /* bytes of slot 0 and of each other slot (multiples of 64) */
    int nslots;
    bf16_t *stage_h;       /* bf16 runs: dout of linear backward in bf16, rows × widest output */
} workspace_t;
size_t workspace_bytes(size_t slot0, size_t slotn, int nslots);
/* mem: workspace_bytes(...) bytes, 64-byte aligned. */
void workspace_init(workspace_t *w, void *mem, size_t slot0, size_t slotn, int nslots);
/* A workspace of its own for the current thread count (tests, benchmarks): the memory to
 * free, or NULL when out of memory. No bf16 staging. */
void *workspace_alloc(workspace_t *w, size_t slot0, size_t slotn);
static inline void *workspace_slot(const workspace_t *w, int t) {
    return t == 0 ? (void *)w->base : (void *)(w->base + w->slot0 + (size_t)(t - 1) * w->slotn);
}

/* ---- LayerNorm over the last dim C of N rows (eps 1e-6); saves mean and rstd [N]. out is
 * float, or bf16_t when bf16 (the next op is a GEMM): rounded from the f32 result. The
 * forward without a learned affine (weight 1, bias 0: the frozen fc_norm of the authors'
 * global-pool readout) takes w = b = NULL. */
void layernorm_forward(gemm_in_t *out, int bf16, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, long N, int C);
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, long N, int C);

/* ---- Linear: out[N,OC] = inp[N,C] · W[OC,C]ᵀ (+ bias[OC] + res[N,OC]) (PyTorch weight layout).
 * The plan fixes N (the arena's capacity): every GEMM runs over the plan's rows, so the
 * arrays hold that many rows; a forward of fewer rows (the last batch of an evaluation)
 * leaves the other rows meaningless, and a backward must run the plan's N. */
typedef struct {
    gemm_plan_t *fwd, *dinp, *dw;   /* dinp, dw NULL when not planned */
    long N;
    int C, OC;
    int accumulate;                 /* LIN_ACCUMULATE */
    int bf16;                       /* inp, W and the staged dout are bf16_t */
} lin_plan_t;
/* Forward: out = bias + res + inp·Wᵀ, bias and/or res preloaded into out and the GEMM adding
 * to them — the residual add and the bias in the same pass (else out = inp·Wᵀ, for an epilogue
 * that adds the bias: bias_gelu_forward, bias_store). */
#define LIN_ACCUMULATE 1u
#define LIN_BACKWARD 2u   /* plan dW += doutᵀ·inp */
#define LIN_DINP 4u       /* and dinp += dout·W */
#define LIN_DINP_SET 8u   /* dinp = dout·W instead: the GEMM writes it (no zeroing pass, no read of it) */
int linear_plan(lin_plan_t *p, const gemm_config_t *cfg, long N, int C, int OC, unsigned flags, err_t *e);
void linear_plan_free(lin_plan_t *p);
/* Bytes of slot-0 scratch its GEMMs need. */
size_t linear_plan_scratch(const lin_plan_t *p);
/* With LIN_ACCUMULATE bias and res may each be NULL (not both); without, both must be. */
void linear_forward(float *out, const gemm_in_t *inp, const gemm_in_t *W, const float *bias, const float *res,
                    long N, int C, int OC, const lin_plan_t *p, const workspace_t *ws);
/* dW and dbias accumulate; dinp too unless the plan is LIN_DINP_SET. In bf16 runs dout is
 * rounded into ws->stage_h in the pass that sums dbias. */
void linear_backward(float *dinp, float *dW, float *dbias, const float *dout, const gemm_in_t *inp,
                     const gemm_in_t *W, long N, int C, int OC, const lin_plan_t *p, const workspace_t *ws);
/* out[n,c] = x[n,c] + bias[c] in the activation type: the epilogue of a GEMM whose output the
 * next op reads as a GEMM input (attention's q, k, v). x may be out itself when !bf16. */
void bias_store(gemm_in_t *out, int bf16, const float *x, const float *bias, long N, int C);

/* ---- GELU, exact: 0.5·x·(1 + erf(x/√2)). The fast kernel evaluates Φ with its own
 * vectorisable approximation (relative error < 7e-6, see gelu.c); the reference uses erfc.
 * Forward fused with the bias of the GEMM before it: x[n,c] += bias[c] (bias may be NULL; x is
 * kept for backward), out = GELU(x), float or bf16_t. Backward takes that x. */
void bias_gelu_forward(gemm_in_t *out, int bf16, float *x, const float *bias, long N, int C);
void gelu_backward(float *dinp, const float *dout, const float *inp, long n);
/* d = d ⊙ GELU'(x): the gradient of the GELU output turned, where it lies, into that of its
 * input (what gelu_backward adds to a zeroed dinp, without the zeroing and the second array). */
void gelu_backward_inplace(float *d, const float *x, long n);

/* ---- Multi-head attention of Tq = Tk = T tokens. q, k, v rows have strides sq and skv (elements),
 * so q/k/v can be views into a fused qkv buffer [B,T,3D] (sq = skv = 3D) or separate [B,T,D]
 * buffers (stride D). Head h uses columns [h·hd, (h+1)·hd). out is [B,T,NH·hd] contiguous.
 * att [B,NH,T,T] saves the softmax probabilities (masked entries are 0). q, k, v, out and att
 * are gemm_in_t (the GEMMs read them); the scores and softmax are f32 either way.
 * Masks are defined on token POSITIONS, which the model arranges in prediction order
 * (cls first), so the SemAIM rank masks become:
 *   ATTN_FULL          every row sees every key                     (permutation pass)
 *   ATTN_CAUSAL        row i sees keys 0..i                         (content stream)
 *   ATTN_CAUSAL_STRICT row i sees keys 0..i-1; row 0 sees key 0     (query stream)
 * dq uses q's row stride sq and dk, dv use skv, the same layout as q, k, v (f32). */
enum { ATTN_FULL = 0, ATTN_CAUSAL = 1, ATTN_CAUSAL_STRICT = 2 };
static inline int attn_last_key(int mode, int i, int T) {
    return mode == ATTN_FULL ? T - 1 : mode == ATTN_CAUSAL ? i : (i > 0 ? i - 1 : 0);
}
/* The block GEMMs of one (T, heads, strides, mask): query blocks of at most ATT_BLK rows, each
 * against keys up to its last visible one; forward, and with backward its four more. The
 * plans do not depend on the batch (a task is one (image, head)). */
typedef struct {
    int T, NH, hd, sq, skv, mode, rows, nblk, backward, bf16;
    gemm_plan_t **g;        /* [nblk][6] */
    size_t kernel_bytes;    /* per-thread scratch of the kernel itself (scores, dS, dO) */
    size_t thread_bytes;    /* per-thread slot: kernel_bytes, then the GEMMs' scratch */
} att_plan_t;
int attention_plan(att_plan_t *p, const gemm_config_t *cfg, int T, int NH, int hd, int sq, int skv, int mode,
                   int backward, err_t *e);
void attention_plan_free(att_plan_t *p);
/* ws slots of p->thread_bytes for every thread of the team. */
void attention_forward(gemm_in_t *out, gemm_in_t *att, const gemm_in_t *q, const gemm_in_t *k, const gemm_in_t *v,
                       int B, const att_plan_t *p, const workspace_t *ws);
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const gemm_in_t *att,
                        const gemm_in_t *q, const gemm_in_t *k, const gemm_in_t *v, int B, const att_plan_t *p,
                        const workspace_t *ws);

/* ---- Patchify an image batch img[B,3,H,W] into rows out[B, L, 3·P·P], L = (H/P)·(W/P),
 * patches row-major, or in the order perm [B][L] (row k of image b holds patch perm[b·L+k];
 * NULL: natural order). PATCH_CPP orders a row (channel, py, px) like a conv weight (patch
 * embed; out float or, bf16, bf16_t); PATCH_PPC orders it (py, px, channel) (pixel targets,
 * float only). */
enum { PATCH_CPP = 0, PATCH_PPC = 1 };
void patchify(gemm_in_t *out, int bf16, const float *img, const int *perm, int B, int H, int W, int P, int order);

/* ---- K×K Gaussian blur of width sigma, weights exp(−(dy² + dx²)/2σ²) normalised to sum 1,
 * zero padding K/2, per channel of img[B,C,H,W] (separable; equal to the 2-D kernel). K odd,
 * 1..BLUR_K_MAX, sigma > 0 (else it aborts: callers validate the flag). Backward is the
 * adjoint. */
#define BLUR_K_MAX 63
void blur_forward(float *out, const float *img, int B, int C, int H, int W, int K, double sigma);
void blur_backward(float *dimg, const float *dout, int B, int C, int H, int W, int K, double sigma);

/* ---- Per-row normalisation of the pixel target: (x − mean)/sqrt(var + 1e-6), var UNBIASED
 * (divide by C − 1). Saves mean and rstd [N]. */
void patchnorm_forward(float *out, float *mean, float *rstd, const float *inp, long N, int C);
void patchnorm_backward(float *dinp, const float *dout, const float *inp,
                        const float *mean, const float *rstd, long N, int C);

/* ---- The whole pixel target of SPEC §3: blur (K, sigma; K = 0: none) → patchify (py,px,c)
 * → patchnorm (when norm_pix). target [B, L, P·P·3] in the order perm (as patchify); scratch
 * pixel_target_scratch_floats() floats. No gradient flows to the image in training; the pieces
 * above have backwards for the gradient checks. */
long pixel_target_scratch_floats(int B, int H, int W, int P);
void pixel_target(float *target, float *scratch, const float *img, const int *perm, int B, int H, int W, int P,
                  int blur_k, double blur_sigma, int norm_pix);

/* ---- Mean squared error over n values; backward adds scale · 2(pred − target)/n to dpred. */
double mse_forward(const float *pred, const float *target, long n);
void mse_backward(float *dpred, const float *pred, const float *target, long n, float scale);
/* ---- Mean absolute error over n values; backward adds scale · sign(pred − target)/n, with
 * sign(0) = 0 (torch's sign, so torch's L1 gradient at an exact tie). */
double l1_forward(const float *pred, const float *target, long n);
void l1_backward(float *dpred, const float *pred, const float *target, long n, float scale);

/* ---- Soft-target cross-entropy (timm's SoftTargetCrossEntropy, the loss of mixed batches):
 * loss = (1/B) Σ_b Σ_c −t[b,c]·log softmax(x_b)_c over B rows of C logits; targets need not
 * sum to 1. Saves the softmax probs [B,C]. Backward adds scale·(p·Σ_c t − t)/B to dlogits.
 * Rows are reduced in order, serially: B·C exponentials are negligible next to the model. */
double softce_forward(float *probs, const float *logits, const float *targets, int B, int C);
/* The targets of hard labels with label smoothing: (1 − s)·onehot + s/C per row (timm's
 * off = s/C, on = 1 − s + s/C); a row whose label is outside 0..C−1 gets zeros, so it adds
 * neither loss nor gradient. */
void label_targets(float *targets, const int32_t *labels, int B, int C, double smoothing);
void softce_backward(float *dlogits, const float *probs, const float *targets, int B, int C, float scale);

/* ---- Double-precision references (same semantics, no accumulation tricks, no threads). */
void layernorm_forward_ref(double *out, double *mean, double *rstd, const double *inp,
                           const double *w, const double *b, long N, int C);
void layernorm_backward_ref(double *dinp, double *dw, double *db, const double *dout, const double *inp,
                            const double *w, const double *mean, const double *rstd, long N, int C);
void linear_forward_ref(double *out, const double *inp, const double *W, const double *bias, long N, int C, int OC);
void linear_backward_ref(double *dinp, double *dW, double *dbias, const double *dout, const double *inp,
                         const double *W, long N, int C, int OC);
void bias_store_ref(double *out, const double *x, const double *bias, long N, int C);
void gelu_forward_ref(double *out, const double *inp, long n);
void bias_gelu_forward_ref(double *out, double *x, const double *bias, long N, int C);
void gelu_backward_ref(double *dinp, const double *dout, const double *inp, long n);
void attention_forward_ref(double *out, double *att, const double *q, const double *k, const double *v,
                           int sq, int skv, int B, int T, int NH, int hd, int mode);
void attention_backward_ref(double *dq, double *dk, double *dv, const double *dout,
                            const double *att, const double *q, const double *k, const double *v,
                            int sq, int skv, int B, int T, int NH, int hd, int mode);
void blur_forward_ref(double *out, const double *img, int B, int C, int H, int W, int K, double sigma);
void blur_backward_ref(double *dimg, const double *dout, int B, int C, int H, int W, int K, double sigma);
void patchnorm_forward_ref(double *out, double *mean, double *rstd, const double *inp, long N, int C);
void patchnorm_backward_ref(double *dinp, const double *dout, const double *inp,
                            const double *mean, const double *rstd, long N, int C);
double mse_forward_ref(const double *pred, const double *target, long n);
void mse_backward_ref(double *dpred, const double *pred, const double *target, long n, double scale);
double l1_forward_ref(const double *pred, const double *target, long n);
void l1_backward_ref(double *dpred, const double *pred, const double *target, long n, double scale);
double softce_forward_ref(double *probs, const double *logits, const double *targets, int B, int C);
void softce_backward_ref(double *dlogits, const double *probs, const double *targets, int B, int C, double scale);

#endif
