#!/usr/bin/env bash
# bin/semaim-report run: the report of one run folder.
# 1. A synthetic run folder with known answers: requeued twice (repeated steps after each
#    resume, one invocation killed without run_end), still going (its last line cut): one
#    continuous curve, the restarts, the skipped line named with its line number, the monitor
#    points, the wall time; no checkpoint, so no pictures and a note saying so.
# 2. A real short run (2 ranks, k-NN monitor, stopped and resumed): report.md, the plots, and
#    the semantic order of 6 val images drawn from the newest checkpoint: each heat map's
#    brightness order is exactly the ranks in summary.json, the centre is the most cls-like
#    patch and is outlined.
# 3. The same on 224x224 photo-like JPEGs (tests/prep/fixtures.h) through semaim-prep.
# Every SVG of the reports parses as XML and renders with rsvg-convert to a non-blank PNG.
# 4. Bad input: one line, exit 2, an earlier report left whole.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
rep=$PWD/bin/semaim-report train=$PWD/bin/semaim-train prep=$PWD/bin/semaim-prep fix=$PWD/build/tools/prep_fixtures
for b in "$rep" "$train" "$prep" "$fix"; do [ -x "$b" ] || { echo "FAIL: report_run.binaries ($b not built)"; exit 1; }; done
scratch w treprun

# every SVG of a report folder: valid XML, rendered by rsvg-convert into a PNG that is not blank
render_all() {   # $1 name, $2 report folder, $3 how many SVGs at least
  if $PY tests/tools/check_report.py render "$2" "$3"; then pass "report_run.$1_svgs_render"; else bad "report_run.$1_svgs_render"; fi
}

# ---------------------------------------------------------------- 1. synthetic run, known answers
mkdir -p "$w/syn"
$PY - "$w/syn/metrics.jsonl" <<'PY'
import json, sys
f = open(sys.argv[1], "w")
def start(s, rc):
    f.write(json.dumps({"event": "run_start", "kind": "pretrain", "time": 1e9, "ranks": 2, "threads": 1, "host": "h", "cpu": "c",
        "slurm_job_id": "4242", "slurm_restart_count": rc, "resumed_from": None, "start_step": s, "global_batch": 32,
        "steps_per_epoch": 50, "total_steps": 300, "peak_lr": 1e-3, "params": 1000000, "gemm": "openblas", "precision": "fp32",
        "gflop_per_image": 0.5, "versions": {"mpi": "Open MPI v4.1.4", "hdf5": "1.10.8", "openblas": "OpenBLAS 0.3.21"},
        "settings": {"preset": "tiny", "image": 32, "patch": 4, "monitor-every": 50, "order": "semantic"}}) + "\n")
def step(s, loss):
    f.write(json.dumps({"event": "step", "step": s, "epoch": (s - 1) // 50, "loss": loss, "lr": 1e-3 * min(1, s / 20),
        "grad_norm": 2.0 / s ** 0.5, "images_per_s": 100.0, "step_s": 0.32, "data_wait_s": 0.02, "compute_s": 0.25,
        "comm_s": 0.05}) + "\n")
def mon(s, v):
    f.write(json.dumps({"event": "monitor", "step": s, "epoch": s / 50, "bank": 2000, "queries": 1000, "k": 20, "classes": 10,
        "knn_top1_cls": v, "knn_top5_cls": 90, "knn_top1_mean": v + 5, "knn_top5_mean": 91, "knn_top1_gap": v + 7,
        "knn_top5_gap": 92, "features_s": 1.0, "knn_s": 0.2, "seconds": 1.2}) + "\n")
start(0, 0); mon(0, 10)
for s in range(1, 131):                      # killed at 130, last checkpoint 100
    step(s, 2.0 - s / 1000)
    if s % 50 == 0: mon(s, 10 + s / 10)
start(100, 1)                                 # requeued: steps 101..130 again, then on to 220
for s in range(101, 221):
    step(s, 3.0 - s / 1000)
    if s % 50 == 0: mon(s, 20 + s / 10)
f.write(json.dumps({"event": "run_end", "step": 220, "reason": "signal", "signal": "SIGUSR1", "exit_code": 0, "seconds": 40.0,
                    "peak_rss_gib": 1.0, "grad_allreduces": 120}) + "\n")
