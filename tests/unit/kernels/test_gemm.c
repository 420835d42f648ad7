/* The GEMM layer (src/kernels/gemm.h):
 *  1. bf16 conversion: the vector paths bit-identical to the scalar reference, the reference
 *     checked against round-to-nearest-even computed independently, NaN/inf/subnormals;
 *  2. selection: names, refusals (oneDNN not built, bf16 without AVX512_BF16, and again under
 *     oneDNN's ISA cap ONEDNN_MAX_CPU_ISA in a re-executed child), CPUID against /proc/cpuinfo;
 *  3. every transposition the model uses, sizes 1, odd and the model's own, alpha 1 and 1/√hd,
 *     beta 0 and 1, through every backend and precision this machine can run, against the
 *     double reference gemm_ref, entry by entry, with the error bounds derived below;
 *  4. inner plans run concurrently from a parallel region: right results, no extra threads;
 *  5. every GEMM call site of the model — linear_* (bias, bias + residual preloaded, no bias
 *     for an epilogue; dinp, dW, dbias) and attention_* (the six block GEMMs, every mask,
 *     fused and separate q/k/v) — through their plans on every configuration, bf16 with the
 *     activations and weights in bf16 as the model stores them.
 *
 * Error bounds (u32 = 2^-24, the unit roundoff of f32; γ_n = n·u32 / (1 − n·u32)):
 *  fp32: any order of K multiply-adds, plus the alpha scaling and the beta add, errs by at most
 *    γ_{K+2}·(|α|Σ_k|a_k b_k| + |C0|)  (Higham, Accuracy and Stability, §3.1), entrywise.
 *  bf16: bf16 keeps 8 significant bits, so rounding to nearest gives ã = a(1+δ), |δ| ≤ ub with
 *    ub = 2^-8 (half the spacing 2^-7 at 1; e.g. 1 + 2^-8 rounds to 1). [The "2^-9" is
 *    the bound on the stored fraction's last bit relative to 2, not the relative error.] So
 *    ã·b̃ = ab(1+θ), |θ| ≤ 2ub + ub², and accumulating those exact products in f32 adds
 *    γ_{K+2} relative to Σ|ã b̃| ≤ (1+ub)² Σ|ab|. Hence, entrywise,
 *      |C̃ − C| ≤ [(2ub + ub²) + γ_{K+2}(1+ub)²]·(|α|Σ|a b| + |C0|)        (against f32 inputs)
 *      |C̃ − C_r| ≤ γ_{K+2}·(|α|Σ|ã b̃| + |C0|)                            (against the rounded ones)
 *    The second proves f32 accumulation of exactly the bf16 values; with K ≤ 576 it is far
 *    below the effect of the rounding, which the test also checks is visible (not vacuous).
 *    For an output over many GEMMs (linear: bias too) the same bound holds with Σ over all of
 *    the terms.
 *  The model's call sites (section 5) read activations and weights that their producers have
 *  already rounded to bf16, so the reference there multiplies those rounded values: a forward
 *  output errs by γ_{K+2}·(Σ|x̃ w̃| + |b| + |res|). Backward reads dout in f32 and rounds it
 *  once (linear_backward's staging), which adds ub per product: (ub + γ_{K+3}(1+ub))·Σ|…|. */
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <omp.h>
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "check.h"

extern char **environ;

static const double U32 = 1.0 / 16777216.0, UB = 1.0 / 256.0;
static double gamma_n(long n) { return n * U32 / (1 - n * U32); }

static uint64_t rng_state = 0x9e11aa77ULL;
static uint64_t next_u64(void) {   // splitmix64
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double urand(void) { return (double)(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
/* Uniform on [-1, 1): cheap enough for the model's largest matrices; most draws are not
 * representable in bf16, so the rounding is exercised. */
static float nrand(void) { return (float)(2.0 * urand() - 1.0); }
static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "test_gemm: out of memory\n"); exit(2); }
    return p;
}
static void *xscratch(size_t n) {
    void *p = aligned_alloc(64, n ? (n + 63) / 64 * 64 : 64);
    if (!p) { fprintf(stderr, "test_gemm: out of memory\n"); exit(2); }
    return p;
}
/* A workspace for every thread (workspace_alloc), or the test ends. */
static void *make_ws(workspace_t *ws, size_t slot0, size_t slotn) {
    void *m = workspace_alloc(ws, slot0, slotn);
    if (!m) { fprintf(stderr, "test_gemm: out of memory\n"); exit(2); }
    return m;
}
static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* ------------------------------------------------------------------ 1. bf16 conversion */

/* Round-to-nearest-even of a finite f32 to bf16, by comparing the two neighbours in double:
 * independent of the bit trick the library uses. Returns the bf16 pattern. */
static uint16_t rne_by_distance(float x) {
    const uint32_t u = bits(x);
    const uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);   // toward zero, away from zero
    const double dx = x, dlo = bf16_to_f32_one(lo);
    // the neighbour away from zero; past the largest finite bf16 it is infinity's pattern
    const double dhi = ((hi & 0x7f80) == 0x7f80) ? (x > 0 ? 1 : -1) * ldexp(1.0, 128) : (double)bf16_to_f32_one(hi);
    const double elo = fabs(dx - dlo), ehi = fabs(dx - dhi);
    if (elo < ehi) return lo;
    if (ehi < elo) return hi;
    return (lo & 1) ? hi : lo;   // a tie: the even one
}

