/* The GEMM layer (see gemm.h): selection, plans, input conversion, the double reference and
 * the process-wide context that linear_* and attention_* go through. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include "kernels/gemm_impl.h"

/* ------------------------------------------------------------------ names and selection */

const char *gemm_backend_name(gemm_backend_t b) {
    return b == GEMM_BACKEND_OPENBLAS ? "openblas" : b == GEMM_BACKEND_ONEDNN ? "onednn" : "auto";
}
const char *gemm_precision_name(gemm_precision_t p) {
    return p == GEMM_PREC_FP32 ? "fp32" : p == GEMM_PREC_BF16 ? "bf16" : "auto";
}
const char *gemm_config_name(const gemm_config_t *c) {
    if (c->precision == GEMM_PREC_BF16)
        return c->emulated_bf16 ? "openblas bf16 (emulated)" : c->backend == GEMM_BACKEND_ONEDNN ? "onednn bf16" : "openblas bf16";
    return c->backend == GEMM_BACKEND_ONEDNN ? "onednn fp32" : "openblas fp32";
}

int gemm_parse_backend(const char *s, gemm_backend_t *out, char *err, size_t n) {
    static const char *names[] = {"auto", "openblas", "onednn"};
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0) { *out = (gemm_backend_t)i; return 0; }
    snprintf(err, n, "unknown GEMM backend '%s' (auto, openblas or onednn)", s ? s : "");
    return -1;
}
int gemm_parse_precision(const char *s, gemm_precision_t *out, char *err, size_t n) {
    static const char *names[] = {"auto", "fp32", "bf16"};
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0) { *out = (gemm_precision_t)i; return 0; }
    snprintf(err, n, "unknown precision '%s' (auto, fp32 or bf16)", s ? s : "");
    return -1;
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

int gemm_onednn_has_bf16(void) {
    const unsigned isa = gemm_onednn_isa_bits();
    return gemm_onednn_built() && (isa & GEMM_ISA_AVX512_CORE_BF16) == GEMM_ISA_AVX512_CORE_BF16;
}

/* Why bf16 cannot run on oneDNN here, or NULL when it can. */
static const char *bf16_refusal(char *buf, size_t n) {
    if (!gemm_onednn_built()) {
        snprintf(buf, n, "precision bf16 needs the oneDNN backend, and this build has none (GEMM=openblas): use fp32");
        return buf;
    }
    if (!gemm_cpu_has_bf16()) {
        snprintf(buf, n, "precision bf16 needs a CPU with AVX512_BF16 or AMX-BF16; this one has neither (oneDNN ISA %s): use fp32",
                 gemm_onednn_isa());
        return buf;
    }
    if (!gemm_onednn_has_bf16()) {
        // oneDNN would emulate bf16 on plain AVX-512 at a fraction of the fp32 speed
        snprintf(buf, n, "precision bf16: oneDNN is capped at ISA %s here (ONEDNN_MAX_CPU_ISA?), which has no bf16 instructions: use fp32",
                 gemm_onednn_isa());
        return buf;
    }
    return NULL;
}

int gemm_select(gemm_config_t *out, gemm_backend_t backend, gemm_precision_t precision, unsigned flags,
                char *err, size_t n) {
    char why[256];
    gemm_config_t c = {GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0};
    if (backend == GEMM_BACKEND_ONEDNN && !gemm_onednn_built()) {
        snprintf(err, n, "GEMM backend onednn was requested, but this build has no oneDNN (install libdnnl-dev and rebuild with GEMM=auto or onednn)");
        return -1;
    }
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
        if (backend == GEMM_BACKEND_ONEDNN) {
            snprintf(err, n, "emulated bf16 runs on OpenBLAS, not on the onednn backend that was requested");
            return -1;
        }
        c.backend = GEMM_BACKEND_OPENBLAS;
        c.emulated_bf16 = 1;
        *out = c;
        return 0;
    }
    if (c.backend == GEMM_BACKEND_OPENBLAS && gemm_onednn_built())
        snprintf(err, n, "precision bf16 runs on the oneDNN backend, not on openblas: use backend onednn or auto, or precision fp32");
    else
        snprintf(err, n, "%s", bf16_refusal(why, sizeof why));
    return -1;
}

/* ------------------------------------------------------------------ plans */

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

