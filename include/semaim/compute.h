/* The compute choice of a process: which GEMM backend runs the model's matrix products and in
 * which precision (the GEMMs themselves are src/kernels/gemm.h). A program chooses once, at
 * start-up, from its --gemm and --precision flags (COMPUTE_OPTIONS, gemm_setup; across the
 * ranks of a job dist_compute_setup in dist.h); what it builds afterwards follows that choice:
 * activation arenas make their GEMM plans for it (acts.h) and a model built under bf16 keeps a
 * bf16 copy of its weights (params.h).
 *
 *   backend   openblas  OpenBLAS sgemm, always built, the portable path and the fallback;
 *             onednn    oneDNN matmul (Debian's libdnnl), built in unless GEMM=openblas;
 *             auto      oneDNN when built in, else OpenBLAS.
 *   precision fp32      f32 inputs, accumulation and outputs;
 *             bf16      GEMM inputs (weights, activations, attention q/k/v and probabilities)
 *                       in bf16, accumulation and outputs in f32 (mixed precision as CPU
 *                       frameworks do it; everything else stays f32). Needs oneDNN and a CPU
 *                       with AVX512_BF16 or AMX-BF16 that oneDNN may use;
 *             auto      bf16 where that holds, else fp32;
 *             bf16-emulated  the numbers of bf16 (inputs rounded to bf16, f32 accumulation) on
 *                       OpenBLAS at a fraction of fp32's speed: for tests and accuracy studies
 *                       on machines without bf16 instructions.
 * Errors are one line (ERR_INPUT, exit 2): an unknown name, onednn in a build without it, bf16
 * on a CPU without bf16 instructions (or with oneDNN capped below them by ONEDNN_MAX_CPU_ISA),
 * which says to use fp32. */
#ifndef SEMAIM_COMPUTE_H
#define SEMAIM_COMPUTE_H
#include "semaim/err.h"
#include "semaim/options.h"

typedef enum { GEMM_BACKEND_AUTO = 0, GEMM_BACKEND_OPENBLAS = 1, GEMM_BACKEND_ONEDNN = 2 } gemm_backend_t;
typedef enum { GEMM_PREC_AUTO = 0, GEMM_PREC_FP32 = 1, GEMM_PREC_BF16 = 2 } gemm_precision_t;

/* A resolved choice: backend and precision are never AUTO. emulated_bf16: bf16 computed by
 * rounding the inputs to bf16 and multiplying them in f32 on OpenBLAS (the same numbers as
 * bf16 hardware up to f32 summation order). */
typedef struct {
    gemm_backend_t backend;
    gemm_precision_t precision;
    int emulated_bf16;
} gemm_config_t;

/* gemm_select flag: bf16 where the hardware lacks it runs emulated instead of being refused. */
#define GEMM_ALLOW_EMULATED_BF16 1u

/* "auto" | "openblas" | "onednn"; 0, or -1 (ERR_INPUT). */
int gemm_parse_backend(const char *s, gemm_backend_t *out, err_t *e);
/* "auto" | "fp32" | "bf16" | "bf16-emulated" (precision bf16, *emulated = 1); 0, or -1. */
int gemm_parse_precision(const char *s, gemm_precision_t *out, int *emulated, err_t *e);
/* Resolves AUTO and checks the choice can run here:
 *   backend auto → oneDNN when built in, else OpenBLAS; onednn when not built in → error;
 *   precision bf16 → needs oneDNN and bf16 instructions oneDNN may use, else an error that
 *     says to use fp32 — unless GEMM_ALLOW_EMULATED_BF16, which then picks emulated bf16;
 *   precision auto → bf16 when that check passes (never emulated), else fp32. */
int gemm_select(gemm_config_t *out, gemm_backend_t backend, gemm_precision_t precision, unsigned flags, err_t *e);
/* The two flag values → a resolved choice, made the process's choice (gemm_global_init). */
int gemm_setup(const char *backend, const char *precision, gemm_config_t *out, err_t *e);

const char *gemm_backend_name(gemm_backend_t b);          /* "openblas", "onednn", "auto" */
const char *gemm_precision_name(const gemm_config_t *c);  /* "fp32", "bf16", "bf16-emulated" */
const char *gemm_config_name(const gemm_config_t *c);     /* "onednn bf16", "openblas bf16-emulated" */

/* ---- what this build and this CPU offer */
int gemm_onednn_built(void);
/* oneDNN's version ("2.6.3"), or "none". */
const char *gemm_onednn_version(void);
/* AVX512_BF16 (CPUID.(7,1):EAX[5]) with AVX-512F/BW/VL/DQ, or AMX-BF16 (CPUID.(7,0):EDX[22]),
 * and the OS saves the AVX-512 state (XCR0). */
int gemm_cpu_has_bf16(void);
/* The ISA oneDNN dispatches to here, after ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA ("avx2",
 * "avx512_core_bf16", ...; "none" when oneDNN is not built in). Asking fixes oneDNN's ISA for
 * the process, as any oneDNN call does. */
const char *gemm_onednn_isa(void);
/* oneDNN's effective ISA includes AVX512_CORE_BF16 (or AMX). */
int gemm_onednn_has_bf16(void);

/* ---- the process's choice */
/* Makes cfg (resolved) the choice that arenas and models built from now on follow. Call at
 * start-up, outside parallel regions. -1 (ERR_INPUT) for an unresolved or unbuilt choice. */
int gemm_global_init(const gemm_config_t *cfg, err_t *e);
/* The choice; OpenBLAS fp32 until gemm_global_init says otherwise. */
const gemm_config_t *gemm_global_config(void);

/* The option-table rows of the choice (every program that runs the model has them); after
 * gemm_setup a program writes the resolved names back, so settings.json records them. */
#define COMPUTE_OPTIONS(gemm, precision)                                                                            \
    {"gemm", OPT_STRING, &(gemm), "GEMM backend: auto (oneDNN when built in), openblas or onednn", 0, 0, 0},         \
    {"precision", OPT_STRING, &(precision),                                                                          \
     "GEMM precision: fp32, bf16 (needs AVX512_BF16/AMX), auto, or bf16-emulated (bf16 numerics on OpenBLAS, slow)", \
     0, 0, 0}
#endif
