# Open MPI's network between nodes, for the job scripts (sourced by pretrain.sbatch and
# eval.sbatch; not a job itself). Two optional variables, exported before sbatch:
#
#   SEMAIM_MPI_IF   the interfaces MPI traffic between nodes may use, comma-separated names
#                   (eth1, ib0) or IPv4 subnets (10.1.0.0/16). Sets OMPI_MCA_btl_tcp_if_include
#                   (the ranks' TCP transport) and OMPI_MCA_oob_tcp_if_include (the control
#                   channel between mpirun and its orted daemons, SEMAIM_LAUNCHER=mpirun).
#   SEMAIM_MPI_BTL  the Open MPI transports (BTLs), e.g. tcp,self (TCP even between ranks of
#                   one node) or tcp,vader,self (shared memory within a node). Sets OMPI_MCA_btl,
#                   and OMPI_MCA_pml=ob1 because only the ob1 layer uses BTLs: Debian's Open
#                   MPI also has UCX, which takes over on InfiniBand and ignores the BTL list.
#
# Unset, Open MPI chooses by itself: every interface that is up except loopback, which goes
# wrong on nodes with several networks (a management network, docker0, a down-but-configured
# link: the ranks then try an address the peer cannot reach and hang or fail at the first
# collective). Under srun --mpi=pmix the start-up exchange (PMIx) runs between the slurmds
# over the addresses slurm.conf gives the nodes, so it needs no setting here; the MPI traffic
# afterwards is what these choose. The OMPI_MCA_* variables can be set directly instead; one
# already set to something else than the SEMAIM_* value is refused rather than overridden.
#
# mpi_net_setup: checks and exports; sets mpi_net to a one-line description for the log, or
# on bad input to the reason, and returns 2.

_mn_set() {   # NAME VALUE SOURCE: export NAME=VALUE unless NAME is already set to another value
  local cur=${!1-}
  if [ -n "${!1+x}" ] && [ "$cur" != "$2" ]; then
    mpi_net="$1=$cur is already set and contradicts $3=${!3}; unset one of them"
    return 2
  fi
  export "$1=$2"
}

mpi_net_setup() {
  local ifs=${SEMAIM_MPI_IF-} btls=${SEMAIM_MPI_BTL-} t o1 o2 o3 o4 bits
  mpi_net="Open MPI's own choice of transports and interfaces"
  if [ -n "${SEMAIM_MPI_IF+x}" ]; then
    [ -n "$ifs" ] || { mpi_net="SEMAIM_MPI_IF is empty (unset it to let Open MPI choose)"; return 2; }
    [[ $ifs == *,,* || $ifs == ,* || $ifs == *, ]] && { mpi_net="SEMAIM_MPI_IF: '$ifs' has an empty entry"; return 2; }
    for t in ${ifs//,/ }; do
      if [[ $t == */* ]]; then
        IFS=./ read -r o1 o2 o3 o4 bits <<<"$t"
        if ! [[ $t =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || [ "$o1" -gt 255 ] || [ "$o2" -gt 255 ] ||
           [ "$o3" -gt 255 ] || [ "$o4" -gt 255 ] || [ "$bits" -gt 32 ]; then
          mpi_net="SEMAIM_MPI_IF: '$t' is not an IPv4 subnet like 10.1.0.0/16"; return 2
        fi
      elif ! [[ $t =~ ^[A-Za-z0-9_.:-]{1,15}$ ]]; then
        mpi_net="SEMAIM_MPI_IF: '$t' is neither an interface name nor an IPv4 subnet"; return 2
      fi
    done
    # Open MPI refuses include and exclude lists together
    for t in OMPI_MCA_btl_tcp_if_exclude OMPI_MCA_oob_tcp_if_exclude; do
      [ -n "${!t+x}" ] && { mpi_net="$t is set: Open MPI cannot have it together with SEMAIM_MPI_IF's include list; unset it"; return 2; }
    done
    _mn_set OMPI_MCA_btl_tcp_if_include "$ifs" SEMAIM_MPI_IF || return 2
    _mn_set OMPI_MCA_oob_tcp_if_include "$ifs" SEMAIM_MPI_IF || return 2
  fi
  if [ -n "${SEMAIM_MPI_BTL+x}" ]; then
    [[ $btls =~ ^\^?[a-z0-9_]+(,[a-z0-9_]+)*$ ]] || { mpi_net="SEMAIM_MPI_BTL: '$btls' is not a list like tcp,self"; return 2; }
    # a rank sends to itself too: without self, MPI_Init fails with a message that hides why
    if [[ $btls != ^* ]] && [[ ,$btls, != *,self,* ]]; then mpi_net="SEMAIM_MPI_BTL: '$btls' lacks self (a rank's messages to itself)"; return 2; fi
    _mn_set OMPI_MCA_pml ob1 SEMAIM_MPI_BTL || return 2
    _mn_set OMPI_MCA_btl "$btls" SEMAIM_MPI_BTL || return 2
  fi
  if [ -n "${SEMAIM_MPI_IF+x}${SEMAIM_MPI_BTL+x}" ]; then
    mpi_net="pml ${OMPI_MCA_pml:-auto}, btl ${OMPI_MCA_btl:-auto}, interfaces ${OMPI_MCA_btl_tcp_if_include:-auto}"
  fi
  return 0
}
