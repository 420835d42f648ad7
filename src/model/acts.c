/* Activation memory: one allocation per (config, batch, mode), carved into named buffers, and
 * the GEMM plans of every pass the arena serves, made here once for the process's compute
 * choice (semaim/compute.h) with their scratch carved from the same allocation.
 * The training passes save what backward needs per block; the backward scratch is shared by
 * all blocks; a forward-only encoder pass reuses one block's buffers for every block. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/ops.h"
#include "model/arena.h"
#include "model/carve.h"
#include "semaim/orders.h"

static void *take_bytes(carve_t *c, size_t n, size_t es) { return carve_take(c, n, es); }
static float *take(carve_t *c, size_t n) { return carve_take(c, n, sizeof(float)); }

static void carve_enc(enc_saved_t *s, carve_t *c, size_t BT, size_t D, size_t att, size_t es) {
    size_t F = 4 * D;
    s->ln1 = take_bytes(c, BT * D, es); s->ln1_mean = take(c, BT); s->ln1_rstd = take(c, BT);
    s->qkv = take_bytes(c, BT * 3 * D, es); s->att = take_bytes(c, att, es); s->atty = take_bytes(c, BT * D, es);
    s->mid = take(c, BT * D); s->ln2 = take_bytes(c, BT * D, es); s->ln2_mean = take(c, BT); s->ln2_rstd = take(c, BT);
    s->fc1 = take(c, BT * F); s->gelu = take_bytes(c, BT * F, es);
}

/* The widest rows × outputs of a planned backward: the bf16 staging of linear backward. */
static size_t stage_elems(const plans_t *p) {
    const lin_plan_t *l[] = {&p->patch, &p->qkv, &p->proj, &p->fc1, &p->fc2, &p->q, &p->v, &p->head2, &p->cls};
    size_t m = 0;
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (l[i]->dw && (size_t)l[i]->N * l[i]->OC > m) m = (size_t)l[i]->N * l[i]->OC;
    return m;
}

/* Slot-0 and per-thread scratch of the GEMMs and attention kernels. */
static void ws_sizes(const plans_t *p, size_t *slot0, size_t *slotn) {
    const lin_plan_t *l[] = {&p->patch, &p->qkv, &p->proj, &p->fc1, &p->fc2, &p->q, &p->v, &p->head2, &p->cls};
    const att_plan_t *t[] = {&p->full, &p->enc, &p->dec};
    size_t s0 = 0, sn = 0;
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (l[i]->fwd && linear_plan_scratch(l[i]) > s0) s0 = linear_plan_scratch(l[i]);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i]->thread_bytes > sn) sn = t[i]->thread_bytes;
    *slot0 = s0 > sn ? s0 : sn;
    *slotn = sn;
}

