/* Multi-head softmax attention with the three position masks of ops.h.
 * Query rows go in blocks of ATT_BLK; a block only multiplies against keys 0..last key of its
 * final row, so the causal modes do about half the GEMM work of the full mode. The GEMMs run
 * on strided views (lda = row stride), so a fused qkv buffer needs no repacking. They go
 * through the process-wide GEMM context (kernels/gemm.h) from inside our parallel regions,
 * so each runs on its calling thread; their plans are prepared before the region opens. */
#include <math.h>
#include "kernels/gemm.h"
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
static inline void att_block(int T, int mode, int blk, int *i0, int *m, int *nk) {
    const int rows = att_rows(T);
    *i0 = blk * rows;
    *m = T - *i0 < rows ? T - *i0 : rows;
    *nk = attn_last_key(mode, *i0 + *m - 1, T) + 1;
}

/* The six GEMMs of one query block (forward: 0 scores, 1 P·V; backward: 2 dV, 3 dP, 4 dQ, 5 dK). */
static gemm_shape_t att_shape(int g, int m, int nk, int T, int D, int hd, int sq, int skv, float scale) {
    switch (g) {
    case 0: return (gemm_shape_t){0, 1, m, nk, hd, sq, skv, T, scale, 0.0f};     // A = scale·Q·Kᵀ
    case 1: return (gemm_shape_t){0, 0, m, hd, nk, T, skv, D, 1.0f, 0.0f};       // O = P·V
    case 2: return (gemm_shape_t){1, 0, nk, hd, m, T, D, skv, 1.0f, 1.0f};       // dV += Pᵀ·dO
    case 3: return (gemm_shape_t){0, 1, m, nk, hd, D, skv, nk, 1.0f, 0.0f};      // dP = dO·Vᵀ
    case 4: return (gemm_shape_t){0, 0, m, hd, nk, nk, skv, sq, scale, 1.0f};    // dQ += scale·dS·K
    default: return (gemm_shape_t){1, 0, nk, hd, m, nk, sq, skv, scale, 1.0f};   // dK += scale·dSᵀ·Q
    }
}

/* Plans for GEMMs g0..g1 of every block; inner: the kernel runs them in a parallel region. */
static void att_prepare(int g0, int g1, int T, int NH, int hd, int sq, int skv, int mode, int inner) {
    const int rows = att_rows(T), nblk = (T + rows - 1) / rows;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int blk = 0; blk < nblk; blk++) {
        int i0, m, nk;
        att_block(T, mode, blk, &i0, &m, &nk);
        for (int g = g0; g <= g1; g++) {
            gemm_shape_t s = att_shape(g, m, nk, T, NH * hd, hd, sq, skv, scale);
            gemm_prepare(&s, inner);
        }
    }
}

void attention_prepare(int B, int T, int NH, int hd, int sq, int skv, int mode) {
    if (B <= 0 || T <= 0 || NH <= 0 || hd <= 0) return;
    const int rows = att_rows(T), nblk = (T + rows - 1) / rows;
    att_prepare(0, 1, T, NH, hd, sq, skv, mode, (long)B * NH * nblk > 1);
    att_prepare(2, 5, T, NH, hd, sq, skv, mode, (long)B * NH > 1);
}

