#!/usr/bin/env bash
# kill -9 anywhere: a short 2-rank pretraining run is SIGKILLed again and again — rank 0,
# rank 1 or mpirun itself, after a random delay, right after a given step, or while a
# checkpoint is being written — and resumed each time. After every kill: every process of
# the job is gone within KILL_EXIT_BOUND seconds (nothing hangs), every step file under its
# final name loads strictly, metrics.jsonl holds whole lines (a torn last one at most), and
# the next launch resumes from the newest step file. At the end the parameters (the whole
# last step file) are bit-identical to an uninterrupted run's.
# Seeded: KILL_SEED (default 15; printed), KILL_ROUNDS (default 12) reproduce a failure.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
train=$PWD/bin/semaim-train check_ckpt=$PWD/build/tools/ckpt_check shim=$PWD/build/fault/libfault.so
for b in "$train" "$check_ckpt" "$shim"; do [ -x "$b" ] || { echo "FAIL: kill9.binaries ($b not built)"; exit 1; }; done
seed=${KILL_SEED:-15} rounds=${KILL_ROUNDS:-12} bound=${KILL_EXIT_BOUND:-30}
RANDOM=$seed
echo "kill9: seed $seed, $rounds rounds (KILL_SEED=$seed KILL_ROUNDS=$rounds reproduces)"
scratch w tkill
$PY tests/tools/make_shards.py "$w/data" --counts 40,37,41,38 --size 32 >/dev/null || { bad "kill9.make_shards"; exit 1; }
STEPS=120
R="--data $w/data --image 32 --patch 4 --width 64 --depth 2 --dec-depth 2 --heads 2 --batch 4 --steps $STEPS --ckpt-every 2
   --warmup-steps 5 --base-lr 1e-3 --log-every 1000 --check-every 10 --stall-timeout 60"
final=$(printf 'ckpt-%08d.bin' $STEPS)
# A slow disk for the step files (tests/fault/fault.c): every fsync of a checkpoint's
# temporary takes KILL_SLOW_FSYNC_MS more, so "during a checkpoint write" is a window the
# kill can hit on any machine, not a race against a fast disk. Results do not depend on it.
slow=(env LD_PRELOAD="$shim" FAULT_OP=fsync FAULT_PATH=/.ckpt- FAULT_COUNT=0 FAULT_SLOW_MS="${KILL_SLOW_FSYNC_MS:-100}")

