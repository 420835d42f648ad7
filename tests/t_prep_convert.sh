#!/usr/bin/env bash
# semaim-prep convert on the fixture tree (every JPEG flavour and broken file of the issue, plus
# a FIFO named .jpg), with --store raw and --store jpeg (the default):
# shards, keys, labels, pixels and manifest checked independently by tests/prep/check_suite.py
# (h5py + TurboJPEG + torch; PIL decodes the stored JPEGs), h5dump reads a shard, verify passes,
# skips are reported on stderr with the same rules for both stores, and progress shows as
# status lines in a log and as a bar on a terminal.
source "$(dirname "$0")/prep/lib.sh"
make_suite
"$PREP" convert --src "$TMP/src" --out "$TMP/a" $SUITE_FLAGS --store raw 2>"$TMP/a.err"
check "convert --store raw of the fixture tree exits 0" [ $? = 0 ]
$PY tests/prep/check_suite.py "$TMP/src" "$TMP/a" "$FIX" 3 2 256 224 256 0 || fail=1
h5dump -H "$TMP/a/train/train-00000-of-00003.h5" >"$TMP/dump.txt" 2>&1
check "h5dump reads a shard: /images uint8 [N,256,256,3], /labels int32, /keys strings, attributes" \
  bash -c "grep -q 'DATASET \"images\"' '$TMP/dump.txt' && grep -q 'H5T_STD_U8LE' '$TMP/dump.txt' && grep -Eq 'SIMPLE \{ \( [0-9]+, 256, 256, 3 \)' '$TMP/dump.txt' && grep -q 'H5T_STD_I32LE' '$TMP/dump.txt' && grep -q 'ATTRIBUTE \"shard_count\"' '$TMP/dump.txt' && grep -q 'H5T_STR_NULLPAD' '$TMP/dump.txt'"
check "every skipped file is named on stderr with its reason, and counted" \
  bash -c "grep -q 'skipped train/cls_b/empty.JPEG: empty file' '$TMP/a.err' && grep -q 'skipped train/cls_b/png_named.JPEG: not a JPEG (PNG data)' '$TMP/a.err' && grep -q 'skipped train/cls_b/truncated.jpg: truncated JPEG' '$TMP/a.err' && grep -q '10 files skipped, 1 converted with warnings' '$TMP/a.err'"
"$PREP" verify "$TMP/a" 2>"$TMP/v.err"
check "verify passes on fresh output" [ $? = 0 ]
# A second recipe: small sizes (upscaling small images), another seed and shard counts.
"$PREP" convert --src "$TMP/src" --out "$TMP/b" --store raw --size 64 --val-size 48 --val-resize 56 --seed 7 \
  --train-shards 2 --val-shards 1 --progress none 2>/dev/null
check "convert --store raw --size 64 --val-size 48 --val-resize 56 --seed 7 exits 0" [ $? = 0 ]
$PY tests/prep/check_suite.py "$TMP/src" "$TMP/b" "$FIX" 2 1 64 48 56 7 || fail=1
"$PREP" convert --src "$TMP/src" --out "$TMP/c" $SUITE_FLAGS --store raw --progress lines --status-every 0.0001 2>"$TMP/c.err"
check "without a terminal, progress is periodic status lines with rate and ETA" \
  bash -c "grep -Eq 'images \([0-9.]+%\), [0-9]+ img/s, elapsed [0-9:]+, ETA' '$TMP/c.err' && ! grep -q \$'\r' '$TMP/c.err'"
if command -v script >/dev/null; then
  script -qec "'$PREP' convert --src '$TMP/src' --out '$TMP/d' --train-shards 3 --val-shards 2" /dev/null >"$TMP/d.tty" 2>&1
  check "on a terminal, progress is a bar with rate and ETA redrawn in place" \
    bash -c "grep -q \$'\r' '$TMP/d.tty' && grep -Eq '\[#+\.*\] +[0-9.]+% [0-9]+/[0-9]+ +[0-9]+ img/s +elapsed [0-9:]+ +ETA' '$TMP/d.tty'"
