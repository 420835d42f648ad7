#!/usr/bin/env python3
"""Writes a parity dump from the reference itself, and self-tests compare_parity.py with it.

THE DUMP FORMAT (what build/tools/parity_dump writes into --out DIR):
  config.json        {"image","patch","width","depth","dec_depth","heads","batch","order","seed",
                      "steps","lr" (peak, already scaled),"warmup_iters","total_iters",
                      "weight_decay","beta1","beta2","eps","clip"}
  init.safetensors   every parameter at initialisation, F32, timm names (semaim_ref.param_shapes)
  inputs.safetensors "images" F32 [B,3,H,W] normalised; "ranks" I32 [B,L] rank of patch p in the
                     training order (0 = first); "noise" F32 [B,L] the u_p of the semantic order;
                     "semantic_ranks" I32 [B,L], "semantic_center" I32 [B] from the permutation pass
                     on the init weights, "semantic_signal" F32 [B,L] its signal values (optional)
  config.json may add the objective: "blur_k" (0 = none), "blur_sigma", "norm_pix" (0/1), "loss"
                     ("l2"/"l1"), "signal" ("cls"/"gap"/"self"); absent: 9, 1, 1, "l2", "cls"
  step0.safetensors  "loss" F32 [1] at init; "grad.<name>" F32 for every parameter but pos_embed
  traj.json          [{"step": t, "lr": lr_t, "loss": loss_t, "grad_norm": g_t (before clipping)}]
  final.safetensors  every parameter after the steps
  With the EMA teacher (parity_dump --ema SPE [--ema-order]) config.json adds
                     "ema_steps_per_epoch" (SPE; 0 or absent: no EMA) and "ema_order" (0/1), every
                     traj.json entry "ema_decay" (the decay its update used), and
  step-T.safetensors "ema.<name>" F32 for every parameter but pos_embed: the EMA after step T's
                     update (T = 0..steps-1); with ema_order also "ranks" I32 [B,L] and "signal"
                     F32 [B,L], step T's order and its signal, from the EMA before that update
                     (the training then uses these ranks, not inputs' "ranks")

Usage:
  make_fake_dump.py --image 32 --patch 8 --width 64 --depth 2 --dec-depth 2 --heads 2 --batch 3
                    --order raster --seed 1 --steps 10 --lr 1e-3 --warmup 3 --clip 0.5 --out DIR
                    [--dtype float32|float64] [--bug NAME]
  make_fake_dump.py --selftest [all]   (float32 dumps must pass compare_parity, broken ones
                                        must fail; "all" adds a float32 dump of every order)
--bug plants a deliberate error in the dumped run (see BUGS) so the self-test can prove the
comparison notices it.
"""
import sys
sys.dont_write_bytecode = True  # the tree is shared: no __pycache__ next to the sources
import argparse
import contextlib
import io
import json
import os
import shutil
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_parity as cp  # noqa: E402
import safetensors_io as st  # noqa: E402
import semaim_ref as ref  # noqa: E402

BUGS = ("none", "query_sees_self", "biased_var", "decay_all", "no_clip", "skip_lr0_update")


def write_json(path, obj):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


@contextlib.contextmanager
def planted(bug):
    """Temporarily breaks the reference in one specific way."""
    saved = (ref.masks_from_ranks, ref.pixel_target, ref.decayed, torch.optim.AdamW.step)
    if bug == "query_sees_self":
        orig = ref.masks_from_ranks
        ref.masks_from_ranks = lambda r, dt: (orig(r, dt)[0],) * 2
    elif bug == "biased_var":
        def biased(images, P, *objective):
            C = images.shape[1]
            w = ref.gaussian_kernel9(images.dtype).expand(C, 1, 9, 9)
            t = ref.patch_rows(torch.nn.functional.conv2d(images, w, padding=4, groups=C), P, "ppc")
            return (t - t.mean(-1, keepdim=True)) / torch.sqrt(t.var(-1, unbiased=False, keepdim=True) + 1e-6)
        ref.pixel_target = biased
    elif bug == "decay_all":
        ref.decayed = lambda shape: True
    elif bug == "skip_lr0_update":  # an optimizer that skips lr = 0 steps never counts step 0
        step = torch.optim.AdamW.step

        def skipping(self, closure=None):
            return None if all(g["lr"] == 0 for g in self.param_groups) else step(self, closure)
        torch.optim.AdamW.step = skipping
    try:
        yield
    finally:
        ref.masks_from_ranks, ref.pixel_target, ref.decayed, torch.optim.AdamW.step = saved


