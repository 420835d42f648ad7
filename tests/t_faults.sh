#!/usr/bin/env bash
# Injected disk faults over every writer (tests/fault/fault.c, LD_PRELOAD): the N-th open,
# write, fsync or rename of a file fails with ENOSPC or EIO, or free space looks short.
# Each writer must end with a clear one-line error (exit 1) or a logged skip (a warning, and
# for checkpoints a checkpoint_skipped metrics line), never leave a half-written file under
# the final name or a temporary beside it, and leave the previous good file intact and
# loadable. Every case first checks that the fault was injected at all.
#   pretraining and fine-tuning checkpoints: skipped at the cadence (training goes on and the
#     next interval writes one), exit 1 when the last one fails; low free space skips too
#   settings.json: exit 1 at start, the old one kept; metrics.jsonl: lines lost, whole lines
#     only, a warning and a count in run_end; its open failing: exit 1
#   semaim-prep shards, records, plan and manifest: exit 1, old shards kept
#   features files, exports, scaling reports (all four files or none): exit 1, old kept
#   eval.jsonl: a warning, the result stands (exit 0)
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
train=$PWD/bin/semaim-train ft=$PWD/bin/semaim-finetune ev=$PWD/bin/semaim-eval rep=$PWD/bin/semaim-report
prep=$PWD/bin/semaim-prep fix=$PWD/build/tools/prep_fixtures check_ckpt=$PWD/build/tools/ckpt_check
shim=$PWD/build/fault/libfault.so
for b in "$train" "$ft" "$ev" "$rep" "$prep" "$fix" "$check_ckpt" "$shim"; do
  [ -e "$b" ] || { echo "FAIL: faults.binaries ($b not built)"; exit 1; }
done
scratch w tfault
$PY tests/tools/make_shards.py "$w/data" --counts 20,19 --size 16 >/dev/null &&
$PY tests/tools/make_shards.py "$w/data" --counts 8 --size 16 --split val --seed 1 >/dev/null || { bad "faults.make_shards"; exit 1; }
M="--data $w/data --image 16 --patch 8 --width 16 --depth 1 --dec-depth 1 --heads 1 --batch 4 --warmup-steps 1 --log-every 100"

# inject VAR=VALUE... -- CMD...: CMD under the shim (one rank, no mpirun: the shim sees only
# the program); sets rc, and out/err/fault.log in $w; injected = faults it logged
inject() {
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  rm -f "$w/fault.log"
  env LD_PRELOAD="$shim" FAULT_LOG="$w/fault.log" "${envs[@]}" timeout 120 "$@" >"$w/out" 2>"$w/err"
  rc=$?
  injected=$(grep -c '^fault:' "$w/fault.log" 2>/dev/null); injected=${injected:-0}
  faultenv="${envs[*]}"
  # error lines: the program's own lines that are not warnings, notes, skipped inputs or progress
  nerr=$(grep -E '^semaim-[a-z]+( [a-z]+)?: ' "$w/err" | grep -v -e ' skipped ' -e ': note: ' -e ': done: ' -e ': wrote ' -e 'warning: ' | grep -c .)
}
no_tmp() { ! find "$@" -name '.*.tmp.*' 2>/dev/null | grep -q .; }
# verdict NAME WRITER OUTCOME CONDITION...: PASS/FAIL (the fault must have happened) and the record
verdict() {
  local name=$1 writer=$2 outcome=$3 msg
  shift 3
  msg=$(grep -E 'warning|error|failed|cannot|not written|lost|free' "$w/err" | grep -v -e 'skipped ' | head -n 1)
  record fault "$name" writer="$writer" injected="$faultenv" faults="$injected" exit="$rc" outcome="$outcome" message="$msg"
  if [ "$injected" -ge 1 ] && "$@"; then pass "faults.$name (exit $rc: ${msg:0:160})"
  else bad "faults.$name (exit $rc, $injected faults injected)"; sed 's/^/    | /' "$w/err" | tail -4; fi
}
event_count() { grep -c "\"event\": \"$2\"" "$1/metrics.jsonl" 2>/dev/null || true; }
lines_parse() { $PY -c "import json, sys; [json.loads(l) for l in open(sys.argv[1])]" "$1" 2>/dev/null; }
export -f lines_parse; export PY   # used inside the verdicts' bash -c

