"""Compares the fine-tuning augmentations (build/tools/randaug_dump) with torchvision 0.14 on
PIL images, whose functional ops call the same PIL code timm's RandAugment calls:
  ops          every RandAugment op against torchvision.transforms.functional (rotate, affine
               for shear/translate, posterize, solarize, equalize, autocontrast, invert,
               adjust_saturation/contrast/brightness/sharpness) or, for SolarizeAdd, PIL's
               point() as timm calls it; pixel-exact (bound 0).
  randaug      whole RandAugment draws replayed with timm's own PIL calls (Image.rotate,
               Image.transform AFFINE, ImageOps, ImageEnhance) on the plan the C code drew,
               each argument recomputed here from timm's level functions; pixel-exact.
  erasing      the erased image = torchvision's ToTensor + Normalize + erase() of the drawn
               boxes with the drawn values (so outside the boxes the image is untouched).
  crop, eval   RandomResizedCrop to uint8 and the eval transform (Resize(R) + CenterCrop,
               R from augment_eval_resize) against torchvision on PIL: within 1 grey level
               (crop, after rounding) and 1.13 levels (eval, float): PIL rounds its horizontal
               pass to uint8 (≤ ½ level, amplified by at most Σ|w| ≤ 1.25 of the Keys a = −½
               vertical taps: ≤ 0.63) and its result (≤ ½), with 22-bit fixed-point weights
               (≤ 1e-4); the C code rounds once (crop) or not at all (eval). The images are
               smooth and inside [32, 223] so that neither side clips between the passes.
Usage: randaug_torch.py DUMP_TOOL WORKDIR"""
import math, os, struct, subprocess, sys
import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode
from torchvision.transforms.functional import _get_inverse_affine_matrix

tool, work = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(16)
# the C enum order (src/data/randaug.h)
OPS = ["AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd",
       "Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel",
       "TranslateYRel", "PosterizeIncreasing", "SolarizeIncreasing", "ColorIncreasing",
       "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"]
OP = {n: i for i, n in enumerate(OPS)}
FILL = (124, 116, 104)
TV_MODE = [InterpolationMode.BILINEAR, InterpolationMode.BICUBIC]
PIL_MODE = [Image.BILINEAR, Image.BICUBIC]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def pil(a):
    return Image.fromarray(np.ascontiguousarray(a), "RGB")


def arr(im):
    return np.asarray(im, dtype=np.uint8)


def smooth(H, W):
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    ch = [128 + 60 * np.sin(x / (5 + 3 * c) + c) * np.cos(y / (6 + 2 * c)) for c in range(3)]
    v = np.stack(ch, -1) + rng.uniform(-8, 8, size=(H, W, 3))
    return np.clip(np.rint(v), 32, 223).astype(np.uint8)


def test_images():
    noise = lambda H, W, lo=0, hi=256: rng.integers(lo, hi, size=(H, W, 3), dtype=np.uint8)
    few = rng.choice(np.array([3, 40, 41, 90, 200, 201, 250, 255], dtype=np.uint8), size=(16, 16, 3))
    skew = np.where(rng.random((20, 24, 3)) < 0.9, 17, rng.integers(0, 256, size=(20, 24, 3))).astype(np.uint8)
    return [noise(37, 53), noise(64, 64), noise(45, 31, 90, 141), few, skew, smooth(50, 70),
            np.full((12, 12, 3), 77, np.uint8), noise(2, 3), noise(224, 224)]


cases = []   # (header ints, key, arg, image, check(got bytes) -> (name, ok, detail), out size)


def add(mode, img, op=0, interp=0, abc=(0, 0, 0), key=0, arg=0.0, nbytes=None, check=None):
    H, W = img.shape[:2]
    cases.append(([mode, H, W, op, interp, *abc], key, float(arg), img, nbytes, check))


def exact(name, ref):
    def check(buf, img):
        got = np.frombuffer(buf, np.uint8).reshape(img.shape)
        d = np.abs(got.astype(int) - ref.astype(int))
        return name, d.max() == 0, f"{int((d > 0).sum())} of {d.size} values differ, max {d.max()}"
    return check


