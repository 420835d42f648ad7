/* The GEMM layer (see gemm.h and semaim/compute.h): selection, the process's choice, plans,
 * input conversion, timing and the double reference. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include "kernels/gemm_impl.h"

/* ------------------------------------------------------------------ names and selection */

const char *gemm_backend_name(gemm_backend_t b) {
    return b == GEMM_BACKEND_OPENBLAS ? "openblas" : b == GEMM_BACKEND_ONEDNN ? "onednn" : "auto";
}
const char *gemm_precision_name(const gemm_config_t *c) {
    if (c->precision == GEMM_PREC_BF16) return c->emulated_bf16 ? "bf16-emulated" : "bf16";
    return c->precision == GEMM_PREC_FP32 ? "fp32" : "auto";
}
const char *gemm_config_name(const gemm_config_t *c) {
    static const char *names[3][4] = {{"auto auto", "auto fp32", "auto bf16", "auto bf16-emulated"},
                                      {"openblas auto", "openblas fp32", "openblas bf16", "openblas bf16-emulated"},
                                      {"onednn auto", "onednn fp32", "onednn bf16", "onednn bf16-emulated"}};
    const int b = (unsigned)c->backend < 3 ? (int)c->backend : 0;
    const int p = c->precision == GEMM_PREC_BF16 && c->emulated_bf16 ? 3 : (unsigned)c->precision < 3 ? (int)c->precision : 0;
    return names[b][p];
}

int gemm_parse_backend(const char *s, gemm_backend_t *out, err_t *e) {
    static const char *names[] = {"auto", "openblas", "onednn"};
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0) { *out = (gemm_backend_t)i; return 0; }
    return err_set(e, ERR_INPUT, "--gemm: unknown GEMM backend '%s' (auto, openblas or onednn)", s ? s : "");
}
int gemm_parse_precision(const char *s, gemm_precision_t *out, int *emulated, err_t *e) {
    static const char *names[] = {"auto", "fp32", "bf16"};
    *emulated = 0;
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0) { *out = (gemm_precision_t)i; return 0; }
    if (s && strcmp(s, "bf16-emulated") == 0) { *out = GEMM_PREC_BF16; *emulated = 1; return 0; }
    return err_set(e, ERR_INPUT, "--precision: unknown precision '%s' (fp32, bf16, auto or bf16-emulated)", s ? s : "");
}

int gemm_onednn_built(void) {
#ifdef SEMAIM_HAVE_ONEDNN
    return 1;
#else
    return 0;
#endif
}

int gemm_cpu_has_bf16(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;   // OSXSAVE: XCR0 readable
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const int os_avx512 = (lo & 0xe6u) == 0xe6u;   // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM saved
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const int avx512_core = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));   // F DQ BW VL
    const int amx_bf16 = (d >> 22) & 1u;
    const unsigned max_sub = a;
    int avx512_bf16 = 0;
    if (max_sub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) avx512_bf16 = (a >> 5) & 1u;
    return os_avx512 && avx512_core && (avx512_bf16 || amx_bf16);
#else
    return 0;
#endif
}

const char *gemm_onednn_isa(void) {
    if (!gemm_onednn_built()) return "none";
    switch (gemm_onednn_isa_bits()) {
    case 0x1: return "sse41";
    case 0x3: return "avx";
    case 0x7: return "avx2";
    case 0x407: return "avx2_vnni";
    case 0x27: return "avx512_core";
    case 0x67: return "avx512_core_vnni";
    case 0xe7: return "avx512_core_bf16";
    case 0x3e7: return "avx512_core_amx";
    default: return "other";
    }
}

const char *gemm_onednn_version(void) { return gemm_onednn_version_string(); }

int gemm_onednn_has_bf16(void) {
    const unsigned isa = gemm_onednn_isa_bits();
    return gemm_onednn_built() && (isa & GEMM_ISA_AVX512_CORE_BF16) == GEMM_ISA_AVX512_CORE_BF16;
}