def order_ranks(order, a, noise, sem_ranks, G):
    B, L = noise.shape
    if order == "raster":
        return np.tile(np.arange(L), (B, 1))
    if order == "stochastic":
        return ref.ranks_from_scores(noise)
    if order == "semantic":
        return sem_ranks
    if order == "similarity":
        return ref.ranks_from_scores(1.0 - a)
    c = (G - 1) / 2
    return ref.ranks_from_scores(ref.ring_distance(G, [(c, c)] * B) + 1e-3 * noise.astype(np.float64))


def make_dump(out, a, dtype=torch.float32, bug="none"):
    """a: argparse-like namespace with the parity_dump flags."""
    cfg = dict(image=a.image, patch=a.patch, width=a.width, depth=a.depth, dec_depth=a.dec_depth, heads=a.heads)
    ref.check_cfg(cfg)
    G, B = ref.grid(cfg), a.batch
    L = G * G
    gen = torch.Generator().manual_seed(a.seed)
    init = {n: t.to(torch.float32).numpy() for n, t in ref.init_params(cfg, gen).items()}
    images = torch.randn(B, 3, a.image, a.image, generator=gen, dtype=torch.float32)
    noise = torch.rand(B, L, generator=gen, dtype=torch.float32).numpy()
    params = ref.to_torch(init, dtype)
    sim = ref.cls_similarity(params, images.to(dtype), cfg).to(torch.float64).numpy()
    s, centers = ref.semantic_scores(sim, noise, G)
    sem_ranks = ref.ranks_from_scores(s)
    ranks = order_ranks(a.order, sim, noise, sem_ranks, G)
    config = dict(cfg, batch=B, order=a.order, seed=a.seed, steps=a.steps, lr=a.lr, warmup_iters=a.warmup,
                  total_iters=a.steps, weight_decay=0.05, beta1=0.9, beta2=0.95, eps=1e-8, clip=a.clip,
                  gemm=getattr(a, "gemm", None) or "openblas")
    hp = {k: config[k] for k in ("lr", "warmup_iters", "total_iters", "weight_decay", "beta1", "beta2", "eps", "clip")}
    if bug == "no_clip":
        hp["clip"] = 1e30
    with planted(bug):
        loss0, grads0, traj = ref.train(params, images.to(dtype), torch.tensor(ranks), cfg, hp, a.steps)
    os.makedirs(out, exist_ok=True)
    f32 = lambda t: np.asarray(t.detach().numpy() if torch.is_tensor(t) else t, dtype=np.float32)  # noqa: E731
    st.write(os.path.join(out, "init.safetensors"), init)
    st.write(os.path.join(out, "inputs.safetensors"), {
        "images": images.numpy(), "ranks": ranks.astype(np.int32), "noise": noise,
        "semantic_ranks": sem_ranks.astype(np.int32), "semantic_center": centers.astype(np.int32),
        "semantic_signal": sim.astype(np.float32)})
    st.write(os.path.join(out, "step0.safetensors"),
             {"loss": np.array([loss0], np.float32), **{"grad." + n: f32(g) for n, g in grads0.items()}})
    st.write(os.path.join(out, "final.safetensors"), {n: f32(t) for n, t in params.items()})
    write_json(os.path.join(out, "traj.json"), traj)
    write_json(os.path.join(out, "config.json"), config)  # last: its presence means complete


def parser():
    ap = argparse.ArgumentParser(description="write a parity dump from the PyTorch reference")
    for flag, typ in (("image", int), ("patch", int), ("width", int), ("depth", int), ("dec-depth", int),
                      ("heads", int), ("batch", int), ("seed", int), ("steps", int), ("warmup", int),
                      ("lr", float), ("clip", float)):
        ap.add_argument("--" + flag, type=typ)
    ap.add_argument("--order", choices=cp.ORDERS)
    ap.add_argument("--gemm", default="openblas", help="recorded only: the C driver's GEMM backend")
    ap.add_argument("--out")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--bug", choices=BUGS, default="none")
    ap.add_argument("--selftest", nargs="?", const="quick", choices=("quick", "all"))
    return ap


