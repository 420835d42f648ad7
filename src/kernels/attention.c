/* Multi-head softmax attention with the three position masks of ops.h.
 * Query rows go in blocks of ATT_BLK; a block only multiplies against keys 0..last key of its
 * final row, so the causal modes do about half the GEMM work of the full mode. The GEMMs run
 * on strided views (lda = row stride), so a fused qkv buffer needs no repacking. They run the
 * plans of an att_plan_t from inside our parallel regions, each on its calling thread with its
 * thread's slot of the workspace.
 * Softmax is fused into the forward block loop: the scores of a block are turned into
 * probabilities where they lie (fp32: in att itself; bf16: in the thread's f32 scratch, then
 * rounded into att), and the P·V product follows while the block is in cache. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "kernels/ops.h"
#include "kernels/vmath.h"

/* Rows per query block: at most ATT_BLK, blocks of equal size (T = 197 → 5 blocks of ≤ 40).
 * Measured on T = 197, hd = 64: 40–48 rows is the sweet spot between the causal saving (the
 * masked triangle a block still multiplies grows with its height) and GEMM/packing overhead
 * (K and V are repacked for every block); the full mode is within a few % of one block. */
#ifndef ATT_BLK
#define ATT_BLK 48
#endif
static inline int att_rows(int T) {
    int nblk = (T + ATT_BLK - 1) / ATT_BLK;
    return (T + nblk - 1) / nblk;
}

/* Query block blk: first row, rows, and keys its GEMMs multiply against. */
static inline void att_block(const att_plan_t *p, int blk, int *i0, int *m, int *nk) {
    *i0 = blk * p->rows;
    *m = p->T - *i0 < p->rows ? p->T - *i0 : p->rows;
    *nk = attn_last_key(p->mode, *i0 + *m - 1, p->T) + 1;
}

static size_t align64(size_t x) { return (x + 63) / 64 * 64; }

/* The six GEMMs of one query block (forward: 0 scores, 1 P·V; backward: 2 dV, 3 dP, 4 dQ, 5 dK).
 * fp32: the scores go straight into att, O into out, and dO is read from dout (row stride D).
 * bf16: O goes to the thread's scratch (row stride hd) and is rounded from there, and dO is
 * read from its bf16 copy there (row stride hd). */
static gemm_shape_t att_shape(const att_plan_t *p, int g, int m, int nk) {
    const int T = p->T, hd = p->hd, sq = p->sq, skv = p->skv;
    const long ldo = p->bf16 ? hd : (long)p->NH * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    switch (g) {
    case 0: return (gemm_shape_t){0, 1, m, nk, hd, sq, skv, T, scale, 0.0f};     // A = scale·Q·Kᵀ
    case 1: return (gemm_shape_t){0, 0, m, hd, nk, T, skv, ldo, 1.0f, 0.0f};     // O = P·V
    case 2: return (gemm_shape_t){1, 0, nk, hd, m, T, ldo, skv, 1.0f, 1.0f};     // dV += Pᵀ·dO
    case 3: return (gemm_shape_t){0, 1, m, nk, hd, ldo, skv, nk, 1.0f, 0.0f};    // dP = dO·Vᵀ
    case 4: return (gemm_shape_t){0, 0, m, hd, nk, nk, skv, sq, scale, 1.0f};    // dQ += scale·dS·K
    default: return (gemm_shape_t){1, 0, nk, hd, m, nk, sq, skv, scale, 1.0f};   // dK += scale·dSᵀ·Q
    }
}

/* The kernel's own per-thread scratch (bytes), forward and backward. */
static size_t fwd_bytes(const att_plan_t *p) {
    return p->bf16 ? align64((size_t)p->rows * p->T * 4) + align64((size_t)p->rows * p->hd * 4) : 0;
}
static size_t bwd_bytes(const att_plan_t *p) {
    if (!p->bf16) return align64((size_t)p->rows * p->T * 4);   // dS
    return align64((size_t)p->T * p->hd * 2) + align64((size_t)p->rows * p->T * 4) + align64((size_t)p->rows * p->T * 2) +
           align64((size_t)p->T * 4);   // dO, dP, dS in bf16, one row of P in f32
}

