#!/usr/bin/python3
"""Checks semaim-prep output for the fixture tree of tests/prep/fixtures.h, independently of
the C code: the plan (sort, shuffle, deal) is recomputed here, every image is compared with a
TurboJPEG decode (build/tools/prep_fixtures decode) resized by torch's antialiased bilinear,
shards are read with h5py and the manifest is rebuilt and compared whole.

usage: check_suite.py ROOT OUT TOOL TRAIN_SHARDS VAL_SHARDS SIZE VAL_SIZE VAL_RESIZE SEED [jpeg MAX_SIDE QUALITY]
(SIZE, VAL_SIZE, VAL_RESIZE are ignored for jpeg). Prints PASS:/FAIL: lines; exit status 1 on any failure.

--store jpeg: the stored bytes are decoded with PIL (not the C code's decoder) and compared with
the image the converter meant to store: the TurboJPEG decode resized so its longer side is at
most MAX_SIDE (torch's antialiased bilinear, shorter side rounded to nearest). Files the
converter keeps (baseline YCbCr within the cap, no warning) must be stored byte-identical;
re-encoded ones (resized, grayscale, CMYK, YCCK, progressive, warned) must match within JPEG's
error at QUALITY, measured by PIL's own encoder on the intended image: PSNR at most 1 dB
below it and mean |diff| at most 1.25x its mean + 0.5 levels (DCT-prescaled files: 3 dB and
+1.5, the prescale allowance below).

Pixel tolerance: files decoded at full size must match within 1 grey level (float rounding:
same filter, same geometry); files decoded with JPEG DCT prescaling (1/2, 1/4, 1/8) differ
from a full-size decode by the prescale itself: mean |diff| <= 1.0 and max <= 16 levels
(measured: mean 0.1-0.7, max 7-13).
"""
import io, json, os, subprocess, sys, zlib
from PIL import Image
import numpy as np
import h5py
import torch
import torch.nn.functional as F

ROOT, OUT, TOOL = sys.argv[1:4]
TS, VS, SIZE, VSIZE, VRESIZE, SEED = map(int, sys.argv[4:10])
JPEG = len(sys.argv) > 10 and sys.argv[10] == "jpeg"
MAX_SIDE, QUALITY = (int(sys.argv[11]), int(sys.argv[12])) if JPEG else (0, 0)
failed = 0


def report(name, errors):
    global failed
    for e in errors[:10]:
        print("   ", e)
    print(("FAIL: " if errors else "PASS: ") + name)
    failed += bool(errors)


# ---------------------------------------------------------------- expected per-file outcome
SKIP = {
    "train/cls_b/truncated.jpg": "truncated JPEG (premature end of data)",
    "train/cls_b/corrupt.jpg": "corrupt JPEG: ",          # prefix; the rest is libjpeg's text
    "train/cls_b/png_named.JPEG": "not a JPEG (PNG data)",
    "train/cls_b/empty.JPEG": "empty file",
    "train/cls c \u00f1/broken_link.jpg": "cannot open: No such file or directory",
    "train/cls c \u00f1/pipe.jpg": "not a regular file",
    "train/cls_b/notes.txt": "not a .jpg/.jpeg file name",
    "train/stray.jpg": "not inside a class folder",
    "val/ILSVRC2012_val_00000005.JPEG": "no label for this file in LOC_val_solution.csv",
    "val/ILSVRC2012_val_00000006.JPEG": "label 'n99999999' from LOC_val_solution.csv is not a class folder of train/",
}
WARN = {"train/cls_b/warn_extraneous.jpg": "6 extraneous bytes before marker 0xda"}
SCAN_TIME = {"train/cls_b/notes.txt", "train/stray.jpg", "val/ILSVRC2012_val_00000005.JPEG",
             "val/ILSVRC2012_val_00000006.JPEG"}


# ---------------------------------------------------------------- the plan, recomputed
M64 = (1 << 64) - 1


