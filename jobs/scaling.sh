#!/bin/bash
# Submits a scaling sweep of pretraining runs (jobs/pretrain.sbatch) over rank counts
# 1, 2, 4, ... up to --max-ranks (and --max-ranks itself), for strong scaling (fixed global
# batch, per-rank batch = global / ranks) and weak scaling (fixed per-rank batch), plus a report
# job (jobs/report.sbatch, bin/semaim-report) that depends on all of them with afterok.
#
#   jobs/scaling.sh --data /scratch/in1k --sweep-dir sweeps/vitb --max-ranks 16 \
#       --ntasks-per-node 4 --cpus-per-task 8 --batch 64 --steps 100 -- --preset base
#
#   --data DIR            shard folder (required)
#   --sweep-dir DIR       runs go to DIR/strong-np<N>/ and DIR/weak-np<N>/ (required; those
#                         folders must not exist yet); DIR/sweep.tsv lists the submitted jobs
#   --max-ranks N         largest rank count (default 4)
#   --batch B             weak scaling: images per rank per step (default 32)
#   --global-batch G      strong scaling: images per step over all ranks, divisible by every
#                         rank count (default B x max-ranks)
#   --steps S             training steps per run (default 50); one checkpoint, at the end
#   --kinds LIST          strong,weak (default), strong or weak
#   --ntasks-per-node T   ranks per node (default max-ranks: one node as long as it fits)
#   --cpus-per-task C     threads per rank (default 1)
#   --time T              time limit per run (default 01:00:00)
#   --name NAME           report name: RESULTS/NAME/scaling.* (default: the sweep folder's name)
#   --results DIR         where the report goes (default results)
#   --shared              let runs share nodes with other jobs (default: --exclusive, so that
#                         the timings of one run are not disturbed by another)
#   --sbatch OPT          extra sbatch option for every job, e.g. --sbatch --partition=cpu
#   --parsable            print only the job ids, report last
#   --dry-run             check everything and print the sbatch commands, submit nothing
#   -- ARGS               the rest goes to semaim-train (model size, lr, ...), e.g. -- --preset base
# Run it from the folder where logs/ should be (it is created). SEMAIM_HOME (default: this
# checkout), SEMAIM_LAUNCHER and the MPI network settings SEMAIM_MPI_IF / SEMAIM_MPI_BTL
# (jobs/mpi-net.sh; checked here, before anything is submitted) are passed to the jobs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "scaling.sh: $*" >&2; exit 2; }
posint() { case $2 in ''|*[!0-9]*) die "$1 must be a positive integer, not '$2'";; esac; [ "$2" -ge 1 ] || die "$1 must be at least 1"; }
data="" sweep="" maxr=4 batch=32 gbatch="" steps=50 kinds=strong,weak tpn="" cpus=1 time=01:00:00
name="" results=results exclusive=1 parsable=0 dry=0
sb=() targs=()
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; targs=("$@"); break ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --shared) exclusive=0; shift; continue ;;
    --parsable) parsable=1; shift; continue ;;
    --dry-run) dry=1; shift; continue ;;
  esac
  [ $# -ge 2 ] || die "$1 needs a value (or unknown flag; see --help)"
  case $1 in
    --data) data=$2 ;; --sweep-dir) sweep=$2 ;; --max-ranks) maxr=$2 ;; --batch) batch=$2 ;;
    --global-batch) gbatch=$2 ;; --steps) steps=$2 ;; --kinds) kinds=$2 ;; --ntasks-per-node) tpn=$2 ;;
    --cpus-per-task) cpus=$2 ;; --time) time=$2 ;; --name) name=$2 ;; --results) results=$2 ;;
    --sbatch) sb+=("$2") ;;
    *) die "unknown flag '$1' (see --help; semaim-train flags go after --)" ;;
  esac
  shift 2
