#!/usr/bin/env bash
# The training job under mpirun: the same global batch gives the same losses on 1, 2 and 4
# ranks; a stopped run (step limit or SIGUSR1) resumes bit-exactly; a corrupt newest
# checkpoint falls back to the previous one; bad input fails on every rank without hanging.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
train=$PWD/bin/semaim-train
py=$PY
if [ ! -x "$train" ]; then echo "FAIL: train_binary ($train not built)"; exit 1; fi
scratch work ttrain
run() { local np=$1; shift; timeout 300 mpirun -np "$np" "$train" "$@"; }
losses() { grep '"event": "step"' "$1/metrics.jsonl" | $py -c 'import sys, json; print(" ".join(str(json.loads(l)["loss"]) for l in sys.stdin))'; }

$py tests/tools/make_shards.py "$work/data" --counts 40,37,41,38 --size 40 || { bad "make_shards"; exit 1; }
M="--data $work/data --image 32 --patch 8 --width 64 --depth 2 --dec-depth 2 --heads 2 --warmup-steps 2 --base-lr 1e-2 --log-every 1000"

# 1. same global batch (16) on 1, 2 and 4 ranks: same losses for 5 steps
for n in 1 2 4; do
  run $n $M --steps 5 --batch $((16 / n)) --assign deal --resume no --out "$work/eq$n" >/dev/null 2>"$work/eq$n.err" \
    || { bad "ranks_equivalence_run_np$n ($(head -1 "$work/eq$n.err"))"; }
done
if $py - "$work" <<'EOF'
import json, sys
w = sys.argv[1]
L = {n: [json.loads(l)["loss"] for l in open(f"{w}/eq{n}/metrics.jsonl") if '"event": "step"' in l] for n in (1, 2, 4)}
assert len(L[1]) == 5, L
for n in (2, 4):
    assert len(L[n]) == 5, L
    for a, b in zip(L[1], L[n]):
        assert abs(a - b) <= 1e-5 * abs(a), (n, L[1], L[n])
print("losses", L[1])
EOF
then pass "ranks_equivalence_1_2_4_same_losses"; else bad "ranks_equivalence_1_2_4_same_losses"; fi

# 1b. a run shorter than the default warmup (30 epochs) still reaches its peak lr: the warmup is
# at most a fifth of the run (10 steps: 2), as in fine-tuning; uncapped, the lr would still be
# rising at the end (30 epochs of 10 steps each here)
run 2 ${M/--warmup-steps 2 /} --steps 10 --batch 4 --out "$work/warm" >/dev/null 2>"$work/warm.err" || bad "short_run ($(head -1 "$work/warm.err"))"
if $py tests/tools/lr_peak_check.py "$work/warm" 10 2; then pass "short_pretraining_run_reaches_peak_lr"; else bad "short_pretraining_run_reaches_peak_lr"; fi

# 2. uninterrupted vs stopped after 7 steps and resumed: identical final checkpoint bytes
R="$M --steps 12 --batch 8 --ckpt-every 5 --check-every 3"
run 2 $R --out "$work/full" >/dev/null 2>&1 || bad "resume_reference_run"
run 2 $R --out "$work/part" --max-steps-this-run 7 >/dev/null 2>&1 || bad "resume_first_half"
[ -f "$work/part/ckpt-00000007.bin" ] && [ ! -f "$work/part/ckpt-00000012.bin" ] || bad "resume_first_half_stopped_at_7"
run 2 $R --out "$work/part" > "$work/part.out" 2>&1 || bad "resume_second_half"
if grep -q "resumed from .*ckpt-00000007.bin at step 7" "$work/part.out" &&
   cmp -s "$work/full/ckpt-00000012.bin" "$work/part/ckpt-00000012.bin"; then
  pass "resume_bit_exact_after_step_limit"
else bad "resume_bit_exact_after_step_limit"; fi

