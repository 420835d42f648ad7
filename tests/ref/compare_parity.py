#!/usr/bin/env python3
"""Compares a parity dump of the C implementation against the float64 PyTorch reference.

Usage: compare_parity.py [--expect k=v,k=v] DIR [[--expect ...] DIR ...]
  --expect applies to the next DIR only: config.json values the driver was asked for
  (ints, floats compared to rel 1e-6, strings), so a flag the driver ignores is caught.
Prints one PASS:/FAIL: line per check, labelled parity[<basename of DIR>].<check>; exits 1
if anything failed. The dump format is documented at the top of make_fake_dump.py, which
writes one from this reference (its --selftest proves these checks pass and can fail).
"""
import sys
sys.dont_write_bytecode = True  # the tree is shared: no __pycache__ next to the sources
import hashlib
import json
import math
import os

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402
import semaim_ref as ref  # noqa: E402

ORDERS = ("raster", "stochastic", "semantic", "similarity", "center")
SPEC_HP = {"weight_decay": 0.05, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8}
INT_KEYS = ("image", "patch", "width", "depth", "dec_depth", "heads", "batch", "seed", "steps",
            "warmup_iters", "total_iters")
FLOAT_KEYS = ("lr", "weight_decay", "beta1", "beta2", "eps", "clip")

TOL_LOSS = 1e-5       # relative, step-0 loss and every trajectory loss
TOL_GRAD = 1e-4       # max|diff| / max|ref| per tensor
TOL_LR = 1e-6         # relative
TOL_GNORM = 1e-4      # relative
TOL_FINAL = 1e-4      # max|diff| / max|ref| per tensor
TOL_POS = 1e-6        # absolute, pos_embed
ADAM_NOISE = 1e-6     # gradient rounding assumed for a float32 implementation, of max|g_tensor|
TOL_MOVE = 1e-3       # whole-model relative error of the parameter movement over the run
TIE_GAP = 1e-5        # top-2 signal gap under which a different centre is a tie
TOL_SIGNAL = 1e-5     # the permutation pass's signal values, max|diff| / max|ref|
SIM_TOL = 1e-5        # similarity order: allowed inversion of a_p along the order
TOL_EMA = 5e-3        # the EMA's movement from init after the last step, ‖ema_C − ema_ref‖ / ‖ema_ref − init‖
EMA_ROUND = 4 * 2.0 ** -24   # float32 rounding of one EMA update, of |ema| (two products, a sum, the decay)


class DumpError(Exception):
    pass


class Report:
    def __init__(self, label):
        self.label, self.failed, self.count = label, 0, 0

    def __call__(self, ok, name, detail=""):
        ok = bool(ok)
        self.count += 1
        self.failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}: parity[{self.label}].{name}" + (f" ({detail})" if detail else ""),
              flush=True)
        return ok


def rel(a, b):
    return abs(a - b) / abs(b) if b != 0 else abs(a - b)


