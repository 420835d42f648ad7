#!/usr/bin/env bash
# Seed corpora for the fuzz targets, made from real files: a tiny pretraining and fine-tuning
# run (checkpoints, settings.json, metrics.jsonl), an export (safetensors), a features file,
# a semaim-prep conversion of the fixture tree (JPEGs, plan, records, manifest). Nothing of it
# is committed (tests/fuzz/regress/ holds the inputs that found bugs).
# Usage: tests/fuzz/seeds.sh OUT   (needs bin/* and build/tools/prep_fixtures)
set -u
cd "$(dirname "$0")/../.."
out=${1:?usage: seeds.sh OUT}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PYTHONDONTWRITEBYTECODE=1
PY=/usr/bin/python3
w=$(mktemp -d "${TMPDIR:-/tmp}/fuzzseeds.XXXXXX") || exit 1
trap 'rm -rf "$w"' EXIT
die() { echo "seeds: $*" >&2; exit 1; }
for t in json options safetensors checkpoint metrics manifest jpeg loader_jpeg featfile shards; do mkdir -p "$out/fuzz_$t"; done
# seed NAME TARGET PREFIX FILE: PREFIX (printf escapes) then FILE's bytes
seed() { { printf "$3"; cat "$4"; } >"$out/fuzz_$2/$1"; }

# a run small enough that its files are a few kilobytes (libFuzzer mutates whole inputs)
M="--image 8 --patch 4 --width 8 --depth 1 --dec-depth 1 --heads 1"
$PY tests/tools/make_shards.py "$w/data" --counts 9,8 --size 8 >/dev/null &&
$PY tests/tools/make_shards.py "$w/data" --counts 6 --size 8 --split val --seed 1 >/dev/null || die "make_shards failed"
bin/semaim-train --data "$w/data" $M --batch 4 --steps 3 --ckpt-every 2 --warmup-steps 1 --log-every 100 \
  --out "$w/pre" >/dev/null 2>"$w/err" || die "semaim-train: $(head -1 "$w/err")"
bin/semaim-finetune --checkpoint "$w/pre/ckpt-00000003.bin" --data "$w/data" --batch 4 --steps 2 --classes 10 \
  --eval-every 1000 --log-every 100 --out "$w/ft" >/dev/null 2>"$w/err" || die "semaim-finetune: $(head -1 "$w/err")"
bin/semaim-eval export --checkpoint "$w/pre/ckpt-00000003.bin" --out "$w/enc.safetensors" >/dev/null 2>"$w/err" &&
bin/semaim-eval export --checkpoint "$w/pre/ckpt-00000003.bin" --full --out "$w/full.safetensors" >/dev/null 2>>"$w/err" &&
bin/semaim-eval features --checkpoint "$w/pre/ckpt-00000003.bin" --data "$w/data" --split val --out "$w/f.h5" \
  >/dev/null 2>>"$w/err" || die "semaim-eval: $(head -1 "$w/err")"

# checkpoints: as written, with both checksums repaired after mutation, and with a cut newer copy
for f in "$w/pre/ckpt-00000003.bin" "$w/ft/ft-00000002.bin"; do
  b=$(basename "$f" .bin)
  seed "$b-asis" checkpoint '\000' "$f"; seed "$b-fixcrc" checkpoint '\003' "$f"; seed "$b-newer" checkpoint '\007' "$f"
done
seed enc safetensors '' "$w/enc.safetensors"
seed full safetensors '' "$w/full.safetensors"
# the safetensors headers and the run folders' JSON for the JSON reader
for f in enc full; do
  $PY - "$w/$f.safetensors" "$out/fuzz_json/header-$f" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<Q", b, 0)[0]
