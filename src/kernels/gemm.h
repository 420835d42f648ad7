/* The GEMM layer: one interface for the model's matrix products, two backends chosen at run
 * time (OpenBLAS, always built, the portable path and the fallback; oneDNN, built in when the
 * Makefile's GEMM is auto or onednn and defines SEMAIM_HAVE_ONEDNN), two precisions:
 *   fp32  f32 inputs, f32 accumulation, f32 output;
 *   bf16  bf16 inputs (f32 given ones are rounded to nearest even), f32 accumulation and output.
 * Everything is row-major, cblas-like: C[M,N] = alpha·op(A)·op(B) + beta·C with beta 0 or 1
 * (1: the accumulating backward of a linear layer, dW += and dinp +=); op(A) is M×K and A is
 * stored M×K (lda ≥ K) or, transposed, K×M (lda ≥ M); likewise B.
 *
 * Two ways in:
 *  1. Plans: gemm_plan_create() once per (shape, transposition, precision) — when activation
 *     memory is sized — then gemm_run(plan, A, B, C, scratch) in the hot path. The plan holds
 *     the oneDNN primitive (created once, user-managed scratchpad) and the caller provides
 *     gemm_plan_scratch_bytes() of scratch, so gemm_run allocates nothing itself.
 *  2. The process-wide context (gemm_global_*), for kernels whose signatures predate plans
 *     (linear_*, attention_*): gemm_f32() looks its plan up in a cache and runs it with a
 *     per-thread scratch arena owned by the context. gemm_prepare() fills the cache ahead of
 *     time (linear_prepare / attention_prepare in ops.h); a shape first met in a step creates
 *     its plan there, i.e. allocates once.
 *
 * Threads: OMP_NUM_THREADS governs both backends (Debian builds both on libgomp). A GEMM run
 * inside one of our active OpenMP parallel regions uses only the calling thread (nested
 * regions are inactive), so per-(batch, head) GEMMs never oversubscribe; a plan that will run
 * there must be created with GEMM_PLAN_INNER (oneDNN then builds it for one thread and the
 * plan keeps one set of memory objects and one stream per thread of the team).
 *
 * Errors: unsupported choices (bad names, bf16 without the hardware, oneDNN not built in) are
 * return values with a one-line message; misuse (bad shapes, wrong scratch) aborts by assert. */
#ifndef SEMAIM_GEMM_H
#define SEMAIM_GEMM_H
#include <stddef.h>
#include <stdint.h>

/* ---- selection */
typedef enum { GEMM_BACKEND_AUTO = 0, GEMM_BACKEND_OPENBLAS, GEMM_BACKEND_ONEDNN } gemm_backend_t;
typedef enum { GEMM_PREC_AUTO = 0, GEMM_PREC_FP32, GEMM_PREC_BF16 } gemm_precision_t;

/* A resolved choice: backend and precision are never AUTO. emulated_bf16: bf16 computed by
 * rounding the inputs to bf16 and multiplying them in f32 on OpenBLAS — the same numbers as
 * real bf16 hardware up to f32 summation order, at a fraction of the speed; only with
 * GEMM_ALLOW_EMULATED_BF16 (tests, and accuracy experiments on machines without bf16). */
typedef struct {
    gemm_backend_t backend;
    gemm_precision_t precision;
    int emulated_bf16;
} gemm_config_t;

#define GEMM_ALLOW_EMULATED_BF16 1u

/* "auto" | "openblas" | "onednn" and "auto" | "fp32" | "bf16"; 0, or -1 with a message. */
int gemm_parse_backend(const char *s, gemm_backend_t *out, char *err, size_t n);
int gemm_parse_precision(const char *s, gemm_precision_t *out, char *err, size_t n);
/* Resolves AUTO and checks the choice can run here:
 *   backend auto → oneDNN when built in, else OpenBLAS; onednn when not built in → error;
 *   precision bf16 → needs oneDNN and a CPU with AVX512_BF16 (or AMX-BF16) that oneDNN may use
 *     (ONEDNN_MAX_CPU_ISA may cap it), else an error that says to use fp32 — unless
 *     GEMM_ALLOW_EMULATED_BF16, which then picks emulated bf16 on OpenBLAS;
 *   precision auto → bf16 when that check passes (never emulated), else fp32. */
int gemm_select(gemm_config_t *out, gemm_backend_t backend, gemm_precision_t precision, unsigned flags,
                char *err, size_t n);
const char *gemm_backend_name(gemm_backend_t b);
const char *gemm_precision_name(gemm_precision_t p);
/* "openblas fp32", "onednn bf16", "openblas bf16 (emulated)": for logs and settings.json. */
const char *gemm_config_name(const gemm_config_t *c);

/* ---- what this build and this CPU offer */
int gemm_onednn_built(void);
/* AVX512_BF16 (CPUID.(7,1):EAX[5]) with AVX-512F/BW/VL/DQ, or AMX-BF16 (CPUID.(7,0):EDX[22]),
 * and the OS saves the AVX-512 state (XCR0). */
