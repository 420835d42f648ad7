#!/usr/bin/env bash
# semaim-finetune, the second trainer on the shared run helpers (src/train/run.c):
# one gradient all-reduce per step over one buffer (counted in run_end), one step file with a
# kind, bit-exact resume, SIGUSR1 recorded like pretraining's, a pretraining checkpoint refused
# as a fine-tuning resume, the old `semaim-eval finetune` spelling still working, the run kind
# written into the run folder so semaim-report leaves fine-tuning runs out of a scaling series,
# and version-1 checkpoints still read.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
train=$PWD/bin/semaim-train ft=$PWD/bin/semaim-finetune ev=$PWD/bin/semaim-eval rep=$PWD/bin/semaim-report
for b in "$train" "$ft" "$ev" "$rep"; do [ -x "$b" ] || { echo "FAIL: finetune.binaries ($b not built)"; exit 1; }; done
scratch w tft
run() { local np=$1; shift; timeout 300 mpirun -np "$np" "$@"; }
small_shards "$w/data"
M="--image 32 --patch 8 --width 64 --depth 2 --dec-depth 1 --heads 2"
run 2 "$train" --data "$w/data" $M --batch 4 --steps 4 --warmup-steps 1 --log-every 100 --out "$w/pre" >/dev/null 2>"$w/pre.err" ||
  { bad "finetune.pretrain ($(head -1 "$w/pre.err"))"; exit 1; }
ck=$w/pre/ckpt-00000004.bin
F="--checkpoint $ck --data $w/data --batch 4 --steps 6 --warmup-steps 2 --classes 10 --eval-every 1000 --log-every 100"

