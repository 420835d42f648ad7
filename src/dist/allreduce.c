/* Ring all-reduce (reduce-scatter then all-gather) on MPI point-to-point, and the parameter
 * checksum used to prove every rank holds the same model. See semaim/allreduce.h. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "semaim/allreduce.h"

#define RING_TAG 0x5a17

struct allreduce {
    MPI_Comm comm;          /* private duplicate: our tags can never match the caller's messages */
    int rank, world, use_mpi;
    long max_count, seg;
    float *stage[2];        /* receive buffers for the reduce-scatter, seg floats each (or less) */
    MPI_Request *sreq;      /* one per segment sent in a call, so each can be waited individually */
    long nsreq;
    long *soff;             /* per step: index in sreq of the step's first segment */
    long calls;             /* reductions made, for tests and the run's end record */
};

/* Chunk c of a count-float buffer split world ways: the first count%world chunks get one extra. */
static long chunk_off(long count, int world, int c) {
    long base = count / world, rem = count % world;
    return c * base + (c < rem ? c : rem);
}
static long chunk_len(long count, int world, int c) {
    return count / world + (c < count % world ? 1 : 0);
}
static long nseg_of(long len, long seg) { return (len + seg - 1) / seg; }
static int ring_mod(long a, int m) { long r = a % m; return (int)(r < 0 ? r + m : r); }

static void *alloc_aligned(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, rounded ? rounded : 64);
}

static void ar_release(allreduce_t *ar) {
    free(ar->stage[0]); free(ar->stage[1]); free(ar->sreq); free(ar->soff);
    if (ar->comm != MPI_COMM_NULL) MPI_Comm_free(&ar->comm);
    free(ar);
}

allreduce_t *allreduce_create(MPI_Comm comm, long max_count, long segment_floats, int use_mpi) {
    int rank, world;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS || MPI_Comm_size(comm, &world) != MPI_SUCCESS)
        return NULL;
    long seg = segment_floats ? segment_floats : ALLREDUCE_DEFAULT_SEGMENT_FLOATS;
    use_mpi = use_mpi != 0;
    int ok = 1;
    if (max_count < 0 || segment_floats < 0 || seg > INT_MAX) ok = 0;
    /* Every segment of a call gets a send request, waited on with one MPI_Waitall (int count). */
    else if (world > 1 && nseg_of((max_count + world - 1) / world, seg) > INT_MAX / (2L * (world - 1))) ok = 0;
    /* Ranks that disagree on the segmentation would cut chunks differently and mismatch
     * messages mid-ring, so compare everything once here, where it is cheap. v[6] finds the
     * lowest rank with bad arguments, which alone reports them. */
    long v[7] = {max_count, seg, use_mpi, -max_count, -seg, -(long)use_mpi, ok ? LONG_MAX : rank};
    long m[7];
    if (MPI_Allreduce(v, m, 7, MPI_LONG, MPI_MIN, comm) != MPI_SUCCESS) return NULL;
    if (m[6] != LONG_MAX) {
        if (m[6] == rank)
            fprintf(stderr, "allreduce_create: rank %d: bad arguments max_count=%ld segment_floats=%ld "
                    "(need max_count >= 0, 0 <= segment_floats <= %d, and fewer than 2^31 segments per call)\n",
                    rank, max_count, segment_floats, INT_MAX);
        return NULL;
    }
    if (m[0] != -m[3] || m[1] != -m[4] || m[2] != -m[5]) {
        if (rank == 0)
            fprintf(stderr, "allreduce_create: ranks disagree on max_count (%ld..%ld), segment (%ld..%ld) "
                    "or use_mpi (%ld..%ld)\n", m[0], -m[3], m[1], -m[4], m[2], -m[5]);
        return NULL;
    }

    allreduce_t *ar = calloc(1, sizeof *ar);
    MPI_Comm dup = MPI_COMM_NULL;
    if (MPI_Comm_dup(comm, &dup) != MPI_SUCCESS) { free(ar); return NULL; }
    MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);
    if (ar) {
        ar->comm = dup; ar->rank = rank; ar->world = world; ar->use_mpi = use_mpi;
        ar->max_count = max_count; ar->seg = seg;
        long maxchunk = (max_count + world - 1) / world;
        long stage = seg < maxchunk ? seg : maxchunk;
        long steps = 2L * (world - 1);
        ar->nsreq = steps * nseg_of(maxchunk, seg);
        if (!use_mpi && world > 1) {
            ar->stage[0] = alloc_aligned((size_t)stage * sizeof(float));
            ar->stage[1] = alloc_aligned((size_t)stage * sizeof(float));
            ar->sreq = malloc((size_t)(ar->nsreq ? ar->nsreq : 1) * sizeof(MPI_Request));
            ar->soff = malloc((size_t)(steps + 1) * sizeof(long));
            if (!ar->stage[0] || !ar->stage[1] || !ar->sreq || !ar->soff) ok = 0;
        }
    } else {
        ok = 0;
    }
    if (!ok) fprintf(stderr, "allreduce_create: rank %d: out of memory for max_count=%ld\n", rank, max_count);
    int all_ok = 0;
    if (MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, dup) != MPI_SUCCESS) all_ok = 0;
    if (!all_ok) {
        if (ar) ar_release(ar); else MPI_Comm_free(&dup);
        return NULL;
    }
    return ar;
}

