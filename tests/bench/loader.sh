#!/usr/bin/env bash
# Loader throughput: 256×256 shards → 224 RandomResizedCrop + flip + normalise, batch 64, one
# process, consumer idle (so this is the loader thread's rate). Shards are freshly written,
# so reads come from the page cache: this measures HDF5 + augmentation cost, not the disk.
set -u
cd "$(dirname "$0")/../.."
tool=build/tools/loader_check
[ -x "$tool" ] || { echo "loader bench: $tool not built (make units)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/benchloader.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$tool" make "$work" 4 256 256 --counts 96 96 >/dev/null || exit 1
for cfg in "1 0 pil" "2 0 pil" "1 1 torch"; do
  set -- $cfg
  out=$(OMP_NUM_THREADS=$1 "$tool" bench "$work" --batch 64 --size 224 --steps 24 --threads "$1" --interp "$2") || exit 1
  set -- $1 $2 $3 $out   # images/s X read_ms_per_image Y augment_ms_per_image Z
  echo "bench loader_${3}_threads$1: $5 images/s"
  echo "bench loader_${3}_threads${1}_read: $7 ms/image"
  echo "bench loader_${3}_threads${1}_augment: $9 ms/image"
done