# ---------------------------------------------------------------- pretraining checkpoints
# 6 steps, a checkpoint every 2: the first (step 2) meets the fault, 4 and 6 must be written
ck_skip() {   # name errno op [extra env]
  local name=$1 er=$2 op=$3; shift 3
  rm -rf "$w/p"
  inject FAULT_OP=$op FAULT_PATH=ckpt-00000002 FAULT_ERRNO=$er "$@" -- "$train" $M --steps 6 --ckpt-every 2 --out "$w/p"
  verdict "pretrain_checkpoint_${name}_skipped" "pretraining checkpoint (at the cadence)" \
    "logged skip: warning + checkpoint_skipped; the next interval writes it; exit 0" \
    bash -c "[ $rc = 0 ] && [ ! -e '$w/p/ckpt-00000002.bin' ] && [ \"\$(grep -c '\"event\": \"checkpoint_skipped\", \"step\": 2, \"reason\": \"write failed\"' '$w/p/metrics.jsonl')\" = 1 ] &&
             grep -q 'warning: checkpoint at step 2 not written' '$w/err' && '$check_ckpt' '$w/p/ckpt-00000004.bin' '$w/p/ckpt-00000006.bin' >/dev/null" &&
    no_tmp "$w/p" || { bad "faults.pretrain_checkpoint_${name}_left_a_temporary"; }
}
ck_skip write_enospc ENOSPC write
ck_skip write_partial_enospc ENOSPC write FAULT_PARTIAL=1
ck_skip open_eio EIO open
ck_skip fsync_eio EIO fsync
ck_skip rename_enospc ENOSPC rename

# the last checkpoint fails: exit 1 with one error line; the previous ones are whole and load
rm -rf "$w/p"
inject FAULT_OP=write FAULT_PATH=ckpt-00000006 FAULT_ERRNO=ENOSPC -- "$train" $M --steps 6 --ckpt-every 2 --out "$w/p"
verdict pretrain_last_checkpoint_fails "pretraining checkpoint (the last one)" "exit 1, one error line; older checkpoints kept" \
  bash -c "[ $rc = 1 ] && [ \"\$(grep -c '^semaim-train: .*ckpt-00000006.bin: write failed: No space left on device (the last checkpoint could not be written' '$w/err')\" = 1 ] &&
           [ ! -e '$w/p/ckpt-00000006.bin' ] && '$check_ckpt' '$w/p/ckpt-00000002.bin' '$w/p/ckpt-00000004.bin' >/dev/null" && no_tmp "$w/p" ||
  bad "faults.pretrain_last_checkpoint_left_a_temporary"

# every checkpoint of a resumed run fails (a full disk): the good ones of the first run stay,
# and a later run resumes from them and ends bit-exactly where an uninterrupted run does
rm -rf "$w/ref" "$w/full"
"$train" $M --steps 8 --ckpt-every 2 --out "$w/ref" >/dev/null 2>&1 || bad "faults.reference_run"
"$train" $M --steps 8 --ckpt-every 2 --max-steps-this-run 4 --out "$w/full" >/dev/null 2>&1 || bad "faults.first_half"
inject FAULT_OP=write FAULT_PATH=/.ckpt- FAULT_COUNT=0 FAULT_ERRNO=ENOSPC -- "$train" $M --steps 8 --ckpt-every 2 --out "$w/full"
verdict disk_full_after_resume "pretraining checkpoint (disk full for the rest of the run)" \
  "steps 6 skipped, step 8 exit 1; the step-4 file stays and a later run resumes bit-exactly" \
  bash -c "[ $rc = 1 ] && [ \"\$(grep -c 'checkpoint_skipped' '$w/full/metrics.jsonl')\" = 1 ] && '$check_ckpt' '$w/full/ckpt-00000004.bin' >/dev/null &&
           [ ! -e '$w/full/ckpt-00000008.bin' ] && '$train' $M --steps 8 --ckpt-every 2 --out '$w/full' >/dev/null 2>&1 &&
           cmp -s '$w/ref/ckpt-00000008.bin' '$w/full/ckpt-00000008.bin'"

