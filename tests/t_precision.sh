#!/usr/bin/env bash
# --gemm and --precision on every program that runs the model:
# 1. refusals: an unknown backend or precision, bf16 without bf16 instructions (also under
#    oneDNN's ISA cap ONEDNN_MAX_CPU_ISA=AVX512_CORE), emulated bf16 on oneDNN, oneDNN in a
#    build without it — one line naming the flag, exit 2, in semaim-train, semaim-finetune and
#    semaim-eval;
# 2. the choice is recorded: settings.json and run_start (resolved names, oneDNN's ISA), the
#    checkpoint header's precision and backend bytes, eval.jsonl;
# 3. bit-exact resume in bf16 (emulated here unless the CPU has bf16; same backend, threads);
# 4. resuming with another precision or backend is allowed, with a note and resumed_compute in
#    run_start, and continues from the f32 weights;
# 5. fine-tuning in bf16 resumes bit-exactly too (its encoder is loaded, then synced to bf16).
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
train=$PWD/bin/semaim-train ft=$PWD/bin/semaim-finetune ev=$PWD/bin/semaim-eval
for b in "$train" "$ft" "$ev"; do [ -x "$b" ] || { echo "FAIL: precision.binaries ($b not built)"; exit 1; }; done
scratch w tprec
run() { local np=$1; shift; timeout 300 mpirun -np "$np" "$@"; }
small_shards "$w/data"
M="--data $w/data --image 32 --patch 8 --width 64 --depth 2 --dec-depth 2 --heads 2 --batch 4 --warmup-steps 2 --base-lr 1e-2 --log-every 1000"
onednn=0; grep -q '^onednn=1' build/gemm.cfg 2>/dev/null && onednn=1
# does this CPU run bf16 natively? (the trainer's own verdict)
native=0
run 1 "$train" $M --steps 1 --precision bf16 --out "$w/probe" >/dev/null 2>&1 && native=1
echo "oneDNN built: $onednn, native bf16: $native"
# bf16 as the tests run it: native where the CPU has it, else its emulation on OpenBLAS
if [ $native = 1 ]; then BF="--gemm onednn --precision bf16" bfname="onednn bf16"
else BF="--gemm openblas --precision bf16-emulated" bfname="openblas bf16-emulated"; fi

# 1. refusals
refuse() {   # name env want-text program args...
  local name=$1 envs=$2 text=$3; shift 3
  env $envs timeout 120 mpirun -np 2 "$@" >"$w/r.out" 2>"$w/r.err"
  local rc=$? lines
  lines=$(grep -c '^semaim-' "$w/r.err")   # ours, once (the rest is mpirun's banner)
  if [ $rc = 2 ] && [ "$lines" = 1 ] && grep -qF -- "$text" "$w/r.err"; then pass "precision.refused_$name ($(grep '^semaim-' "$w/r.err"))"
  else bad "precision.refused_$name (exit $rc, $lines lines, want '$text')"; head -3 "$w/r.err" | sed 's/^/    | /'; fi
}
refuse unknown_backend "" "--gemm: unknown GEMM backend 'mkl'" "$train" $M --steps 1 --gemm mkl --out "$w/x"
refuse unknown_precision "" "--precision: unknown precision 'fp16'" "$train" $M --steps 1 --precision fp16 --out "$w/x"
refuse emulated_on_onednn "" "bf16-emulated runs on OpenBLAS" "$train" $M --steps 1 --gemm onednn --precision bf16-emulated --out "$w/x"
refuse finetune_unknown "" "--gemm: unknown GEMM backend 'cuda'" "$ft" --at-init --weights x --data "$w/data" --gemm cuda --out "$w/x"
refuse eval_unknown "" "--precision: unknown precision 'int8'" "$ev" knn --at-init --checkpoint x --data "$w/data" --precision int8
if [ $onednn = 0 ]; then
  refuse onednn_not_built "" "this build has no oneDNN" "$train" $M --steps 1 --gemm onednn --out "$w/x"
fi
if [ $native = 0 ]; then
  refuse bf16_without_hardware "" "use fp32" "$train" $M --steps 1 --precision bf16 --out "$w/x"
  refuse bf16_finetune "" "use fp32" "$ft" --at-init --checkpoint x --data "$w/data" --precision bf16 --out "$w/x"
  refuse bf16_eval "" "use fp32" "$ev" features --at-init --checkpoint x --data "$w/data" --out "$w/x.h5" --precision bf16
fi
if [ $onednn = 1 ]; then   # oneDNN capped below its bf16 kernels: refused, and the line says to use fp32
  refuse bf16_under_isa_cap "ONEDNN_MAX_CPU_ISA=AVX512_CORE" "use fp32" "$train" $M --steps 1 --precision bf16 --out "$w/x"
  [ $native = 1 ] && { grep -q "capped" "$w/r.err" && pass "precision.cap_named" || bad "precision.cap_named"; }
  # auto under the cap falls back to fp32 and says so in the records
  ONEDNN_MAX_CPU_ISA=AVX512_CORE run 1 "$train" $M --steps 1 --precision auto --out "$w/capauto" >/dev/null 2>&1
  check precision.auto_under_cap_is_fp32 $PY -c "import json,sys; s=json.load(open('$w/capauto/settings.json')); sys.exit(0 if s['precision']=='fp32' and s['gemm']=='onednn' else 1)"
fi

