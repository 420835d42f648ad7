/* The exchange with the mirror rank (semaim/dist.h): what batch-level Mixup/CutMix needs to
 * pair the global batch as timm's flip does. */
#include "semaim/dist.h"

int dist_mirror_rank(MPI_Comm comm) {
    int rank, world;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &world);
    return world - 1 - rank;
}

int dist_mirror_exchange(MPI_Comm comm, const void *send, void *recv, size_t bytes) {
    int rank, peer = dist_mirror_rank(comm);
    MPI_Comm_rank(comm, &rank);
    if (peer == rank) return 1;
    const size_t piece = (size_t)1 << 30;   /* MPI's int counts */
    for (size_t o = 0; o < bytes; o += piece) {
        int c = (int)(bytes - o < piece ? bytes - o : piece);
        if (MPI_Sendrecv((const char *)send + o, c, MPI_BYTE, peer, 0x6d78, (char *)recv + o, c, MPI_BYTE, peer, 0x6d78, comm,
                         MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
    }
    return 0;
}
