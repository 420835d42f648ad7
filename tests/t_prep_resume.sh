#!/usr/bin/env bash
# semaim-prep survives crashes (--store raw and jpeg): a run killed while writing a shard leaves finished shards, a
# hidden temporary and no manifest; the next run keeps the finished shards and ends with the
# same bytes as an uninterrupted run (also under MPI). Damaged, truncated or unrecorded shards
# are found (verify) and redone (convert).
source "$(dirname "$0")/prep/lib.sh"
make_suite
SRC=$TMP/src
for store in raw jpeg; do
  T=$TMP/$store F="$SUITE_FLAGS --store $store"
  mkdir -p "$T"
  "$PREP" convert --src "$SRC" --out "$T/ref" $F 2>/dev/null || bad "$store: reference run"
  # SEMAIM_PREP_CRASH_AFTER=2: SIGKILL while writing the third shard, after its images.
  ( SEMAIM_PREP_CRASH_AFTER=2 "$PREP" convert --src "$SRC" --out "$T/b" $F ) 2>/dev/null
  rc=$?
  shards=$(ls "$T/b/train" | grep -c '\.h5$')
  temps=$(ls -A "$T/b/train" | grep -c '^\.train-00002-of-00003\.h5\.tmp\.')
  check "$store: killed run (exit $rc): 2 finished shards, a hidden temporary, no manifest" \
    bash -c "[ $rc != 0 ] && [ $shards = 2 ] && [ $temps = 1 ] && [ ! -e '$T/b/manifest.json' ] && [ ! -e '$T/b/train/train-00002-of-00003.h5' ]"
  "$PREP" convert --src "$SRC" --out "$T/b" $F 2>"$T/b.err"
  check "$store: the rerun keeps the 2 finished shards and converts the rest" grep -q '(3 converted, 2 already complete)' "$T/b.err"
  check "$store: interrupted + resumed output is byte-identical to an uninterrupted run (no temporaries left)" diff -r "$T/ref" "$T/b"
  SEMAIM_PREP_CRASH_AFTER=1 mpirun -np 3 --oversubscribe "$PREP" convert --src "$SRC" --out "$T/m" $F >/dev/null 2>&1
  rc=$?
  check "$store: an MPI run with a crashing rank fails and writes no manifest" bash -c "[ $rc != 0 ] && [ ! -e '$T/m/manifest.json' ]"
  mpirun -np 3 --oversubscribe "$PREP" convert --src "$SRC" --out "$T/m" $F >/dev/null 2>&1
  check "$store: resumed under mpirun -np 3: byte-identical to the uninterrupted run" diff -r "$T/ref" "$T/m"
  # Damage: one flipped byte.
  printf '\x55' | dd of="$T/b/train/train-00001-of-00003.h5" bs=1 seek=$(($(stat -c %s "$T/b/train/train-00001-of-00003.h5") / 2)) conv=notrunc 2>/dev/null
  "$PREP" verify "$T/b" 2>"$T/v.err"
  rc=$?
  check "$store: verify fails on a flipped byte, naming the shard and the CRC mismatch" \
    bash -c "[ $rc = 1 ] && grep -q 'train-00001-of-00003.h5: CRC32 0x[0-9a-f]*, manifest says 0x' '$T/v.err'"
  ino0=$(stat -c %i "$T/b/train/train-00000-of-00003.h5")
  "$PREP" convert --src "$SRC" --out "$T/b" $F 2>"$T/c.err"
  check "$store: convert redoes only the damaged shard" bash -c "grep -q 'train-00001-of-00003.h5 does not match its record' '$T/c.err' && grep -q '(1 converted, 4 already complete)' '$T/c.err' && [ $ino0 = \$(stat -c %i '$T/b/train/train-00000-of-00003.h5') ]"
  check "$store: after the repair the output is byte-identical again and verifies" bash -c "diff -r '$T/ref' '$T/b' && '$PREP' verify '$T/b' 2>/dev/null"
  truncate -s 1000 "$T/b/val/val-00000-of-00002.h5"
  "$PREP" verify "$T/b" 2>"$T/v2.err"
  check "$store: verify fails on a truncated shard, naming its size" bash -c "grep -q 'val-00000-of-00002.h5: 1000 bytes, manifest says' '$T/v2.err'"
  rm "$T/b/.prep/train-00002-of-00003.json"
  "$PREP" convert --src "$SRC" --out "$T/b" $F 2>"$T/d.err"
  check "$store: a shard without its record, and a truncated one, are redone; output identical" \
    bash -c "grep -q '(2 converted, 3 already complete)' '$T/d.err' && diff -r '$T/ref' '$T/b'"
done
finish
