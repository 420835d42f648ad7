/* Layer kernels (src/kernels/ops.h):
 *  1. every double reference backward against central finite differences of L = Σ out·R
 *     (the fused bias + GELU too),
 *  2. every fast float kernel against its reference, forward and (accumulating) backward, in
 *     fp32 on every GEMM backend the build has (OpenBLAS, then oneDNN); the activations that
 *     kernels write in bf16 (LayerNorm, bias + GELU, bias_store, patchify) against the same
 *     reference within one bf16 rounding (test_gemm.c runs the GEMM kernels in bf16),
 *  3. blur: separable == direct 2-D, zero-padding borders against the closed form,
 *  4. patchify element orders (natural and permuted) on an image whose values encode (b, c, y, x).
 * The losses (mse, soft-target cross-entropy) go through 1 and 2 as well. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "check.h"

/* Which GEMM backend the GEMM-using kernels run on (their plans are made for it), appended to
 * their test names. */
static const char *gemm_tag = "";
static gemm_config_t cur = {GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0};
static const char *tagged(const char *base) {
    static char buf[96];
    snprintf(buf, sizeof buf, "%s%s", base, gemm_tag);
    return buf;
}
/* A workspace for every thread (workspace_alloc), or the test ends. */
static void *ws_make(workspace_t *ws, size_t slot0, size_t slotn) {
    void *m = workspace_alloc(ws, slot0, slotn);
    if (!m) { fprintf(stderr, "test_ops: out of memory\n"); exit(2); }
    return m;
}
static void plan_or_die(int rc, const err_t *e) {
    if (rc) { fprintf(stderr, "test_ops: plan: %s\n", e->msg); exit(2); }
}
/* Unit roundoff of bf16: an f32 rounded to bf16 is x(1+δ), |δ| ≤ 2^-8. */
#define UB16 (1.0 / 256.0)
/* max over entries of |bf16(got) − ref| / (UB16·|ref| + tol·max|ref|): ≤ 1 passes — one rounding
 * of each value on top of the f32 kernel's own error. */
