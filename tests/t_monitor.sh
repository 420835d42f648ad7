#!/usr/bin/env bash
# The k-NN monitor of semaim-train (--monitor-data): monitor lines at step 0, every N steps
# and at the end, with all three readouts and values in range; the same on 1 and 2 ranks
# (same global batch) within one query's worth; a resumed run continues the curve with the
# values of an uninterrupted one and no point twice; the monitor does not change training
# (bit-identical losses with and without it); --monitor-every 0 is off; bad monitor data is
# one line and exit 2 on every rank.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
train=$PWD/bin/semaim-train
[ -x "$train" ] || { echo "FAIL: monitor.binary ($train not built)"; exit 1; }
scratch w tmon
run() { local np=$1; shift; timeout 300 mpirun -np "$np" "$train" "$@"; }
# content labels: k-NN on these images beats chance, so the values carry information
$PY tests/tools/make_shards.py "$w/data" --counts 40,37,41,38 --size 32 --labels content >/dev/null &&
$PY tests/tools/make_shards.py "$w/data" --counts 31,30 --size 32 --split val --seed 5 --labels content >/dev/null ||
  { bad "monitor.make_shards"; exit 1; }
M="--data $w/data --image 32 --patch 8 --width 32 --depth 2 --dec-depth 1 --heads 2 --warmup-steps 2 --base-lr 5e-2
   --log-every 1000 --assign deal --resume auto"
MON="--monitor-data $w/data --monitor-every 4 --monitor-bank 120 --monitor-queries 60"

# 1. 1 rank x batch 8 and 2 ranks x batch 4, 10 steps: points 0, 4, 8 and the last (10)
run 1 $M $MON --steps 10 --batch 8 --out "$w/np1" >"$w/np1.out" 2>&1 || bad "monitor.run_np1 ($(head -2 "$w/np1.out"))"
run 2 $M $MON --steps 10 --batch 4 --out "$w/np2" >"$w/np2.out" 2>&1 || bad "monitor.run_np2 ($(head -2 "$w/np2.out"))"
cat > "$w/mon.py" <<'PY'
import json, sys
def monitor(d):
    return [json.loads(l) for l in open(f"{d}/metrics.jsonl") if '"event": "monitor"' in l]
def steps(d):
    return [json.loads(l) for l in open(f"{d}/metrics.jsonl") if '"event": "step"' in l]
PY
if $PY - "$w" <<'PY'
import sys; sys.path.insert(0, sys.argv[1]); from mon import monitor
w = sys.argv[1]
a, b = monitor(f"{w}/np1"), monitor(f"{w}/np2")
assert [m["step"] for m in a] == [0, 4, 8, 10] == [m["step"] for m in b], ([m["step"] for m in a], [m["step"] for m in b])
for m in a + b:
    assert m["bank"] == 120 and m["queries"] == 60 and m["k"] == 20 and m["classes"] == 10, m
    for r in ("cls", "mean", "gap"):
        t1, t5 = m[f"knn_top1_{r}"], m[f"knn_top5_{r}"]
        assert 0 <= t1 <= t5 <= 100 and abs(t1 * 60 / 100 - round(t1 * 60 / 100)) < 1e-3, (r, t1, t5)
    assert m["seconds"] >= m["features_s"] >= 0 and m["knn_s"] >= 0
# content labels: better than chance (10 %) at initialisation already
assert max(a[0][f"knn_top1_{r}"] for r in ("cls", "mean", "gap")) > 20, a[0]
worst = max(abs(x[f"knn_top{k}_{r}"] - y[f"knn_top{k}_{r}"]) for x, y in zip(a, b) for r in ("cls", "mean", "gap") for k in (1, 5))
assert worst <= 100 / 60 + 1e-9, f"1 and 2 ranks differ by {worst:.2f} points (one query: 1.67)"
print(f"monitor 1 vs 2 ranks: largest difference {worst:.2f} points over {len(a)} points x 3 readouts")
PY
then pass "monitor.points_readouts_ranges_and_1_vs_2_ranks"; else bad "monitor.points_readouts_ranges_and_1_vs_2_ranks"; fi
if grep -q '^step      0/10  k-NN cls [0-9.]* mean [0-9.]* gap [0-9.]*  (bank 120, queries 60' "$w/np2.out" &&
   grep -q '^step      4/10  k-NN cls' "$w/np2.out" && grep -q '^step     10/10  epoch .* img/s .*  k-NN cls [0-9.]* mean' "$w/np2.out"; then
  pass "monitor.stdout_step_line"
