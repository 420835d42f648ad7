"""Compares the C bicubic resize / augmentation (build/tools/augment_dump) with PyTorch:
INTERP_TORCH against F.interpolate(mode='bicubic', align_corners=False) and INTERP_PIL against
the same with antialias=True (PIL's filter). Usage: augment_torch.py DUMP_TOOL WORKDIR"""
import os, subprocess, sys
import numpy as np
import torch
import torch.nn.functional as F

tool, work = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(1234)
MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(3, 1, 1)
cases = []   # (header, image)
for mode in (0, 1, 2):
    for interp in (0, 1):
        for t in range(6):
            H, W = int(rng.integers(8, 160)), int(rng.integers(8, 160))
            img = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
            if t == 0:   # strong downscale: where antialiasing matters
                img = rng.integers(0, 256, size=(150, 140, 3), dtype=np.uint8); H, W = 150, 140
            h, w = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
            if t == 0: h, w = 150, 140
            y0, x0 = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
            OH = OW = int(rng.integers(4, 64)) if t else 17
            if mode == 0 and t % 2: OW = int(rng.integers(4, 64))
            R = OH + int(rng.integers(0, 20))
            flip = int(t % 2)
            cases.append(([mode, H, W, x0, y0, w, h, OH, OW, interp, flip, R], img))

inp, outp = os.path.join(work, "aug_in.bin"), os.path.join(work, "aug_out.bin")
with open(inp, "wb") as f:
    f.write(np.int32(len(cases)).tobytes())
    for hdr, img in cases:
        f.write(np.array(hdr, dtype=np.int32).tobytes()); f.write(img.tobytes())
subprocess.run([tool, inp, outp], check=True)
got = np.fromfile(outp, dtype=np.float32)

def resize(x, OH, OW, interp):   # x [3,h,w] float64
    return F.interpolate(x[None], size=(OH, OW), mode="bicubic", align_corners=False,
                         antialias=(interp == 0))[0]

worst = {}
off = 0
for hdr, img in cases:
    mode, H, W, x0, y0, w, h, OH, OW, interp, flip, R = hdr
    x = torch.from_numpy(img).permute(2, 0, 1).to(torch.float64)
    if mode == 0:
        ref = resize(x[:, y0:y0 + h, x0:x0 + w], OH, OW, interp)
    elif mode == 1:
        ref = resize(x[:, y0:y0 + h, x0:x0 + w], OH, OH, interp)
        if flip: ref = ref.flip(-1)
        ref = (ref / 255 - MEAN) / STD
    else:   # torchvision Resize(R) + CenterCrop(S) on a tensor
        if W <= H: nw, nh = R, int(R * H / W)
        else: nh, nw = R, int(R * W / H)
        full = resize(x, nh, nw, interp)
        top, left = int(round((nh - OH) / 2.0)), int(round((nw - OH) / 2.0))
        ref = (full[:, top:top + OH, left:left + OH] / 255 - MEAN) / STD
    n = ref.numel()
    d = np.abs(got[off:off + n].astype(np.float64) - ref.numpy().ravel()).max()
    scale = 255.0 if mode == 0 else 1.0 / 0.224   # compare in pixel-fraction units
    key = (mode, interp)
    worst[key] = max(worst.get(key, 0.0), d / scale)
    off += n
assert off == got.size, f"dump size {got.size}, expected {off}"
names = {0: "resize", 1: "train_augment", 2: "eval_transform"}
ok_all = True
for (mode, interp), d in sorted(worst.items()):
    name = f"torch_{names[mode]}_{'pil_antialias' if interp == 0 else 'bicubic_no_antialias'}"
    ok = d < 1e-5   # relative to the pixel range; float32 accumulation is ~1e-6
    ok_all &= ok
    print(f"{'PASS' if ok else 'FAIL'}: {name} (max error {d:.2e} of the pixel range)")
sys.exit(0 if ok_all else 1)