static double bf16_ratio(const bf16_t *got, const double *ref, long n, double tol) {
    double mb = 0, w = 0;
    for (long i = 0; i < n; i++) mb = fmax(mb, fabs(ref[i]));
    for (long i = 0; i < n; i++) {
        const double e = fabs((double)bf16_to_f32_one(got[i]) - ref[i]) / (UB16 * fabs(ref[i]) + tol * mb + 1e-30);
        if (!(e <= w)) w = e;
    }
    return w;
}

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x5eed5eedULL;
static double urand(void) {   // splitmix64 → [0,1)
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (double)((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
}
static double nrand(void) { return sqrt(-2.0 * log(1.0 - urand())) * cos(6.283185307179586 * urand()); }

static void *xcalloc(long n, size_t sz) {
    void *p = calloc(n > 0 ? (size_t)n : 1, sz);
    if (!p) { fprintf(stderr, "test_ops: out of memory\n"); exit(2); }
    return p;
}
static double *dalloc(long n) { return xcalloc(n, sizeof(double)); }
static float *falloc(long n) { return xcalloc(n, sizeof(float)); }
static void fill_normal_d(double *x, long n, double sd) { for (long i = 0; i < n; i++) x[i] = sd * nrand(); }
static void fill_normal_f(float *x, long n, float sd) { for (long i = 0; i < n; i++) x[i] = sd * (float)nrand(); }
static double *to_d(const float *x, long n) { double *d = dalloc(n); for (long i = 0; i < n; i++) d[i] = x[i]; return d; }
static float *copy_f(const float *x, long n) { float *f = falloc(n); memcpy(f, x, n * sizeof(float)); return f; }

static double dot_d(const double *a, const double *b, long n) { double s = 0; for (long i = 0; i < n; i++) s += a[i] * b[i]; return s; }
static double max_abs_d(const double *a, long n) { double m = 0; for (long i = 0; i < n; i++) if (fabs(a[i]) > m) m = fabs(a[i]); return m; }

/* max |a − b| / max |b|, float result against double reference */
static double err_fd(const float *a, const double *b, long n) {
    double md = 0, mb = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}
/* Backward kernels accumulate: compare (got − init) with the reference gradient started at 0. */
static double err_acc(const float *got, const float *init, const double *ref, long n) {
    double md = 0, mb = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs(((double)got[i] - init[i]) - ref[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs(ref[i]) > mb) mb = fabs(ref[i]);
    }
    return mb > 0 ? md / mb : md;
}

/* Central differences of f with respect to every element of x, against grad. */
typedef double (*objective_fn)(void *ctx);
static double fd_err(objective_fn f, void *ctx, double *x, long n, const double *grad) {
    const double h = 1e-6;
    double md = 0, mg = 0;
    for (long i = 0; i < n; i++) {
        double s = x[i];
        x[i] = s + h; double lp = f(ctx);
        x[i] = s - h; double lm = f(ctx);
        x[i] = s;
        double num = (lp - lm) / (2 * h);
        if (fabs(num - grad[i]) > md) md = fabs(num - grad[i]);
        if (fabs(num) > mg) mg = fabs(num);
    }
    return mg > 0 ? md / mg : md;
}
#define FD_TOL 1e-6
#define FWD_TOL 1e-5
#define BWD_TOL 1e-4

/* ------------------------------------------------------------------ 1. gradient checks */

typedef struct { long N; int C; double *inp, *w, *b, *R, *out, *mean, *rstd; } ln_ctx;
static double ln_obj(void *p) {
    ln_ctx *c = p;
    layernorm_forward_ref(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
    return dot_d(c->out, c->R, c->N * c->C);
}
static void gradcheck_layernorm(void) {
    test_begin("gradcheck_layernorm");
    ln_ctx c = {.N = 3, .C = 7};
    long n = c.N * c.C;
    c.inp = dalloc(n); c.w = dalloc(c.C); c.b = dalloc(c.C); c.R = dalloc(n);
    c.out = dalloc(n); c.mean = dalloc(c.N); c.rstd = dalloc(c.N);
    fill_normal_d(c.inp, n, 1); fill_normal_d(c.w, c.C, 1); fill_normal_d(c.b, c.C, 1); fill_normal_d(c.R, n, 1);
    double *dinp = dalloc(n), *dw = dalloc(c.C), *db = dalloc(c.C);
    ln_obj(&c);
    layernorm_backward_ref(dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, c.N, c.C);
    double e1 = fd_err(ln_obj, &c, c.inp, n, dinp), e2 = fd_err(ln_obj, &c, c.w, c.C, dw),
           e3 = fd_err(ln_obj, &c, c.b, c.C, db);
    CHECK(e1 < FD_TOL, "dinp fd rel err %.3g", e1);
    CHECK(e2 < FD_TOL, "dw fd rel err %.3g", e2);
    CHECK(e3 < FD_TOL, "db fd rel err %.3g", e3);
    CHECK(max_abs_d(dinp, n) > 1e-3, "dinp is (near) zero");
    free(c.inp); free(c.w); free(c.b); free(c.R); free(c.out); free(c.mean); free(c.rstd);
    free(dinp); free(dw); free(db);
    test_end();
}

typedef struct { long N; int C, OC; double *inp, *W, *bias, *R, *out; } lin_ctx;
static double lin_obj(void *p) {
    lin_ctx *c = p;
    linear_forward_ref(c->out, c->inp, c->W, c->bias, c->N, c->C, c->OC);
    return dot_d(c->out, c->R, c->N * c->OC);
}
static void gradcheck_linear(void) {
    test_begin("gradcheck_linear");
    for (int withbias = 0; withbias < 2; withbias++) {
        lin_ctx c = {.N = 4, .C = 5, .OC = 3};
        c.inp = dalloc(c.N * c.C); c.W = dalloc(c.OC * c.C); c.bias = withbias ? dalloc(c.OC) : NULL;
        c.R = dalloc(c.N * c.OC); c.out = dalloc(c.N * c.OC);
        fill_normal_d(c.inp, c.N * c.C, 1); fill_normal_d(c.W, c.OC * c.C, 1); fill_normal_d(c.R, c.N * c.OC, 1);
        if (c.bias) fill_normal_d(c.bias, c.OC, 1);
        double *dinp = dalloc(c.N * c.C), *dW = dalloc(c.OC * c.C), *db = dalloc(c.OC);
        linear_backward_ref(dinp, dW, withbias ? db : NULL, c.R, c.inp, c.W, c.N, c.C, c.OC);
        double e1 = fd_err(lin_obj, &c, c.inp, c.N * c.C, dinp), e2 = fd_err(lin_obj, &c, c.W, c.OC * c.C, dW);
        CHECK(e1 < FD_TOL, "bias=%d dinp fd rel err %.3g", withbias, e1);
        CHECK(e2 < FD_TOL, "bias=%d dW fd rel err %.3g", withbias, e2);
        if (withbias) {
            double e3 = fd_err(lin_obj, &c, c.bias, c.OC, db);
            CHECK(e3 < FD_TOL, "dbias fd rel err %.3g", e3);
        }
        free(c.inp); free(c.W); free(c.bias); free(c.R); free(c.out); free(dinp); free(dW); free(db);
    }
    test_end();
}

typedef struct { long n; double *inp, *R, *out; } gelu_ctx;
static double gelu_obj(void *p) {
    gelu_ctx *c = p;
    gelu_forward_ref(c->out, c->inp, c->n);
    return dot_d(c->out, c->R, c->n);
}
static void gradcheck_gelu(void) {
    test_begin("gradcheck_gelu");
    gelu_ctx c = {.n = 50};
    c.inp = dalloc(c.n); c.R = dalloc(c.n); c.out = dalloc(c.n);
    for (long i = 0; i < c.n; i++) c.inp[i] = -5 + 10 * urand();
    c.inp[0] = 0.0;
    fill_normal_d(c.R, c.n, 1);
    double *d = dalloc(c.n);
    gelu_backward_ref(d, c.R, c.inp, c.n);
    double e = fd_err(gelu_obj, &c, c.inp, c.n, d);
    CHECK(e < FD_TOL, "fd rel err %.3g", e);
    free(c.inp); free(c.R); free(c.out); free(d);
    test_end();
}

/* The fused bias + GELU: gradients with respect to the pre-activation and to the bias (the
 * bias gradient of the model is the column sum of the pre-activation's). */
typedef struct { long N; int C; double *x0, *bias, *x, *R, *out; } bgelu_ctx;
static double bgelu_obj(void *p) {
    bgelu_ctx *c = p;
    memcpy(c->x, c->x0, sizeof(double) * c->N * c->C);
    bias_gelu_forward_ref(c->out, c->x, c->bias, c->N, c->C);
    return dot_d(c->out, c->R, c->N * c->C);
}
static void gradcheck_bias_gelu(void) {
    test_begin("gradcheck_bias_gelu");
    bgelu_ctx c = {.N = 4, .C = 5};
    long n = c.N * c.C;
    c.x0 = dalloc(n); c.bias = dalloc(c.C); c.x = dalloc(n); c.R = dalloc(n); c.out = dalloc(n);
    fill_normal_d(c.x0, n, 1.5); fill_normal_d(c.bias, c.C, 1); fill_normal_d(c.R, n, 1);
    bgelu_obj(&c);   // c.x = x0 + bias, the pre-activation backward takes
    double *dx = dalloc(n), *db = dalloc(c.C);
    gelu_backward_ref(dx, c.R, c.x, n);
    for (long i = 0; i < n; i++) db[i % c.C] += dx[i];
    double e1 = fd_err(bgelu_obj, &c, c.x0, n, dx), e2 = fd_err(bgelu_obj, &c, c.bias, c.C, db);
    CHECK(e1 < FD_TOL, "dx fd rel err %.3g", e1);
    CHECK(e2 < FD_TOL, "dbias fd rel err %.3g", e2);
    free(c.x0); free(c.bias); free(c.x); free(c.R); free(c.out); free(dx); free(db);
    test_end();
}

typedef struct {
    int B, T, NH, hd, mode, sq, skv;
    const double *q, *k, *v;
    double *R, *out, *att;
} att_ctx;
static double att_obj(void *p) {
    att_ctx *c = p;
    attention_forward_ref(c->out, c->att, c->q, c->k, c->v, c->sq, c->skv, c->B, c->T, c->NH, c->hd, c->mode);
    return dot_d(c->out, c->R, (long)c->B * c->T * c->NH * c->hd);
}
static const char *mode_name[3] = {"full", "causal", "strict"};
static void gradcheck_attention(int mode) {
    char name[64];
    snprintf(name, sizeof name, "gradcheck_attention_%s", mode_name[mode]);
    test_begin(name);
    const int B = 2, T = 6, NH = 2, hd = 3, D = NH * hd;
    const long nout = (long)B * T * D;
    att_ctx c = {.B = B, .T = T, .NH = NH, .hd = hd, .mode = mode};
    c.R = dalloc(nout); c.out = dalloc(nout); c.att = dalloc((long)B * NH * T * T);
    fill_normal_d(c.R, nout, 1);
    // fused view: qkv [B,T,3D], q/k/v are column offsets 0, D, 2D with stride 3D
    {
        const long n = (long)B * T * 3 * D;
        double *qkv = dalloc(n), *dqkv = dalloc(n);
        fill_normal_d(qkv, n, 1);
        c.q = qkv; c.k = qkv + D; c.v = qkv + 2 * D; c.sq = c.skv = 3 * D;
        att_obj(&c);
        attention_backward_ref(dqkv, dqkv + D, dqkv + 2 * D, c.R, c.att, c.q, c.k, c.v,
                               c.sq, c.skv, B, T, NH, hd, mode);
        double e = fd_err(att_obj, &c, qkv, n, dqkv);
        CHECK(e < FD_TOL, "fused qkv fd rel err %.3g", e);
        CHECK(max_abs_d(dqkv, n) > 1e-3, "fused gradient is (near) zero");
        free(qkv); free(dqkv);
    }
    // separate [B,T,D] buffers, stride D
    {
        const long n = (long)B * T * D;
        double *q = dalloc(n), *k = dalloc(n), *v = dalloc(n), *dq = dalloc(n), *dk = dalloc(n), *dv = dalloc(n);
        fill_normal_d(q, n, 1); fill_normal_d(k, n, 1); fill_normal_d(v, n, 1);
        c.q = q; c.k = k; c.v = v; c.sq = c.skv = D;
        att_obj(&c);
        attention_backward_ref(dq, dk, dv, c.R, c.att, q, k, v, D, D, B, T, NH, hd, mode);
        double eq = fd_err(att_obj, &c, q, n, dq), ek = fd_err(att_obj, &c, k, n, dk), ev = fd_err(att_obj, &c, v, n, dv);
        CHECK(eq < FD_TOL, "separate dq fd rel err %.3g", eq);
        CHECK(ek < FD_TOL, "separate dk fd rel err %.3g", ek);
        CHECK(ev < FD_TOL, "separate dv fd rel err %.3g", ev);
        CHECK(max_abs_d(dq, n) > 1e-3 && max_abs_d(dk, n) > 1e-3, "separate gradient is (near) zero");
        free(q); free(k); free(v); free(dq); free(dk); free(dv);
    }
    free(c.R); free(c.out); free(c.att);
    test_end();
}

/* The blur sizes the tests cover: the paper's 9,1, the identity 1, a wide 3,… and 5,2. */
static const struct { int K; double sigma; } blur_ks[] = {{9, 1.0}, {1, 1.0}, {3, 0.7}, {5, 2.0}, {7, 3.0}};
#define NBLUR ((int)(sizeof blur_ks / sizeof blur_ks[0]))

typedef struct { int B, C, H, W, K; double sigma, *img, *R, *out; } blur_ctx;
static double blur_obj(void *p) {
    blur_ctx *c = p;
    blur_forward_ref(c->out, c->img, c->B, c->C, c->H, c->W, c->K, c->sigma);
    return dot_d(c->out, c->R, (long)c->B * c->C * c->H * c->W);
}
static void gradcheck_blur(void) {
    for (int k = 0; k < NBLUR; k++) {
        char name[64];
        snprintf(name, sizeof name, "gradcheck_blur_%d_%g", blur_ks[k].K, blur_ks[k].sigma);
        test_begin(name);
        blur_ctx c = {.B = 1, .C = 2, .H = 6, .W = 11, .K = blur_ks[k].K, .sigma = blur_ks[k].sigma};
        long n = (long)c.B * c.C * c.H * c.W;
        c.img = dalloc(n); c.R = dalloc(n); c.out = dalloc(n);
        fill_normal_d(c.img, n, 1); fill_normal_d(c.R, n, 1);
        double *d = dalloc(n);
        blur_backward_ref(d, c.R, c.B, c.C, c.H, c.W, c.K, c.sigma);
        double e = fd_err(blur_obj, &c, c.img, n, d);
        CHECK(e < FD_TOL, "fd rel err %.3g", e);
        free(c.img); free(c.R); free(c.out); free(d);
        test_end();
    }
}

typedef struct { long N; int C; double *inp, *R, *out, *mean, *rstd; } pn_ctx;
static double pn_obj(void *p) {
    pn_ctx *c = p;
    patchnorm_forward_ref(c->out, c->mean, c->rstd, c->inp, c->N, c->C);
    return dot_d(c->out, c->R, c->N * c->C);
}
static void gradcheck_patchnorm(void) {
    test_begin("gradcheck_patchnorm");
    pn_ctx c = {.N = 3, .C = 12};
    long n = c.N * c.C;
    c.inp = dalloc(n); c.R = dalloc(n); c.out = dalloc(n); c.mean = dalloc(c.N); c.rstd = dalloc(c.N);
    fill_normal_d(c.inp, n, 1); fill_normal_d(c.R, n, 1);
    double *d = dalloc(n);
    pn_obj(&c);
    patchnorm_backward_ref(d, c.R, c.inp, c.mean, c.rstd, c.N, c.C);
    double e = fd_err(pn_obj, &c, c.inp, n, d);
    CHECK(e < FD_TOL, "fd rel err %.3g", e);
    free(c.inp); free(c.R); free(c.out); free(c.mean); free(c.rstd); free(d);
    test_end();
}

typedef struct { long n; double scale, *pred, *target; } mse_ctx;
static double mse_obj(void *p) { mse_ctx *c = p; return c->scale * mse_forward_ref(c->pred, c->target, c->n); }
/* L1 away from ties (|pred − target| ≥ 0.05, so ±h never crosses a kink), then the tie itself:
 * the gradient at exactly 0 is 0, as torch's sign. */
static double l1_obj(void *p) { mse_ctx *c = p; return c->scale * l1_forward_ref(c->pred, c->target, c->n); }
static void gradcheck_l1(void) {
    test_begin("gradcheck_l1");
    mse_ctx c = {.n = 20, .scale = 0.7};
    c.pred = dalloc(c.n); c.target = dalloc(c.n);
    fill_normal_d(c.pred, c.n, 1); fill_normal_d(c.target, c.n, 1);
    for (long i = 0; i < c.n; i++)
        if (fabs(c.pred[i] - c.target[i]) < 0.05) c.pred[i] = c.target[i] + (i % 2 ? 0.1 : -0.1);
    double *d = dalloc(c.n);
    l1_backward_ref(d, c.pred, c.target, c.n, c.scale);
    double e = fd_err(l1_obj, &c, c.pred, c.n, d);
    CHECK(e < FD_TOL, "fd rel err %.3g", e);
    float p[3] = {1.5f, -2.0f, 0.25f}, y[3] = {1.5f, 1.0f, 0.0f}, dp[3] = {0.5f, 0.5f, 0.5f};
    l1_backward(dp, p, y, 3, 3.0f);
    CHECK(dp[0] == 0.5f && dp[1] == -0.5f && dp[2] == 1.5f, "tie/neg/pos grads %g %g %g, want 0.5 -0.5 1.5", dp[0],
          dp[1], dp[2]);
    CHECK(fabs(l1_forward(p, y, 3) - (0 + 3.0 + 0.25) / 3) < 1e-12, "loss %.9g", l1_forward(p, y, 3));
    free(c.pred); free(c.target); free(d);
    test_end();
}

static void gradcheck_mse(void) {
    test_begin("gradcheck_mse");
    mse_ctx c = {.n = 20, .scale = 0.7};
    c.pred = dalloc(c.n); c.target = dalloc(c.n);
    fill_normal_d(c.pred, c.n, 1); fill_normal_d(c.target, c.n, 1);
    double *d = dalloc(c.n);
    mse_backward_ref(d, c.pred, c.target, c.n, c.scale);
    double e = fd_err(mse_obj, &c, c.pred, c.n, d);
    CHECK(e < FD_TOL, "fd rel err %.3g", e);
    free(c.pred); free(c.target); free(d);
    test_end();
}

/* soft targets that do not sum to 1, so the p·Σt term of the gradient is exercised too */
typedef struct { int B, C; double scale, *x, *t, *p; } softce_ctx;
static double softce_obj(void *v) { softce_ctx *c = v; return c->scale * softce_forward_ref(c->p, c->x, c->t, c->B, c->C); }
static void gradcheck_softce(void) {
    test_begin("gradcheck_softce");
    softce_ctx c = {.B = 4, .C = 7, .scale = 0.7};
    long n = (long)c.B * c.C;
    c.x = dalloc(n); c.t = dalloc(n); c.p = dalloc(n);
    fill_normal_d(c.x, n, 2);
    for (long i = 0; i < n; i++) c.t[i] = urand() * 0.4;
    double *d = dalloc(n);
    softce_forward_ref(c.p, c.x, c.t, c.B, c.C);
    softce_backward_ref(d, c.p, c.t, c.B, c.C, c.scale);
    double e = fd_err(softce_obj, &c, c.x, n, d);
    CHECK(e < FD_TOL, "fd rel err %.3g", e);
    free(c.x); free(c.t); free(c.p); free(d);
    test_end();
}

/* ------------------------------------------------------------------ 2. fast vs reference */

static void fast_layernorm(void) {
    test_begin("fast_layernorm");
    const struct { long N; int C; } cfg[] = {{1, 1}, {1, 12}, {7, 12}, {197, 192}, {3, 769}};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const long N = cfg[t].N, n = N * cfg[t].C;
        const int C = cfg[t].C;
        float *x = falloc(n), *w = falloc(C), *b = falloc(C), *dy = falloc(n), *out = falloc(n),
              *mean = falloc(N), *rstd = falloc(N);
        fill_normal_f(x, n, 1); fill_normal_f(w, C, 1); fill_normal_f(b, C, 1); fill_normal_f(dy, n, 1);
        for (long i = 0; i < n; i++) x[i] += 0.5f;   // non-zero mean
        double *xd = to_d(x, n), *wd = to_d(w, C), *bd = to_d(b, C), *dyd = to_d(dy, n),
               *outd = dalloc(n), *meand = dalloc(N), *rstdd = dalloc(N);
        layernorm_forward(out, 0, mean, rstd, x, w, b, N, C);
        layernorm_forward_ref(outd, meand, rstdd, xd, wd, bd, N, C);
        double eo = err_fd(out, outd, n), em = err_fd(mean, meand, N), er = err_fd(rstd, rstdd, N);
        CHECK(eo < FWD_TOL && em < FWD_TOL && er < FWD_TOL, "N=%ld C=%d fwd err out %.3g mean %.3g rstd %.3g", N, C, eo, em, er);
        // without affine: the same as weight 1, bias 0, in both twins
        float *one = falloc(C), *zero = falloc(C), *out1 = falloc(n), *out0 = falloc(n);
        double *one_d = dalloc(C), *zero_d = dalloc(C), *out1d = dalloc(n), *out0d = dalloc(n);
        for (int i = 0; i < C; i++) { one[i] = 1.0f; one_d[i] = 1.0; }
        layernorm_forward(out1, 0, mean, rstd, x, one, zero, N, C);
        layernorm_forward(out0, 0, mean, rstd, x, NULL, NULL, N, C);
        layernorm_forward_ref(out1d, meand, rstdd, xd, one_d, zero_d, N, C);
        layernorm_forward_ref(out0d, meand, rstdd, xd, NULL, NULL, N, C);
        CHECK(!memcmp(out1, out0, sizeof(float) * n) && !memcmp(out1d, out0d, sizeof(double) * n) &&
                  err_fd(out0, out0d, n) < FWD_TOL,
              "N=%ld C=%d no-affine forward differs from weight 1 / bias 0 (err %.3g)", N, C, err_fd(out0, out0d, n));
        free(one); free(zero); free(out1); free(out0); free(one_d); free(zero_d); free(out1d); free(out0d);
        // bf16 output (a GEMM reads it): the f32 result rounded once; the statistics the same
        bf16_t *oh = xcalloc(n, sizeof(bf16_t));
        float *mean2 = falloc(N), *rstd2 = falloc(N);
        layernorm_forward(oh, 1, mean2, rstd2, x, w, b, N, C);
        const double rh = bf16_ratio(oh, outd, n, FWD_TOL);
        CHECK(rh <= 1 && !memcmp(mean, mean2, N * sizeof(float)) && !memcmp(rstd, rstd2, N * sizeof(float)),
              "N=%ld C=%d bf16 output error %.3g of one rounding, or its statistics differ", N, C, rh);
        free(oh); free(mean2); free(rstd2);
        // backward from non-zero starting gradients
        float *dx = falloc(n), *dw = falloc(C), *db = falloc(C);
        fill_normal_f(dx, n, 1); fill_normal_f(dw, C, 1); fill_normal_f(db, C, 1);
        float *dx0 = copy_f(dx, n), *dw0 = copy_f(dw, C), *db0 = copy_f(db, C);
        double *dxd = dalloc(n), *dwd = dalloc(C), *dbd = dalloc(C);
        layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, N, C);
        layernorm_backward_ref(dxd, dwd, dbd, dyd, xd, wd, meand, rstdd, N, C);
        double e1 = err_acc(dx, dx0, dxd, n), e2 = err_acc(dw, dw0, dwd, C), e3 = err_acc(db, db0, dbd, C);
        // C = 1 has dinp ≡ 0 exactly; the absolute error then is what err_acc reports
        CHECK(e1 < BWD_TOL && e2 < BWD_TOL && e3 < BWD_TOL, "N=%ld C=%d bwd err dinp %.3g dw %.3g db %.3g", N, C, e1, e2, e3);
        // NULL gradients are skipped
        float *dw2 = copy_f(dw0, C);
        layernorm_backward(NULL, dw2, NULL, dy, x, w, mean, rstd, N, C);
        double e4 = err_acc(dw2, dw0, dwd, C);
        CHECK(e4 < BWD_TOL, "N=%ld C=%d dw alone err %.3g", N, C, e4);
        free(x); free(w); free(b); free(dy); free(out); free(mean); free(rstd);
        free(xd); free(wd); free(bd); free(dyd); free(outd); free(meand); free(rstdd);
        free(dx); free(dw); free(db); free(dx0); free(dw0); free(db0); free(dxd); free(dwd); free(dbd); free(dw2);
    }
    test_end();
}

static void fast_linear(void) {
    test_begin(tagged("fast_linear"));
    const struct { long N; int C, OC; } cfg[] = {{1, 1, 1}, {7, 12, 5}, {197, 64, 48}, {65, 192, 576}};
    err_t e = {0};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++)
        for (int variant = 0; variant < 4; variant++) {   // no bias; bias; bias and a residual; bias, dinp written
            const int withbias = variant > 0, withres = variant == 2, set = variant == 3;
            const long N = cfg[t].N;
            const int C = cfg[t].C, OC = cfg[t].OC;
            const long ni = N * C, nw = (long)OC * C, no = N * OC;
            lin_plan_t p;
            plan_or_die(linear_plan(&p, &cur, N, C, OC, (withbias ? LIN_ACCUMULATE : 0) | LIN_BACKWARD | (set ? LIN_DINP_SET : LIN_DINP), &e),
                        &e);
            workspace_t ws;
            void *wsm = ws_make(&ws, linear_plan_scratch(&p), 0);
            float *x = falloc(ni), *W = falloc(nw), *bias = withbias ? falloc(OC) : NULL, *dy = falloc(no), *out = falloc(no),
                  *res = withres ? falloc(no) : NULL;
            fill_normal_f(x, ni, 1); fill_normal_f(W, nw, 0.1f); fill_normal_f(dy, no, 1);
            if (bias) fill_normal_f(bias, OC, 1);
            if (res) fill_normal_f(res, no, 1);
            fill_normal_f(out, no, 100);   // forward must overwrite, not accumulate
            double *xd = to_d(x, ni), *Wd = to_d(W, nw), *bd = bias ? to_d(bias, OC) : NULL, *dyd = to_d(dy, no), *outd = dalloc(no);
            linear_forward(out, x, W, bias, res, N, C, OC, &p, &ws);
            linear_forward_ref(outd, xd, Wd, bd, N, C, OC);
            if (res) for (long i = 0; i < no; i++) outd[i] += res[i];
            double eo = err_fd(out, outd, no);
            CHECK(eo < FWD_TOL, "N=%ld C=%d OC=%d bias=%d res=%d fwd err %.3g", N, C, OC, withbias, withres, eo);
            float *dx = falloc(ni), *dW = falloc(nw), *db = falloc(OC);
            fill_normal_f(dx, ni, 1); fill_normal_f(dW, nw, 1); fill_normal_f(db, OC, 1);
            // a LIN_DINP_SET plan must write dinp without reading it: NaN there survives an
            // accumulation (or an element left unwritten) and fails the comparison below
            if (set) for (long i = 0; i < ni; i++) dx[i] = NAN;
            float *dx0 = copy_f(dx, ni), *dW0 = copy_f(dW, nw), *db0 = copy_f(db, OC);
            double *dxd = dalloc(ni), *dWd = dalloc(nw), *dbd = dalloc(OC);
            // the first layer of a network passes dinp = NULL
            float *dxp = (t & 1) ? NULL : dx;
            linear_backward(dxp, dW, bias ? db : NULL, dy, x, W, N, C, OC, &p, &ws);
            linear_backward_ref(dxd, dWd, dbd, dyd, xd, Wd, N, C, OC);
            double e1 = !dxp ? 0 : set ? err_fd(dx, dxd, ni) : err_acc(dx, dx0, dxd, ni), e2 = err_acc(dW, dW0, dWd, nw),
                   e3 = bias ? err_acc(db, db0, dbd, OC) : 0;
            CHECK(e1 < BWD_TOL && e2 < BWD_TOL && e3 < BWD_TOL,
                  "N=%ld C=%d OC=%d bias=%d dinp_set=%d bwd err dinp %.3g dW %.3g db %.3g", N, C, OC, withbias, set, e1, e2,
                  e3);
            if (!dxp) CHECK(memcmp(dx, dx0, ni * sizeof(float)) == 0, "dinp touched although NULL was passed");
            if (!bias) CHECK(memcmp(db, db0, OC * sizeof(float)) == 0, "dbias touched although NULL was passed");
            linear_plan_free(&p);
            free(wsm);
            free(x); free(W); free(bias); free(res); free(dy); free(out); free(xd); free(Wd); free(bd); free(dyd); free(outd);
            free(dx); free(dW); free(db); free(dx0); free(dW0); free(db0); free(dxd); free(dWd); free(dbd);
        }
    test_end();

    // a forward of fewer rows than planned (the last batch of an evaluation): those rows are right
    test_begin(tagged("linear_fewer_rows_than_planned"));
    {
        const long NP = 50, N = 37;
        const int C = 24, OC = 40;
        lin_plan_t p;
        plan_or_die(linear_plan(&p, &cur, NP, C, OC, LIN_ACCUMULATE, &e), &e);
        workspace_t ws;
        void *wsm = ws_make(&ws, linear_plan_scratch(&p), 0);
        float *x = falloc(NP * C), *W = falloc((long)OC * C), *bias = falloc(OC), *out = falloc(NP * OC);
        fill_normal_f(x, N * C, 1); fill_normal_f(W, (long)OC * C, 0.2f); fill_normal_f(bias, OC, 1);
        double *xd = to_d(x, N * C), *Wd = to_d(W, (long)OC * C), *bd = to_d(bias, OC), *outd = dalloc(N * OC);
        linear_forward(out, x, W, bias, NULL, N, C, OC, &p, &ws);
        linear_forward_ref(outd, xd, Wd, bd, N, C, OC);
        CHECK(err_fd(out, outd, N * OC) < FWD_TOL, "rows of a partial batch: err %.3g", err_fd(out, outd, N * OC));
        linear_plan_free(&p);
        free(wsm); free(x); free(W); free(bias); free(out); free(xd); free(Wd); free(bd); free(outd);
    }
    test_end();
}

