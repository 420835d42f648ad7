/* The compute choice of a job (semaim/dist.h): every rank resolves --gemm and --precision
 * itself (the CPU and oneDNN's ISA are local facts), and the job goes ahead only when they
 * all resolved them alike — replicas that multiply in different precisions would drift
 * apart, and the replica check would stop the job much later with a less helpful message. */
#include <stdio.h>
#include "semaim/dist.h"

static int code_of(const gemm_config_t *c) { return (int)c->backend * 8 + (int)c->precision * 2 + (c->emulated_bf16 != 0); }
static gemm_config_t config_of(int code) {
    gemm_config_t c = {(gemm_backend_t)(code / 8), (gemm_precision_t)(code % 8 / 2), code % 2};
    return c;
}

int dist_compute_setup(MPI_Comm comm, const char *gemm, const char *precision, gemm_config_t *out, err_t *e) {
    gemm_setup(gemm, precision, out, e);
    if (dist_agree(comm, e)) return -1;
    int mine = code_of(out), lo, hi;
    MPI_Allreduce(&mine, &lo, 1, MPI_INT, MPI_MIN, comm);
    MPI_Allreduce(&mine, &hi, 1, MPI_INT, MPI_MAX, comm);
    if (lo == hi) return 0;
    const gemm_config_t a = config_of(lo), b = config_of(hi);
    char an[64];
    snprintf(an, sizeof an, "%s", gemm_config_name(&a));
    return err_set(e, ERR_INPUT, "--gemm %s --precision %s resolved to %s on some ranks and %s on others (nodes with "
                   "different CPUs or oneDNN builds?): give both explicitly", gemm, precision, an, gemm_config_name(&b));
}