static void test_bf16_conversion(void) {
    test_begin("bf16_vector_eq_scalar_and_rne");
    // every high half with the low halves where rounding decides: exact, just below/at/above
    // the half way point, the largest, and a random one
    const uint16_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff, 0};
    const long n = 65536L * 7;
    float *x = xmalloc(n * sizeof(float)), *r = xmalloc(n * sizeof(float)), *w = xmalloc(n * sizeof(float));
    bf16_t *fast = xmalloc(n * sizeof(bf16_t)), *ref = xmalloc(n * sizeof(bf16_t));
    for (long h = 0; h < 65536; h++)
        for (int j = 0; j < 7; j++)
            x[h * 7 + j] = from_bits(((uint32_t)h << 16) | (j == 6 ? (uint32_t)(next_u64() & 0xffff) : lows[j]));
    bf16_from_f32_ref(ref, x, n);
    long bad_vec = 0, bad_rne = 0, bad_nan = 0, bad_round = 0;
    // lengths and offsets that put every element in the vector body and in the scalar tail
    const long offs[] = {0, 1, 3, 15};
    for (int o = 0; o < 4; o++) {
        memset(fast, 0, n * sizeof(bf16_t));
        bf16_from_f32(fast + offs[o], x + offs[o], n - offs[o]);
        for (long i = offs[o]; i < n; i++) bad_vec += fast[i] != ref[i];
    }
    for (long len = 0; len < 40; len++) {   // short arrays: tails of every length
        bf16_t t[40];
        bf16_from_f32(t, x + 1000 * len, len);
        for (long i = 0; i < len; i++) bad_vec += t[i] != ref[1000 * len + i];
    }
    bf16_round_f32(r, x, n);
    for (long i = 0; i < n; i++) {
        const uint32_t u = bits(x[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) {   // NaN: stays NaN, keeps its sign
            const uint16_t h = ref[i];
            bad_nan += !((h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0 && (h & 0x8000) == ((u >> 16) & 0x8000));
        } else {
            bad_rne += ref[i] != rne_by_distance(x[i]);
        }
        const uint32_t want = (uint32_t)ref[i] << 16;
        bad_round += bits(r[i]) != want;
    }
    CHECK(bad_vec == 0, "%ld vector conversions differ from the scalar reference", bad_vec);
    CHECK(bad_rne == 0, "%ld finite values are not rounded to nearest even", bad_rne);
    CHECK(bad_nan == 0, "%ld NaNs did not stay NaN with their sign", bad_nan);
    CHECK(bad_round == 0, "%ld bf16_round_f32 results differ from to_f32(from_f32(x))", bad_round);
    // spot values written out: ties to even both ways, overflow to inf, subnormal, signs
    CHECK(bf16_from_f32_one(1.0f + 0x1p-8f) == 0x3f80, "1 + 2^-8 (tie) should round down to even 1.0");
    CHECK(bf16_from_f32_one(1.0f + 3 * 0x1p-8f) == 0x3f82, "1 + 3·2^-8 (tie) should round up to even");
    CHECK(bf16_from_f32_one(from_bits(0x7f7fffffu)) == 0x7f80, "FLT_MAX should round to +inf");
    CHECK(bf16_from_f32_one(-INFINITY) == 0xff80 && bf16_from_f32_one(INFINITY) == 0x7f80, "inf changed");
    CHECK(bf16_from_f32_one(from_bits(0x7f800001u)) != 0x7f80, "a NaN with only low mantissa bits became inf");
    CHECK(bf16_from_f32_one(from_bits(0x00018000u)) == 0x0002, "subnormal tie 0x00018000 should round to even 0x0002");
    CHECK(bf16_from_f32_one(-0.0f) == 0x8000, "-0 lost its sign");
    test_end();

    test_begin("bf16_to_f32_exact");
    bf16_t *all = xmalloc(65536 * sizeof(bf16_t));
    for (long i = 0; i < 65536; i++) all[i] = (bf16_t)i;
    long bad = 0;
    for (int o = 0; o < 3; o++) {
        bf16_to_f32(w + o, all + o, 65536 - o);
        for (long i = o; i < 65536; i++) bad += bits(w[i]) != ((uint32_t)i << 16);
    }
    CHECK(bad == 0, "%ld bf16 → f32 widenings are not exact", bad);
    // and back: every bf16 value survives the round trip (NaN payloads included)
    bf16_from_f32(fast, w, 65536);
    bad = 0;
    for (long i = 0; i < 65536; i++) {
        const int nan = (i & 0x7f80) == 0x7f80 && (i & 0x7f);
        bad += nan ? (fast[i] & 0xffbf) != (i & 0xffbf) : fast[i] != i;
    }
    CHECK(bad == 0, "%ld bf16 values change on the round trip", bad);
    free(all); free(x); free(r); free(w); free(fast); free(ref);
    test_end();
}

/* ------------------------------------------------------------------ 2. selection */

static int one_line(const char *s) { return s[0] && !strchr(s, '\n'); }

/* Does /proc/cpuinfo list a flag (an independent view of the CPUID bits)? -1: unreadable. */
static int cpuinfo_flag(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return -1;
    char line[8192];
    int found = 0, seen = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5)) continue;
        seen = 1;
        char *tok = strtok(strchr(line, ':') + 1, " \n");
        for (; tok; tok = strtok(NULL, " \n")) if (strcmp(tok, flag) == 0) found = 1;
        break;
    }
    fclose(f);
    return seen ? found : -1;
}

