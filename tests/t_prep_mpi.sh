#!/usr/bin/env bash
# semaim-prep output does not depend on how the work is split: 1 rank vs 3 ranks (mpirun),
# 1 vs 2 threads, and a Slurm array of 3 tasks followed by the manifest step all give
# byte-identical shards, records and manifest. verify runs under mpirun as well.
source "$(dirname "$0")/prep/lib.sh"
make_suite
"$PREP" convert --src "$TMP/src" --out "$TMP/one" $SUITE_FLAGS --threads 2 2>/dev/null
check "1 process, 2 threads: exits 0" [ $? = 0 ]
mpirun -np 3 --oversubscribe "$PREP" convert --src "$TMP/src" --out "$TMP/three" $SUITE_FLAGS --threads 1 >"$TMP/mpi.log" 2>&1
check "mpirun -np 3: exits 0 and rank 0 writes the manifest" bash -c "[ -f '$TMP/three/manifest.json' ] && grep -q 'wrote .*three/manifest.json' '$TMP/mpi.log'"
check "byte-identical shards, records and manifest from 1 rank and from 3 ranks" diff -r "$TMP/one" "$TMP/three"
"$PREP" convert --src "$TMP/src" --out "$TMP/t1" $SUITE_FLAGS --threads 1 2>/dev/null
check "byte-identical output with 1 and with 2 decoding threads" diff -r "$TMP/one" "$TMP/t1"
# A Slurm array of three tasks (ids 5..7), run one after the other here.
for id in 5 6; do
  SLURM_ARRAY_TASK_ID=$id SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_COUNT=3 \
    "$PREP" convert --src "$TMP/src" --out "$TMP/arr" $SUITE_FLAGS --task slurm 2>>"$TMP/arr.log" || bad "array task $id"
done
check "array tasks write no manifest while shards are missing" bash -c "[ ! -f '$TMP/arr/manifest.json' ] && grep -q 'not finished yet' '$TMP/arr.log'"
SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_COUNT=3 \
  "$PREP" convert --src "$TMP/src" --out "$TMP/arr" $SUITE_FLAGS --task slurm 2>>"$TMP/arr.log"
check "the last array task completes the set and writes the manifest" [ -f "$TMP/arr/manifest.json" ]
check "Slurm array output is byte-identical to the one-process output" diff -r "$TMP/one" "$TMP/arr"
rm "$TMP/arr/manifest.json"
"$PREP" manifest "$TMP/arr" 2>/dev/null
check "semaim-prep manifest rebuilds the identical manifest from the per-shard records" cmp -s "$TMP/one/manifest.json" "$TMP/arr/manifest.json"
mpirun -np 3 --oversubscribe "$PREP" verify "$TMP/three" >"$TMP/verify.log" 2>&1
check "verify under mpirun -np 3 passes" bash -c "grep -q '5 shards OK' '$TMP/verify.log'"
printf 'x' | dd of="$TMP/three/val/val-00001-of-00002.h5" bs=1 seek=5000 conv=notrunc 2>/dev/null
mpirun -np 3 --oversubscribe "$PREP" verify "$TMP/three" >"$TMP/verify2.log" 2>&1
rc=$?
check "verify under mpirun -np 3 finds a damaged shard held by another rank" \
  bash -c "[ $rc != 0 ] && grep -q 'val-00001-of-00002.h5: CRC32' '$TMP/verify2.log'"
finish
