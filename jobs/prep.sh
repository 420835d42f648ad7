#!/bin/bash
# Submits the whole data preparation: the conversion array (jobs/prep.sbatch) and the
# manifest/verify job (jobs/prep-manifest.sbatch) chained with --dependency=afterok.
#
#   jobs/prep.sh [--tasks N] [--cpus-per-task C] [--time T] [--sbatch OPT]... [--parsable] \
#                --src ROOT --out OUT [other semaim-prep convert flags]
#
#   --tasks N          array tasks sharing the shards (default 4)
#   --cpus-per-task C  decoding threads per task (default: jobs/prep.sbatch's, 2)
#   --time T           time limit per task (default: jobs/prep.sbatch's)
#   --sbatch OPT       extra sbatch option for both jobs, e.g. --sbatch --partition=cpu (repeatable)
#   --parsable         print only "ARRAY_JOB_ID MANIFEST_JOB_ID"
# Every other argument goes to `semaim-prep convert` (bin/semaim-prep convert --help); --src
# and --out are required. Run from the folder where logs/ should be (it is created).
# SEMAIM_HOME (default: this checkout) is passed to the jobs.
set -u
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "prep.sh: $*" >&2; exit 2; }
tasks=4 cpus="" time="" parsable=0
sb=() conv=()
while [ $# -gt 0 ]; do
  case $1 in
    --tasks) [ $# -ge 2 ] || die "--tasks needs a value"; tasks=$2; shift 2 ;;
    --cpus-per-task) [ $# -ge 2 ] || die "--cpus-per-task needs a value"; cpus=$2; shift 2 ;;
    --time) [ $# -ge 2 ] || die "--time needs a value"; time=$2; shift 2 ;;
    --sbatch) [ $# -ge 2 ] || die "--sbatch needs a value"; sb+=("$2"); shift 2 ;;
    --parsable) parsable=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) conv+=("$1"); shift ;;
  esac
done
case $tasks in ''|*[!0-9]*) die "--tasks must be a positive integer, not '$tasks'";; esac
[ "$tasks" -ge 1 ] || die "--tasks must be at least 1"
if [ -n "$cpus" ]; then case $cpus in ''|*[!0-9]*|0) die "--cpus-per-task must be a positive integer, not '$cpus'";; esac; fi
src="" out=""
for ((i = 0; i < ${#conv[@]}; i++)); do
  case ${conv[i]} in
    --src) src=${conv[i + 1]:-} ;; --src=*) src=${conv[i]#--src=} ;;
    --out) out=${conv[i + 1]:-} ;; --out=*) out=${conv[i]#--out=} ;;
  esac
done
[ -n "$src" ] || die "--src ROOT is required"
[ -n "$out" ] || die "--out OUT is required"
[ -d "$src" ] || die "$src: no such folder"
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node"
export SEMAIM_HOME=${SEMAIM_HOME:-$(cd "$here/.." && pwd)}
[ -x "$SEMAIM_HOME/bin/semaim-prep" ] || die "$SEMAIM_HOME/bin/semaim-prep: not built (run make)"
mkdir -p logs || die "logs: cannot create the log folder in $PWD"
opts=(--parsable --array=0-$((tasks - 1)) "${sb[@]}")
[ -n "$cpus" ] && opts+=(--cpus-per-task="$cpus")
[ -n "$time" ] && opts+=(--time="$time")
arr=$(sbatch "${opts[@]}" "$here/prep.sbatch" "${conv[@]}") || die "sbatch of the conversion array failed"
arr=${arr%%;*}
man=$(sbatch --parsable --dependency=afterok:"$arr" --kill-on-invalid-dep=yes "${sb[@]}" "$here/prep-manifest.sbatch" "$out") \
  || { scancel "$arr"; die "sbatch of the manifest job failed; cancelled the array $arr"; }
man=${man%%;*}
if [ $parsable = 1 ]; then echo "$arr $man"
else
  echo "prep.sh: conversion array job $arr ($tasks tasks, logs/semaim-prep-${arr}_<task>.out)"
  echo "prep.sh: manifest + verify job $man after all of them succeed (logs/semaim-prep-manifest-$man.out)"
fi