fi
check "output is the same with and without progress reporting" diff -r "$TMP/a" "$TMP/c"
# --store jpeg, the default: the same skip rules, the stored bytes round-trip.
"$PREP" convert --src "$TMP/src" --out "$TMP/j" $SUITE_FLAGS 2>"$TMP/j.err"
check "convert (default --store jpeg) of the fixture tree exits 0" [ $? = 0 ]
$PY tests/prep/check_suite.py "$TMP/src" "$TMP/j" "$FIX" 3 2 0 0 0 0 jpeg 512 90 || fail=1
check "--store jpeg names the same skipped files with the same reasons as --store raw" \
  bash -c "diff <(grep '^semaim-prep convert: skipped' '$TMP/a.err' | sort) <(grep '^semaim-prep convert: skipped' '$TMP/j.err' | sort) && grep -q '10 files skipped, 1 converted with warnings' '$TMP/j.err'"
h5dump -H "$TMP/j/train/train-00000-of-00003.h5" >"$TMP/jdump.txt" 2>&1
check "h5dump reads a jpeg shard: /jpeg uint8, /offsets uint64, /widths and /heights int32, store attribute" \
  bash -c "grep -q 'DATASET \"jpeg\"' '$TMP/jdump.txt' && grep -q 'DATASET \"offsets\"' '$TMP/jdump.txt' && grep -q 'H5T_STD_U64LE' '$TMP/jdump.txt' && grep -q 'DATASET \"widths\"' '$TMP/jdump.txt' && grep -q 'DATASET \"heights\"' '$TMP/jdump.txt' && grep -q 'ATTRIBUTE \"store\"' '$TMP/jdump.txt'"
"$PREP" verify "$TMP/j" 2>"$TMP/jv.err"
check "verify passes on fresh jpeg output" [ $? = 0 ]
# README's three lines of h5py + PIL decode one image
$PY - "$TMP/j/train/train-00000-of-00003.h5" <<'PY' && pass "the README's h5py + PIL lines decode a stored image" || bad "the README's h5py + PIL lines decode a stored image"
import io, sys, h5py, PIL.Image
f = h5py.File(sys.argv[1], "r"); i = 0
o = f["offsets"]; img = PIL.Image.open(io.BytesIO(f["jpeg"][o[i]:o[i + 1]].tobytes())).convert("RGB")
assert img.size == (f["widths"][i], f["heights"][i]), img.size
PY
# A second recipe: a small cap and another quality, so most files are resized and re-encoded.
"$PREP" convert --src "$TMP/src" --out "$TMP/k" --store jpeg --max-side 96 --quality 75 --seed 7 \
  --train-shards 2 --val-shards 1 --progress none 2>/dev/null
check "convert --store jpeg --max-side 96 --quality 75 --seed 7 exits 0" [ $? = 0 ]
$PY tests/prep/check_suite.py "$TMP/src" "$TMP/k" "$FIX" 2 1 0 0 0 7 jpeg 96 75 || fail=1
# A shard whose bytes no longer are JPEGs: verify reads every image's header.
cp -r "$TMP/j" "$TMP/jbad"
$PY - "$TMP/jbad/train/train-00001-of-00003.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    a = int(f["offsets"][1])
    f["jpeg"][a:a + 4] = [0, 0, 0, 0]   # the second image loses its SOI marker
PY
$PY - "$TMP/jbad" <<'PY'
import json, os, sys, zlib
out = sys.argv[1]
for name in ("manifest.json", ".prep/train-00001-of-00003.json"):
    p = os.path.join(out, name)
    m = json.load(open(p))
    data = open(os.path.join(out, "train/train-00001-of-00003.h5"), "rb").read()
    for e in m.get("shards", [m]):
        if e["file"] == "train/train-00001-of-00003.h5":
            e["crc32"], e["bytes"] = zlib.crc32(data), len(data)
    json.dump(m, open(p, "w"))
PY
"$PREP" verify "$TMP/jbad" 2>"$TMP/jbad.err"
rc=$?
check "verify finds a stored image that is no longer a JPEG (CRC and size made to match)" \
  bash -c "[ $rc = 1 ] && grep -q 'train-00001-of-00003.h5: image 1: not a JPEG' '$TMP/jbad.err'"
finish