# one all-reduce per step in both trainers, and what the run folder says about itself
run 2 "$ft" $F --out "$w/ft" >"$w/ft.out" 2>"$w/ft.err" || bad "finetune.run ($(head -1 "$w/ft.err"))"
if $PY - "$w/pre" "$w/ft" <<'PY'
import json, struct, sys, zlib
pre, ft = sys.argv[1], sys.argv[2]
def lines(d): return [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
for d, kind, steps in ((pre, "pretrain", 4), (ft, "finetune", 6)):
    ev = lines(d)
    start, end = ev[0], ev[-1]
    assert start["event"] == "run_start" and start["kind"] == kind, (d, start.get("kind"))
    assert json.load(open(f"{d}/settings.json"))["kind"] == kind, d
    assert end["event"] == "run_end" and end["grad_allreduces"] == steps == sum(e["event"] == "step" for e in ev), (d, end)
b = open(f"{ft}/ft-00000006.bin", "rb").read()
magic, version, hb = struct.unpack_from("<8sII", b, 0)
kind, precision, backend, classes = struct.unpack_from("<HBBI", b, 88)
nparams = struct.unpack_from("<q", b, 40)[0]
assert (magic, version, hb, kind, classes) == (b"SEMAIMCK", 2, 104, 1, 10), (magic, version, hb, kind, classes)
# the compute that wrote it: fp32 (the default) on the backend --gemm auto resolved to
s = json.load(open(f"{ft}/settings.json"))
assert precision == 1 and backend == {"openblas": 1, "onednn": 2}[s["gemm"]] and s["precision"] == "fp32", (precision, backend, s)
assert len(b) == 104 + 12 * nparams, "one file: header, parameters and both moments of the one buffer"
assert struct.unpack_from("<I", b, 100)[0] == zlib.crc32(b[:100]), "header CRC"
PY
then pass "finetune.one_allreduce_per_step_one_stepfile_and_kind"; else bad "finetune.one_allreduce_per_step_one_stepfile_and_kind"; fi

# stopped after 3 steps and resumed: the same bytes as the uninterrupted run
run 2 "$ft" $F --out "$w/part" --max-steps-this-run 3 >/dev/null 2>&1 || bad "finetune.first_half"
run 2 "$ft" $F --out "$w/part" >"$w/part.out" 2>&1 || bad "finetune.second_half"
if grep -q "resumed from .*ft-00000003.bin at step 3" "$w/part.out" && cmp -s "$w/ft/ft-00000006.bin" "$w/part/ft-00000006.bin"; then
  pass "finetune.resume_bit_exact"
else bad "finetune.resume_bit_exact"; fi

# SIGUSR1: the shared stop path, with the signal in run_end as pretraining records it
S="--checkpoint $ck --data $w/data --batch 4 --steps 400 --classes 10 --eval-every 1000 --log-every 1000 --ckpt-every 1000"
usr1_after "$w/sig" 3 "$w/sig.out" mpirun -np 2 "$ft" $S --out "$w/sig"; rc=$?
if [ $rc = 0 ] && grep -q 'stopping at step .* (signal)' "$w/sig.out" &&
   grep -q '"reason": "signal", "signal": "SIGUSR1"' "$w/sig/metrics.jsonl" && ls "$w/sig" | grep -q '^ft-'; then
  pass "finetune.sigusr1_checkpoints_and_records_the_signal"
else bad "finetune.sigusr1_checkpoints_and_records_the_signal (exit $rc)"; tail -3 "$w/sig.out" | sed 's/^/    | /'; fi

# a pretraining checkpoint is not a fine-tuning resume; one error line, exit 2
run 1 "$ft" $F --out "$w/x" --resume "$ck" >"$w/x.out" 2>"$w/x.err"; rc=$?
record_bad_input pretraining_checkpoint_as_fine_tuning_resume "$rc" "$w/x.err" semaim-finetune
if [ $rc = 2 ] && [ "$(grep -c '^semaim-finetune: ' "$w/x.err")" = 1 ] &&
   grep -q "is a pretraining checkpoint, not a fine-tuning one" "$w/x.err"; then pass "finetune.pretraining_checkpoint_refused_as_resume"
else bad "finetune.pretraining_checkpoint_refused_as_resume (exit $rc)"; head -3 "$w/x.err" | sed 's/^/    | /'; fi

# the old spelling runs the same program and says so
run 2 "$ev" finetune $F --out "$w/alias" >"$w/alias.out" 2>"$w/alias.err"; rc=$?
if [ $rc = 0 ] && grep -q "semaim-eval: note: finetune moved to semaim-finetune" "$w/alias.err" &&
   cmp -s "$w/ft/ft-00000006.bin" "$w/alias/ft-00000006.bin"; then pass "finetune.semaim_eval_finetune_runs_semaim_finetune"
else bad "finetune.semaim_eval_finetune_runs_semaim_finetune (exit $rc)"; head -3 "$w/alias.err" | sed 's/^/    | /'; fi

# a folder of runs with a fine-tuning run in it: the scaling report leaves it out and says so
mkdir -p "$w/runs"
cp -r "$w/pre" "$w/runs/pre"
cp -r "$w/ft" "$w/runs/ft"
"$rep" --runs "$w/runs" --name mixed --results "$w/results" >"$w/rep.out" 2>"$w/rep.err"; rc=$?
if [ $rc = 0 ] && grep -q "ft/metrics.jsonl: a finetune run, not pretraining; left out of the scaling report" "$w/rep.err" &&
   $PY -c "import json,sys; j=json.load(open('$w/results/mixed/scaling.json')); sys.exit(0 if all(r['name'] == 'pre' for r in j['runs']) and j['runs'] else 1)"; then
  pass "finetune.scaling_report_leaves_finetune_runs_out"
else bad "finetune.scaling_report_leaves_finetune_runs_out (exit $rc)"; head -3 "$w/rep.err" | sed 's/^/    | /'; fi

# a version-1 pretraining checkpoint (the format before the kind field) still resumes
mkdir -p "$w/v1"
$PY - "$ck" "$w/v1/ckpt-00000004.bin" <<'PY'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack_from("<q", b, 40)[0]
struct.pack_into("<I", b, 8, 1)                  # version 1
struct.pack_into("<Q", b, 88, 12 * n)            # v1 held payload_bytes where v2 holds kind, classes
struct.pack_into("<I", b, 100, zlib.crc32(bytes(b[:100])))
open(sys.argv[2], "wb").write(b)
PY
cp "$w/pre/settings.json" "$w/v1/" 2>/dev/null
run 2 "$train" --data "$w/data" $M --batch 4 --steps 6 --warmup-steps 1 --log-every 100 --out "$w/v1" >"$w/v1.out" 2>&1; rc=$?
if [ $rc = 0 ] && grep -q "resumed from .*ckpt-00000004.bin at step 4" "$w/v1.out" && [ -f "$w/v1/ckpt-00000006.bin" ]; then
  pass "finetune.version1_checkpoint_still_resumes"
else bad "finetune.version1_checkpoint_still_resumes (exit $rc)"; tail -3 "$w/v1.out" | sed 's/^/    | /'; fi
exit $fail