t0=$(date +%s.%N)
"${slow[@]}" timeout 300 mpirun -np 2 "$train" $R --out "$w/ref" >"$w/ref.out" 2>&1 || { bad "kill9.reference_run ($(tail -1 "$w/ref.out"))"; exit 1; }
span=$($PY -c "import sys; print(max(1.0, float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
echo "kill9: the uninterrupted run takes ${span}s"

newest() { local f n=-1 s; for f in "$1"/ckpt-*.bin; do [ -e "$f" ] || continue; s=${f##*/ckpt-}; s=$((10#${s%.bin})); [ $s -gt $n ] && n=$s; done; echo $n; }
rank_pid() {   # mpirun pid, rank: the rank's pid, from its environment
  local p
  for p in $(pgrep -P "$1"); do tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }; done
}
steps_logged() { local n; n=$(grep -c '"event": "step"' "$1/metrics.jsonl" 2>/dev/null); echo "${n:-0}"; }
# a launch that got as far as its start-up line resumed from the newest step file there was
resumed_ok() {   # output, newest step before the launch (-1: none), which launch
  local line; line=$(grep -m1 -e 'resumed from' -e 'from scratch' "$1")
  [ -n "$line" ] || return 0   # killed during start-up, before it said
  if { [ "$2" -lt 0 ] && [[ $line == *"from scratch"* ]]; } || [[ $line == *"$(printf 'ckpt-%08d.bin' "$2") at step $2"* ]]; then
    resumes_ok=$((resumes_ok + 1))
  else bad "kill9.resume_of_$3_took_the_newest (newest was step $2: $line)"; fi
}
run=$w/run
hung=0 worst=0 interrupted_writes=0 kills=0 resumes_ok=0 round=0
while [ $round -lt "$rounds" ]; do
  round=$((round + 1))
  before=$(newest "$run")
  # a subshell around timeout around mpirun: its exit status comes back as a number, not as
  # bash's "Killed" notice; the ranks are mpirun's children
  ( "${slow[@]}" timeout 300 mpirun -np 2 "$train" $R --out "$run" >"$w/r$round.out" 2>&1; exit $? ) 2>/dev/null &
  guard=$!
  mp=""
  for _ in $(seq 1 200); do to=$(pgrep -P $guard -x timeout) && mp=$(pgrep -P "$to" -x mpirun) && break; mp=""; sleep 0.01; done
  victim=$(( RANDOM % 3 ))            # 0: rank 0, 1: rank 1, 2: mpirun
  how=$(( RANDOM % 3 ))               # 0: random delay, 1: after a step, 2: during a checkpoint write
  [ $how = 2 ] && [ $(( RANDOM % 3 )) != 0 ] && victim=0   # mostly the writer itself, mid-write
  target=""; moment=""
  # wait for both ranks (start-up), then for the moment
  for _ in $(seq 1 400); do [ -n "$mp" ] && [ -n "$(rank_pid $mp 0)" ] && [ -n "$(rank_pid $mp 1)" ] && break; sleep 0.02; done
  # the victim's pid first, so the kill follows the moment at once
  case $victim in 0) target=$(rank_pid "$mp" 0); who="rank 0";; 1) target=$(rank_pid "$mp" 1); who="rank 1";; 2) target=$mp; who=mpirun;; esac
  pids="$mp $(pgrep -P "$mp" 2>/dev/null | tr '\n' ' ')"
  case $how in
    0) d=$($PY -c "import sys; print(f'{0.1 + (int(sys.argv[1]) / 32767) * min(2.5, float(sys.argv[2]) / 8):.3f}')" $RANDOM "$span")
       moment="after ${d}s"; sleep "$d" ;;
    1) k=$(( $(steps_logged "$run") + 1 + RANDOM % 12 )); moment="at step line $k"
       for _ in $(seq 1 1500); do [ "$(steps_logged "$run")" -ge $k ] && break; kill -0 $guard 2>/dev/null || break; sleep 0.01; done ;;
    2) moment="during a checkpoint write"
       # past the resume (which removes a killed writer's temporary), then a write of this run
       n0=$(steps_logged "$run")
       for _ in $(seq 1 1500); do [ "$(steps_logged "$run")" -gt "$n0" ] && break; kill -0 $guard 2>/dev/null || break; sleep 0.01; done
       for _ in $(seq 1 3000); do compgen -G "$run/.ckpt-*.tmp.*" >/dev/null && break; kill -0 $guard 2>/dev/null || break; sleep 0.002; done ;;
  esac
  tk=$(date +%s.%N)
  if [ -z "$target" ] || ! kill -KILL "$target" 2>/dev/null; then
    { wait $guard; } 2>/dev/null; rc=$?
    echo "kill9: round $round: the run ended (exit $rc) before the kill ($who $moment)"
    record kill "round $round" victim="$who" moment="$moment" outcome="run finished first (exit $rc)" seconds_to_exit=0
    [ $rc = 0 ] && break
    continue
  fi
  kills=$((kills + 1))
  # every process of the job must be gone within the bound
  gone=0
  for _ in $(seq 1 $((bound * 20))); do
    alive=0; for p in $pids; do [ -e "/proc/$p" ] && [ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" != Z ] && alive=1; done
    [ $alive = 0 ] && { gone=1; break; }
    sleep 0.05
  done
  dt=$($PY -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$tk" "$(date +%s.%N)")
  if [ $gone = 0 ]; then hung=$((hung + 1)); for p in $pids; do kill -KILL "$p" 2>/dev/null; done; fi
  { wait $guard; } 2>/dev/null
  [ "$($PY -c "print(int(float('$dt') > float('$worst')))")" = 1 ] && worst=$dt
  stale=$(compgen -G "$run/.ckpt-*.tmp.*" | wc -l)
  [ "$stale" -gt 0 ] && interrupted_writes=$((interrupted_writes + 1))
  # what the kill left: whole step files only, whole metrics lines (a torn last one at most)
  okfiles=1
  for f in "$run"/ckpt-*.bin; do [ -e "$f" ] && { "$check_ckpt" "$f" >/dev/null 2>"$w/ck.err" || { okfiles=0; bad "kill9.round_${round}_broken_step_file ($(cat "$w/ck.err"))"; }; }; done
  $PY - "$run/metrics.jsonl" <<'EOF' || { okfiles=0; bad "kill9.round_${round}_metrics_broken_before_the_last_line"; }
import json, os, sys
p = sys.argv[1]
lines = open(p, "rb").read().split(b"\n") if os.path.exists(p) else []
for i, l in enumerate(lines[:-2]):
    json.loads(l)
EOF
  out="kill -9 $who $moment (step files before: newest $before): all gone in ${dt}s$([ $gone = 0 ] && echo ' — HUNG, killed')$([ "$stale" -gt 0 ] && echo ', a checkpoint write was cut short')"
  echo "kill9: round $round: $out"
  record kill "round $round" victim="$who" moment="$moment" seconds_to_exit="$dt" hung="$([ $gone = 0 ] && echo yes || echo no)" \
    write_cut_short="$([ "$stale" -gt 0 ] && echo yes || echo no)" files_whole="$([ $okfiles = 1 ] && echo yes || echo no)"
  resumed_ok "$w/r$round.out" "$before" "round $round"
done
# finish the run without kills, then the result
before=$(newest "$run")
"${slow[@]}" timeout 300 mpirun -np 2 "$train" $R --out "$run" >"$w/last.out" 2>&1 || bad "kill9.final_resume ($(tail -1 "$w/last.out"))"
resumed_ok "$w/last.out" "$before" "the last launch"
check "kill9.no_temporaries_left_after_the_last_resume" bash -c "! compgen -G '$run/.ckpt-*.tmp.*' >/dev/null"
record kill summary seed="$seed" rounds="$round" kills="$kills" hung="$hung" worst_seconds_to_exit="$worst" \
  writes_cut_short="$interrupted_writes" resumes_checked="$resumes_ok" bit_identical="$(cmp -s "$w/ref/$final" "$run/$final" && echo yes || echo no)"
check "kill9.nothing_hangs ($kills kills, every job gone within ${worst}s, bound ${bound}s)" [ $hung = 0 ]
check "kill9.some_kill_cut_a_checkpoint_write_short ($interrupted_writes)" [ $interrupted_writes -ge 1 ]
check "kill9.parameters_bit_identical_to_an_uninterrupted_run ($kills kills, $resumes_ok resumes checked)" cmp -s "$w/ref/$final" "$run/$final"
finish