int gemm_plan_create(gemm_plan_t **plan, const gemm_config_t *cfg, const gemm_shape_t *s, unsigned flags,
                     char *err, size_t n) {
    assert(cfg->backend != GEMM_BACKEND_AUTO && cfg->precision != GEMM_PREC_AUTO);
    assert(s->M >= 0 && s->N >= 0 && s->K >= 0 && (s->beta == 0.0f || s->beta == 1.0f));
    const int bf16_in = (flags & GEMM_PLAN_BF16_IN) != 0;
    assert(!bf16_in || cfg->precision == GEMM_PREC_BF16);
    gemm_plan_t *p = calloc(1, sizeof *p);
    if (!p) { snprintf(err, n, "gemm: out of memory"); return -1; }
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
        if (gemm_onednn_create(p, threads, err, n) == 0) p->onednn = 1;
        else if (p->core.bf16) { free(p); return -1; }
        else snprintf(p->impl_name, sizeof p->impl_name, "cblas_sgemm (oneDNN fallback)");   // fp32 always has OpenBLAS
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

void gemm_run(const gemm_plan_t *p, const void *A, const void *B, float *C, void *scratch) {
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

/* ------------------------------------------------------------------ the process-wide context */

typedef struct { gemm_shape_t s; int inner; gemm_plan_t *plan; } entry_t;
static struct {
    int ready;
    gemm_config_t cfg;
    entry_t *tab;            // open addressing, capacity a power of two, at most half full
    long cap, used;
    void **slot;             // per-thread scratch: slot 0 fits every plan, the others the inner ones
    size_t slot0_bytes, slotn_bytes;
    int nslots;
    long misses, fallbacks;
} G;

static int same_shape(const gemm_shape_t *a, const gemm_shape_t *b) {
    return a->transa == b->transa && a->transb == b->transb && a->M == b->M && a->N == b->N && a->K == b->K &&
           a->lda == b->lda && a->ldb == b->ldb && a->ldc == b->ldc && a->alpha == b->alpha && a->beta == b->beta;
}
static uint64_t hash_shape(const gemm_shape_t *s, int inner) {
    uint32_t ab, bb;
    memcpy(&ab, &s->alpha, 4);
    memcpy(&bb, &s->beta, 4);
    const uint64_t v[] = {(uint64_t)s->transa, (uint64_t)s->transb, (uint64_t)s->M, (uint64_t)s->N, (uint64_t)s->K,
                          (uint64_t)s->lda, (uint64_t)s->ldb, (uint64_t)s->ldc, ab, bb, (uint64_t)inner};
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) { h ^= v[i]; h *= 0x100000001b3ULL; h ^= h >> 29; }
    return h;
}
static entry_t *find(const gemm_shape_t *s, int inner) {
    if (!G.cap) return NULL;
    for (uint64_t i = hash_shape(s, inner) & (G.cap - 1);; i = (i + 1) & (G.cap - 1)) {
        entry_t *e = &G.tab[i];
        if (!e->plan) return e;   // the empty slot where it would go
        if (e->inner == inner && same_shape(&e->s, s)) return e;
    }
}

static void free_cache(void) {
    for (long i = 0; i < G.cap; i++) gemm_plan_free(G.tab[i].plan);
    free(G.tab);
    for (int i = 0; i < G.nslots; i++) free(G.slot[i]);
    free(G.slot);
    G.tab = NULL; G.cap = G.used = 0;
    G.slot = NULL; G.nslots = 0; G.slot0_bytes = G.slotn_bytes = 0;
}

static void *xaligned(size_t n) {
    void *p = aligned_alloc(64, align64(n ? n : 64));
    if (!p) { fprintf(stderr, "gemm: out of memory (%zu bytes of scratch)\n", n); abort(); }
    return p;
}

/* Grows the per-thread scratch to fit plan p; the team size is the current OpenMP default. */
static void fit_slots(const gemm_plan_t *p, int inner) {
    const int want = omp_get_max_threads();
    if (want != G.nslots) {   // a new thread count: plans made for the old one cannot serve it
        free_cache();
        G.slot = calloc((size_t)want, sizeof *G.slot);
        if (!G.slot) { fprintf(stderr, "gemm: out of memory\n"); abort(); }
        G.nslots = want;
    }
    if (!p) return;
    if (p->scratch_bytes > G.slot0_bytes) {
        free(G.slot[0]);
        G.slot[0] = xaligned(p->scratch_bytes);
        G.slot0_bytes = p->scratch_bytes;
    }
    if (inner && p->scratch_bytes > G.slotn_bytes) {
        for (int i = 1; i < G.nslots; i++) { free(G.slot[i]); G.slot[i] = xaligned(p->scratch_bytes); }
        G.slotn_bytes = p->scratch_bytes;
    }
}

static gemm_plan_t *create_cached(const gemm_shape_t *s, int inner) {
    assert(!omp_in_parallel());
    fit_slots(NULL, inner);
    if (2 * (G.used + 1) > G.cap) {   // rehash into twice the room
        entry_t *old = G.tab;
        long oldcap = G.cap;
        G.cap = oldcap ? 2 * oldcap : 64;
        G.tab = calloc((size_t)G.cap, sizeof *G.tab);
        if (!G.tab) { fprintf(stderr, "gemm: out of memory\n"); abort(); }
        for (long i = 0; i < oldcap; i++)
            if (old[i].plan) *find(&old[i].s, old[i].inner) = old[i];
        free(old);
    }
    entry_t *e = find(s, inner);
    if (e->plan) return e->plan;
    char err[256];
    gemm_plan_t *p;
    if (gemm_plan_create(&p, &G.cfg, s, inner ? GEMM_PLAN_INNER : 0, err, sizeof err) != 0) {
        fprintf(stderr, "gemm: %s\n", err);   // only bf16 gets here, after gemm_select said it can run
        abort();
    }
    if (strstr(p->impl_name, "fallback")) G.fallbacks++;
    e->s = *s; e->inner = inner; e->plan = p;
    G.used++;
    fit_slots(p, inner);
    return p;
}

int gemm_global_init(const gemm_config_t *cfg, char *err, size_t n) {
    assert(!omp_in_parallel());
    if (cfg->backend == GEMM_BACKEND_AUTO || cfg->precision == GEMM_PREC_AUTO) {
        snprintf(err, n, "gemm: the configuration is not resolved (call gemm_select first)");
        return -1;
    }
    if (cfg->backend == GEMM_BACKEND_ONEDNN && !gemm_onednn_built()) {
        snprintf(err, n, "GEMM backend onednn: this build has no oneDNN");
        return -1;
    }
    free_cache();
    G.cfg = *cfg;
    G.misses = G.fallbacks = 0;
    __atomic_store_n(&G.ready, 1, __ATOMIC_RELEASE);
    return 0;
}

/* First use without gemm_global_init: the environment decides (the programs' --gemm and
 * --precision flags will call gemm_global_init instead). */
static void ensure_global(void) {
    if (__atomic_load_n(&G.ready, __ATOMIC_ACQUIRE)) return;
    #pragma omp critical(semaim_gemm_init)
    if (!G.ready) {
        const char *bs = getenv("SEMAIM_GEMM"), *ps = getenv("SEMAIM_PRECISION");
        // asking for bf16 alone means the backend that has it
        gemm_backend_t b = ps && *ps && strcmp(ps, "fp32") ? GEMM_BACKEND_AUTO : GEMM_BACKEND_OPENBLAS;
        gemm_precision_t pr = GEMM_PREC_FP32;
        gemm_config_t c;
        char err[256];
        if ((bs && *bs && gemm_parse_backend(bs, &b, err, sizeof err)) ||
            (ps && *ps && gemm_parse_precision(ps, &pr, err, sizeof err)) || gemm_select(&c, b, pr, 0, err, sizeof err)) {
            fprintf(stderr, "semaim: SEMAIM_GEMM/SEMAIM_PRECISION: %s\n", err);
            exit(2);
        }
        G.cfg = c;
        __atomic_store_n(&G.ready, 1, __ATOMIC_RELEASE);
    }
}

const gemm_config_t *gemm_global_config(void) {
    ensure_global();
    return &G.cfg;
}

void gemm_global_free(void) {
    assert(!omp_in_parallel());
    free_cache();
    __atomic_store_n(&G.ready, 0, __ATOMIC_RELEASE);
}

static int plain_openblas(void) { return G.cfg.backend == GEMM_BACKEND_OPENBLAS && G.cfg.precision == GEMM_PREC_FP32; }

void gemm_prepare(const gemm_shape_t *s, int inner) {
    ensure_global();
    if (plain_openblas() || omp_in_parallel()) return;   // plans are made outside regions only
    // a team of one is an inactive region: its GEMMs look up the outer plan
    inner = inner && omp_get_max_threads() > 1;
    const entry_t *e = G.nslots == omp_get_max_threads() ? find(s, inner) : NULL;
    if (!e || !e->plan) create_cached(s, inner);
}

void gemm_f32(const gemm_shape_t *s, const float *A, const float *B, float *C) {
    ensure_global();
    if (plain_openblas()) {   // exactly the cblas_sgemm call the kernels made before this layer
        if (s->M == 0 || s->N == 0 || s->K == 0) { run_empty(s, C); return; }
        gemm_core_t core = {*s, 0};
        gemm_openblas_run(&core, A, B, C);
        return;
    }
    const int inner = omp_in_parallel();
    gemm_plan_t *p = NULL;
    if (inner) {
        entry_t *e = find(s, 1);
        if (e && e->plan && omp_get_thread_num() < G.nslots) p = e->plan;
        if (!p) {
            __atomic_add_fetch(&G.misses, 1, __ATOMIC_RELAXED);
            if (G.cfg.precision == GEMM_PREC_BF16) {
                fprintf(stderr, "gemm: a bf16 GEMM %ldx%ldx%ld inside a parallel region has no prepared plan\n", s->M, s->N, s->K);
                abort();
            }
            gemm_core_t core = {*s, 0};
            gemm_openblas_run(&core, A, B, C);
            return;
        }
    } else {
        if (G.nslots != omp_get_max_threads()) fit_slots(NULL, 0);
        entry_t *e = find(s, 0);
        p = e && e->plan ? e->plan : create_cached(s, 0);
    }
    gemm_run(p, A, B, C, G.slot[inner ? omp_get_thread_num() : 0]);
}

gemm_stats_t gemm_global_stats(void) {
    size_t bytes = G.slot0_bytes + (G.nslots > 1 ? (size_t)(G.nslots - 1) * G.slotn_bytes : 0);
    gemm_stats_t st = {G.used, G.misses, G.fallbacks, bytes};
    return st;
}