/* The epilogue that writes q/k/v: out = x + bias, f32 (in place) and bf16. */
static void fast_bias_store(void) {
    test_begin("fast_bias_store");
    const struct { long N; int C; } cfg[] = {{1, 1}, {7, 300}, {197, 576}};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const long N = cfg[t].N, n = N * cfg[t].C;
        const int C = cfg[t].C;
        float *x = falloc(n), *b = falloc(C);
        fill_normal_f(x, n, 1); fill_normal_f(b, C, 1);
        double *xd = to_d(x, n), *bd = to_d(b, C), *ref = dalloc(n);
        bias_store_ref(ref, xd, bd, N, C);
        bf16_t *oh = xcalloc(n, sizeof(bf16_t));
        bias_store(oh, 1, x, b, N, C);
        const double rh = bf16_ratio(oh, ref, n, 1e-7);
        bias_store(x, 0, x, b, N, C);   // in place
        const double ef = err_fd(x, ref, n);
        CHECK(ef < 1e-7 && rh <= 1, "N=%ld C=%d f32 err %.3g, bf16 error %.3g of one rounding", N, C, ef, rh);
        free(x); free(b); free(xd); free(bd); free(ref); free(oh);
    }
    test_end();
}

static void fast_gelu(void) {
    test_begin("fast_bias_gelu");
    // rows × columns (the chunked path crosses 256), with and without a bias, f32 and bf16 out
    const struct { long N; int C; } sizes[] = {{1, 1}, {1, 4099}, {13, 768}};
    for (int t = 0; t < 3; t++)
        for (int withbias = 0; withbias < 2; withbias++) {
            const long N = sizes[t].N, n = N * sizes[t].C;
            const int C = sizes[t].C;
            float *x = falloc(n), *bias = withbias ? falloc(C) : NULL, *dy = falloc(n), *out = falloc(n), *dx = falloc(n);
            for (long i = 0; i < n; i++) x[i] = (float)(-8 + 16 * urand());
            x[0] = n > 1 ? 0.0f : -0.3f;
            if (bias) fill_normal_f(bias, C, 1);
            fill_normal_f(dy, n, 1); fill_normal_f(dx, n, 1);
            float *dx0 = copy_f(dx, n), *x2 = copy_f(x, n);
            double *xd = to_d(x, n), *bd = bias ? to_d(bias, C) : NULL, *dyd = to_d(dy, n), *outd = dalloc(n), *dxd = dalloc(n);
            bias_gelu_forward(out, 0, x, bias, N, C);
            bias_gelu_forward_ref(outd, xd, bd, N, C);
            gelu_backward(dx, dy, x, n);
            gelu_backward_ref(dxd, dyd, xd, n);
            // in place: dy ⊙ GELU'(x), exactly what gelu_backward adds to zeros
            float *din = copy_f(dy, n), *dz = falloc(n);
            gelu_backward_inplace(din, x, n);
            gelu_backward(dz, dy, x, n);
            CHECK(!memcmp(din, dz, n * sizeof(float)), "N=%ld C=%d: gelu_backward_inplace differs from gelu_backward", N, C);
            free(din); free(dz);
            double e1 = err_fd(out, outd, n), e2 = err_acc(dx, dx0, dxd, n), e3 = err_fd(x, xd, n);
            CHECK(e1 < FWD_TOL && e3 < 1e-7, "N=%ld C=%d bias=%d fwd err %.3g, kept pre-activation err %.3g", N, C, withbias, e1, e3);
            CHECK(e2 < BWD_TOL, "N=%ld C=%d bias=%d bwd err %.3g", N, C, withbias, e2);
            bf16_t *oh = xcalloc(n, sizeof(bf16_t));
            bias_gelu_forward(oh, 1, x2, bias, N, C);
            const double rh = bf16_ratio(oh, outd, n, FWD_TOL);
            CHECK(rh <= 1 && !memcmp(x, x2, n * sizeof(float)), "N=%ld C=%d bias=%d bf16 error %.3g of one rounding", N, C,
                  withbias, rh);
            free(x); free(x2); free(bias); free(dy); free(out); free(dx); free(dx0); free(xd); free(bd); free(dyd); free(outd);
            free(dxd); free(oh);
        }
    test_end();

    // Element by element over a dense grid (both sides of the Φ branch at |x| = 1/√2 and the
    // left tail, where values are tiny): relative to each value, not to the array maximum.
    test_begin("fast_gelu_elementwise");
    const long n = 200001;
    float *x = falloc(n), *out = falloc(n), *one = falloc(n), *dx = falloc(n);
    double *xd = dalloc(n), *outd = dalloc(n), *oned = dalloc(n), *dxd = dalloc(n);
    for (long i = 0; i < n; i++) { x[i] = (float)(-10 + 20.0 * i / (n - 1)); xd[i] = x[i]; one[i] = 1; oned[i] = 1; }
    bias_gelu_forward(out, 0, x, NULL, 1, n);
    gelu_forward_ref(outd, xd, n);
    gelu_backward(dx, one, x, n);
    gelu_backward_ref(dxd, oned, xd, n);
    double ef = 0, eb = 0;
    for (long i = 0; i < n; i++) {
        const double X = xd[i];
        if (outd[i] != 0) ef = fmax(ef, fabs(out[i] - outd[i]) / fabs(outd[i]));
        // the derivative Φ + xφ crosses 0 near x = −0.75: measure against its terms' size
        const double sc = 0.5 * erfc(-X / sqrt(2)) + fabs(X) * exp(-0.5 * X * X) / sqrt(2 * M_PI);
        eb = fmax(eb, fabs(dx[i] - dxd[i]) / sc);
    }
    CHECK(ef < 2e-5, "forward max elementwise rel err %.3g", ef);
    CHECK(eb < 2e-5, "backward max elementwise rel err %.3g", eb);
    free(x); free(out); free(one); free(dx); free(xd); free(outd); free(oned); free(dxd);
    test_end();
}

