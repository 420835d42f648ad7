/* The oneDNN backend: one matmul primitive per plan, created once with a user-managed
 * scratchpad, strides describing the transpositions, alpha as an output scale and beta = 1
 * as a sum post-op. Debian's oneDNN 2.6 is built on libgomp (DNNL_CPU_RUNTIME OMP), like our
 * kernels and OpenBLAS: one OMP_NUM_THREADS governs all three, and inside an active parallel
 * region a primitive runs on the calling thread (oneDNN then keeps to one thread, as nested
 * regions are inactive). Memory objects and streams are per thread of the team, so threads
 * running one plan at once never share them. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include "kernels/gemm_impl.h"

#ifdef SEMAIM_HAVE_ONEDNN
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

/* The CPU engine: one per process, made with the first plan and kept (it owns nothing that
 * grows with use). */
static dnnl_engine_t engine;

typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t *mem;       // 4 per slot: A, B, C, scratchpad (NULL when none is needed)
    dnnl_stream_t *streams;   // 1 per slot
} onednn_state_t;

static const char *status_name(dnnl_status_t s) {
    switch (s) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "no implementation for this case";
    default: return "error";
    }
}

unsigned gemm_onednn_isa_bits(void) { return (unsigned)dnnl_get_effective_cpu_isa(); }

const char *gemm_onednn_version_string(void) {
    static char v[32];
    const dnnl_version_t *d = dnnl_version();
    snprintf(v, sizeof v, "%d.%d.%d", d->major, d->minor, d->patch);
    return v;
}

static void destroy_state(onednn_state_t *st, int nslots) {
    if (!st) return;
    if (st->mem)
        for (int i = 0; i < 4 * nslots; i++)
            if (st->mem[i]) dnnl_memory_destroy(st->mem[i]);
    if (st->streams)
        for (int i = 0; i < nslots; i++)
            if (st->streams[i]) dnnl_stream_destroy(st->streams[i]);
    if (st->prim) dnnl_primitive_destroy(st->prim);
    free(st->mem);
    free(st->streams);
    free(st);
}

int gemm_onednn_create(gemm_plan_t *p, int threads, err_t *e) {
    const gemm_shape_t *s = &p->core.s;
    const dnnl_data_type_t in = p->core.bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_status_t rc = dnnl_success;
    const char *what = "engine";
    if (!engine) rc = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (rc != dnnl_success) return err_set(e, ERR_RUNTIME, "oneDNN: cannot create the CPU engine (%s)", status_name(rc));

    dnnl_memory_desc_t a, b, c;
    const dnnl_dims_t da = {s->M, s->K}, db = {s->K, s->N}, dc = {s->M, s->N};
    const dnnl_dims_t sa = {s->transa ? 1 : s->lda, s->transa ? s->lda : 1};
    const dnnl_dims_t sb = {s->transb ? 1 : s->ldb, s->transb ? s->ldb : 1};
    const dnnl_dims_t sc = {s->ldc, 1};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    onednn_state_t *st = calloc(1, sizeof *st);
    if (!st) return err_set(e, ERR_RUNTIME, "oneDNN: out of memory");
    const int saved_threads = omp_get_max_threads();
#define TRY(call, name) do { what = name; rc = (call); if (rc != dnnl_success) goto fail; } while (0)
    TRY(dnnl_memory_desc_init_by_strides(&a, 2, da, in, sa), "memory descriptor of A");
    TRY(dnnl_memory_desc_init_by_strides(&b, 2, db, in, sb), "memory descriptor of B");
    TRY(dnnl_memory_desc_init_by_strides(&c, 2, dc, dnnl_f32, sc), "memory descriptor of C");
    dnnl_matmul_desc_t md;
    TRY(dnnl_matmul_desc_init(&md, &a, &b, NULL, &c), "matmul descriptor");
    TRY(dnnl_primitive_attr_create(&attr), "attributes");
    TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "user scratchpad");
    if (s->alpha != 1.0f) TRY(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &s->alpha), "output scale");
    if (s->beta != 0.0f) {
        TRY(dnnl_post_ops_create(&po), "post-ops");
        TRY(dnnl_post_ops_append_sum(po, s->beta), "sum post-op");
        TRY(dnnl_primitive_attr_set_post_ops(attr, po), "post-ops");
    }
    // oneDNN sizes its thread decomposition and scratchpad for omp_get_max_threads() at
    // creation: an inner plan is built for the one thread it will get.
    omp_set_num_threads(threads);
    what = "primitive descriptor";
    rc = dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL);
    if (rc == dnnl_success) { what = "primitive"; rc = dnnl_primitive_create(&st->prim, pd); }
    omp_set_num_threads(saved_threads);
    if (rc != dnnl_success) goto fail;

    const char *impl = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(p->impl_name, sizeof p->impl_name, "onednn %s", impl);
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    p->backend_scratch = spmd ? dnnl_memory_desc_get_size(spmd) : 0;

    st->mem = calloc((size_t)4 * p->nslots, sizeof *st->mem);
    st->streams = calloc((size_t)p->nslots, sizeof *st->streams);
    if (!st->mem || !st->streams) { what = "plan"; rc = dnnl_out_of_memory; goto fail; }
    for (int i = 0; i < p->nslots; i++) {
        dnnl_memory_t *m = st->mem + 4 * i;
        TRY(dnnl_memory_create(&m[0], &a, engine, DNNL_MEMORY_NONE), "memory of A");
        TRY(dnnl_memory_create(&m[1], &b, engine, DNNL_MEMORY_NONE), "memory of B");
        TRY(dnnl_memory_create(&m[2], &c, engine, DNNL_MEMORY_NONE), "memory of C");
        if (p->backend_scratch) TRY(dnnl_memory_create(&m[3], spmd, engine, DNNL_MEMORY_NONE), "scratchpad memory");
        TRY(dnnl_stream_create(&st->streams[i], engine, dnnl_stream_default_flags), "stream");
    }
