/* The k-NN monitor of a pretraining run (semaim-train --monitor-data): with the current
 * weights, the features of a small labelled bank (the first `bank` images of the train split)
 * and query set (the first `queries` images of the val split; the shards are shuffled when
 * written, so both are random samples), then the k-NN top-1 and top-5 (DINO style, knn_eval)
 * of every readout of featset_kinds (cls, mean, gap), computed by all ranks together: each
 * rank computes the features of its slice of both sets, the bank stays distributed.
 *
 * Everything it needs between evaluations is made once by monitor_open, at start-up: the two
 * eval-mode loaders, the feature rows and an encoder-only arena (k-NN's own working buffers,
 * a few MB for the default sizes, are made by knn_eval during an evaluation). */
#ifndef SEMAIM_MONITOR_H
#define SEMAIM_MONITOR_H
#include <mpi.h>
#include "semaim/err.h"
#include "semaim/featfile.h"
#include "semaim/model.h"

typedef struct {
    const char *data;       /* shards folder with train/ and val/ (semaim-prep output) */
    long bank, queries;     /* images of each; the whole split when it holds fewer */
    int k;                  /* neighbours (20) */
    double temperature;     /* vote weight exp(sim / T) (0.07) */
    int batch;              /* images per forward pass per rank */
} monitor_cfg_t;

typedef struct {
    double top1[FEATSET_KINDS], top5[FEATSET_KINDS];   /* percent, per readout of featset_kinds */
    long bank, queries;     /* images used */
    int k, num_classes;
    double features_s, knn_s;
} monitor_result_t;

typedef struct monitor monitor_t;
/* Opens the loaders (shards smaller than the model's input are refused) and allocates
 * everything for model m's config. No MPI: the caller agrees on err. 0, or -1 with a one-line
 * reason naming the folder (ERR_INPUT) or what ran out (ERR_RUNTIME). */
int monitor_open(monitor_t **out, const monitor_cfg_t *c, const model_t *m, int rank, int world, err_t *err);
/* Collective: one evaluation of m's current weights. 0 with res filled on every rank, or -1
 * on every rank with the first failing rank's error. Leaves m's weights alone; m's arena is
 * not touched (the monitor has its own). */
int monitor_eval(monitor_t *mon, model_t *m, MPI_Comm comm, monitor_result_t *res, err_t *err);
void monitor_close(monitor_t *mon);
#endif
