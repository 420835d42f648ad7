#!/usr/bin/env bash
# The jobs/ scripts end to end on a real Slurm cluster started on this machine
# (tests/slurm/cluster.sh: munged, slurmctld, slurmd with a private key, socket, ports and
# state; stopped by pid at the end, whatever happens). The scenario: Fashion-MNIST JPEGs → (jpeg)
# prep array + afterok manifest/verify job → 2-rank pretraining, stopped twice with USR1
# (once through the batch script as the time-limit warning does, once at the ranks), requeued
# and resumed each time, finishing bit-identical to an uninterrupted run; Slurm's own
# time-limit warning; USR1 while the ranks start → evaluation job → a small strong/weak
# scaling sweep under mpirun with its report job; plus bad input.
# If Slurm cannot start, this fails loudly; it never skips. SEMAIM_KEEP=1 keeps the work dir.
. "$(dirname "$0")/lib.sh"
repo=$PWD
py=$PY

# Nothing from an enclosing Slurm job may leak into our submissions.
for v in $(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\|SBATCH_[A-Za-z0-9_]*\|SALLOC_[A-Za-z0-9_]*\|SRUN_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
export SEMAIM_HOME=$repo
unset SEMAIM_LAUNCHER SEMAIM_REQUEUE SEMAIM_EVAL_AT_INIT

for b in semaim-prep semaim-train; do
  [ -x "bin/$b" ] || { echo "FAIL: slurm_prerequisites (bin/$b is not built: run make)"; exit 1; }
done
work=$(mktemp -d /tmp/tslurm.XXXXXX)   # short: the munge socket path must fit in 108 bytes
. tests/slurm/cluster.sh
at_exit() {
  slurm_cluster_stop "$work/cluster"
  if [ "${SEMAIM_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}

t0=$(date +%s)
if ! slurm_cluster_start "$work/cluster" 4; then
  echo "FAIL: slurm_cluster_starts (munged/slurmctld/slurmd did not come up; see the log lines above)"
  exit 1
fi
pass "slurm_cluster_starts ($(sinfo -h -o '%P %D %c %T'))"

# ---- helpers ---------------------------------------------------------------------------
field() { scontrol show job -o "$1" 2>/dev/null | head -n 1 | grep -o "\b$2=[^ ]*" | head -n 1 | cut -d= -f2-; }
terminal() { case $1 in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) return 0;; esac; return 1; }
# wait_job ID SECONDS: prints the final state (or WAIT-TIMEOUT:<state>)
wait_job() {
  local s=""
  for ((i = 0; i < $2 * 5; i++)); do s=$(field "$1" JobState); terminal "$s" && { echo "$s"; return; }; sleep 0.2; done
  echo "WAIT-TIMEOUT:$s"
}
nsteps() { grep -c '"event": "step"' "$1/metrics.jsonl" 2>/dev/null || echo 0; }
wait_steps() {   # run folder, count, seconds
  for ((i = 0; i < $3 * 5; i++)); do [ "$(nsteps "$1")" -ge "$2" ] && return 0; sleep 0.2; done; return 1
}
show_log() { [ -f "$1" ] && sed 's/^/    | /' "$1" | tail -n "${2:-15}"; }

sub=$work/submit        # the submit directory: relative paths and logs/ live here
mkdir -p "$sub"
cd "$sub" || exit 1

# ---- bad input: refused before anything is submitted ----------------------------------
"$repo/jobs/scaling.sh" --data "$work/nowhere" --sweep-dir sw --max-ranks 2 >out.txt 2>err.txt; rc=$?
record_bad_input scaling_sh_missing_data "$rc" err.txt jobs/scaling.sh
check "scaling_sh_rejects_missing_data (exit $rc: $(head -c 120 err.txt))" \
  bash -c "[ $rc = 2 ] && grep -q 'nowhere: no train/ folder' err.txt && [ -z \"\$(squeue -h)\" ]"
"$repo/jobs/scaling.sh" --data "$work" --sweep-dir sw --max-ranks 0 >/dev/null 2>err.txt; rc=$?
record_bad_input scaling_sh_bad_max_ranks "$rc" err.txt jobs/scaling.sh
check "scaling_sh_rejects_bad_max_ranks (exit $rc: $(head -c 120 err.txt))" bash -c "[ $rc = 2 ] && grep -q 'max-ranks' err.txt"
"$repo/jobs/prep.sh" --tasks 2 --out x >/dev/null 2>err.txt; rc=$?
record_bad_input prep_sh_without_src "$rc" err.txt jobs/prep.sh
check "prep_sh_requires_src (exit $rc: $(head -c 120 err.txt))" bash -c "[ $rc = 2 ] && grep -q -- '--src' err.txt && [ -z \"\$(squeue -h)\" ]"

# ---- data: Fashion-MNIST JPEGs, then the prep array + manifest job ----------------------
"$repo/bin/semaim-prep" fmnist --src /usr/share/datasets/fashion-mnist --out "$work/jpeg" --limit 1000 --threads 2 >/dev/null 2>err.txt \
  || { bad "fmnist_jpegs ($(head -c 200 err.txt))"; exit 1; }
# the default store, jpeg: the array, the manifest job, training and evaluation all read JPEG shards
CONV="--train-shards 4 --val-shards 2"
ids=$("$repo/jobs/prep.sh" --parsable --tasks 2 --cpus-per-task 1 --src "$work/jpeg" --out "$work/shards" $CONV 2>err.txt) \
  || { bad "prep_submit ($(head -c 200 err.txt))"; exit 1; }
read -r arr man <<<"$ids"
st=$(wait_job "$man" 120)
tasks=$(scontrol show job -o "$arr" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
check "prep_array_tasks_all_completed (array $arr: $tasks)" bash -c "[ \"$(echo $tasks)\" = '2 JobState=COMPLETED' ]"
check "prep_manifest_job_afterok_completed (job $man: $st)" [ "$st" = COMPLETED ]
[ "$st" = COMPLETED ] || { show_log "logs/semaim-prep-manifest-$man.out"; for t in 0 1; do show_log "logs/semaim-prep-${arr}_$t.out"; done; }
check "prep_logs_per_task_and_manifest" bash -c "grep -q 'task 0 exit 0' logs/semaim-prep-${arr}_0.out && grep -q 'task 1 exit 0' logs/semaim-prep-${arr}_1.out && grep -q 'every shard verified' logs/semaim-prep-manifest-$man.out"
# the array's shards are those of one process converting everything
"$repo/bin/semaim-prep" convert --src "$work/jpeg" --out "$work/shards1" $CONV --progress none --threads 2 >/dev/null 2>&1
same=1
for f in train/train-0000{0,1,2,3}-of-00004.h5 val/val-0000{0,1}-of-00002.h5 manifest.json; do
  cmp -s "$work/shards/$f" "$work/shards1/$f" || { same=0; echo "    differs: $f"; }
done
check "prep_array_output_equals_one_process_conversion" [ $same = 1 ]
[ -f "$work/shards/manifest.json" ] || { bad "prep_produced_no_shards (cannot continue)"; exit 1; }

# ---- pretraining: 2 ranks, USR1 twice, requeue, resume, finish -------------------------
MODEL="--image 32 --patch 8 --width 32 --depth 2 --dec-depth 2 --heads 2 --warmup-steps 20 --base-lr 1e-3"
STEPS=1000   # long enough that a signal lands mid-run even at ~400 steps/s
run=$work/run
rm -rf logs   # jobs/submit.sh must create it: without logs/ Slurm fails the job and writes nothing
id=$("$repo/jobs/submit.sh" --parsable "$repo/jobs/pretrain.sbatch" --data "$work/shards" --out "$run" $MODEL \
      --batch 16 --steps $STEPS --ckpt-every 200 --log-every 100 --check-every 50 2>err.txt) \
  || { bad "pretrain_submit ($(head -c 200 err.txt))"; exit 1; }
plog=logs/semaim-pretrain-$id.out
# The real time-limit warning, alongside: --time=1 --signal=B:USR1@15. slurmctld checks time
# limits periodically and may signal up to a minute early (man sbatch); here @15 arrives some
# 15-45 s in, while @45 was seen to fire at once (the script holds USR1 back until the ranks
# run, but nothing can help a signal that beats the batch shell's first line).
# With SEMAIM_REQUEUE=0 the job stops there with a checkpoint and ends.
tl=$(SEMAIM_REQUEUE=0 sbatch --parsable -J timelimit --time=1 --signal=B:USR1@15 --ntasks-per-node=1 \
      "$repo/jobs/pretrain.sbatch" --data "$work/shards" --out "$work/tlrun" $MODEL --batch 16 --steps 10000000 --log-every 100000 2>err.txt) \
  || bad "timelimit_submit ($(head -c 200 err.txt))"
# interruption 1: USR1 to the batch shell (what --signal=B:USR1@120 does), which forwards it
# interruption 2: USR1 straight to the ranks of the srun step (`scancel --signal=USR1`)
stops=()
for k in 1 2; do
  # segment k has run 60 steps of its own (steps are logged once each; resumes continue the count)
  prev=0; [ $k = 2 ] && prev=${stops[0]}
  if ! wait_steps "$run" $((prev + 60)) 90; then bad "pretrain_running_before_signal_$k (steps $(nsteps "$run"), state $(field "$id" JobState))"; show_log "$plog"; exit 1; fi
  if [ $k = 1 ]; then scancel --batch --signal=USR1 "$id"; else scancel --signal=USR1 "$id"; fi
  st=""; rs=""
  for ((i = 0; i < 300; i++)); do
    st=$(field "$id" JobState); rs=$(field "$id" Restarts)
    [ "$st" = PENDING ] && [ "$rs" = $k ] && break
    terminal "$st" && break
    sleep 0.2
  done
  begin=$(field "$id" StartTime)
  check "pretrain_usr1_${k}_checkpoints_and_requeues (state $st, restarts $rs, requeued start $begin)" \
    bash -c "[ '$st' = PENDING ] && [ '$rs' = $k ]"
  [ "$st" = PENDING ] || { show_log "$plog" 30; exit 1; }
  stops+=("$(grep '"event": "run_end"' "$run/metrics.jsonl" | tail -n 1 | sed -n 's/.*"step": \([0-9]*\).*/\1/p')")
  # A requeued job is held back about two minutes (AuthInfo cred_expire, 120 s): start it
  # now, but not within the second of the requeue. slurmd revoked the old job credential;
  # a new one issued in that same second counts as revoked too, and the job then FAILS
  # ("Killing non-startable batch JobId=N: Job credential revoked").
  sleep 2
  scontrol update JobId="$id" StartTime=now || bad "scontrol_update_starttime"
done
st=$(wait_job "$id" 180)
check "pretrain_job_completed_after_2_requeues (state $st, restarts $(field "$id" Restarts), exit $(field "$id" ExitCode))" \
  bash -c "[ '$st' = COMPLETED ] && [ '$(field "$id" Restarts)' = 2 ] && [ '$(field "$id" ExitCode)' = 0:0 ]"
[ "$st" = COMPLETED ] || show_log "$plog" 40
if $py - "$run/metrics.jsonl" "$id" $STEPS "${stops[@]}" <<'EOF'
import json, sys
path, job, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
stops = [int(s) for s in sys.argv[4:]]
ev = [json.loads(l) for l in open(path)]
starts = [e for e in ev if e["event"] == "run_start"]
ends = [e for e in ev if e["event"] == "run_end"]
steps = [e["step"] for e in ev if e["event"] == "step"]
assert len(starts) == 3 and len(ends) == 3, (len(starts), len(ends))
assert [e["reason"] for e in ends] == ["signal", "signal", "done"], [e["reason"] for e in ends]
assert all(e["exit_code"] == 0 for e in ends)
assert [e["step"] for e in ends] == stops + [total], ([e["step"] for e in ends], stops)
assert 0 < stops[0] < stops[1] < total, stops
for i, s in enumerate(starts):
    assert s["slurm_job_id"] == job and s["slurm_restart_count"] == i, s
    assert s["ranks"] == 2, s["ranks"]
    assert s["threads"] == 1, s["threads"]          # OMP_NUM_THREADS from --cpus-per-task=1
    assert s["start_step"] == ([0] + stops)[i], s["start_step"]
    want = None if i == 0 else f"ckpt-{stops[i - 1]:08d}.bin"
    assert (s["resumed_from"] is None) if want is None else s["resumed_from"].endswith("/" + want), s["resumed_from"]
assert steps == list(range(1, total + 1)), "steps are not 1..total exactly once"
print("stops at", stops, "final loss", [e["loss"] for e in ev if e["event"] == "step"][-1])
EOF
then pass "pretrain_metrics_resume_chain_restart_counts_no_gaps"; else bad "pretrain_metrics_resume_chain_restart_counts_no_gaps"; fi
check "pretrain_log_appended_over_3_segments" bash -c "[ \$(grep -c '^pretrain: .* restart [0-2] on ' '$plog') = 3 ] && [ \$(grep -c 'requeueing job $id' '$plog') = 2 ] && grep -q 'SIGUSR1: the ranks checkpoint' '$plog'"
# the same run without interruptions, same ranks and threads: the same bytes at the end
OMP_NUM_THREADS=1 timeout 300 mpirun -np 2 --bind-to none "$repo/bin/semaim-train" --data "$work/shards" --out "$work/ref" $MODEL \
  --batch 16 --steps $STEPS --ckpt-every 200 --log-every 1000 --check-every 50 >/dev/null 2>err.txt || bad "pretrain_reference_run ($(head -c 200 err.txt))"
check "pretrain_requeued_run_bit_identical_to_uninterrupted" cmp -s "$run/ckpt-$(printf %08d $STEPS).bin" "$work/ref/ckpt-$(printf %08d $STEPS).bin"
if [ -n "${tl:-}" ]; then
  st=$(wait_job "$tl" 100)
  tlog=logs/timelimit-$tl.out
  last=$(grep '"event": "run_end"' "$work/tlrun/metrics.jsonl" 2>/dev/null | tail -n 1)
  tstep=$(sed -n 's/.*"step": \([0-9]*\).*/\1/p' <<<"$last")
  check "pretrain_time_limit_usr1_stops_with_checkpoint (state $st, restarts $(field "$tl" Restarts), stopped at step ${tstep:-?})" \
    bash -c "[ '$st' = COMPLETED ] && [ '$(field "$tl" Restarts)' = 0 ] && [[ '$last' == *'\"reason\": \"signal\"'* ]] &&
             [ -f '$work/tlrun/ckpt-$(printf %08d "${tstep:-0}").bin' ] && grep -q 'SIGUSR1' '$tlog' && grep -q 'SEMAIM_REQUEUE=0: not requeueing' '$tlog'"
  [ "$st" = COMPLETED ] || show_log "$tlog"
fi

# USR1 right as the job starts, before the ranks have their handlers: the script holds it
# back until they run, so they stop with a checkpoint instead of dying
id=$(SEMAIM_REQUEUE=0 sbatch --parsable -J early "$repo/jobs/pretrain.sbatch" --data "$work/shards" --out "$work/early" $MODEL \
      --batch 16 --steps 10000000 --log-every 100000 2>err.txt) || bad "early_submit ($(head -c 200 err.txt))"
# (once the batch shell runs: before its first line, USR1 kills it and nothing can help that)
for ((i = 0; i < 300; i++)); do grep -q '^pretrain: .* restart 0 on' "logs/early-$id.out" 2>/dev/null && break; sleep 0.05; done
scancel --batch --signal=USR1 "$id"
st=$(wait_job "$id" 60)
last=$(grep '"event": "run_end"' "$work/early/metrics.jsonl" 2>/dev/null | tail -n 1)
check "pretrain_usr1_at_job_start_still_checkpoints (state $st; $(grep -c 'held back\|still starting' logs/early-$id.out) held-back notes)" \
  bash -c "[ '$st' = COMPLETED ] && [[ '$last' == *'\"reason\": \"signal\"'* ]] && ls '$work/early' | grep -q '^ckpt-'"
[ "$st" = COMPLETED ] || show_log "logs/early-$id.out"

# ---- evaluation --------------------------------------------------------------------------
SEMAIM_EVAL_AT_INIT=1 timeout 300 sbatch --wait -Q -o "logs/eval-%j.out" "$repo/jobs/eval.sbatch" --checkpoint "$run" --data "$work/shards" --k 20 >/dev/null 2>err.txt
rc=$?
elog=$(ls -t logs/eval-*.out 2>/dev/null | head -n 1)
if [ -x "$repo/bin/semaim-eval" ]; then
  check "slurm_eval_job_knn (exit $rc)" bash -c "[ $rc = 0 ] && [ \$(grep -c '^knn:.*top1=.*top5=' '$elog') = 2 ]"
  grep '^knn:' "$elog" | sed 's/^/    /'
  check "slurm_eval_job_appends_eval_jsonl" bash -c "[ \$(grep -c . '$run/eval.jsonl') -ge 2 ]"
  [ $rc = 0 ] || show_log "$elog"
else
  # evaluation has not landed yet: the job must say so and fail (only while the binary is absent)
  check "slurm_eval_job_reports_missing_eval (semaim-eval not built; job exit $rc)" \
    bash -c "[ $rc = 1 ] && grep -q 'semaim-eval is not built' '$elog'"
fi
timeout 300 sbatch --wait -Q -o "logs/evalbad-%j.out" "$repo/jobs/eval.sbatch" --checkpoint "$work/nothing.bin" --data "$work/shards" >/dev/null 2>&1
rc=$?
grep -h 'nothing.bin' logs/evalbad-*.out 2>/dev/null | head -n 1 >err.txt; record_bad_input eval_job_missing_checkpoint "$rc" err.txt jobs/eval.sbatch
check "slurm_eval_job_rejects_missing_checkpoint (exit $rc)" bash -c "[ $rc = 2 ] && grep -q 'nothing.bin: no such checkpoint' logs/evalbad-*.out"

# ---- bad input to the pretraining job: exit 2, no requeue ------------------------------
timeout 300 sbatch --wait -Q -J badtrain "$repo/jobs/pretrain.sbatch" --data "$work/no-shards" --out "$work/badrun" $MODEL --batch 16 --steps 5 >/dev/null 2>&1
rc=$?
blog=$(ls logs/badtrain-*.out | head -n 1)
grep -h 'no-shards' "$blog" 2>/dev/null | head -n 1 >err.txt; record_bad_input pretrain_job_missing_data "$rc" err.txt jobs/pretrain.sbatch
check "pretrain_job_bad_data_exits_2_without_requeue (exit $rc)" \
  bash -c "[ $rc = 2 ] && grep -q 'no-shards' '$blog' && ! grep -q requeueing '$blog'"
SEMAIM_LAUNCHER=bogus timeout 120 sbatch --wait -Q -J badlaunch "$repo/jobs/pretrain.sbatch" --data "$work/shards" >/dev/null 2>&1
rc=$?
grep -h 'SEMAIM_LAUNCHER' logs/badlaunch-*.out 2>/dev/null | head -n 1 >err.txt; record_bad_input pretrain_job_bad_launcher "$rc" err.txt jobs/pretrain.sbatch
check "pretrain_job_rejects_bad_launcher (exit $rc)" bash -c "[ $rc = 2 ] && grep -q 'SEMAIM_LAUNCHER must be srun or mpirun' logs/badlaunch-*.out"

# ---- scaling sweep: 1 and 2 ranks, strong and weak, under mpirun, then the report --------
ids=$(SEMAIM_LAUNCHER=mpirun "$repo/jobs/scaling.sh" --parsable --data "$work/shards" --sweep-dir "$work/sweep" --max-ranks 2 \
        --batch 8 --steps 20 --time 10 --name slurmtest --results "$work/results" -- $MODEL --log-every 10 2>err.txt) \
  || { bad "scaling_submit ($(head -c 200 err.txt))"; exit 1; }
read -r -a sw <<<"$ids"
rid=${sw[${#sw[@]} - 1]}
rdep=$(field "$rid" Dependency)   # read before the runs end and their dependencies are dropped
alldeps=0
if [ ${#sw[@]} = 5 ]; then
  alldeps=1
  for j in "${sw[@]:0:4}"; do [[ $rdep == *"afterok:$j"* ]] || alldeps=0; done
fi
check "scaling_report_job_depends_afterok_on_all_4_runs ($rdep)" [ $alldeps = 1 ]
for j in "${sw[@]:0:${#sw[@]}-1}"; do
  st=$(wait_job "$j" 120)
  [ "$st" = COMPLETED ] || { bad "scaling_run_job_$j ($st)"; show_log "$(ls logs/*-$j.out 2>/dev/null | head -n 1)"; }
done
rst=$(wait_job "$rid" 60)
if $py - "$work/sweep" <<'EOF'
import json, os, sys
d = sys.argv[1]
want = {("strong", 1): 16, ("strong", 2): 16, ("weak", 1): 8, ("weak", 2): 16}   # global batch
for (kind, n), gb in want.items():
    ev = [json.loads(l) for l in open(f"{d}/{kind}-np{n}/metrics.jsonl")]
    starts = [e for e in ev if e["event"] == "run_start"]   # only rank 0 writes, under mpirun too
    ends = [e for e in ev if e["event"] == "run_end"]
    assert len(starts) == 1 and starts[0]["ranks"] == n and starts[0]["global_batch"] == gb, (kind, n, starts)
    assert starts[0]["settings"]["batch"] == gb // n
    assert len(ends) == 1 and ends[0]["reason"] == "done" and ends[0]["step"] == 20, (kind, n, ends)
    assert os.path.exists(f"{d}/{kind}-np{n}/ckpt-00000020.bin")
rows = open(f"{d}/sweep.tsv").read().split("\n")
assert rows[0].startswith("kind\tranks") and len([r for r in rows if r]) == 6, rows
print("sweep runs ok")
EOF
then pass "scaling_sweep_runs_strong_weak_np1_np2"; else bad "scaling_sweep_runs_strong_weak_np1_np2"; fi
rlog=$(ls logs/semaim-report-$rid.out 2>/dev/null)
if [ -x "$repo/bin/semaim-report" ]; then
  ok=1
  for f in scaling.csv scaling.json scaling.md scaling.svg; do [ -s "$work/results/slurmtest/$f" ] || ok=0; done
  check "scaling_report_job_after_all_runs (state $rst)" bash -c "[ '$rst' = COMPLETED ] && [ $ok = 1 ]"
  [ "$rst" = COMPLETED ] || show_log "$rlog"
else
  check "slurm_report_job_reports_missing_report (semaim-report not built; state $rst)" \
    bash -c "[ '$rst' = FAILED ] && grep -q 'semaim-report is not built' '$rlog' && [ ! -e '$work/results/slurmtest' ]"
fi

echo "t_slurm: $(( $(date +%s) - t0 )) s"
[ $fail = 0 ]
