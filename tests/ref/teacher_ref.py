"""References for the frozen teachers (src/model/teacher.c, src/io/teacher_load.c) and the
feature loss (src/kernels/featloss.c), for tests/t_teacher.sh.

  teacher_ref.py write --layout timm|clip --out W.safetensors --data D.safetensors [sizes]
      a small random teacher in the layout's own module structure (timm's: tests/ref/vit_timm.py;
      OpenAI CLIP's: below, on nn.MultiheadAttention), written by PyTorch to W (float32, or
      float16 with --f16; CLIP optionally under "visual." beside text-tower tensors), and to D
      fixed normalised images and the tokens the module computes from exactly the written
      weights, in float64
  teacher_ref.py break --src W --out-prefix P --layout timm|clip
      damaged copies P{missing,shape,unknown,nan,truncated,layerscale}.safetensors
  teacher_ref.py featloss --out F.safetensors
      prediction and target rows with the loss (F.normalize, squared distance summed over the
      width, mean over rows) and its gradient by autograd, in float64

The C side is driven by tests/tools/teacher_check.c.
"""
import argparse
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
import vit_timm  # noqa: E402


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """OpenAI CLIP's block: nn.MultiheadAttention (fused in_proj), ln_1/ln_2 at eps 1e-5, an
    MLP named c_fc / gelu (QuickGELU) / c_proj."""

    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * width, width))]))
        self.ln_2 = nn.LayerNorm(width, eps=1e-5)

    def forward(self, x):   # x: [T, B, width], sequence first as nn.MultiheadAttention's default
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class CLIPVisionTower(nn.Module):
    """OpenAI CLIP's VisionTransformer; forward returns ln_post of EVERY token @ proj (the SemAIM
    authors' feature target), not only the class token's."""

    def __init__(self, image, patch, width, layers, heads, out):
        super().__init__()
        G = image // patch
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(G * G + 1, width))
        self.ln_pre = nn.LayerNorm(width, eps=1e-5)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width, eps=1e-5)
        self.proj = nn.Parameter(torch.zeros(width, out))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x) @ self.proj


