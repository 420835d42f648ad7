#!/usr/bin/env bash
# The loader under mpirun with 2 and 3 ranks (build/tools/loader_check): per epoch the ranks'
# samples are disjoint and cover the data except the reported tails, in every assignment
# mode; a sample's augmentation is the same for both world sizes; bad data (missing, corrupt
# or mismatched shards, no shards, a bad label found mid-run) gives a clear error and a
# non-zero exit without hanging.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
tool=build/tools/loader_check
if [ ! -x "$tool" ]; then echo "FAIL: loader_mpi ($tool not built: make units)"; exit 1; fi
scratch work tloader
mpi() { local np=$1; shift; timeout 120 mpirun --oversubscribe -np "$np" "$@"; }

"$tool" make "$work/good" 11 24 20 --counts 15 25 >/dev/null || { echo "FAIL: loader_mpi (cannot write shards)"; exit 1; }
for np in 2 3; do
  out=$(mpi $np "$tool" run "$work/good" --batch 4 --size 16 --epochs 2 --dump "$work/dump$np.txt" 2>"$work/err$np.txt")
  rc=$?
  echo "$out" | grep -E '^(PASS|FAIL): '
  n=$(echo "$out" | grep -c '^PASS: ')
  if [ $rc != 0 ] || [ "$n" != 4 ]; then
    echo "FAIL: mpi_world${np}_loader_run (exit $rc, $n of 4 modes passed)"; sed 's/^/    /' "$work/err$np.txt" | head; fail=1
  fi
done
# every (epoch, sample) must have one augmentation, whichever mode and world size produced it
if [ -s "$work/dump2.txt" ] && [ -s "$work/dump3.txt" ]; then
  res=$(cat "$work/dump2.txt" "$work/dump3.txt" | awk '{k=$2" "$3; if (k in s) {n++; if (s[k] != $4) bad++} else s[k]=$4}
        END {print n+0, bad+0}')
  set -- $res
  if [ "$1" -gt 100 ] && [ "$2" = 0 ]; then echo "PASS: mpi_augmentation_same_for_2_and_3_ranks ($1 repeats compared)"
  else echo "FAIL: mpi_augmentation_same_for_2_and_3_ranks ($1 compared, $2 differ)"; fail=1; fi
else
  echo "FAIL: mpi_augmentation_same_for_2_and_3_ranks (no dumps)"; fail=1
fi

# bad input: expect exit != 0 within the timeout and, from every rank, a message with $3
bad_case() {   # name dir expected-text ranks-that-must-report
  local name=$1 dir=$2 want=$3 must=$4 t0=$(date +%s)
  mpi 3 "$tool" run "$dir" --batch 4 --size 16 --epochs 1 >"$work/o.txt" 2>"$work/e.txt"
  local rc=$? dt=$(( $(date +%s) - t0 ))
  local nrep=$(grep -F "$want" "$work/e.txt" | grep -c 'loader_check: rank ')
  grep -F "$want" "$work/e.txt" >"$work/e.line"; [ -s "$work/e.line" ] || cp "$work/e.txt" "$work/e.line"
  record_bad_input "$name" "$rc" "$work/e.line" "the loader (3 ranks)"
  if [ $rc != 0 ] && [ $rc != 124 ] && [ "$nrep" -ge "$must" ]; then
    echo "PASS: mpi_bad_input_$name (exit $rc in ${dt}s, $nrep ranks: $(grep -F "$want" "$work/e.txt" | head -1))"
  else
    echo "FAIL: mpi_bad_input_$name (exit $rc in ${dt}s, $nrep ranks reported '$want')"; sed 's/^/    /' "$work/e.txt" | head -5; fail=1
  fi
}
cp -r "$work/good" "$work/missing"; rm "$work/missing/train/train-00004-of-00011.h5"
bad_case missing_shard "$work/missing" "1 of 11 shards missing, first train-00004-of-00011.h5" 3
cp -r "$work/good" "$work/corrupt"; printf 'garbage garbage garbage' | dd of="$work/corrupt/train/train-00007-of-00011.h5" conv=notrunc status=none
bad_case corrupt_shard "$work/corrupt" "train-00007-of-00011.h5: cannot open as HDF5" 3
cp -r "$work/good" "$work/trunc"; truncate -s 2000 "$work/trunc/train/train-00002-of-00011.h5"
bad_case truncated_shard "$work/trunc" "train-00002-of-00011.h5: cannot open as HDF5" 3
"$tool" make "$work/sizes" 11 24 20 --counts 15 25 --odd 5 24 22 >/dev/null
bad_case different_image_sizes "$work/sizes" "train-00005-of-00011.h5: images are 24x22 but" 3
mkdir -p "$work/empty/train"
bad_case no_shards "$work/empty" "no shards named train-K-of-M.h5" 3
bad_case no_data_path "$work/does-not-exist" "does-not-exist: No such file or directory" 3
# found by one rank's loader thread mid-epoch: that rank aborts the job
"$tool" make "$work/label" 11 24 20 --counts 15 25 --bad-label 3 >/dev/null
bad_case negative_label_mid_run "$work/label" "train-00003-of-00011.h5: /labels[0] = -5 is negative" 1
exit $fail