# free space short of a checkpoint plus the margin: skipped without writing, the last one tried
rm -rf "$w/p"
inject FAULT_FREE_BYTES=1000000 -- "$train" $M --steps 6 --ckpt-every 2 --out "$w/p"
injected=$(grep -c 'MiB free, a checkpoint needs' "$w/err")   # statvfs faked: the warnings are the evidence
verdict pretrain_low_disk_space "pretraining checkpoint (statvfs: less free than the file plus 64 MiB)" \
  "logged skip before writing: warning + checkpoint_skipped (free_bytes, need_bytes); the last one is written anyway" \
  bash -c "[ $rc = 0 ] && [ \"\$(grep -c '\"reason\": \"low disk space\", \"error\": null, \"free_bytes\": ' '$w/p/metrics.jsonl')\" = 2 ] &&
           [ ! -e '$w/p/ckpt-00000002.bin' ] && [ ! -e '$w/p/ckpt-00000004.bin' ] && '$check_ckpt' '$w/p/ckpt-00000006.bin' >/dev/null &&
           grep -q 'writing the last one anyway' '$w/err'"

# ---------------------------------------------------------------- fine-tuning checkpoints
"$train" $M --steps 2 --out "$w/pre" >/dev/null 2>&1 || bad "faults.pretrain_for_finetune"
FT="--checkpoint $w/pre/ckpt-00000002.bin --data $w/data --batch 4 --classes 10 --eval-every 1000 --log-every 100 --warmup-steps 1"
rm -rf "$w/f"
inject FAULT_OP=write FAULT_PATH=ft-00000002 FAULT_ERRNO=EIO -- "$ft" $FT --steps 6 --ckpt-every 2 --out "$w/f"
verdict finetune_checkpoint_skipped "fine-tuning checkpoint (at the cadence)" "logged skip: warning + checkpoint_skipped; exit 0" \
  bash -c "[ $rc = 0 ] && [ ! -e '$w/f/ft-00000002.bin' ] && grep -q '\"event\": \"checkpoint_skipped\", \"step\": 2' '$w/f/metrics.jsonl' &&
           '$check_ckpt' '$w/f/ft-00000004.bin' '$w/f/ft-00000006.bin' >/dev/null" && no_tmp "$w/f" || bad "faults.finetune_checkpoint_left_a_temporary"
rm -rf "$w/f"
inject FAULT_OP=rename FAULT_PATH=ft-00000006 FAULT_ERRNO=EIO -- "$ft" $FT --steps 6 --ckpt-every 2 --out "$w/f"
verdict finetune_last_checkpoint_fails "fine-tuning checkpoint (the last one)" "exit 1, one error line; older checkpoints kept" \
  bash -c "[ $rc = 1 ] && [ \"\$(grep -c '^semaim-finetune: .*ft-00000006.bin: write failed: rename' '$w/err')\" = 1 ] &&
           [ ! -e '$w/f/ft-00000006.bin' ] && '$check_ckpt' '$w/f/ft-00000004.bin' >/dev/null" && no_tmp "$w/f" ||
  bad "faults.finetune_last_checkpoint_left_a_temporary"

# ---------------------------------------------------------------- settings.json and metrics.jsonl
rm -rf "$w/s"
"$train" $M --steps 2 --out "$w/s" >/dev/null 2>&1 && cp "$w/s/settings.json" "$w/settings.good" || bad "faults.settings_first_run"
inject FAULT_OP=write FAULT_PATH=settings.json FAULT_ERRNO=ENOSPC -- "$train" $M --steps 4 --out "$w/s"
verdict settings_json_write_fails "settings.json (a resumed run rewrites it)" "exit 1 at start, one error line; the old file kept" \
  bash -c "[ $rc = 1 ] && [ $nerr = 1 ] && grep -q 'settings.json: write failed: No space left' '$w/err' &&
           cmp -s '$w/settings.good' '$w/s/settings.json'" && no_tmp "$w/s" || bad "faults.settings_json_left_a_temporary"

