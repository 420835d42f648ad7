"""Independent PyTorch reference of SemAIM (/work/shared/SPEC.md §1 step 2, §2, §3, §4).

Written from the spec, functional style: parameters live in a dict keyed by the authors'
(timm) names, so a dump from the C side loads without any renaming. Masks are plain
(L+1)×(L+1) additive matrices built from the ranks -- deliberately NOT the C side's
"reorder the tokens and use a causal mask" trick, so the two implementations share no idea
that could be wrong in the same way.

Run directly for the self-checks (finite differences, mask causality, target, schedule):
    /usr/bin/python3 tests/ref/semaim_ref.py
"""
import math
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

LN_EPS = 1e-6
TARGET_EPS = 1e-6


# ---------------------------------------------------------------------------- parameters

def check_cfg(cfg):
    """cfg: dict with image, patch, width, depth, dec_depth, heads. Raises ValueError."""
    for k in ("image", "patch", "width", "depth", "dec_depth", "heads"):
        if not isinstance(cfg.get(k), int) or isinstance(cfg.get(k), bool) or cfg[k] <= 0:
            raise ValueError(f"config: {k} must be a positive integer, got {cfg.get(k)!r}")
    if cfg["image"] % cfg["patch"]:
        raise ValueError(f"config: image {cfg['image']} not divisible by patch {cfg['patch']}")
    if cfg["width"] % 4:
        raise ValueError(f"config: width {cfg['width']} must be divisible by 4 (2-D sin-cos)")
    if cfg["width"] % cfg["heads"]:
        raise ValueError(f"config: width {cfg['width']} not divisible by heads {cfg['heads']}")
    if cfg["depth"] % cfg["dec_depth"]:
        raise ValueError(f"config: depth {cfg['depth']} not divisible by dec_depth {cfg['dec_depth']}")


def grid(cfg):
    return cfg["image"] // cfg["patch"]


TARGETS = ("pixel", "inference", "ema", "teacher")


def head_width(cfg):
    """The prediction head's outputs: P²·3 for the pixel target, the width D for the model's
    own encoder tokens or its EMA's, the teacher's token width (docs/objective.md)."""
    t = cfg.get("target", "pixel")
    if t not in TARGETS:
        raise ValueError(f"target {t!r} is not one of {TARGETS}")
    return 3 * cfg["patch"] ** 2 if t == "pixel" else cfg["teacher_out"] if t == "teacher" else cfg["width"]


_teachers = {}


def teacher_module(cfg):
    """The frozen teacher of a config (target teacher): the file cfg['teacher'] loaded strictly
    into its framework's own module (timm's ViT, tests/ref/vit_timm.py; OpenAI CLIP's tower,
    tests/ref/teacher_ref.py) in float64, with cfg's teacher_layout, teacher_depth,
    teacher_width, teacher_heads and teacher_out. Cached by file."""
    path = cfg["teacher"]
    if path not in _teachers:
        import os
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import safetensors_io
        import teacher_ref
        import vit_timm
        tensors, _ = safetensors_io.read(path)
        sd = {k.removeprefix("visual."): torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in tensors.items()}
        args = (cfg["image"], cfg["patch"], cfg["teacher_width"], cfg["teacher_depth"], cfg["teacher_heads"])
        if cfg["teacher_layout"] == "timm":
            nc = sd["head.weight"].shape[0] if "head.weight" in sd else 0
            mod = vit_timm.VisionTransformer(*args, num_classes=nc)
        else:
            mod = teacher_ref.CLIPVisionTower(*args, cfg["teacher_out"])
            sd = {k: v for k, v in sd.items() if k in mod.state_dict()}   # a whole CLIP file's text tower
        mod = mod.double()
        mod.load_state_dict(sd, strict=True)
        mod.eval()
        _teachers.clear()
        _teachers[path] = mod
    return _teachers[path]


@torch.no_grad()
def teacher_tokens(cfg, images):
    """[B, T, out]: every token of the teacher (timm: after `norm`; CLIP: ln_post @ proj)."""
    mod = teacher_module(cfg)
    return mod.forward_features(images) if cfg["teacher_layout"] == "timm" else mod(images)


