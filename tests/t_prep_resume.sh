#!/usr/bin/env bash
# semaim-prep survives crashes: a run killed while writing a shard leaves finished shards, a
# hidden temporary and no manifest; the next run keeps the finished shards and ends with the
# same bytes as an uninterrupted run (also under MPI). Damaged, truncated or unrecorded shards
# are found (verify) and redone (convert).
source "$(dirname "$0")/prep/lib.sh"
make_suite
"$PREP" convert --src "$TMP/src" --out "$TMP/ref" $SUITE_FLAGS 2>/dev/null || bad "reference run"
# SEMAIM_PREP_CRASH_AFTER=2: SIGKILL while writing the third shard, after its images.
( SEMAIM_PREP_CRASH_AFTER=2 "$PREP" convert --src "$TMP/src" --out "$TMP/b" $SUITE_FLAGS ) 2>/dev/null
rc=$?
shards=$(ls "$TMP/b/train" | grep -c '\.h5$')
temps=$(ls -A "$TMP/b/train" | grep -c '^\.train-00002-of-00003\.h5\.tmp\.')
check "killed run (exit $rc): 2 finished shards, a hidden temporary, no manifest" \
  bash -c "[ $rc != 0 ] && [ $shards = 2 ] && [ $temps = 1 ] && [ ! -e '$TMP/b/manifest.json' ] && [ ! -e '$TMP/b/train/train-00002-of-00003.h5' ]"
"$PREP" convert --src "$TMP/src" --out "$TMP/b" $SUITE_FLAGS 2>"$TMP/b.err"
check "the rerun keeps the 2 finished shards and converts the rest" grep -q '(3 converted, 2 already complete)' "$TMP/b.err"
check "interrupted + resumed output is byte-identical to an uninterrupted run (no temporaries left)" diff -r "$TMP/ref" "$TMP/b"
SEMAIM_PREP_CRASH_AFTER=1 mpirun -np 3 --oversubscribe "$PREP" convert --src "$TMP/src" --out "$TMP/m" $SUITE_FLAGS >/dev/null 2>&1
rc=$?
check "an MPI run with a crashing rank fails and writes no manifest" bash -c "[ $rc != 0 ] && [ ! -e '$TMP/m/manifest.json' ]"
mpirun -np 3 --oversubscribe "$PREP" convert --src "$TMP/src" --out "$TMP/m" $SUITE_FLAGS >/dev/null 2>&1
check "resumed under mpirun -np 3: byte-identical to the uninterrupted run" diff -r "$TMP/ref" "$TMP/m"
# Damage: one flipped byte.
printf '\x55' | dd of="$TMP/b/train/train-00001-of-00003.h5" bs=1 seek=100000 conv=notrunc 2>/dev/null
"$PREP" verify "$TMP/b" 2>"$TMP/v.err"
rc=$?
check "verify fails on a flipped byte, naming the shard and the CRC mismatch" \
  bash -c "[ $rc = 1 ] && grep -q 'train-00001-of-00003.h5: CRC32 0x[0-9a-f]*, manifest says 0x' '$TMP/v.err'"
ino0=$(stat -c %i "$TMP/b/train/train-00000-of-00003.h5")
"$PREP" convert --src "$TMP/src" --out "$TMP/b" $SUITE_FLAGS 2>"$TMP/c.err"
check "convert redoes only the damaged shard" bash -c "grep -q 'train-00001-of-00003.h5 does not match its record' '$TMP/c.err' && grep -q '(1 converted, 4 already complete)' '$TMP/c.err' && [ $ino0 = \$(stat -c %i '$TMP/b/train/train-00000-of-00003.h5') ]"
check "after the repair the output is byte-identical again and verifies" bash -c "diff -r '$TMP/ref' '$TMP/b' && '$PREP' verify '$TMP/b' 2>/dev/null"
truncate -s 1000 "$TMP/b/val/val-00000-of-00002.h5"
"$PREP" verify "$TMP/b" 2>"$TMP/v2.err"
check "verify fails on a truncated shard, naming its size" bash -c "grep -q 'val-00000-of-00002.h5: 1000 bytes, manifest says' '$TMP/v2.err'"
rm "$TMP/b/.prep/train-00002-of-00003.json"
"$PREP" convert --src "$TMP/src" --out "$TMP/b" $SUITE_FLAGS 2>"$TMP/d.err"
check "a shard without its record, and a truncated one, are redone; output identical" \
  bash -c "grep -q '(2 converted, 3 already complete)' '$TMP/d.err' && diff -r '$TMP/ref' '$TMP/b'"
finish