open(sys.argv[2], "wb").write(b[8:8 + n])
EOF
done
cp "$w/pre/settings.json" "$out/fuzz_json/settings-pre"; cp "$w/ft/settings.json" "$out/fuzz_json/settings-ft"
i=0
while IFS= read -r line; do i=$((i + 1)); printf '%s' "$line" >"$out/fuzz_json/metrics-line-$i"; done <"$w/pre/metrics.jsonl"
for f in results/bench-*.json; do cp "$f" "$out/fuzz_json/$(basename "$f" .json)"; done
# metrics files for semaim-report, in a strong-, weak- and plain folder
seed pre-strong metrics '\000' "$w/pre/metrics.jsonl"
seed pre-weak metrics '\001' "$w/pre/metrics.jsonl"
seed ft metrics '\002' "$w/ft/metrics.jsonl"
# settings files: the run's settings as name = value lines, and words after a NUL
$PY - "$w/pre/settings.json" "$out/fuzz_options" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
keep = ["preset", "image", "keep", "steps", "seed", "warmup-steps", "base-lr", "beta1", "stall-timeout", "resume"]
text = "".join(f"{k} = {s[k]}  # from a real run\n" for k in keep if k in s)
open(f"{sys.argv[2]}/settings", "wb").write(text.encode())
open(f"{sys.argv[2]}/settings-and-flags", "wb").write(text.encode() + b"\0--steps\0" + b"12\0--base-lr=0.5\0--mpi-allreduce")
open(f"{sys.argv[2]}/flags", "wb").write(b"\0--image\x0032\0--seed\x007\0--resume\0no\0--mpi-allreduce=false")
EOF

# semaim-prep: the fixture tree's JPEGs and a conversion's plan, record and manifest
build/tools/prep_fixtures suite "$w/src" >/dev/null || die "prep_fixtures failed"
bin/semaim-prep convert --src "$w/src" --out "$w/shards" --train-shards 1 --val-shards 1 --store raw --size 16 \
  --val-size 16 --val-resize 18 --progress none >/dev/null 2>"$w/err" || die "semaim-prep: $(head -1 "$w/err")"
{ cat "$w/shards/.prep/plan.json"; printf '\0'; cat "$w/shards/.prep/train-00000-of-00001.json"; printf '\0'
  cat "$w/shards/manifest.json"; printf '\0'; } >"$out/fuzz_manifest/convert"
cp "$w/shards/manifest.json" "$out/fuzz_json/manifest"; cp "$w/shards/.prep/plan.json" "$out/fuzz_json/plan"
k=0
while IFS= read -r -d '' f; do
  [ "$(stat -c %s "$f")" -le 16384 ] || continue
  k=$((k + 1)); seed "fixture-$k" jpeg '\377\340\000' "$f"    # resize 256, crop 225, default knobs
  [ $((k % 3)) = 0 ] && seed "fixture-$k-full" jpeg '\040\020\003' "$f"
done < <(find "$w/src" -type f -print0 | sort -z)
for kind in rgb420 rgb444 gray prog cmyk ycck cmykplain; do
  build/tools/prep_fixtures jpeg "$w/$kind.jpg" 24 17 "$kind" 85 1 >/dev/null && seed "$kind" jpeg '\030\020\000' "$w/$kind.jpg" &&
  # the loader's decoder: train at 16 (sizes from the header), eval at 8 (R 12), full-scale train
  seed "$kind-train" loader_jpeg '\000\017\001\000\000\000' "$w/$kind.jpg" &&
  seed "$kind-eval" loader_jpeg '\001\007\004\000\000\000' "$w/$kind.jpg" &&
  seed "$kind-full" loader_jpeg '\002\017\007\000\000\000' "$w/$kind.jpg"
done

# the generated-file targets read their input as choices: mostly "natural" files, some random
for t in featfile shards; do
  for b in 0f 0c 1f 3c; do head -c 600 /dev/zero | tr '\0' "\\$(printf '%03o' 0x$b)" >"$out/fuzz_$t/natural-$b"; done
  for s in 1 2 3; do $PY -c "import random, sys; random.seed($s); sys.stdout.buffer.write(bytes(random.randrange(256) for _ in range(400)))" >"$out/fuzz_$t/random-$s"; done
done
n=$(find "$out" -type f | wc -l)
echo "seeds: $n files in $out"
