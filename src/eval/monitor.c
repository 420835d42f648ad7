/* The k-NN monitor (semaim/monitor.h): the feature pass and k-NN of semaim-eval, over sets fixed
 * at start-up. */
#include <stdlib.h>
#include <string.h>
#include "core/clock.h"
#include "semaim/dist.h"
#include "semaim/eval.h"
#include "semaim/monitor.h"

struct monitor {
    monitor_cfg_t c;
    loader *ld[2];          /* bank (train split), queries (val split) */
    featset_t fs[2];
    acts_t *a;
};

void monitor_close(monitor_t *mon) {
    if (!mon) return;
    for (int i = 0; i < 2; i++) {
        loader_close(mon->ld[i]);
        featset_free(&mon->fs[i]);
    }
    acts_free(mon->a);
    free(mon);
}

int monitor_open(monitor_t **out, const monitor_cfg_t *c, const model_t *m, int rank, int world, err_t *err) {
    *out = NULL;
    monitor_t *mon = calloc(1, sizeof *mon);
    if (!mon) return err_set(err, ERR_RUNTIME, "monitor: out of memory");
    mon->c = *c;
    mon->c.data = NULL;   /* not kept: the loaders have what they need */
    static const char *const split[2] = {"train", "val"};
    const long want[2] = {c->bank, c->queries};
    for (int i = 0; i < 2; i++)
        if (features_open(&mon->ld[i], m, c->data, split[i], want[i], c->batch, rank, world, err) ||
            features_alloc(&mon->fs[i], mon->ld[i], m, rank, world, err)) {
            monitor_close(mon);
            return -1;
        }
    if (!(mon->a = acts_create(&m->cfg, c->batch, ACTS_ENCODER, 0, err))) {
        monitor_close(mon);
        err_prefix(err, "monitor");
        return -1;
    }
    *out = mon;
    return 0;
}

int monitor_eval(monitor_t *mon, model_t *m, MPI_Comm comm, monitor_result_t *res, err_t *err) {
    memset(res, 0, sizeof *res);
    double t0 = clock_now();
    err_clear(err);
    for (int i = 0; i < 2 && !err->kind; i++) features_run(&mon->fs[i], m, mon->a, mon->ld[i], err);
    if (dist_agree(comm, err)) return -1;
    double t1 = clock_now();
    for (int k = 0; k < FEATSET_KINDS; k++) {
        knn_result_t r;
        if (knn_eval(&mon->fs[0], &mon->fs[1], featset_kinds[k], mon->c.k, mon->c.temperature, comm, &r, err)) return -1;
        res->top1[k] = r.top1;
        res->top5[k] = r.top5;
        res->bank = r.bank;
        res->queries = r.queries;
        res->k = r.k;
        res->num_classes = r.num_classes;
    }
    res->features_s = t1 - t0;
    res->knn_s = clock_now() - t1;
    return 0;
}
