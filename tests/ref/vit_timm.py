"""A ViT encoder laid out exactly like timm's VisionTransformer (vit_*_patch16_224 with
class token, global_pool='token'): the same module names, parameter shapes and forward, so
load_state_dict(strict=True) accepts a file only if its tensor names and shapes are timm's.
Written from timm's public structure (no timm import; the package is not installed here).

Used by tests/t_eval_export.sh:
  vit_timm.py check --weights W.safetensors --shards DIR --features F.h5 [--split val] [--heads N]
      load W strictly, compute the cls token after the final norm, the mean of the normed
      patch tokens and the global pool (mean patch token before the norm, LayerNorm without
      affine) of every image of the split in float64, compare with the C features file
  vit_timm.py write --out W.safetensors --image 32 --patch 8 --width 64 --depth 2 --heads 2
      a randomly initialised model (learned pos_embed, non-trivial norms, a classifier head)
      written by PyTorch through tests/ref/safetensors_io.py, without metadata
  vit_timm.py check-classifier --weights W.safetensors --shards DIR --logits L.bin [--split val]
      a fine-tuning export: load W strictly into the global_pool='avg' model (fc_norm, head,
      no final norm), compare its logits in float64 with semaim's (tests/tools/ft_logits)
  vit_timm.py check-full --weights W.safetensors
      a --full export holds exactly the authors' pretraining names and shapes
      (tests/ref/semaim_ref.param_shapes)
  vit_timm.py break --src W --out-prefix P
      writes damaged copies P{missing,shape,dtype,nan}.safetensors for the import error tests
Each check prints PASS:/FAIL: lines; the exit status is non-zero on failure.
"""
import argparse
import glob
import math
import os
import sys
from collections import OrderedDict

