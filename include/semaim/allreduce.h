/* Gradient all-reduce for data-parallel training, and the replica-consistency check.
 *
 * The ring: the buffer is cut into world chunks of ~count/world floats. In 2(world-1) steps
 * every rank sends one chunk to rank+1 and receives one from rank-1: the first world-1 steps
 * add the received chunk into the local one (reduce-scatter), after which rank r holds the
 * full sum of chunk r+1; the last world-1 steps pass the summed chunks round unchanged
 * (all-gather). Each chunk travels in segments of segment_floats; a received segment is
 * forwarded as soon as it has been added, so the steps overlap, and the receive of the next
 * segment is always posted before the current one is reduced (two staging buffers).
 *
 * Every element is summed by one rank only, in the fixed order of the ring starting at its
 * chunk's owner, and then copied to everyone, so all ranks end bitwise identical. The order
 * differs from MPI_Allreduce's, so the two agree exactly only when the sums are exact.
 *
 * All functions taking an allreduce_t or a communicator are collective: every rank calls them
 * in the same order with the same count and the same create arguments. A rank calling with a
 * different count is not detected (it ends in MPI_ERR_TRUNCATE or a hang). */
#ifndef SEMAIM_ALLREDUCE_H
#define SEMAIM_ALLREDUCE_H
#include <stdint.h>
#include <mpi.h>

typedef struct allreduce allreduce_t;

/* Default segment, 1 MiB: tuned with tests/bench/allreduce.sh on the 2-rank shared-memory
 * transport, where 64K..512K floats were within noise of each other from 1 MiB up and 32K
 * floats lost 5-18% to the per-message cost. */
#define ALLREDUCE_DEFAULT_SEGMENT_FLOATS (256L * 1024)

/* Collective. Duplicates comm (so our messages never meet the caller's) and allocates the two
 * segment buffers and the request table for counts up to max_count, once. segment_floats 0
 * means the default; use_mpi != 0 makes the calls use MPI_Allreduce instead of the ring (for
 * comparison). Returns NULL, on every rank, if an argument is out of range (max_count < 0,
 * segment_floats < 0 or > INT_MAX, or so small that a call would need 2^31 segments), if the
 * ranks disagree on max_count, segment_floats or use_mpi, or if allocation fails; the reason
 * is written to stderr once (by rank 0, the lowest rank with bad arguments, or each rank
 * whose allocation failed). */
allreduce_t *allreduce_create(MPI_Comm comm, long max_count, long segment_floats, int use_mpi);
/* In place: buf[0..count) becomes the element-wise sum over ranks. Returns MPI_SUCCESS, or an
 * MPI error code (the duplicate communicator returns errors rather than aborting):
 * MPI_ERR_COUNT if count < 0 or count > max_count, MPI_ERR_BUFFER if buf is NULL and count > 0,
 * else whatever MPI reported; after an MPI error buf's contents are undefined. */
int allreduce_sum(allreduce_t *ar, float *buf, long count);
/* As allreduce_sum, then every element times 1/world: the mean over ranks. */
int allreduce_mean(allreduce_t *ar, float *buf, long count);
void allreduce_free(allreduce_t *ar);   /* collective (frees the duplicate communicator) */
long allreduce_segment_floats(const allreduce_t *ar);
int allreduce_world(const allreduce_t *ar);
long allreduce_calls(const allreduce_t *ar);   /* allreduce_sum/_mean calls so far */

#endif
