#!/usr/bin/env bash
# semaim-prep output (--store raw and jpeg) does not depend on how the work is split: 1 rank vs 3 ranks (mpirun),
# 1 vs 2 threads, and a Slurm array of 3 tasks followed by the manifest step all give
# byte-identical shards, records and manifest. verify runs under mpirun as well.
source "$(dirname "$0")/prep/lib.sh"
make_suite
SRC=$TMP/src
for store in raw jpeg; do
  T=$TMP/$store F="$SUITE_FLAGS --store $store"
  mkdir -p "$T"
  "$PREP" convert --src "$SRC" --out "$T/one" $F --threads 2 2>/dev/null
  check "$store: 1 process, 2 threads: exits 0" [ $? = 0 ]
  mpirun -np 3 --oversubscribe "$PREP" convert --src "$SRC" --out "$T/three" $F --threads 1 >"$T/mpi.log" 2>&1
  check "$store: mpirun -np 3: exits 0 and rank 0 writes the manifest" bash -c "[ -f '$T/three/manifest.json' ] && grep -q 'wrote .*three/manifest.json' '$T/mpi.log'"
  check "$store: byte-identical shards, records and manifest from 1 rank and from 3 ranks" diff -r "$T/one" "$T/three"
  "$PREP" convert --src "$SRC" --out "$T/t1" $F --threads 1 2>/dev/null
  check "$store: byte-identical output with 1 and with 2 decoding threads" diff -r "$T/one" "$T/t1"
  # A Slurm array of three tasks (ids 5..7), run one after the other here.
  for id in 5 6; do
    SLURM_ARRAY_TASK_ID=$id SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_COUNT=3 \
      "$PREP" convert --src "$SRC" --out "$T/arr" $F --task slurm 2>>"$T/arr.log" || bad "$store: array task $id"
  done
  check "$store: array tasks write no manifest while shards are missing" bash -c "[ ! -f '$T/arr/manifest.json' ] && grep -q 'not finished yet' '$T/arr.log'"
  SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_COUNT=3 \
    "$PREP" convert --src "$SRC" --out "$T/arr" $F --task slurm 2>>"$T/arr.log"
  check "$store: the last array task completes the set and writes the manifest" [ -f "$T/arr/manifest.json" ]
  check "$store: Slurm array output is byte-identical to the one-process output" diff -r "$T/one" "$T/arr"
  rm "$T/arr/manifest.json"
  "$PREP" manifest "$T/arr" 2>/dev/null
  check "$store: semaim-prep manifest rebuilds the identical manifest from the per-shard records" cmp -s "$T/one/manifest.json" "$T/arr/manifest.json"
  mpirun -np 3 --oversubscribe "$PREP" verify "$T/three" >"$T/verify.log" 2>&1
  check "$store: verify under mpirun -np 3 passes" bash -c "grep -q '5 shards OK' '$T/verify.log'"
  printf 'x' | dd of="$T/three/val/val-00001-of-00002.h5" bs=1 seek=5000 conv=notrunc 2>/dev/null
  mpirun -np 3 --oversubscribe "$PREP" verify "$T/three" >"$T/verify2.log" 2>&1
  rc=$?
  check "$store: verify under mpirun -np 3 finds a damaged shard held by another rank" \
    bash -c "[ $rc != 0 ] && grep -q 'val-00001-of-00002.h5: CRC32' '$T/verify2.log'"
done
finish