# 3. a corrupt newest checkpoint: resume falls back to the previous one, still bit-exact
cp -r "$work/part" "$work/corrupt"
rm "$work/corrupt/ckpt-00000012.bin"
printf 'XXXX' | dd of="$work/corrupt/ckpt-00000010.bin" bs=1 seek=5000 conv=notrunc status=none
run 2 $R --out "$work/corrupt" > "$work/corrupt.out" 2>&1
if grep -q "skipping checkpoint: .*ckpt-00000010.bin: payload CRC mismatch" "$work/corrupt.out" &&
   grep -q "resumed from .*ckpt-00000007.bin" "$work/corrupt.out" &&
   cmp -s "$work/full/ckpt-00000012.bin" "$work/corrupt/ckpt-00000012.bin"; then
  pass "corrupt_newest_checkpoint_falls_back"
else bad "corrupt_newest_checkpoint_falls_back"; sed 's/^/    /' "$work/corrupt.out" | head -5; fi

# 4. SIGUSR1 mid-run: the ranks agree at a step boundary, checkpoint, exit 0; the resumed run
#    ends bit-exactly where an uninterrupted one does
S="$M --steps 150 --batch 8 --ckpt-every 1000 --check-every 50"
run 2 $S --out "$work/sigref" >/dev/null 2>&1 || bad "signal_reference_run"
# mpirun itself (not a wrapper) gets the signal and forwards it to the ranks, as srun does
usr1_after "$work/sig" 5 "$work/sig.out" mpirun -np 2 "$train" $S --out "$work/sig"
rc=$?
stopped=$(ls "$work/sig" | grep -c 'ckpt-')
if [ $rc = 0 ] && grep -q 'stopping at step .* (signal)' "$work/sig.out" && [ "$stopped" = 1 ] &&
   grep -q '"reason": "signal", "signal": "SIGUSR1"' "$work/sig/metrics.jsonl"; then
  pass "sigusr1_checkpoints_and_exits_0 ($(grep -o 'stopping at step [0-9]*' "$work/sig.out"))"
else bad "sigusr1_checkpoints_and_exits_0 (exit $rc)"; sed 's/^/    /' "$work/sig.out" | tail -3; fi
run 2 $S --out "$work/sig" > "$work/sig2.out" 2>&1
if grep -q "resumed from .*ckpt-" "$work/sig2.out" && cmp -s "$work/sigref/ckpt-00000150.bin" "$work/sig/ckpt-00000150.bin"; then pass "sigusr1_resume_bit_exact"
else bad "sigusr1_resume_bit_exact"; fi

# 5. a NaN in the weights (a checkpoint that verifies): exit 3 with a message, and the
#    checkpoint it resumed from stays
mkdir -p "$work/nan"
$py tests/tools/poison_ckpt.py "$work/full/ckpt-00000010.bin" "$work/nan/ckpt-00000010.bin"
sum_before=$(md5sum < "$work/nan/ckpt-00000010.bin")
run 2 $R --out "$work/nan" > "$work/nan.out" 2>&1
rc=$?
if [ $rc = 3 ] && grep -q "loss is NaN at step 10; stopping (last good checkpoint kept)" "$work/nan.out" &&
   [ "$(md5sum < "$work/nan/ckpt-00000010.bin")" = "$sum_before" ] && [ "$(ls "$work/nan" | grep -c ckpt-)" = 1 ] &&
   grep -q '"reason": "non-finite loss"' "$work/nan/metrics.jsonl"; then pass "nan_loss_stops_with_exit_3"
else bad "nan_loss_stops_with_exit_3 (exit $rc)"; sed 's/^/    /' "$work/nan.out" | head -4; fi

# 6. settings file, overridden by flags, recorded in the run folder
cat > "$work/cfg.txt" <<EOF
# a settings file
batch = 4
steps = 2
order = raster   # trailing comment
EOF
run 1 $M --config "$work/cfg.txt" --steps 3 --out "$work/cfg" >/dev/null 2>&1
if $py -c "import json,sys; s=json.load(open('$work/cfg/settings.json')); assert (s['batch'],s['steps'],s['order'])==(4,3,'raster'), s" &&
   [ "$(grep -c '"event": "step"' "$work/cfg/metrics.jsonl")" = 3 ]; then pass "config_file_and_flag_override"
