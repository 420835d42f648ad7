/* The GEMM layer: the model's matrix products on the backend and in the precision chosen
 * for the process (semaim/compute.h: OpenBLAS, always built, the portable path and the
 * fallback; oneDNN, built in when the Makefile's GEMM is auto or onednn and defines
 * SEMAIM_HAVE_ONEDNN; fp32 or bf16 inputs with f32 accumulation and output).
 * Everything is row-major, cblas-like: C[M,N] = alpha·op(A)·op(B) + beta·C with beta 0 or 1
 * (1: the accumulating backward of a linear layer, dW += and dinp +=); op(A) is M×K and A is
 * stored M×K (lda ≥ K) or, transposed, K×M (lda ≥ M); likewise B.
 *
 * Plans: gemm_plan_create() once per (shape, transposition, precision) — when the activation
 * arena is made (acts.h), for every GEMM of every pass it serves — then gemm_run(plan, A, B,
 * C, scratch) in the hot path. The plan holds the oneDNN primitive (created once, user-managed
 * scratchpad) and the caller provides gemm_plan_scratch_bytes() of scratch (carved from the
 * arena), so gemm_run allocates nothing itself.
 *
 * Threads: OMP_NUM_THREADS governs both backends (Debian builds both on libgomp). A GEMM run
 * inside one of our active OpenMP parallel regions uses only the calling thread (nested
 * regions are inactive), so per-(batch, head) GEMMs never oversubscribe; a plan that will run
 * there must be created with GEMM_PLAN_INNER (oneDNN then builds it for one thread and the
 * plan keeps one set of memory objects and one stream per thread of the team).
 *
 * Errors: unsupported choices are refused by gemm_select (compute.h); a plan oneDNN cannot
 * create is an ERR_RUNTIME value; misuse (bad shapes, wrong scratch) aborts by assert. */
#ifndef SEMAIM_GEMM_H
#define SEMAIM_GEMM_H
#include <stddef.h>
#include <stdint.h>
#include "semaim/compute.h"
#include "semaim/err.h"

/* ---- bf16 storage: the high half of an IEEE f32 */
typedef uint16_t bf16_t;
/* A GEMM input the caller stores in the run's precision: float under fp32, bf16_t under bf16
 * (the activations and weights the GEMMs read; see acts.h). */
typedef void gemm_in_t;
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
 * config with float inputs, gemm_run rounds them into its scratch first (for callers whose
 * inputs exist only in f32; the model's producers write bf16 themselves). 0, or -1 with
 * ERR_RUNTIME (out of memory, or oneDNN has no implementation for this bf16 shape). */
int gemm_plan_create(gemm_plan_t **plan, const gemm_config_t *cfg, const gemm_shape_t *s, unsigned flags, err_t *e);
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
/* The shape the plan was made for; whether it reads bf16_t inputs; 2·M·N·K. */
const gemm_shape_t *gemm_plan_shape(const gemm_plan_t *p);
int gemm_plan_bf16_in(const gemm_plan_t *p);
double gemm_plan_flops(const gemm_plan_t *p);

/* Slow, obviously right twin, in double: C[M,N] (row stride N) = alpha·op(A)·op(B) + beta·C0,
 * with A and B first rounded to bf16 when round_bf16; absC (may be NULL) receives
 * |alpha|·Σ|a·b| + |beta·C0|, the scale of each entry's rounding error. */
void gemm_ref(const gemm_shape_t *s, int round_bf16, const float *A, const float *B, const float *C0,
              double *C, double *absC);

/* ---- timing, for benchmarks: while on, every gemm_run adds its seconds and FLOPs (two
 * clock reads per run). Runs from inside a parallel region add their thread's time to
 * inner_thread_s; the step's GEMM wall time is then about outer_s + inner_thread_s/threads. */
typedef struct { double outer_s, inner_thread_s, flop; long runs; } gemm_timing_t;
void gemm_timing(int on);   /* on: starts from zero */
gemm_timing_t gemm_timing_read(void);

#endif