def flags(**kw):
    d = dict(image=32, patch=8, width=64, depth=2, dec_depth=2, heads=2, batch=3, order="raster", seed=1,
             steps=10, lr=1e-3, warmup=3, clip=0.5)
    d.update(kw)
    return argparse.Namespace(**d)


# ---------------------------------------------------------------------------- self-test

def quiet_compare(d):
    """Runs compare_dump with its output captured; returns (ok, [FAIL check names], text)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ok = cp.compare_dump(d)
    text = buf.getvalue()
    fails = [ln.split("]", 1)[1].split(" ", 1)[0].lstrip(".") for ln in text.splitlines() if ln.startswith("FAIL: ")]
    return ok, fails, text


def edit_st(path, fn):
    t, meta = st.read(path)
    fn(t)
    st.write(path, t, meta)


def edit_json(path, fn):
    with open(path) as f:
        obj = json.load(f)
    fn(obj)
    write_json(path, obj)


def selftest(full=False):
    tmp = tempfile.mkdtemp(prefix="semaim_fake_")
    ok = True

    def report(good, name, detail):
        nonlocal ok
        ok &= bool(good)
        print(f"{'PASS' if good else 'FAIL'}: selftest.{name} ({detail})", flush=True)

    try:
        # 1. A float32 run of the reference (the C side's precision) must pass every check:
        # this is what shows the tolerances are attainable, not just loose. (Two configs only,
        # to keep the suite fast; `--selftest all` runs every order.)
        good = {
            "fake_raster_p8_d2_q2": flags(order="raster", seed=11),
            "fake_semantic_p4_d4_q2": flags(order="semantic", patch=4, depth=4, seed=14),
        }
        if full:
            good.update({
                "fake_stochastic_p4_d2_q2": flags(order="stochastic", patch=4, seed=12),
                "fake_similarity_p4_d2_q1": flags(order="similarity", patch=4, dec_depth=1, seed=15),
                "fake_center_p8_d2_q2": flags(order="center", seed=16),
            })
        for label, f in good.items():
            d = os.path.join(tmp, label)
            make_dump(d, f)
            passed, fails, text = quiet_compare(d)
            sys.stdout.write(text)  # genuine checks of the float32 run: keep them visible
            report(passed, f"float32_dump_passes[{label}]", f"failed: {fails}" if fails else "all checks pass")

        # 2. Each planted error must be caught by the check named for it.
        base = os.path.join(tmp, "fake_raster_p8_d2_q2")
        cases = []

        def case(name, expect, mutate=None, bug=None, **kw):
            cases.append((name, expect, mutate, bug, kw))

        def bump(key, rel=1e-3, idx=None):
            def f(t):
                a = t[key].reshape(-1)
                i = int(np.abs(a).argmax()) if idx is None else idx
                a[i] += np.float32(rel * np.abs(a).max())
            return f

        case("grad_1e-3", "step0.grads", lambda d: edit_st(f"{d}/step0.safetensors", bump("grad.blocks.1.mlp.fc1.weight", idx=7)))
        case("loss_1e-4", "step0.loss", lambda d: edit_st(f"{d}/step0.safetensors", lambda t: t["loss"].__imul__(np.float32(1 + 1e-4))))
        case("final_param_1e-3", "final.params", lambda d: edit_st(f"{d}/final.safetensors", bump("query_blocks.0.attn.v.bias", idx=3)))
        case("traj_loss_1e-4", "traj.loss", lambda d: edit_json(f"{d}/traj.json", lambda j: j[-1].__setitem__("loss", j[-1]["loss"] * (1 + 1e-4))))
        case("traj_lr_1e-5", "traj.lr", lambda d: edit_json(f"{d}/traj.json", lambda j: j[1].__setitem__("lr", j[1]["lr"] * (1 + 1e-5))))
        case("traj_gnorm_1e-3", "traj.grad_norm", lambda d: edit_json(f"{d}/traj.json", lambda j: j[4].__setitem__("grad_norm", j[4]["grad_norm"] * (1 + 1e-3))))

        def swap_ranks(t):
            r = t["semantic_ranks"][0]
            i, j = int(np.argmin(r)), int(np.argmax(r))
            r[i], r[j] = r[j], r[i]
        case("semantic_ranks_swapped", "semantic.ranks", lambda d: edit_st(f"{d}/inputs.safetensors", swap_ranks))

        def move_center(t):
            t["semantic_center"][1] = (t["semantic_center"][1] + 5) % t["noise"].shape[1]
        case("semantic_center_moved", "semantic.center", lambda d: edit_st(f"{d}/inputs.safetensors", move_center))

        def bump_signal(t):
            t["semantic_signal"][0, 1] += 1e-3 * np.abs(t["semantic_signal"]).max()
        case("semantic_signal_1e-3", "signal.cls", lambda d: edit_st(f"{d}/inputs.safetensors", bump_signal))

        def swap_pos(t):
            pe = t["pos_embed"]
            D = pe.shape[-1]
            pe[:] = np.concatenate([pe[..., D // 2:], pe[..., :D // 2]], axis=-1)
        case("pos_embed_row_col_swapped", "init.pos_embed",
             lambda d: (edit_st(f"{d}/init.safetensors", swap_pos), edit_st(f"{d}/final.safetensors", swap_pos)))
        case("init_bias_nonzero", "init.distributions",
             lambda d: edit_st(f"{d}/init.safetensors", lambda t: t["blocks.0.attn.proj.bias"].__setitem__(0, 1e-3)))
        case("config_flag_ignored", "config",
             lambda d: edit_json(f"{d}/config.json", lambda j: j.__setitem__("weight_decay", 0.1)))
        case("truncated_file", "load", lambda d: open(f"{d}/inputs.safetensors", "r+b").truncate(100))
        case("missing_grad", "load",
             lambda d: edit_st(f"{d}/step0.safetensors", lambda t: t.pop("grad.norm.bias")))
        case("ranks_not_permutation", "load",
             lambda d: edit_st(f"{d}/inputs.safetensors", lambda t: t["ranks"].__setitem__((0, 0), 1)))
        case("raster_order_wrong", "ranks.raster",
             lambda d: edit_st(f"{d}/inputs.safetensors", lambda t: t["ranks"][0].__setitem__(slice(None), t["ranks"][0][::-1].copy())))
        case("bug_query_sees_self", "step0.loss", bug="query_sees_self")
        case("bug_biased_target_var", "step0.loss", bug="biased_var")
        case("bug_decay_on_1d", "final.params", bug="decay_all")
        case("bug_no_clipping", "final.params", bug="no_clip")
        case("bug_adam_skips_step0", "final.params", bug="skip_lr0_update")
        case("bug_semantic_in_similarity_slot", "ranks.similarity", bug=None, order="similarity",
             mutate_ranks="semantic")

        for name, expect, mutate, bug, kw in cases:
            d = os.path.join(tmp, "neg_" + name)
            if bug is not None or kw:
                f = flags(seed=11, order=kw.get("order", "raster"))
                make_dump(d, f, bug=bug or "none")
                if kw.get("mutate_ranks") == "semantic":
                    edit_st(f"{d}/inputs.safetensors", lambda t: t["ranks"].__setitem__(slice(None), t["semantic_ranks"]))
            else:
                shutil.copytree(base, d)
            if mutate is not None:
                mutate(d)
            passed, fails, _ = quiet_compare(d)
            report(not passed and expect in fails, f"detects[{name}]",
                   f"expected FAIL {expect}; failed: {fails}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ok


def main(argv):
    torch.set_num_threads(1)  # tiny tensors: threads only add spin-waiting on a shared machine
    a = parser().parse_args(argv)
    if a.selftest:
        return 0 if selftest(a.selftest == "all") else 1
    missing = [k for k in ("image", "patch", "width", "depth", "dec_depth", "heads", "batch", "seed", "steps",
                           "warmup", "lr", "clip", "order", "out") if getattr(a, k) is None]
    if missing:
        print(f"make_fake_dump: missing flags: {', '.join('--' + m.replace('_', '-') for m in missing)}",
              file=sys.stderr)
        return 2
    try:
        make_dump(a.out, a, torch.float32 if a.dtype == "float32" else torch.float64, a.bug)
    except (ValueError, OSError, st.SafetensorsError) as e:
        print(f"make_fake_dump: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
