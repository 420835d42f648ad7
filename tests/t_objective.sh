#!/usr/bin/env bash
# semaim-train's objective flags (--target, --blur, --norm-pix, --loss, --order-signal, --ema-order): bad values
# exit 2 with one line naming the flag and leave no run folder; settings-file lines work as flags and are recorded
# (settings.json, run_start, the checkpoint header); a run with a non-default objective resumes
# bit-exactly, and resuming it with another objective is refused. --ema-order: recorded, the EMA
# weights in the checkpoint (version 4), bit-exact resume, resume with or without it refused.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
train=$PWD/bin/semaim-train ckcheck=$PWD/build/tools/ckpt_check rep=$PWD/bin/semaim-report
for b in "$train" "$ckcheck" "$rep"; do [ -x "$b" ] || { echo "FAIL: objective.binaries ($b not built)"; exit 1; }; done
scratch work tobj
run() { local np=$1; shift; timeout 300 mpirun -np "$np" "$train" "$@"; }
small_shards "$work/data"
M="--data $work/data --image 32 --patch 8 --width 32 --depth 2 --dec-depth 1 --heads 2 --batch 4 --warmup-steps 1 --log-every 1000"

# 1. bad values: exit 2, exactly one error line (printed once, by rank 0, 2 ranks), no run folder
expect_bad() {   # name text args...
  local name=$1 text=$2; shift 2
  rm -rf "$work/x"
  run 2 $M "$@" --out "$work/x" >"$work/bad.out" 2>&1
  local rc=$? lines
  lines=$(grep -c '^semaim-train' "$work/bad.out")   # mpirun adds its own banner
  record_bad_input "$name" "$rc" "$work/bad.out" semaim-train
  if [ $rc = 2 ] && [ "$lines" = 1 ] && grep -qF -- "$text" "$work/bad.out" && [ ! -e "$work/x" ]; then
    pass "objective.bad_$name (exit 2: $(head -1 "$work/bad.out"))"
  else bad "objective.bad_$name (exit $rc, $lines lines, want 2, 1 and '$text'; run folder $([ -e "$work/x" ] && echo left || echo absent))"
    sed 's/^/    | /' "$work/bad.out" | head -4; fi
}
expect_bad blur_even "--blur: K must be odd, 1 to 63 (got 8)" --blur 8,1
expect_bad blur_zero "--blur: K must be odd, 1 to 63 (got 0)" --blur 0,1
expect_bad blur_too_big "--blur: K must be odd, 1 to 63 (got 65)" --blur 65,1
expect_bad blur_sigma_zero "--blur: SIGMA must be positive, at most 1e6 (got 0)" --blur 9,0
expect_bad blur_sigma_negative "--blur: SIGMA must be positive, at most 1e6 (got -1)" --blur 9,-1
expect_bad blur_garbage "--blur: 'soft' is not K,SIGMA (e.g. 9,1) or none" --blur soft
expect_bad blur_no_sigma "--blur: '9' is not K,SIGMA (e.g. 9,1) or none" --blur 9
expect_bad blur_trailing "--blur: '9,1x' is not K,SIGMA (e.g. 9,1) or none" --blur 9,1x
expect_bad blur_nan "--blur: '9,nan' is not K,SIGMA (e.g. 9,1) or none" --blur 9,nan
expect_bad loss_unknown "--loss must be l2 or l1, not 'huber'" --loss huber
expect_bad norm_pix_unknown "--norm-pix must be on or off, not 'yes'" --norm-pix yes
expect_bad order_signal_unknown "--order-signal must be cls, gap or self, not 'mean'" --order-signal mean
expect_bad target_unknown "--target must be pixel, inference, ema or teacher, not 'dino'" --target dino
printf 'blur = 4,1\n' >"$work/bad.cfg"
expect_bad blur_in_settings_file "--blur: K must be odd, 1 to 63 (got 4)" --config "$work/bad.cfg"
expect_bad ema_order_with_raster "--ema-order: the raster order does not come from the model (it needs semantic or similarity)" \
  --ema-order --order raster
