#!/usr/bin/env bash
# Does pretraining pay? The demo model (32x32, patch 4, width 96, depth 6, decoder 3) pretrained
# on Fashion-MNIST (60k train) for a fixed budget of steps, on 2 ranks x 1 thread, then judged
# against the same encoder at initialisation:
#   k-NN (k 20, T 0.07) of every readout (cls, mean, gap): 60k bank, 10k queries, and the
#     raw-pixel k-NN on the same bank;
#   a linear probe (SPEC §5 head, 90 epochs) on the frozen features of the few labelled images;
#   fine-tuning on the few labelled images (the small-data recipe of docs/eval.md) against
#     training the same classifier from scratch with the same recipe and budget;
# for the semantic order with two seeds (the noise) and for raster and stochastic (one seed,
# same budget). The encoder at initialisation is the first seed's (k-NN, probe); from-scratch
# fine-tuning runs for every seed. Not part of `make test` or `make bench`: `make bench-learning` (about 70 min
# on this 2-core machine from nothing: 3,582 s on 2026-12-01 with the at-initialisation stages already done).
# Prints "bench <name>: <value> <unit>" lines (tests/bench.sh records
# them in results/bench-learning.json), the table as Markdown, and writes every figure with the
# command of each stage to results/bench-learning-runs.json.
# Knobs: BENCH_LEARN_STEPS (pretraining steps, default 600: at 200 the margin of fine-tuning over from scratch
# was inside the seed spread on one seed), BENCH_LEARN_LABELS (labelled
# images, default 1000), BENCH_LEARN_FT_EPOCHS (default 20), BENCH_LEARN_FT_BATCH (per rank, default
# 16; the peak lr stays 2e-3), BENCH_LEARN_FT_ALL=1 (fine-tune
# the raster and stochastic encoders too; by default they get k-NN and the probe), BENCH_LEARN_SEEDS (semantic's,
# default "0 1"), BENCH_LEARN_ORDERS (one seed each, default "raster stochastic"),
# BENCH_LEARN_LR (pretraining base lr, default 6e-3), BENCH_LEARN_DIR (work folder, default build/bench-learning; shards and finished stages are
# reused, delete it to start again), BENCH_LEARN_DATA (60k/10k 32x32 shards to reuse, default
# build/demo/shards when scripts/demo.sh has made them), BENCH_LEARN_SUMMARY_ONLY=1 (no
# training: the table of the stages finished so far).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PY=/usr/bin/python3
FM=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
steps=${BENCH_LEARN_STEPS:-600}
labels=${BENCH_LEARN_LABELS:-1000}
ft_epochs=${BENCH_LEARN_FT_EPOCHS:-20}
seeds=${BENCH_LEARN_SEEDS:-0 1}
orders=${BENCH_LEARN_ORDERS:-raster stochastic}
w=${BENCH_LEARN_DIR:-build/bench-learning}
for b in semaim-prep semaim-train semaim-eval semaim-finetune; do [ -x bin/$b ] || { echo "bin/$b not built"; exit 1; }; done
mkdir -p "$w"
log=$w/commands.txt
t_start=$(date +%s)
# runs a stage once: skipped when its marker exists (a re-run reuses finished stages)
stage() { local mark=$1; shift; [ -f "$mark" ] && return 0; local t=$(date +%s); "$@"; echo "$(( $(date +%s) - t )) s: $*" >> "$log"; touch "$mark"; }
mp() { mpirun -np 2 --bind-to none "$@"; }

# ---- data: 60k/10k shards (the demo's when present) and the first $labels train images
data=${BENCH_LEARN_DATA:-build/demo/shards}
if [ ! -f "$data/manifest.json" ]; then
  data=$w/shards
  stage "$w/.jpeg" bin/semaim-prep fmnist --src "$FM" --out "$w/jpeg" --threads 2
  stage "$w/.shards" bin/semaim-prep convert --src "$w/jpeg" --out "$data" --train-shards 8 --val-shards 2 --store raw \
    --size 32 --val-size 32 --val-resize 32 --threads 2 --progress none
fi
few=$w/few$labels
if [ ! -f "$few/.done" ]; then
  rm -rf "$few" "$w/jpeg-few"
  bin/semaim-prep fmnist --src "$FM" --out "$w/jpeg-few" --limit "$labels" --threads 2 >/dev/null
  bin/semaim-prep convert --src "$w/jpeg-few" --out "$few/shards" --train-shards 2 --val-shards 1 --store raw --size 32 \
    --val-size 32 --val-resize 32 --threads 2 --progress none >/dev/null
  # the labelled train images with the whole 10k test split as val
  mkdir -p "$few/data" && ln -s "$(realpath "$few/shards/train")" "$few/data/train" &&
    ln -s "$(realpath "$data/val")" "$few/data/val"
  rm -rf "$w/jpeg-few"; touch "$few/.done"
