/* The training data loader; the assignment rules and threading are in include/semaim/loader.h. */
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "core/clock.h"
#include "core/slice.h"
#include "data/augment.h"
#include "data/jpeg.h"
#include "semaim/loader.h"
#include "semaim/rng.h"
#include "semaim/shards.h"

/* rng purpose ids of the loader's shuffles (distinct from AUG_RNG_TAG and each other) */
#define TAG_SHARD_ORDER 0x73686172646f72ULL
#define TAG_RANK_SHUFFLE 0x72616e6b736875ULL
#define TAG_DEAL 0x6465616c696e67ULL

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY };
typedef struct { loader_batch b; int state, failed; } slot;

struct loader {
    loader_config c;
    int S, R, threads, nslots, deal;
    shard_set set;
    long N;           /* samples served: all of the set's, or the first `limit` in eval mode */
    shard_reader *reader;
    long steps;
    /* loader-thread state */
    int plan_epoch;
    int64_t *plan;
    long plan_n;
    uint8_t *stage;   /* raw: the batch's images; jpeg: its JPEG bytes (grown to the largest batch) */
    size_t stage_cap;
    shard_jpeg *refs; /* jpeg: where image i's bytes are in stage, and its size */
    void **scratch;   /* per augmentation thread: raw, resample scratch; jpeg, a jpeg_dec */
    aug_recipe rec;   /* the fine-tuning chain, when has_rec */
    int has_rec;
    void **finish;    /* per augmentation thread, with a recipe: augment_finetune_finish's work */
    char (*why)[160]; /* per augmentation thread: why its image failed */
    int prod_epoch;
    long prod_step;
    err_t err;        /* the loader thread's error */
    /* shared, under mu */
    pthread_t th;
    int th_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot *slots;
    int head, tail, held, stop, dead;
    int next_epoch;
    long next_step;
    err_t sticky;     /* the error every loader_next returns after a failure (kind NONE: none) */
    double read_s, aug_s;
    long batches;
};


/* This rank's ordered sample list for an epoch, into out (NULL: count only). Pure function of
 * (seed, epoch, rank, world, shard counts). */
