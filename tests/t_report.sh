#!/usr/bin/env bash
# bin/semaim-report end to end: a synthetic sweep with known answers (exact efficiencies, the
# repeat interval, malformed lines reported with file and line), a well-formed SVG, every bad
# input a one-line error with exit 2 and nothing written, the bench index, and a report from
# three tiny real training runs (1 and 2 ranks) whose series are inferred from their batches.
. "$(dirname "$0")/lib.sh"
rep=$PWD/bin/semaim-report
train=$PWD/bin/semaim-train
py=$PY
if [ ! -x "$rep" ]; then echo "FAIL: report_binary ($rep not built)"; exit 1; fi
scratch work treport

# ---------------------------------------------------------------- synthetic sweep
$py - "$work/sweep" "$work/ar.json" <<'EOF'
import json, os, sys
out, ar = sys.argv[1], sys.argv[2]
def run(folder, ranks, gbatch, t, job=None, extra=""):
    os.makedirs(os.path.join(out, folder), exist_ok=True)
    with open(os.path.join(out, folder, "metrics.jsonl"), "w") as f:
        f.write(json.dumps({"event": "run_start", "time": 0, "ranks": ranks, "threads": 2, "nodes_hint": str(max(1, ranks // 2)),
            "slurm_job_id": job, "slurm_restart_count": 0, "resumed_from": None, "start_step": 0, "global_batch": gbatch,
            "steps_per_epoch": 100, "total_steps": 100, "peak_lr": 1e-3, "params": 2500000, "gflop_per_image": 1.5,
            "versions": {"mpi": "Open MPI v4.1.4", "hdf5": "1.10.8", "openblas": "OpenBLAS 0.3.21"},
            "settings": {"preset": "tiny", "image": 32, "order": "semantic", "allreduce": "ring"}}) + "\n")
        times = [20 * t, 20 * t] + [0.9 * t] * 5 + [t] * 5 + [1.1 * t] * 5   # 2 dropped, median of the 15 kept: t
        for i, s in enumerate(times):
            f.write(json.dumps({"event": "step", "step": i + 1, "epoch": 0, "loss": 1.0, "lr": 1e-3, "grad_norm": 1.0,
                "images_per_s": gbatch / s, "step_s": s, "data_wait_s": 0.25 * s, "compute_s": 0.5 * s, "comm_s": 0.25 * s}) + "\n")
        f.write(extra)
for n, t in [(1, 1.0), (2, 0.625), (4, 0.4), (8, 0.25)]:
    run(f"strong-np{n}", n, 64, t, job=str(9000 + n))
run("strong-np2-rep2", 2, 64, 0.5, job="9102")        # repeats at N=2: step medians 0.625 and 0.5
for n, t in [(1, 0.5), (2, 0.625), (4, 0.8)]:
    run(f"weak-np{n}", n, 16 * n, t, extra='{"event": "step", "step_s": "oops"}\n{"event": "st' if n == 4 else "")
os.makedirs(os.path.join(out, "weak-np8"))              # a run that never wrote metrics
figs = []
for k in range(8):
    by = 1024 * 4 ** k; t = 2 * 6e-6 + by / 4e9         # alpha 6 us, beta 4 GB/s, 2 ranks
    figs.append({"name": "allreduce_ring_busbw_%s" % (f"{by >> 20}MiB" if by >= 1 << 20 else f"{by >> 10}KiB"),
                 "value": by / t / 1e9, "unit": "GB/s"})
json.dump({"bench": "allreduce", "command": "make bench (tests/bench/allreduce.sh)", "machine": "test", "date": "2030-01-01T00:00:00Z",
           "env": {}, "figures": figs}, open(ar, "w"))
EOF
[ $? = 0 ] || { bad "synthetic_sweep_written"; exit 1; }

"$rep" --runs "$work/sweep" --name syn --results "$work/results" --allreduce "$work/ar.json" --bandwidths 10,100 \
  >"$work/syn.out" 2>"$work/syn.err"
rc=$?
if [ $rc = 0 ] && [ -f "$work/results/syn/scaling.csv" ] && [ -f "$work/results/syn/scaling.json" ] &&
   [ -f "$work/results/syn/scaling.md" ] && [ -f "$work/results/syn/scaling.svg" ]; then
  pass "synthetic_report_written"
else bad "synthetic_report_written (exit $rc: $(head -3 "$work/syn.err"))"; fi

if $py - "$work/results/syn" <<'EOF'
import csv, json, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/scaling.csv")))
S = {int(r["ranks"]): r for r in rows if r["kind"] == "strong"}
W = {int(r["ranks"]): r for r in rows if r["kind"] == "weak"}
assert sorted(S) == [1, 2, 4, 8] and sorted(W) == [1, 2, 4], (sorted(S), sorted(W))
# strong: t = 1, median(0.625, 0.5) = 0.5625, 0.4, 0.25 -> E = X(N) / (N X(1))
want = {1: 1.0, 2: 1 / (2 * 0.5625), 4: 0.625, 8: 0.5}
for n, e in want.items():
    assert abs(float(S[n]["efficiency"]) - e) < 1e-9, (n, S[n]["efficiency"], e)
    assert abs(float(S[n]["throughput_images_per_s"]) - 64 * e * n) < 1e-6
    assert abs(float(S[n]["per_rank_images_per_s"]) - 64 * e) < 1e-6
assert S[2]["repeats"] == "2" and S[2]["interval"] == "min-max over repeats"
assert abs(float(S[2]["throughput_lo"]) - 64 / 0.625) < 1e-6 and abs(float(S[2]["throughput_hi"]) - 128) < 1e-6
assert S[1]["interval"].startswith("bootstrap") and float(S[1]["throughput_lo"]) <= 64 <= float(S[1]["throughput_hi"])
# weak: E = t(1) / t(N)
for n, e in {1: 1.0, 2: 0.8, 4: 0.625}.items():
    assert abs(float(W[n]["efficiency"]) - e) < 1e-9, (n, W[n]["efficiency"])
    assert abs(float(W[n]["compute_s"]) - 0.5 * float(W[n]["step_s"])) < 1e-12
assert S[4]["slurm_job_ids"] == "9004" and S[2]["slurm_job_ids"] == "9002,9102", S[2]["slurm_job_ids"]
assert S[8]["nodes"] == "4" and S[1]["threads"] == "2" and S[4]["steady_steps"] == "15"
j = json.load(open(f"{d}/scaling.json"))
p = j["projection"]
assert p["label"] == "model, not a measurement" and "2(N-1)" in p["allreduce_formula"]
assert abs(p["alpha_s"] / 6e-6 - 1) < 1e-6 and abs(p["beta_bytes_per_s"] / 4e9 - 1) < 1e-6, (p["alpha_s"], p["beta_bytes_per_s"])
assert p["ranks"] == [8, 16, 32, 64, 128, 256, 512, 1024] and len(p["rows"]) == 3
tc, B = p["t_compute_s"], p["grad_bytes"]
assert abs(tc - 0.25) < 1e-12 and B == 1e7, (tc, B)             # weak-np1: compute 0.5 x 0.5 s; 4 x 2.5M params
for row in p["rows"][:2]:
    beta = row["bandwidth_gbit_s"] * 1e9 / 8
    for N, e in zip(p["ranks"], row["efficiency"]):
        t = 2 * (N - 1) * p["alpha_s"] + 2 * (N - 1) / N * B / beta
        assert abs(e - tc / (tc + t)) < 1e-9, (N, e)
assert j["skipped_lines"] == 2 and j["runs"][0]["versions"]["openblas"] == "OpenBLAS 0.3.21"
EOF
then pass "synthetic_exact_efficiencies_interval_projection"; else bad "synthetic_exact_efficiencies_interval_projection"; fi

m="$work/sweep/weak-np4/metrics.jsonl"
if grep -q "$m:19: step line without a finite \"step_s\"" "$work/syn.err" && grep -q "$m:20: not JSON (truncated line" "$work/syn.err" &&
   grep -q "weak-np8: run folder without metrics.jsonl" "$work/syn.err" && grep -q "metrics.jsonl:20" "$work/results/syn/scaling.md"; then
  pass "malformed_lines_reported_with_file_and_line"
else bad "malformed_lines_reported_with_file_and_line ($(head -5 "$work/syn.err"))"; fi

if $py - "$work/results/syn/scaling.svg" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg" and float(root.get("width")) >= 800
lines = root.findall(f".//{ns}polyline")
texts = " ".join((t.text or "") for t in root.iter(f"{ns}text"))
assert len(lines) >= 2 * 2 + 3, len(lines)                       # 2 series x 2 panels + 3 model curves
assert "Throughput, log-log" in texts and "model: 10 Gb/s" in texts and "ideal" in texts, texts
for pl in lines:                                                   # every point inside the canvas
    for xy in pl.get("points").split():
        x, y = map(float, xy.split(","))
        assert 0 <= x <= float(root.get("width")) and 0 <= y <= float(root.get("height")), xy
EOF
then pass "svg_well_formed_with_panels_and_model"; else bad "svg_well_formed_with_panels_and_model"; fi

grep -q "## Projection beyond this machine (a model, not a measurement)" "$work/results/syn/scaling.md" &&
  grep -q "| weak, batch 16 per rank | 4 |" "$work/results/syn/scaling.md" && grep -q "Open MPI v4.1.4" "$work/results/syn/scaling.md" &&
  pass "markdown_sections" || bad "markdown_sections"

# ---------------------------------------------------------------- bad input: one line, exit 2, nothing written
expect_err() {   # $1 name, $2 expected exit, $3 message fragment, rest: arguments
  local name=$1 want=$2 frag=$3; shift 3
  "$rep" "$@" >"$work/e.out" 2>"$work/e.err"
  local rc=$?
  record_bad_input "$name" "$rc" "$work/e.err" semaim-report
  if [ $rc = "$want" ] && grep -q -- "$frag" "$work/e.err" && [ "$(wc -l <"$work/e.err")" -ge 1 ] && [ ! -e "$work/r2/x" ]; then
    pass "$name"
  else bad "$name (exit $rc, stderr: $(head -2 "$work/e.err"))"; fi
}
mkdir -p "$work/empty" "$work/nometrics/strong-np1" && echo '{}' >"$work/nometrics/strong-np1/settings.json"
mkdir -p "$work/onlybad/run" && printf 'garbage\n{"event": "run_start"}\n' >"$work/onlybad/run/metrics.jsonl"
expect_err error_empty_folder 2 "empty" --runs "$work/empty" --name x --results "$work/r2"
expect_err error_missing_folder 2 "No such file" --runs "$work/nope" --name x --results "$work/r2"
expect_err error_no_metrics 2 "no metrics.jsonl found" --runs "$work/nometrics" --name x --results "$work/r2"
expect_err error_only_bad_lines 2 "steady-state" --runs "$work/onlybad" --name x --results "$work/r2"
expect_err error_runs_required 2 "--runs is required" --name x --results "$work/r2"
expect_err error_bad_name 2 "--name '../x'" --runs "$work/sweep" --name ../x --results "$work/r2"
expect_err error_bad_bandwidths 2 "--bandwidths" --runs "$work/sweep" --name x --results "$work/r2" --bandwidths 10,,5
expect_err error_missing_allreduce 2 "nope.json: cannot read" --runs "$work/sweep" --name x --results "$work/r2" --allreduce "$work/nope.json"
expect_err error_unknown_flag 2 "unknown option" --runs "$work/sweep" --name x --results "$work/r2" --frobnicate 1
touch "$work/afile"
expect_err error_results_not_writable 1 "afile" --runs "$work/sweep" --name x --results "$work/afile"
# a failed rewrite leaves the previous report whole
cp -r "$work/results/syn" "$work/syn.before"
"$rep" --runs "$work/empty" --name syn --results "$work/results" >/dev/null 2>&1
diff -r "$work/syn.before" "$work/results/syn" >/dev/null && [ -z "$(ls -A "$work/results/syn" | grep '^\.')" ] &&
  pass "failed_run_keeps_previous_report" || bad "failed_run_keeps_previous_report"
# without a benchmark record the report says why there is no projection, and still succeeds
"$rep" --runs "$work/sweep" --name noproj --results "$work/r3" >/dev/null 2>&1 &&
  grep -q "Not made: no ring all-reduce benchmark" "$work/r3/noproj/scaling.md" &&
  $py -c 'import json,sys; assert json.load(open(sys.argv[1]))["projection"] is None' "$work/r3/noproj/scaling.json" &&
  pass "no_benchmark_no_projection" || bad "no_benchmark_no_projection"

# ---------------------------------------------------------------- bench index
mkdir -p "$work/res"
cp "$work/ar.json" "$work/res/bench-allreduce.json"
printf '{"bench": "cut", "figures": [' >"$work/res/bench-cut.json"
cp -r "$work/results/syn" "$work/res/syn"
"$rep" bench --results "$work/res" >"$work/b.out" 2>"$work/b.err"
rc=$?
if [ $rc = 0 ] && grep -q '`allreduce_ring_busbw_1KiB`' "$work/res/README.md" && grep -q "make bench (tests/bench/allreduce.sh)" "$work/res/README.md" &&
   grep -q "2030-01-01T00:00:00Z" "$work/res/README.md" && grep -q "bench-cut.json" "$work/res/README.md" &&
   grep -q "bench-cut.json: not JSON" "$work/b.err" && grep -q "\[syn\](syn/scaling.md)" "$work/res/README.md"; then
  pass "bench_index_readme"
else bad "bench_index_readme (exit $rc: $(head -3 "$work/b.err"))"; fi
"$rep" bench --results "$work/nope" >/dev/null 2>"$work/b.err"; rc=$?
[ $rc = 2 ] && grep -q "nope" "$work/b.err" && pass "bench_index_missing_folder" || bad "bench_index_missing_folder (exit $rc)"

# ---------------------------------------------------------------- three tiny real runs
if [ -x "$train" ]; then
  $py tests/tools/make_shards.py "$work/data" --counts 24,24 --size 32 >/dev/null || bad "make_shards"
  M="--data $work/data --image 32 --patch 8 --width 32 --depth 2 --dec-depth 2 --heads 2 --steps 6 --warmup-steps 1 --log-every 1000 --resume no"
  ok=1; mkdir -p "$work/real"
  for cfg in "1 8 np1-b8" "2 4 np2-b4" "2 8 np2-b8"; do
    set -- $cfg
    OMP_NUM_THREADS=1 timeout 120 mpirun -np "$1" "$train" $M --batch "$2" --out "$work/real/$3" >/dev/null 2>"$work/$3.err" ||
      { ok=0; bad "real_run_$3 ($(head -1 "$work/$3.err"))"; }
  done
  if [ $ok = 1 ]; then
    "$rep" --runs "$work/real" --name real --results "$work/results" --allreduce "$work/ar.json" >"$work/real.out" 2>"$work/real.err"
    rc=$?
    if [ $rc = 0 ] && $py - "$work/results/real/scaling.json" <<'EOF'
import json, math, sys
j = json.load(open(sys.argv[1]))
assert len(j["runs"]) == 3, len(j["runs"])
kinds = sorted((s["kind"], s["grouped_by"], [p["ranks"] for p in s["points"]]) for s in j["series"])
assert kinds == [("strong", "batches", [1, 2]), ("weak", "batches", [1, 2])], kinds
for s in j["series"]:
    p0, p1 = s["points"]
    assert p0["efficiency"] == 1.0 and 0 < p1["efficiency"] < 3 and math.isfinite(p1["efficiency"])
    assert p1["steady_steps"] == 4 and p1["step_s"] > 0 and p1["compute_s"] > 0
for r in j["runs"]:
    assert r["versions"]["mpi"].startswith("Open MPI") and r["versions"]["hdf5"] and r["params"] > 0
assert j["projection"]["reference_run"] == "np1-b8" and j["skipped_lines"] == 0
EOF
    then pass "real_runs_inferred_strong_and_weak"; else bad "real_runs_inferred_strong_and_weak (exit $rc: $(head -3 "$work/real.err"))"; fi
  fi
else bad "train_binary ($train not built)"; fi
exit $fail