int attention_plan(att_plan_t *p, const gemm_config_t *cfg, int T, int NH, int hd, int sq, int skv, int mode,
                   int backward, err_t *e) {
    memset(p, 0, sizeof *p);
    *p = (att_plan_t){.T = T, .NH = NH, .hd = hd, .sq = sq, .skv = skv, .mode = mode, .backward = backward,
                      .bf16 = cfg->precision == GEMM_PREC_BF16};
    if (T <= 0 || NH <= 0 || hd <= 0) return 0;
    p->rows = att_rows(T);
    p->nblk = (T + p->rows - 1) / p->rows;
    p->g = calloc((size_t)p->nblk * 6, sizeof *p->g);
    if (!p->g) return err_set(e, ERR_RUNTIME, "attention: out of memory for its plans");
    const unsigned fl = GEMM_PLAN_INNER | (p->bf16 ? GEMM_PLAN_BF16_IN : 0);
    size_t gs = 0;
    for (int blk = 0; blk < p->nblk; blk++) {
        int i0, m, nk;
        att_block(p, blk, &i0, &m, &nk);
        for (int g = 0; g <= (backward ? 5 : 1); g++) {
            const gemm_shape_t s = att_shape(p, g, m, nk);
            if (gemm_plan_create(&p->g[blk * 6 + g], cfg, &s, fl, e)) {
                attention_plan_free(p);
                return err_prefix(e, "attention T=%d heads=%d hd=%d", T, NH, hd);
            }
            if (gemm_plan_scratch_bytes(p->g[blk * 6 + g]) > gs) gs = gemm_plan_scratch_bytes(p->g[blk * 6 + g]);
        }
    }
    const size_t fb = fwd_bytes(p), bb = backward ? bwd_bytes(p) : 0;
    p->kernel_bytes = fb > bb ? fb : bb;
    p->thread_bytes = align64(p->kernel_bytes) + align64(gs);
    return 0;
}

void attention_plan_free(att_plan_t *p) {
    if (p->g)
        for (int i = 0; i < p->nblk * 6; i++) gemm_plan_free(p->g[i]);
    free(p->g);
    p->g = NULL;
}

/* Softmax of m score rows of block row i0.. (row stride T) in place; masked entries become 0
 * up to column T (the P·V GEMM reads them up to nk, backward too). */
static void softmax_rows(float *A, int m, int i0, int T, int mode) {
    for (int r = 0; r < m; r++) {
        float *row = A + (long)r * T;
        const int last = attn_last_key(mode, i0 + r, T);
        float mx = row[0];
        #pragma omp simd reduction(max:mx)
        for (int j = 1; j <= last; j++) mx = row[j] > mx ? row[j] : mx;
        float sum = 0.0f;
        #pragma omp simd reduction(+:sum)
        for (int j = 0; j <= last; j++) {
            float e = vexp_nonpos(row[j] - mx);
            row[j] = e;
            sum += e;
        }
        const float inv = 1.0f / sum;
        #pragma omp simd
        for (int j = 0; j <= last; j++) row[j] *= inv;
        for (int j = last + 1; j < T; j++) row[j] = 0.0f;
    }
}

/* Element e of a gemm_in_t array (byte arithmetic: the element size is the run's). */
static inline const char *at(const void *base, int bf16, long e) { return (const char *)base + e * (bf16 ? 2 : 4); }