def randomise(model, gen):
    """Every parameter random and of the scale a trained model has (norms around 1 with spread,
    biases non-zero), so a swapped or skipped tensor shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.ndim == 1:   # LayerNorm
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            elif p.ndim == 1 and not name.endswith("class_embedding"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            else:
                fan_in = p[0].numel() if p.ndim >= 2 else p.numel()
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) / max(fan_in, 1) ** 0.5)
        if hasattr(model, "positional_embedding"):
            model.positional_embedding.mul_(0.3)
        if hasattr(model, "pos_embed"):
            model.pos_embed.mul_(0.3)


def cmd_write(a):
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    if a.layout == "timm":
        model = vit_timm.VisionTransformer(a.image, a.patch, a.width, a.depth, a.heads, num_classes=5).double()
    else:
        model = CLIPVisionTower(a.image, a.patch, a.width, a.depth, a.heads, a.out_dim).double()
    randomise(model, gen)
    dt = np.float16 if a.f16 else np.float32
    sd = {k: v.detach().numpy().astype(dt) for k, v in model.state_dict().items()}
    # the module computes with exactly what the file holds
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in sd.items()}, strict=True)
    tensors = OrderedDict()
    for k in reversed(list(sd)) if a.reverse else sd:   # another order than the C table's
        tensors[a.prefix + k] = sd[k]
    if a.prefix:   # a whole CLIP model's file: a text tower the loader must skip
        tensors["token_embedding.weight"] = np.zeros((7, 5), np.float32)
        tensors["ln_final.weight"] = np.ones(5, np.float32)
    meta = {"format": "pt"}
    if a.meta_heads:
        meta["num_heads"] = str(a.heads)
    safetensors_io.write(a.out, tensors, meta)
    x = torch.randn(a.batch, 3, a.image, a.image, generator=gen, dtype=torch.float64)
    x = x.float().double()   # the C side reads float32 images
    with torch.no_grad():
        tok = model.forward_features(x) if a.layout == "timm" else model(x)
    safetensors_io.write(a.data, OrderedDict([("images", x.numpy().astype(np.float32)), ("tokens", tok.numpy())]))
    print(f"teacher_ref: {a.layout} width {a.width} depth {a.depth} heads {a.heads} image {a.image} patch {a.patch} "
          f"-> {a.out}, tokens {tuple(tok.shape)}")


def cmd_break(a):
    t, meta = safetensors_io.read(a.src)
    pre = "visual." if any(k.startswith("visual.") for k in t) else ""
    blk = f"{pre}transformer.resblocks.1." if a.layout == "clip" else "blocks.1."
    proj = blk + ("attn.out_proj.weight" if a.layout == "clip" else "attn.proj.weight")
    fc1 = blk + ("mlp.c_fc.bias" if a.layout == "clip" else "mlp.fc1.bias")

    def out(tag, d, m=meta):
        safetensors_io.write(f"{a.out_prefix}{tag}.safetensors", d, m)

    out("missing", OrderedDict((k, v) for k, v in t.items() if k != fc1))
    d = OrderedDict(t)
    d[proj] = np.concatenate([d[proj], d[proj][:, :1]], axis=1)
    out("shape", d)
    out("unknown", OrderedDict((f"encoder.{k}", v) for k, v in t.items()))
    d = OrderedDict((k, v.copy()) for k, v in t.items())
    d[proj].flat[5] = np.nan
    out("nan", d)
    d = OrderedDict(t)
    d[blk + "ls1.gamma"] = np.ones(d[proj].shape[0], d[proj].dtype)
    out("layerscale", d)
    with open(a.src, "rb") as f:
        raw = f.read()
    with open(f"{a.out_prefix}truncated.safetensors", "wb") as f:
        f.write(raw[:len(raw) - 100])


def cmd_featloss(a):
    gen = torch.Generator().manual_seed(3)
    N, C = 37, 48
    pred = torch.randn(N, C, generator=gen, dtype=torch.float64)
    pred[0] *= 50
    pred[1] *= 0.01
    target = 3 * torch.randn(N, C, generator=gen, dtype=torch.float64)
    target[2] = pred[2] * 2   # along the prediction: no loss, no gradient
    p = pred.float().double().requires_grad_(True)
    t = target.float().double()
    loss = ((F.normalize(p, dim=-1) - F.normalize(t, dim=-1)) ** 2).sum(-1).mean()
    loss.backward()
    safetensors_io.write(a.out, OrderedDict([("pred", p.detach().numpy().astype(np.float32)),
                                             ("target", t.numpy().astype(np.float32)),
                                             ("loss", loss.detach().numpy().reshape(1)), ("grad", p.grad.numpy())]))
    print(f"teacher_ref: feature loss {loss.item():.6f} over {N}x{C} -> {a.out}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--layout", choices=["timm", "clip"], required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--data", required=True)
    w.add_argument("--image", type=int, default=32)
    w.add_argument("--patch", type=int, default=4)
    w.add_argument("--width", type=int, default=48)
    w.add_argument("--depth", type=int, default=2)
    w.add_argument("--heads", type=int, default=3)
    w.add_argument("--out-dim", type=int, default=40)
    w.add_argument("--batch", type=int, default=3)
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--meta-heads", action="store_true", help="write the head count as num_heads metadata")
    w.add_argument("--f16", action="store_true")
    w.add_argument("--prefix", default="")
    w.add_argument("--reverse", action="store_true", help="tensors in reverse order")
    b = sub.add_parser("break")
    b.add_argument("--src", required=True)
    b.add_argument("--out-prefix", required=True)
    b.add_argument("--layout", choices=["timm", "clip"], required=True)
    f = sub.add_parser("featloss")
    f.add_argument("--out", required=True)
    a = ap.parse_args()
    {"write": cmd_write, "break": cmd_break, "featloss": cmd_featloss}[a.cmd](a)


if __name__ == "__main__":
    main()
