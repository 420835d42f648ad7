/* "Plans made up front, no allocation inside a step", for the GEMM layer: every allocation
 * call made by our code (libsemaim is linked statically and this test with --wrap for the
 * allocator, see the Makefile) is counted while plans run — the model's GEMM shapes, outer
 * plans from the main thread and inner ones from a parallel region — and while linear_* and
 * attention_* run their plans (made beforehand, as the activation arena makes them); on every
 * configuration this machine can run.
 * Outside ASan the allocator is also interposed for the whole process, which shows what the
 * libraries allocate on their own (oneDNN's execute path does, whatever the scratchpad mode):
 * that is reported, not checked, since our code cannot change it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "check.h"

static long ours = 0, everyone = 0;
void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_malloc(size_t n) { __atomic_add_fetch(&ours, 1, __ATOMIC_RELAXED); return __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { __atomic_add_fetch(&ours, 1, __ATOMIC_RELAXED); return __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { __atomic_add_fetch(&ours, 1, __ATOMIC_RELAXED); return __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { __atomic_add_fetch(&ours, 1, __ATOMIC_RELAXED); return __real_aligned_alloc(a, n); }
int __wrap_posix_memalign(void **p, size_t a, size_t n) { __atomic_add_fetch(&ours, 1, __ATOMIC_RELAXED); return __real_posix_memalign(p, a, n); }

#if defined(__SANITIZE_ADDRESS__)
#define WHOLE_PROCESS 0   // ASan owns the allocator
#else
#define WHOLE_PROCESS 1
/* glibc's own entry points, so the process-wide counters can forward to them. */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t a, size_t b);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t a, size_t n);
void *malloc(size_t n) { __atomic_add_fetch(&everyone, 1, __ATOMIC_RELAXED); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { __atomic_add_fetch(&everyone, 1, __ATOMIC_RELAXED); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { __atomic_add_fetch(&everyone, 1, __ATOMIC_RELAXED); return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { __atomic_add_fetch(&everyone, 1, __ATOMIC_RELAXED); return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { __atomic_add_fetch(&everyone, 1, __ATOMIC_RELAXED); return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    __atomic_add_fetch(&everyone, 1, __ATOMIC_RELAXED);
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;   // ENOMEM
}
#endif

static void fill(float *x, long n, unsigned seed) {
    for (long i = 0; i < n; i++) { seed = seed * 1664525u + 1013904223u; x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f; }
}

/* The model's GEMMs at B = 3 (tiny preset widths, N = 3·197 rows) and the attention blocks of
 * T = 197 on the fused qkv layout; inner: run from a parallel region. */
typedef struct { gemm_shape_t s; int inner; } use_t;
#define N (3 * 197)
static const use_t uses[] = {
    {{0, 1, N, 576, 192, 192, 192, 576, 1, 1}, 0},    // qkv
    {{0, 1, N, 192, 192, 192, 192, 192, 1, 1}, 0},    // proj
    {{0, 1, N, 768, 192, 192, 192, 768, 1, 1}, 0},    // fc1
    {{0, 1, N, 192, 768, 768, 768, 192, 1, 1}, 0},    // fc2
    {{0, 1, N, 768, 768, 768, 768, 768, 1, 1}, 0},    // head fc2 (patch dim 768)
    {{0, 0, N, 192, 768, 768, 192, 192, 1, 1}, 0},    // dinp of fc1
    {{1, 0, 768, 192, N, 768, 192, 192, 1, 1}, 0},    // dW of fc1
    {{0, 1, 40, 197, 64, 576, 576, 197, 0.125f, 0}, 1},   // scores
    {{0, 0, 40, 64, 197, 197, 576, 192, 1, 0}, 1},        // P·V
    {{1, 0, 197, 64, 40, 197, 192, 576, 1, 1}, 1},        // dV
    {{0, 0, 40, 64, 79, 79, 576, 576, 0.125f, 1}, 1},     // dQ
};
#define NUSES (sizeof uses / sizeof uses[0])

static void check_config(const char *name, const gemm_config_t *cfg) {
    char tname[96];
    err_t ev = {0};
    const char *err = ev.msg;
    snprintf(tname, sizeof tname, "no_allocation_in_gemm_run_%s", name);
    test_begin(tname);
    const int nt = omp_get_max_threads(), bf16 = cfg->precision == GEMM_PREC_BF16;
    gemm_plan_t *plans[2 * NUSES];
    int use_of[2 * NUSES];
    size_t scr_bytes = 64;
    long before = ours;
    int np = 0;
    for (size_t u = 0; u < NUSES; u++)
        for (int in = 0; in <= bf16; in++) {   // bf16: float inputs and bf16 inputs
            unsigned fl = (uses[u].inner ? GEMM_PLAN_INNER : 0) | (in ? GEMM_PLAN_BF16_IN : 0);
            if (gemm_plan_create(&plans[np], cfg, &uses[u].s, fl, &ev) != 0) { CHECK(0, "plan: %s", err); continue; }
            if (gemm_plan_scratch_bytes(plans[np]) > scr_bytes) scr_bytes = gemm_plan_scratch_bytes(plans[np]);
            use_of[np++] = (int)u;
        }
    CHECK(ours > before, "the wrapper does not see the plans' allocations");
    // inner runs write disjoint parts of C, each at most 197 rows of 576
    const long nc = N * 768 > 4L * nt * 197 * 576 ? N * 768 : 4L * nt * 197 * 576;
    float *A = malloc(N * 768 * sizeof(float)), *B = malloc(768 * 768 * sizeof(float)), *C = malloc(nc * sizeof(float));
    fill(A, N * 768, 1); fill(B, 768 * 768, 2); fill(C, nc, 3);
    void **scr = malloc((size_t)nt * sizeof *scr);
    for (int i = 0; i < nt; i++) scr[i] = aligned_alloc(64, (scr_bytes + 63) / 64 * 64);
    // bf16 plans with bf16 inputs read the same bytes as bf16: any values will do
    for (int rep = 0; rep < 2; rep++) {   // the first round may warm up lazy state; both count
        before = ours;
        const long all0 = everyone;
        long runs = 0;
        for (int i = 0; i < np; i++) {
            const gemm_plan_t *p = plans[i];
            if (!uses[use_of[i]].inner) {
                gemm_run(p, A, B, C, scr[0]);
                runs++;
            } else {
                #pragma omp parallel for schedule(dynamic)
                for (int t = 0; t < 4 * nt; t++) {
                    const int me = omp_get_thread_num();
                    gemm_run(p, A + (long)t * 40 * 64, B, C + (long)t * 197 * 576, scr[me]);
                }
                runs += 4 * nt;
            }
        }
        CHECK(ours == before, "%s round %d: %ld allocations by our code in %ld gemm_run calls", name, rep, ours - before, runs);
        if (WHOLE_PROCESS && rep == 1)
            printf("  note: %s: the libraries made %.1f allocations per gemm_run (%s)\n", name,
                   (double)(everyone - all0) / runs, gemm_plan_impl(plans[0]));
    }
    for (int i = 0; i < np; i++) gemm_plan_free(plans[i]);
    for (int i = 0; i < nt; i++) free(scr[i]);
    free(scr); free(A); free(B); free(C);
    test_end();

    snprintf(tname, sizeof tname, "no_allocation_in_kernels_%s", name);
    test_begin(tname);
    const int T = 197, NH = 3, hd = 64, D = NH * hd, Bt = 3;
    const long BT = (long)Bt * T;
    const size_t es = bf16 ? 2 : 4;   // what the GEMMs read is stored in the run's precision
    const int lin[][2] = {{D, 3 * D}, {D, D}, {D, 4 * D}, {4 * D, D}};
    lin_plan_t lp[4][2];
    att_plan_t ap[3];
    size_t s0 = 0, sn = 0;
    for (int l = 0; l < 4; l++)
        for (int acc = 0; acc < 2; acc++) {
            CHECK(linear_plan(&lp[l][acc], cfg, BT, lin[l][0], lin[l][1], (acc ? LIN_ACCUMULATE : 0) | LIN_BACKWARD | LIN_DINP,
                              &ev) == 0, "linear plan: %s", err);
            if (linear_plan_scratch(&lp[l][acc]) > s0) s0 = linear_plan_scratch(&lp[l][acc]);
        }
    for (int mode = 0; mode < 3; mode++) {
        CHECK(attention_plan(&ap[mode], cfg, T, NH, hd, 3 * D, 3 * D, mode, 1, &ev) == 0, "attention plan: %s", err);
        if (ap[mode].thread_bytes > sn) sn = ap[mode].thread_bytes;
    }
    workspace_t ws;
    void *wsm = workspace_alloc(&ws, s0 > sn ? s0 : sn, sn);
    ws.stage_h = bf16 ? malloc(BT * 4 * D * sizeof(bf16_t)) : NULL;
    char *x = malloc(BT * 4 * D * es), *W = malloc(4 * D * 4 * D * es), *qkv = malloc(BT * 3 * D * es),
         *att = malloc((long)Bt * NH * T * T * es), *ah = malloc(BT * D * es);
    float *bias = malloc(4 * D * sizeof(float)), *y = malloc(BT * 4 * D * sizeof(float)),
          *dx = malloc(BT * 4 * D * sizeof(float)), *dW = malloc(4 * D * 4 * D * sizeof(float)),
          *db = malloc(4 * D * sizeof(float)), *dqkv = malloc(BT * 3 * D * sizeof(float));
    memset(x, 0, BT * 4 * D * es); memset(W, 0, 16 * D * D * es); memset(qkv, 0, BT * 3 * D * es);
    fill(bias, 4 * D, 6); fill(y, BT * 4 * D, 7);
    memset(dx, 0, BT * 4 * D * sizeof(float)); memset(dW, 0, 16 * D * D * sizeof(float)); memset(db, 0, 4 * D * sizeof(float));
    memset(dqkv, 0, BT * 3 * D * sizeof(float));
    before = ours;
    for (int l = 0; l < 4; l++)
        for (int acc = 0; acc < 2; acc++) {
            linear_forward(y, x, W, acc ? bias : NULL, NULL, BT, lin[l][0], lin[l][1], &lp[l][acc], &ws);
            linear_backward(dx, dW, db, y, x, W, BT, lin[l][0], lin[l][1], &lp[l][acc], &ws);
        }
    for (int mode = 0; mode < 3; mode++) {
        attention_forward(ah, att, qkv, qkv + D * es, qkv + 2 * D * es, Bt, &ap[mode], &ws);
        attention_backward(dqkv, dqkv + D, dqkv + 2 * D, y, att, qkv, qkv + D * es, qkv + 2 * D * es, Bt, &ap[mode], &ws);
    }
    CHECK(ours == before, "%s: %ld allocations by our code in planned linear and attention passes", name, ours - before);
    // making a plan allocates: the counter must see that, or the check above is blind
    before = ours;
    lin_plan_t extra;
    CHECK(linear_plan(&extra, cfg, 5, 7, 3, 0, &ev) == 0, "plan: %s", err);
    CHECK(ours > before, "%s: a plan made without allocating? the count is blind", name);
    linear_plan_free(&extra);
    for (int l = 0; l < 4; l++) { linear_plan_free(&lp[l][0]); linear_plan_free(&lp[l][1]); }
    for (int mode = 0; mode < 3; mode++) attention_plan_free(&ap[mode]);
    free(wsm); free(ws.stage_h);
    free(x); free(W); free(bias); free(y); free(dx); free(dW); free(db); free(qkv); free(dqkv); free(att); free(ah);
    test_end();
}

int main(void) {
    err_t e = {0};
    gemm_config_t c;
    if (gemm_select(&c, GEMM_BACKEND_OPENBLAS, GEMM_PREC_FP32, 0, &e) == 0) check_config("openblas_fp32", &c);
    if (gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_FP32, 0, &e) == 0) check_config("onednn_fp32", &c);
    if (gemm_select(&c, GEMM_BACKEND_OPENBLAS, GEMM_PREC_BF16, GEMM_ALLOW_EMULATED_BF16, &e) == 0)
        check_config("emulated_bf16", &c);
    if (gemm_select(&c, GEMM_BACKEND_ONEDNN, GEMM_PREC_BF16, 0, &e) == 0) check_config("onednn_bf16", &c);
    return test_exit();
}