/* Why bf16 cannot run on oneDNN here, or NULL when it can. */
static const char *bf16_refusal(char *buf, size_t n) {
    if (!gemm_onednn_built()) {
        snprintf(buf, n, "precision bf16 needs the oneDNN backend, and this build has none (GEMM=openblas): use fp32 (--precision fp32)");
        return buf;
    }
    if (!gemm_cpu_has_bf16()) {
        snprintf(buf, n, "precision bf16 needs a CPU with AVX512_BF16 or AMX-BF16; this one has neither (oneDNN ISA %s): use fp32 (--precision fp32)",
                 gemm_onednn_isa());
        return buf;
    }
    if (!gemm_onednn_has_bf16()) {
        // oneDNN would emulate bf16 on plain AVX-512 at a fraction of the fp32 speed
        snprintf(buf, n, "precision bf16: oneDNN is capped at ISA %s here (ONEDNN_MAX_CPU_ISA?), which has no bf16 instructions: use fp32 (--precision fp32)",
                 gemm_onednn_isa());
        return buf;
    }
    return NULL;
}

int gemm_select(gemm_config_t *out, gemm_backend_t backend, gemm_precision_t precision, unsigned flags, err_t *e) {
    char why[256];
    gemm_config_t c = {GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0};
    if (backend == GEMM_BACKEND_ONEDNN && !gemm_onednn_built())
        return err_set(e, ERR_INPUT, "GEMM backend onednn was requested, but this build has no oneDNN (install libdnnl-dev "
                       "and rebuild with GEMM=auto or onednn)");
    c.backend = backend == GEMM_BACKEND_AUTO ? (gemm_onednn_built() ? GEMM_BACKEND_ONEDNN : GEMM_BACKEND_OPENBLAS) : backend;
    if (precision == GEMM_PREC_FP32) { *out = c; return 0; }
    const int native_ok = c.backend == GEMM_BACKEND_ONEDNN && !bf16_refusal(why, sizeof why);
    if (precision == GEMM_PREC_AUTO) {
        c.precision = native_ok ? GEMM_PREC_BF16 : GEMM_PREC_FP32;
        *out = c;
        return 0;
    }
    c.precision = GEMM_PREC_BF16;
    if (native_ok) { *out = c; return 0; }
    if (flags & GEMM_ALLOW_EMULATED_BF16) {
        if (backend == GEMM_BACKEND_ONEDNN)
            return err_set(e, ERR_INPUT, "emulated bf16 runs on OpenBLAS, not on the onednn backend that was requested");
        c.backend = GEMM_BACKEND_OPENBLAS;
        c.emulated_bf16 = 1;
        *out = c;
        return 0;
    }
    if (c.backend == GEMM_BACKEND_OPENBLAS && gemm_onednn_built())
        return err_set(e, ERR_INPUT, "precision bf16 runs on the oneDNN backend, not on openblas: use --gemm onednn or auto, "
                       "or --precision fp32");
    return err_set(e, ERR_INPUT, "%s", bf16_refusal(why, sizeof why));
}

int gemm_setup(const char *backend, const char *precision, gemm_config_t *out, err_t *e) {
    gemm_backend_t b = GEMM_BACKEND_AUTO;
    gemm_precision_t p = GEMM_PREC_AUTO;
    int emulated = 0;
    if (gemm_parse_backend(backend, &b, e) || gemm_parse_precision(precision, &p, &emulated, e)) return -1;
    if (emulated) {   // asked for by name: emulated even where bf16 instructions exist
        if (b == GEMM_BACKEND_ONEDNN)
            return err_set(e, ERR_INPUT, "--precision bf16-emulated runs on OpenBLAS: use --gemm openblas or auto");
        *out = (gemm_config_t){GEMM_BACKEND_OPENBLAS, GEMM_PREC_BF16, 1};
    } else if (gemm_select(out, b, p, 0, e)) {
        return -1;
    }
    return gemm_global_init(out, e);
}

/* ------------------------------------------------------------------ plans */

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