done
[ -n "$data" ] || die "--data DIR is required"
[ -n "$sweep" ] || die "--sweep-dir DIR is required"
posint --max-ranks "$maxr"; posint --batch "$batch"; posint --steps "$steps"; posint --cpus-per-task "$cpus"
[ -n "$tpn" ] || tpn=$maxr
posint --ntasks-per-node "$tpn"
[ -n "$gbatch" ] || gbatch=$((batch * maxr))
posint --global-batch "$gbatch"
case $kinds in strong,weak|weak,strong) kinds="strong weak" ;; strong|weak) ;; *) die "--kinds must be strong,weak, strong or weak, not '$kinds'";; esac
[ -n "$name" ] || name=$(basename "$sweep")
case $name in ''|*/*|.|..) die "--name must be a plain name, not '$name'";; esac
[ -d "$data/train" ] || die "$data: no train/ folder of shards (semaim-prep output)"
for a in "${targs[@]}"; do
  case $a in --out|--out=*|--batch|--batch=*|--steps|--steps=*|--data|--data=*|--resume|--resume=*)
    die "do not pass $a to semaim-train: the sweep sets it per run";; esac
done
export SEMAIM_HOME=${SEMAIM_HOME:-$(cd "$here/.." && pwd)}
[ -x "$SEMAIM_HOME/bin/semaim-train" ] || die "$SEMAIM_HOME/bin/semaim-train: not built (run make)"
. "$here/mpi-net.sh" || die "$here/mpi-net.sh: cannot read it"
mpi_net_setup || die "$mpi_net"

counts=()
for ((n = 1; n < maxr; n *= 2)); do counts+=("$n"); done
counts+=("$maxr")
for n in "${counts[@]}"; do
  [[ $kinds == *strong* ]] && [ $((gbatch % n)) != 0 ] && die "--global-batch $gbatch is not divisible by $n ranks"
  for k in $kinds; do
    [ -e "$sweep/$k-np$n" ] && die "$sweep/$k-np$n already exists: use a new --sweep-dir (runs would resume or be refused)"
  done
done
if [ $dry = 0 ]; then
  command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node"
  mkdir -p "$sweep" logs || die "cannot create $sweep or logs/"
fi

submitted=() table=""
cancel_all() { [ ${#submitted[@]} -gt 0 ] && scancel "${submitted[@]}" 2>/dev/null; }
submit() {   # prints the job id
  if [ $dry = 1 ]; then { printf 'sbatch'; printf ' %q' "$@"; echo; } >&2; echo "DRYRUN"; return 0; fi
  local id; id=$(sbatch --parsable "$@") || return 1
  echo "${id%%;*}"
}
excl=(); [ $exclusive = 1 ] && excl=(--exclusive)
for k in $kinds; do
  for n in "${counts[@]}"; do
    if [ "$k" = strong ]; then b=$((gbatch / n)); else b=$batch; fi
    nodes=$(((n + tpn - 1) / tpn)); per=$((n < tpn ? n : tpn))
    id=$(submit --job-name="semaim-$k-np$n" --nodes="$nodes" --ntasks="$n" --ntasks-per-node="$per" \
           --cpus-per-task="$cpus" --time="$time" "${excl[@]}" "${sb[@]}" "$here/pretrain.sbatch" \
           --data "$data" --ckpt-every "$steps" "${targs[@]}" --batch "$b" --steps "$steps" --out "$sweep/$k-np$n") \
      || { cancel_all; die "sbatch failed for $k-np$n; cancelled the jobs already submitted"; }
    submitted+=("$id")
    table+="$k	$n	$nodes	$b	$((b * n))	$id"$'\n'
  done
done
dep=$(IFS=:; echo "${submitted[*]}")
rid=$(submit --dependency=afterok:"$dep" --kill-on-invalid-dep=yes "${sb[@]}" "$here/report.sbatch" \
        --runs "$sweep" --name "$name" --results "$results") \
  || { cancel_all; die "sbatch of the report job failed; cancelled the runs"; }
[ $dry = 1 ] && exit 0
table+="report	-	-	-	-	$rid"$'\n'
{ printf 'kind\tranks\tnodes\tbatch_per_rank\tglobal_batch\tjob_id\n'; printf '%s' "$table"; } >"$sweep/.sweep.tsv.tmp" \
  && mv "$sweep/.sweep.tsv.tmp" "$sweep/sweep.tsv" || echo "scaling.sh: $sweep/sweep.tsv: cannot write the job list" >&2
if [ $parsable = 1 ]; then echo "${submitted[*]} $rid"
else
  printf '%s' "$table" | awk -F'\t' '$1 != "report" {printf "scaling.sh: %-6s %3d ranks on %d node(s), batch %d/rank (global %d): job %s\n", $1, $2, $3, $4, $5, $6}'
  echo "scaling.sh: report job $rid after all runs succeed: $results/$name/scaling.{csv,json,md,svg}"
  echo "scaling.sh: job list in $sweep/sweep.tsv, logs in logs/"
fi