static void test_selection(void) {
    test_begin("gemm_select");
    err_t ev = {0}; char *err = ev.msg;
    gemm_backend_t b;
    gemm_precision_t p;
    int emu = 0;
    CHECK(gemm_parse_backend("onednn", &b, &ev) == 0 && b == GEMM_BACKEND_ONEDNN, "onednn");
    CHECK(gemm_parse_backend("openblas", &b, &ev) == 0 && b == GEMM_BACKEND_OPENBLAS, "openblas");
    CHECK(gemm_parse_backend("auto", &b, &ev) == 0 && b == GEMM_BACKEND_AUTO, "auto");
    CHECK(gemm_parse_backend("mkl", &b, &ev) == -1 && one_line(err) && strstr(err, "mkl"), "mkl accepted: %s", err);
    CHECK(gemm_parse_precision("bf16", &p, &emu, &ev) == 0 && p == GEMM_PREC_BF16, "bf16");
    CHECK(gemm_parse_precision("fp32", &p, &emu, &ev) == 0 && p == GEMM_PREC_FP32, "fp32");
    CHECK(gemm_parse_precision("fp16", &p, &emu, &ev) == -1 && one_line(err), "fp16 accepted");
    CHECK(gemm_parse_precision(NULL, &p, &emu, &ev) == -1, "NULL accepted");
    CHECK(gemm_parse_precision("bf16-emulated", &p, &emu, &ev) == 0 && p == GEMM_PREC_BF16 && emu == 1, "bf16-emulated");
    CHECK(gemm_parse_precision("bf16", &p, &emu, &ev) == 0 && emu == 0, "bf16 is not emulated");

    gemm_config_t c;
    CHECK(gemm_select(&c, GEMM_BACKEND_AUTO, GEMM_PREC_FP32, 0, &ev) == 0, "auto fp32: %s", err);
    CHECK(c.backend == (gemm_onednn_built() ? GEMM_BACKEND_ONEDNN : GEMM_BACKEND_OPENBLAS) && c.precision == GEMM_PREC_FP32,
          "auto fp32 resolved to %s", gemm_config_name(&c));
    CHECK(gemm_select(&c, GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0, &ev) == 0 && c.backend == GEMM_BACKEND_OPENBLAS,
          "openblas fp32");
    const int r_dnn = gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_FP32, 0, &ev);
    if (gemm_onednn_built()) CHECK(r_dnn == 0 && c.backend == GEMM_BACKEND_ONEDNN, "onednn fp32: %s", err);
    else CHECK(r_dnn == -1 && one_line(err) && strstr(err, "no oneDNN"), "onednn in a build without it: '%s'", err);

    // bf16 runs natively exactly when oneDNN is built and it may use bf16 instructions here
    const int native = gemm_onednn_built() && gemm_cpu_has_bf16() && gemm_onednn_has_bf16();
    const int r_bf = gemm_select(&c, GEMM_BACKEND_AUTO, GEMM_PREC_BF16, 0, &ev);
    if (native) CHECK(r_bf == 0 && c.backend == GEMM_BACKEND_ONEDNN && c.precision == GEMM_PREC_BF16 && !c.emulated_bf16,
                      "bf16 refused on a bf16 machine: %s", err);
    else CHECK(r_bf == -1 && one_line(err) && strstr(err, "use fp32"), "bf16 without bf16 hardware: '%s'", err);
    printf("  note: oneDNN %s, ISA %s, CPU bf16 %d; bf16: %s\n", gemm_onednn_built() ? "built" : "absent", gemm_onednn_isa(),
           gemm_cpu_has_bf16(), native ? "native" : err);
    CHECK(gemm_select(&c, GEMM_BACKEND_AUTO, GEMM_PREC_AUTO, 0, &ev) == 0 &&
          c.precision == (native ? GEMM_PREC_BF16 : GEMM_PREC_FP32) && !c.emulated_bf16, "auto precision chose %s",
          gemm_config_name(&c));
    // bf16 never runs on OpenBLAS unless emulation is asked for
    CHECK(gemm_select(&c, GEMM_BACKEND_OPENBLAS, GEMM_PREC_BF16, 0, &ev) == -1 && one_line(err) && strstr(err, "fp32"),
          "openblas bf16 accepted");
    CHECK(gemm_select(&c, GEMM_BACKEND_AUTO, GEMM_PREC_BF16, GEMM_ALLOW_EMULATED_BF16, &ev) == 0 &&
          c.precision == GEMM_PREC_BF16 && c.emulated_bf16 == !native, "emulation allowed: %s", gemm_config_name(&c));
    CHECK(gemm_select(&c, GEMM_BACKEND_OPENBLAS, GEMM_PREC_BF16, GEMM_ALLOW_EMULATED_BF16, &ev) == 0 &&
          c.emulated_bf16 && c.backend == GEMM_BACKEND_OPENBLAS, "openblas emulated bf16");
    if (gemm_onednn_built() && !native)
        CHECK(gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_BF16, GEMM_ALLOW_EMULATED_BF16, &ev) == -1 && one_line(err),
              "onednn bf16 emulated accepted");
    const gemm_config_t unresolved = {GEMM_BACKEND_AUTO, GEMM_PREC_FP32, 0};
    CHECK(gemm_global_init(&unresolved, &ev) == -1 && one_line(err), "an unresolved choice accepted");
    // the flags' path: names → choice → the process's choice, and refusals as values
    CHECK(gemm_setup("openblas", "bf16-emulated", &c, &ev) == 0 && c.emulated_bf16 && gemm_global_config()->emulated_bf16,
          "--precision bf16-emulated: %s", err);
    CHECK(gemm_setup("onednn", "bf16-emulated", &c, &ev) == -1 && ev.kind == ERR_INPUT && one_line(err), "emulated on onednn");
    CHECK(gemm_setup("mkl", "fp32", &c, &ev) == -1 && ev.kind == ERR_INPUT && strstr(err, "--gemm"), "--gemm mkl: %s", err);
    CHECK(gemm_setup("auto", "fp16", &c, &ev) == -1 && ev.kind == ERR_INPUT && strstr(err, "--precision"), "--precision fp16");
    CHECK(gemm_setup("openblas", "fp32", &c, &ev) == 0 && gemm_global_config()->precision == GEMM_PREC_FP32, "back to fp32");
    test_end();

    test_begin("cpu_bf16_detection_matches_cpuinfo");
    const int f1 = cpuinfo_flag("avx512_bf16"), f2 = cpuinfo_flag("amx_bf16"), f3 = cpuinfo_flag("avx512bw");
    if (f1 < 0) printf("  note: /proc/cpuinfo has no flags line; not compared\n");
    else CHECK(gemm_cpu_has_bf16() == ((f1 || f2) && f3 == 1), "CPUID says bf16 %d, /proc/cpuinfo avx512_bf16 %d amx_bf16 %d",
               gemm_cpu_has_bf16(), f1, f2);
    if (gemm_onednn_built() && cpuinfo_flag("avx512f") == 0)
        CHECK(strncmp(gemm_onednn_isa(), "avx512", 6) != 0, "oneDNN claims %s on a CPU without AVX-512F", gemm_onednn_isa());
    test_end();
}

/* Runs this binary again with oneDNN capped at isa; the child checks the refusal (child_capped). */
static void test_capped_child(const char *self, const char *isa) {
    char name[80];
    snprintf(name, sizeof name, "capped_%s_child_ran", isa);
    test_begin(name);
    int n = 0;
    while (environ[n]) n++;
    char **env = xmalloc((size_t)(n + 2) * sizeof *env), var[64];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (strncmp(environ[i], "ONEDNN_MAX_CPU_ISA=", 19) && strncmp(environ[i], "DNNL_MAX_CPU_ISA=", 17)) env[k++] = environ[i];
    snprintf(var, sizeof var, "ONEDNN_MAX_CPU_ISA=%s", isa);
    env[k++] = var;
    env[k] = NULL;
    char *argv[] = {(char *)self, "--capped", (char *)isa, NULL};
    fflush(stdout);
    pid_t pid;
    int st = -1;
    const int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, env);
    CHECK(rc == 0, "posix_spawn failed (%d)", rc);
    if (rc == 0) {
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the capped child failed (status %d)", st);
    }
    free(env);
    test_end();
}