int gemm_plan_create(gemm_plan_t **plan, const gemm_config_t *cfg, const gemm_shape_t *s, unsigned flags, err_t *e) {
    assert(cfg->backend != GEMM_BACKEND_AUTO && cfg->precision != GEMM_PREC_AUTO);
    assert(s->M >= 0 && s->N >= 0 && s->K >= 0 && (s->beta == 0.0f || s->beta == 1.0f));
    const int bf16_in = (flags & GEMM_PLAN_BF16_IN) != 0;
    assert(!bf16_in || cfg->precision == GEMM_PREC_BF16);
    gemm_plan_t *p = calloc(1, sizeof *p);
    if (!p) return err_set(e, ERR_RUNTIME, "gemm: out of memory");
    p->s = *s;
    p->cfg = *cfg;
    p->flags = flags;
    p->a_rows = s->transa ? s->K : s->M; p->a_cols = s->transa ? s->M : s->K;
    p->b_rows = s->transb ? s->N : s->K; p->b_cols = s->transb ? s->K : s->N;
    assert(s->lda >= (p->a_cols > 1 ? p->a_cols : 1) && s->ldb >= (p->b_cols > 1 ? p->b_cols : 1) &&
           s->ldc >= (s->N > 1 ? s->N : 1));
    p->nslots = (flags & GEMM_PLAN_INNER) ? omp_get_max_threads() : 1;
    p->core.s = *s;
    size_t elt = 0;   // bytes per converted element
    if (cfg->precision == GEMM_PREC_BF16) {
        if (cfg->emulated_bf16) { p->conv = bf16_in ? CONV_BF16_TO_F32 : CONV_F32_ROUND; elt = 4; }
        else if (bf16_in) p->core.bf16 = 1;
        else { p->conv = CONV_F32_TO_BF16; elt = 2; p->core.bf16 = 1; }
    }
    if (p->conv) {   // the backend reads compact copies
        p->core.s.lda = p->a_cols > 1 ? p->a_cols : 1;
        p->core.s.ldb = p->b_cols > 1 ? p->b_cols : 1;
    }
    const int empty = s->M == 0 || s->N == 0 || s->K == 0;   // gemm_run handles these itself
    snprintf(p->impl_name, sizeof p->impl_name, "%s", empty ? "empty" : "cblas_sgemm");
    if (!empty && cfg->backend == GEMM_BACKEND_ONEDNN) {
        const int threads = (flags & GEMM_PLAN_INNER) ? 1 : omp_get_max_threads();
        if (gemm_onednn_create(p, threads, e) == 0) p->onednn = 1;
        else if (p->core.bf16) { free(p); return -1; }
        else {   // fp32 always has OpenBLAS
            err_clear(e);
            snprintf(p->impl_name, sizeof p->impl_name, "cblas_sgemm (oneDNN fallback)");
        }
    }
    size_t off = align64(p->backend_scratch);
    if (p->conv && !empty) {
        p->a_off = off; off = align64(off + (size_t)p->a_rows * p->a_cols * elt);
        p->b_off = off; off = align64(off + (size_t)p->b_rows * p->b_cols * elt);
    }
    p->scratch_bytes = off;
    *plan = p;
    return 0;
}

size_t gemm_plan_scratch_bytes(const gemm_plan_t *p) { return p->scratch_bytes; }
const char *gemm_plan_impl(const gemm_plan_t *p) { return p->impl_name; }
const gemm_shape_t *gemm_plan_shape(const gemm_plan_t *p) { return &p->s; }
int gemm_plan_bf16_in(const gemm_plan_t *p) { return (p->flags & GEMM_PLAN_BF16_IN) != 0; }
double gemm_plan_flops(const gemm_plan_t *p) { return 2.0 * p->s.M * p->s.N * p->s.K; }

void gemm_plan_free(gemm_plan_t *p) {
    if (!p) return;
    if (p->onednn) gemm_onednn_destroy(p);
    free(p);
}

/* A stored rows×cols matrix (row stride ld) into a compact copy. Rows are split across the
 * threads when called outside a parallel region and the matrix is big enough to pay. */
static void convert(int conv, void *dst, const void *src, long rows, long cols, long ld) {
    #pragma omp parallel for schedule(static) if (rows * cols >= (1L << 16))
    for (long r = 0; r < rows; r++) {
        if (conv == CONV_F32_TO_BF16)
            bf16_from_f32((bf16_t *)dst + r * cols, (const float *)src + r * ld, cols);
        else if (conv == CONV_F32_ROUND)
            bf16_round_f32((float *)dst + r * cols, (const float *)src + r * ld, cols);
        else
            bf16_to_f32((float *)dst + r * cols, (const bf16_t *)src + r * ld, cols);
    }
}