def param_shapes(cfg):
    """Every parameter, in the authors' order, name -> shape."""
    D, P = cfg["width"], cfg["patch"]
    L = grid(cfg) ** 2
    s = OrderedDict()
    s["cls_token"] = (1, 1, D)
    s["pos_embed"] = (1, L + 1, D)
    s["patch_embed.proj.weight"] = (D, 3, P, P)
    s["patch_embed.proj.bias"] = (D,)

    def lin(name, o, i):
        s[name + ".weight"] = (o, i)
        s[name + ".bias"] = (o,)

    def ln(name):
        s[name + ".weight"] = (D,)
        s[name + ".bias"] = (D,)

    for i in range(cfg["depth"]):
        b = f"blocks.{i}."
        ln(b + "norm1")
        lin(b + "attn.qkv", 3 * D, D)
        lin(b + "attn.proj", D, D)
        ln(b + "norm2")
        lin(b + "mlp.fc1", 4 * D, D)
        lin(b + "mlp.fc2", D, 4 * D)
    for j in range(cfg["dec_depth"]):
        b = f"query_blocks.{j}."
        ln(b + "norm1")
        for w in ("q", "k", "v", "proj"):
            lin(b + "attn." + w, D, D)
        ln(b + "norm2")
        lin(b + "mlp.fc1", 4 * D, D)
        lin(b + "mlp.fc2", D, 4 * D)
    ln("norm")
    lin("prediction_head.fc1", 4 * D, D)
    lin("prediction_head.fc2", head_width(cfg), 4 * D)
    return s


def trainable(name):
    return name != "pos_embed"


def decayed(shape):
    """Weight decay goes on tensors with ndim >= 2 (Linear weights, patch-embed, cls_token)."""
    return len(shape) >= 2


def sincos_pos_embed(D, G):
    """Fixed 2-D sin-cos table [G*G+1, D] in float64; row 0 (cls) zeros. For patch (r, c):
    dims [0, D/2) encode c, [D/2, D) encode r; each half is [sin(x·ω_k)], [cos(x·ω_k)], k < D/4."""
    q = D // 4
    omega = 10000.0 ** (-np.arange(q, dtype=np.float64) / q)
    pe = np.zeros((G * G + 1, D))
    for r in range(G):
        for c in range(G):
            row = pe[1 + r * G + c]
            row[0:q], row[q:2 * q] = np.sin(c * omega), np.cos(c * omega)
            row[2 * q:3 * q], row[3 * q:4 * q] = np.sin(r * omega), np.cos(r * omega)
    return pe


def xavier_bound(name, shape):
    """Bound of xavier_uniform for a Linear weight (out, in) or the patch-embed (D, 3·P²) view."""
    fan_out, fan_in = shape[0], int(np.prod(shape[1:]))
    return math.sqrt(6.0 / (fan_in + fan_out))


def init_params(cfg, gen, dtype=torch.float64):
    """SPEC §2 initialisation (used by the self-tests and the fake dump, not by the parity
    comparison, which always starts from the C side's init.safetensors)."""
    p = OrderedDict()
    for name, shape in param_shapes(cfg).items():
        if name == "pos_embed":
            t = torch.from_numpy(sincos_pos_embed(cfg["width"], grid(cfg))).reshape(shape)
        elif name == "cls_token":
            t = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.02
        elif name.endswith(".weight") and len(shape) >= 2:
            a = xavier_bound(name, shape)
            t = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * a
        elif name.endswith(".weight"):  # LayerNorm
            t = torch.ones(shape, dtype=torch.float64)
        else:
            t = torch.zeros(shape, dtype=torch.float64)
        p[name] = t.to(dtype)
    return p


def to_torch(params_np, dtype=torch.float64, grad=True):
    """name -> numpy array  =>  name -> leaf tensor (trainable ones require grad)."""
    return OrderedDict((n, torch.tensor(np.asarray(a), dtype=dtype).requires_grad_(grad and trainable(n)))
                       for n, a in params_np.items())


# ---------------------------------------------------------------------------- the model

def layer_norm(x, p, name):
    return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p[name + ".bias"], LN_EPS)


def linear(x, p, name):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"])


def mlp(x, p, name):
    return linear(F.gelu(linear(x, p, name + ".fc1")), p, name + ".fc2")  # exact erf GELU


def attention(q, k, v, mask, NH):
    """q, k, v [B, T, D]; mask [B, T, T] additive (row = query) or None. Heads are contiguous
    column blocks of width D/NH."""
    B, T, D = q.shape
    hd = D // NH
    q, k, v = (t.reshape(B, T, NH, hd).transpose(1, 2) for t in (q, k, v))
    att = q @ k.transpose(-2, -1) / math.sqrt(hd)
    if mask is not None:
        att = att + mask[:, None]
    att = torch.softmax(att, dim=-1)
    return (att @ v).transpose(1, 2).reshape(B, T, D)