static int child_capped(const char *isa) {
    char name[80]; err_t ev = {0}; char *err = ev.msg;
    snprintf(name, sizeof name, "bf16_refused_under_ONEDNN_MAX_CPU_ISA=%s", isa);
    test_begin(name);
    gemm_config_t c;
    const char *got = gemm_onednn_isa();
    // AVX512_CORE caps below the bf16 instructions; AVX2 below AVX-512 altogether
    const int capped_ok = strcmp(isa, "AVX2") == 0 ? strncmp(got, "avx512", 6) != 0 && strcmp(got, "avx512_core_bf16") != 0
                                                   : strcmp(got, "avx512_core_bf16") != 0 && strcmp(got, "avx512_core_amx") != 0;
    CHECK(capped_ok, "oneDNN reports ISA %s under the cap %s", got, isa);
    CHECK(!gemm_onednn_has_bf16(), "oneDNN claims bf16 under the cap %s", isa);
    CHECK(gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_BF16, 0, &ev) == -1 && one_line(err) && strstr(err, "use fp32"),
          "bf16 accepted under the cap (%s)", gemm_config_name(&c));
    if (gemm_cpu_has_bf16()) CHECK(strstr(err, "capped") != NULL, "the message should blame the cap: %s", err);
    printf("  note: cap %s → ISA %s: %s\n", isa, got, err);
    CHECK(gemm_select(&c, GEMM_BACKEND_AUTO, GEMM_PREC_AUTO, 0, &ev) == 0 && c.precision == GEMM_PREC_FP32,
          "auto precision under the cap chose %s", gemm_config_name(&c));
    // fp32 still runs on oneDNN under the cap
    if (gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_FP32, 0, &ev) == 0) {
        const gemm_shape_t s = {0, 1, 3, 2, 4, 4, 4, 2, 1.0f, 0.0f};
        float A[12], B[8], C[6];
        for (int i = 0; i < 12; i++) A[i] = (float)i;
        for (int i = 0; i < 8; i++) B[i] = (float)(i % 3);
        gemm_plan_t *pl;
        CHECK(gemm_plan_create(&pl, &c, &s, 0, &ev) == 0, "fp32 plan under the cap: %s", err);
        void *scr = xscratch(gemm_plan_scratch_bytes(pl));
        gemm_run(pl, A, B, C, scr);
        double want[6];
        gemm_ref(&s, 0, A, B, NULL, want, NULL);
        for (int i = 0; i < 6; i++) CHECK(C[i] == want[i], "C[%d] = %g want %g", i, C[i], want[i]);
        gemm_plan_free(pl);
        free(scr);
    }
    test_end();
    return test_exit();
}

/* ------------------------------------------------------------------ 3. GEMMs against the reference */

typedef struct { const char *name; gemm_config_t cfg; } config_t;
static config_t configs[4];
static int nconfigs;

static void find_configs(void) {
    err_t ev = {0};
    gemm_config_t c;
    nconfigs = 0;
    if (gemm_select(&c, GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0, &ev) == 0) configs[nconfigs++] = (config_t){"openblas_fp32", c};
    if (gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_FP32, 0, &ev) == 0) configs[nconfigs++] = (config_t){"onednn_fp32", c};
    if (gemm_select(&c, GEMM_BACKEND_OPENBLAS, GEMM_PREC_BF16, GEMM_ALLOW_EMULATED_BF16, &ev) == 0)
        configs[nconfigs++] = (config_t){"emulated_bf16", c};
    if (gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_BF16, 0, &ev) == 0) configs[nconfigs++] = (config_t){"onednn_bf16", c};
}

typedef struct { int ta, tb; long M, N, K, lda, ldb, ldc; const char *what; } case_t;
/* The model's GEMMs (tiny preset: D = 192, hd = 64, T = 197, N = 32·197 rows; attention on the
 * fused qkv layout, row stride 3D = 576) plus degenerate and odd ones; strides may pad. */
static const case_t cases[] = {
    {0, 1, 1, 1, 1, 1, 1, 1, "1x1x1 NT"},
    {0, 0, 1, 1, 1, 1, 1, 1, "1x1x1 NN"},
    {1, 0, 1, 1, 1, 1, 1, 1, "1x1x1 TN"},
    {1, 1, 1, 1, 1, 1, 1, 1, "1x1x1 TT"},
    {0, 1, 7, 5, 3, 5, 4, 6, "odd NT padded"},
    {0, 0, 13, 17, 19, 21, 17, 20, "odd NN padded"},
    {1, 0, 17, 13, 29, 18, 13, 13, "odd TN padded"},
    {1, 1, 5, 9, 11, 7, 12, 9, "odd TT padded"},
    {0, 1, 6304, 576, 192, 192, 192, 576, "linear fwd D->3D"},
    {0, 0, 6304, 192, 768, 768, 192, 192, "linear dinp 4D->D"},
    {1, 0, 768, 192, 6304, 768, 192, 192, "linear dW D->4D"},
    {0, 1, 6304, 768, 768, 768, 768, 768, "linear fwd 4D->768 head"},
    {0, 1, 40, 197, 64, 576, 576, 197, "attn scores Q·Kt"},
    {0, 0, 37, 64, 197, 197, 576, 192, "attn P·V"},
    {1, 0, 197, 64, 40, 197, 192, 576, "attn dV += Pt·dO"},
    {0, 1, 40, 79, 64, 192, 576, 79, "attn dP = dO·Vt"},
    {0, 0, 40, 64, 79, 79, 576, 576, "attn dQ += dS·K"},
    {1, 0, 79, 64, 40, 79, 576, 576, "attn dK += dSt·Q"},
};

/* Reference rows: all of them up to 64, else a spread sample (the reference is O(MNK)). */
static int ref_row(long i, long M) { return M <= 64 || i % (M / 11) == 0 || i == M - 1; }

typedef struct { double worst_ratio, err_unrounded, err_rounded; long checked; } result_t;

