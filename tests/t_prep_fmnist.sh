#!/usr/bin/env bash
# Fashion-MNIST (Debian dataset-fashion-mnist) -> class folders of JPEGs -> shards: files land
# in the folder of their IDX label with the IDX pixels (JPEG quality 95 tolerance), the shards
# hold the right labels and verify; broken IDX input is refused with one line.
source "$(dirname "$0")/prep/lib.sh"
FM=/usr/share/datasets/fashion-mnist
[ -f "$FM/train-images-idx3-ubyte.gz" ] || { bad "dataset-fashion-mnist is not installed ($FM)"; finish; }
"$PREP" fmnist --src "$FM" --out "$TMP/fm" --limit 300 2>"$TMP/fm.err"
check "fmnist --limit 300 exits 0" [ $? = 0 ]
check "300 train and 300 val JPEGs in 10 class folders each" \
  bash -c "[ \$(find '$TMP/fm/train' -name '*.jpg' | wc -l) = 300 ] && [ \$(find '$TMP/fm/val' -name '*.jpg' | wc -l) = 300 ] && [ \$(ls '$TMP/fm/train' | wc -l) = 10 ] && [ \$(ls '$TMP/fm/val' | wc -l) = 10 ]"
$PY - "$FM" "$TMP/fm" "$FIX" <<'PY' || fail=1
import gzip, os, subprocess, sys
import numpy as np
fm, root, tool = sys.argv[1:4]
errs = []
for split, stem in (("train", "train"), ("val", "t10k")):
    img = np.frombuffer(gzip.open(os.path.join(fm, stem + "-images-idx3-ubyte.gz")).read()[16:], np.uint8).reshape(-1, 28, 28)
    lab = np.frombuffer(gzip.open(os.path.join(fm, stem + "-labels-idx1-ubyte.gz")).read()[8:], np.uint8)
    classes = sorted(os.listdir(os.path.join(root, split)))
    worst = 0.0
    for c, cls in enumerate(classes):
        for f in os.listdir(os.path.join(root, split, cls)):
            i = int(f[len(split) + 1:-4])
            if lab[i] != c:
                errs.append("%s/%s/%s: IDX label %d" % (split, cls, f, lab[i]))
            b = subprocess.run([tool, "decode", os.path.join(root, split, cls, f)], capture_output=True, check=True).stdout
            nl = b.index(b"\n")
            a = np.frombuffer(b[nl + 1:], np.uint8).reshape(28, 28, 3).astype(int)
            d = np.abs(a[..., 0] - img[i].astype(int))
            worst = max(worst, d.mean())
            if d.mean() > 3 or (a[..., 0] != a[..., 1]).any():
                errs.append("%s: mean |diff| %.2f vs IDX" % (f, d.mean()))
    print("    %s: worst mean |JPEG - IDX| = %.2f" % (split, worst))
for e in errs[:10]:
    print("   ", e)
print(("FAIL: " if errs else "PASS: ") + "every JPEG sits in its IDX label's folder and matches the IDX pixels (mean |diff| <= 3)")
sys.exit(1 if errs else 0)
PY
"$PREP" convert --src "$TMP/fm" --out "$TMP/sh" --store raw --size 32 --val-size 32 --val-resize 32 --train-shards 3 --val-shards 2 --progress none 2>"$TMP/cv.err"
check "convert at --size 32 (upscaling 28x28) exits 0 and verifies" bash -c "'$PREP' verify '$TMP/sh' 2>/dev/null"
$PY - "$TMP/fm" "$TMP/sh" <<'PY' || fail=1
import glob, os, sys
import h5py, numpy as np
root, out = sys.argv[1:3]
errs, n = [], 0
for f in sorted(glob.glob(out + "/*/*.h5")):
    with h5py.File(f, "r") as h:
        split = h.attrs["split"].decode()
        classes = sorted(os.listdir(os.path.join(root, split)))
        im = h["images"][:]
        if im.shape[1:] != (32, 32, 3):
            errs.append("%s: shape %s" % (f, im.shape))
        for k, l, x in zip(h["keys"][:], h["labels"][:], im):
            n += 1
            if classes[l] != k.decode().split("/")[0]:
                errs.append("%s: key %s has label %d" % (f, k, l))
            if (x[..., 0] != x[..., 1]).any() or (x[..., 0] != x[..., 2]).any() or x.max() == 0:
                errs.append("%s: %s is not a grey, non-empty image" % (f, k))
if n != 600:
    errs.append("%d images in shards, expected 600" % n)
for e in errs[:10]:
    print("   ", e)
print(("FAIL: " if errs else "PASS: ") + "Fashion-MNIST shards: 600 grey 32x32 images, labels equal the class folders")
sys.exit(1 if errs else 0)
PY
mkdir -p "$TMP/badfm"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do cp "$FM/$f" "$TMP/badfm/"; done
head -c 100000 "$FM/train-images-idx3-ubyte.gz" >"$TMP/badfm/train-images-idx3-ubyte.gz"
"$PREP" fmnist --src "$TMP/badfm" --out "$TMP/fm2" 2>"$TMP/bad.err"
rc=$?
check "a truncated IDX .gz is refused with one line naming it" \
  bash -c "[ $rc = 1 ] && [ \$(wc -l <'$TMP/bad.err') = 1 ] && grep -q 'train-images-idx3-ubyte.gz' '$TMP/bad.err'"
cp "$FM/train-labels-idx1-ubyte.gz" "$TMP/badfm/train-images-idx3-ubyte.gz"
"$PREP" fmnist --src "$TMP/badfm" --out "$TMP/fm2" 2>"$TMP/bad2.err"
rc=$?
check "a labels file in place of the images file is refused (IDX magic)" \
  bash -c "[ $rc = 1 ] && grep -q 'not an IDX image file (magic 0x00000801' '$TMP/bad2.err'"
finish