static void carve_all(void *ctx, carve_t *c) {
    acts_t *a = ctx;
    const semaim_config_t *cfg = &a->cfg;
    dims_t d = cfg_dims(cfg);
    size_t B = a->B, D = d.D, F = 4 * D, BT = B * d.T, L = d.L, PD = d.PD, es = a->bf16 ? 2 : 4;
    size_t att = B * d.NH * d.T * d.T, DE = cfg->depth, DQ = cfg->dec_depth;
    size_t slot0, slotn;
    ws_sizes(&a->pl, &slot0, &slotn);
    const int nt = a->ws.nslots;
    void *wsmem = take_bytes(c, workspace_bytes(slot0, slotn, nt), 1);
    if (c->base) workspace_init(&a->ws, wsmem, slot0, slotn, nt);
    a->patches = take_bytes(c, B * L * PD, es);
    a->emb = take(c, B * L * D);
    /* the global pool and its LayerNorm statistics: the classifier's head input and the gap
     * readout of the encoder passes (and of a teacher's tokens) */
    a->pool = take(c, B * (a->out > (int)D ? (size_t)a->out : D));   /* a teacher's tokens may be wider */
    a->fcn_mean = take(c, B); a->fcn_rstd = take(c, B);
    if (a->mode == ACTS_ENCODER) {
        a->h = take(c, 2 * BT * D);
        carve_enc(&a->enc[0], c, BT, D, att, es);
        a->stage = a->bf16 ? take(c, BT * 3 * D) : NULL;
    } else {
        a->h = take(c, (DE + 1) * BT * D);
        for (size_t i = 0; i < DE; i++) carve_enc(&a->enc[i], c, BT, D, att, es);
        a->dres_h = take(c, BT * D);
        a->dD1 = take(c, BT * D); a->dD2 = take(c, BT * D);
        a->d3D = take(c, BT * 3 * D); a->dF1 = take(c, BT * F);
        a->stage = a->bf16 ? a->d3D : NULL;
        bf16_t *sh = a->bf16 ? take_bytes(c, stage_elems(&a->pl), sizeof(bf16_t)) : NULL;
        if (c->base) a->ws.stage_h = sh;
    }
    if (a->mode != ACTS_FINETUNE) {
        a->tok = take(c, BT * D);   /* f32-sized: the training pass's bf16 norm shares it */
        a->norm = a->tok;
        a->norm_mean = take(c, BT); a->norm_rstd = take(c, BT);
        a->sim = take(c, B * L);
        a->order_scratch = take(c, ((size_t)order_scratch_bytes(a->B, d.L) + 3) / 4);
    }
    if (a->mode == ACTS_PRETRAIN) {
        a->target = take(c, B * L * (size_t)a->out);
        a->target_scratch = take(c, pixel_target_scratch_floats(a->B, cfg->image, cfg->image, cfg->patch));
        a->perm = (int *)take(c, B * L);
        a->g = take(c, (DQ + 1) * BT * D);
        for (size_t i = 0; i < DQ; i++) {
            dec_saved_t *s = &a->dec[i];
            s->lng = take_bytes(c, BT * D, es); s->lng_mean = take(c, BT); s->lng_rstd = take(c, BT);
            s->lnh = take_bytes(c, BT * D, es); s->lnh_mean = take(c, BT); s->lnh_rstd = take(c, BT);
            s->q = take_bytes(c, BT * D, es); s->k = take_bytes(c, BT * D, es); s->v = take_bytes(c, BT * D, es);
            s->att = take_bytes(c, att, es); s->atty = take_bytes(c, BT * D, es);
            s->mid = take(c, BT * D); s->ln2 = take_bytes(c, BT * D, es); s->ln2_mean = take(c, BT); s->ln2_rstd = take(c, BT);
            s->fc1 = take(c, BT * F); s->gelu = take_bytes(c, BT * F, es);
        }
        a->head_fc1 = take(c, BT * F); a->head_gelu = take_bytes(c, BT * F, es); a->pred = take(c, BT * (size_t)a->out);
        a->dres_g = take(c, BT * D);
        a->dpred = take(c, BT * (size_t)a->out);
    }
    if (a->mode == ACTS_FINETUNE) {
        size_t C = (size_t)a->C;
        a->fcn = take_bytes(c, B * D, es); a->dfcn = take(c, B * D); a->dpool = take(c, B * D);
        a->logits = take(c, B * C); a->dlogits = take(c, B * C);
        a->targets = take(c, B * C); a->probs = take(c, B * C);
    }
}