/* One shape on one configuration: C from gemm_run against gemm_ref, entry by entry. */
static result_t run_case(const config_t *cf, const case_t *t, float alpha, float beta, int bf16_in) {
    const gemm_shape_t s = {t->ta, t->tb, t->M, t->N, t->K, t->lda, t->ldb, t->ldc, alpha, beta};
    const long arows = t->ta ? t->K : t->M, brows = t->tb ? t->N : t->K;
    const long na = arows * t->lda, nb = brows * t->ldb, nc = t->M * t->ldc;
    float *A = xmalloc(na * sizeof(float)), *B = xmalloc(nb * sizeof(float)), *C = xmalloc(nc * sizeof(float)),
          *C0 = xmalloc(nc * sizeof(float));
    for (long i = 0; i < na; i++) A[i] = nrand();
    for (long i = 0; i < nb; i++) B[i] = nrand();
    for (long i = 0; i < nc; i++) C0[i] = nrand();
    // beta = 0 must not read C: NaN there would spread; the padding must stay as it is
    for (long i = 0; i < nc; i++) C[i] = (beta == 0.0f && i % t->ldc < t->N) ? NAN : C0[i];
    const int bf16 = cf->cfg.precision == GEMM_PREC_BF16;
    bf16_t *Ah = NULL, *Bh = NULL;
    float *Ar = NULL, *Br = NULL;   // the values a bf16 GEMM multiplies
    if (bf16_in) {
        Ah = xmalloc(na * sizeof(bf16_t)); Bh = xmalloc(nb * sizeof(bf16_t));
        bf16_from_f32(Ah, A, na); bf16_from_f32(Bh, B, nb);
    }
    if (bf16) {
        Ar = xmalloc(na * sizeof(float)); Br = xmalloc(nb * sizeof(float));
        bf16_round_f32(Ar, A, na); bf16_round_f32(Br, B, nb);
    }
    err_t ev = {0}; char *err = ev.msg;
    gemm_plan_t *p;
    result_t r = {0, 0, 0, 0};
    if (gemm_plan_create(&p, &cf->cfg, &s, bf16_in ? GEMM_PLAN_BF16_IN : 0, &ev) != 0) {
        CHECK(0, "%s %s: plan: %s", cf->name, t->what, err);
        r.worst_ratio = INFINITY;
        goto out;
    }
    void *scr = xscratch(gemm_plan_scratch_bytes(p));
    gemm_run(p, bf16_in ? (const void *)Ah : A, bf16_in ? (const void *)Bh : B, C, scr);
    const double tol_r = gamma_n(t->K + 2), tol_u = bf16 ? (2 * UB + UB * UB) + tol_r * (1 + UB) * (1 + UB) : tol_r;
    double *ref = xmalloc(t->N * sizeof(double)), *mag = xmalloc(t->N * sizeof(double)),
           *refr = xmalloc(t->N * sizeof(double)), *magr = xmalloc(t->N * sizeof(double));
    long padbad = 0;
    for (long i = 0; i < t->M; i++) {
        for (long j = t->N; j < t->ldc; j++) padbad += bits(C[i * t->ldc + j]) != bits(C0[i * t->ldc + j]);
        if (!ref_row(i, t->M)) continue;
        gemm_shape_t row = s;   // row i of C: one row of op(A), found at row i or column i of A
        row.M = 1;
        const long ai = t->ta ? i : i * t->lda;
        gemm_ref(&row, 0, A + ai, B, C0 + i * t->ldc, ref, mag);
        if (bf16) gemm_ref(&row, 0, Ar + ai, Br, C0 + i * t->ldc, refr, magr);
        for (long j = 0; j < t->N; j++) {
            const double got = C[i * t->ldc + j], eu = fabs(got - ref[j]), bu = tol_u * mag[j] + 1e-37;
            double ratio = eu / bu;
            r.err_unrounded += eu / (mag[j] + 1e-37);
            if (bf16) {
                const double er = fabs(got - refr[j]), br = tol_r * magr[j] + 1e-37;
                if (er / br > ratio) ratio = er / br;
                r.err_rounded += er / (magr[j] + 1e-37);
            }
            if (!(ratio <= r.worst_ratio)) r.worst_ratio = ratio;   // NaN propagates
            r.checked++;
        }
    }
    r.err_unrounded /= r.checked; r.err_rounded /= r.checked;
    CHECK(padbad == 0, "%s %s: %ld padding entries of C changed", cf->name, t->what, padbad);
    CHECK(r.worst_ratio <= 1.0, "%s %s alpha=%g beta=%g%s: error %.3g of its bound (%s)", cf->name, t->what, alpha, beta,
          bf16_in ? " bf16 inputs" : "", r.worst_ratio, gemm_plan_impl(p));
    free(ref); free(mag); free(refr); free(magr); free(scr);
    gemm_plan_free(p);
out:
    free(A); free(B); free(C); free(C0); free(Ah); free(Bh); free(Ar); free(Br);
    return r;
}

static void test_gemm_cases(const config_t *cf) {
    char name[96];
    snprintf(name, sizeof name, "gemm_vs_reference_%s", cf->name);
    test_begin(name);
    const int bf16 = cf->cfg.precision == GEMM_PREC_BF16;
    double worst = 0;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
        for (int ab = 0; ab < 4; ab++) {
            // the model-sized cases take two of the four (alpha, beta) pairs, both betas
            if ((double)cases[t].M * cases[t].N * cases[t].K > 1e7 && (ab == 1 || ab == 2)) continue;
            const float alpha = (ab & 1) ? 0.125f : 1.0f, beta = (ab & 2) ? 1.0f : 0.0f;
            for (int in = 0; in <= bf16; in++) {
                result_t r = run_case(cf, &cases[t], alpha, beta, in);
                if (r.worst_ratio > worst) worst = r.worst_ratio;
                // not vacuous: with K ≤ 576 the rounding of the inputs must show, and account
                // for nearly all of the error (f32 accumulation of the rounded values)
                if (bf16 && cases[t].K >= 3 && cases[t].K <= 576)
                    CHECK(r.err_unrounded > 5e-5 && r.err_rounded < r.err_unrounded / 8,
                          "%s %s: mean error %.3g against f32 inputs, %.3g against rounded ones", cf->name, cases[t].what,
                          r.err_unrounded, r.err_rounded);
                if (!bf16 && cases[t].K >= 64)
                    CHECK(r.err_unrounded < 1e-6, "%s %s: mean relative error %.3g is not fp32's", cf->name, cases[t].what,
                          r.err_unrounded);
            }
        }
    printf("  note: %s worst error %.3g of its bound\n", cf->name, worst);
    test_end();
}

/* K = 0 and empty outputs never reach a backend; beta = 0 then zeroes C. */
static void test_gemm_empty(const config_t *cf) {
    char name[96]; err_t ev = {0}; char *err = ev.msg;
    snprintf(name, sizeof name, "gemm_empty_%s", cf->name);
    test_begin(name);
    float A[4] = {1, 2, 3, 4}, B[4] = {1, 1, 1, 1}, C[6];
    for (int beta = 0; beta < 2; beta++) {
        const gemm_shape_t s = {0, 0, 2, 3, 0, 1, 3, 3, 1.0f, (float)beta};
        for (int i = 0; i < 6; i++) C[i] = 5.0f;
        gemm_plan_t *p;
        CHECK(gemm_plan_create(&p, &cf->cfg, &s, 0, &ev) == 0, "K=0 plan: %s", err);
        gemm_run(p, A, B, C, NULL);
        for (int i = 0; i < 6; i++) CHECK(C[i] == (beta ? 5.0f : 0.0f), "K=0 beta=%d: C[%d] = %g", beta, i, C[i]);
        gemm_plan_free(p);
    }
    const gemm_shape_t z = {0, 1, 0, 3, 2, 2, 2, 3, 1.0f, 0.0f};
    gemm_plan_t *p;
    CHECK(gemm_plan_create(&p, &cf->cfg, &z, 0, &ev) == 0, "M=0 plan: %s", err);
    gemm_run(p, A, B, C, NULL);
    gemm_plan_free(p);
    test_end();
}

/* Same inputs, same threads: the same bits (bit-exact resume rests on it), for the longest
 * reduction of the model (dW, K = N rows) and for linear and attention through the context. */