static long plan_build(const loader *L, int epoch, int rank, int64_t *out) {
    const shard_set *s = &L->set;
    long W = L->c.world, N = s->total;
    if (!L->c.train) {
        N = L->N;
        long lo = slice_lo(N, rank, W), hi = slice_lo(N, rank + 1, W);
        if (out)
            for (long g = lo; g < hi; g++) out[g - lo] = g;
        return hi - lo;
    }
    if (L->deal) {
        long n = N / W + (rank < N % W);
        if (!out) return n;
        int64_t *perm = malloc(sizeof(int64_t) * (size_t)N);
        if (!perm) return -1;
        for (long g = 0; g < N; g++) perm[g] = g;
        rng_t r = rng_make(rng_key(L->c.seed, TAG_DEAL, (uint64_t)epoch, 0, 0));
        rng_shuffle_i64(&r, perm, N);
        for (long k = rank, i = 0; k < N; k += W) out[i++] = perm[k];
        free(perm);
        return n;
    }
    int64_t *order = malloc(sizeof(int64_t) * (size_t)s->count);
    if (!order) return -1;
    for (int k = 0; k < s->count; k++) order[k] = k;
    rng_t r = rng_make(rng_key(L->c.seed, TAG_SHARD_ORDER, (uint64_t)epoch, 0, 0));
    rng_shuffle_i64(&r, order, s->count);
    long n = 0;
    for (long k = rank; k < s->count; k += W) {
        const shard_info *si = &s->sh[order[k]];
        if (out)
            for (long i = 0; i < si->n; i++) out[n + i] = si->first + i;
        n += si->n;
    }
    free(order);
    if (out) {
        rng_t rs = rng_make(rng_key(L->c.seed, TAG_RANK_SHUFFLE, (uint64_t)epoch, (uint64_t)rank, 0));
        rng_shuffle_i64(&rs, out, n);
    }
    return n;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Fewest samples any rank can get in any epoch when assigned by shard. */
static long by_shard_bound(const loader *L) {
    const shard_set *s = &L->set;
    long W = L->c.world;
    long *n = malloc(sizeof(long) * (size_t)s->count);
    if (!n) return -1;
    for (int k = 0; k < s->count; k++) n[k] = s->sh[k].n;
    qsort(n, (size_t)s->count, sizeof(long), cmp_long);
    long m = 0;
    for (long k = 0; k < s->count / W; k++) m += n[k];
    free(n);
    return m;
}

/* A training sample's crop box and flip: pretraining's area scale 0.2, or the recipe's. */
static void sample_crop(const loader *L, aug_params *p, int H, int W, uint64_t key) {
    if (L->has_rec) augment_sample_scale(p, H, W, L->rec.scale_min, key);
    else augment_sample(p, H, W, key);
}

/* Reads and augments the batch at (epoch, step) into b. Loader thread only. */
static const char *fill(loader *L, loader_batch *b, int epoch, long step) {
    const int B = L->c.batch, S = L->S, H = L->set.H, W = L->set.W;
    const long img_f = 3L * S * S, img_b = 3L * H * W;
    /* an eval plan is the same every epoch: built once (a monitor reads epoch after epoch) */
    if (L->plan_epoch != epoch && (L->c.train || L->plan_epoch < 0)) {
        long n = plan_build(L, epoch, L->c.rank, NULL);
        int64_t *p = n >= 0 ? realloc(L->plan, sizeof(int64_t) * (size_t)(n > 0 ? n : 1)) : NULL;
        if (!p) return err_say(&L->err, ERR_RUNTIME, "loader: out of memory for the epoch's sample list");
        L->plan = p;
        if (plan_build(L, epoch, L->c.rank, p) != n) return err_say(&L->err, ERR_RUNTIME, "loader: out of memory");
        L->plan_n = n; L->plan_epoch = epoch;
    }
    long base = step * B;
    int n = 0;
    for (int i = 0; i < B; i++) {
        long p = base + i;
        b->ids[i] = p < L->plan_n ? L->plan[p] : -1;
        if (b->ids[i] >= 0) n = i + 1;
    }
    b->n = n; b->epoch = epoch; b->step = step;
    double t0 = clock_now();
    int e = 0;
    size_t used = 0;
    shards_hdf5_lock();
    for (int i = 0; i < n && !e;) {   /* one H5Dread per run of consecutive images of a shard */
        long local;
        int k = shards_locate(&L->set, b->ids[i], &local), j = i + 1;
        while (j < n && b->ids[j] == b->ids[j - 1] + 1 && local + (j - i) < L->set.sh[k].n) j++;
        e = L->set.jpeg ? shard_reader_read_jpeg(L->reader, k, local, j - i, &L->stage, &L->stage_cap, &used, L->refs + i,
                                                 b->labels + i, &L->err)
                        : shard_reader_read(L->reader, k, local, j - i, L->stage + i * img_b, b->labels + i, &L->err);
        i = j;
    }
    shards_hdf5_unlock();
    double t1 = clock_now();
    if (e) return L->err.msg;
    int bad = -1;   /* the first image that failed */
    #pragma omp parallel for num_threads(L->threads) schedule(dynamic, 1) if (L->threads > 1)
    for (int i = 0; i < n; i++) {
        int t = omp_get_thread_num(), rc;
        float *out = b->images + i * img_f;
        uint64_t key = rng_key(L->c.seed, AUG_RNG_TAG, (uint64_t)epoch, (uint64_t)b->ids[i], 0);
        aug_params p = {0};
        if (L->set.jpeg) {
            const shard_jpeg *r = &L->refs[i];
            const uint8_t *bytes = L->stage + r->at;
            if (L->c.train) sample_crop(L, &p, r->h, r->w, key);
            rc = L->c.train ? jpeg_dec_train(L->scratch[t], out, bytes, r->len, r->w, r->h, S, &p, !L->has_rec, L->why[t],
                                             sizeof L->why[t])
                            : jpeg_dec_eval(L->scratch[t], out, bytes, r->len, r->w, r->h, S,
                                            L->c.eval_resize ? L->c.eval_resize : augment_eval_resize(S, r->h, r->w, AUG_EVAL_CROP_PCT),
                                            L->why[t], sizeof L->why[t]);
        } else {
            const uint8_t *img = L->stage + i * img_b;
            if (L->c.train) sample_crop(L, &p, H, W, key);
            rc = !L->c.train ? augment_eval_ws(out, img, H, W, S, L->R, L->c.interp, L->scratch[t])
               : L->has_rec  ? resize_window_ws(out, S, S, img, H, W, p.y0, p.x0, p.h, p.w, S, S, 0, 0, L->c.interp, L->scratch[t])
                             : augment_apply_ws(out, img, H, W, S, &p, L->c.interp, L->scratch[t]);
            if (rc) snprintf(L->why[t], sizeof L->why[t], "augmentation failed");
        }
        if (!rc && L->c.train && L->has_rec)
            augment_finetune_finish(out, S, p.flip, &L->rec, L->c.seed, epoch, b->ids[i], L->finish[t]);
        if (rc) {
            #pragma omp critical(loader_bad)
            if (bad < 0 || i < bad) { bad = i; memcpy(L->why[L->threads], L->why[t], sizeof L->why[0]); }
        }
    }
    if (bad >= 0) {
        long local;
        int k = shards_locate(&L->set, b->ids[bad], &local);
        return err_say(&L->err, ERR_INPUT, "shard %s: image %ld: %s", L->set.sh[k].path, local, L->why[L->threads]);
    }
    if (n < B) {
        memset(b->images + n * img_f, 0, sizeof(float) * (size_t)((B - n) * img_f));
        for (int i = n; i < B; i++) b->labels[i] = -1;
    }
    double t2 = clock_now();
    pthread_mutex_lock(&L->mu);
    L->read_s += t1 - t0; L->aug_s += t2 - t1; L->batches++;
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

static void *thread_main(void *arg) {
    loader *L = arg;
    for (;;) {
        pthread_mutex_lock(&L->mu);
        while (!L->stop && L->slots[L->tail].state != SLOT_EMPTY) pthread_cond_wait(&L->cv, &L->mu);
        if (L->stop) { pthread_mutex_unlock(&L->mu); break; }
        int s = L->tail, ep = L->prod_epoch;
        long st = L->prod_step;
        L->slots[s].state = SLOT_FILLING;
        pthread_mutex_unlock(&L->mu);
        const char *e = fill(L, &L->slots[s].b, ep, st);
        pthread_mutex_lock(&L->mu);
        L->slots[s].failed = e != NULL;
        L->slots[s].state = SLOT_READY;
        L->tail = (L->tail + 1) % L->nslots;
        if (++L->prod_step == L->steps) { L->prod_step = 0; L->prod_epoch++; }
        pthread_cond_broadcast(&L->cv);
        pthread_mutex_unlock(&L->mu);
        if (e) break;
    }
    pthread_mutex_lock(&L->mu);
    L->dead = 1;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

static const char *start(loader *L, int epoch, long step) {
    if (epoch < 0 || step < 0 || step >= L->steps)
        return err_say(&L->err, ERR_INPUT, "loader: position epoch %d step %ld is outside 0..%ld steps per epoch",
                    epoch, step, L->steps - 1);
    for (int i = 0; i < L->nslots; i++) L->slots[i].state = SLOT_EMPTY;
    L->head = L->tail = 0; L->held = -1; L->stop = 0; L->dead = 0; err_clear(&L->sticky);
    L->prod_epoch = L->next_epoch = epoch;
    L->prod_step = L->next_step = step;
    if (pthread_create(&L->th, NULL, thread_main, L) != 0)
        return err_say(&L->err, ERR_RUNTIME, "loader: cannot start the loader thread");
    L->th_running = 1;
    return NULL;
}

static void stop(loader *L) {
    if (!L->th_running) return;
    pthread_mutex_lock(&L->mu);
    L->stop = 1;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->th, NULL);
    L->th_running = 0;
}

void loader_close(loader *L) {
    if (!L) return;
    stop(L);
    if (L->reader) { shards_hdf5_lock(); shard_reader_free(L->reader); shards_hdf5_unlock(); }
    for (int t = 0; L->scratch && t < L->threads; t++) {
        if (L->set.jpeg) jpeg_dec_free(L->scratch[t]);
        else free(L->scratch[t]);
    }
    for (int t = 0; L->finish && t < L->threads; t++) free(L->finish[t]);
    free(L->scratch); free(L->finish); free(L->why); free(L->refs);
    shards_free(&L->set);
    if (L->slots)
        for (int i = 0; i < L->nslots; i++) {
            free(L->slots[i].b.images); free(L->slots[i].b.labels); free(L->slots[i].b.ids);
        }
    free(L->slots); free(L->plan); free(L->stage);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv);
    free(L);
}

/* Keep every shard open when the descriptor limit allows (dealt ranks touch all of them);
 * leave half the limit to MPI, sockets and checkpoints. */
static int default_max_open(int shards) {
    struct rlimit rl;
    long lim = 512;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur / 2 < lim)
        lim = (long)rl.rlim_cur / 2;
    if (lim < 8) lim = 8;
    return shards < lim ? shards : (int)lim;
}