/* Layouts of q/k/v for the attention tests. */
enum { LAY_FUSED, LAY_SEPARATE, LAY_MIXED, NLAY };   // mixed: q stride D, fused kv stride 2D
static const char *lay_name[NLAY] = {"fused", "separate", "mixed"};

/* One attention configuration, fast vs reference; which = bitmask of requested grads (1 q, 2 k, 4 v). */
static void attention_case(int B, int T, int NH, int hd, int mode, int lay, int which) {
    const int D = NH * hd;
    const long BT = (long)B * T, natt = (long)B * NH * T * T, nout = BT * D;
    int sq, skv;
    long nqbuf, nkvbuf;   // float counts of the q buffer and of the k/v buffer (same buffer when fused)
    long koff, voff;      // offsets of k and v inside their buffer
    if (lay == LAY_FUSED) { sq = skv = 3 * D; nqbuf = BT * 3 * D; nkvbuf = 0; koff = D; voff = 2 * D; }
    else if (lay == LAY_SEPARATE) { sq = skv = D; nqbuf = BT * D; nkvbuf = BT * D; koff = 0; voff = 0; }
    else { sq = D; skv = 2 * D; nqbuf = BT * D; nkvbuf = BT * 2 * D; koff = 0; voff = D; }
    // buffers: fused → one [B,T,3D]; separate → q, k, v; mixed → q, kv
    float *qb = falloc(nqbuf), *kb = nkvbuf ? falloc(nkvbuf) : NULL, *vb = (lay == LAY_SEPARATE) ? falloc(nkvbuf) : NULL;
    fill_normal_f(qb, nqbuf, 1);
    if (kb) fill_normal_f(kb, nkvbuf, 1);
    if (vb) fill_normal_f(vb, nkvbuf, 1);
    const float *q = qb, *k = (lay == LAY_FUSED ? qb : kb) + koff, *v = (lay == LAY_FUSED ? qb : lay == LAY_SEPARATE ? vb : kb) + voff;
    double *qbd = to_d(qb, nqbuf), *kbd = kb ? to_d(kb, nkvbuf) : NULL, *vbd = vb ? to_d(vb, nkvbuf) : NULL;
    const double *qd = qbd, *kd = (lay == LAY_FUSED ? qbd : kbd) + koff,
                 *vd = (lay == LAY_FUSED ? qbd : lay == LAY_SEPARATE ? vbd : kbd) + voff;

    // exact-size allocations so ASan sees any overrun of att, out or the workspace
    att_plan_t p;
    err_t e = {0};
    plan_or_die(attention_plan(&p, &cur, T, NH, hd, sq, skv, mode, 1, &e), &e);
    workspace_t ws;
    void *scratch = ws_make(&ws, p.thread_bytes, p.thread_bytes);
    float *out = malloc(nout * sizeof(float)), *att = malloc(natt * sizeof(float));
    for (long i = 0; i < natt; i++) att[i] = NAN;   // every entry must be written
    double *outd = dalloc(nout), *attd = dalloc(natt);
    attention_forward(out, att, q, k, v, B, &p, &ws);
    attention_forward_ref(outd, attd, qd, kd, vd, sq, skv, B, T, NH, hd, mode);
    double eo = err_fd(out, outd, nout), ea = err_fd(att, attd, natt);
    CHECK(eo < FWD_TOL && ea < FWD_TOL, "B=%d T=%d NH=%d hd=%d %s %s fwd err out %.3g att %.3g",
          B, T, NH, hd, mode_name[mode], lay_name[lay], eo, ea);
    long badmask = 0;
    double worst_sum = 0;
    for (long r = 0; r < (long)B * NH * T; r++) {
        const int i = (int)(r % T), last = attn_last_key(mode, i, T);
        double s = 0;
        for (int j = 0; j < T; j++) {
            float a = att[r * T + j];
            if (j > last) { if (a != 0.0f) badmask++; }
            else s += a;
        }
        if (fabs(s - 1) > worst_sum || s != s) worst_sum = s != s ? INFINITY : fabs(s - 1);
    }
    CHECK(badmask == 0, "B=%d T=%d %s: %ld masked att entries are not exactly 0", B, T, mode_name[mode], badmask);
    CHECK(worst_sum < 1e-5, "B=%d T=%d %s: att row sum off by %.3g", B, T, mode_name[mode], worst_sum);

    // backward: gradient buffers shaped like the inputs, started non-zero
    float *dy = falloc(nout);
    fill_normal_f(dy, nout, 1);
    double *dyd = to_d(dy, nout);
    float *dqb = falloc(nqbuf), *dkb = nkvbuf ? falloc(nkvbuf) : NULL, *dvb = vb ? falloc(nkvbuf) : NULL;
    fill_normal_f(dqb, nqbuf, 1);
    if (dkb) fill_normal_f(dkb, nkvbuf, 1);
    if (dvb) fill_normal_f(dvb, nkvbuf, 1);
    float *dqb0 = copy_f(dqb, nqbuf), *dkb0 = dkb ? copy_f(dkb, nkvbuf) : NULL, *dvb0 = dvb ? copy_f(dvb, nkvbuf) : NULL;
    double *dqbd = dalloc(nqbuf), *dkbd = nkvbuf ? dalloc(nkvbuf) : NULL, *dvbd = vb ? dalloc(nkvbuf) : NULL;
    float *dq = dqb, *dk = (lay == LAY_FUSED ? dqb : dkb) + koff, *dv = (lay == LAY_FUSED ? dqb : lay == LAY_SEPARATE ? dvb : dkb) + voff;
    double *dqd = dqbd, *dkd = (lay == LAY_FUSED ? dqbd : dkbd) + koff,
           *dvd = (lay == LAY_FUSED ? dqbd : lay == LAY_SEPARATE ? dvbd : dkbd) + voff;
    attention_backward(which & 1 ? dq : NULL, which & 2 ? dk : NULL, which & 4 ? dv : NULL, dy, att, q, k, v, B, &p, &ws);
    attention_backward_ref(which & 1 ? dqd : NULL, which & 2 ? dkd : NULL, which & 4 ? dvd : NULL, dyd, attd,
                           qd, kd, vd, sq, skv, B, T, NH, hd, mode);
    // the whole gradient buffers are compared, so untouched columns (NULL grads, the other
    // parts of a fused buffer) must come back exactly as they started
    double e1 = err_acc(dqb, dqb0, dqbd, nqbuf), e2 = dkb ? err_acc(dkb, dkb0, dkbd, nkvbuf) : 0,
           e3 = dvb ? err_acc(dvb, dvb0, dvbd, nkvbuf) : 0;
    CHECK(e1 < BWD_TOL && e2 < BWD_TOL && e3 < BWD_TOL, "B=%d T=%d NH=%d hd=%d %s %s grads=%d bwd err %.3g %.3g %.3g",
          B, T, NH, hd, mode_name[mode], lay_name[lay], which, e1, e2, e3);
    const double gmax = fmax(max_abs_d(dqbd, nqbuf), fmax(dkbd ? max_abs_d(dkbd, nkvbuf) : 0, dvbd ? max_abs_d(dvbd, nkvbuf) : 0));
    CHECK(gmax > 1e-3, "reference gradient is zero: the comparison would prove nothing");

    attention_plan_free(&p);
    free(qb); free(kb); free(vb); free(qbd); free(kbd); free(vbd); free(out); free(att); free(scratch);
    free(outd); free(attd); free(dy); free(dyd); free(dqb); free(dkb); free(dvb); free(dqb0); free(dkb0); free(dvb0);
    free(dqbd); free(dkbd); free(dvbd);
}