void allreduce_free(allreduce_t *ar) { if (ar) ar_release(ar); }
long allreduce_segment_floats(const allreduce_t *ar) { return ar->seg; }
int allreduce_world(const allreduce_t *ar) { return ar->world; }
long allreduce_calls(const allreduce_t *ar) { return ar->calls; }

static void add_into(float *restrict dst, const float *restrict src, long n) {
    for (long i = 0; i < n; i++) dst[i] += src[i];
}
static void add_scale_into(float *restrict dst, const float *restrict src, long n, float s) {
    for (long i = 0; i < n; i++) dst[i] = (dst[i] + src[i]) * s;
}
static void scale(float *x, long n, float s) {
    for (long i = 0; i < n; i++) x[i] *= s;
}

/* One call of the ring. Step t (0 <= t < 2(world-1)) sends chunk (rank-t) and receives chunk
 * (rank-t-1); steps below world-1 add what they receive, later steps store it. The chunk
 * received at step t is the one sent at t+1, which is what lets each segment be forwarded as
 * soon as it has landed. The received segments form one stream (t, k) in order. */
typedef struct { int t; long k; } seg_pos;
typedef struct {
    allreduce_t *ar;
    float *buf;
    long count;
    int T, left, right;
    seg_pos next;             /* next segment of the receive stream to post */
} ring_call;

static int recv_chunk(const ring_call *c, int t) { return ring_mod(c->ar->rank - t - 1, c->ar->world); }
/* Where segment p lives in buf, and its length. */
static long seg_at(const ring_call *c, seg_pos p, long *n) {
    int ch = recv_chunk(c, p.t);
    long seg = c->ar->seg, len = chunk_len(c->count, c->ar->world, ch) - p.k * seg;
    *n = len < seg ? len : seg;
    return chunk_off(c->count, c->ar->world, ch) + p.k * seg;
}

/* Posts the receive of the next segment of the stream into staging slot s (reduce-scatter)
 * or straight into buf (all-gather); leaves *req null when the stream is over. */
