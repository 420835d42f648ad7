#!/bin/bash
# sbatch, after creating the log folders the job scripts write to: Slurm fails a job whose
# --output folder does not exist, without writing any log, so create them first.
#   jobs/submit.sh [sbatch options] jobs/SCRIPT.sbatch [script arguments]
# Creates logs/ (the default of every jobs/*.sbatch) and the folder of an explicit
# -o/--output/-e/--error, then runs sbatch with the same arguments.
set -u
mkdir -p logs || { echo "submit: logs: cannot create the log folder in $PWD" >&2; exit 2; }
prev=""
for a in "$@"; do
  f=""
  case $prev in -o|--output|-e|--error) f=$a ;; esac
  case $a in --output=*|--error=*) f=${a#*=} ;; esac
  if [ -n "$f" ] && [[ $f == */* ]]; then
    mkdir -p "${f%/*}" || { echo "submit: ${f%/*}: cannot create the log folder" >&2; exit 2; }
  fi
  prev=$a
done
exec sbatch "$@"