void attention_forward(gemm_in_t *out, gemm_in_t *att, const gemm_in_t *q, const gemm_in_t *k, const gemm_in_t *v,
                       int B, const att_plan_t *p, const workspace_t *ws) {
    if (B <= 0 || p->T <= 0 || p->NH <= 0 || p->hd <= 0) return;
    const int T = p->T, NH = p->NH, hd = p->hd, D = NH * hd, sq = p->sq, skv = p->skv, nblk = p->nblk, h16 = p->bf16;
    const long ntask = (long)B * NH * nblk;
    ERR_ASSERT(omp_get_max_threads() <= ws->nslots, "attention: a team of %d threads, a workspace for %d",
               omp_get_max_threads(), ws->nslots);
    // Blocks of one head are independent in the forward pass, so they are the unit of work.
    #pragma omp parallel for schedule(dynamic) if (ntask > 1)
    for (long task = 0; task < ntask; task++) {
        const long pair = task / nblk;
        const int b = (int)(pair / NH), h = (int)(pair % NH), blk = (int)(task % nblk);
        int i0, m, nk;
        att_block(p, blk, &i0, &m, &nk);
        char *slot = workspace_slot(ws, omp_get_thread_num());
        void *gscr = slot + align64(p->kernel_bytes);
        const void *Q = at(q, h16, (long)b * T * sq + (long)h * hd + (long)i0 * sq);
        const void *K = at(k, h16, (long)b * T * skv + (long)h * hd);
        const void *V = at(v, h16, (long)b * T * skv + (long)h * hd);
        gemm_plan_t *const *G = p->g + blk * 6;
        const long arow = pair * T * T + (long)i0 * T, orow = (long)b * T * D + (long)h * hd + (long)i0 * D;
        if (!h16) {
            float *A = (float *)att + arow;
            gemm_run(G[0], Q, K, A, gscr);
            softmax_rows(A, m, i0, T, p->mode);
            gemm_run(G[1], A, V, (float *)out + orow, gscr);
        } else {
            float *S = (float *)slot, *O = (float *)(slot + align64((size_t)p->rows * T * 4));
            bf16_t *P = (bf16_t *)att + arow, *o = (bf16_t *)out + orow;
            gemm_run(G[0], Q, K, S, gscr);
            softmax_rows(S, m, i0, T, p->mode);
            for (int r = 0; r < m; r++) bf16_from_f32(P + (long)r * T, S + (long)r * T, T);
            gemm_run(G[1], P, V, O, gscr);
            for (int r = 0; r < m; r++) bf16_from_f32(o + (long)r * D, O + (long)r * hd, hd);
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const gemm_in_t *att,
                        const gemm_in_t *q, const gemm_in_t *k, const gemm_in_t *v, int B, const att_plan_t *p,
                        const workspace_t *ws) {
    if (B <= 0 || p->T <= 0 || p->NH <= 0 || p->hd <= 0 || (!dq && !dk && !dv)) return;
    ERR_ASSERT(p->backward, "attention backward with forward-only plans");
    ERR_ASSERT(omp_get_max_threads() <= ws->nslots, "attention: a team of %d threads, a workspace for %d",
               omp_get_max_threads(), ws->nslots);
    const int T = p->T, NH = p->NH, hd = p->hd, D = NH * hd, sq = p->sq, skv = p->skv, rows = p->rows, h16 = p->bf16;
    const long npair = (long)B * NH;
    // dK and dV of a head collect from every query block, so a whole head is one task.
    #pragma omp parallel for schedule(dynamic) if (npair > 1)
    for (long pair = 0; pair < npair; pair++) {
        const int b = (int)(pair / NH), h = (int)(pair % NH);
        const long qoff = (long)b * T * sq + (long)h * hd, kvoff = (long)b * T * skv + (long)h * hd;
        const long doff = (long)b * T * D + (long)h * hd;
        const void *K = at(k, h16, kvoff), *V = at(v, h16, kvoff);
        char *slot = workspace_slot(ws, omp_get_thread_num());
        void *gscr = slot + align64(p->kernel_bytes);
        float *dP;                       // dP, then dS in place (f32)
        bf16_t *dOh = NULL, *dSh = NULL;
        float *prow = NULL;
        if (h16) {   // this head's dO in bf16, once for all its blocks
            dOh = (bf16_t *)slot;
            dP = (float *)(slot + align64((size_t)T * hd * 2));
            dSh = (bf16_t *)((char *)dP + align64((size_t)rows * T * 4));
            prow = (float *)((char *)dSh + align64((size_t)rows * T * 2));
            for (int t = 0; t < T; t++) bf16_from_f32(dOh + (long)t * hd, dout + doff + (long)t * D, hd);
        } else {
            dP = (float *)slot;
        }
        for (int blk = 0; blk < p->nblk; blk++) {
            int i0, m, nk;
            att_block(p, blk, &i0, &m, &nk);
            gemm_plan_t *const *G = p->g + blk * 6;
            const void *P = at(att, h16, pair * T * T + (long)i0 * T);
            const void *dO = h16 ? (const void *)(dOh + (long)i0 * hd) : (const void *)(dout + doff + (long)i0 * D);
            if (dv) gemm_run(G[2], P, dO, dv + kvoff, gscr);   // dV[0:nk] += Pᵀ·dO
            if (!dq && !dk) continue;
            // dP = dO·Vᵀ, then the softmax Jacobian in place: dS = P ⊙ (dP − rowsum(P ⊙ dP))
            gemm_run(G[3], dO, V, dP, gscr);
            for (int r = 0; r < m; r++) {
                const int last = attn_last_key(p->mode, i0 + r, T);
                const float *pr;
                if (h16) { bf16_to_f32(prow, (const bf16_t *)P + (long)r * T, last + 1); pr = prow; }
                else pr = (const float *)P + (long)r * T;
                float *ds = dP + (long)r * nk;
                float dot = 0.0f;
                #pragma omp simd reduction(+:dot)
                for (int j = 0; j <= last; j++) dot += pr[j] * ds[j];
                #pragma omp simd
                for (int j = 0; j <= last; j++) ds[j] = pr[j] * (ds[j] - dot);
                for (int j = last + 1; j < nk; j++) ds[j] = 0.0f;
                if (h16) bf16_from_f32(dSh + (long)r * nk, ds, nk);
            }
            const void *dS = h16 ? (const void *)dSh : (const void *)dP;
            if (dq) gemm_run(G[4], dS, K, dq + qoff + (long)i0 * sq, gscr);   // dQ[block] += scale · dS·K[0:nk]
            if (dk) gemm_run(G[5], dS, at(q, h16, qoff + (long)i0 * sq), dk + kvoff, gscr);   // dK[0:nk] += scale · dSᵀ·Q[block]
        }
    }
}

void attention_forward_ref(double *out, double *att, const double *q, const double *k, const double *v,
                           int sq, int skv, int B, int T, int NH, int hd, int mode) {
    const int D = NH * hd;
    const double scale = 1.0 / sqrt((double)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                const double *qi = q + ((long)b * T + i) * sq + (long)h * hd;
                double *row = att + (((long)b * NH + h) * T + i) * T;
                const int last = attn_last_key(mode, i, T);
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    if (j > last) { row[j] = 0; continue; }
                    const double *kj = k + ((long)b * T + j) * skv + (long)h * hd;
                    double s = 0;
                    for (int d = 0; d < hd; d++) s += qi[d] * kj[d];
                    row[j] = s * scale;
                    if (row[j] > mx) mx = row[j];
                }
                for (int j = 0; j <= last; j++) { row[j] = exp(row[j] - mx); sum += row[j]; }
                for (int j = 0; j <= last; j++) row[j] /= sum;
                for (int d = 0; d < hd; d++) {
                    double o = 0;
                    for (int j = 0; j <= last; j++) o += row[j] * v[((long)b * T + j) * skv + (long)h * hd + d];
                    out[((long)b * T + i) * D + (long)h * hd + d] = o;
                }
            }
}

void attention_backward_ref(double *dq, double *dk, double *dv, const double *dout,
                            const double *att, const double *q, const double *k, const double *v,
                            int sq, int skv, int B, int T, int NH, int hd, int mode) {
    const int D = NH * hd;
    const double scale = 1.0 / sqrt((double)hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                const double *row = att + (((long)b * NH + h) * T + i) * T;
                const double *doi = dout + ((long)b * T + i) * D + (long)h * hd;
                const long qi = ((long)b * T + i) * sq + (long)h * hd;
                const int last = attn_last_key(mode, i, T);
                // dP[i,j] = dO_i · V_j, recomputed where needed so the reference needs no buffer
                double dot = 0;
                for (int j = 0; j < T; j++) {
                    if (j > last) continue;
                    const double *vj = v + ((long)b * T + j) * skv + (long)h * hd;
                    double dp = 0;
                    for (int d = 0; d < hd; d++) dp += doi[d] * vj[d];
                    dot += row[j] * dp;
                }
                for (int j = 0; j < T; j++) {
                    if (j > last) continue;
                    const long kj = ((long)b * T + j) * skv + (long)h * hd;
                    double dp = 0;
                    for (int d = 0; d < hd; d++) dp += doi[d] * v[kj + d];
                    const double ds = row[j] * (dp - dot);
                    for (int d = 0; d < hd; d++) {
                        if (dv) dv[kj + d] += row[j] * doi[d];
                        if (dq) dq[qi + d] += scale * ds * k[kj + d];
                        if (dk) dk[kj + d] += scale * ds * q[qi + d];
                    }
                }
            }
}