import h5py
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.num_heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """global_pool='token' (timm's default for vit_*): the final `norm`, no fc_norm. With
    global_pool='avg' timm's VisionTransformer turns `norm` into an Identity (no tensors) and
    adds `fc_norm` on the mean of the patch tokens before the head, as here."""

    def __init__(self, image, patch, dim, depth, heads, num_classes=0, global_pool="token"):
        super().__init__()
        L = (image // patch) ** 2
        self.global_pool = global_pool
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, L + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        avg = global_pool == "avg"
        self.norm = nn.Identity() if avg else nn.LayerNorm(dim, eps=1e-6)
        if avg:
            self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x):
        """timm's forward: forward_features, then forward_head (pool, fc_norm, head)."""
        x = self.forward_features(x)
        x = x[:, 1:].mean(dim=1) if self.global_pool == "avg" else x[:, 0]
        if self.global_pool == "avg":
            x = self.fc_norm(x)
        return self.head(x)

    def forward_prenorm(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return x

    def forward_features(self, x):
        return self.norm(self.forward_prenorm(x))


def config_of(tensors, meta, heads=None):
    """image, patch, width, depth, heads from the shapes (heads: metadata, flag, width/64)."""
    D = tensors["cls_token"].shape[2]
    P = tensors["patch_embed.proj.weight"].shape[2]
    G = math.isqrt(tensors["pos_embed"].shape[1] - 1)
    depth = 0
    while f"blocks.{depth}.norm1.weight" in tensors:
        depth += 1
    cfg = dict(kv.split("=") for kv in meta.get("semaim_config", "").split(",") if "=" in kv)
    h = int(cfg["heads"]) if "heads" in cfg else heads if heads else D // 64
    return dict(image=G * P, patch=P, width=D, depth=depth, heads=h), {k: int(v) for k, v in cfg.items()}


def shard_images(shards, split):
    files = sorted(glob.glob(os.path.join(shards, split, f"{split}-*-of-*.h5")))
    if not files:
        raise SystemExit(f"no {split} shards under {shards}")
    imgs, labs = [], []
    for f in files:
        with h5py.File(f, "r") as h:
            imgs.append(h["images"][:])
            labs.append(h["labels"][:])
    return np.concatenate(imgs), np.concatenate(labs)


def report(ok, name, detail):
    print(f"{'PASS' if ok else 'FAIL'}: {name} ({detail})", flush=True)
    return bool(ok)


def strict_load(model, tensors):
    """load_state_dict(strict=True) of every tensor in float64: (loaded, error text)."""
    sd = OrderedDict((k, torch.from_numpy(v.astype(np.float64))) for k, v in tensors.items())
    try:
        model.load_state_dict(sd, strict=True)
        return True, ""
    except RuntimeError as e:
        return False, str(e).replace("\n", " ")[:300]


def normalised_images(shards, split, S):
    """The split's images (S×S shards: the eval transform is the identity) normalised, NCHW."""
    imgs, labs = shard_images(shards, split)
    if imgs.shape[1] != S or imgs.shape[2] != S:
        raise SystemExit(f"shards hold {imgs.shape[1]}x{imgs.shape[2]} images; this check needs {S}x{S}")
    return torch.from_numpy(((imgs / 255.0 - MEAN) / STD).transpose(0, 3, 1, 2).copy()), labs


def rel_err(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def cmd_check(a):
    tensors, meta = safetensors_io.read(a.weights)
    cfg, _ = config_of(tensors, meta, a.heads)
    model = VisionTransformer(cfg["image"], cfg["patch"], cfg["width"], cfg["depth"], cfg["heads"]).double()
    enc = {k: v for k, v in tensors.items() if not k.startswith("head.")}
    loaded, why = strict_load(model, enc)
    ok = report(loaded, f"{a.name}.timm_strict_load", why or f"{len(enc)} tensors, config {cfg}")
    if not loaded:
        return ok
    x, labs = normalised_images(a.shards, a.split, cfg["image"])
    with torch.no_grad():
        pre = torch.cat([model.forward_prenorm(x[i:i + 64]) for i in range(0, len(x), 64)])
        tok = model.norm(pre).numpy()
        # the authors' global pool: mean patch token before the norm, a LayerNorm without affine
        gap_ref = torch.nn.functional.layer_norm(pre[:, 1:].mean(dim=1), (pre.shape[2],), eps=1e-6).numpy()
    cls_ref, mean_ref = tok[:, 0], tok[:, 1:].mean(axis=1)
    with h5py.File(a.features, "r") as h:
        cls_c, mean_c, gap_c, lab_c = h["cls"][:], h["mean"][:], h["gap"][:], h["labels"][:]
    ok &= report(cls_c.shape == cls_ref.shape and np.array_equal(lab_c, labs), f"{a.name}.rows_and_labels",
                 f"C {cls_c.shape}, reference {cls_ref.shape}")
    if cls_c.shape == cls_ref.shape:
        e1, e2, e3 = rel_err(cls_c, cls_ref), rel_err(mean_c, mean_ref), rel_err(gap_c, gap_ref)
        ok &= report(e1 <= a.tol and e2 <= a.tol and e3 <= a.tol, f"{a.name}.features_match",
                     f"max rel diff cls {e1:.2e}, mean {e2:.2e}, gap {e3:.2e} (tolerance {a.tol:g}), {len(cls_c)} images")
    return ok


def cmd_check_classifier(a):
    """A fine-tuning export loads strictly into the global_pool='avg' ViT and gives the logits
    semaim's classifier computed (tests/tools/ft_logits) on the same images."""
    tensors, meta = safetensors_io.read(a.weights)
    cfg, _ = config_of(tensors, meta, a.heads)
    C = tensors["head.weight"].shape[0] if "head.weight" in tensors else 0
    model = VisionTransformer(cfg["image"], cfg["patch"], cfg["width"], cfg["depth"], cfg["heads"], num_classes=C,
                              global_pool="avg").double()
    loaded, why = strict_load(model, tensors)
    ok = report(loaded and C > 0 and meta.get("global_pool") == "avg", f"{a.name}.timm_avg_pool_strict_load",
                why or f"{len(tensors)} tensors, {C} classes, config {cfg}, metadata global_pool={meta.get('global_pool')}")
    if not ok:
        return ok
    x, _ = normalised_images(a.shards, a.split, cfg["image"])
    with torch.no_grad():
        ref = torch.cat([model(x[i:i + 64]) for i in range(0, len(x), 64)]).numpy()
    raw = open(a.logits, "rb").read()
    n, c = np.frombuffer(raw[:8], dtype="<i4")
    got = np.frombuffer(raw[8:], dtype="<f4").reshape(n, c).astype(np.float64)
    ok &= report(got.shape == ref.shape, f"{a.name}.logits_rows", f"C {got.shape}, reference {ref.shape}")
    if got.shape == ref.shape:
        e = rel_err(got, ref)
        spread = float(ref.std(axis=0).mean())
        ok &= report(e <= a.tol and spread > 0, f"{a.name}.logits_match",
                     f"max rel diff {e:.2e} (tolerance {a.tol:g}), {n} images, logit spread over images {spread:.3g}")
    return ok


def cmd_write(a):
    torch.manual_seed(a.seed)
    m = VisionTransformer(a.image, a.patch, a.width, a.depth, a.heads, num_classes=a.classes)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name in ("cls_token", "pos_embed"):
                p.normal_(0, 0.02)            # learned, not the sin-cos table
            elif p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)   # non-trivial norms and biases
    sd = m.state_dict()
    keys = list(sd)[::-1]                      # another tensor order than ours
    safetensors_io.write(a.out, OrderedDict((k, sd[k].numpy().astype(np.float32)) for k in keys))
    print(f"wrote {a.out}: {len(keys)} tensors")
    return True


def cmd_check_full(a):
    import semaim_ref
    tensors, meta = safetensors_io.read(a.weights)
    _, cfg = config_of(tensors, meta)
    want = semaim_ref.param_shapes(cfg)
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [k for k in want if k in got and got[k] != tuple(want[k])]
    return report(not missing and not extra and not wrong, f"{a.name}.full_names_and_shapes",
                  f"{len(got)} tensors; missing {missing[:3]}, extra {extra[:3]}, wrong shape {wrong[:3]}")


def cmd_break(a):
    tensors, meta = safetensors_io.read(a.src)
    for mode in ("missing", "shape", "dtype", "nan"):
        t = OrderedDict(tensors)
        if mode == "missing":
            del t["blocks.1.mlp.fc2.weight"]
        elif mode == "shape":
            t["blocks.0.attn.qkv.weight"] = t["blocks.0.attn.qkv.weight"][:-1]
        elif mode == "dtype":
            t["blocks.0.norm1.bias"] = t["blocks.0.norm1.bias"].astype(np.int32)
        else:
            t["blocks.0.mlp.fc1.bias"] = t["blocks.0.mlp.fc1.bias"].copy()
            t["blocks.0.mlp.fc1.bias"][3] = np.nan
        safetensors_io.write(f"{a.out_prefix}{mode}.safetensors", t, meta)
    return True


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)

    def against_shards(name, result, default_name):   # the checks that compare with C output on a split
        p = sub.add_parser(name)
        for flag in ("--weights", "--shards", result):
            p.add_argument(flag, required=True)
        p.add_argument("--split", default="val")
        p.add_argument("--heads", type=int)
        p.add_argument("--tol", type=float, default=1e-4)
        p.add_argument("--name", default=default_name)

    against_shards("check", "--features", "export")
    against_shards("check-classifier", "--logits", "export_classifier")
    w = sub.add_parser("write")
    for k, d in (("image", 32), ("patch", 8), ("width", 64), ("depth", 2), ("heads", 2), ("classes", 10), ("seed", 0)):
        w.add_argument(f"--{k}", type=int, default=d)
    w.add_argument("--out", required=True)
    f = sub.add_parser("check-full")
    f.add_argument("--weights", required=True)
    f.add_argument("--name", default="export")
    b = sub.add_parser("break")
    b.add_argument("--src", required=True)
    b.add_argument("--out-prefix", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    ok = {"check": cmd_check, "write": cmd_write, "check-full": cmd_check_full, "break": cmd_break,
          "check-classifier": cmd_check_classifier}[a.cmd](a)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
