/* Small collectives every MPI program of the project shares: agreeing on an error, the
 * chunked broadcast of big buffers, and the replica checks. (The gradient all-reduce is in
 * allreduce.h.) Every function here is collective: all ranks call it at the same point. */
#ifndef SEMAIM_DIST_H
#define SEMAIM_DIST_H
#include <stdint.h>
#include <mpi.h>
#include "semaim/compute.h"
#include "semaim/err.h"

/* Every rank passes its own outcome in e (kind ERR_NONE = fine). 0 when all are fine;
 * otherwise -1 on every rank, with e holding the error (kind and message) of the lowest
 * failing rank everywhere. */
int dist_agree(MPI_Comm comm, err_t *e);
/* dist_agree; on an error rank 0 prints "<prog>: <message>" once and every rank ends with the
 * error's kind as exit code (MPI_Finalize, exit). Returns only when all ranks are fine. */
void dist_agree_or_exit(MPI_Comm comm, const char *prog, err_t *e);
/* Ends the program on every rank with code (flushes, MPI_Finalize, exit). */
void dist_finish(int code) __attribute__((noreturn));
/* gemm_setup (compute.h) on every rank, then: the same resolved choice everywhere, or -1 on
 * every rank (ERR_INPUT: the first failing rank's reason, or which ranks resolved what). */
int dist_compute_setup(MPI_Comm comm, const char *gemm, const char *precision, gemm_config_t *out, err_t *e);
/* MPI_Bcast of n floats from rank 0, in pieces small enough for MPI's int counts. */
int dist_bcast_floats(MPI_Comm comm, float *buf, long n);

/* The mirror of this rank, world − 1 − rank (the middle rank of an odd world is its own). */
int dist_mirror_rank(MPI_Comm comm);
/* Collective between mirror pairs: sends `bytes` of send to the mirror rank and receives as
 * many from it into recv (in pieces for MPI's int counts). 1 when the mirror is this rank
 * (nothing moves: the partner data are the rank's own), 0 when exchanged, -1 on an MPI error.
 * Every rank must call it whether or not its own step failed, or its mirror waits forever. */
int dist_mirror_exchange(MPI_Comm comm, const void *send, void *recv, size_t bytes);

/* A 64-bit hash of the exact bit patterns of p[0..n) and of n. Any difference confined to
 * one 8-byte word (e.g. one flipped bit, or one float changed in any way) always changes the
 * hash: each word enters one of four lanes through a bijection of the lane state, and the
 * lanes are combined through bijections. Wider differences collide with probability ~2^-64. */
uint64_t params_checksum(const float *p, long n);
/* Collective. Gathers every rank's params_checksum(p, n) (stored in *mine if mine != NULL).
 * Returns 0 if all ranks agree, r+1 for the lowest rank r whose checksum differs from rank
 * 0's (the same answer on every rank), or -1 on an MPI or allocation failure. */
int check_replicas_consistent(MPI_Comm comm, const float *p, long n, uint64_t *mine);
/* Collective. The every-N-steps check of the trainers: as check_replicas_consistent; on a
 * mismatch (or a failure) err (ERR_RUNTIME) names the step, the first differing rank and both
 * checksums. Returns 0 if all ranks agree, else non-zero (the same on every rank); the caller
 * stops the job. */
int replicas_verify(MPI_Comm comm, const float *p, long n, long step, err_t *err);
#endif
