/* Sums whose value does not depend on the thread count (internal to the kernels room): the n
 * terms are split into CHUNK_PARTS fixed chunks, each summed by one thread, and the partial
 * sums are added in order. For the losses (loss.c, featloss.c). */
#ifndef SEMAIM_CHUNKS_H
#define SEMAIM_CHUNKS_H

#define CHUNK_PARTS 64

/* part(lo, hi, ctx): the sum of terms lo..hi-1. */
static inline double chunk_sum(long n, double (*part)(long lo, long hi, const void *ctx), const void *ctx) {
    if (n <= 0) return 0.0;
    double s[CHUNK_PARTS];
    const long per = (n + CHUNK_PARTS - 1) / CHUNK_PARTS;
    #pragma omp parallel for schedule(static)
    for (int k = 0; k < CHUNK_PARTS; k++) {
        const long lo = k * per < n ? k * per : n, hi = lo + per < n ? lo + per : n;
        s[k] = part(lo, hi, ctx);
    }
    double t = 0.0;
    for (int k = 0; k < CHUNK_PARTS; k++) t += s[k];
    return t;
}
#endif