rm -rf "$w/m"
inject FAULT_OP=write FAULT_PATH=metrics.jsonl FAULT_NTH=3 FAULT_PARTIAL=1 FAULT_ERRNO=ENOSPC -- "$train" $M --steps 6 --out "$w/m"
verdict metrics_line_lost "metrics.jsonl (a step line; the disk takes half of it)" \
  "logged skip: one warning, the line cut off again, metrics_lines_lost 1 in run_end; training goes on, exit 0" \
  bash -c "[ $rc = 0 ] && [ \"\$(grep -c 'cannot append a line' '$w/err')\" = 1 ] && lines_parse '$w/m/metrics.jsonl' &&
           grep -q '\"metrics_lines_lost\": 1' '$w/m/metrics.jsonl' && [ \"\$(grep -c '\"event\": \"step\"' '$w/m/metrics.jsonl')\" = 5 ] &&
           [ -e '$w/m/ckpt-00000006.bin' ]"
rm -rf "$w/m"
inject FAULT_OP=open FAULT_PATH=metrics.jsonl FAULT_ERRNO=EIO -- "$train" $M --steps 2 --out "$w/m"
verdict metrics_open_fails "metrics.jsonl (cannot be opened)" "exit 1 at start, one error line" \
  bash -c "[ $rc = 1 ] && [ $nerr = 1 ] && grep -q 'metrics.jsonl: cannot open metrics: Input/output error' '$w/err'"

# ---------------------------------------------------------------- semaim-prep
"$fix" suite "$w/src" >/dev/null || bad "faults.prep_fixtures"
prep_case() {   # name what op path errno [extra env]: a forced rerun meets the fault
  local name=$1 what=$2 op=$3 path=$4 er=$5; shift 5
  inject FAULT_OP=$op FAULT_PATH=$path FAULT_ERRNO=$er "$@" -- "$prep" $P --force
  verdict "prep_${name}" "semaim-prep: $what" "exit 1, one error line; no temporary, the shards under their names are the old ones" \
    bash -c "[ $rc = 1 ] && [ $nerr = 1 ] &&
             for f in '$w'/sh.good/train/*.h5; do cmp -s \"\$f\" '$w/sh/train/'\"\$(basename \"\$f\")\" || exit 1; done" &&
    no_tmp "$w/sh" || bad "faults.prep_${name}_left_a_temporary"
}
# the default store (jpeg) through every writer of the converter, then the raw store's shards
prep_first() {   # store flags...: a good conversion kept as sh.good
  rm -rf "$w/sh" "$w/sh.good"
  P="convert --src $w/src --out $w/sh --train-shards 3 --val-shards 2 --progress none $*"
  "$prep" $P >/dev/null 2>&1 && cp -r "$w/sh" "$w/sh.good" || bad "faults.prep_first_run ($*)"
}
prep_first --store jpeg --max-side 32
prep_case shard_write_enospc "a shard (HDF5 data)" write train-00001-of-00003.h5 ENOSPC
prep_case shard_create_eio "a shard (every open for writing fails)" open train-00001-of-00003.h5 EIO FAULT_COUNT=0
prep_case shard_fsync_eio "a shard (fsync)" fsync train-00001-of-00003.h5 EIO
prep_case shard_rename_eio "a shard (rename into place)" rename train-00001-of-00003.h5 EIO
prep_case record_write_enospc "a shard record (.prep/*.json)" write train-00002-of-00003.json ENOSPC
prep_case plan_write_enospc "the plan (.prep/plan.json)" write plan.json ENOSPC
prep_case manifest_write_enospc "manifest.json" write manifest.json ENOSPC
prep_case manifest_rename_eio "manifest.json (rename)" rename manifest.json EIO
# after the failed manifest: `semaim-prep manifest` writes it from the records, verify passes
"$prep" manifest "$w/sh" >/dev/null 2>&1 && "$prep" verify "$w/sh" >/dev/null 2>&1 &&
  pass "faults.prep_manifest_rebuilt_after_failure" || bad "faults.prep_manifest_rebuilt_after_failure"
prep_first --store raw --size 16 --val-size 16 --val-resize 18
prep_case raw_shard_write_enospc "a raw shard (HDF5 data)" write train-00001-of-00003.h5 ENOSPC
prep_case raw_shard_rename_eio "a raw shard (rename into place)" rename train-00001-of-00003.h5 EIO

# ---------------------------------------------------------------- features files, exports
ck=$w/ref/ckpt-00000008.bin
"$ev" features --checkpoint "$ck" --data "$w/data" --split val --out "$w/f.h5" >/dev/null 2>&1 && cp "$w/f.h5" "$w/f.good" &&
"$ev" export --checkpoint "$ck" --out "$w/enc.safetensors" >/dev/null 2>&1 && cp "$w/enc.safetensors" "$w/enc.good" || bad "faults.eval_first_run"
for c in "write EIO" "fsync ENOSPC" "rename EIO"; do
  set -- $c
  inject FAULT_OP=$1 FAULT_PATH=f.h5 FAULT_ERRNO=$2 -- "$ev" features --checkpoint "$ck" --data "$w/data" --split val --out "$w/f.h5"
  verdict "features_file_$1_$2" "features file (semaim-eval features)" "exit 1, one error line; the old file kept" \
    bash -c "[ $rc = 1 ] && [ $nerr = 1 ] && grep -q 'f.h5: ' '$w/err' && cmp -s '$w/f.good' '$w/f.h5'" &&
    no_tmp "$w" -maxdepth 1 || bad "faults.features_file_$1_left_a_temporary"
  inject FAULT_OP=$1 FAULT_PATH=enc.safetensors FAULT_ERRNO=$2 -- "$ev" export --checkpoint "$ck" --out "$w/enc.safetensors"
  verdict "export_$1_$2" "export (semaim-eval export, safetensors)" "exit 1, one error line; the old file kept" \
    bash -c "[ $rc = 1 ] && [ $nerr = 1 ] && grep -q 'enc.safetensors: ' '$w/err' && cmp -s '$w/enc.good' '$w/enc.safetensors'" &&
    no_tmp "$w" -maxdepth 1 || bad "faults.export_$1_left_a_temporary"
done
inject FAULT_OP=write FAULT_PATH=eval.jsonl FAULT_ERRNO=ENOSPC -- "$ev" knn --train-features "$w/f.h5" --val-features "$w/f.h5" --k 2 --out "$w/evout"
verdict eval_jsonl_append_fails "eval.jsonl (semaim-eval knn --out)" "logged skip: a warning, the result printed, exit 0" \
  bash -c "[ $rc = 0 ] && grep -q 'eval.jsonl: cannot append results: No space left' '$w/err' && grep -q '^knn: top1=' '$w/out' &&
           { [ ! -s '$w/evout/eval.jsonl' ] || lines_parse '$w/evout/eval.jsonl'; }"

# ---------------------------------------------------------------- scaling reports
mkdir -p "$w/runs"
for n in 1 2; do cp -r "$w/ref" "$w/runs/strong-np$n"; done
R="--runs $w/runs --name syn --results $w/results"
"$rep" $R >/dev/null 2>&1 && cp -r "$w/results/syn" "$w/syn.good" || bad "faults.report_first_run"
same_report() { for f in scaling.csv scaling.json scaling.md scaling.svg; do cmp -s "$w/syn.good/$f" "$w/results/syn/$f" || return 1; done; no_tmp "$w/results"; ! ls -A "$w/results/syn" | grep -q '\.old$'; }
for c in "write scaling.md ENOSPC 1" "rename scaling. EIO 3"; do
  set -- $c
  inject FAULT_OP=$1 FAULT_PATH=$2 FAULT_ERRNO=$3 FAULT_NTH=$4 -- "$rep" $R
  verdict "report_$1_$3" "scaling report (semaim-report: four files)" "exit 1, one error line; the old four files, none of the new" \
    bash -c "[ $rc = 1 ] && grep -q '^semaim-report: .*scaling' '$w/err'" && same_report || bad "faults.report_$1_mixed_old_and_new"
done

# ---------------------------------------------------------------- run reports
RR="run $w/ref --out $w/rrep --images 2"
"$rep" $RR >/dev/null 2>&1 && cp -r "$w/rrep" "$w/rrep.good" || bad "faults.run_report_first_run"
same_run_report() { diff -r "$w/rrep.good" "$w/rrep" >/dev/null && no_tmp "$w/rrep" && ! ls -A "$w/rrep" | grep -q '\.old$'; }
for c in "write report.md ENOSPC 1" "rename .svg EIO 2" "fsync .png EIO 1"; do
  set -- $c
  inject FAULT_OP=$1 FAULT_PATH=$2 FAULT_ERRNO=$3 FAULT_NTH=$4 -- "$rep" $RR
  verdict "run_report_$1_$3" "run report (semaim-report run: report.md, SVGs, PNGs, CSV, JSON)" \
    "exit 1, one error line; the old report's files, none of the new" \
    bash -c "[ $rc = 1 ] && [ $nerr = 1 ]" && same_run_report || bad "faults.run_report_$1_mixed_old_and_new"
done
finish
