/* The one way to cut n items into K contiguous parts: part k is [slice_lo(n,k,K),
 * slice_lo(n,k+1,K)). Used for shards of a split, a rank's rows of a features set and the
 * loader's evaluation slices, so they always agree. */
#ifndef SEMAIM_SLICE_H
#define SEMAIM_SLICE_H
static inline long slice_lo(long n, long k, long K) { return (long)((unsigned __int128)n * (unsigned long)k / (unsigned long)K); }
#endif