expect_bad ema_order_with_center "--ema-order: the center order does not come from the model" --order center --ema-order
printf 'ema-order = maybe\n' >"$work/bad2.cfg"
expect_bad ema_order_in_settings_file "--ema-order takes true or false, not 'maybe'" --config "$work/bad2.cfg"

# 2. settings-file lines, recorded: settings.json, run_start, the checkpoint header
printf 'blur = 5,2\nloss = l1   # mean absolute\nnorm-pix = off\norder-signal = self\n' >"$work/obj.cfg"
R="$M --config $work/obj.cfg --steps 6 --ckpt-every 3 --resume auto"
run 1 $R --out "$work/full" >"$work/full.out" 2>&1 || bad "objective.run_with_settings_file ($(tail -1 "$work/full.out"))"
if $PY - "$work/full" <<'PY'
import json, struct, sys
d = sys.argv[1]
s = json.load(open(f"{d}/settings.json"))
assert (s["blur"], s["loss"], s["norm-pix"], s["order-signal"]) == ("5,2", "l1", "off", "self"), s
start = json.loads(open(f"{d}/metrics.jsonl").readline())
assert start["event"] == "run_start" and start["settings"]["blur"] == "5,2" and start["settings"]["loss"] == "l1", start
b = open(f"{d}/ckpt-00000006.bin", "rb").read()
version, hb = struct.unpack_from("<II", b, 8)
k, norm, loss, signal = struct.unpack_from("<iBBB", b, 96)
sigma = struct.unpack_from("<d", b, 104)[0]
target = b[112]
assert (version, hb, k, sigma, norm, loss, signal, target) == (4, 200, 5, 2.0, 0, 1, 2, 0), (version, hb, k, sigma, norm, loss, signal, target)
PY
then pass "objective.settings_file_recorded_in_settings_runstart_and_header"
else bad "objective.settings_file_recorded_in_settings_runstart_and_header"; fi
"$ckcheck" "$work/full/ckpt-00000006.bin" >/dev/null 2>"$work/ck.err" && pass "objective.ckpt_check_loads_it" ||
  bad "objective.ckpt_check_loads_it ($(head -1 "$work/ck.err"))"

# a resume into a run folder with another objective: exit 2 naming both, no checkpoint written
refused() {   # name text run-folder args...
  local name=$1 text=$2 dir=$3 before rc; shift 3
  before=$(ls "$dir"/ckpt-*.bin | wc -l)
  run 1 $M "$@" --out "$dir" >"$work/other.out" 2>&1
  rc=$?
  if [ $rc = 2 ] && grep -qF -- "$text" "$work/other.out" && [ "$(ls "$dir"/ckpt-*.bin | wc -l)" = "$before" ]; then
    pass "objective.$name"
  else bad "objective.$name (exit $rc)"; sed 's/^/    | /' "$work/other.out" | head -3; fi
}

# 3. stopped after 3 steps and resumed: the same bytes as the uninterrupted run
resume_matches() {   # name full-run-folder part-run-folder args...: step 6's file of both
  local name=$1 full=$2 part=$3; shift 3
  run 1 "$@" --out "$part" --max-steps-this-run 3 >/dev/null 2>&1 || bad "objective.${name}_first_half"
  run 1 "$@" --out "$part" >"$part.out" 2>&1 || bad "objective.${name}_second_half"
  if grep -q "resumed from .*ckpt-00000003.bin at step 3" "$part.out" &&
     cmp -s "$full/ckpt-00000006.bin" "$part/ckpt-00000006.bin"; then pass "objective.$name"
  else bad "objective.$name"; fi
}
resume_matches resume_bit_exact "$work/full" "$work/part" $R

# 4. the run's report draws its orders with the run's signal (self here) and names it
"$rep" run "$work/full" >"$work/rep.out" 2>"$work/rep.err"; rc=$?
if [ $rc = 0 ] && $PY - "$work/full/report" <<'PY'
import json, sys
d = sys.argv[1]
j = json.load(open(f"{d}/summary.json"))
assert j["orders"] and j["orders"]["signal"] == "self", j.get("orders")
assert "`--order-signal self`" in open(f"{d}/report.md").read() and "cls attention" in open(f"{d}/orders.svg").read()
PY
then pass "objective.report_orders_use_the_runs_signal"
else bad "objective.report_orders_use_the_runs_signal (exit $rc: $(head -2 "$work/rep.err"))"; fi

