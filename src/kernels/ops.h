/* Layer kernels, llm.c style: x_forward(out, saved..., in, params..., dims) and
 * x_backward(din, dparams..., dout, saved..., in, params..., dims) on raw float*.
 * Every backward ACCUMULATES (+=) into its outputs; a NULL gradient pointer is skipped.
 * Each fast kernel has a slow double-precision reference (suffix _ref) in the same file;
 * tests/unit/test_ops.c checks the references by finite differences and the fast kernels
 * against the references.
 * Kernels do not validate arguments (callers do, via config_validate): patchify and
 * pixel_target need H, W divisible by P; patchnorm needs C >= 2; every backward needs what
 * its forward saved (mean/rstd, attention probabilities).
 * Results do not depend on the thread count (fixed reduction orders).
 * Threads: kernels parallelise with OpenMP; GEMMs go through the GEMM layer (kernels/gemm.h:
 * OpenBLAS or oneDNN, both on libgomp), which runs single-threaded when called inside one of
 * our parallel regions.
 * GEMM plans: with a backend that uses plans (oneDNN, bf16), the first call of a shape creates
 * its plan; linear_prepare / attention_prepare create them ahead, outside the step, so that
 * a step allocates nothing. They are no-ops for openblas fp32. */
#ifndef SEMAIM_OPS_H
#define SEMAIM_OPS_H
#include <stdint.h>

#define SEMAIM_LN_EPS 1e-6f

/* ---- LayerNorm over the last dim C of N rows (eps 1e-6); saves mean and rstd [N]. The
 * forward without a learned affine (weight 1, bias 0: the frozen fc_norm of the authors'
 * global-pool readout) takes w = b = NULL. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, long N, int C);
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const float *mean, const float *rstd, long N, int C);

/* ---- Linear: out[N,OC] = inp[N,C] · W[OC,C]ᵀ + bias[OC] (PyTorch weight layout; bias may be NULL). */
void linear_forward(float *out, const float *inp, const float *W, const float *bias, long N, int C, int OC);
void linear_backward(float *dinp, float *dW, float *dbias, const float *dout, const float *inp,
                     const float *W, long N, int C, int OC);
/* Plans for the forward (with or without bias), dW and (dinp != 0) the dinp GEMM. */
void linear_prepare(long N, int C, int OC, int bias, int dinp);

/* ---- GELU, exact: 0.5·x·(1 + erf(x/√2)). The fast kernel evaluates Φ with its own
 * vectorisable approximation (relative error < 7e-6, see gelu.c); the reference uses erfc. */
void gelu_forward(float *out, const float *inp, long n);
void gelu_backward(float *dinp, const float *dout, const float *inp, long n);

/* ---- Multi-head attention of Tq = Tk = T tokens. q, k, v rows have strides sq and skv (floats),
 * so q/k/v can be views into a fused qkv buffer [B,T,3D] (sq = skv = 3D) or separate [B,T,D]
 * buffers (stride D). Head h uses columns [h·hd, (h+1)·hd). out is [B,T,NH·hd] contiguous.
 * att [B,NH,T,T] saves the softmax probabilities (masked entries are 0).
 * Masks are defined on token POSITIONS, which the model arranges in prediction order
 * (cls first), so the SemAIM rank masks become:
 *   ATTN_FULL          every row sees every key                     (permutation pass)
 *   ATTN_CAUSAL        row i sees keys 0..i                         (content stream)
 *   ATTN_CAUSAL_STRICT row i sees keys 0..i-1; row 0 sees key 0     (query stream)
 * dq uses q's row stride sq and dk, dv use skv, the same layout as q, k, v.
 * scratch: attention_scratch_floats() floats, used by backward. */
enum { ATTN_FULL = 0, ATTN_CAUSAL = 1, ATTN_CAUSAL_STRICT = 2 };
static inline int attn_last_key(int mode, int i, int T) {
    return mode == ATTN_FULL ? T - 1 : mode == ATTN_CAUSAL ? i : (i > 0 ? i - 1 : 0);
}
long attention_scratch_floats(int B, int T, int NH, int hd);
/* Plans for every GEMM of attention_forward and attention_backward with these arguments. */
void attention_prepare(int B, int T, int NH, int hd, int sq, int skv, int mode);
void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int sq, int skv, int B, int T, int NH, int hd, int mode);
void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v,
                        int sq, int skv, int B, int T, int NH, int hd, int mode);

/* ---- Patchify an image batch img[B,3,H,W] into rows out[B, L, 3·P·P], L = (H/P)·(W/P),
 * patches row-major. PATCH_CPP orders a row (channel, py, px) like a conv weight (patch embed);
 * PATCH_PPC orders it (py, px, channel) (pixel targets). */
enum { PATCH_CPP = 0, PATCH_PPC = 1 };
void patchify(float *out, const float *img, int B, int H, int W, int P, int order);

/* ---- 9×9 Gaussian blur, σ = 1, kernel normalised to sum 1, zero padding 4, per channel
 * of img[B,C,H,W] (separable; equal to the 2-D kernel). Backward is the adjoint. */
void blur9_forward(float *out, const float *img, int B, int C, int H, int W);
void blur9_backward(float *dimg, const float *dout, int B, int C, int H, int W);

/* ---- Per-row normalisation of the pixel target: (x − mean)/sqrt(var + 1e-6), var UNBIASED
 * (divide by C − 1). Saves mean and rstd [N]. */
void patchnorm_forward(float *out, float *mean, float *rstd, const float *inp, long N, int C);
void patchnorm_backward(float *dinp, const float *dout, const float *inp,
                        const float *mean, const float *rstd, long N, int C);

/* ---- The whole pixel target of SPEC §3: blur → patchify (py,px,c) → patchnorm.
 * target [B, L, P·P·3]; scratch pixel_target_scratch_floats() floats. No gradient flows to
 * the image in training; the pieces above have backwards for the gradient checks. */
long pixel_target_scratch_floats(int B, int H, int W, int P);
void pixel_target(float *target, float *scratch, const float *img, int B, int H, int W, int P);

/* ---- Mean squared error over n values; backward adds scale · 2(pred − target)/n to dpred. */
double mse_forward(const float *pred, const float *target, long n);
void mse_backward(float *dpred, const float *pred, const float *target, long n, float scale);

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
void gelu_forward_ref(double *out, const double *inp, long n);
void gelu_backward_ref(double *dinp, const double *dout, const double *inp, long n);
void attention_forward_ref(double *out, double *att, const double *q, const double *k, const double *v,
                           int sq, int skv, int B, int T, int NH, int hd, int mode);
void attention_backward_ref(double *dq, double *dk, double *dv, const double *dout,
                            const double *att, const double *q, const double *k, const double *v,
                            int sq, int skv, int B, int T, int NH, int hd, int mode);
void blur9_forward_ref(double *out, const double *img, int B, int C, int H, int W);
void blur9_backward_ref(double *dimg, const double *dout, int B, int C, int H, int W);
void patchnorm_forward_ref(double *out, double *mean, double *rstd, const double *inp, long N, int C);
void patchnorm_backward_ref(double *dinp, const double *dout, const double *inp,
                            const double *mean, const double *rstd, long N, int C);
double mse_forward_ref(const double *pred, const double *target, long n);
void mse_backward_ref(double *dpred, const double *pred, const double *target, long n, double scale);
double softce_forward_ref(double *probs, const double *logits, const double *targets, int B, int C);
void softce_backward_ref(double *dlogits, const double *probs, const double *targets, int B, int C, double scale);

#endif