start(220, 2)                                 # the current job, still writing
for s in range(221, 241): step(s, 3.0 - s / 1000)
f.write('{"event": "step", "step": 241, "epoch": 4, "lo')
f.close()
PY
"$rep" run "$w/syn" >"$w/syn.out" 2>"$w/syn.err"; rc=$?
if [ $rc = 0 ] && [ -f "$w/syn/report/report.md" ] && grep -q "metrics.jsonl:280: not JSON (truncated line" "$w/syn.err" &&
   grep -q "semantic-order pictures not drawn: the run folder has no checkpoint yet" "$w/syn.err" && $PY - "$w/syn/report" <<'PY'
import csv, json, sys
d = sys.argv[1]
j = json.load(open(f"{d}/summary.json"))
assert (j["step_lines"], j["first_step"], j["last_step"], j["superseded_lines"]) == (240, 1, 240, 30), j
assert j["restarts"] == [100, 220] and j["bad_lines"] == 1 and j["orders"] is None and "no checkpoint" in j["orders_note"]
assert j["wall_complete"] is False and abs(j["wall_s"] - (130 * 0.32 + 3 * 1.2 + 40.0 + 20 * 0.32)) < 1e-6, j["wall_s"]
assert [m["step"] for m in j["monitor"]] == [0, 50, 100, 150, 200] and j["monitor"][3]["gap"] == 20 + 15 + 7, j["monitor"]
assert j["monitor"][2]["cls"] == 20, "the first invocation's point at 100 stands (the checkpoint came after it)"
rows = list(csv.DictReader(open(f"{d}/curves.csv")))
assert [int(r["step"]) for r in rows] == list(range(1, 241))
loss = {int(r["step"]): float(r["loss"]) for r in rows}
assert all(abs(a - b) < 1e-9 for a, b in ((loss[100], 1.9), (loss[101], 2.899), (loss[130], 2.87))), "requeued steps: the later lines"
w = j["smooth_window"]
assert w == 5, w                                 # 240 / 50 -> 4 -> odd 5
for s in (1, 50, 120, 240):                     # the centred moving average, clipped at the ends
    win = [loss[t] for t in range(max(1, s - 2), min(240, s + 2) + 1)]
    assert abs(float(rows[s - 1]["loss_smoothed"]) - sum(win) / len(win)) < 1e-9, s
md = open(f"{d}/report.md").read()
for text in ("| restarts | 2: at step 100 (Slurm requeue), step 220 (Slurm requeue) |", "running, or ended without a run\\_end line",
             "| ranks x threads | 2 x 1 |", "| precision | fp32 (GEMM backend openblas) |", "| Slurm jobs | 4242 |",
             "![loss: raw and smoothed](loss.svg)", "![k-NN top-1 per readout](knn.svg)", "| 150 | 3.00 | 35.00 | 40.00 | 42.00 | 1.20 |",
             "Not drawn: the run folder has no checkpoint yet", "metrics.jsonl:280"):
    assert text in md, text
PY
then pass "report_run.synthetic_requeued_partial_known_answers"; else bad "report_run.synthetic_requeued_partial_known_answers (exit $rc: $(head -3 "$w/syn.err"))"; fi
render_all synthetic "$w/syn/report" 6

# ---------------------------------------------------------------- 2. a real short run, stopped and resumed
$PY tests/tools/make_shards.py "$w/data" --counts 40,40 --size 32 --labels content >/dev/null &&
$PY tests/tools/make_shards.py "$w/data" --counts 30 --size 32 --split val --seed 4 --labels content >/dev/null || bad "report_run.make_shards"
T="--data $w/data --out $w/real --image 32 --patch 4 --width 32 --depth 2 --dec-depth 1 --heads 2 --batch 8 --steps 10
   --warmup-steps 2 --ckpt-every 5 --log-every 100 --monitor-data $w/data --monitor-every 5 --monitor-bank 80 --monitor-queries 30"