int loader_open(loader **out, const loader_config *cfg, err_t *err) {
    *out = NULL;
    const loader_config *c = cfg;
    if (!c->data_dir || !*c->data_dir) return err_set(err, ERR_INPUT, "loader: no data path given");
    if (!c->split || !*c->split) return err_set(err, ERR_INPUT, "loader: no split given");
    if (c->image_size < 1 || c->image_size > 16384) return err_set(err, ERR_INPUT, "loader: image size %d out of range", c->image_size);
    if (c->batch < 1) return err_set(err, ERR_INPUT, "loader: batch %d must be positive", c->batch);
    if (c->world < 1 || c->rank < 0 || c->rank >= c->world)
        return err_set(err, ERR_INPUT, "loader: rank %d not in world of %d", c->rank, c->world);
    if (c->assign < LOADER_ASSIGN_AUTO || c->assign > LOADER_ASSIGN_DEAL) return err_set(err, ERR_INPUT, "loader: unknown assignment rule %d", c->assign);
    if (c->interp != INTERP_PIL && c->interp != INTERP_TORCH) return err_set(err, ERR_INPUT, "loader: unknown interpolation %d", c->interp);
    if (c->threads < 0 || c->threads > 256 || c->prefetch < 0 || c->prefetch > 64 || c->max_open < 0)
        return err_set(err, ERR_INPUT, "loader: threads %d / prefetch %d / max_open %d out of range", c->threads, c->prefetch, c->max_open);
    if (c->limit < 0 || (c->train && c->limit))
        return err_set(err, ERR_INPUT, "loader: limit %ld (eval mode only, >= 0)", c->limit);
    if (c->eval_resize && (c->eval_resize < c->image_size || c->eval_resize > 65536))
        return err_set(err, ERR_INPUT, "loader: eval resize %d is smaller than the image size %d", c->eval_resize, c->image_size);
    if (c->recipe) {
        char why[200];
        if (augment_recipe_check(c->recipe, why, sizeof why)) return err_set(err, ERR_INPUT, "loader: %s", why);
        if (c->recipe->interp != c->interp) return err_set(err, ERR_INPUT, "loader: the recipe's interpolation is not the loader's");
    }

    loader *L = calloc(1, sizeof *L);
    if (!L) return err_set(err, ERR_RUNTIME, "loader: out of memory");
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, NULL);
    L->c = *c;
    L->c.data_dir = NULL; L->c.split = NULL;   /* not kept: the caller's strings may go away */
    L->S = c->image_size;
    L->threads = c->threads ? c->threads : 1;
    L->nslots = c->prefetch >= 2 ? c->prefetch : 2;
    L->plan_epoch = -1;
    L->has_rec = c->recipe && c->train;
    if (L->has_rec) L->rec = *c->recipe;
    L->c.recipe = NULL;
    if (shards_scan(&L->set, c->data_dir, c->split, err)) { loader_close(L); return -1; }
    if (c->no_upsample && L->set.H && (L->set.H < L->S || L->set.W < L->S)) {
        err_set(err, ERR_INPUT, "%s (%s split): shards hold %dx%d images, smaller than the model's %dx%d input (checkpoint of "
                "another config?)", c->data_dir, c->split, L->set.H, L->set.W, L->S, L->S);
        loader_close(L);
        return -1;
    }
    /* shards already centre-cropped to S (data_prep's val split) pass through unchanged; the
     * rest as jpeg shards: ⌊S/0.875⌋ (the authors' int(S / crop_pct)) */
    L->R = c->eval_resize ? c->eval_resize : augment_eval_resize(L->S, L->set.H, L->set.W, AUG_EVAL_CROP_PCT);
    long N = L->set.total, m;
    if (!c->train && c->limit > 0 && c->limit < N) N = c->limit;
    L->N = N;
    if (!c->train) m = (N + c->world - 1) / c->world;   /* eval: most any rank gets */
    else {
        long ms = by_shard_bound(L);
        if (ms < 0) { loader_close(L); return err_set(err, ERR_RUNTIME, "loader: out of memory"); }
        long keep = (long)c->world * (ms / c->batch) * c->batch;
        L->deal = c->assign == LOADER_ASSIGN_DEAL || (c->assign == LOADER_ASSIGN_AUTO && keep < 0.9 * N);
        m = L->deal ? N / c->world : ms;
    }
    L->steps = c->train ? m / c->batch : (m + c->batch - 1) / c->batch;
    if (L->steps < 1) {
        err_set(err, ERR_INPUT, "data path %s: %ld images in %d shards over %d ranks leave a rank as few as %ld images per epoch%s, "
             "fewer than one batch of %d", L->set.dir, N, L->set.count, c->world, m,
             c->train && !L->deal ? " (assigned by shard)" : "", c->batch);
        loader_close(L);
        return -1;
    }
    long S = L->S, B = c->batch;
    L->slots = calloc((size_t)L->nslots, sizeof *L->slots);
    L->reader = shard_reader_new(&L->set, c->max_open ? c->max_open : default_max_open(L->set.count));
    L->scratch = calloc((size_t)L->threads, sizeof *L->scratch);
    L->why = malloc(sizeof *L->why * (size_t)(L->threads + 1));
    int ok = L->slots && L->reader && L->scratch && L->why;
    if (L->set.jpeg) {   /* the stage grows with the batches' bytes */
        ok = ok && (L->refs = malloc(sizeof *L->refs * (size_t)B));
        for (int t = 0; ok && t < L->threads; t++) {
            jpeg_dec *d = jpeg_dec_new(L->set.max_w, L->set.max_h, L->S, c->interp);
            if (d) jpeg_dec_full_scale(d, c->jpeg_full_scale);
            ok = (L->scratch[t] = d) != NULL;
        }
    } else {
        ok = ok && (L->stage = malloc((size_t)B * L->set.H * L->set.W * 3));
        for (int t = 0; ok && t < L->threads; t++)
            ok = (L->scratch[t] = malloc(augment_scratch_bytes(L->set.H, L->set.W, L->S, c->interp))) != NULL;
    }
    if (L->has_rec) {
        ok = ok && (L->finish = calloc((size_t)L->threads, sizeof *L->finish));
        for (int t = 0; ok && t < L->threads; t++) ok = (L->finish[t] = malloc(augment_finish_work_bytes(L->S))) != NULL;
    }
    for (int i = 0; ok && i < L->nslots; i++) {
        loader_batch *b = &L->slots[i].b;
        b->images = malloc(sizeof(float) * (size_t)(B * 3 * S * S));
        b->labels = malloc(sizeof(int32_t) * (size_t)B);
        b->ids = malloc(sizeof(int64_t) * (size_t)B);
        ok = b->images && b->labels && b->ids;
    }
    if (!ok) { loader_close(L); return err_set(err, ERR_RUNTIME, "loader: out of memory for %d buffers of %ld images", L->nslots ? L->nslots : 2, B); }
    if (start(L, c->start_epoch, c->start_step)) { *err = L->err; loader_close(L); return -1; }
    *out = L;
    return 0;
}