def op_case(name, img, arg, interp, ref):
    add(0, img, OP[name], interp, FILL, arg=arg, nbytes=img.size, check=exact(name, arr(ref)))


# ---- 1. every op against torchvision's functional op on the PIL image
imgs = test_images()
for img in imgs:
    im = pil(img)
    H, W = img.shape[:2]
    for interp in (0, 1):
        m = TV_MODE[interp]
        for ang in (-30.0, -17.3, -0.5, 0.0, 12.25, 29.99, 45.0, 90.0, 180.0, 270.0, -90.0, 360.0):
            op_case("Rotate", img, ang, interp, TF.rotate(im, ang, interpolation=m, fill=list(FILL)))
        for f in (-0.3, -0.12, 0.0, 0.07, 0.27):
            deg = math.degrees(math.atan(f))
            mx = _get_inverse_affine_matrix([0.0, 0.0], 0.0, [0.0, 0.0], 1.0, [deg, 0.0])
            op_case("ShearX", img, mx[1], interp, TF.affine(im, 0.0, [0.0, 0.0], 1.0, [deg, 0.0], m, list(FILL), [0, 0]))
            my = _get_inverse_affine_matrix([0.0, 0.0], 0.0, [0.0, 0.0], 1.0, [0.0, deg])
            op_case("ShearY", img, my[3], interp, TF.affine(im, 0.0, [0.0, 0.0], 1.0, [0.0, deg], m, list(FILL), [0, 0]))
        for pct in (-0.45, -0.2, 0.0, 0.137, 0.405):
            for name, t in (("TranslateXRel", [-pct * W, 0.0]), ("TranslateYRel", [0.0, -pct * H])):
                mt = _get_inverse_affine_matrix([0.0, 0.0], 0.0, t, 1.0, [0.0, 0.0])
                op_case(name, img, mt[2] if name == "TranslateXRel" else mt[5], interp,
                        TF.affine(im, 0.0, t, 1.0, [0.0, 0.0], m, list(FILL), [0, 0]))
    for bits in range(0, 9):
        op_case("PosterizeIncreasing", img, bits, 0, TF.posterize(im, bits))
    for th in (0, 1, 77, 128, 230, 255, 256):
        op_case("SolarizeIncreasing", img, th, 0, TF.solarize(im, th))
    for add_ in (0, 11, 99, 110):
        lut = [min(255, i + add_) if i < 128 else i for i in range(256)]
        op_case("SolarizeAdd", img, add_, 0, im.point(lut * 3))
    op_case("AutoContrast", img, 0, 0, TF.autocontrast(im))
    op_case("Equalize", img, 0, 0, TF.equalize(im))
    op_case("Invert", img, 0, 0, TF.invert(im))
    for f in (0.0, 0.1, 0.37, 0.5, 0.9999, 1.0, 1.27, 1.81, 1.9, 2.5):
        op_case("ColorIncreasing", img, f, 0, TF.adjust_saturation(im, f))
        op_case("ContrastIncreasing", img, f, 0, TF.adjust_contrast(im, f))
        op_case("BrightnessIncreasing", img, f, 0, TF.adjust_brightness(im, f))
        op_case("SharpnessIncreasing", img, f, 0, TF.adjust_sharpness(im, f))


# ---- 2. whole RandAugment draws, replayed with timm's PIL calls
def timm_arg(name, m, neg):   # timm's *_level_to_arg, _LEVEL_DENOM 10
    s = -1.0 if neg else 1.0
    lv = m / 10.0
    if name == "Rotate": return s * (lv * 30.0)
    if name == "PosterizeIncreasing": return 4 - int(lv * 4)
    if name == "SolarizeIncreasing": return 256 - int(lv * 256)
    if name == "SolarizeAdd": return int(lv * 110)
    if name.endswith("Increasing"): return max(0.1, 1.0 + s * (lv * 0.9))
    if name in ("ShearX", "ShearY"): return s * (lv * 0.3)
    if name in ("TranslateXRel", "TranslateYRel"): return s * (lv * 0.45)
    return 0.0


