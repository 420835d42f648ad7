/* Multi-head softmax attention with the three position masks of ops.h.
 * Query rows go in blocks of ATT_BLK; a block only multiplies against keys 0..last key of its
 * final row, so the causal modes do about half the GEMM work of the full mode. The GEMMs run
 * on strided views (lda = row stride), so a fused qkv buffer needs no repacking. */
#include <math.h>
#include <cblas.h>
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
    // With a single task the region is inactive and OpenBLAS may use the threads itself.
    #pragma omp parallel for schedule(dynamic) if (ntask > 1)
    for (long task = 0; task < ntask; task++) {
        const long pair = task / nblk;
        const int b = (int)(pair / NH), h = (int)(pair % NH), i0 = (int)(task % nblk) * rows;
        const int m = T - i0 < rows ? T - i0 : rows;
        const int nk = attn_last_key(mode, i0 + m - 1, T) + 1;
        const float *Q = q + (long)b * T * sq + (long)h * hd + (long)i0 * sq;
        const float *K = k + (long)b * T * skv + (long)h * hd;
        const float *V = v + (long)b * T * skv + (long)h * hd;
        float *A = att + pair * T * T + (long)i0 * T;
        float *O = out + (long)b * T * D + (long)h * hd + (long)i0 * D;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, hd,
                    scale, Q, sq, K, skv, 0.0f, A, T);
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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, nk,
                    1.0f, A, T, V, skv, 0.0f, O, D);
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
    #pragma omp parallel for schedule(dynamic) if (npair > 1)
    for (long pair = 0; pair < npair; pair++) {
        const int b = (int)(pair / NH), h = (int)(pair % NH);
        const long qoff = (long)b * T * sq + (long)h * hd, kvoff = (long)b * T * skv + (long)h * hd;
        const float *K = k + kvoff, *V = v + kvoff;
        float *dS = scratch + pair * rows * T;
        for (int blk = 0; blk < nblk; blk++) {
            const int i0 = blk * rows, m = T - i0 < rows ? T - i0 : rows;
            const int nk = attn_last_key(mode, i0 + m - 1, T) + 1;
            const float *P = att + pair * T * T + (long)i0 * T;
            const float *dO = dout + (long)b * T * D + (long)h * hd + (long)i0 * D;
            if (dv)   // dV[0:nk] += Pᵀ·dO
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, m,
                            1.0f, P, T, dO, D, 1.0f, dv + kvoff, skv);
            if (!dq && !dk) continue;
            // dP = dO·Vᵀ, then the softmax Jacobian in place: dS = P ⊙ (dP − rowsum(P ⊙ dP))
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, nk, hd,
                        1.0f, dO, D, V, skv, 0.0f, dS, nk);
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
            if (dq)   // dQ[block] += scale · dS·K[0:nk]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, nk,
                            scale, dS, nk, K, skv, 1.0f, dq + qoff + (long)i0 * sq, sq);
            if (dk)   // dK[0:nk] += scale · dSᵀ·Q[block]
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, m,
                            scale, dS, nk, q + qoff + (long)i0 * sq, sq, 1.0f, dk + kvoff, skv);
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
