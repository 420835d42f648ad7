#!/usr/bin/env bash
# semaim-finetune, the second trainer on the shared run helpers (src/train/run.c):
# one gradient all-reduce per step over one buffer (counted in run_end), one step file with a
# kind, bit-exact resume with the whole recipe on (its defaults), the recipe in settings.json,
# the same losses on 1, 2 and 4 ranks with it, a resume with another recipe and bad recipe
# flags refused, the fine-tuned classifier exported in timm's names (the reference ViT gives
# its logits), SIGUSR1 recorded like pretraining's, a pretraining checkpoint refused as a
# fine-tuning resume, the old `semaim-eval finetune` spelling still working, the run kind
# written into the run folder so semaim-report leaves fine-tuning runs out of a scaling series,
# version-1 checkpoints still read, and --at-init starting from the checkpoint's seed at
# initialisation (the encoder semaim-eval --at-init scores), not from --ft-seed.
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

# a run shorter than the recipe's 20 warmup epochs still reaches its peak lr: the warmup is at
# most a fifth of the run (10 steps: 2), then the cosine (an uncapped warmup of 20 epochs kept
# the lr rising for the whole run, which sank short fine-tunes below the frozen features)
run 2 "$ft" --checkpoint "$ck" --data "$w/data" --batch 4 --steps 10 --classes 10 --eval-every 1000 --log-every 100 \
  --out "$w/ftw" >/dev/null 2>"$w/ftw.err" || bad "finetune.short_run ($(head -1 "$w/ftw.err"))"
if $PY tests/tools/lr_peak_check.py "$w/ftw" 10 2; then pass "finetune.short_run_reaches_peak_lr"; else bad "finetune.short_run_reaches_peak_lr"; fi

# --at-init starts from the checkpoint's seed at initialisation, the encoder `semaim-eval
# --at-init` scores, whatever --ft-seed (which draws only the head, order and augmentation):
# at lr 0 the fine-tuning checkpoint's encoder equals eval's at-init export bit for bit, and
# differs from the pretrained one (the old code drew the encoder from --ft-seed 5 here)
run 1 "$ft" --checkpoint "$ck" --at-init --ft-seed 5 --data "$w/data" --batch 4 --steps 1 --base-lr 0 --min-lr 0 \
  --classes 10 --eval-every 1000 --log-every 100 --out "$w/ai" >/dev/null 2>"$w/ai.err" || bad "finetune.at_init_run ($(head -1 "$w/ai.err"))"
"$ev" export --checkpoint "$w/ai/ft-00000001.bin" --out "$w/ai.safetensors" >/dev/null 2>&1 || bad "finetune.at_init_export_ft"
"$ev" export --checkpoint "$ck" --at-init --out "$w/init.safetensors" >/dev/null 2>&1 || bad "finetune.at_init_export_eval"
"$ev" export --checkpoint "$ck" --out "$w/trained.safetensors" >/dev/null 2>&1 || bad "finetune.at_init_export_trained"
if PYTHONPATH=tests/ref $PY - "$w/ai.safetensors" "$w/init.safetensors" "$w/trained.safetensors" <<'PY'
import sys, numpy as np, safetensors_io as st
ft, init, trained = (st.read(p)[0] for p in sys.argv[1:4])
names = [n for n in init if not n.startswith("norm.")]   # the final norm is pretraining's, not the classifier's
assert len(names) > 10 and all(n in ft for n in names), sorted(set(names) - set(ft))
same = [n for n in names if np.array_equal(ft[n], init[n])]
assert same == names, sorted(set(names) - set(same))
assert any(not np.array_equal(init[n], trained[n]) for n in names if n != "pos_embed"), "the checkpoint is its init"
PY
then pass "finetune.at_init_encoder_is_evals_at_init"; else bad "finetune.at_init_encoder_is_evals_at_init"; fi

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
assert (magic, version, hb, kind, classes) == (b"SEMAIMCK", 4, 200, 1, 10), (magic, version, hb, kind, classes)
# the compute that wrote it: fp32 (the default) on the backend --gemm auto resolved to
s = json.load(open(f"{ft}/settings.json"))
assert precision == 1 and backend == {"openblas": 1, "onednn": 2}[s["gemm"]] and s["precision"] == "fp32", (precision, backend, s)
assert len(b) == 200 + 12 * nparams, "one file: header, parameters and both moments of the one buffer"
assert struct.unpack_from("<I", b, 196)[0] == zlib.crc32(b[:196]), "header CRC"
PY
then pass "finetune.one_allreduce_per_step_one_stepfile_and_kind"; else bad "finetune.one_allreduce_per_step_one_stepfile_and_kind"; fi

