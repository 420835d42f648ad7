#!/usr/bin/env bash
# semaim-prep convert on the fixture tree (every JPEG flavour and broken file of the issue, plus
# a FIFO named .jpg):
# shards, keys, labels, pixels and manifest checked independently by tests/prep/check_suite.py
# (h5py + TurboJPEG + torch), h5dump reads a shard, verify passes, skips are reported on stderr,
# and progress shows as status lines in a log and as a bar on a terminal.
source "$(dirname "$0")/prep/lib.sh"
make_suite
"$PREP" convert --src "$TMP/src" --out "$TMP/a" $SUITE_FLAGS 2>"$TMP/a.err"
check "convert of the fixture tree exits 0" [ $? = 0 ]
$PY tests/prep/check_suite.py "$TMP/src" "$TMP/a" "$FIX" 3 2 256 224 256 0 || fail=1
h5dump -H "$TMP/a/train/train-00000-of-00003.h5" >"$TMP/dump.txt" 2>&1
check "h5dump reads a shard: /images uint8 [N,256,256,3], /labels int32, /keys strings, attributes" \
  bash -c "grep -q 'DATASET \"images\"' '$TMP/dump.txt' && grep -q 'H5T_STD_U8LE' '$TMP/dump.txt' && grep -Eq 'SIMPLE \{ \( [0-9]+, 256, 256, 3 \)' '$TMP/dump.txt' && grep -q 'H5T_STD_I32LE' '$TMP/dump.txt' && grep -q 'ATTRIBUTE \"shard_count\"' '$TMP/dump.txt' && grep -q 'H5T_STR_NULLPAD' '$TMP/dump.txt'"
check "every skipped file is named on stderr with its reason, and counted" \
  bash -c "grep -q 'skipped train/cls_b/empty.JPEG: empty file' '$TMP/a.err' && grep -q 'skipped train/cls_b/png_named.JPEG: not a JPEG (PNG data)' '$TMP/a.err' && grep -q 'skipped train/cls_b/truncated.jpg: truncated JPEG' '$TMP/a.err' && grep -q '10 files skipped, 1 converted with warnings' '$TMP/a.err'"
"$PREP" verify "$TMP/a" 2>"$TMP/v.err"
check "verify passes on fresh output" [ $? = 0 ]
# A second recipe: small sizes (upscaling small images), another seed and shard counts.
"$PREP" convert --src "$TMP/src" --out "$TMP/b" --size 64 --val-size 48 --val-resize 56 --seed 7 \
  --train-shards 2 --val-shards 1 --progress none 2>/dev/null
check "convert with --size 64 --val-size 48 --val-resize 56 --seed 7 exits 0" [ $? = 0 ]
$PY tests/prep/check_suite.py "$TMP/src" "$TMP/b" "$FIX" 2 1 64 48 56 7 || fail=1
"$PREP" convert --src "$TMP/src" --out "$TMP/c" $SUITE_FLAGS --progress lines --status-every 0.0001 2>"$TMP/c.err"
check "without a terminal, progress is periodic status lines with rate and ETA" \
  bash -c "grep -Eq 'images \([0-9.]+%\), [0-9]+ img/s, elapsed [0-9:]+, ETA' '$TMP/c.err' && ! grep -q \$'\r' '$TMP/c.err'"
if command -v script >/dev/null; then
  script -qec "'$PREP' convert --src '$TMP/src' --out '$TMP/d' --train-shards 3 --val-shards 2" /dev/null >"$TMP/d.tty" 2>&1
  check "on a terminal, progress is a bar with rate and ETA redrawn in place" \
    bash -c "grep -q \$'\r' '$TMP/d.tty' && grep -Eq '\[#+\.*\] +[0-9.]+% [0-9]+/[0-9]+ +[0-9]+ img/s +elapsed [0-9:]+ +ETA' '$TMP/d.tty'"
fi
check "output is the same with and without progress reporting" diff -r "$TMP/a" "$TMP/c"
finish