/* The plans of every pass of the mode (see arena.h). */
static int make_plans(acts_t *a, err_t *e) {
    const semaim_config_t *cfg = &a->cfg;
    const gemm_config_t *g = &a->gemm;
    const dims_t d = cfg_dims(cfg);
    const long N = (long)a->B * d.T, D = d.D;
    const int train = a->mode != ACTS_ENCODER;
    const unsigned bw = train ? LIN_BACKWARD | LIN_DINP_SET : 0;
    plans_t *p = &a->pl;
    if (linear_plan(&p->patch, g, (long)a->B * d.L, d.PD, (int)D, LIN_ACCUMULATE | (train ? LIN_BACKWARD : 0), e) ||
        linear_plan(&p->qkv, g, N, (int)D, (int)(3 * D), bw, e) ||
        linear_plan(&p->proj, g, N, (int)D, (int)D, LIN_ACCUMULATE | bw, e) ||
        linear_plan(&p->fc1, g, N, (int)D, (int)(4 * D), bw, e) ||
        linear_plan(&p->fc2, g, N, (int)(4 * D), (int)D, LIN_ACCUMULATE | bw, e))
        return -1;
    if (a->mode != ACTS_FINETUNE && attention_plan(&p->full, g, d.T, d.NH, d.hd, 3 * d.D, 3 * d.D, ATTN_FULL, 0, e)) return -1;
    if (a->mode == ACTS_PRETRAIN &&
        (attention_plan(&p->enc, g, d.T, d.NH, d.hd, 3 * d.D, 3 * d.D, ATTN_CAUSAL, 1, e) ||
         attention_plan(&p->dec, g, d.T, d.NH, d.hd, d.D, d.D, ATTN_CAUSAL_STRICT, 1, e) ||
         linear_plan(&p->q, g, N, (int)D, (int)D, bw, e) ||
         linear_plan(&p->v, g, N, (int)D, (int)D, LIN_BACKWARD | LIN_DINP, e) ||
         linear_plan(&p->head2, g, N, (int)(4 * D), a->out, LIN_ACCUMULATE | bw, e)))
        return -1;
    if (a->mode == ACTS_FINETUNE &&
        (attention_plan(&p->enc, g, d.T, d.NH, d.hd, 3 * d.D, 3 * d.D, ATTN_FULL, 1, e) ||
         linear_plan(&p->cls, g, a->B, (int)D, a->C, LIN_ACCUMULATE | bw, e)))
        return -1;
    return 0;
}

static void free_plans(plans_t *p) {
    lin_plan_t *l[] = {&p->patch, &p->qkv, &p->proj, &p->fc1, &p->fc2, &p->q, &p->v, &p->head2, &p->cls};
    att_plan_t *t[] = {&p->full, &p->enc, &p->dec};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++) linear_plan_free(l[i]);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) attention_plan_free(t[i]);
}

acts_t *acts_create(const semaim_config_t *cfg, int B, int mode, int classes, err_t *err) {
    if (B <= 0 || (mode == ACTS_FINETUNE && classes < 1)) {
        err_set(err, ERR_INPUT, "activations: need at least one image%s", mode == ACTS_FINETUNE ? " and one class" : "");
        return NULL;
    }
    acts_t *a = calloc(1, sizeof *a);
    if (!a) { err_set(err, ERR_RUNTIME, "out of memory for activations"); return NULL; }
    a->mode = mode;
    a->cfg = *cfg;
    a->B = B;
    a->C = mode == ACTS_FINETUNE ? classes : 0;
    a->out = mode == ACTS_PRETRAIN ? (classes > 0 ? classes : cfg_patch_dim(cfg)) : 0;
    a->gemm = *gemm_global_config();
    a->bf16 = a->gemm.precision == GEMM_PREC_BF16;
    a->ws.nslots = omp_get_max_threads();
    a->enc = calloc(mode == ACTS_ENCODER ? 1 : (size_t)cfg->depth, sizeof *a->enc);
    a->dec = calloc((size_t)cfg->dec_depth, sizeof *a->dec);
    if (!a->enc || !a->dec) { err_set(err, ERR_RUNTIME, "out of memory for activations"); acts_free(a); return NULL; }
    if (make_plans(a, err)) { acts_free(a); return NULL; }
    a->block = carve_alloc(carve_all, a, &a->bytes);
    if (!a->block) {
        err_set(err, ERR_RUNTIME, "out of memory for activations (%.2f GiB for batch %d)", a->bytes / 1073741824.0, B);
        acts_free(a);
        return NULL;
    }
    return a;
}

void acts_free(acts_t *a) {
    if (!a) return;
    free_plans(&a->pl);
    free(a->block); free(a->enc); free(a->dec); free(a);
}

size_t acts_bytes(const acts_t *a) { return a->bytes; }
int acts_capacity(const acts_t *a) { return a->B; }
long acts_encoder_passes(const acts_t *a) { return a->encoder_passes; }

void acts_check(const acts_t *a, int B, int mode) {
    ERR_ASSERT(B >= 1 && B <= a->B, "batch %d outside the activations' capacity 1..%d", B, a->B);
    static const char *const names[] = {"pretraining", "encoder", "fine-tuning"};
    ERR_ASSERT(a->mode == mode || (mode == ACTS_ENCODER && a->mode == ACTS_PRETRAIN),
               "activations made for %s passes used for a %s pass", names[a->mode], names[mode]);
}