#undef TRY
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    if (po) dnnl_post_ops_destroy(po);
    p->impl = st;
    return 0;
fail:
    err_set(e, ERR_RUNTIME, "oneDNN: cannot create the %s of a %s %ldx%ldx%ld matmul (%s)", what,
            p->core.bf16 ? "bf16" : "f32", s->M, s->N, s->K, status_name(rc));
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (po) dnnl_post_ops_destroy(po);
    destroy_state(st, p->nslots);
    return -1;
}

void gemm_onednn_run(const gemm_plan_t *p, const void *A, const void *B, float *C, void *scratch) {
    const onednn_state_t *st = p->impl;
    const int slot = omp_in_parallel() ? omp_get_thread_num() : 0;
    assert(st && slot < p->nslots);   // an outer plan run inside a region, or a team larger than planned
    dnnl_memory_t *m = st->mem + 4 * slot;
    // oneDNN only reads A and B; its handles are not const
    dnnl_memory_set_data_handle(m[0], (void *)A);
    dnnl_memory_set_data_handle(m[1], (void *)B);
    dnnl_memory_set_data_handle(m[2], C);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}, {DNNL_ARG_SCRATCHPAD, m[3]}};
    int nargs = 3;
    if (m[3]) { dnnl_memory_set_data_handle(m[3], scratch); nargs = 4; }
    dnnl_status_t rc = dnnl_primitive_execute(st->prim, st->streams[slot], nargs, args);
    if (rc == dnnl_success) rc = dnnl_stream_wait(st->streams[slot]);
    if (rc != dnnl_success) {
        fprintf(stderr, "gemm: oneDNN matmul %ldx%ldx%ld failed to run (%s)\n", p->core.s.M, p->core.s.N, p->core.s.K,
                status_name(rc));
        abort();
    }
}

void gemm_onednn_destroy(gemm_plan_t *p) {
    destroy_state(p->impl, p->nslots);
    p->impl = NULL;
}

#else /* no oneDNN in this build: gemm_select never picks it */

unsigned gemm_onednn_isa_bits(void) { return 0; }
const char *gemm_onednn_version_string(void) { return "none"; }
int gemm_onednn_create(gemm_plan_t *p, int threads, err_t *e) {
    (void)p; (void)threads;
    return err_set(e, ERR_RUNTIME, "this build has no oneDNN (built with GEMM=openblas)");
}
void gemm_onednn_run(const gemm_plan_t *p, const void *A, const void *B, float *C, void *scratch) {
    (void)p; (void)A; (void)B; (void)C; (void)scratch;
    assert(!"gemm: a oneDNN plan in a build without oneDNN");
    abort();
}
void gemm_onednn_destroy(gemm_plan_t *p) { (void)p; }

#endif