static void test_repeatable(const config_t *cf) {
    char name[96]; err_t ev = {0}; char *err = ev.msg;
    snprintf(name, sizeof name, "repeatable_bit_for_bit_%s", cf->name);
    test_begin(name);
    const gemm_shape_t s = {1, 0, 768, 192, 6304, 768, 192, 192, 1.0f, 1.0f};
    float *A = xmalloc(6304L * 768 * 4), *B = xmalloc(6304L * 192 * 4), *C1 = xmalloc(768L * 192 * 4), *C2 = xmalloc(768L * 192 * 4);
    for (long i = 0; i < 6304L * 768; i++) A[i] = nrand();
    for (long i = 0; i < 6304L * 192; i++) B[i] = nrand();
    for (long i = 0; i < 768L * 192; i++) C1[i] = C2[i] = nrand();
    gemm_plan_t *p;
    CHECK(gemm_plan_create(&p, &cf->cfg, &s, 0, &ev) == 0, "plan: %s", err);
    void *scr = xscratch(gemm_plan_scratch_bytes(p));
    gemm_run(p, A, B, C1, scr);
    gemm_run(p, A, B, C2, scr);
    CHECK(memcmp(C1, C2, 768L * 192 * 4) == 0, "%s: dW differs between two runs (%s)", cf->name, gemm_plan_impl(p));
    gemm_plan_free(p);
    free(scr);
    // attention through its plans, forward and backward, twice
    const int bf16 = cf->cfg.precision == GEMM_PREC_BF16;
    const int Bt = 2, T = 197, NH = 3, hd = 64, D = NH * hd;
    const long nq = (long)Bt * T * 3 * D, no = (long)Bt * T * D, na = (long)Bt * NH * T * T;
    const size_t es = bf16 ? 2 : 4;
    att_plan_t ap;
    CHECK(attention_plan(&ap, &cf->cfg, T, NH, hd, 3 * D, 3 * D, ATTN_CAUSAL, 1, &ev) == 0, "attention plan: %s", err);
    workspace_t ws;
    void *wsm = make_ws(&ws, ap.thread_bytes, ap.thread_bytes);
    char *qkv = xmalloc(nq * es), *att = xmalloc(na * es), *out[2];
    if (bf16) bf16_from_f32((bf16_t *)qkv, A, nq); else memcpy(qkv, A, nq * 4);
    float *dq[2];
    for (int r = 0; r < 2; r++) {
        out[r] = xmalloc(no * es); dq[r] = calloc(nq, 4);
        attention_forward(out[r], att, qkv, qkv + D * es, qkv + 2 * D * es, Bt, &ap, &ws);
        attention_backward(dq[r], dq[r] + D, dq[r] + 2 * D, B, att, qkv, qkv + D * es, qkv + 2 * D * es, Bt, &ap, &ws);
    }
    CHECK(memcmp(out[0], out[1], no * es) == 0 && memcmp(dq[0], dq[1], nq * 4) == 0, "%s: attention differs between two runs", cf->name);
    for (int r = 0; r < 2; r++) { free(out[r]); free(dq[r]); }
    attention_plan_free(&ap);
    free(wsm); free(qkv); free(att); free(A); free(B); free(C1); free(C2);
    test_end();
}

/* ------------------------------------------------------------------ 4. inside parallel regions */

