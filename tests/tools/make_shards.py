#!/usr/bin/env python3
"""Writes small train shards in the public shard format (data_prep/README.md) with h5py, for
the training-job tests. Usage: make_shards.py OUT --counts 40,37,41 [--size 40] [--seed 0]
[--split train] [--labels random|content]. Images are smooth random fields so the loss can
fall; --labels content makes the label the image's dominant frequency band (10 classes), so
k-NN on the pixels or on features can beat chance."""
import argparse, os
import h5py, numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--counts", default="40,37,41,38")
ap.add_argument("--size", type=int, default=40)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--split", default="train")
ap.add_argument("--labels", choices=("random", "content"), default="random")
a = ap.parse_args()
counts = [int(c) for c in a.counts.split(",")]
rng = np.random.default_rng(a.seed)
os.makedirs(os.path.join(a.out, a.split), exist_ok=True)
S = a.size
yy, xx = np.mgrid[0:S, 0:S] / S
for k, n in enumerate(counts):
    imgs = np.empty((n, S, S, 3), np.uint8)
    # content labels are drawn first (the images depend on them); random ones after, as always
    labels = rng.integers(0, 10, n).astype(np.int32) if a.labels == "content" else None
    for i in range(n):
        f = rng.uniform(1, 4, size=(3, 2)); ph = rng.uniform(0, 6.3, size=(3,))
        if a.labels == "content":
            f[:, :] = 1 + 0.3 * labels[i] + rng.uniform(0, 0.3, size=(3, 2))
        for c in range(3):
            imgs[i, :, :, c] = np.clip(127 + 100 * np.sin(f[c, 0] * 6.3 * xx + f[c, 1] * 6.3 * yy + ph[c])
                                       + rng.normal(0, 8, (S, S)), 0, 255)
    name = os.path.join(a.out, a.split, f"{a.split}-{k:05d}-of-{len(counts):05d}.h5")
    with h5py.File(name + ".tmp", "w") as f:
        f["images"] = imgs
        f["labels"] = labels if labels is not None else rng.integers(0, 10, n).astype(np.int32)
        f["keys"] = np.array([f"img{k}_{i}.JPEG".encode() for i in range(n)], dtype="S32")
        f.attrs["format_version"] = 1
        f.attrs["split"] = a.split
        f.attrs["shard_index"] = k
        f.attrs["shard_count"] = len(counts)
        f.attrs["image_size"] = S
    os.replace(name + ".tmp", name)