static void fast_attention(int mode) {
    char name[64];
    snprintf(name, sizeof name, "fast_attention_%s%s", mode_name[mode], gemm_tag);
    test_begin(name);
    const int cfg[][4] = {{1, 1, 1, 12}, {1, 2, 2, 12}, {3, 7, 3, 12}, {2, 33, 1, 5}, {1, 65, 2, 16}, {3, 197, 3, 12}};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++)
        for (int lay = 0; lay < NLAY; lay++)
            attention_case(cfg[t][0], cfg[t][1], cfg[t][2], cfg[t][3], mode, lay, 7);
    // NULL gradient pointers: only the requested ones move
    attention_case(2, 40, 2, 12, mode, LAY_FUSED, 1);
    attention_case(2, 40, 2, 12, mode, LAY_FUSED, 6);
    attention_case(2, 40, 2, 12, mode, LAY_SEPARATE, 4);
    attention_case(2, 40, 2, 12, mode, LAY_MIXED, 2);
    test_end();
}

/* A batch of one (b, head) pair takes the path where OpenBLAS may thread the GEMMs itself. */
static void attention_masks_small(void) {
    test_begin(tagged("attention_masks_explicit"));
    // T = 3, one head, hd = 1, all scores equal (q = 0): the probabilities are 1/(#visible keys)
    const int T = 3;
    float q[3] = {0, 0, 0}, k[3] = {1, 2, 3}, v[3] = {1, 10, 100}, out[3], att[9];
    const float want[3][9] = {
        {1 / 3.f, 1 / 3.f, 1 / 3.f, 1 / 3.f, 1 / 3.f, 1 / 3.f, 1 / 3.f, 1 / 3.f, 1 / 3.f},
        {1, 0, 0, 0.5f, 0.5f, 0, 1 / 3.f, 1 / 3.f, 1 / 3.f},
        {1, 0, 0, 1, 0, 0, 0.5f, 0.5f, 0}};
    const float want_out[3][3] = {{37, 37, 37}, {1, 5.5f, 37}, {1, 1, 5.5f}};
    for (int mode = 0; mode < 3; mode++) {
        att_plan_t p;
        err_t e = {0};
        plan_or_die(attention_plan(&p, &cur, T, 1, 1, 1, 1, mode, 0, &e), &e);
        workspace_t ws;
        void *wsm = ws_make(&ws, p.thread_bytes, p.thread_bytes);
        attention_forward(out, att, q, k, v, 1, &p, &ws);
        attention_plan_free(&p);
        free(wsm);
        for (int i = 0; i < 9; i++)
            CHECK(fabsf(att[i] - want[mode][i]) < 1e-6f && (want[mode][i] != 0 || att[i] == 0.0f),
                  "%s att[%d] = %g want %g", mode_name[mode], i, att[i], want[mode][i]);
        for (int i = 0; i < 3; i++)
            CHECK(fabsf(out[i] - want_out[mode][i]) < 1e-5f, "%s out[%d] = %g want %g", mode_name[mode], i, out[i], want_out[mode][i]);
    }
    test_end();
}