def timm_apply(im, name, a, interp):
    kw = dict(resample=PIL_MODE[interp], fillcolor=FILL)
    if name == "Rotate": return im.rotate(a, **kw)
    if name == "ShearX": return im.transform(im.size, Image.AFFINE, (1, a, 0, 0, 1, 0), **kw)
    if name == "ShearY": return im.transform(im.size, Image.AFFINE, (1, 0, 0, a, 1, 0), **kw)
    if name == "TranslateXRel": return im.transform(im.size, Image.AFFINE, (1, 0, a * im.size[0], 0, 1, 0), **kw)
    if name == "TranslateYRel": return im.transform(im.size, Image.AFFINE, (1, 0, 0, 0, 1, a * im.size[1]), **kw)
    if name == "PosterizeIncreasing": return im if a >= 8 else ImageOps.posterize(im, a)
    if name == "SolarizeIncreasing": return ImageOps.solarize(im, a)
    if name == "SolarizeAdd": return im.point([min(255, i + a) if i < 128 else i for i in range(256)] * 3)
    if name == "AutoContrast": return ImageOps.autocontrast(im)
    if name == "Equalize": return ImageOps.equalize(im)
    if name == "Invert": return ImageOps.invert(im)
    enh = {"ColorIncreasing": ImageEnhance.Color, "ContrastIncreasing": ImageEnhance.Contrast,
           "BrightnessIncreasing": ImageEnhance.Brightness, "SharpnessIncreasing": ImageEnhance.Sharpness}[name]
    return enh(im).enhance(a)


def randaug_check(img):
    def check(buf, _):
        n = img.size
        got = np.frombuffer(buf[:n], np.uint8).reshape(img.shape)
        (k,) = struct.unpack_from("<i", buf, n)
        im, off, argbad = pil(img), n + 4, 0
        for _ in range(k):
            op, apply, interp, neg = struct.unpack_from("<4i", buf, off)
            mag, a = struct.unpack_from("<2d", buf, off + 16)
            off += 32
            name = OPS[op]
            want = timm_arg(name, mag, neg)
            pixels = a / (img.shape[1] if name == "TranslateXRel" else img.shape[0]) if name.startswith("Translate") else a
            argbad += not math.isclose(pixels, want, rel_tol=1e-12, abs_tol=1e-12)
            if apply: im = timm_apply(im, name, want, interp)
        d = np.abs(got.astype(int) - arr(im).astype(int))
        return "randaug_replay", d.max() == 0 and argbad == 0, f"max diff {d.max()}, {argbad} arguments off timm's"
    return check


for t in range(160):
    img = imgs[t % len(imgs)] if t % 4 else rng.integers(0, 256, size=(96, 80, 3), dtype=np.uint8)
    interp = 1 if t % 2 else 2   # RA_BICUBIC (the recipe) / RA_RANDOM (timm's default)
    add(1, img, interp=interp, key=int(rng.integers(0, 2**62)), nbytes=None, check=randaug_check(img))


# ---- 3. random erasing = torchvision erase() of the drawn boxes with the drawn values
def erase_check(img):
    def check(buf, _):
        H, W = img.shape[:2]
        n = 3 * H * W
        got = torch.from_numpy(np.frombuffer(buf[:4 * n], np.float32).reshape(3, H, W).copy())
        (k,) = struct.unpack_from("<i", buf, 4 * n)
        ref = TF.normalize(TF.to_tensor(pil(img)), MEAN, STD)
        ok = True
        for b in range(k):
            top, left, h, w = struct.unpack_from("<4i", buf, 4 * n + 4 + 16 * b)
            ok &= 0 <= top and 0 <= left and 0 < h < H and 0 < w < W and top + h <= H and left + w <= W
            ref = TF.erase(ref, top, left, h, w, got[:, top:top + h, left:left + w])
        d = (got - ref).abs().max().item()
        return "erasing_vs_torchvision_erase", ok and d < 2e-6, f"{k} boxes, max diff {d:.2e}"
    return check