else bad "config_file_and_flag_override"; fi

# 7. bad input: exit code, a one-line message naming the problem, no hang
expect_fail() {   # name want-exit want-text np args...
  local name=$1 want=$2 text=$3 np=$4; shift 4
  local t0=$(date +%s)
  timeout 120 mpirun -np "$np" "$train" "$@" >"$work/bad.out" 2>&1
  local rc=$? dt=$(( $(date +%s) - t0 ))
  grep -F -- "$text" "$work/bad.out" | head -n 1 >"$work/bad.line"; [ -s "$work/bad.line" ] || grep '^semaim-train' "$work/bad.out" >"$work/bad.line"
  record_bad_input "$name" "$rc" "$work/bad.line" semaim-train
  if [ $rc = "$want" ] && grep -qF -- "$text" "$work/bad.out"; then pass "bad_input_$name (exit $rc in ${dt}s)"
  else bad "bad_input_$name (exit $rc, want $want and '$text')"; sed 's/^/    /' "$work/bad.out" | head -4; fi
}
expect_fail no_data 2 "--data is required" 2 --out "$work/x"
expect_fail bad_heads 2 "width 64 is not divisible by heads 3" 2 $M --heads 3 --out "$work/x"
expect_fail unknown_flag 2 "unknown option '--bogus'" 2 $M --bogus 1 --out "$work/x"
expect_fail bad_number 2 "--batch needs a number, not 'eight'" 2 $M --batch eight --out "$work/x"
expect_fail batch_zero 2 "--batch 0 is out of range" 2 $M --batch 0 --out "$work/x"
expect_fail bad_order 2 "unknown --order 'spiral'" 2 $M --order spiral --out "$work/x"
printf 'batch: 4\n' > "$work/badcfg.txt"
expect_fail bad_config_line 2 "badcfg.txt:1: expected 'name = value'" 2 $M --config "$work/badcfg.txt" --out "$work/x"
expect_fail missing_config 2 "cannot open config file" 2 $M --config "$work/nope.txt" --out "$work/x"
mkdir -p "$work/empty/train"
expect_fail no_shards 2 "no shards" 2 --data "$work/empty" --image 32 --patch 8 --width 64 --depth 2 --dec-depth 2 --heads 2 --out "$work/x"
expect_fail missing_data_dir 2 "$work/nowhere" 2 --data "$work/nowhere" --image 32 --patch 8 --width 64 --depth 2 --dec-depth 2 --heads 2 --out "$work/x"
cp -r "$work/data" "$work/corruptdata"
printf 'garbage garbage garbage' | dd of="$work/corruptdata/train/train-00002-of-00004.h5" conv=notrunc status=none
expect_fail corrupt_shard 2 "train-00002-of-00004.h5" 2 ${M/$work\/data/$work/corruptdata} --out "$work/x"
$py tests/tools/make_shards.py "$work/mixed" --counts 40,37 --size 40
$py tests/tools/make_shards.py "$work/mixed2" --counts 40,37 --size 48
mv "$work/mixed2/train/train-00001-of-00002.h5" "$work/mixed/train/train-00001-of-00002.h5"
expect_fail different_image_sizes 2 "train-00001-of-00002.h5" 2 ${M/$work\/data/$work/mixed} --out "$work/x"
expect_fail checkpoint_of_other_config 2 "checkpoint is for another model" 2 ${M/--width 64/--width 32} --steps 12 --batch 8 --out "$work/full"
expect_fail checkpoint_of_other_world 2 "checkpoint was written with seed 0, 2 ranks" 1 $R --out "$work/full" --steps 20
expect_fail too_few_images 2 "fewer than one batch of 100" 2 $M --batch 100 --out "$work/x"
exit $fail
