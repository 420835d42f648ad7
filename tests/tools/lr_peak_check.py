#!/usr/bin/env python3
"""Does a run reach its peak lr where the capped warmup says, then fall? Reads RUN/metrics.jsonl:
the step lines must number STEPS, their largest lr must be run_start's peak_lr, at 0-based
iteration PEAK, and the last lr must be below it. Exit 0 or an AssertionError with the lrs.
Usage: lr_peak_check.py RUN STEPS PEAK (t_train.sh and t_finetune.sh: a run shorter than the
default warmup still peaks at a fifth of itself)."""
import json
import sys

run, steps, peak_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ev = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
peak = ev[0]["peak_lr"]
lr = [e["lr"] for e in ev if e["event"] == "step"]
assert len(lr) == steps and abs(max(lr) - peak) <= 1e-6 * peak, (peak, lr)
assert lr.index(max(lr)) == peak_at and lr[-1] < lr[peak_at], lr