def encoder_block(p, i, x, mask, NH):
    b = f"blocks.{i}."
    D = x.shape[-1]
    q, k, v = linear(layer_norm(x, p, b + "norm1"), p, b + "attn.qkv").split(D, dim=-1)
    x = x + linear(attention(q, k, v, mask, NH), p, b + "attn.proj")
    return x + mlp(layer_norm(x, p, b + "norm2"), p, b + "mlp")


def decoder_block(p, j, g, h, mask, NH):
    b = f"query_blocks.{j}."
    # One LayerNorm (norm1) normalises both streams: the authors' Block_SelfCrossMask.
    gn, hn = layer_norm(g, p, b + "norm1"), layer_norm(h, p, b + "norm1")
    a = attention(linear(gn, p, b + "attn.q"), linear(hn, p, b + "attn.k"),
                  linear(hn, p, b + "attn.v"), mask, NH)
    g = g + linear(a, p, b + "attn.proj")
    return g + mlp(layer_norm(g, p, b + "norm2"), p, b + "mlp")


def patch_rows(images, P, order):
    """images [B,3,H,W] -> [B, L, 3·P²], patches row-major; order 'cpp' (channel, py, px)
    or 'ppc' (py, px, channel)."""
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // P, P, W // P, P)
    x = x.permute(0, 2, 4, 1, 3, 5) if order == "cpp" else x.permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // P) * (W // P), C * P * P)


def embed(p, images, cfg):
    """h⁰ = [cls + pos₀ ; W·patch_p + b + pos₁₊ₚ]: the stride-P conv written as a matmul."""
    P, D = cfg["patch"], cfg["width"]
    x = patch_rows(images, P, "cpp") @ p["patch_embed.proj.weight"].reshape(D, -1).T
    x = x + p["patch_embed.proj.bias"] + p["pos_embed"][:, 1:]
    cls = (p["cls_token"] + p["pos_embed"][:, :1]).expand(images.shape[0], -1, -1)
    return torch.cat([cls, x], dim=1)


def masks_from_ranks(ranks, dtype):
    """ranks [B, L] (0 = predicted first) -> additive content and query masks [B, L+1, L+1].
    Content: patch i sees cls and patches j with rank[j] <= rank[i]; query: rank[j] < rank[i];
    the cls row sees only cls in both."""
    B, L = ranks.shape
    r = torch.cat([torch.full((B, 1), -1, dtype=torch.long), ranks.long()], dim=1)
    see_h = r[:, None, :] <= r[:, :, None]  # [b, i, j]
    see_g = r[:, None, :] < r[:, :, None]
    for see in (see_h, see_g):
        see[:, 0, :] = False
        see[:, 0, 0] = True
        see[:, :, 0] = True
    zero = torch.zeros((), dtype=dtype)
    ninf = torch.full((), -math.inf, dtype=dtype)
    return torch.where(see_h, zero, ninf), torch.where(see_g, zero, ninf)


