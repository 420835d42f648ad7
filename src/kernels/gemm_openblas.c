/* The OpenBLAS backend: cblas_sgemm on float inputs (the emulated bf16 path reaches it with
 * inputs already rounded to bf16 by gemm_run). Called inside one of our parallel regions,
 * the OpenMP build of OpenBLAS runs on the calling thread. */
#include <assert.h>
#include <limits.h>
#include <cblas.h>
#include "kernels/gemm_impl.h"

void gemm_openblas_run(const gemm_core_t *c, const float *A, const float *B, float *C) {
    const gemm_shape_t *s = &c->s;
    assert(!c->bf16);
    assert(s->M <= INT_MAX && s->N <= INT_MAX && s->K <= INT_MAX && s->lda <= INT_MAX && s->ldb <= INT_MAX &&
           s->ldc <= INT_MAX);
    cblas_sgemm(CblasRowMajor, s->transa ? CblasTrans : CblasNoTrans, s->transb ? CblasTrans : CblasNoTrans,
                (int)s->M, (int)s->N, (int)s->K, s->alpha, A, (int)s->lda, B, (int)s->ldb, s->beta, C, (int)s->ldc);
}