# 5. the objective matters (l1 and l2 from the same start differ) and a resume with another
#    one is refused, naming both
run 1 $M --steps 2 --out "$work/l2" >/dev/null 2>&1
l1=$(grep -m1 '"event": "step"' "$work/full/metrics.jsonl" | $PY -c 'import json,sys; print(json.loads(sys.stdin.read())["loss"])')
l2=$(grep -m1 '"event": "step"' "$work/l2/metrics.jsonl" | $PY -c 'import json,sys; print(json.loads(sys.stdin.read())["loss"])')
if [ -n "$l1" ] && [ -n "$l2" ] && [ "$l1" != "$l2" ]; then pass "objective.l1_and_l2_losses_differ ($l1 vs $l2)"
else bad "objective.l1_and_l2_losses_differ ('$l1' vs '$l2')"; fi
refused resume_with_other_objective_refused "checkpoint was trained with --target pixel --blur 5,2 --norm-pix off --loss l1 --order-signal self; this run has --target pixel --blur 9,1 --norm-pix on --loss l2 --order-signal cls" "$work/full" --steps 9
# 6. --ema-order: recorded in settings.json, run_start and the header (version 4, EMA byte 3:
#    weights + order), the EMA weights as a fourth buffer; stopped and resumed, bit-exact;
#    resuming it without --ema-order, or a run without it with it, refused naming both
E="$M --ema-order --order similarity --steps 6 --ckpt-every 3 --resume auto"
run 1 $E --out "$work/ema" >"$work/ema.out" 2>&1 || bad "objective.ema_order_run ($(tail -1 "$work/ema.out"))"
if $PY - "$work/ema" <<'PY'
import json, struct, sys
import numpy as np
d = sys.argv[1]
s = json.load(open(f"{d}/settings.json"))
assert s["ema-order"] is True and s["order"] == "similarity", s
start = json.loads(open(f"{d}/metrics.jsonl").readline())
assert start["event"] == "run_start" and start["settings"]["ema-order"] is True, start
b = open(f"{d}/ckpt-00000006.bin", "rb").read()
version, hb = struct.unpack_from("<II", b, 8)
n = struct.unpack_from("<q", b, 40)[0]
assert (version, hb, b[103]) == (4, 200, 3), (version, hb, b[103])
assert len(b) == 200 + 16 * n, (len(b), n)
w, ema = (np.frombuffer(b, np.float32, n, 200 + k * 4 * n) for k in (0, 3))
# the EMA lags the weights: close to them (decay 0.999, 6 steps), not equal
gap = float(np.abs(ema - w).max()) / float(np.abs(w).max())
assert 0 < gap < 0.05, gap
PY
then pass "objective.ema_order_recorded_and_ema_in_the_checkpoint"
else bad "objective.ema_order_recorded_and_ema_in_the_checkpoint"; fi
"$ckcheck" "$work/ema/ckpt-00000006.bin" >/dev/null 2>"$work/ck.err" && pass "objective.ckpt_check_loads_the_ema_checkpoint" ||
  bad "objective.ckpt_check_loads_the_ema_checkpoint ($(head -1 "$work/ck.err"))"
resume_matches ema_order_resume_bit_exact "$work/ema" "$work/emapart" $E
# the same in emulated bf16 (the EMA shadow's bf16 copy)
run 1 $E --precision bf16-emulated --out "$work/emab" >/dev/null 2>&1 || bad "objective.ema_bf16_run"
resume_matches ema_order_resume_bit_exact_bf16_emulated "$work/emab" "$work/emabpart" $E --precision bf16-emulated
refused resume_without_ema_order_refused "--order-signal cls --ema-order; this run has --target pixel --blur 9,1 --norm-pix on --loss l2 --order-signal cls (" "$work/ema" --order similarity --steps 9
refused resume_with_ema_order_refused "--order-signal cls; this run has --target pixel --blur 9,1 --norm-pix on --loss l2 --order-signal cls --ema-order (" "$work/l2" --ema-order --steps 4