static void fast_blur(void) {
    test_begin("fast_blur_separable_eq_2d");
    const int cfg[][4] = {{2, 3, 32, 40}, {1, 2, 5, 3}, {1, 1, 1, 1}, {1, 1, 10, 300}, {1, 3, 9, 520}, {1, 2, 13, 7}};
    for (int kk = 0; kk < NBLUR; kk++)
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int K = blur_ks[kk].K;
        const double sg = blur_ks[kk].sigma;
        const int B = cfg[t][0], C = cfg[t][1], H = cfg[t][2], W = cfg[t][3];
        const long n = (long)B * C * H * W;
        float *x = falloc(n), *out = falloc(n), *dy = falloc(n), *dx = falloc(n);
        fill_normal_f(x, n, 1); fill_normal_f(dy, n, 1); fill_normal_f(dx, n, 1);
        fill_normal_f(out, n, 100);   // forward must overwrite
        float *dx0 = copy_f(dx, n);
        double *xd = to_d(x, n), *dyd = to_d(dy, n), *outd = dalloc(n), *dxd = dalloc(n);
        blur_forward(out, x, B, C, H, W, K, sg);
        blur_forward_ref(outd, xd, B, C, H, W, K, sg);
        blur_backward(dx, dy, B, C, H, W, K, sg);
        blur_backward_ref(dxd, dyd, B, C, H, W, K, sg);
        double e1 = err_fd(out, outd, n), e2 = err_acc(dx, dx0, dxd, n);
        CHECK(e1 < 1e-6, "K=%d sigma=%g B=%d C=%d H=%d W=%d fwd err %.3g", K, sg, B, C, H, W, e1);
        // bwd adds to O(1) values: a wide kernel's small mass on a tiny image leaves their rounding in the sum
        CHECK(e2 < FWD_TOL, "K=%d sigma=%g B=%d C=%d H=%d W=%d bwd err %.3g", K, sg, B, C, H, W, e2);
        if (K == 1) CHECK(memcmp(out, x, n * sizeof(float)) == 0, "K=1 is not the identity");
        free(x); free(out); free(dy); free(dx); free(dx0); free(xd); free(dyd); free(outd); free(dxd);
    }
    test_end();

    // A constant image: the border shrinks exactly by the kernel mass that stays inside.
    test_begin("blur_zero_padding_borders_9_1");
    const int H = 16, W = 16;
    float img[16 * 16], out[16 * 16];
    for (int i = 0; i < H * W; i++) img[i] = 2.0f;
    blur_forward(out, img, 1, 1, H, W, 9, 1.0);
    // 1-D sums over the taps that land inside: all 9; offsets 0..4 (row/col 0); −1..4 (row/col 1)
    double tot = 0, half = 0, part1 = 0;
    for (int t = -4; t <= 4; t++) tot += exp(-0.5 * t * t);
    for (int t = 0; t <= 4; t++) half += exp(-0.5 * t * t);
    for (int t = -1; t <= 4; t++) part1 += exp(-0.5 * t * t);
    const double s = half / tot, s1 = part1 / tot;
    CHECK(fabs(out[0] - 2 * s * s) < 2e-6, "corner %g want %g", out[0], 2 * s * s);
    CHECK(fabs(out[H * W - 1] - 2 * s * s) < 2e-6, "far corner %g want %g", out[H * W - 1], 2 * s * s);
    CHECK(fabs(out[8] - 2 * s) < 2e-6, "top edge %g want %g", out[8], 2 * s);
    CHECK(fabs(out[8 * W] - 2 * s) < 2e-6, "left edge %g want %g", out[8 * W], 2 * s);
    CHECK(fabs(out[1 * W + 0] - 2 * s1 * s) < 2e-6, "(1,0) %g want %g", out[W], 2 * s1 * s);
    CHECK(fabs(out[8 * W + 8] - 2.0) < 2e-6, "interior %g want 2", out[8 * W + 8]);
    CHECK(out[0] < out[1] && out[1] < out[4 * W + 4], "border is not shrinking toward 0");
    test_end();

    // 5,2: the corner keeps the in-image share of the wide 1-D kernel, squared.
    test_begin("blur_zero_padding_borders_5_2");
    blur_forward(out, img, 1, 1, H, W, 5, 2.0);
    double t5 = 0, h5 = 0;
    for (int t = -2; t <= 2; t++) t5 += exp(-t * t / 8.0);
    for (int t = 0; t <= 2; t++) h5 += exp(-t * t / 8.0);
    CHECK(fabs(out[0] - 2 * (h5 / t5) * (h5 / t5)) < 2e-6, "corner %g want %g", out[0], 2 * (h5 / t5) * (h5 / t5));
    CHECK(fabs(out[2 * W + 2] - 2.0) < 2e-6, "(2,2) is interior for K=5: %g want 2", out[2 * W + 2]);
    CHECK(out[1 * W + 2] < 2.0f - 1e-3f, "(1,2) is a border pixel for K=5: %g", out[W + 2]);
    test_end();
}