fi

M="--image 32 --patch 4 --width 96 --depth 6 --dec-depth 3 --heads 3"
# the demo's recipe (scripts/demo.sh)
PT="--batch 64 --steps $steps --warmup-steps $((steps / 10)) --base-lr ${BENCH_LEARN_LR:-6e-3} --ckpt-every $steps --log-every 100"
# the small-data fine-tuning recipe (jobs/finetune-small.conf; docs/eval.md, "Small data sets")
# at a global batch of 32 (1000 labels: 31 steps an epoch, not 7) with the recipe's peak lr
# of 2e-3 (its base lr 4e-3 is for a global batch of 128)
ft_batch=${BENCH_LEARN_FT_BATCH:-16}
ft_lr=$(awk -v b="$ft_batch" 'BEGIN { print 4e-3 * 128 / (2 * b) }')
FT="--config jobs/finetune-small.conf --batch $ft_batch --base-lr $ft_lr --epochs $ft_epochs --warmup-epochs $((ft_epochs / 10)) \
  --eval-every 1000 --log-every 1000"

# features of the 60k bank, the 10k queries and the labelled images; k-NN of every readout,
# the linear probe on the labelled images (every readout), fine-tuning on them
evaluate() {   # evaluate NAME SOURCE-FLAGS...
  local n=$1; shift
  local d=$w/$n
  mkdir -p "$d"
  stage "$d/.ftr" mp bin/semaim-eval features "$@" --data "$data" --split train --out "$d/train.h5"
  stage "$d/.fva" mp bin/semaim-eval features "$@" --data "$data" --split val --out "$d/val.h5"
  stage "$d/.ffew" mp bin/semaim-eval features "$@" --data "$few/data" --split train --out "$d/few.h5"
  for f in cls mean gap; do
    stage "$d/.knn_$f" mp bin/semaim-eval knn --train-features "$d/train.h5" --val-features "$d/val.h5" --feature $f --out "$d"
    stage "$d/.lp_$f" mp bin/semaim-eval linprobe --train-features "$d/few.h5" --val-features "$d/val.h5" --feature $f \
      --probe-batch 256 --out "$d"
  done
  rm -f "$d/train.h5"   # 60k x 3 readouts: 70 MB each, not needed again
}
finetune() {   # finetune NAME SOURCE-FLAGS...
  local n=$1; shift
  mkdir -p "$w/$n"
  stage "$w/$n/.ft" mp bin/semaim-finetune "$@" --data "$few/data" --out "$w/$n/ft" $FT
}

# the first seed's semantic run and its init first, then the other orders, then the other
# seeds: a run cut short still has the main comparison
first=$(echo $seeds | cut -d' ' -f1)
runs=("semantic:$first")
for o in $orders; do runs+=("$o:$first"); done
for s in $seeds; do [ "$s" = "$first" ] || runs+=("semantic:$s"); done
[ -n "${BENCH_LEARN_SUMMARY_ONLY:-}" ] || for r in "${runs[@]}"; do
  o=${r%%:*}; s=${r##*:}; n=$o-s$s
  mkdir -p "$w/$n"
  stage "$w/$n/.pretrain" mp bin/semaim-train --data "$data" --out "$w/$n/run" $M $PT --order "$o" --seed "$s"
  ck=$w/$n/run/ckpt-$(printf %08d "$steps").bin
  evaluate "$n" --checkpoint "$ck"
  [ "$o" = semantic ] || [ -n "${BENCH_LEARN_FT_ALL:-}" ] && finetune "$n" --checkpoint "$ck"
  if [ "$o" = semantic ]; then   # the same encoder at initialisation (this seed): from scratch; k-NN and
    # probe of the first seed's (the init's spread over seeds is not what this measures)
    [ "$s" = "$first" ] && evaluate "init-s$s" --checkpoint "$ck" --at-init
    finetune "init-s$s" --checkpoint "$ck" --at-init
  fi
done
mkdir -p "$w/pixels"
if [ -z "${BENCH_LEARN_SUMMARY_ONLY:-}" ]; then
  stage "$w/pixels/.knn" mp bin/semaim-eval knn --raw-pixels --data "$data" --out "$w/pixels"
  stage "$w/pixels/.lp" mp bin/semaim-eval linprobe --raw-pixels --data "$few/data" --probe-batch 256 --out "$w/pixels"
fi
wall=$(( $(date +%s) - t_start ))

mkdir -p results
machine="$(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB"
$PY - "$w" "$steps" "$labels" "$ft_epochs" "$wall" "${runs[*]}" "$log" "$machine" <<'PY'
import json, statistics, sys, time
w, steps, labels, ft_epochs, wall, runs, log, machine = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6].split(), sys.argv[7], sys.argv[8]
def rows(p):
    try: return [json.loads(l) for l in open(p)]
    except FileNotFoundError: return []