int loader_next(loader *L, const loader_batch **batch, double *waited, err_t *err) {
    *batch = NULL;
    if (waited) *waited = 0;
    pthread_mutex_lock(&L->mu);
    if (L->sticky.kind) { *err = L->sticky; pthread_mutex_unlock(&L->mu); return -1; }
    if (L->held >= 0) {
        L->slots[L->held].state = SLOT_EMPTY;
        L->held = -1;
        pthread_cond_broadcast(&L->cv);
    }
    double t0 = clock_now();
    while (L->slots[L->head].state != SLOT_READY && !L->dead) pthread_cond_wait(&L->cv, &L->mu);
    double t1 = clock_now();
    int s = L->head;
    if (L->slots[s].state != SLOT_READY || L->slots[s].failed) {
        /* the thread stopped after a failure; L->err is final once it has */
        if (L->err.kind) L->sticky = L->err;
        else err_set(&L->sticky, ERR_RUNTIME, "loader: the loader thread stopped");
        *err = L->sticky;
        pthread_mutex_unlock(&L->mu);
        return -1;
    }
    L->head = (s + 1) % L->nslots;
    L->held = s;
    *batch = &L->slots[s].b;
    L->next_epoch = L->slots[s].b.epoch;
    L->next_step = L->slots[s].b.step + 1;
    if (L->next_step == L->steps) { L->next_step = 0; L->next_epoch++; }
    pthread_mutex_unlock(&L->mu);
    if (waited) *waited = t1 - t0;
    return 0;
}