static void fast_patchnorm(void) {
    test_begin("fast_patchnorm");
    // not C = 2: two values standardise to ±1/√2 whatever they are, the gradient is ~eps
    const struct { long N; int C; } cfg[] = {{1, 3}, {5, 12}, {300, 768}};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const long N = cfg[t].N, n = N * cfg[t].C;
        const int C = cfg[t].C;
        float *x = falloc(n), *out = falloc(n), *mean = falloc(N), *rstd = falloc(N), *dy = falloc(n), *dx = falloc(n);
        fill_normal_f(x, n, 1); fill_normal_f(dy, n, 1); fill_normal_f(dx, n, 1);
        for (long i = 0; i < n; i++) x[i] += 0.3f;
        float *dx0 = copy_f(dx, n);
        double *xd = to_d(x, n), *dyd = to_d(dy, n), *outd = dalloc(n), *md = dalloc(N), *rd = dalloc(N), *dxd = dalloc(n);
        patchnorm_forward(out, mean, rstd, x, N, C);
        patchnorm_forward_ref(outd, md, rd, xd, N, C);
        patchnorm_backward(dx, dy, x, mean, rstd, N, C);
        patchnorm_backward_ref(dxd, dyd, xd, md, rd, N, C);
        double e1 = err_fd(out, outd, n), e2 = err_fd(mean, md, N), e3 = err_fd(rstd, rd, N), e4 = err_acc(dx, dx0, dxd, n);
        CHECK(e1 < FWD_TOL && e2 < FWD_TOL && e3 < FWD_TOL, "N=%ld C=%d fwd err %.3g %.3g %.3g", N, C, e1, e2, e3);
        CHECK(e4 < BWD_TOL, "N=%ld C=%d bwd err %.3g", N, C, e4);
        // unbiased: Σ out² = C − 1 per row (up to eps)
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)out[i] * out[i];
        CHECK(fabs(ss - (C - 1)) < 1e-3 * C, "N=%ld C=%d row 0 Σ out² = %g, want %d (unbiased variance)", N, C, ss, C - 1);
        // in place (pixel_target relies on it)
        float *y = copy_f(x, n);
        patchnorm_forward(y, mean, rstd, y, N, C);
        CHECK(memcmp(y, out, n * sizeof(float)) == 0, "N=%ld C=%d in-place result differs", N, C);
        free(x); free(out); free(mean); free(rstd); free(dy); free(dx); free(dx0); free(y);
        free(xd); free(dyd); free(outd); free(md); free(rd); free(dxd);
    }
    test_end();
}

/* MSE and L1 against their twins; the L1 case plants exact ties (gradient 0 on both sides). */
typedef struct {
    const char *name;
    double (*fwd)(const float *, const float *, long);
    void (*bwd)(float *, const float *, const float *, long, float);
    double (*fwd_ref)(const double *, const double *, long);
    void (*bwd_ref)(double *, const double *, const double *, long, double);
    int ties;
} loss_kernels_t;

static void fast_loss(const loss_kernels_t *k) {
    test_begin(k->name);
    const long sizes[] = {1, 1000, 100003};
    for (int t = 0; t < 3; t++) {
        const long n = sizes[t];
        float *p = falloc(n), *y = falloc(n), *dp = falloc(n);
        // start dp at the gradient's own scale (2·0.7/n) so float rounding of the sum stays small
        fill_normal_f(p, n, 1); fill_normal_f(y, n, 1); fill_normal_f(dp, n, 1.4f / n);
        if (k->ties)
            for (long i = 0; i < n; i += 7) y[i] = p[i];
        float *dp0 = copy_f(dp, n);
        double *pd = to_d(p, n), *yd = to_d(y, n), *dpd = dalloc(n);
        double l = k->fwd(p, y, n), lr = k->fwd_ref(pd, yd, n);
        CHECK(fabs(l - lr) <= 1e-12 * fabs(lr), "n=%ld loss %.17g ref %.17g", n, l, lr);
        k->bwd(dp, p, y, n, 0.7f);
        k->bwd_ref(dpd, pd, yd, n, 0.7);
        double e = err_acc(dp, dp0, dpd, n);
        CHECK(e < BWD_TOL, "n=%ld bwd err %.3g", n, e);
        // the loss does not depend on the thread count
        int nt = omp_get_max_threads();
        omp_set_num_threads(1);
        double l1 = k->fwd(p, y, n);
        omp_set_num_threads(3);
        double l3 = k->fwd(p, y, n);
        omp_set_num_threads(nt);
        CHECK(l1 == l && l3 == l, "n=%ld loss varies with threads: %.17g %.17g %.17g", n, l1, l, l3);
        free(p); free(y); free(dp); free(dp0); free(pd); free(yd); free(dpd);
    }
    test_end();
}

static void fast_mse(void) {
    fast_loss(&(loss_kernels_t){"fast_mse", mse_forward, mse_backward, mse_forward_ref, mse_backward_ref, 0});
}
static void fast_l1(void) {
    fast_loss(&(loss_kernels_t){"fast_l1", l1_forward, l1_backward, l1_forward_ref, l1_backward_ref, 1});
}

static void fast_softce(void) {
    test_begin("fast_softce");
    const struct { int B, C; float sd; } cfg[] = {{1, 1, 1}, {3, 10, 1}, {32, 1000, 3}, {2, 5, 40}};
    for (int t = 0; t < 4; t++) {
        const int B = cfg[t].B, C = cfg[t].C;
        const long n = (long)B * C;
        float *x = falloc(n), *tg = falloc(n), *p = falloc(n), *dx = falloc(n);
        fill_normal_f(x, n, cfg[t].sd);   // sd 40: exp would overflow without the row maximum
        for (long i = 0; i < n; i++) tg[i] = (float)urand() / C;
        fill_normal_f(dx, n, 1.0f / n);
        float *dx0 = copy_f(dx, n);
        double *xd = to_d(x, n), *td = to_d(tg, n), *pd = dalloc(n), *dxd = dalloc(n);
        double l = softce_forward(p, x, tg, B, C), lr = softce_forward_ref(pd, xd, td, B, C);
        CHECK(fabs(l - lr) <= 1e-6 * fabs(lr) + 1e-7, "B=%d C=%d loss %.9g ref %.9g", B, C, l, lr);
        double ep = err_fd(p, pd, n);
        CHECK(ep < FWD_TOL, "B=%d C=%d probs err %.3g", B, C, ep);
        softce_backward(dx, p, tg, B, C, 0.7f);
        softce_backward_ref(dxd, pd, td, B, C, 0.7);
        double e = err_acc(dx, dx0, dxd, n);
        CHECK(e < BWD_TOL, "B=%d C=%d bwd err %.3g", B, C, e);
        free(x); free(tg); free(p); free(dx); free(dx0); free(xd); free(td); free(pd); free(dxd);
    }
    test_end();
}