/* M, N or K is 0: no backend is asked (cblas and oneDNN disagree on what they accept). */
static void run_empty(const gemm_shape_t *s, float *C) {
    if (s->M == 0 || s->N == 0 || s->beta != 0.0f) return;
    for (long i = 0; i < s->M; i++) memset(C + i * s->ldc, 0, sizeof(float) * (size_t)s->N);   // the empty sum
}

static struct { int on; long long outer_ns, inner_ns, runs; double flop; } timing;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void run_plan(const gemm_plan_t *p, const void *A, const void *B, float *C, void *scratch) {
    const gemm_shape_t *s = &p->s;
    assert(p->scratch_bytes == 0 || (scratch && ((uintptr_t)scratch & 63) == 0));
    if (s->M == 0 || s->N == 0 || s->K == 0) { run_empty(s, C); return; }
    if (p->conv) {
        char *base = scratch;
        convert(p->conv, base + p->a_off, A, p->a_rows, p->a_cols, s->lda);
        convert(p->conv, base + p->b_off, B, p->b_rows, p->b_cols, s->ldb);
        A = base + p->a_off;
        B = base + p->b_off;
    }
    if (p->onednn) gemm_onednn_run(p, A, B, C, scratch);
    else gemm_openblas_run(&p->core, A, B, C);
}

void gemm_run(const gemm_plan_t *p, const void *A, const void *B, float *C, void *scratch) {
    if (!__atomic_load_n(&timing.on, __ATOMIC_RELAXED)) { run_plan(p, A, B, C, scratch); return; }
    const long long t0 = now_ns();
    run_plan(p, A, B, C, scratch);
    const long long dt = now_ns() - t0;
    __atomic_add_fetch(omp_in_parallel() ? &timing.inner_ns : &timing.outer_ns, dt, __ATOMIC_RELAXED);
    __atomic_add_fetch(&timing.runs, 1, __ATOMIC_RELAXED);
    #pragma omp atomic
    timing.flop += gemm_plan_flops(p);
}

void gemm_timing(int on) {
    timing.outer_ns = timing.inner_ns = timing.runs = 0;
    timing.flop = 0;
    __atomic_store_n(&timing.on, on, __ATOMIC_RELAXED);
}

gemm_timing_t gemm_timing_read(void) {
    gemm_timing_t t = {timing.outer_ns * 1e-9, timing.inner_ns * 1e-9, timing.flop, timing.runs};
    return t;
}

/* ------------------------------------------------------------------ reference */

void gemm_ref(const gemm_shape_t *s, int round_bf16, const float *A, const float *B, const float *C0,
              double *C, double *absC) {
    for (long i = 0; i < s->M; i++)
        for (long j = 0; j < s->N; j++) {
            double acc = 0, mag = 0;
            for (long k = 0; k < s->K; k++) {
                float a = s->transa ? A[k * s->lda + i] : A[i * s->lda + k];
                float b = s->transb ? B[j * s->ldb + k] : B[k * s->ldb + j];
                if (round_bf16) { a = bf16_to_f32_one(bf16_from_f32_one(a)); b = bf16_to_f32_one(bf16_from_f32_one(b)); }
                acc += (double)a * b;
                mag += fabs((double)a * b);
            }
            const double c0 = s->beta != 0.0f ? (double)C0[i * s->ldc + j] : 0.0;
            C[i * s->N + j] = (double)s->alpha * acc + c0;
            if (absC) absC[i * s->N + j] = fabs((double)s->alpha) * mag + fabs(c0);
        }
}

/* ------------------------------------------------------------------ the process's choice */

static gemm_config_t global_cfg = {GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0};

int gemm_global_init(const gemm_config_t *cfg, err_t *e) {
    assert(!omp_in_parallel());
    if (cfg->backend == GEMM_BACKEND_AUTO || cfg->precision == GEMM_PREC_AUTO)
        return err_set(e, ERR_INPUT, "gemm: the configuration is not resolved (call gemm_select first)");
    if (cfg->backend == GEMM_BACKEND_ONEDNN && !gemm_onednn_built())
        return err_set(e, ERR_INPUT, "GEMM backend onednn: this build has no oneDNN");
    global_cfg = *cfg;
    return 0;
}

const gemm_config_t *gemm_global_config(void) { return &global_cfg; }
