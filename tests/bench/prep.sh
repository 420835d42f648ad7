#!/usr/bin/env bash
# semaim-prep throughput: ImageNet-like JPEGs (500x375, every fifth 375x500, quality 90, 4:2:0,
# ~90 KB each) -> 256x256 train shards, one process with one decoding thread. The per-core
# figure divides by the CPU time the process used (user + system), so it stays meaningful on
# a machine shared with other jobs; the wall-clock figures are printed as well.
# Target (issue #3): >= 300 images/s per core.
set -u
cd "$(dirname "$0")/../.."
N=${PREP_BENCH_IMAGES:-400}
dir=build/bench-prep
src=$dir/src-$N
make -s bin/semaim-prep build/tools/prep_fixtures >/dev/null || { echo "prep bench: build failed" >&2; exit 1; }
if [ ! -f "$src/.complete" ]; then
  rm -rf "$src"; mkdir -p "$dir"
  build/tools/prep_fixtures bench "$src" "$N" || { echo "prep bench: fixture generation failed" >&2; exit 1; }
  touch "$src/.complete"
fi
kb=$(du -k --apparent-size -s "$src/train" | cut -f1)
run() {   # $1 threads, $2 output dir; prints "wall cpu"
  rm -rf "$2"
  OMP_NUM_THREADS=$1 /usr/bin/time -o "$dir/time.txt" -f "%e %U %S" bin/semaim-prep convert --src "$src" --out "$2" \
    --train-shards 4 --val-shards 0 --threads "$1" --progress none 2>/dev/null || { echo "prep bench: convert failed" >&2; exit 1; }
  awk '{ printf "%s %.3f\n", $1, $2 + $3 }' "$dir/time.txt"
}
# Warm the page cache so the first run does not time the disk.
cat "$src"/train/*/* >/dev/null
best_core=0; best_wall=0
for rep in 1 2 3; do
  read -r wall cpu < <(run 1 "$dir/out")
  pc=$(awk -v n="$N" -v c="$cpu" 'BEGIN { printf "%.1f", n / c }')
  pw=$(awk -v n="$N" -v w="$wall" 'BEGIN { printf "%.1f", n / w }')
  echo "prep run $rep: $N images, 1 thread: wall ${wall}s, cpu ${cpu}s"
  best_core=$(awk -v a="$best_core" -v b="$pc" 'BEGIN { print (b > a) ? b : a }')
  best_wall=$(awk -v a="$best_wall" -v b="$pw" 'BEGIN { print (b > a) ? b : a }')
done
bin/semaim-prep verify "$dir/out" 2>/dev/null || { echo "prep bench: output failed verify" >&2; exit 1; }
read -r wall2 cpu2 < <(run 2 "$dir/out2")
echo "bench prep_images_per_s_per_core: $best_core images/s"
echo "bench prep_images_per_s_wall_1thread: $best_wall images/s"
echo "bench prep_images_per_s_wall_2threads: $(awk -v n="$N" -v w="$wall2" 'BEGIN { printf "%.1f", n / w }') images/s"
echo "bench prep_source_kb_per_image: $(awk -v k="$kb" -v n="$N" 'BEGIN { printf "%.1f", k / n }') KB"
echo "(target: >= 300 images/s per core; best of 3 runs; machine load: $(cut -d' ' -f1-3 /proc/loadavg))"
rm -rf "$dir/out" "$dir/out2"
