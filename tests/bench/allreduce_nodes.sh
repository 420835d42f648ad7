#!/usr/bin/env bash
# Ring all-reduce vs MPI_Allreduce between nodes: one rank on each of NODES network-namespace
# nodes of this machine (tests/slurm/cluster.sh start-nodes: veths on a bridge, a private
# Slurm cluster), launched with srun --mpi=pmix, Open MPI over TCP only (pml ob1, btl
# tcp,self) on the nodes' own interface, 1 KiB .. 256 MiB in powers of 4 (the driver of
# tests/bench/allreduce.sh). Each node's link is shaped with tc tbf to RATE on the way out,
# like a NIC of that speed. The kernel here has no netem, so no delay is added: the latency is
# the veth and TCP stack's own, and the script says so (where netem exists, DELAY, default
# 20us, is added on each node's way out as well).
# Prints the same figure names as tests/bench/allreduce.sh (allreduce_ring_busbw_<size> ...)
# plus allreduce_ranks, so `bin/semaim-report --allreduce results/bench-allreduce_nodes.json`
# fits alpha and beta to these figures for its projection.
#
#   tests/bench.sh allreduce_nodes                        (records results/bench-allreduce_nodes.json)
#   NODES=3 RATE=1gbit DELAY=50us tests/bench/allreduce_nodes.sh     (RATE 0: no rate limit)
# Extra arguments go to the driver (e.g. --max-bytes 16777216 for a short run).
set -u
cd "$(dirname "$0")/../.." || exit 1
repo=$PWD
nodes=${NODES:-2} rate=${RATE:-10gbit} delay=${DELAY:-20us}
case $nodes in [2-9]) ;; *) echo "bench allreduce_nodes: NODES must be 2..9, not '$nodes'" >&2; exit 2;; esac
[[ $rate =~ ^(0|[0-9]+(\.[0-9]+)?[kmg]?bit)$ ]] || { echo "bench allreduce_nodes: RATE must be like 10gbit, 500mbit or 0, not '$rate'" >&2; exit 2; }
[[ $delay =~ ^[0-9]+(\.[0-9]+)?(us|ms)$ ]] || { echo "bench allreduce_nodes: DELAY must be like 20us or 1ms, not '$delay'" >&2; exit 2; }
bin=$repo/build/tools/bench_allreduce
make -s "$bin" >&2 || { echo "bench allreduce_nodes: cannot build $bin" >&2; exit 1; }
for v in $(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\|OMPI_MCA_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include=semaim0
# as in allreduce.sh: keep glibc from handing MPI_Allreduce's big temporaries back to the kernel
export MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736

work=$(mktemp -d /tmp/bnodes.XXXXXX)
. tests/slurm/cluster.sh
trap 'slurm_cluster_stop "$work/c"; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP
slurm_nodes_start "$work/c" "$nodes" 2 || { echo "bench allreduce_nodes: the namespace cluster did not start" >&2; exit 1; }
. "$work/c/net.env"
# netem (delay and rate) where the kernel has it, else tbf (rate only; this kernel's case)
shaping="none"
for ((k = 1; k <= nodes; k++)); do
  ns=$(netns_name "$work/c" "$k")
  if [ "$rate" = 0 ]; then
    tc -n "$ns" qdisc add dev semaim0 root netem delay "$delay" 2>/dev/null && shaping="netem delay $delay"
  elif tc -n "$ns" qdisc add dev semaim0 root netem delay "$delay" rate "$rate" limit 100000 2>/dev/null; then
    shaping="netem delay $delay rate $rate"
  elif tc -n "$ns" qdisc add dev semaim0 root tbf rate "$rate" burst 512kb latency 5ms; then
    # burst: a few 64 KiB TSO frames; latency: the queue a sender may build before tbf drops
    shaping="tbf rate $rate (no netem in this kernel: no delay added)"
  else echo "bench allreduce_nodes: neither netem nor tbf can shape $ns's link" >&2; exit 1; fi
done
[ "$shaping" = none ] && [ "$rate" = 0 ] && shaping="none (no netem in this kernel for the delay)"
echo "# $nodes nodes x 1 rank (network namespaces on one machine: $(getconf _NPROCESSORS_ONLN) cores, shared with whatever else runs)"
echo "# Open MPI pml ob1, btl tcp,self over veth + bridge; each node's link: $shaping"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# the conditions go into the record too (tests/bench.sh keeps only the bench lines)
gbit=0; case $rate in 0) ;; *gbit) gbit=${rate%gbit} ;; *mbit) gbit=$(awk "BEGIN{print ${rate%mbit}/1000}") ;; *kbit) gbit=$(awk "BEGIN{print ${rate%kbit}/1e6}") ;; *bit) gbit=$(awk "BEGIN{print ${rate%bit}/1e9}") ;; esac
us=0; [[ $shaping == netem* ]] && { case $delay in *us) us=${delay%us} ;; *ms) us=$(awk "BEGIN{print ${delay%ms}*1000}") ;; esac; }
echo "bench allreduce_ranks: $nodes ranks"
echo "bench allreduce_nodes_link_rate: $gbit Gb/s"
echo "bench allreduce_nodes_link_delay: $us us"
echo "bench allreduce_nodes_loadavg_before: $(cut -d' ' -f1 /proc/loadavg) load"
timeout 1800 srun -N"$nodes" --ntasks-per-node=1 --mpi=pmix --kill-on-bad-exit=1 "$bin" "$@" || exit 1
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench allreduce_nodes_loadavg_after: $(cut -d' ' -f1 /proc/loadavg) load"
