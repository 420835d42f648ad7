#!/usr/bin/env bash
# The loader on jpeg shards (semaim-prep convert --store jpeg of the fixture tree) against
# torchvision on the stored images decoded by PIL: RandomResizedCrop with the box sampled
# against the whole stored image, flip and normalisation, and the evaluation transform. With
# DCT scaling off the loader must equal torchvision within the bound of t_augment_torch.sh
# (1e-5 of the pixel range); with it on (the default), within the prescale's error. Also: the
# crops do not depend on the loader's thread count. Needs build/tools/loader_check.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
tool=build/tools/loader_check fix=build/tools/prep_fixtures
for t in "$tool" "$fix" bin/semaim-prep; do
  [ -x "$t" ] || { echo "FAIL: loader_jpeg_torch ($t not built: make build-all units tools)"; exit 1; }
done
scratch work tljpeg
"$fix" suite "$work/src" || { echo "FAIL: loader_jpeg_torch (fixtures)"; exit 1; }
# a small cap, so that crops of 2S and more (DCT-scaled decodes) happen at S = 32
bin/semaim-prep convert --src "$work/src" --out "$work/sh" --max-side 200 --train-shards 3 --val-shards 2 \
  --progress none 2>/dev/null || { echo "FAIL: loader_jpeg_torch (convert)"; exit 1; }
run() {   # name split train full-scale interp epochs [threads]
  local out=$work/$1.bin
  if ! "$tool" dump "$work/sh" "$out" --split "$2" --train "$3" --full-scale "$4" --interp "$5" --epochs "$6" \
       --size 32 --batch 4 --threads "${7:-1}" 2>"$work/$1.err"; then
    bad "loader_jpeg_$1 (loader_check dump failed: $(head -c 200 "$work/$1.err"))"; return
  fi
  local mode=scaled; [ "$4" = 1 ] && mode=exact
  $PY tests/tools/loader_jpeg_torch.py "$out" "$work/sh" "$2" 32 $mode "$3" "$5" || fail=1
}
run train_exact train 1 1 0 3
run train_exact_torch train 1 1 1 2
run train_scaled train 1 0 0 3 2
run eval_exact val 0 1 0 1
run eval_scaled train 0 0 0 1
run train_scaled_1thread train 1 0 0 3 1
check "loader_jpeg_crops_independent_of_thread_count" cmp -s "$work/train_scaled.bin" "$work/train_scaled_1thread.bin"
exit $fail