else bad "monitor.stdout_step_line"; sed 's/^/    | /' "$w/np2.out" | head -8; fi

# 2. the monitor does not change training: bit-identical losses without it
run 2 $M --steps 10 --batch 4 --out "$w/plain" >/dev/null 2>&1 || bad "monitor.run_plain"
if $PY - "$w" <<'PY'
import sys; sys.path.insert(0, sys.argv[1]); from mon import monitor, steps
w = sys.argv[1]
a, b = [s["loss"] for s in steps(f"{w}/np2")], [s["loss"] for s in steps(f"{w}/plain")]
assert len(a) == 10 and a == b, (a, b)
assert monitor(f"{w}/plain") == []
PY
then pass "monitor.training_unchanged"; else bad "monitor.training_unchanged"; fi
run 1 $M $MON --monitor-every 0 --steps 2 --batch 8 --out "$w/off" >/dev/null 2>&1 &&
  ! grep -q '"event": "monitor"' "$w/off/metrics.jsonl" && pass "monitor.every_0_is_off" || bad "monitor.every_0_is_off"

# 3. resume: stopped at 6 (between points) and at 8 (on a point, its checkpoint written after
#    it), then resumed: the same points with the same values as uninterrupted, none twice
for cut in 6 8; do
  run 2 $M $MON --steps 10 --batch 4 --ckpt-every 2 --max-steps-this-run $cut --out "$w/r$cut" >/dev/null 2>&1 &&
  run 2 $M $MON --steps 10 --batch 4 --ckpt-every 2 --out "$w/r$cut" >"$w/r$cut.out" 2>&1 || bad "monitor.resume_runs_$cut"
  if grep -q "resumed from .*ckpt-0000000$cut.bin" "$w/r$cut.out" && $PY - "$w" "$cut" <<'PY'
import sys; sys.path.insert(0, sys.argv[1]); from mon import monitor
w, cut = sys.argv[1], sys.argv[2]
a, b = monitor(f"{w}/np2"), monitor(f"{w}/r{cut}")
strip = lambda ms: [{k: v for k, v in m.items() if not k.endswith("_s") and k != "seconds"} for m in ms]
assert strip(a) == strip(b), (strip(a), strip(b))
PY
  then pass "monitor.resumed_run_continues_the_curve_cut_at_$cut"; else bad "monitor.resumed_run_continues_the_curve_cut_at_$cut"; fi
done

# 4. bad monitor data: one line, exit 2, no hang
expect_fail() {   # name text args...
  local name=$1 text=$2; shift 2
  timeout 120 mpirun -np 2 "$train" $M --steps 2 --batch 4 --out "$w/bad" "$@" >"$w/bad.out" 2>&1
  local rc=$? n
  n=$(grep -c '^semaim-train: ' "$w/bad.out")
  if [ $rc = 2 ] && [ "$n" = 1 ] && grep -qF -- "$text" "$w/bad.out"; then pass "monitor.bad_input_$name"
  else bad "monitor.bad_input_$name (exit $rc, want 2 and one line with '$text')"; sed 's/^/    | /' "$w/bad.out" | head -4; fi
}
expect_fail missing_folder "--monitor-data: " --monitor-data "$w/nowhere"
mkdir -p "$w/noval" && cp -r "$w/data/train" "$w/noval/"
expect_fail no_val_split "--monitor-data: " --monitor-data "$w/noval"
$PY tests/tools/make_shards.py "$w/small" --counts 20 --size 16 >/dev/null && $PY tests/tools/make_shards.py "$w/small" --counts 20 --size 16 --split val >/dev/null
expect_fail smaller_images "smaller than the model's 32x32 input" --monitor-data "$w/small"
expect_fail bank_zero "--monitor-bank 0 is out of range" --monitor-data "$w/data" --monitor-bank 0
exit $fail