# stopped after 3 steps and resumed: the same bytes as the uninterrupted run
run 2 "$ft" $F --out "$w/part" --max-steps-this-run 3 >/dev/null 2>&1 || bad "finetune.first_half"
run 2 "$ft" $F --out "$w/part" >"$w/part.out" 2>&1 || bad "finetune.second_half"
if grep -q "resumed from .*ft-00000003.bin at step 3" "$w/part.out" && cmp -s "$w/ft/ft-00000006.bin" "$w/part/ft-00000006.bin"; then
  pass "finetune.resume_bit_exact"
else bad "finetune.resume_bit_exact"; fi

# the recipe (SPEC §5) is on by default (the resume above ran with it) and in settings.json
if $PY - "$w/ft/settings.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
want = {"randaug": "rand-m9-mstd0.5-inc1", "reprob": 0.25, "remode": "pixel", "crop-scale": 0.08, "mixup": 0.8,
        "cutmix": 1.0, "mixup-switch-prob": 0.5, "mixup-prob": 1.0, "smoothing": 0.1}
assert all(s.get(k) == v for k, v in want.items()), {k: s.get(k) for k in want}
PY
then pass "finetune.recipe_defaults_in_settings"; else bad "finetune.recipe_defaults_in_settings"; fi

# with the recipe on, 1, 2 and 4 ranks with the same global batch give the same losses (dealt
# samples; Mixup pairs across mirror ranks as timm's flip of the global batch); a larger lr, so
# the losses depend on the images; and the recipe changes them
losses() { $PY -c 'import json,sys; print(" ".join(str(json.loads(l)["loss"]) for l in open(sys.argv[1]) if "\"event\": \"step\"" in l))' "$1/metrics.jsonl"; }
Q="--checkpoint $ck --data $w/data --steps 6 --warmup-steps 0 --base-lr 0.3 --classes 10 --eval-every 1000 --log-every 100 --assign deal"
for n in 1 2 4; do
  run $n "$ft" $Q --batch $((8 / n)) --out "$w/eq$n" >/dev/null 2>"$w/eq$n.err" || bad "finetune.ranks_run_np$n ($(head -1 "$w/eq$n.err"))"
done
run 2 "$ft" $Q --batch 4 --randaug none --reprob 0 --mixup 0 --cutmix 0 --out "$w/eqoff" >/dev/null 2>&1 || bad "finetune.recipe_off_run"
run 2 "$ft" $Q --batch 4 --mixup 0 --cutmix 0 --out "$w/eqnomix" >/dev/null 2>&1 || bad "finetune.recipe_nomix_run"
if $PY - "$(losses "$w/eq1")" "$(losses "$w/eq2")" "$(losses "$w/eq4")" "$(losses "$w/eqoff")" "$(losses "$w/eqnomix")" <<'PY'
import sys
L1, L2, L4, off, nomix = ([float(x) for x in a.split()] for a in sys.argv[1:6])
assert len(L1) == 6 and len(L2) == 6 and len(L4) == 6, (L1, L2, L4)
for L in (L2, L4):
    assert all(abs(a - b) <= 1e-5 * abs(a) for a, b in zip(L1, L))
for other in (off, nomix):
    assert max(abs(a - b) for a, b in zip(L2, other)) > 1e-3, (L2, other)
print("losses", L1)
PY
then pass "finetune.recipe_ranks_1_2_4_same_losses_and_the_recipe_counts"
else bad "finetune.recipe_ranks_1_2_4_same_losses_and_the_recipe_counts"; fi