for t in range(40):
    img = rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
    add(2, img, key=int(rng.integers(0, 2**62)), check=erase_check(img))


# ---- 4. uint8 RandomResizedCrop and the eval transform against torchvision on PIL
def crop_check(img, x0, y0, w, h, flip, S):
    def check(buf, _):
        got = np.frombuffer(buf, np.uint8).reshape(S, S, 3).astype(int)
        ref = TF.resized_crop(pil(img), y0, x0, h, w, [S, S], InterpolationMode.BICUBIC)
        if flip: ref = TF.hflip(ref)
        d = np.abs(got - arr(ref).astype(int))
        return "crop_u8_vs_torchvision_resized_crop", d.max() <= 1, f"max {d.max()} levels, mean {d.mean():.3f}"
    return check


def eval_check(img, S):
    def check(buf, _):
        (R,) = struct.unpack_from("<i", buf, 0)
        got = np.frombuffer(buf[4:], np.float32).reshape(3, S, S).astype(np.float64)
        im = TF.center_crop(TF.resize(pil(img), R, InterpolationMode.BICUBIC), S)
        want_R = S if img.shape[:2] == (S, S) else math.floor(S / 0.875)
        lv = (got * np.array(STD)[:, None, None] + np.array(MEAN)[:, None, None]) * 255
        d = np.abs(lv - arr(im).transpose(2, 0, 1))
        return "eval_vs_torchvision_resize_centercrop", R == want_R and d.max() <= 1.13, f"R {R}, max {d.max():.3f} levels"
    return check


for t in range(12):
    H, W = int(rng.integers(20, 120)), int(rng.integers(20, 120))
    img = smooth(H, W)
    h, w = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
    y0, x0 = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
    S, flip = int(rng.integers(8, 64)), t % 2
    add(3, img, op=h, interp=flip, abc=(x0, y0, w), arg=S, nbytes=S * S * 3, check=crop_check(img, x0, y0, w, h, flip, S))
for H, W, S in ((300, 400, 224), (256, 256, 224), (224, 224, 224), (61, 40, 32), (90, 90, 56)):
    img = smooth(H, W)
    add(4, img, arg=S, nbytes=4 + 12 * S * S, check=eval_check(img, S))

# ---- run the C side once, then check every case
inp, outp = os.path.join(work, "ra_in.bin"), os.path.join(work, "ra_out.bin")
with open(inp, "wb") as f:
    f.write(struct.pack("<i", len(cases)))
    for hdr, key, arg, img, _, _ in cases:
        f.write(struct.pack("<8iqd", *hdr, key, arg)); f.write(np.ascontiguousarray(img).tobytes())
subprocess.run([tool, inp, outp], check=True)
data = open(outp, "rb").read()
off, results = 0, {}
for hdr, key, arg, img, nbytes, check in cases:
    mode = hdr[0]
    if nbytes is None:   # variable-size records: image (+ float image) then a count and records
        n = img.size if mode == 1 else 12 * img.shape[0] * img.shape[1]
        (k,) = struct.unpack_from("<i", data, off + n)
        nbytes = n + 4 + k * (32 if mode == 1 else 16)
    name, ok, detail = check(data[off:off + nbytes], img)
    off += nbytes
    r = results.setdefault(name, [True, 0, []])
    r[0] &= bool(ok); r[1] += 1
    if not ok and len(r[2]) < 3: r[2].append(f"{img.shape[:2]} arg {arg:g} interp {hdr[4]}: {detail}")
    elif len(r[2]) == 0 and name.startswith(("crop", "eval", "erasing", "randaug")): r[2].append(detail)
assert off == len(data), f"dump size {len(data)}, parsed {off}"
for name, (ok, count, notes) in results.items():
    print(f"{'PASS' if ok else 'FAIL'}: torch_{name} ({count} cases{'; ' + ' | '.join(notes) if notes else ''})")
sys.exit(0 if all(r[0] for r in results.values()) else 1)