def last(p, ev, **kw):
    r = [x for x in rows(p) if x["event"] == ev and all(x.get(k) == v for k, v in kw.items())]
    return r[-1]["top1"] if r else None
def figs(n):
    e = f"{w}/{n}/eval.jsonl"
    f = {f"knn_{k}": last(e, "knn", feature=k) for k in ("cls", "mean", "gap")}
    f.update({f"probe_{k}": last(e, "linprobe", feature=k) for k in ("cls", "mean", "gap")})
    f["finetune"] = last(f"{w}/{n}/ft/eval.jsonl", "finetune")
    return f
names = [r.split(":")[0] + "-s" + r.split(":")[1] for r in runs]
seeds = [n.split("-s")[1] for n in names if n.startswith("semantic")]
table = {n: figs(n) for n in names}
table.update({f"init-s{s}": figs(f"init-s{s}") for s in seeds})
px = {"knn": last(f"{w}/pixels/eval.jsonl", "knn"), "probe": last(f"{w}/pixels/eval.jsonl", "linprobe")}
cols = ["knn_cls", "knn_mean", "knn_gap", "probe_cls", "probe_mean", "probe_gap", "finetune"]
fmt = lambda v: "–" if v is None else f"{v:.2f}"
print(f"\n| encoder ({steps} pretraining steps) | k-NN cls | k-NN mean | k-NN gap | probe cls | probe mean | probe gap | fine-tune |")
print("| --- | " + " | ".join("---:" for _ in cols) + " |")
for n, f in table.items():
    label = n.replace("-s", ", seed ").replace("init", "at initialisation (scratch)")
    print(f"| {label} | " + " | ".join(fmt(f[c]) for c in cols) + " |")
print(f"| raw pixels | {fmt(px['knn'])} | | | {fmt(px['probe'])} | | | |")
# the noise: the spread of the two semantic seeds (and of the two inits)
sem = [table[f"semantic-s{s}"] for s in seeds]
ini = [table[f"init-s{s}"] for s in seeds]
out = []
for c in cols:
    a = [f[c] for f in sem if f[c] is not None]; b = [f[c] for f in ini if f[c] is not None]
    if a: out.append((f"learning_semantic_{c}", statistics.mean(a), "%"))
    if b: out.append((f"learning_init_{c}", statistics.mean(b), "%"))
    if a and b: out.append((f"learning_gain_{c}", statistics.mean(a) - statistics.mean(b), "points"))
    if len(a) > 1: out.append((f"learning_seed_spread_{c}", max(a) - min(a), "points"))
    for n in names:
        if not n.startswith("semantic") and table[n][c] is not None:
            out.append((f"learning_{n.split('-s')[0]}_{c}", table[n][c], "%"))
if px["knn"] is not None: out.append(("learning_pixels_knn", px["knn"], "%"))
if px["probe"] is not None: out.append(("learning_pixels_probe", px["probe"], "%"))
out.append(("learning_wall_this_invocation", wall, "s"))
# every stage's own seconds, over all invocations (a re-run reuses finished stages)
stage_s = sum(int(l.split(" s: ")[0]) for l in open(log) if " s: " in l)
out.append(("learning_wall_all_stages", stage_s, "s"))
print()
for k, v, u in out: print(f"bench {k}: {v:.2f} {u}")
json.dump({"bench": "learning-runs", "command": "make bench-learning (tests/bench/learning.sh)", "machine": machine,
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "figures": [{"name": k, "value": round(v, 4), "unit": u} for k, v, u in out],
           "settings": {"pretraining_steps": steps, "labels": labels, "finetune_epochs": ft_epochs},
           "wall_s": wall, "stages_s": stage_s, "table": table, "raw_pixels": px, "stages": open(log).read().splitlines()},
          open("results/bench-learning-runs.json.tmp", "w"), indent=1)
PY
mv results/bench-learning-runs.json.tmp results/bench-learning-runs.json