static int post_next(ring_call *c, int s, MPI_Request *req, seg_pos *posted) {
    allreduce_t *ar = c->ar;
    const int P = ar->world;
    while (c->next.t < c->T &&
           c->next.k >= nseg_of(chunk_len(c->count, P, recv_chunk(c, c->next.t)), ar->seg)) {
        c->next.t++;
        c->next.k = 0;
    }
    *req = MPI_REQUEST_NULL;
    if (c->next.t >= c->T) return MPI_SUCCESS;
    long n, o = seg_at(c, c->next, &n);
    float *dst = ar->stage[s];
    if (c->next.t >= P - 1) {
        /* The all-gather overwrites a segment this rank sent during the reduce-scatter, at step
         * t-(world-1): that send must be complete first. */
        int rc = MPI_Wait(&ar->sreq[ar->soff[c->next.t - (P - 1)] + c->next.k], MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return rc;
        dst = c->buf + o;
    }
    *posted = c->next;
    c->next.k++;
    return MPI_Irecv(dst, (int)n, MPI_FLOAT, c->left, RING_TAG, ar->comm, req);
}

static int ring(allreduce_t *ar, float *buf, long count, int mean) {
    const int P = ar->world, r = ar->rank;
    ring_call c = {ar, buf, count, 2 * (P - 1), (r + P - 1) % P, (r + 1) % P, {0, 0}};
    const long seg = ar->seg;
    const float inv = 1.0f / (float)P;
    int rc;
    ar->soff[0] = 0;
    for (int t = 0; t < c.T; t++)
        ar->soff[t + 1] = ar->soff[t] + nseg_of(chunk_len(count, P, ring_mod(r - t, P)), seg);
    for (long i = 0; i < ar->soff[c.T]; i++) ar->sreq[i] = MPI_REQUEST_NULL;

    /* Step 0 sends the rank's own chunk as it is; nothing in the call writes that chunk until
     * the all-gather, which first waits for these sends. */
    long off = chunk_off(count, P, r), len = chunk_len(count, P, r);
    for (long k = 0; k * seg < len; k++) {
        long n = len - k * seg < seg ? len - k * seg : seg;
        rc = MPI_Isend(buf + off + k * seg, (int)n, MPI_FLOAT, c.right, RING_TAG, ar->comm, &ar->sreq[k]);
        if (rc != MPI_SUCCESS) return rc;
    }

    /* Two receives always in flight, slot j%2 for the j-th segment of the stream: the next
     * segment's receive is posted before the current one is reduced. */
    MPI_Request rreq[2];
    seg_pos pos[2];
    if ((rc = post_next(&c, 0, &rreq[0], &pos[0])) != MPI_SUCCESS) return rc;
    if ((rc = post_next(&c, 1, &rreq[1], &pos[1])) != MPI_SUCCESS) return rc;
    for (long j = 0; rreq[j % 2] != MPI_REQUEST_NULL; j++) {
        int s = (int)(j % 2);
        seg_pos p = pos[s];
        if ((rc = MPI_Wait(&rreq[s], MPI_STATUS_IGNORE)) != MPI_SUCCESS) return rc;
        long n, o = seg_at(&c, p, &n);
        if (p.t < P - 2) add_into(buf + o, ar->stage[s], n);
        else if (p.t == P - 2) {   /* the last addition: this rank now owns the chunk's sum */
            if (mean) add_scale_into(buf + o, ar->stage[s], n, inv);
            else add_into(buf + o, ar->stage[s], n);
        }
        if (p.t + 1 < c.T) {
            rc = MPI_Isend(buf + o, (int)n, MPI_FLOAT, c.right, RING_TAG, ar->comm,
                           &ar->sreq[ar->soff[p.t + 1] + p.k]);
            if (rc != MPI_SUCCESS) return rc;
        }
        if ((rc = post_next(&c, s, &rreq[s], &pos[s])) != MPI_SUCCESS) return rc;
    }
    return MPI_Waitall((int)ar->soff[c.T], ar->sreq, MPI_STATUSES_IGNORE);
}

static int with_mpi(allreduce_t *ar, float *buf, long count, int mean) {
    /* MPI counts are int: large buffers go in pieces. */
    const long piece = 1L << 30;
    for (long o = 0; o < count; o += piece) {
        int n = (int)(count - o < piece ? count - o : piece);
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + o, n, MPI_FLOAT, MPI_SUM, ar->comm);
        if (rc != MPI_SUCCESS) return rc;
    }
    if (mean && ar->world > 1) scale(buf, count, 1.0f / (float)ar->world);
    return MPI_SUCCESS;
}

static int reduce(allreduce_t *ar, float *buf, long count, int mean) {
    if (!ar) return MPI_ERR_ARG;
    ar->calls++;
    if (count < 0 || count > ar->max_count) return MPI_ERR_COUNT;
    if (count > 0 && !buf) return MPI_ERR_BUFFER;
    if (count == 0) return MPI_SUCCESS;
    if (ar->use_mpi) return with_mpi(ar, buf, count, mean);
    if (ar->world == 1) return MPI_SUCCESS;   /* the sum over one rank, and its mean, is itself */
    return ring(ar, buf, count, mean);
}

int allreduce_sum(allreduce_t *ar, float *buf, long count) { return reduce(ar, buf, count, 0); }
int allreduce_mean(allreduce_t *ar, float *buf, long count) { return reduce(ar, buf, count, 1); }