void loader_tell(const loader *L, int *epoch, long *step) { *epoch = L->next_epoch; *step = L->next_step; }

int loader_seek(loader *L, int epoch, long step, err_t *err) {
    stop(L);
    err_clear(&L->err);
    if (start(L, epoch, step)) { *err = L->err; return -1; }
    return 0;
}

int loader_assign_from_name(const char *name) {
    static const char *const names[] = {"auto", "shards", "deal"};
    for (int k = 0; k < 3; k++)
        if (name && !strcmp(name, names[k])) return k;
    return -1;
}

long loader_steps_per_epoch(const loader *L) { return L->steps; }
int loader_assignment(const loader *L) { return L->deal ? LOADER_ASSIGN_DEAL : LOADER_ASSIGN_SHARDS; }
long loader_total_samples(const loader *L) { return L->N; }
int loader_image_height(const loader *L) { return L->set.H; }
int loader_image_width(const loader *L) { return L->set.W; }
int loader_num_classes(const loader *L) { return L->set.num_classes; }

void loader_epoch_info(const loader *L, int epoch, long *rank_samples, long *dropped) {
    long n = plan_build(L, epoch, L->c.rank, NULL);
    long used = L->c.train ? L->steps * L->c.batch : n;
    *rank_samples = n;
    *dropped = n - used;
}

void loader_stats(loader *L, double *read_s, double *augment_s, long *batches) {
    pthread_mutex_lock(&L->mu);
    *read_s = L->read_s; *augment_s = L->aug_s; *batches = L->batches;
    pthread_mutex_unlock(&L->mu);
}
