"""The PyTorch side of the training-step benchmark (tests/bench/train.sh): tests/ref/semaim_ref.py,
our independent PyTorch SemAIM, run as the authors' code runs — float32, additive
(L+1)x(L+1) masks over full attention (no causal skipping), the permutation pass as a no-grad
encoder pass, torch.optim.AdamW — on the same BLAS and thread count as the C side. It is not
the authors' repository (not available offline here); it is the same computation written the
way PyTorch code writes it, so the ratio says what the C implementation buys over PyTorch on
the same node. Prints "bench <name>: <value> <unit>" lines.
Usage: bench_torch_ref.py --preset tiny --batch 32 --steps 3 [--threads N] [--label pytorch_ref]
"""
import argparse
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ref"))
import semaim_ref as R  # noqa: E402

PRESETS = {"tiny": (224, 16, 192, 12, 12, 3), "small": (224, 16, 384, 12, 12, 6), "base": (224, 16, 768, 12, 12, 12)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--label", default="pytorch_ref")
    a = ap.parse_args()
    if a.batch < 1 or a.steps < 1 or a.threads < 1:
        sys.exit("bench_torch_ref: --batch, --steps and --threads must be positive")
    torch.set_num_threads(a.threads)
    image, patch, width, depth, dec_depth, heads = PRESETS[a.preset]
    cfg = dict(image=image, patch=patch, width=width, depth=depth, dec_depth=dec_depth, heads=heads)
    G = image // patch
    gen = torch.Generator().manual_seed(0)
    p = R.init_params(cfg, gen, dtype=torch.float32)
    for n, t in p.items():
        t.requires_grad_(R.trainable(n))
    names = [n for n in p if R.trainable(n)]
    opt = torch.optim.AdamW([{"params": [p[n] for n in names if R.decayed(p[n].shape)], "weight_decay": 0.05},
                             {"params": [p[n] for n in names if not R.decayed(p[n].shape)], "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95))
    images = torch.randn(a.batch, 3, image, image, generator=gen)
    rng = np.random.default_rng(0)

    def step():
        sim = R.cls_similarity(p, images, cfg)
        scores, _ = R.semantic_scores(sim.numpy(), rng.random((a.batch, G * G)), G)
        ranks = torch.from_numpy(R.ranks_from_scores(scores))
        opt.zero_grad(set_to_none=True)
        loss = R.loss_fn(p, images, ranks, cfg)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p[n] for n in names], 3.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    dt = (time.perf_counter() - t0) / a.steps
    if not np.isfinite(loss):
        sys.exit("bench_torch_ref: the loss is not finite")
    tag = f"train_{a.preset}_b{a.batch}_{a.label}"
    print(f"bench {tag}_images_per_s: {a.batch / dt:.3f} images/s")
    print(f"bench {tag}_ms_per_step: {1e3 * dt:.1f} ms")
    print(f"bench {tag}_peak_rss: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1048576:.3f} GiB")


if __name__ == "__main__":
    main()