# the fine-tuned classifier exported in timm's names (global_pool='avg': fc_norm, head, no
# norm) loads strictly into the reference ViT and gives semaim's own logits on the val split
"$ev" export --checkpoint "$w/eq2/ft-00000006.bin" --out "$w/cls.safetensors" >"$w/cls.out" 2>"$w/cls.err" ||
  bad "finetune.export_classifier ($(head -1 "$w/cls.err"))"
build/tools/ft_logits "$w/eq2/ft-00000006.bin" "$w/data" val "$w/logits.bin" >/dev/null 2>"$w/lg.err" ||
  bad "finetune.classifier_logits ($(head -1 "$w/lg.err"))"
$PY tests/ref/vit_timm.py check-classifier --weights "$w/cls.safetensors" --shards "$w/data" --logits "$w/logits.bin" \
  --name finetune.export_classifier || fail=1
"$ev" export --checkpoint "$w/eq2/ft-00000006.bin" --full --out "$w/clsfull.safetensors" >/dev/null 2>"$w/cf.err"; rc=$?
if [ $rc = 2 ] && grep -q "is a fine-tuning checkpoint: --full does not apply" "$w/cf.err" && [ ! -e "$w/clsfull.safetensors" ]
then pass "finetune.export_classifier_refuses_full"; else bad "finetune.export_classifier_refuses_full (exit $rc)"; fi

# a resume with another recipe is refused (one line, exit 2): it would not be the same run
run 2 "$ft" $F --out "$w/part" --steps 8 --mixup 0.5 >"$w/rx.out" 2>"$w/rx.err"; rc=$?
record_bad_input resume_with_another_recipe "$rc" "$w/rx.err" semaim-finetune
if [ $rc = 2 ] && [ "$(grep -c '^semaim-finetune: ' "$w/rx.err")" = 1 ] &&
   grep -q "the run that wrote it had --mixup 0.8, this run --mixup 0.5" "$w/rx.err"; then pass "finetune.resume_refuses_another_recipe"
else bad "finetune.resume_refuses_another_recipe (exit $rc)"; head -3 "$w/rx.err" | sed 's/^/    | /'; fi

# bad recipe settings: one line naming the flag, exit 2, before anything is read or written
expect_bad() {   # NAME PATTERN FLAGS...
  local name=$1 pat=$2; shift 2
  timeout 60 "$ft" $F --out "$w/badflag" "$@" >"$w/bf.out" 2>"$w/bf.err"; local rc=$?
  record_bad_input "$name" "$rc" "$w/bf.err" semaim-finetune
  if [ $rc = 2 ] && [ "$(grep -c '^semaim-finetune: ' "$w/bf.err")" = 1 ] && grep -q -- "$pat" "$w/bf.err" && [ ! -e "$w/badflag" ]
  then pass "finetune.$name"; else bad "finetune.$name (exit $rc)"; head -3 "$w/bf.err" | sed 's/^/    | /'; fi
}
expect_bad mixup_negative_alpha "--mixup -0.5 is out of range" --mixup -0.5
expect_bad cutmix_negative_alpha "--cutmix -1 is out of range" --cutmix -1
expect_bad reprob_above_one "--reprob 1.5 is out of range" --reprob 1.5
expect_bad switch_prob_above_one "--mixup-switch-prob 2 is out of range" --mixup-switch-prob 2
expect_bad mixup_prob_negative "--mixup-prob -0.1 is out of range" --mixup-prob -0.1
expect_bad randaug_unknown_section "--randaug rand-m9-q3: " --randaug rand-m9-q3
expect_bad randaug_unknown_name "--randaug autoaug" --randaug autoaug
expect_bad remode_unknown "--remode must be pixel, rand or const, not 'blur'" --remode blur
expect_bad mixup_odd_global_batch "global batch 3 must be even" --batch 3

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
assert struct.unpack_from("<I", b, 12)[0] == 200   # version 4: cut the objective (96..192) out
b = b[:96] + b[192:]
struct.pack_into("<I", b, 12, 104)
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