timeout 300 mpirun -np 2 "$train" $T --max-steps-this-run 7 >/dev/null 2>"$w/t1.err" &&
timeout 300 mpirun -np 2 "$train" $T >/dev/null 2>"$w/t2.err" || bad "report_run.real_training ($(head -1 "$w"/t?.err))"
"$rep" run "$w/real" >"$w/real.out" 2>"$w/real.err"; rc=$?
if [ $rc = 0 ] && grep -q "6 order pictures" "$w/real.out" && $PY tests/tools/check_report.py orders "$w/real/report" 6 32 &&
   $PY - "$w/real/report" <<'PY'
import json, sys
j = json.load(open(sys.argv[1] + "/summary.json"))
assert (j["step_lines"], j["first_step"], j["last_step"], j["restarts"]) == (10, 1, 10, [7]), j
assert [m["step"] for m in j["monitor"]] == [0, 5, 10] and all(0 <= m[r] <= 100 for m in j["monitor"] for r in ("cls", "mean", "gap"))
assert j["orders"]["source"].endswith("ckpt-00000010.bin") and j["wall_complete"] is True and j["status"].startswith("finished")
PY
then pass "report_run.real_run_orders_match_ranks"; else bad "report_run.real_run_orders_match_ranks (exit $rc: $(head -3 "$w/real.err"))"; fi
render_all real "$w/real/report" 7

# ---------------------------------------------------------------- 3. 224x224 photos through semaim-prep
"$fix" bench "$w/jpeg" 40 && mkdir -p "$w/jpeg/val" &&
for c in 0 1 2 3 4 5 6 7 8 9; do d=n0000000$c; mkdir -p "$w/jpeg/val/$d"; mv "$w/jpeg/train/$d"/img_000[0-1]*.JPEG "$w/jpeg/val/$d/" 2>/dev/null; done
"$prep" convert --src "$w/jpeg" --out "$w/photos" --train-shards 2 --val-shards 1 --threads 2 --progress none >/dev/null 2>"$w/prep.err" ||
  bad "report_run.prep_photos ($(tail -1 "$w/prep.err"))"
timeout 300 mpirun -np 2 "$train" --data "$w/photos" --out "$w/p224" --image 224 --patch 16 --width 32 --depth 1 --dec-depth 1 \
  --heads 2 --batch 2 --steps 2 --warmup-steps 0 --log-every 100 >/dev/null 2>"$w/p.err" || bad "report_run.train_224 ($(head -1 "$w/p.err"))"
"$rep" run "$w/p224" --images 4 >"$w/p.out" 2>"$w/p.err"; rc=$?
nval=$($PY -c "import json; print(json.load(open('$w/photos/manifest.json'))['splits']['val']['images'])" 2>/dev/null)
if [ $rc = 0 ] && [ "${nval:-0}" -ge 4 ] && $PY tests/tools/check_report.py orders "$w/p224/report" 4 224; then pass "report_run.photos_224_orders_match_ranks"
else bad "report_run.photos_224_orders_match_ranks (exit $rc, $nval val images: $(head -2 "$w/p.err"))"; fi
render_all photos "$w/p224/report" 7

# ---------------------------------------------------------------- 4. bad input
expect_err() {   # name fragment args...
  local name=$1 frag=$2; shift 2
  "$rep" "$@" >"$w/e.out" 2>"$w/e.err"; local rc=$?
  if [ $rc = 2 ] && [ "$(wc -l <"$w/e.err")" = 1 ] && grep -q -- "$frag" "$w/e.err"; then pass "report_run.error_$name"
  else bad "report_run.error_$name (exit $rc: $(head -2 "$w/e.err"))"; fi
}
cp -r "$w/real/report" "$w/before"
expect_err no_folder "semaim-report: run: give the run folder" run
expect_err missing_folder "nowhere/metrics.jsonl: cannot open" run "$w/nowhere"
mkdir -p "$w/empty" && : >"$w/empty/metrics.jsonl"
expect_err not_a_run "no run_start line" run "$w/empty"
expect_err bad_checkpoint "--checkpoint: " run "$w/real" --checkpoint "$w/nope.bin"
expect_err bad_data "--data: " run "$w/real" --data "$w/nowhere"
expect_err bad_flag "unknown option" run "$w/real" --frobnicate 1
[ ! -e "$w/nowhere" ] && [ ! -e "$w/empty/report" ] && diff -r "$w/before" "$w/real/report" >/dev/null &&
  pass "report_run.failures_write_nothing" || bad "report_run.failures_write_nothing"
exit $fail
