#!/usr/bin/env bash
# A shard that changes or vanishes under a running job (2 ranks): removed, cut short,
# rewritten in place, replaced by another shard of the same shape, or only touched. The
# loader checks each shard's size and modification time against the scan's when it opens
# it and after every read (src/data/shards.c), so each case must end within a bound with
# exit 2 and one error line naming the shard; the checkpoints written before stay whole.
# Never zeros or another file's images read as data.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
train=$PWD/bin/semaim-train check_ckpt=$PWD/build/tools/ckpt_check
for b in "$train" "$check_ckpt"; do [ -x "$b" ] || { echo "FAIL: shard_change.binaries ($b not built)"; exit 1; }; done
scratch w tshard
$PY tests/tools/make_shards.py "$w/good" --counts 40,37,41,38 --size 16 >/dev/null &&
$PY tests/tools/make_shards.py "$w/other" --counts 40,37,41,38 --size 16 --seed 7 >/dev/null || { bad "shard_change.make_shards"; exit 1; }
M="--image 16 --patch 8 --width 16 --depth 1 --dec-depth 1 --heads 1 --batch 4 --warmup-steps 1 --log-every 100000 --steps 100000 --ckpt-every 5"
victim=train/train-00002-of-00004.h5
steps() { local n; n=$(grep -c '"event": "step"' "$1/metrics.jsonl" 2>/dev/null); echo "${n:-0}"; }
change() {   # name what command-on-the-shard...
  local name=$1 what=$2; shift 2
  rm -rf "$w/data" "$w/run"; cp -r "$w/good" "$w/data"
  timeout 60 mpirun -np 2 "$train" --data "$w/data" $M --out "$w/run" >"$w/out" 2>"$w/err" &
  local mp=$! t0
  for _ in $(seq 1 600); do [ "$(steps "$w/run")" -ge 8 ] && break; sleep 0.05; done
  t0=$(date +%s)
  "$@" "$w/data/$victim"
  wait $mp; local rc=$? dt=$(( $(date +%s) - t0 ))
  local lines; lines=$(grep -c '^semaim-train: ' "$w/err")
  record_bad_input "shard $what under a running job" "$rc" "$w/err" "semaim-train (2 ranks)"
  if [ $rc = 2 ] && [ "$lines" = 1 ] && grep -q "^semaim-train: .*shard $w/data/$victim: " "$w/err" && [ $dt -le 60 ] &&
     "$check_ckpt" "$w"/run/ckpt-*.bin >/dev/null 2>&1; then
    pass "shard_change.$name (exit 2 ${dt}s after: $(grep '^semaim-train: ' "$w/err" | cut -c1-170))"
  else bad "shard_change.$name (exit $rc after ${dt}s, $lines error lines)"; sed 's/^/    | /' "$w/err" | tail -3; fi
}
cut_half() { truncate -s $(( $(stat -c %s "$1") / 2 )) "$1"; }
scribble() { printf 'scribble scribble scribble' | dd of="$1" bs=1 seek=4000 conv=notrunc status=none; }
replace() { cp "$w/other/$victim" "$1.new" && mv "$1.new" "$1"; }
change removed "removed" rm -f
change cut_short "cut short" cut_half
change rewritten_in_place "rewritten in place" scribble
change replaced "replaced by another of the same shape" replace
change touched "touched (modification time only)" touch
finish