int gemm_cpu_has_bf16(void);
/* The ISA oneDNN dispatches to here, after ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA ("avx2",
 * "avx512_core_bf16", ...; "none" when oneDNN is not built in). Asking fixes oneDNN's ISA for
 * the process, as any oneDNN call does. */
const char *gemm_onednn_isa(void);
/* oneDNN's effective ISA includes AVX512_CORE_BF16 (or AMX). */
int gemm_onednn_has_bf16(void);

/* ---- bf16 storage: the high half of an IEEE f32 */
typedef uint16_t bf16_t;
/* Round to nearest, ties to even; NaN stays NaN (quietened, sign kept); ±inf stay; values
 * past the largest bf16 round to ±inf as IEEE rounding does. Vectorised (AVX-512F when
 * compiled with it, AVX2 otherwise), bit-identical to the scalar reference. */
void bf16_from_f32(bf16_t *dst, const float *src, long n);
void bf16_from_f32_ref(bf16_t *dst, const float *src, long n);
void bf16_to_f32(float *dst, const bf16_t *src, long n);
/* dst = src rounded to bf16 and widened back (what a bf16 GEMM sees of an f32 input). */
void bf16_round_f32(float *dst, const float *src, long n);
static inline bf16_t bf16_from_f32_one(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((v.u >> 16) | 0x0040u);   // NaN: quiet
    return (bf16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}
static inline float bf16_to_f32_one(bf16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

/* ---- plans */
typedef struct {
    int transa, transb;   // 0: as stored; 1: transposed (cblas Trans)
    long M, N, K;
    long lda, ldb, ldc;   // row strides in elements of A, B and C as stored
    float alpha, beta;    // beta must be 0 or 1
} gemm_shape_t;

#define GEMM_PLAN_INNER 1u     // will run inside an active OpenMP parallel region
#define GEMM_PLAN_BF16_IN 2u   // A and B are bf16_t arrays (precision must be bf16)

typedef struct gemm_plan gemm_plan_t;
/* A plan for shape s under cfg; A and B are float unless GEMM_PLAN_BF16_IN. Under a bf16
 * config with float inputs, gemm_run rounds them into its scratch first (the transition path
 * until producers write bf16 themselves). 0, or -1 with a message (oneDNN failed to create the
 * primitive: out of memory, or no implementation for this bf16 shape). */
int gemm_plan_create(gemm_plan_t **plan, const gemm_config_t *cfg, const gemm_shape_t *s, unsigned flags,
                     char *err, size_t n);
/* Scratch one gemm_run needs: concurrent runs of one plan (threads of a team) need one each. */
size_t gemm_plan_scratch_bytes(const gemm_plan_t *p);
/* Which backend, precision and oneDNN implementation ("gemm:jit", "brg:avx512_core_bf16",
 * "cblas_sgemm") the plan uses: tests and benchmarks print it. */
const char *gemm_plan_impl(const gemm_plan_t *p);
/* C = alpha·op(A)·op(B) + beta·C. scratch: gemm_plan_scratch_bytes(p) bytes, 64-byte aligned
 * (NULL when that is 0). No allocation by our code; thread-safe across the threads of one
 * team for GEMM_PLAN_INNER plans, each thread with its own scratch. */
void gemm_run(const gemm_plan_t *p, const void *A, const void *B, float *C, void *scratch);
void gemm_plan_free(gemm_plan_t *p);

/* Slow, obviously right twin, in double: C[M,N] (row stride N) = alpha·op(A)·op(B) + beta·C0,
 * with A and B first rounded to bf16 when round_bf16; absC (may be NULL) receives
 * |alpha|·Σ|a·b| + |beta·C0|, the scale of each entry's rounding error. */
void gemm_ref(const gemm_shape_t *s, int round_bf16, const float *A, const float *B, const float *C0,
              double *C, double *absC);

/* ---- the process-wide context used by linear_* and attention_* */
/* Sets the context (frees the plans of an earlier one). Call at start-up, outside parallel
 * regions. Without a call, the first GEMM sets it from SEMAIM_GEMM / SEMAIM_PRECISION
 * (default: openblas fp32, the behaviour before this layer existed; SEMAIM_PRECISION alone
 * other than fp32 means backend auto); a bad or unsupported value there prints one line and
 * exits with status 2. An interim switch until the programs' --gemm / --precision flags. */
int gemm_global_init(const gemm_config_t *cfg, char *err, size_t n);
const gemm_config_t *gemm_global_config(void);
void gemm_global_free(void);
/* Ensures the plan of s (inner: it will run inside an active parallel region) is cached.
 * A no-op inside a parallel region, and for openblas fp32, which needs no plan. */
void gemm_prepare(const gemm_shape_t *s, int inner);
/* C = alpha·op(A)·op(B) + beta·C on float inputs through the context. Inside an active
 * parallel region the plan must have been prepared (inner); fp32 then falls back to
 * cblas_sgemm (counted), bf16 aborts. */
void gemm_f32(const gemm_shape_t *s, const float *A, const float *B, float *C);
typedef struct { long plans, misses_in_parallel, fallbacks; size_t scratch_bytes; } gemm_stats_t;
gemm_stats_t gemm_global_stats(void);

#endif