/* ------------------------------------------------------------------ 4. patchify, pixel target */

static void test_patchify(void) {
    test_begin("patchify_orders");
    const int B = 2, H = 8, W = 12, P = 4, GW = W / P, L = (H / P) * GW, E = 3 * P * P;
    float *img = falloc((long)B * 3 * H * W), *cpp = falloc((long)B * L * E), *ppc = falloc((long)B * L * E);
    // pixel value = b·10⁶ + c·10⁴ + y·100 + x (exact in float)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    img[((b * 3 + c) * H + y) * W + x] = (float)(b * 1000000 + c * 10000 + y * 100 + x);
    patchify(cpp, 0, img, NULL, B, H, W, P, PATCH_CPP);
    patchify(ppc, 0, img, NULL, B, H, W, P, PATCH_PPC);
    long bad_cpp = 0, bad_ppc = 0;
    for (int b = 0; b < B; b++)
        for (int p = 0; p < L; p++) {
            const int gy = p / GW, gx = p % GW;
            for (int c = 0; c < 3; c++)
                for (int py = 0; py < P; py++)
                    for (int px = 0; px < P; px++) {
                        float want = (float)(b * 1000000 + c * 10000 + (gy * P + py) * 100 + gx * P + px);
                        if (cpp[((long)b * L + p) * E + (c * P + py) * P + px] != want) bad_cpp++;
                        if (ppc[((long)b * L + p) * E + (py * P + px) * 3 + c] != want) bad_ppc++;
                    }
        }
    CHECK(bad_cpp == 0, "%ld PATCH_CPP elements misplaced", bad_cpp);
    CHECK(bad_ppc == 0, "%ld PATCH_PPC elements misplaced", bad_ppc);
    // spot values written out by hand: patch 4 is grid (1,1), patch 5 is grid (1,2)
    CHECK(cpp[(1L * L + 4) * E + 1 * 16 + 2 * 4 + 3] == 1010607.0f, "CPP b1 p4 (c1,py2,px3) = %.0f", cpp[(1L * L + 4) * E + 27]);
    CHECK(ppc[(0L * L + 5) * E + (3 * 4 + 0) * 3 + 2] == 20708.0f, "PPC b0 p5 (py3,px0,c2) = %.0f", ppc[5L * E + 38]);
    CHECK(ppc[1] == 10000.0f && ppc[3] == 1.0f && cpp[1] == 1.0f && cpp[16] == 10000.0f, "first-patch layout wrong");
    // in a prediction order: row k of image b is patch perm[b·L + k] (the gather of the
    // training pass), and in bf16 the same values rounded (these integers need 21 bits)
    int *perm = xcalloc((long)B * L, sizeof(int));
    for (int b = 0; b < B; b++)
        for (int k = 0; k < L; k++) perm[b * L + k] = (k * 5 + b) % L;   // 5 is prime to L = 6
    float *pp = falloc((long)B * L * E), *pq = falloc((long)B * L * E);
    bf16_t *ph = xcalloc((long)B * L * E, sizeof(bf16_t));
    patchify(pp, 0, img, perm, B, H, W, P, PATCH_CPP);
    patchify(pq, 0, img, perm, B, H, W, P, PATCH_PPC);
    patchify(ph, 1, img, perm, B, H, W, P, PATCH_CPP);
    long bad_perm = 0, bad_h = 0;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < L; k++)
            for (int i = 0; i < E; i++) {
                const long r = (long)b * L + k, src = (long)b * L + perm[r];
                bad_perm += pp[r * E + i] != cpp[src * E + i] || pq[r * E + i] != ppc[src * E + i];
                bad_h += ph[r * E + i] != bf16_from_f32_one(cpp[src * E + i]);
            }
    CHECK(bad_perm == 0, "%ld elements of the permuted patches misplaced", bad_perm);
    CHECK(bad_h == 0, "%ld bf16 patch elements are not the rounded f32 ones", bad_h);
    free(img); free(cpp); free(ppc); free(perm); free(pp); free(pq); free(ph);
    test_end();
}

/* Every objective setting the trainer can choose: blur K,sigma or none, norm-pix on/off. */
static void test_pixel_target(void) {
    const struct { int K; double sigma; int norm; } set[] = {{9, 1.0, 1}, {0, 0, 1}, {5, 2.0, 1}, {9, 1.0, 0}, {0, 0, 0},
                                                             {3, 0.5, 0}};
    for (size_t s = 0; s < sizeof set / sizeof set[0]; s++) {
    const int K = set[s].K, norm = set[s].norm;
    char name[80];
    snprintf(name, sizeof name, "pixel_target_composition_blur%d_%g_norm%d", K, set[s].sigma, norm);
    test_begin(name);
    const int cfg[][4] = {{2, 32, 32, 8}, {1, 48, 48, 16}, {1, 20, 20, 5}};
    for (int t = 0; t < 3; t++) {
        const int B = cfg[t][0], H = cfg[t][1], W = cfg[t][2], P = cfg[t][3];
        const int GW = W / P, L = (H / P) * GW, E = 3 * P * P;
        const long nimg = (long)B * 3 * H * W, ntg = (long)B * L * E, nscr = pixel_target_scratch_floats(B, H, W, P);
        float *img = falloc(nimg), *tg = falloc(ntg), *scr = malloc(nscr * sizeof(float));
        fill_normal_f(img, nimg, 1);
        pixel_target(tg, scr, img, NULL, B, H, W, P, K, set[s].sigma, norm);
        double *imgd = to_d(img, nimg), *bl = dalloc(nimg), *pt = dalloc(ntg), *want = dalloc(ntg),
               *m = dalloc((long)B * L), *r = dalloc((long)B * L);
        if (K) blur_forward_ref(bl, imgd, B, 3, H, W, K, set[s].sigma);
        else memcpy(bl, imgd, nimg * sizeof(double));
        for (int b = 0; b < B; b++)
            for (int p = 0; p < L; p++)
                for (int py = 0; py < P; py++)
                    for (int px = 0; px < P; px++)
                        for (int c = 0; c < 3; c++)
                            pt[((long)b * L + p) * E + (py * P + px) * 3 + c] =
                                bl[(((long)b * 3 + c) * H + (p / GW) * P + py) * W + (p % GW) * P + px];
        if (norm) patchnorm_forward_ref(want, m, r, pt, (long)B * L, E);
        else memcpy(want, pt, ntg * sizeof(double));
        double e = err_fd(tg, want, ntg);
        CHECK(e < FWD_TOL, "B=%d H=%d P=%d target err %.3g", B, H, P, e);
        free(img); free(tg); free(scr); free(imgd); free(bl); free(pt); free(want); free(m); free(r);
    }
    test_end();
    }
}

int main(void) {
    gradcheck_layernorm();
    gradcheck_linear();
    gradcheck_gelu();
    gradcheck_bias_gelu();
    for (int mode = 0; mode < 3; mode++) gradcheck_attention(mode);
    gradcheck_blur();
    gradcheck_patchnorm();
    gradcheck_mse();
    gradcheck_l1();
    gradcheck_softce();
    fast_layernorm();
    fast_linear();
    fast_bias_store();
    fast_gelu();
    attention_masks_small();
    for (int mode = 0; mode < 3; mode++) fast_attention(mode);
    fast_blur();
    fast_patchnorm();
    fast_mse();
    fast_l1();
    fast_softce();
    test_patchify();
    test_pixel_target();
    // the GEMM-using kernels again on oneDNN
    err_t e = {0};
    if (gemm_select(&cur, GEMM_BACKEND_ONEDNN, GEMM_PREC_FP32, 0, &e) == 0) {
        gemm_tag = "_onednn";
        fast_linear();
        attention_masks_small();
        for (int mode = 0; mode < 3; mode++) fast_attention(mode);
    }
    return test_exit();
}