# 2. recorded: settings.json, run_start, the checkpoint header
run 2 "$train" $M --steps 8 $BF --out "$w/full" >"$w/full.out" 2>"$w/full.err" || bad "precision.bf16_run ($(head -1 "$w/full.err"))"
if $PY - "$w/full" "$bfname" <<'PY'
import json, struct, sys
d, want = sys.argv[1], sys.argv[2].split()
s = json.load(open(f"{d}/settings.json"))
ev = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
st = ev[0]
assert [s["gemm"], s["precision"]] == want, s
assert st["event"] == "run_start" and [st["gemm"], st["precision"]] == want and st["settings"]["precision"] == want[1], st
assert st["onednn_isa"] == s["onednn_isa"] and st["resumed_compute"] is None and "onednn" in st["versions"], st
b = open(f"{d}/ckpt-00000008.bin", "rb").read()
kind, prec, backend = struct.unpack_from("<HBB", b, 88)
assert (kind, prec, backend) == (0, {"bf16": 2, "bf16-emulated": 3}[want[1]], {"openblas": 1, "onednn": 2}[want[0]]), (kind, prec, backend)
losses = [e["loss"] for e in ev if e["event"] == "step"]
assert len(losses) == 8 and all(x == x for x in losses) and losses[-1] < losses[0], losses
PY
then pass "precision.recorded_in_settings_run_start_and_checkpoint ($bfname)"; else bad "precision.recorded_in_settings_run_start_and_checkpoint"; fi
grep -q "$bfname" "$w/full.out" && pass "precision.named_in_the_start_line" || bad "precision.named_in_the_start_line"

# 3. bf16: stopped after 4 steps and resumed, the same bytes as the uninterrupted run
run 2 "$train" $M --steps 8 $BF --out "$w/part" --max-steps-this-run 4 >/dev/null 2>&1 || bad "precision.first_half"
run 2 "$train" $M --steps 8 $BF --out "$w/part" >"$w/part.out" 2>&1 || bad "precision.second_half"
if grep -q "resumed from .*ckpt-00000004.bin at step 4" "$w/part.out" && ! grep -q "note:" "$w/part.out" &&
   cmp -s "$w/full/ckpt-00000008.bin" "$w/part/ckpt-00000008.bin"; then pass "precision.bf16_resume_bit_exact"
else bad "precision.bf16_resume_bit_exact"; sed 's/^/    | /' "$w/part.out" | head -4; fi

# 4. another precision / backend on resume: allowed, with a note, recorded, and it goes on
for to in "--gemm openblas --precision fp32|openblas fp32" "$BF|$bfname"; do
  flags=${to%%|*} name=${to#*|}
  from=$([ "$name" = "openblas fp32" ] && echo "$bfname" || echo "openblas fp32")
  d=$w/switch_$(echo "$name" | tr ' ' _)
  mkdir -p "$d"
  if [ "$name" = "openblas fp32" ]; then cp "$w/part/ckpt-00000004.bin" "$d/"
  else run 2 "$train" $M --steps 4 --gemm openblas --precision fp32 --out "$d" >/dev/null 2>&1; fi
  run 2 "$train" $M --steps 8 $flags --out "$d" >"$d.out" 2>&1; rc=$?
  if [ $rc = 0 ] && grep -q "note: .*ckpt-00000004.bin was written with $from; continuing with $name" "$d.out" &&
     $PY - "$d" "$from" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(f"{sys.argv[1]}/metrics.jsonl")]
st = [e for e in ev if e["event"] == "run_start"][-1]
steps = [e for e in ev if e["event"] == "step"]
assert st["resumed_compute"] == sys.argv[2] and st["start_step"] == 4, st
assert steps[-1]["step"] == 8 and all(e["loss"] == e["loss"] for e in steps), steps
PY
  then pass "precision.resume_from_${from// /_}_with_${name// /_}_allowed_and_noted"
  else bad "precision.resume_from_${from// /_}_with_${name// /_}_allowed_and_noted (exit $rc)"; sed 's/^/    | /' "$d.out" | head -4; fi
done

# 5. fine-tuning in bf16: the encoder comes from a checkpoint; stopped and resumed, the same bytes
F="--checkpoint $w/full/ckpt-00000008.bin --data $w/data --batch 4 --steps 6 --warmup-steps 2 --classes 10 --eval-every 1000 --log-every 100 $BF"
run 2 "$ft" $F --out "$w/ft" >"$w/ft.out" 2>"$w/ft.err" || bad "precision.finetune_run ($(head -1 "$w/ft.err"))"
run 2 "$ft" $F --out "$w/ftp" --max-steps-this-run 3 >/dev/null 2>&1 || bad "precision.finetune_first_half"
run 2 "$ft" $F --out "$w/ftp" >"$w/ftp.out" 2>&1 || bad "precision.finetune_second_half"
if grep -q "resumed from .*ft-00000003.bin at step 3" "$w/ftp.out" && cmp -s "$w/ft/ft-00000006.bin" "$w/ftp/ft-00000006.bin" &&
   grep -q '"precision": "bf16' "$w/ft/settings.json"; then pass "precision.finetune_bf16_resume_bit_exact"
else bad "precision.finetune_bf16_resume_bit_exact"; fi

# the evaluation records what computed its features
run 2 "$ev" knn --checkpoint "$w/full/ckpt-00000008.bin" --data "$w/data" $BF --k 5 --out "$w/knn" >/dev/null 2>"$w/knn.err" ||
  bad "precision.knn_run ($(head -1 "$w/knn.err"))"
check precision.knn_records_its_compute $PY -c "
import json, sys
r = json.loads(open('$w/knn/eval.jsonl').readline())
sys.exit(0 if [r['gemm'], r['precision']] == '$bfname'.split() else 1)"
exit $fail