long attention_scratch_floats(int B, int T, int NH, int hd) {
    (void)hd;
    return (long)B * NH * att_rows(T) * T;   // one dS block per (b, head): independent of thread count
}

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int sq, int skv, int B, int T, int NH, int hd, int mode) {
    if (B <= 0 || T <= 0 || NH <= 0 || hd <= 0) return;
    const int D = NH * hd, rows = att_rows(T), nblk = (T + rows - 1) / rows;
    const float scale = 1.0f / sqrtf((float)hd);
    const long ntask = (long)B * NH * nblk;
    // Blocks of one head are independent in the forward pass, so they are the unit of work.
    // With a single task the region is inactive and the GEMMs may use the threads themselves.
    att_prepare(0, 1, T, NH, hd, sq, skv, mode, ntask > 1);
    #pragma omp parallel for schedule(dynamic) if (ntask > 1)
    for (long task = 0; task < ntask; task++) {
        const long pair = task / nblk;
        const int b = (int)(pair / NH), h = (int)(pair % NH);
        int i0, m, nk;
        att_block(T, mode, (int)(task % nblk), &i0, &m, &nk);
        const float *Q = q + (long)b * T * sq + (long)h * hd + (long)i0 * sq;
        const float *K = k + (long)b * T * skv + (long)h * hd;
        const float *V = v + (long)b * T * skv + (long)h * hd;
        float *A = att + pair * T * T + (long)i0 * T;
        float *O = out + (long)b * T * D + (long)h * hd + (long)i0 * D;
        const gemm_shape_t g0 = att_shape(0, m, nk, T, D, hd, sq, skv, scale);
        gemm_f32(&g0, Q, K, A);
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
            // masked entries are exactly 0: the P·V GEMM below reads them up to nk, backward too
            for (int j = last + 1; j < T; j++) row[j] = 0.0f;
        }
        const gemm_shape_t g1 = att_shape(1, m, nk, T, D, hd, sq, skv, scale);
        gemm_f32(&g1, A, V, O);
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v,
                        int sq, int skv, int B, int T, int NH, int hd, int mode) {
    if (B <= 0 || T <= 0 || NH <= 0 || hd <= 0 || (!dq && !dk && !dv)) return;
    const int D = NH * hd, rows = att_rows(T), nblk = (T + rows - 1) / rows;
    const float scale = 1.0f / sqrtf((float)hd);
    const long npair = (long)B * NH;
    // dK and dV of a head collect from every query block, so a whole head is one task.
    att_prepare(2, 5, T, NH, hd, sq, skv, mode, npair > 1);
    #pragma omp parallel for schedule(dynamic) if (npair > 1)
    for (long pair = 0; pair < npair; pair++) {
        const int b = (int)(pair / NH), h = (int)(pair % NH);
        const long qoff = (long)b * T * sq + (long)h * hd, kvoff = (long)b * T * skv + (long)h * hd;
        const float *K = k + kvoff, *V = v + kvoff;
        float *dS = scratch + pair * rows * T;
        for (int blk = 0; blk < nblk; blk++) {
            int i0, m, nk;
            att_block(T, mode, blk, &i0, &m, &nk);
            const float *P = att + pair * T * T + (long)i0 * T;
            const float *dO = dout + (long)b * T * D + (long)h * hd + (long)i0 * D;
            if (dv) {   // dV[0:nk] += Pᵀ·dO
                const gemm_shape_t g2 = att_shape(2, m, nk, T, D, hd, sq, skv, scale);
                gemm_f32(&g2, P, dO, dv + kvoff);
            }
            if (!dq && !dk) continue;
            // dP = dO·Vᵀ, then the softmax Jacobian in place: dS = P ⊙ (dP − rowsum(P ⊙ dP))
            const gemm_shape_t g3 = att_shape(3, m, nk, T, D, hd, sq, skv, scale);
            gemm_f32(&g3, dO, V, dS);
            for (int r = 0; r < m; r++) {
                const float *p = P + (long)r * T;
                float *ds = dS + (long)r * nk;
                const int last = attn_last_key(mode, i0 + r, T);
                float dot = 0.0f;
                #pragma omp simd reduction(+:dot)
                for (int j = 0; j <= last; j++) dot += p[j] * ds[j];
                #pragma omp simd
                for (int j = 0; j <= last; j++) ds[j] = p[j] * (ds[j] - dot);
                for (int j = last + 1; j < nk; j++) ds[j] = 0.0f;
            }
            if (dq) {   // dQ[block] += scale · dS·K[0:nk]
                const gemm_shape_t g4 = att_shape(4, m, nk, T, D, hd, sq, skv, scale);
                gemm_f32(&g4, dS, K, dq + qoff + (long)i0 * sq);
            }
            if (dk) {   // dK[0:nk] += scale · dSᵀ·Q[block]
                const gemm_shape_t g5 = att_shape(5, m, nk, T, D, hd, sq, skv, scale);
                gemm_f32(&g5, dS, q + qoff + (long)i0 * sq, dk + kvoff);
            }
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
