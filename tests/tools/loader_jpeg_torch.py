"""The loader on jpeg shards against torchvision on the decoded stored images.
Usage: loader_jpeg_torch.py DUMP SHARD_DIR SPLIT S MODE TRAIN INTERP
  DUMP: build/tools/loader_check dump output; SHARD_DIR/SPLIT: the shards it read (h5py);
  MODE: exact (the loader decoded at full size: must equal torchvision to float rounding, the
  bound of tests/t_augment_torch.sh) or scaled (DCT scaling on: within the prescale's error,
  mean |diff| <= 1.5 and max <= 40 grey levels per image; measured on the fixtures: mean
  0.4-0.5 over all, worst image mean 1.04 and one pixel 27.8 where a box of 68 px is decoded
  at 1/2 and resampled 34 -> 32 with the sharp bicubic; data_prep's triangle filter allows 16);
  TRAIN 1: RandomResizedCrop box + flip, 0: Resize(floor(S/0.875)) + CenterCrop(S).
Each stored image is decoded with PIL (not the C decoder). Prints PASS:/FAIL: lines."""
import glob, io, math, os, sys
import h5py, numpy as np, torch
from PIL import Image
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

dump, root, split, S, mode, train, interp = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], \
    int(sys.argv[6]), int(sys.argv[7])
MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(3, 1, 1)
files = sorted(glob.glob(os.path.join(root, split, split + "-*-of-*.h5")))
images = []   # global id -> (bytes, w, h)
for fn in files:
    with h5py.File(fn, "r") as f:
        o, jb, w, h = f["offsets"][:], f["jpeg"][:], f["widths"][:], f["heights"][:]
        images += [(jb[o[i]:o[i + 1]].tobytes(), int(w[i]), int(h[i])) for i in range(len(w))]
raw = np.fromfile(dump, dtype=np.uint8)
rec = 40 + 12 * S * S
assert raw.size % rec == 0 and raw.size, "dump size %d is not a whole number of records" % raw.size
errs, box_errs, worst, means, scaled, n = [], [], 0.0, [], 0, raw.size // rec
for r in range(n):
    hdr = raw[r * rec:r * rec + 40].view(np.int32)
    got = raw[r * rec + 40:(r + 1) * rec].view(np.float32).astype(np.float64).reshape(3, S, S)
    gid, lab, W, H, x0, y0, w, h, flip, m = map(int, hdr)
    data, sw, sh = images[gid]
    pil = Image.open(io.BytesIO(data)).convert("RGB")
    if pil.size != (W, H) or (sw, sh) != (W, H):
        errs.append("id %d: stored %s, shard says %dx%d, loader %dx%d" % (gid, pil.size, sw, sh, W, H))
        continue
    x = torch.from_numpy(np.asarray(pil).astype(np.float64)).permute(2, 0, 1)
    im = InterpolationMode.BICUBIC
    if train:
        # the box is RandomResizedCrop's over the whole stored image (scale 0.2..1, ratio 3/4..4/3)
        area, ratio, tol = w * h / (W * H), w / h, 2.5 / min(w, h)
        fallback = (x0, y0) == ((W - w) // 2, (H - h) // 2) and (w == W or h == H)
        if not (0 <= x0 and 0 <= y0 and x0 + w <= W and y0 + h <= H) or \
                not (fallback or (0.2 * (1 - tol) <= area <= 1 and abs(math.log(ratio)) <= math.log(4 / 3) + tol)):
            box_errs.append("id %d: box %d,%d %dx%d in %dx%d" % (gid, x0, y0, w, h, W, H))
        if interp == 0:
            ref = TF.resized_crop(x, y0, x0, h, w, [S, S], im, antialias=True)
        else:   # INTERP_TORCH: interpolate without antialias on the crop
            ref = torch.nn.functional.interpolate(x[None, :, y0:y0 + h, x0:x0 + w], size=(S, S), mode="bicubic",
                                                  align_corners=False)[0]
        if flip:
            ref = ref.flip(-1)
    else:
        R = int(S / 0.875)
        ref = TF.center_crop(TF.resize(x, [R], im, antialias=(interp == 0)), [S, S])
    ref = (ref / 255 - MEAN) / STD
    d = (got - ref.numpy()).__abs__() * 0.224 * 255   # in grey levels (at the channel with the largest std)
    worst = max(worst, d.max())
    means.append(d.mean())
    scaled += m < 8
    if mode == "exact" and d.max() / 255 >= 1e-5:
        errs.append("id %d (%dx%d, box %d,%d %dx%d): max |diff| %.2e of the pixel range" % (gid, W, H, x0, y0, w, h, d.max() / 255))
    if mode == "scaled" and (d.mean() > 1.5 or d.max() > 40):
        errs.append("id %d (%dx%d, box %d,%d %dx%d, m %d/8): mean |diff| %.2f, max %.1f levels" % (gid, W, H, x0, y0, w, h, m, d.mean(), d.max()))
what = ("RandomResizedCrop (box against the whole image) + flip" if train else "Resize + CenterCrop") + \
       (" PIL bicubic" if interp == 0 else " torch bicubic")
name = "loader_jpeg_%s_%s_%s" % ("train" if train else "eval", "pil" if interp == 0 else "torch", mode)
if mode == "exact":
    ok = not errs and n > 0
    print("%s: %s (%d samples: %s equals torchvision on the PIL-decoded stored image, max error %.2e of the pixel range)"
          % ("PASS" if ok else "FAIL", name, n, what, worst / 255))
else:
    ok = not errs and scaled > 0
    print("%s: %s (%d samples, %d DCT-scaled: mean |diff| %.2f, worst %.1f grey levels; bound mean 1.5, max 40)"
          % ("PASS" if ok else "FAIL", name, n, scaled, float(np.mean(means)), worst))
for e in errs[:8]:
    print("   ", e)
if train:
    print("%s: %s_box_is_rrc_of_the_whole_image (%d boxes)" % ("FAIL" if box_errs else "PASS", name, n))
    for e in box_errs[:8]:
        print("   ", e)
sys.exit(0 if ok and not box_errs else 1)