def splitmix(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def bounded(state, n):
    state, r = splitmix(state)
    m = r * n
    lo = m & M64
    if lo < n:
        t = ((1 << 64) - n) % n
        while lo < t:
            state, r = splitmix(state)
            m = r * n
            lo = m & M64
    return state, m >> 64


def shuffle(items, seed, split):
    v = sorted(items, key=lambda it: it[0].encode())
    st = (seed * 2 + split) & M64
    for i in range(len(v), 1, -1):
        st, j = bounded(st, i)
        v[i - 1], v[j] = v[j], v[i - 1]
    return v


def is_jpeg(name):
    return os.path.splitext(name)[1].lower() in (".jpg", ".jpeg")


classes = sorted((d for d in os.listdir(os.path.join(ROOT, "train"))
                  if os.path.isdir(os.path.join(ROOT, "train", d)) and not d.startswith(".")), key=lambda s: s.encode())
train = []
for c, cls in enumerate(classes):
    for f in os.listdir(os.path.join(ROOT, "train", cls)):
        if is_jpeg(f):
            train.append(("train/%s/%s" % (cls, f), c))
loc = {}
with open(os.path.join(ROOT, "LOC_val_solution.csv")) as fh:
    next(fh)
    for line in fh:
        img, pred = line.strip().split(",", 1)
        loc[img] = pred.split()[0]
val = []
for f in os.listdir(os.path.join(ROOT, "val")):
    stem = os.path.splitext(f)[0]
    if is_jpeg(f) and stem in loc and loc[stem] in classes:
        val.append(("val/" + f, classes.index(loc[stem])))
plan = [shuffle(train, SEED, 0), shuffle(val, SEED, 1)]
nshards = [TS, VS]
names = ["train", "val"]


def shard_items(s, k):
    n = len(plan[s])
    return plan[s][n * k // nshards[s]:n * (k + 1) // nshards[s]]


# ---------------------------------------------------------------- reference pixels
def ref_decode(path):
    b = subprocess.run([TOOL, "decode", path], capture_output=True, check=True).stdout
    nl = b.index(b"\n")
    w, h, c, adobe = map(int, b[:nl].split())
    a = np.frombuffer(b[nl + 1:], np.uint8).reshape(h, w, c).astype(np.float64)
    if c == 4:     # CMYK: Adobe files store 255 - ink
        if not adobe:
            a = 255 - a
        k = a[..., 3:4]
        a = np.floor((a[..., :3] * k + 127) / 255)
    return a


def reference(path, resize, crop):
    a = ref_decode(path)
    h, w = a.shape[:2]
    if w <= h:
        rw, rh = resize, resize * h // w
    else:
        rw, rh = resize * w // h, resize
    x0, y0 = (rw - crop) // 2, (rh - crop) // 2
    t = torch.from_numpy(a).permute(2, 0, 1)[None]
    r = F.interpolate(t, size=(rh, rw), mode="bilinear", antialias=True, align_corners=False)
    r = r[0].permute(1, 2, 0).numpy()[y0:y0 + crop, x0:x0 + crop]
    # Same powers-of-two DCT prescale rule as the tool: smallest m/8 covering (rw, rh).
    m = next((m for m in (1, 2, 4) if w * m >= rw * 8 and h * m >= rh * 8), 8)
    return np.clip(np.floor(r + 0.5), 0, 255), m


def capped(w, h):
    """The stored size: longer side to MAX_SIDE when larger, shorter rounded to nearest."""
    L, S = max(w, h), min(w, h)
    if L > MAX_SIDE:
        S, L = max(1, (S * MAX_SIDE * 2 + L) // (2 * L)), MAX_SIDE
    return (L, S) if w >= h else (S, L)


def reference_capped(path):
    a = ref_decode(path)
    h, w = a.shape[:2]
    rw, rh = capped(w, h)
    if (rw, rh) == (w, h):
        return a, 8
    t = torch.from_numpy(a).permute(2, 0, 1)[None]
    r = F.interpolate(t, size=(rh, rw), mode="bilinear", antialias=True, align_corners=False)[0].permute(1, 2, 0).numpy()
    m = next((m for m in (1, 2, 4) if w * m >= rw * 8 and h * m >= rh * 8), 8)
    return np.clip(np.floor(r + 0.5), 0, 255), m


def kept_as_is(path):
    """Baseline (SOF0/SOF1) 3-component JPEG within the cap and no warning: stored as it is."""
    with open(path, "rb") as fh:
        b = fh.read()
    if os.path.relpath(path, ROOT) in WARN:
        return False
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:
            return False
        mk, ln = b[i + 1], (b[i + 2] << 8) | b[i + 3]
        if mk in (0xC0, 0xC1):
            h, w, nc = (b[i + 5] << 8) | b[i + 6], (b[i + 7] << 8) | b[i + 8], b[i + 9]
            return nc == 3 and max(w, h) <= MAX_SIDE   # (the fixtures' 3-component files are all YCbCr)
        if 0xC2 <= mk <= 0xCF and mk not in (0xC4, 0xC8, 0xCC):
            return False
        i += 2 + ln
    return False


errs_struct, errs_plan, errs_px, errs_kinds = [], [], [], []
seen_kinds = set()
shard_entries = []
sizes = [SIZE, VSIZE]
resizes = [SIZE, VRESIZE]
worst_psnr, worst_mean, n_kept, n_reenc = 99.0, 0.0, 0, 0
for s in range(2):
    for k in range(nshards[s]):
        rel = "%s/%s-%05d-of-%05d.h5" % (names[s], names[s], k, nshards[s])
        path = os.path.join(OUT, rel)
        want = [(r, l) for r, l in shard_items(s, k) if r not in SKIP]
        n = len(want)
        with h5py.File(path, "r") as f:
            a = f.attrs
            common = {"format": b"semaim-prep shard", "format_version": 2, "split": names[s].encode(), "shard_index": k,
                      "shard_count": nshards[s], "num_classes": len(classes)}
            if JPEG:
                exp = dict(common, store=b"jpeg", max_side=MAX_SIDE, quality=QUALITY)
            else:
                exp = dict(common, store=b"raw", image_size=sizes[s], resize=resizes[s])
            attrs = {key: a[key] if key in a else None for key in exp}
            if attrs != exp:
                errs_struct.append("%s: attributes %r, expected %r" % (rel, attrs, exp))
            lab, keys = f["labels"], f["keys"]
            dsets = [lab, keys]
            if JPEG:
                jb, off, wd, ht = f["jpeg"], f["offsets"], f["widths"], f["heights"]
                dsets += [jb, off, wd, ht]
                if jb.ndim != 1 or jb.dtype != np.uint8 or off.shape != (n + 1,) or off.dtype != np.uint64 or \
                        wd.shape != (n,) or ht.shape != (n,) or wd.dtype != np.int32 or ht.dtype != np.int32:
                    errs_struct.append("%s: /jpeg %s %s, /offsets %s %s, /widths %s, /heights %s" % (
                        rel, jb.shape, jb.dtype, off.shape, off.dtype, wd.shape, ht.shape))
                o, ws, hs = off[:], wd[:], ht[:]
                if o[0] != 0 or (np.diff(o.astype(np.int64)) <= 0).any() or o[-1] != jb.shape[0]:
                    errs_struct.append("%s: offsets %s do not run from 0 to the byte count %d" % (rel, o[:5], jb.shape[0]))
                allb = jb[:]
                stored = [allb[o[i]:o[i + 1]].tobytes() for i in range(min(n, len(o) - 1))]
            else:
                img = f["images"]
                dsets.append(img)
                if img.shape != (n, sizes[s], sizes[s], 3) or img.dtype != np.uint8:
                    errs_struct.append("%s: /images %s %s" % (rel, img.shape, img.dtype))
                images = img[:]
            if lab.shape != (n,) or lab.dtype != np.int32 or keys.shape != (n,) or keys.dtype.kind != "S":
                errs_struct.append("%s: /labels %s %s, /keys %s %s" % (rel, lab.shape, lab.dtype, keys.shape, keys.dtype))
            for d in dsets:
                if d.chunks is not None or d.compression is not None or d.id.get_create_plist().get_layout() != h5py.h5d.CONTIGUOUS:
                    errs_struct.append("%s: %s is not contiguous/unfiltered" % (rel, d.name))
            got = [(names[s] + "/" + kk.decode(), int(ll)) for kk, ll in zip(keys[:], lab[:])]
            if got != want:
                errs_plan.append("%s: keys/labels %r, expected %r" % (rel, got, want))
        if JPEG:
            for i, (r, _) in enumerate(want[:len(stored)]):
                src = os.path.join(ROOT, r)
                ref, m = reference_capped(src)
                seen_kinds.add(os.path.basename(r) if s == 0 else "val")
                pil = np.asarray(Image.open(io.BytesIO(stored[i])).convert("RGB")).astype(np.float64)
                if pil.shape != ref.shape or (ws[i], hs[i]) != (ref.shape[1], ref.shape[0]):
                    errs_px.append("%s: stored %s, /widths x /heights %dx%d, expected %s" % (r, pil.shape, ws[i], hs[i], ref.shape))
                    continue
                with open(src, "rb") as fh:
                    orig = fh.read()
                if kept_as_is(src):
                    n_kept += 1
                    seen_kinds.add("kept")
                    if stored[i] != orig:
                        errs_px.append("%s: a baseline JPEG within the cap is not stored byte-identical" % r)
                    continue
                n_reenc += 1
                seen_kinds.add("reencoded")
                if stored[i] == orig:
                    errs_px.append("%s: stored as it is, but needs re-encoding" % r)
                if m < 8:
                    seen_kinds.add("prescaled")
                # JPEG's own error at this quality: PIL's encoder on the intended image
                buf = io.BytesIO()
                Image.fromarray(ref.astype(np.uint8)).save(buf, "JPEG", quality=QUALITY)
                pe = np.abs(np.asarray(Image.open(buf).convert("RGB")).astype(np.float64) - ref)
                d = np.abs(pil - ref)
                psnr, ppsnr = (10 * np.log10(255.0 ** 2 / max((x ** 2).mean(), 1e-12)) for x in (d, pe))
                if os.environ.get("CHECK_SUITE_VERBOSE"):
                    print("    %s: m %d PSNR %.1f mean %.2f (PIL at quality %d: %.1f dB, %.2f)" % (r, m, psnr, d.mean(), QUALITY, ppsnr, pe.mean()))
                worst_psnr, worst_mean = min(worst_psnr, psnr), max(worst_mean, d.mean())
                slack = 0.5 if m == 8 else 1.5   # a DCT-prescaled decode differs from a full one (above)
                if psnr < ppsnr - 2 * slack or d.mean() > 1.25 * pe.mean() + slack:
                    errs_px.append("%s (prescale %d/8): PSNR %.1f dB, mean |diff| %.2f; PIL at quality %d: %.1f dB, %.2f" % (
                        r, m, psnr, d.mean(), QUALITY, ppsnr, pe.mean()))
        else:
            for i, (r, _) in enumerate(want[:len(images)]):
                ref, m = reference(os.path.join(ROOT, r), resizes[s], sizes[s])
                d = np.abs(images[i].astype(np.float64) - ref)
                seen_kinds.add(os.path.basename(r) if s == 0 else "val")
                if (m == 8 and d.max() > 1) or (m < 8 and (d.mean() > 1.0 or d.max() > 16)):
                    errs_px.append("%s (prescale %d/8): max |diff| %.0f, mean %.3f" % (r, m, d.max(), d.mean()))
                if m < 8:
                    seen_kinds.add("prescaled")
        with open(path, "rb") as fh:
            data = fh.read()
        shard_entries.append({"file": rel, "split": names[s], "index": k, "images": len(want), "bytes": len(data),
                              "crc32": zlib.crc32(data)})
kinds = {"rgb_420.JPEG", "rgb_444.jpg", "gray.jpeg", "progressive.JPG", "with space \u00fc.JPEG", "tiny_1x1.jpg",
         "cmyk_adobe.jpg", "ycck.jpg", "cmyk_plain.jpg", "large.JPEG", "wide.jpg", "tall.jpg", "small.jpg",
         "warn_extraneous.jpg", "val", "prescaled"} | ({"kept", "reencoded"} if JPEG else set())
if kinds - seen_kinds:
    errs_kinds.append("fixture kinds never compared: %s" % sorted(kinds - seen_kinds))
report("h5py reads every shard: attributes, shapes, dtypes, contiguous and unfiltered", errs_struct)
report("keys and labels equal the independently recomputed sorted/shuffled/dealt plan", errs_plan)
if JPEG:
    report("stored JPEGs decoded by PIL: %d originals byte-identical, %d re-encoded at quality %d within JPEG's error "
           "(worst PSNR %.1f dB, worst mean |diff| %.2f)" % (n_kept, n_reenc, QUALITY, worst_psnr, worst_mean), errs_px + errs_kinds)
else:
    report("pixels equal a TurboJPEG decode + torch antialiased resize and centre crop (within tolerance)", errs_px + errs_kinds)

# ---------------------------------------------------------------- manifest
errs = []
with open(os.path.join(OUT, "manifest.json"), "rb") as fh:
    man = json.loads(fh.read().decode("utf-8"))
skipped = []
for s in range(2):
    for k in range(nshards[s]):
        skipped += [r for r, _ in shard_items(s, k) if r in SKIP]
skipped += [f for f in SCAN_TIME]
skipped = sorted(set(skipped), key=lambda f: f.encode())
got_skip = man.get("skipped", [])
if [x["file"] for x in got_skip] != skipped:
    errs.append("skipped files %r, expected %r" % ([x["file"] for x in got_skip], skipped))
for x in got_skip:
    exp = SKIP.get(x["file"], "?")
    if not (x["reason"] == exp or (exp.endswith(": ") and x["reason"].startswith(exp) and len(x["reason"]) > len(exp))):
        errs.append("%s: reason %r, expected %r" % (x["file"], x["reason"], exp))
warn = man.get("warnings", [])
if [x["file"] for x in warn] != sorted(WARN) or any(WARN[x["file"]] not in x["message"] for x in warn):
    errs.append("warnings %r" % warn)
nimg = [sum(e["images"] for e in shard_entries if e["split"] == names[s]) for s in range(2)]
nskip = [sum(1 for f in skipped if f.startswith(names[s] + "/")) for s in range(2)]
expect = {
    "format": "semaim-prep manifest", "format_version": 2, "classes": classes, "val_labels": "LOC_val_solution.csv",
    "splits": {names[s]: {"shards": nshards[s], "images": nimg[s], "skipped": nskip[s]} for s in range(2)},
    "shards": shard_entries,
}
for key, val in expect.items():
    if man.get(key) != val:
        errs.append("manifest[%r] = %r, expected %r" % (key, man.get(key), val))
rec = man.get("recipe", {})
rexp = {"seed": SEED, "train_shards": TS, "val_shards": VS, "format_version": 2}
if JPEG:
    rexp.update({"store": "jpeg", "max_side": MAX_SIDE, "quality": QUALITY})
else:
    rexp.update({"store": "raw", "train": {"size": SIZE, "resize": SIZE}, "val": {"size": VSIZE, "resize": VRESIZE}})
for key, val in rexp.items():
    if rec.get(key) != val:
        errs.append("recipe[%r] = %r, expected %r" % (key, rec.get(key), val))
extra = set(man) - set(expect) - {"recipe", "skipped", "warnings", "source"}
if extra:
    errs.append("unexpected manifest keys %s" % sorted(extra))
report("manifest.json: shard names, counts, bytes, CRC32, classes, every skipped file with its reason, warnings", errs)
sys.exit(1 if failed else 0)
