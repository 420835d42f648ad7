/* Between gemm.c (plans, conversion, the context) and its backends; not for other rooms. */
#ifndef SEMAIM_GEMM_IMPL_H
#define SEMAIM_GEMM_IMPL_H
#include "kernels/gemm.h"

/* What a backend multiplies once the inputs are in their final type. */
typedef struct {
    gemm_shape_t s;
    int bf16;   // A and B are bf16_t (otherwise float); C is always float
} gemm_core_t;

/* How gemm_run prepares one operand before the backend sees it. */
enum { CONV_NONE = 0, CONV_F32_TO_BF16, CONV_F32_ROUND, CONV_BF16_TO_F32 };

struct gemm_plan {
    gemm_shape_t s;          // as the caller gives it
    gemm_config_t cfg;
    unsigned flags;
    gemm_core_t core;        // as the backend computes it (compact strides after a conversion)
    int conv;                // CONV_*, applied to A and B alike
    long a_rows, a_cols, b_rows, b_cols;   // A and B as stored
    size_t a_off, b_off;     // converted copies inside the scratch
    size_t backend_scratch;  // bytes at the start of the scratch, the backend's own
    size_t scratch_bytes;
    int nslots;              // threads that may run it at once (1 unless GEMM_PLAN_INNER)
    int onednn;              // the core runs on oneDNN (else cblas_sgemm)
    void *impl;              // oneDNN state
    char impl_name[64];
};

/* OpenBLAS: float core only. */
void gemm_openblas_run(const gemm_core_t *c, const float *A, const float *B, float *C);

/* oneDNN (stubs returning "not built" without SEMAIM_HAVE_ONEDNN). create: threads is the
 * thread count the primitive is built for (1 for inner plans); sets p->impl,
 * p->backend_scratch and p->impl_name. */
int gemm_onednn_create(gemm_plan_t *p, int threads, err_t *e);
void gemm_onednn_run(const gemm_plan_t *p, const void *A, const void *B, float *C, void *scratch);
void gemm_onednn_destroy(gemm_plan_t *p);
unsigned gemm_onednn_isa_bits(void);   // dnnl_cpu_isa_t value, 0 when not built
const char *gemm_onednn_version_string(void);   // "2.6.3", or "none"
#define GEMM_ISA_AVX512_CORE_BF16 0xe7u  // oneDNN's bits for it: a superset means bf16 kernels

#endif
