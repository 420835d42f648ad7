#!/usr/bin/env bash
# The rooms of src/ depend one way (docs/architecture.md): every #include of a file in room R
# names a header of R itself or of a room below it, in the order
#   core < kernels < model < data < io < dist < eval < train < report < cmd
# (an API header include/semaim/X.h belongs to the room that implements it, below), and
# data_prep/ uses core only. A new header must be placed here, or this check fails.
. "$(dirname "$0")/lib.sh"
order="core kernels model data io dist eval train report cmd"
declare -A api=(
  [err]=core [options]=core [rng]=core
  [compute]=kernels
  [config]=model [params]=model [acts]=model [orders]=model [model]=model [encoder]=model [finetune]=model [optim]=model
  [teacher]=model [ema]=model
  [shards]=data [loader]=data
  [safetensors]=io [model_io]=io [checkpoint]=io [featfile]=io [metrics]=io [teacher_io]=io
  [allreduce]=dist [dist]=dist
  [eval]=eval [source]=eval [monitor]=eval
  [run]=train [train_step]=train [watchdog]=train
  [report]=report)
level() { local i=0 r; for r in $order; do [ "$r" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo 99; }
n=0
for f in src/*/*.[ch] include/semaim/*.h data_prep/*.[ch]; do
  case $f in
    src/*) room=${f#src/}; room=${room%%/*} ;;
    include/semaim/*) b=${f##*/}; b=${b%.h}; room=${api[$b]:-?} ;;
    data_prep/*) room=prep ;;
  esac
  if [ "$room" = "?" ]; then bad "layers.${f} (no room for this API header: add it to tests/t_layers.sh)"; continue; fi
  while IFS= read -r inc; do
    case $inc in
      semaim/*) b=${inc#semaim/}; b=${b%.h}; to=${api[$b]:-?} ;;
      core/*|kernels/*|model/*|data/*|io/*|dist/*|eval/*|train/*|report/*) to=${inc%%/*} ;;
      *) continue ;;
    esac
    n=$((n + 1))
    if [ "$room" = prep ]; then
      [ "$to" = core ] || bad "layers.$f includes $inc: data_prep uses the core room only"
    elif [ "$(level "$to")" -gt "$(level "$room")" ]; then
      bad "layers.$f ($room) includes $inc ($to): a room may only use itself and the rooms below it"
    fi
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
done
[ $fail = 0 ] && pass "layers.one_way ($n includes checked)"
exit $fail