# 6. the inference target (the model's own encoder tokens): a settings-file line, recorded in
#    settings.json, run_start and the header (kind byte 112 = 1; the head is D wide, so the
#    file is smaller than a pixel run's), resumed bit-exactly, a resume as pixel refused
printf 'target = inference\norder-signal = gap\n' >"$work/inf.cfg"
RI="$M --config $work/inf.cfg --steps 6 --ckpt-every 3 --resume auto"
run 1 $RI --out "$work/inf" >"$work/inf.out" 2>&1 || bad "objective.inference_run ($(tail -1 "$work/inf.out"))"
if $PY - "$work/inf" "$work/full" <<'PY'
import json, math, struct, sys
d, pix = sys.argv[1:]
s = json.load(open(f"{d}/settings.json"))
assert s["target"] == "inference" and s["order-signal"] == "gap", s
start = json.loads(open(f"{d}/metrics.jsonl").readline())
assert start["event"] == "run_start" and start["settings"]["target"] == "inference", start
b = open(f"{d}/ckpt-00000006.bin", "rb").read()
assert struct.unpack_from("<II", b, 8) == (4, 200) and b[112] == 1 and b[102] == 1, (struct.unpack_from("<II", b, 8), b[112])
# the head: fc2 [out, 4D] + bias [out]; out = D = 32 here, P·P·3 = 192 for pixels; 12 bytes a value
n, npix = struct.unpack_from("<q", b, 40)[0], struct.unpack_from("<q", open(f"{pix}/ckpt-00000006.bin", "rb").read(), 40)[0]
assert npix - n == (192 - 32) * (4 * 32 + 1), (n, npix)
losses = [json.loads(l)["loss"] for l in open(f"{d}/metrics.jsonl") if '"event": "step"' in l]
assert len(losses) == 6 and all(math.isfinite(x) and 0 <= x <= 4 for x in losses), losses
PY
then pass "objective.inference_target_recorded_in_settings_runstart_and_header"
else bad "objective.inference_target_recorded_in_settings_runstart_and_header"; fi
"$ckcheck" "$work/inf/ckpt-00000006.bin" >/dev/null 2>"$work/ck.err" && pass "objective.ckpt_check_loads_the_inference_checkpoint" ||
  bad "objective.ckpt_check_loads_the_inference_checkpoint ($(head -1 "$work/ck.err"))"
resume_matches inference_resume_bit_exact "$work/inf" "$work/infpart" $RI
refused resume_of_inference_as_pixel_refused "checkpoint was trained with --target inference --order-signal gap; this run has --target pixel --blur 9,1" "$work/inf" --order-signal gap --steps 9

# 7. the EMA target (the EMA's encoder tokens): recorded (kind byte 112 = 2, the EMA weights in
#    the file), resumed bit-exactly (alone and with --ema-order), a resume as inference refused
RE="$M --target ema --steps 6 --ckpt-every 3 --resume auto"
run 1 $RE --out "$work/emat" >"$work/emat.out" 2>&1 || bad "objective.ema_target_run ($(tail -1 "$work/emat.out"))"
if $PY - "$work/emat" <<'PY'
import json, struct, sys
d = sys.argv[1]
assert json.load(open(f"{d}/settings.json"))["target"] == "ema"
b = open(f"{d}/ckpt-00000006.bin", "rb").read()
n = struct.unpack_from("<q", b, 40)[0]
assert b[112] == 2 and b[103] == 1 and len(b) == 200 + 16 * n, (b[112], b[103], len(b), n)
PY
then pass "objective.ema_target_recorded_with_the_ema_weights"
else bad "objective.ema_target_recorded_with_the_ema_weights"; fi
resume_matches ema_target_resume_bit_exact "$work/emat" "$work/ematpart" $RE
run 1 $RE --ema-order --out "$work/ematord" >/dev/null 2>&1 || bad "objective.ema_target_ema_order_run"
resume_matches ema_target_ema_order_resume_bit_exact "$work/ematord" "$work/ematordpart" $RE --ema-order
refused resume_of_ema_target_as_inference_refused "checkpoint was trained with --target ema" "$work/emat" --target inference --steps 9
exit $fail