def tensor_rel(a, b):
    """max|a−b| / max|b| (absolute when b is all zero)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d, m = float(np.max(np.abs(a - b), initial=0.0)), float(np.max(np.abs(b), initial=0.0))
    return d / m if m > 0 else d


# ---------------------------------------------------------------------------- loading

def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise DumpError(f"{path}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise DumpError(f"{path}: invalid JSON: {e}") from None


def load_st(path):
    try:
        return st.read(path)[0]
    except st.SafetensorsError as e:
        raise DumpError(str(e)) from None


def check_config(path, c):
    if not isinstance(c, dict):
        raise DumpError(f"{path}: not a JSON object")
    for k in INT_KEYS:
        if not isinstance(c.get(k), int) or isinstance(c.get(k), bool):
            raise DumpError(f"{path}: {k!r} missing or not an integer ({c.get(k)!r})")
    for k in FLOAT_KEYS:
        if not isinstance(c.get(k), (int, float)) or isinstance(c.get(k), bool) or not math.isfinite(c[k]):
            raise DumpError(f"{path}: {k!r} missing or not a finite number ({c.get(k)!r})")
    if c.get("order") not in ORDERS:
        raise DumpError(f"{path}: 'order' must be one of {ORDERS}, got {c.get('order')!r}")
    # the objective (absent: the defaults, as in dumps from before it could be chosen)
    k, sigma, norm, loss = ref.objective(c)
    if not isinstance(k, int) or isinstance(k, bool) or not (k == 0 or (k % 2 == 1 and 1 <= k <= 63)):
        raise DumpError(f"{path}: 'blur_k' must be 0 or odd 1..63, got {k!r}")
    if k and not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise DumpError(f"{path}: 'blur_sigma' must be positive, got {sigma!r}")
    if c.get("norm_pix", 1) not in (0, 1) or loss not in ("l2", "l1"):
        raise DumpError(f"{path}: 'norm_pix' must be 0/1 and 'loss' l2/l1, got {c.get('norm_pix')!r}, {loss!r}")
    if c.get("signal", "cls") not in ref.SIGNALS:
        raise DumpError(f"{path}: 'signal' must be one of {ref.SIGNALS}, got {c.get('signal')!r}")
    # the EMA teacher (absent: none, as in dumps from before it)
    spe, eo = c.get("ema_steps_per_epoch", 0), c.get("ema_order", 0)
    if not isinstance(spe, int) or isinstance(spe, bool) or spe < 0 or eo not in (0, 1):
        raise DumpError(f"{path}: 'ema_steps_per_epoch' must be an integer >= 0 and 'ema_order' 0/1, got {spe!r}, {eo!r}")
    if eo and (not spe or c.get("order") not in ("semantic", "similarity")):
        raise DumpError(f"{path}: 'ema_order' needs the EMA (ema_steps_per_epoch > 0) and a semantic or similarity order")
    if c.get("target", "pixel") not in ref.TARGETS:
        raise DumpError(f"{path}: 'target' must be one of {ref.TARGETS}, got {c.get('target')!r}")
    if c.get("target") == "ema" and not spe:
        raise DumpError(f"{path}: the 'ema' target needs the EMA (ema_steps_per_epoch > 0)")
    if c.get("target") == "teacher":
        for k in ("teacher_width", "teacher_depth", "teacher_heads", "teacher_out"):
            if not isinstance(c.get(k), int) or c[k] < 1:
                raise DumpError(f"{path}: {k!r} must be a positive integer with the teacher target, got {c.get(k)!r}")
        if c.get("teacher_layout") not in ("timm", "clip") or not os.path.isfile(str(c.get("teacher"))):
            raise DumpError(f"{path}: the teacher target needs 'teacher_layout' timm/clip and an existing 'teacher' file")
    try:
        ref.check_cfg(c)
    except ValueError as e:
        raise DumpError(f"{path}: {e}") from None
    if c["batch"] < 1 or c["steps"] < 1 or not 0 <= c["warmup_iters"] < c["total_iters"]:
        raise DumpError(f"{path}: need batch >= 1, steps >= 1, 0 <= warmup_iters < total_iters")
    if c["lr"] <= 0 or c["clip"] <= 0:
        raise DumpError(f"{path}: lr and clip must be positive")


def expect_shape(path, tensors, name, shape, dtype):
    if name not in tensors:
        raise DumpError(f"{path}: tensor {name!r} missing")
    a = tensors[name]
    if a.dtype != st.DTYPES[dtype]:
        raise DumpError(f"{path}: tensor {name!r} is {a.dtype}, expected {dtype}")
    if tuple(a.shape) != tuple(shape):
        raise DumpError(f"{path}: tensor {name!r} has shape {list(a.shape)}, expected {list(shape)}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise DumpError(f"{path}: tensor {name!r} has non-finite values")
    return a


def expect_keys(path, tensors, keys):
    extra = sorted(set(tensors) - set(keys))
    if extra:
        raise DumpError(f"{path}: unexpected tensors {extra[:5]}{' ...' if len(extra) > 5 else ''}")


def load_dump(d):
    """Reads and validates the whole dump; returns a dict. Raises DumpError naming the file."""
    if not os.path.isdir(d):
        raise DumpError(f"{d}: not a directory")
    cpath = os.path.join(d, "config.json")
    c = load_json(cpath)
    check_config(cpath, c)
    shapes = ref.param_shapes(c)
    B, H, G = c["batch"], c["image"], ref.grid(c)
    L = G * G
    out = {"config": c}
    for part in ("init", "final"):
        path = os.path.join(d, part + ".safetensors")
        t = load_st(path)
        for n, s in shapes.items():
            expect_shape(path, t, n, s, "F32")
        expect_keys(path, t, shapes)
        out[part] = {n: t[n] for n in shapes}
    path = os.path.join(d, "inputs.safetensors")
    t = load_st(path)
    inp = {"images": expect_shape(path, t, "images", (B, 3, H, H), "F32"),
           "ranks": expect_shape(path, t, "ranks", (B, L), "I32"),
           "noise": expect_shape(path, t, "noise", (B, L), "F32"),
           "semantic_ranks": expect_shape(path, t, "semantic_ranks", (B, L), "I32"),
           "semantic_center": expect_shape(path, t, "semantic_center", (B,), "I32")}
    if "semantic_signal" in t:   # the permutation pass's signal values (dumps from before they were: absent)
        inp["semantic_signal"] = expect_shape(path, t, "semantic_signal", (B, L), "F32")
    expect_keys(path, t, inp)
    if not np.all((inp["noise"] >= 0) & (inp["noise"] < 1)):
        raise DumpError(f"{path}: 'noise' outside [0, 1)")
    if not np.all((inp["semantic_center"] >= 0) & (inp["semantic_center"] < L)):
        raise DumpError(f"{path}: 'semantic_center' outside [0, {L})")
    for k in ("ranks", "semantic_ranks"):
        for b in range(B):
            if not np.array_equal(np.sort(inp[k][b]), np.arange(L)):
                raise DumpError(f"{path}: {k!r} of image {b} is not a permutation of 0..{L - 1}")
    out["inputs"] = inp
    path = os.path.join(d, "step0.safetensors")
    t = load_st(path)
    gshapes = {"grad." + n: s for n, s in shapes.items() if ref.trainable(n)}
    step0 = {"loss": float(expect_shape(path, t, "loss", (1,), "F32")[0])}
    step0["grads"] = {n[5:]: expect_shape(path, t, n, s, "F32") for n, s in gshapes.items()}
    expect_keys(path, t, ["loss", *gshapes])
    out["step0"] = step0
    path = os.path.join(d, "traj.json")
    traj = load_json(path)
    if not isinstance(traj, list) or len(traj) != c["steps"]:
        raise DumpError(f"{path}: must be a list of {c['steps']} entries")
    for t_, e in enumerate(traj):
        if not isinstance(e, dict) or e.get("step") != t_ or not all(
                isinstance(e.get(k), (int, float)) and not isinstance(e.get(k), bool) and math.isfinite(e[k])
                for k in ("lr", "loss", "grad_norm")):
            raise DumpError(f"{path}: entry {t_} must be {{step: {t_}, lr, loss, grad_norm}} with finite numbers")
    out["traj"] = traj
    if c.get("ema_steps_per_epoch", 0):
        for t_, e in enumerate(traj):
            if not isinstance(e.get("ema_decay"), float) or not 0 < e["ema_decay"] < 1:
                raise DumpError(f"{path}: entry {t_} needs the EMA's decay (a number in (0, 1))")
        # step-T: the EMA after step T's update; with ema_order also step T's order and its signal
        out["ema"], out["ema_ranks"], out["ema_signal"] = [], [], []
        eshapes = {"ema." + n: s for n, s in shapes.items() if ref.trainable(n)}
        for t_ in range(c["steps"]):
            path = os.path.join(d, f"step-{t_}.safetensors")
            t = load_st(path)
            out["ema"].append({n[4:]: expect_shape(path, t, n, s, "F32") for n, s in eshapes.items()})
            keys = list(eshapes)
            if c.get("ema_order"):
                r = expect_shape(path, t, "ranks", (B, L), "I32")
                for b in range(B):
                    if not np.array_equal(np.sort(r[b]), np.arange(L)):
                        raise DumpError(f"{path}: 'ranks' of image {b} is not a permutation of 0..{L - 1}")
                out["ema_ranks"].append(r)
                out["ema_signal"].append(expect_shape(path, t, "signal", (B, L), "F32"))
                keys += ["ranks", "signal"]
            expect_keys(path, t, keys)
    return out


# ---------------------------------------------------------------------------- checks

def check_expect(rep, c, expect):
    bad = []
    for k, v in expect.items():
        got = c.get(k)
        if isinstance(v, float) and isinstance(got, (int, float)):
            ok = rel(float(got), v) <= 1e-6
        else:
            ok = got == v
        if not ok:
            bad.append(f"{k}={got!r} (asked {v!r})")
    hp_bad = [f"{k}={c[k]!r} (spec {v!r})" for k, v in SPEC_HP.items() if rel(float(c[k]), v) > 1e-6]
    rep(not bad and not hp_bad, "config", "; ".join(bad + hp_bad) or
        f"order {c['order']}, total_iters {c['total_iters']}, warmup {c['warmup_iters']}")


def check_init(rep, c, init):
    D, G = c["width"], ref.grid(c)
    pe = ref.sincos_pos_embed(D, G)
    err = float(np.abs(init["pos_embed"][0].astype(np.float64) - pe).max())
    rep(err < TOL_POS, "init.pos_embed", f"max|diff| {err:.2e}")
    problems = []
    for n, a in init.items():
        a = a.astype(np.float64)
        if n in ("pos_embed",):
            continue
        if n == "cls_token":
            s = float(a.std())
            if a.size >= 32 and not 0.01 < s < 0.04:
                problems.append(f"cls_token std {s:.4f} (expected ~0.02)")
            if a.size < 32 and np.abs(a).max() > 0.02 * 6:
                problems.append("cls_token beyond 6 sigma of N(0, 0.02)")
        elif n == "patch_embed.proj.bias":
            # The spec leaves it open (authors: PyTorch's default conv init); accept 0 or that.
            bound = 1 / math.sqrt(3 * c["patch"] ** 2)
            if np.abs(a).max() > bound:
                problems.append(f"{n} exceeds the default conv-init bound {bound:.3g}")
        elif n.endswith(".bias"):
            if np.any(a != 0):
                problems.append(f"{n} not all zero")
        elif a.ndim == 1:  # LayerNorm weight
            if np.any(a != 1):
                problems.append(f"{n} not all one")
        else:
            bound = ref.xavier_bound(n, a.shape)
            if np.abs(a).max() > bound * (1 + 1e-6):
                problems.append(f"{n} max|w| {np.abs(a).max():.4g} > xavier bound {bound:.4g}")
            # uniform(−a, a) has std a/√3; with ≥ 1000 samples the estimate is within a few %.
            if a.size >= 1000 and not 0.8 < a.std() / (bound / math.sqrt(3)) < 1.2:
                problems.append(f"{n} std {a.std():.4g}, xavier_uniform gives {bound / math.sqrt(3):.4g}")
    rep(not problems, "init.distributions", "; ".join(problems[:4]) or
        "LayerNorm 1/0, Linear biases 0, xavier bounds, cls std ok")


def check_permutation(rep, c, inp, a):
    """a: my float64 order signal [B, L] (the dump's, cls by default) at the init weights."""
    G, B = ref.grid(c), c["batch"]
    if "semantic_signal" in inp:
        err = tensor_rel(inp["semantic_signal"], a)
        rep(err <= TOL_SIGNAL, f"signal.{c.get('signal', 'cls')}", f"max|C − ref| / max|ref| {err:.2e}")
    cen_c = inp["semantic_center"].astype(np.int64)
    cen_me = a.argmax(axis=1)
    ties, wrong = [], []
    for b in range(B):
        if cen_c[b] != cen_me[b]:
            gap = a[b, cen_me[b]] - a[b, cen_c[b]]
            (ties if gap < TIE_GAP else wrong).append(f"image {b}: C {cen_c[b]} ref {cen_me[b]} gap {gap:.2e}")
    rep(not wrong, "semantic.center", "; ".join(wrong) or
        (f"ties accepted: {'; '.join(ties)}" if ties else f"centres {cen_c.tolist()}"))
    # With the C centre (identical, or an accepted tie), the ranks follow exactly from the noise.
    s, _ = ref.semantic_scores(a, inp["noise"], G, centers=cen_c)
    mine = ref.ranks_from_scores(s)
    nbad = int((mine != inp["semantic_ranks"]).sum())
    rep(nbad == 0, "semantic.ranks", f"{nbad} of {mine.size} ranks differ")
    dist = ref.ring_distance(G, cen_c)
    ring_ok = all(np.all(np.diff(dist[b][np.argsort(inp["semantic_ranks"][b])]) >= 0) for b in range(B))
    rep(ring_ok, "semantic.rings", "distance to the centre non-decreasing along the order")

    order, ranks = c["order"], inp["ranks"].astype(np.int64)
    L = G * G
    if order == "raster":
        ok, detail = np.array_equal(ranks, np.tile(np.arange(L), (B, 1))), "ranks == patch index"
    elif order == "semantic":
        ok, detail = np.array_equal(ranks, inp["semantic_ranks"]), "ranks == semantic_ranks"
    elif order == "stochastic":
        same_noise = np.array_equal(ranks, ref.ranks_from_scores(inp["noise"]))
        ok = not np.array_equal(ranks, np.tile(np.arange(L), (B, 1)))
        detail = f"a non-raster permutation; {'equals' if same_noise else 'does not use'} argsort(noise)"
    elif order == "similarity":
        worst = max(float(np.max(np.diff(a[b][np.argsort(ranks[b])]), initial=-1.0)) for b in range(B))
        ok, detail = worst <= SIM_TOL, f"a_p non-increasing along the order, worst rise {worst:.2e}"
    else:  # center: distance from the grid centre, for some reasonable definition of it
        cands = {"(G-1)/2": ((G - 1) / 2, (G - 1) / 2), "G//2": (G // 2, G // 2),
                 "(G-1)//2": ((G - 1) // 2, (G - 1) // 2)}
        hits = []
        for nm, cc in cands.items():
            dist = ref.ring_distance(G, [cc] * B)
            if all(np.all(np.diff(dist[b][np.argsort(ranks[b])]) >= -1e-12) for b in range(B)):
                hits.append(nm)
        ok, detail = bool(hits), f"rings around centre {hits[0] if hits else 'none of ' + str(list(cands))}"
    rep(ok, f"ranks.{order}", detail)


def zero_grad_slices(c):
    """Elements whose gradient is identically zero in exact arithmetic: the key biases (adding
    b_k to every key adds the same q·b_k to a whole score row, which softmax ignores). Any
    float32 implementation leaves rounding noise there, and Adam (eps 1e-8) turns that noise
    into O(lr/100) steps, so these elements cannot be compared to a float64 run after training."""
    D = c["width"]
    z = {f"blocks.{i}.attn.qkv.bias": slice(D, 2 * D) for i in range(c["depth"])}
    z.update({f"query_blocks.{j}.attn.k.bias": slice(None) for j in range(c["dec_depth"])})
    return z


_runs = {}  # reference runs by content, so the self-test's many edited copies of one dump share one


def reference_run(c, init, inp, ema_ranks=()):
    """The float64 training run from the dump's init weights and inputs, plus the per-element
    Adam sensitivity. With the EMA teacher (ema_steps_per_epoch) it keeps the EMA too; with
    ema_order each step trains on the dump's order of that step (ema_ranks) and the reference's
    own order signal is computed from its EMA and from its live weights before each step.
    Returns (loss0, grads0, traj, final {name: ndarray}, sens, extra), extra: "ema" [per step
    {name: ndarray}], "sig_ema", "sig_live" [per step [B, L]]."""
    key = hashlib.sha1(json.dumps(c, sort_keys=True).encode())
    for n in sorted(init):
        key.update(n.encode() + init[n].tobytes())
    key.update(inp["images"].tobytes() + inp["ranks"].tobytes())
    for r in ema_ranks:
        key.update(r.tobytes())
    key = key.hexdigest()
    if key in _runs:
        return _runs[key]
    params = ref.to_torch(init, torch.float64)
    images = torch.tensor(inp["images"], dtype=torch.float64)
    ranks = torch.tensor(inp["ranks"], dtype=torch.long)
    hp = {k: c[k] for k in ("lr", "warmup_iters", "total_iters", "weight_decay", "beta1", "beta2", "eps", "clip")}
    # Adam sensitivity per element: S = Σ_t lr_t · max|g_tensor,t| / (sqrt(v̂_t) + eps). A gradient
    # error of δ·max|g_tensor| (float32 rounding) moves the final value by about 2δ·S, because
    # Adam divides by the element's own RMS: huge for elements whose gradient stays near zero.
    sens = {n: np.zeros(p.shape) for n, p in params.items() if ref.trainable(n)}
    v2 = {n: np.zeros(a.shape) for n, a in sens.items()}

    def on_grads(t, grads, lr_t):
        for n, g in grads.items():
            g = g.numpy()
            v2[n] = c["beta2"] * v2[n] + (1 - c["beta2"]) * g * g
            vhat = v2[n] / (1 - c["beta2"] ** (t + 1))
            sens[n] += lr_t * np.abs(g).max() / (np.sqrt(vhat) + c["eps"])

    extra = {"ema": [], "sig_ema": [], "sig_live": []}
    signal = c.get("signal", "cls")

    def ranks_at(t, p, ema):
        with torch.no_grad():
            live = {n: v.detach() for n, v in p.items()}
            extra["sig_live"].append(ref.order_signal(live, images, c, signal).numpy())
            extra["sig_ema"].append(ref.order_signal({**ema, "pos_embed": live["pos_embed"]}, images, c, signal).numpy())
        return torch.tensor(ema_ranks[t], dtype=torch.long)

    def on_step(t, p, ema):
        if ema is not None:
            extra["ema"].append({n: v.numpy().copy() for n, v in ema.items()})

    loss0, grads0, traj = ref.train(params, images, ranks, c, hp, c["steps"], on_grads,
                                    ema_spe=c.get("ema_steps_per_epoch", 0),
                                    ranks_at=ranks_at if c.get("ema_order") else None, on_step=on_step)
    final = {n: p.detach().numpy() for n, p in params.items()}
    _runs.clear()  # one is all the self-test needs; don't hoard memory across dumps
    _runs[key] = (loss0, grads0, traj, final, sens, extra)
    return _runs[key]


def check_training(rep, c, d):
    init = d["init"]
    loss0, grads0, traj, final_ref, sens, extra = reference_run(c, init, d["inputs"], d.get("ema_ranks", ()))
    s0 = d["step0"]
    r = rel(s0["loss"], loss0)
    rep(r <= TOL_LOSS, "step0.loss", f"C {s0['loss']:.9g} ref {loss0:.9g} rel {r:.2e}")
    # A tensor whose whole reference gradient is (near) zero -- the decoder key biases -- is
    # measured against 1e-3 of the largest gradient anywhere instead of against itself.
    gmax = max(float(g.abs().max()) for g in grads0.values())
    worst = max((float(np.abs(s0["grads"][n] - g.numpy()).max()) / max(float(g.abs().max()), 1e-3 * gmax), n)
                for n, g in grads0.items())
    rep(worst[0] <= TOL_GRAD, "step0.grads", f"worst {worst[1]} max|diff|/max|ref| {worst[0]:.2e}")
    zs = zero_grad_slices(c)
    zref = max(float(grads0[n].reshape(-1)[sl].abs().max()) for n, sl in zs.items())
    zc = max(float(np.abs(s0["grads"][n].reshape(-1)[sl]).max()) for n, sl in zs.items())
    rep(zref <= 1e-12 * gmax and zc <= 1e-6 * gmax, "step0.key_bias_grads",
        f"identically zero in theory: ref max {zref:.1e}, C max {zc:.1e}, largest gradient {gmax:.2e}")
    r = rel(d["traj"][0]["loss"], s0["loss"])
    rep(r <= 1e-6, "traj.step0_consistent", f"traj[0].loss vs step0 loss rel {r:.2e}")

    def worst_over(key, tol, absfloor=0.0):
        w = (0.0, 0)
        for t, (e, m) in enumerate(zip(d["traj"], traj)):
            err = abs(e[key] - m[key]) / max(abs(m[key]), absfloor) if max(abs(m[key]), absfloor) > 0 \
                else abs(e[key] - m[key])
            w = max(w, (err, t))
        return rep(w[0] <= tol, f"traj.{key}", f"worst rel {w[0]:.2e} at step {w[1]} "
                   f"(C {d['traj'][w[1]][key]:.9g} ref {traj[w[1]][key]:.9g})")

    worst_over("lr", TOL_LR, absfloor=1e-12 * c["lr"])
    worst_over("grad_norm", TOL_GNORM)
    worst_over("loss", TOL_LOSS)
    # Elements that float32 rounding alone (ADAM_NOISE of the tensor's largest gradient) could
    # move by half the tolerance -- see sens above -- and the key biases (zero_grad_slices) are
    # held only to Adam's step bound; every other element to TOL_FINAL of the tensor's max.
    final_c = {n: d["final"][n].astype(np.float64) for n in final_ref}
    n_zero = n_ill = 0
    drift = 0.0
    exempt = {}
    for n in sens:
        ex = 2 * ADAM_NOISE * sens[n] > 0.5 * TOL_FINAL * np.abs(final_ref[n]).max()
        if n in zs:
            exz = np.zeros(ex.size, bool)
            exz[zs[n]] = True
            exz = exz.reshape(ex.shape)
            n_zero += int(exz.sum())
            ex &= ~exz
            n_ill += int(ex.sum())
            ex |= exz
        else:
            n_ill += int(ex.sum())
        exempt[n] = ex
        if ex.any():
            drift = max(drift, float(np.abs(final_c[n][ex] - final_ref[n][ex]).max()))
            final_c[n][ex] = final_ref[n][ex]
    worst = max((tensor_rel(final_c[n], final_ref[n]), n) for n in final_ref)
    total = sum(a.size for a in sens.values())
    rep(worst[0] <= TOL_FINAL, "final.params", f"worst {worst[1]} max|diff|/max|ref| {worst[0]:.2e}; "
        f"exempt: {n_zero} key-bias + {n_ill} Adam-sensitive of {total} elements")
    bound = 2 * sum(e["lr"] for e in traj)  # Adam moves an element by <~ lr per step
    rep(drift <= bound, "final.exempt_elements", f"max|diff| {drift:.1e} <= 2·Σlr_t {bound:.1e}")
    # And one measure that exempts nothing: the error of the whole model's movement.
    num = sum(float(((d["final"][n] - final_ref[n]) ** 2).sum()) for n in sens)
    den = sum(float(((final_ref[n] - init[n]) ** 2).sum()) for n in sens)
    r = math.sqrt(num / den) if den > 0 else math.sqrt(num)
    rep(r <= TOL_MOVE, "final.movement", f"‖final_C − final_ref‖ / ‖final_ref − init‖ = {r:.2e}")
    frozen = np.array_equal(d["final"]["pos_embed"], init["pos_embed"])
    rep(frozen, "final.pos_embed_frozen", "pos_embed unchanged by training")
    if c.get("ema_steps_per_epoch", 0):
        check_ema(rep, c, d, extra, exempt, final_ref)


def check_ema(rep, c, d, extra, exempt, final_ref):
    """The EMA teacher step by step: the C EMA after each step against the reference's, measured
    on its movement from init (the EMA stays within ~1e-3 of the weights, so comparing values
    would pass whatever the update did), once over the elements the final check holds to the
    tolerance and once over all; with ema_order, each step's order and signal against the
    reference's EMA at that step, and a proof the check can tell the EMA from the live weights."""
    init = d["init"]
    spe = c["ema_steps_per_epoch"]
    ds = [ref.ema_decay(t, spe) for t in range(c["steps"])]
    wd = max((abs(e["ema_decay"] - m) / m, t) for t, (e, m) in enumerate(zip(d["traj"], ds)))
    rep(wd[0] <= 1e-15, "ema.decay", f"the schedule's decay per step, worst rel {wd[0]:.1e} at step {wd[1]} "
        f"({ds[0]:.7f}..{ds[-1]:.7f}, {spe} steps per epoch)")
    # Per element and step: float32 rounding of t+1 updates (EMA_ROUND of |ema| each) plus what
    # the weights' own float32 drift feeds in at 1 − d (the tensor's largest drift of the final
    # weights, the elements the final check holds to its tolerance), with a floor of one float32
    # ulp at 1e-30 so that the untouched step 0 compares 0 with 0.
    drift = {n: float(np.abs(d["final"][n].astype(np.float64) - final_ref[n])[~exempt[n]].max(initial=0.0))
             for n in exempt}
    over, worst_ratio = [], (0.0, 0, "")
    for t, (ec, er) in enumerate(zip(d["ema"], extra["ema"])):
        for n, r in er.items():
            keep = ~exempt[n]
            diff = np.abs(ec[n].astype(np.float64) - r)[keep]
            budget = (t + 1) * (EMA_ROUND * np.abs(r[keep]) + 2 * (1 - ds[t]) * drift[n]) + 1e-30
            ratio = float((diff / budget).max(initial=0.0))
            worst_ratio = max(worst_ratio, (ratio, t, n))
            if ratio > 1:
                over.append(f"step {t} {n}: {int((diff > budget).sum())} elements")
    rep(not over, "ema.steps", "; ".join(over[:3]) or f"every element within float32 rounding of the reference's EMA, "
        f"worst {worst_ratio[0]:.2f} of the budget (step {worst_ratio[1]}, {worst_ratio[2]})")
    # and over the whole model after the last step, nothing exempt: the movement from init
    ec, er = d["ema"][-1], extra["ema"][-1]
    num = sum(float(((ec[n] - er[n]) ** 2).sum()) for n in er)
    den = sum(float(((er[n] - init[n]) ** 2).sum()) for n in er)
    r = math.sqrt(num / den) if den > 0 else math.sqrt(num)
    rep(r <= TOL_EMA, "ema.movement", f"‖ema_C − ema_ref‖ / ‖ema_ref − init‖ after step {c['steps'] - 1} = {r:.2e}")
    if not c.get("ema_order"):
        return
    G, B, order = ref.grid(c), c["batch"], c["order"]
    noise = d["inputs"]["noise"]
    w_sig, w_live, bad = (0.0, 0), (0.0, 0), []
    for t, (rc, sc, sr, sl) in enumerate(zip(d["ema_ranks"], d["ema_signal"], extra["sig_ema"], extra["sig_live"])):
        w_sig = max(w_sig, (tensor_rel(sc, sr), t))
        w_live = max(w_live, (tensor_rel(sl, sr), t))
        if order == "semantic":
            cen_c = np.array([int(np.argmin(rc[b])) for b in range(B)])
            cen_me = sr.argmax(axis=1)
            for b in range(B):
                if cen_c[b] != cen_me[b] and sr[b, cen_me[b]] - sr[b, cen_c[b]] >= TIE_GAP:
                    bad.append(f"step {t} image {b}: centre C {cen_c[b]} ref {cen_me[b]}")
            s, _ = ref.semantic_scores(sr, noise, G, centers=cen_c)
            n_bad = int((ref.ranks_from_scores(s) != rc).sum())
            if n_bad:
                bad.append(f"step {t}: {n_bad} ranks differ")
        else:
            rise = max(float(np.max(np.diff(sr[b][np.argsort(rc[b])]), initial=-1.0)) for b in range(B))
            if rise > SIM_TOL:
                bad.append(f"step {t}: a_p rises by {rise:.2e} along the order")
    rep(w_sig[0] <= TOL_SIGNAL, "ema_order.signal", f"worst max|C − ref EMA's| / max|ref| {w_sig[0]:.2e} at step {w_sig[1]}")
    rep(not bad, f"ema_order.ranks_{order}", "; ".join(bad[:3]) or f"{c['steps']} steps' orders from the reference's EMA")
    rep(w_live[0] > 10 * TOL_SIGNAL, "ema_order.differs_from_live_weights",
        f"the live weights' signal is {w_live[0]:.2e} away from the EMA's (step {w_live[1]}): the check tells them apart")


def compare_dump(d, expect=None, label=None):
    """Runs every check on dump directory d; returns True if all passed."""
    rep = Report(label or os.path.basename(os.path.normpath(d)))
    try:
        dump = load_dump(d)
    except DumpError as e:
        rep(False, "load", str(e))
        return False
    rep(True, "load", "every file present, names/shapes/dtypes as specified")
    c = dump["config"]
    check_expect(rep, c, expect or {})
    check_init(rep, c, dump["init"])
    params = ref.to_torch(dump["init"], torch.float64, grad=False)
    a = ref.order_signal(params, torch.tensor(dump["inputs"]["images"], dtype=torch.float64), c,
                         c.get("signal", "cls")).numpy()
    check_permutation(rep, c, dump["inputs"], a)
    check_training(rep, c, dump)
    return rep.failed == 0


def parse_expect(s):
    out = {}
    for item in filter(None, s.split(",")):
        if "=" not in item:
            raise ValueError(f"--expect: {item!r} is not key=value")
        k, v = item.split("=", 1)
        for conv in (int, float):
            try:
                out[k] = conv(v)
                break
            except ValueError:
                pass
        else:
            out[k] = v
    return out


def main(argv):
    torch.set_num_threads(1)  # tiny tensors: threads only add spin-waiting on a shared machine
    jobs, expect, i = [], {}, 0
    while i < len(argv):
        if argv[i] == "--expect":
            if i + 1 >= len(argv):
                print("compare_parity: --expect needs a value", file=sys.stderr)
                return 2
            try:
                expect = parse_expect(argv[i + 1])
            except ValueError as e:
                print(f"compare_parity: {e}", file=sys.stderr)
                return 2
            i += 2
        elif argv[i].startswith("-"):
            print(f"compare_parity: unknown option {argv[i]}", file=sys.stderr)
            return 2
        else:
            jobs.append((argv[i], expect))
            expect, i = {}, i + 1
    if not jobs:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    ok = True
    for d, e in jobs:
        ok &= compare_dump(d, e)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