def forward(p, images, ranks, cfg):
    """Training pass (§2): returns pred [B, L, P²·3], cls row dropped."""
    NH, DE, DQ = cfg["heads"], cfg["depth"], cfg["dec_depth"]
    mask_h, mask_g = masks_from_ranks(ranks, images.dtype)
    h = embed(p, images, cfg)
    g = p["pos_embed"].expand(images.shape[0], -1, -1)
    step = DE // DQ
    for i in range(DE):
        h = encoder_block(p, i, h, mask_h, NH)
        if (i + 1) % step == 0:
            g = decoder_block(p, i // step, g, h, mask_g, NH)
    pred = mlp(layer_norm(g, p, "norm"), p, "prediction_head")
    return pred[:, 1:]


def gaussian_kernel(K, sigma, dtype):
    """K×K, exp(−(dy² + dx²)/2σ²) over offsets −K//2..K//2, normalised to sum 1 (the 2-D
    kernel directly, not as an outer product)."""
    x = torch.arange(-(K // 2), K // 2 + 1, dtype=torch.float64)
    k2 = torch.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2.0 * sigma * sigma))
    return (k2 / k2.sum()).to(dtype)


def gaussian_kernel9(dtype):
    return gaussian_kernel(9, 1.0, dtype)


def objective(cfg):
    """The objective settings of a config dict (docs/objective.md), defaults where absent:
    (blur_k (0 = none), blur_sigma, norm_pix, loss)."""
    return (cfg.get("blur_k", 9), cfg.get("blur_sigma", 1.0), bool(cfg.get("norm_pix", 1)), cfg.get("loss", "l2"))


def pixel_target(images, P, blur_k=9, blur_sigma=1.0, norm_pix=True):
    """§3: K×K σ blur of the normalised image (zero padding K//2; K = 0: none), patchify
    (py, px, c), then, with norm_pix, per-patch (t − mean)/sqrt(var_unbiased + 1e-6)."""
    C = images.shape[1]
    if blur_k:
        w = gaussian_kernel(blur_k, blur_sigma, images.dtype).expand(C, 1, blur_k, blur_k)
        images = F.conv2d(images, w, padding=blur_k // 2, groups=C)
    t = patch_rows(images, P, "ppc")
    if not norm_pix:
        return t
    mean = t.mean(dim=-1, keepdim=True)
    var = t.var(dim=-1, unbiased=True, keepdim=True)
    return (t - mean) / torch.sqrt(var + TARGET_EPS)


@torch.no_grad()
def encoder_tokens(p, images, cfg):
    """The model's own encoder with full attention and the final norm, no gradient: the
    permutation pass, whose tokens are the inference target's (cls row included)."""
    x = embed(p, images, cfg)
    for i in range(cfg["depth"]):
        x = encoder_block(p, i, x, None, cfg["heads"])
    return layer_norm(x, p, "norm")


def feature_loss(pred, target):
    """Per patch |pred/‖pred‖ − target/‖target‖|² summed over the width, mean over patches and
    images (the authors' forward_loss with a feature target)."""
    pn = pred / pred.norm(dim=-1, keepdim=True)
    tn = target / target.norm(dim=-1, keepdim=True)
    return ((pn - tn) ** 2).sum(dim=-1).mean()


def loss_fn(p, images, ranks, cfg, teacher=None):
    """teacher: the parameters whose encoder gives the ema target's tokens (the EMA, with p's
    pos_embed)."""
    pred = forward(p, images, ranks, cfg)
    if cfg.get("target", "pixel") in ("inference", "ema"):
        src = teacher if cfg.get("target") == "ema" else p
        return feature_loss(pred, encoder_tokens(src, images, cfg)[:, 1:].detach())
    if cfg.get("target", "pixel") == "teacher":
        return feature_loss(pred, teacher_tokens(cfg, images)[:, 1:])
    blur_k, sigma, norm_pix, loss = objective(cfg)
    with torch.no_grad():
        target = pixel_target(images, cfg["patch"], blur_k, sigma, norm_pix)
    if loss == "l1":
        return F.l1_loss(pred, target)   # torch's gradient at an exact tie: sign(0) = 0
    return ((pred - target) ** 2).mean()


# ---------------------------------------------------------------------------- permutations

@torch.no_grad()
def cls_similarity(p, images, cfg):
    """Permutation pass (§1 step 2): encoder with full attention, final norm,
    a_p = cos(cls, patch p). Returns [B, L] in the dtype of the inputs."""
    return order_signal(p, images, cfg, "cls")


SIGNALS = ("cls", "gap", "self")


@torch.no_grad()
def order_signal(p, images, cfg, signal):
    """The permutation pass's per-patch signal (docs/objective.md), [B, L]:
    cls  cos(z_cls, z_p) of the tokens z after the final norm (SPEC §1 step 2);
    gap  cos(mean_q z_q, z_p), the mean over the normed patch tokens;
    self the last block's softmax(q·kᵀ/√hd) from the cls query to patch p, mean over heads.
    With the teacher target the tokens z are the teacher's (cls and gap only)."""
    if cfg.get("target", "pixel") == "teacher":
        return token_signal(teacher_tokens(cfg, images), signal)
    x = embed(p, images, cfg)
    D, NH = cfg["width"], cfg["heads"]
    for i in range(cfg["depth"]):
        if signal == "self" and i == cfg["depth"] - 1:
            b = f"blocks.{i}."
            q, k, _ = linear(layer_norm(x, p, b + "norm1"), p, b + "attn.qkv").split(D, dim=-1)
            B, T, hd = x.shape[0], x.shape[1], D // NH
            q, k = (t.reshape(B, T, NH, hd).transpose(1, 2) for t in (q, k))
            att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)   # [B, NH, T, T]
            return att[:, :, 0, 1:].mean(dim=1)
        x = encoder_block(p, i, x, None, NH)
    return token_signal(layer_norm(x, p, "norm"), signal)


def token_signal(x, signal):
    """cls or gap signal [B, L] of tokens x [B, T, W] (row 0 the cls token)."""
    if signal == "gap":   # the mean of the normed tokens themselves, before any unit scaling
        ref = x[:, 1:].mean(dim=1, keepdim=True)
        ref = ref / ref.norm(dim=-1, keepdim=True)
        x = x / x.norm(dim=-1, keepdim=True)
    elif signal == "cls":
        x = x / x.norm(dim=-1, keepdim=True)
        ref = x[:, :1]
    else:
        raise ValueError(f"order signal {signal!r} is not one of {SIGNALS}")
    return (x[:, 1:] * ref).sum(dim=-1)


def ranks_from_scores(s):
    """Smaller score = predicted earlier; ties (never expected) go to the lower patch index."""
    s = np.asarray(s)
    ranks = np.empty(s.shape, dtype=np.int64)
    for b in range(s.shape[0]):
        ranks[b, np.argsort(s[b], kind="stable")] = np.arange(s.shape[1])
    return ranks


def ring_distance(G, centers):
    """[B, L] Euclidean grid distance of every patch from centers [B] (patch indices or
    (row, col) float pairs)."""
    pr, pc = np.divmod(np.arange(G * G), G)
    out = []
    for c in centers:
        rc, cc = divmod(int(c), G) if np.ndim(c) == 0 else c
        out.append(np.sqrt((pr - rc) ** 2.0 + (pc - cc) ** 2.0))
    return np.array(out)


def semantic_scores(a, noise, G, centers=None):
    """s[p] = dist(p, argmax a) + 1e-3·u_p, all in float64. Returns (scores, centers)."""
    a = np.asarray(a, dtype=np.float64)
    if centers is None:
        centers = a.argmax(axis=1)
    return ring_distance(G, centers) + 1e-3 * np.asarray(noise, dtype=np.float64), np.asarray(centers)


# ---------------------------------------------------------------------------- optimisation

def lr_at(t, lr, warmup, total):
    """Per-iteration MAE schedule: linear warmup from 0, then half-cycle cosine to 0."""
    if t < warmup:
        return lr * t / warmup
    return lr * 0.5 * (1.0 + math.cos(math.pi * (t - warmup) / (total - warmup)))


EMA_START, EMA_END, EMA_RAMP = 0.999, 0.9999, 100


def ema_decay(step, steps_per_epoch):
    """The EMA teacher's decay for the update after optimiser step `step` (0-based), as the
    authors set it: once per epoch, rising linearly from 0.999 at epoch 0 to 0.9999 at epoch
    100, constant after."""
    epoch = step // steps_per_epoch
    if epoch >= EMA_RAMP:
        return EMA_END
    return EMA_START + epoch / EMA_RAMP * (EMA_END - EMA_START)


def train(params, images, ranks, cfg, hp, steps, on_grads=None, ema_spe=0, ranks_at=None, on_step=None):
    """Runs `steps` training steps (§4) on fixed images and ranks, mutating params (leaf
    tensors). hp: lr, warmup_iters, total_iters, weight_decay, beta1, beta2, eps, clip.
    on_grads(t, {name: grad}, lr_t) sees each step's gradients after clipping, before the update.
    ema_spe > 0 keeps the EMA teacher: ema = d·ema + (1 − d)·w over the trainable tensors after
    every AdamW step, d = ema_decay(t, ema_spe), starting at the initial weights. ranks_at(t,
    params, ema), when given, returns step t's ranks (ema: the EMA before step t's update, or
    None); on_step(t, params, ema) sees the state after step t.
    Returns (loss0, grads0 {name: tensor}, traj [{step, lr, loss, grad_norm}])."""
    names = [n for n in params if trainable(n)]
    if cfg.get("target") == "ema" and not ema_spe:
        raise ValueError("the ema target needs the EMA (ema_spe > 0)")
    ema = OrderedDict((n, params[n].detach().clone()) for n in names) if ema_spe else None
    groups = [
        {"params": [params[n] for n in names if decayed(params[n].shape)], "weight_decay": hp["weight_decay"]},
        {"params": [params[n] for n in names if not decayed(params[n].shape)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])
    leaves = [params[n] for n in names]
    traj, loss0, grads0 = [], None, None
    for t in range(steps):
        opt.zero_grad(set_to_none=True)
        teacher = {**ema, "pos_embed": params["pos_embed"]} if cfg.get("target") == "ema" else None
        loss = loss_fn(params, images, ranks if ranks_at is None else ranks_at(t, params, ema), cfg, teacher)
        loss.backward()
        if t == 0:
            loss0 = loss.item()
            grads0 = OrderedDict((n, params[n].grad.detach().clone()) for n in names)
        gn = torch.nn.utils.clip_grad_norm_(leaves, hp["clip"])
        lr_t = lr_at(t, hp["lr"], hp["warmup_iters"], hp["total_iters"])
        if on_grads is not None:
            on_grads(t, OrderedDict((n, params[n].grad.detach()) for n in names), lr_t)
        for grp in opt.param_groups:
            grp["lr"] = lr_t
        opt.step()
        if ema is not None:
            d = ema_decay(t, ema_spe)
            with torch.no_grad():
                for n in names:
                    ema[n].mul_(d).add_(params[n].detach(), alpha=1 - d)
        if on_step is not None:
            on_step(t, params, ema)
        traj.append({"step": t, "lr": lr_t, "loss": loss.item(), "grad_norm": gn.item()})
    return loss0, grads0, traj


# ---------------------------------------------------------------------------- self-checks

def ref_rows(images):
    """Patch rows (py, px, c) of 4×4 patches by explicit indexing, for the self-check."""
    B, C, H, W = images.shape
    G = H // 4
    return torch.stack([torch.stack([torch.stack([images[b, c, (p // G) * 4 + py, (p % G) * 4 + px]
                                                  for py in range(4) for px in range(4) for c in range(C)])
                                     for p in range(G * G)]) for b in range(B)])


def _report(ok, name, detail):
    ok = bool(ok)
    print(f"{'PASS' if ok else 'FAIL'}: ref.{name} ({detail})", flush=True)
    return ok


def selfcheck():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    cfg = dict(image=16, patch=4, width=16, depth=2, dec_depth=1, heads=2)
    check_cfg(cfg)
    G, L, B = grid(cfg), grid(cfg) ** 2, 2
    p = init_params(cfg, gen)
    # Zero biases and unit LayerNorms would leave paths untested by the finite differences.
    for n, t in p.items():
        if trainable(n) and t.ndim == 1:
            t += 0.1 * torch.randn(t.shape, generator=gen, dtype=t.dtype)
    for t in p.values():
        t.requires_grad_(False)
    for n in p:
        p[n].requires_grad_(trainable(n))
    images = torch.randn(B, 3, 16, 16, generator=gen, dtype=torch.float64)
    ranks = torch.stack([torch.randperm(L, generator=gen) for _ in range(B)])
    ok = True

    # 1. autograd of the whole loss against central differences (float64).
    loss = loss_fn(p, images, ranks, cfg)
    names = ["cls_token", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.attn.qkv.weight",
             "blocks.1.norm1.weight", "query_blocks.0.norm1.weight", "query_blocks.0.attn.k.weight",
             "norm.bias", "prediction_head.fc2.weight"]
    grads = torch.autograd.grad(loss, [p[n] for n in names])
    worst, where = 0.0, ""
    for n, gr in zip(names, grads):
        flat = gr.reshape(-1)
        for idx in (int(flat.abs().argmax()), int(torch.randint(flat.numel(), (1,), generator=gen))):
            h = 1e-5
            w = p[n].detach().reshape(-1)
            orig = w[idx].item()
            with torch.no_grad():
                w[idx] = orig + h
                lp = loss_fn(p, images, ranks, cfg).item()
                w[idx] = orig - h
                lm = loss_fn(p, images, ranks, cfg).item()
                w[idx] = orig
            fd = (lp - lm) / (2 * h)
            err = abs(fd - flat[idx].item()) / (abs(fd) + 1e-6)
            if err > worst:
                worst, where = err, f"{n}[{idx}] ad {flat[idx].item():.6e} fd {fd:.6e}"
    ok &= _report(worst < 1e-5, "finite_difference", f"worst rel {worst:.2e} at {where}")

    # 1b. the feature loss: autograd against central differences with the target held fixed
    # (the inference target has no gradient: only the prediction's path counts), and the
    # loss of a prediction equal to a positive multiple of its target is 0.
    fcfg = dict(cfg, target="inference")
    fp = init_params(fcfg, gen)
    for n, t in fp.items():
        if trainable(n) and t.ndim == 1:
            t += 0.1 * torch.randn(t.shape, generator=gen, dtype=t.dtype)
        t.requires_grad_(trainable(n))
    tgt = encoder_tokens(fp, images, fcfg)[:, 1:]
    fl = lambda: feature_loss(forward(fp, images, ranks, fcfg), tgt)
    fnames = ["blocks.0.attn.qkv.weight", "query_blocks.0.attn.q.weight", "norm.weight", "prediction_head.fc1.bias",
              "prediction_head.fc2.weight"]
    fgrads = torch.autograd.grad(fl(), [fp[n] for n in fnames])
    fworst, fwhere = 0.0, ""
    for n, gr in zip(fnames, fgrads):
        flat = gr.reshape(-1)
        idx = int(flat.abs().argmax())
        w = fp[n].detach().reshape(-1)
        orig = w[idx].item()
        with torch.no_grad():
            w[idx] = orig + 1e-5
            lp = fl().item()
            w[idx] = orig - 1e-5
            lm = fl().item()
            w[idx] = orig
        fd = (lp - lm) / 2e-5
        err = abs(fd - flat[idx].item()) / (abs(fd) + 1e-6)
        if err > fworst:
            fworst, fwhere = err, f"{n}[{idx}]"
    zero = feature_loss(3.0 * tgt, tgt).item()
    ok &= _report(fworst < 1e-5 and zero < 1e-24, "feature_loss", f"finite differences worst rel {fworst:.2e} at "
                  f"{fwhere}; loss of 3·target {zero:.1e}")

    # 2. causality: a patch's prediction must not depend on the content of itself or of any
    # patch predicted later, and must depend on the one predicted just before it.
    with torch.no_grad():
        base = forward(p, images, ranks, cfg)
        b, r = 0, L // 2
        q = int((ranks[b] == r).nonzero())
        im2 = images.clone()
        pr, pc = divmod(q, G)
        im2[b, :, pr * 4:(pr + 1) * 4, pc * 4:(pc + 1) * 4] += 1.0
        new = forward(p, im2, ranks, cfg)
        d = (new - base).abs().amax(dim=-1)[b]  # [L]
        same = d[ranks[b] <= r].max().item()
        nxt = d[ranks[b] == r + 1].item()
        other = (new - base)[1].abs().max().item()
    ok &= _report(same == 0.0 and nxt > 1e-6 and other == 0.0, "mask_causality",
                  f"max change at rank<=r {same:.1e}, at rank r+1 {nxt:.1e}, other image {other:.1e}")

    # 3. masks against the definition, elementwise.
    mh, mg = masks_from_ranks(ranks, torch.float64)
    bad = 0
    for bb in range(B):
        for i in range(L + 1):
            for j in range(L + 1):
                if i == 0:
                    eh = eg = (j == 0)
                elif j == 0:
                    eh = eg = True
                else:
                    eh = ranks[bb, j - 1] <= ranks[bb, i - 1]
                    eg = ranks[bb, j - 1] < ranks[bb, i - 1]
                bad += (mh[bb, i, j].item() == 0) != bool(eh)
                bad += (mg[bb, i, j].item() == 0) != bool(eg)
    ok &= _report(bad == 0, "masks", f"{bad} wrong entries")

    # 4. target: kernel, element order, normalisation.
    k = gaussian_kernel9(torch.float64)
    t = pixel_target(images, 4)
    blurred = F.conv2d(images, k.expand(3, 1, 9, 9), padding=4, groups=3)
    # patch 5 = (row 1, col 1), element (py=2, px=3, c=1): manual index.
    raw = torch.stack([blurred[0, c, 4 + py, 4 + px] for py in range(4) for px in range(4) for c in range(3)])
    manual = (raw - raw.mean()) / torch.sqrt(raw.var(unbiased=True) + 1e-6)
    e_order = (manual - t[0, 5]).abs().max().item()
    e_sum = abs(k.sum().item() - 1)
    e_sym = (k - k.T).abs().max().item() + (k - k.flip(0)).abs().max().item()
    ok &= _report(e_order < 1e-12 and e_sum < 1e-14 and e_sym == 0 and k[4, 4] == k.max(),
                  "pixel_target", f"order err {e_order:.1e}, kernel sum err {e_sum:.1e}")
    # the other objectives: 5,2 is the outer product of its normalised 1-D kernel; K = 1 and
    # none are the identity; norm-pix off gives the blurred pixels themselves
    x = torch.arange(-2, 3, dtype=torch.float64)
    k1 = torch.exp(-x * x / 8.0)
    k1 = k1 / k1.sum()
    e52 = (gaussian_kernel(5, 2.0, torch.float64) - k1[:, None] * k1[None, :]).abs().max().item()
    raw_t = pixel_target(images, 4, 0, 0.0, False)
    e_none = (raw_t - ref_rows(images)).abs().max().item()
    e_k1 = (pixel_target(images, 4, 1, 3.0, False) - raw_t).abs().max().item()
    e_off = (pixel_target(images, 4, 9, 1.0, False)[0, 5] - raw).abs().max().item()
    ok &= _report(e52 < 1e-15 and e_none == 0 and e_k1 < 1e-15 and e_off < 1e-12, "pixel_target_options",
                  f"5,2 outer-product err {e52:.1e}, none {e_none:.1e}, K=1 {e_k1:.1e}, norm-pix off {e_off:.1e}")

    # 5. positional embedding: closed-form spot values.
    pe = sincos_pos_embed(16, 4)
    q4 = 4
    row = pe[1 + 2 * 4 + 3]  # r=2, c=3
    exp = np.concatenate([np.sin(3 * 10000.0 ** (-np.arange(q4) / q4)), np.cos(3 * 10000.0 ** (-np.arange(q4) / q4)),
                          np.sin(2 * 10000.0 ** (-np.arange(q4) / q4)), np.cos(2 * 10000.0 ** (-np.arange(q4) / q4))])
    ok &= _report(np.abs(pe[0]).max() == 0 and np.abs(row - exp).max() < 1e-15 and pe[1, 0] == 0 and pe[1, 4] == 1,
                  "pos_embed", "cls row zero, (r=2,c=3) row matches the closed form")

    # 6. schedule.
    lrs = [lr_at(t, 1e-3, 3, 10) for t in range(10)]
    ok &= _report(lrs[0] == 0 and abs(lrs[1] - 1e-3 / 3) < 1e-18 and lrs[3] == 1e-3
                  and all(a > b for a, b in zip(lrs[3:], lrs[4:])) and lrs[9] > 0,
                  "lr_schedule", " ".join(f"{x:.2e}" for x in lrs))

    # 7. semantic order: first patch = argmax, rings non-decreasing.
    a = cls_similarity(p, images, cfg).numpy()
    noise = torch.rand(B, L, generator=gen).numpy()
    s, cen = semantic_scores(a, noise, G)
    rk = ranks_from_scores(s)
    dist = ring_distance(G, cen)
    good = all(rk[bb, cen[bb]] == 0 and np.all(np.diff(dist[bb][np.argsort(rk[bb])]) >= 0) for bb in range(B))
    ok &= _report(good, "semantic_order", f"centres {cen.tolist()}")

    # 8. the other signals: self is a distribution over cls and the patches (its patch part
    # sums below 1), gap and cls are cosines; each differs from the others
    sig = {s: order_signal(p, images, cfg, s) for s in SIGNALS}
    tot = sig["self"].sum(dim=1)
    ok &= _report(bool((sig["self"] > 0).all() and (tot < 1).all() and (sig["gap"].abs() <= 1 + 1e-12).all()
                       and (sig["cls"] - sig["gap"]).abs().max() > 1e-3 and (sig["self"] - sig["cls"]).abs().max() > 1e-3),
                  "order_signals", f"self patch mass {tot.tolist()}")

    # 9. the EMA teacher's decay: the authors' per-epoch ramp, at its ends and boundaries
    spe = 5
    ds = [ema_decay(t, spe) for t in (0, 4, 5, 9, 10, 499, 500, 501, 10 ** 6)]
    ok &= _report(ds[0] == ds[1] == 0.999 and ds[1] < ds[2] == ds[3] < ds[4] < ds[5] < ds[6] == ds[7] == ds[8] == 0.9999
                  and abs(ds[2] - (0.999 + 0.0009 / 100)) < 1e-15, "ema_decay", " ".join(f"{d:.7f}" for d in ds))
    return ok


if __name__ == "__main__":
    torch.set_num_threads(1)  # tiny tensors: threads only add spin-waiting on a shared machine
    sys.exit(0 if selfcheck() else 1)