static int process_threads(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_inner_plans(const config_t *cf) {
    char name[96]; err_t ev = {0}; char *err = ev.msg;
    snprintf(name, sizeof name, "inner_plans_in_parallel_region_%s", cf->name);
    test_begin(name);
    // the attention score GEMM of many (batch, head) pairs at once, each thread its own scratch
    const int M = 40, N = 197, K = 64, tasks = 24, nt = omp_get_max_threads();
    const gemm_shape_t s = {0, 1, M, N, K, K, K, N, 0.125f, 0.0f};
    gemm_plan_t *p;
    if (gemm_plan_create(&p, &cf->cfg, &s, GEMM_PLAN_INNER, &ev) != 0) {
        CHECK(0, "plan: %s", err);
        test_end();
        return;
    }
    float *A = xmalloc((size_t)tasks * M * K * sizeof(float)), *B = xmalloc((size_t)tasks * N * K * sizeof(float)),
          *C = xmalloc((size_t)tasks * M * N * sizeof(float));
    for (long i = 0; i < (long)tasks * M * K; i++) A[i] = nrand();
    for (long i = 0; i < (long)tasks * N * K; i++) B[i] = nrand();
    void **scr = xmalloc((size_t)nt * sizeof *scr);
    for (int i = 0; i < nt; i++) scr[i] = xscratch(gemm_plan_scratch_bytes(p));
    int team = 1;
    for (int rep = 0; rep < 3; rep++) {
        #pragma omp parallel for schedule(dynamic)
        for (int t = 0; t < tasks; t++) {
            if (t == 0) team = omp_get_num_threads();
            gemm_run(p, A + (long)t * M * K, B + (long)t * N * K, C + (long)t * M * N, scr[omp_get_thread_num()]);
        }
    }
    const int threads_after = process_threads();
    const int bf16 = cf->cfg.precision == GEMM_PREC_BF16;
    double worst = 0;
    double *ref = xmalloc((size_t)M * N * sizeof(double)), *mag = xmalloc((size_t)M * N * sizeof(double));
    for (int t = 0; t < tasks; t++) {
        gemm_ref(&s, bf16, A + (long)t * M * K, B + (long)t * N * K, NULL, ref, mag);
        for (long i = 0; i < (long)M * N; i++) {
            const double e = fabs(C[(long)t * M * N + i] - ref[i]) / (gamma_n(K + 2) * mag[i] + 1e-37);
            if (!(e <= worst)) worst = e;
        }
    }
    CHECK(worst <= 1.0, "%s: error %.3g of its bound from inside a parallel region (%s)", cf->name, worst, gemm_plan_impl(p));
    // a GEMM that opened its own team inside ours would add threads beyond the team's
    CHECK(threads_after < 0 || threads_after <= nt + 1, "%d threads in the process for a team of %d: oversubscribed",
          threads_after, nt);
    printf("  note: %s inside a team of %d: %s, %d threads in the process\n", cf->name, team, gemm_plan_impl(p), threads_after);
    for (int i = 0; i < nt; i++) free(scr[i]);
    free(scr); free(A); free(B); free(C); free(ref); free(mag);
    gemm_plan_free(p);
    test_end();
}

/* ------------------------------------------------------------------ 5. the model's call sites */

static double *to_d(const float *x, long n) {
    double *d = xmalloc(n * sizeof(double));
    for (long i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static double *abs_d(const double *x, long n) {
    double *d = xmalloc(n * sizeof(double));
    for (long i = 0; i < n; i++) d[i] = fabs(x[i]);
    return d;
}
/* max over entries of |got − ref| / (tol·mag + tiny): ≤ 1 passes. */
static double ratio_to_bound(const float *got, const float *init, const double *ref, const double *mag, long n, double tol) {
    double w = 0;
    for (long i = 0; i < n; i++) {
        const double e = fabs(((double)got[i] - (init ? init[i] : 0)) - ref[i]) / (tol * mag[i] + 1e-30);
        if (!(e <= w)) w = e;
    }
    return w;
}
/* An f32 array as the model stores it for a GEMM: rounded to bf16 (bf16 configurations; x is
 * rounded in place, so the reference sees the same values), else as it is. */
static void *as_stored(float *x, long n, int bf16) {
    if (!bf16) { float *c = xmalloc(n * 4); memcpy(c, x, n * 4); return c; }
    bf16_t *h = xmalloc(n * sizeof(bf16_t));
    bf16_from_f32(h, x, n);
    bf16_to_f32(x, h, n);
    return h;
}

static void test_linear_sites(const config_t *cf) {
    char name[96]; err_t ev = {0}; char *err = ev.msg;
    snprintf(name, sizeof name, "linear_call_sites_%s", cf->name);
    test_begin(name);
    const int bf16 = cf->cfg.precision == GEMM_PREC_BF16;
    // the model's shapes at a small batch (tiny preset: D 192, 4D 768, patch dim 768) and odd ones
    const struct { long N; int C, OC; } cfg[] = {{1, 1, 1}, {7, 12, 5}, {197, 64, 48}, {394, 192, 576}, {197, 768, 192},
                                                {394, 192, 768}, {196, 768, 192}};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++)
        for (int variant = 0; variant < 3; variant++) {   // epilogue (no bias), bias, bias + residual
            const long N = cfg[t].N;
            const int C = cfg[t].C, OC = cfg[t].OC, acc = variant > 0, withres = variant == 2;
            const long ni = N * C, nw = (long)OC * C, no = N * OC;
            lin_plan_t p;
            if (linear_plan(&p, &cf->cfg, N, C, OC, (acc ? LIN_ACCUMULATE : 0) | LIN_BACKWARD | LIN_DINP, &ev)) {
                CHECK(0, "plan: %s", err);
                continue;
            }
            workspace_t ws;
            void *wsm = make_ws(&ws, linear_plan_scratch(&p), 0);
            bf16_t *stage = bf16 ? xmalloc(no * sizeof(bf16_t)) : NULL;
            ws.stage_h = stage;
            float *x = xmalloc(ni * 4), *W = xmalloc(nw * 4), *bias = xmalloc(OC * 4), *res = xmalloc(no * 4), *dy = xmalloc(no * 4),
                  *out = xmalloc(no * 4), *dx = xmalloc(ni * 4), *dW = xmalloc(nw * 4), *db = xmalloc(OC * 4);
            for (long i = 0; i < ni; i++) x[i] = nrand();
            for (long i = 0; i < nw; i++) W[i] = 0.1f * nrand();
            for (long i = 0; i < no; i++) { dy[i] = nrand(); res[i] = nrand(); out[i] = NAN; }
            for (int i = 0; i < OC; i++) { bias[i] = nrand(); db[i] = nrand(); }
            for (long i = 0; i < ni; i++) dx[i] = nrand();
            for (long i = 0; i < nw; i++) dW[i] = nrand();
            float *dx0 = xmalloc(ni * 4), *dW0 = xmalloc(nw * 4), *db0 = xmalloc(OC * 4);
            memcpy(dx0, dx, ni * 4); memcpy(dW0, dW, nw * 4); memcpy(db0, db, OC * 4);
            void *xs = as_stored(x, ni, bf16), *Ws = as_stored(W, nw, bf16);
            linear_forward(out, xs, Ws, acc ? bias : NULL, withres ? res : NULL, N, C, OC, &p, &ws);
            linear_backward(dx, dW, acc ? db : NULL, dy, xs, Ws, N, C, OC, &p, &ws);
            double *xd = to_d(x, ni), *Wd = to_d(W, nw), *bd = to_d(bias, OC), *dyd = to_d(dy, no);
            double *xa = abs_d(xd, ni), *Wa = abs_d(Wd, nw), *ba = abs_d(bd, OC), *dya = abs_d(dyd, no);
            double *outd = xmalloc(no * 8), *outm = xmalloc(no * 8);
            double *dxd = calloc(ni, 8), *dWd = calloc(nw, 8), *dbd = calloc(OC, 8), *dxm = calloc(ni, 8), *dWm = calloc(nw, 8);
            linear_forward_ref(outd, xd, Wd, acc ? bd : NULL, N, C, OC);
            linear_forward_ref(outm, xa, Wa, acc ? ba : NULL, N, C, OC);   // Σ|x·w| + |b|: the error scale
            if (withres) for (long i = 0; i < no; i++) { outd[i] += res[i]; outm[i] += fabs(res[i]); }
            linear_backward_ref(dxd, dWd, dbd, dyd, xd, Wd, N, C, OC);
            linear_backward_ref(dxm, dWm, NULL, dya, xa, Wa, N, C, OC);
            // the accumulated outputs also carry the rounding of the final add: |start| + Σ|…|
            for (long i = 0; i < ni; i++) dxm[i] += fabs(dx0[i]);
            for (long i = 0; i < nw; i++) dWm[i] += fabs(dW0[i]);
            const double gf = gamma_n(C + 3), gi = gamma_n(OC + 3), gw = gamma_n(N + 3);
            const double ub = bf16 ? UB : 0;   // dout is rounded once in backward
            const double rf = ratio_to_bound(out, NULL, outd, outm, no, gf),
                         ri = ratio_to_bound(dx, dx0, dxd, dxm, ni, ub + gi * (1 + ub)),
                         rw = ratio_to_bound(dW, dW0, dWd, dWm, nw, ub + gw * (1 + ub));
            CHECK(rf <= 1 && ri <= 1 && rw <= 1, "%s N=%ld C=%d OC=%d variant %d: error/bound fwd %.3g dinp %.3g dW %.3g",
                  cf->name, N, C, OC, variant, rf, ri, rw);
            if (acc) {   // dbias: f32 column sums of the f32 dout
                double wb = 0;
                for (int o = 0; o < OC; o++) {
                    double mag = fabs(db0[o]);
                    for (long n = 0; n < N; n++) mag += fabs(dy[n * OC + o]);
                    wb = fmax(wb, fabs((db[o] - db0[o]) - dbd[o]) / (gamma_n(N + 1) * mag + 1e-30));
                }
                CHECK(wb <= 1, "%s N=%ld C=%d OC=%d: dbias error %.3g of its bound", cf->name, N, C, OC, wb);
            }
            linear_plan_free(&p);
            free(wsm); free(stage); free(xs); free(Ws);
            free(x); free(W); free(bias); free(res); free(dy); free(out); free(dx); free(dW); free(db); free(dx0); free(dW0); free(db0);
            free(xd); free(Wd); free(bd); free(dyd); free(xa); free(Wa); free(ba); free(dya);
            free(outd); free(outm); free(dxd); free(dWd); free(dbd); free(dxm); free(dWm);
        }
    test_end();
}

static void test_attention_sites(const config_t *cf) {
    char name[96]; err_t ev = {0}; char *err = ev.msg;
    snprintf(name, sizeof name, "attention_call_sites_%s", cf->name);
    test_begin(name);
    const int bf16 = cf->cfg.precision == GEMM_PREC_BF16;
    const size_t es = bf16 ? 2 : 4;
    const int cfgs[][4] = {{1, 1, 1, 12}, {3, 7, 3, 12}, {2, 65, 2, 16}, {2, 197, 3, 64}};
    double worst_o = 0, worst_g = 0;
    for (size_t t = 0; t < sizeof cfgs / sizeof cfgs[0]; t++)
        for (int mode = 0; mode < 3; mode++)
            for (int fused = 0; fused < 2; fused++) {   // the encoder's qkv rows, the decoder's q, k, v
                const int B = cfgs[t][0], T = cfgs[t][1], NH = cfgs[t][2], hd = cfgs[t][3], D = NH * hd;
                const int st = fused ? 3 * D : D;
                const long nbuf = (long)B * T * st, nout = (long)B * T * D, natt = (long)B * NH * T * T;
                att_plan_t ap;
                if (attention_plan(&ap, &cf->cfg, T, NH, hd, st, st, mode, 1, &ev)) { CHECK(0, "plan: %s", err); continue; }
                workspace_t ws;
                void *wsm = make_ws(&ws, ap.thread_bytes, ap.thread_bytes);
                float *qf = xmalloc(nbuf * 4), *kf = fused ? qf : xmalloc(nbuf * 4), *vf = fused ? qf : xmalloc(nbuf * 4);
                for (long i = 0; i < nbuf; i++) qf[i] = nrand();
                if (!fused) for (long i = 0; i < nbuf; i++) { kf[i] = nrand(); vf[i] = nrand(); }
                char *qs = as_stored(qf, nbuf, bf16), *ks = fused ? qs : as_stored(kf, nbuf, bf16),
                     *vs = fused ? qs : as_stored(vf, nbuf, bf16);
                const long ko = fused ? D : 0, vo = fused ? 2 * D : 0;
                char *out = xmalloc(nout * es), *att = xmalloc(natt * es);
                float *dy = xmalloc(nout * 4), *dq = calloc(nbuf, 4), *dk = fused ? dq : calloc(nbuf, 4), *dv = fused ? dq : calloc(nbuf, 4);
                for (long i = 0; i < nout; i++) dy[i] = nrand();
                attention_forward(out, att, qs, ks + ko * es, vs + vo * es, B, &ap, &ws);
                attention_backward(dq, dk + ko, dv + vo, dy, att, qs, ks + ko * es, vs + vo * es, B, &ap, &ws);
                double *qd = to_d(qf, nbuf), *kd = fused ? qd : to_d(kf, nbuf), *vd = fused ? qd : to_d(vf, nbuf);
                double *dyd = to_d(dy, nout), *outd = xmalloc(nout * 8), *attd = xmalloc(natt * 8), *dqd = calloc(nbuf, 8),
                       *dkd = fused ? dqd : calloc(nbuf, 8), *dvd = fused ? dqd : calloc(nbuf, 8);
                attention_forward_ref(outd, attd, qd, kd + ko, vd + vo, st, st, B, T, NH, hd, mode);
                attention_backward_ref(dqd, dkd + ko, dvd + vo, dyd, attd, qd, kd + ko, vd + vo, st, st, B, T, NH, hd, mode);
                double eo = 0, mo = 0, eg = 0, mg = 0;
                for (long i = 0; i < nout; i++) {
                    const double o = bf16 ? bf16_to_f32_one(((bf16_t *)out)[i]) : ((float *)out)[i];
                    eo = fmax(eo, fabs(o - outd[i])); mo = fmax(mo, fabs(outd[i]));
                }
                const float *gs[3] = {dq, dk, dv};
                const double *gr[3] = {dqd, dkd, dvd};
                for (int g = 0; g < (fused ? 1 : 3); g++)
                    for (long i = 0; i < nbuf; i++) { eg = fmax(eg, fabs(gs[g][i] - gr[g][i])); mg = fmax(mg, fabs(gr[g][i])); }
                eo /= mo; eg /= mg;
                worst_o = fmax(worst_o, eo); worst_g = fmax(worst_g, eg);
                // fp32: test_ops' tolerances. bf16 (q, k, v already bf16, as the reference sees
                // them): the scores are exact products summed in f32, so the error comes from
                // rounding P and the output (≈ 2·ub relative to the largest entry: 4·ub bounds it)
                // and, backward, from rounding dO, P and dS on the way through two GEMMs each
                // (8·ub); softmax and its Jacobian are f32.
                const double tf = bf16 ? 4 * UB : 1e-5, tb = bf16 ? 8 * UB : 1e-4;
                CHECK(eo < tf && eg < tb, "%s B=%d T=%d NH=%d hd=%d mode %d %s: relative error out %.3g grads %.3g", cf->name,
                      B, T, NH, hd, mode, fused ? "fused" : "separate", eo, eg);
                if (bf16 && hd >= 16) CHECK(eo > 1e-5, "%s T=%d: bf16 attention error %.3g looks like fp32", cf->name, T, eo);
                attention_plan_free(&ap);
                free(wsm); free(qf); free(qs); free(out); free(att); free(dy); free(dq); free(qd); free(dyd); free(outd); free(attd);
                free(dqd);
                if (!fused) { free(kf); free(vf); free(ks); free(vs); free(dk); free(dv); free(kd); free(vd); free(dkd); free(dvd); }
            }
    printf("  note: %s: worst relative error out %.3g, gradients %.3g\n", cf->name, worst_o, worst_g);
    test_end();
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--capped") == 0) return child_capped(argv[2]);
    test_bf16_conversion();
    test_selection();
    find_configs();
    for (int i = 0; i < nconfigs; i++) {
        test_gemm_cases(&configs[i]);
        test_gemm_empty(&configs[i]);
        test_inner_plans(&configs[i]);
        test_repeatable(&configs[i]);
        test_linear_sites(&configs[i]);
        test_attention_sites(&configs[i]);
    }
    if (gemm_onednn_built()) {
        test_capped_child(argv[0], "AVX512_CORE");
        test_capped_child(argv[0], "AVX2");
    }
    return test_exit();
}
