/* Classification helpers shared by k-NN, the linear probe and fine-tuning: the top five
 * classes of a row of scores, hit counts and accuracies, and the evaluation of a fine-tuning
 * classifier on the val split. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "semaim/eval.h"
#include "semaim/finetune.h"
#include "semaim/loader.h"

void top5_classes(const double *sd, const float *sf, int C, int32_t *p) {
#define SCORE(c) (sd ? sd[c] : (double)sf[c])   /* float → double is exact: the order is unchanged */
    for (int j = 0; j < 5; j++) p[j] = -1;
    int top = C < 5 ? C : 5;
    for (int j = 0; j < top; j++) {
        int best = -1;
        for (int c = 0; c < C; c++) {
            int taken = 0;
            for (int i = 0; i < j; i++) taken |= p[i] == c;
            if (!taken && (best < 0 || SCORE(c) > SCORE(best))) best = c;
        }
        p[j] = best;
    }
#undef SCORE
}

void topk_hits(const int32_t *pred5, const int32_t *labels, long n, long *hits1, long *hits5) {
    long c1 = 0, c5 = 0;
    for (long i = 0; i < n; i++) {
        c1 += pred5[i * 5] == labels[i];
        int hit = 0;
        for (int j = 0; j < 5; j++) hit |= pred5[i * 5 + j] >= 0 && pred5[i * 5 + j] == labels[i];
        c5 += hit;
    }
    *hits1 = c1;
    *hits5 = c5;
}

void topk_accuracy(const int32_t *pred5, const int32_t *labels, long n, double *top1, double *top5) {
    long c1, c5;
    topk_hits(pred5, labels, n, &c1, &c5);
    *top1 = n ? 100.0 * c1 / n : 0;
    *top5 = n ? 100.0 * c5 / n : 0;
}

void ft_top5(const ft_model_t *f, int32_t *pred5) {
    const float *logits = ft_logits(f);
    for (int b = 0; b < acts_capacity(f->a) && b < f->B; b++)
        top5_classes(NULL, logits + (long)b * f->C, f->C, pred5 + (long)b * 5);
}

int ft_evaluate(ft_model_t *f, const char *data, int batch, float smoothing, MPI_Comm comm, ft_eval_t *out, err_t *err) {
    int rank, world;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &world);
    loader_config lc = {.data_dir = data, .split = "val", .image_size = f->cfg.image, .batch = batch,
                        .rank = rank, .world = world, .train = 0, .threads = 1};
    loader *ld = NULL;
    int bad = loader_open(&ld, &lc, err) != 0;
    int32_t *p5 = bad ? NULL : malloc(sizeof(int32_t) * 5 * (size_t)batch);
    if (!bad && !p5) bad = err_set(err, ERR_RUNTIME, "fine-tune evaluation: out of memory") != 0;
    double cnt[4] = {0, 0, 0, 0}, tot[4];
    long steps = bad ? 0 : loader_steps_per_epoch(ld);
    for (long s = 0; s < steps && !bad; s++) {
        const loader_batch *b;
        if (loader_next(ld, &b, NULL, err)) { bad = 1; break; }
        if (b->n == 0) continue;
        double l = ft_forward(f, b->images, b->labels, b->n, 0, smoothing);
        ft_top5(f, p5);
        long h1, h5;
        topk_hits(p5, b->labels, b->n, &h1, &h5);
        cnt[0] += h1;
        cnt[1] += h5;
        cnt[2] += l * b->n;
        cnt[3] += b->n;
    }
    free(p5);
    if (ld) loader_close(ld);
    /* every rank reaches the reductions, failed or not, so a failure on one never hangs the others */
    int any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm);
    if (any) {
        if (!bad) err_set(err, ERR_INPUT, "fine-tune evaluation failed on another rank");
        return -1;
    }
    MPI_Allreduce(cnt, tot, 4, MPI_DOUBLE, MPI_SUM, comm);
    *out = (ft_eval_t){100 * tot[0] / fmax(tot[3], 1), 100 * tot[1] / fmax(tot[3], 1), tot[2] / fmax(tot[3], 1), (long)tot[3]};
    return 0;
}
