#!/usr/bin/env python3
"""docs/scale-out.md's cost model, from measured inputs: the step time of one node (one
process, the whole global batch: scripts/bench-data-parallel's full-1x2 / lora-1x2) and the
gradient bytes per step (the same outputs), on a link of BANDWIDTH bytes/s with ALPHA s of
latency per message. A ring all-reduce of B bytes over K ranks moves 2(K-1)/K * B per rank in
2(K-1) messages:  T_comm(K) = 2(K-1)/K * B / bandwidth + 2(K-1) * alpha.
Compute splits over the ranks (ideal: T_1 / K; the measured 2-rank imbalance is reported
beside it), no overlap of communication with the backward pass (not implemented).
Usage: scripts/scale-out-model.py [BENCH_DIR] [--bandwidth 1.25e9] [--alpha 50e-6] [--users 1216193] [--batch 64]
"""
import argparse, math, re, pathlib

ap = argparse.ArgumentParser()
ap.add_argument("dir", nargs="?", default="runs/bench-data-parallel")
ap.add_argument("--bandwidth", type=float, default=1.25e9, help="bytes/s (10 GbE: 1.25e9)")
ap.add_argument("--alpha", type=float, default=50e-6, help="seconds per message (TCP on 10 GbE: ~50 us)")
ap.add_argument("--users", type=int, default=1216193, help="training examples per epoch (Cloth: one per user, last-position objective)")
ap.add_argument("--batch", type=int, default=64)
a = ap.parse_args()

def measured(case):
    t = pathlib.Path(a.dir, case + ".txt").read_text()
    floats = int(re.search(r"(\d+) trainable floats", t).group(1))
    steps = int(re.search(r"the first (\d+) steps", t).group(1))
    wall = float(re.search(r"\n\s*\d+\s+\d+\s+([\d.]+) s", t).group(1))
    return wall / steps, floats * 4

steps_per_epoch = math.ceil(a.users / a.batch)
print(f"link {a.bandwidth / 1e9:.2f} GB/s, {a.alpha * 1e6:.0f} us per message; {a.users:,} examples = {steps_per_epoch:,} steps of {a.batch} per epoch\n")
for mode in ["full", "lora"]:
    t1, b = measured(mode + "-1x2")
    print(f"{'full fine-tuning' if mode == 'full' else 'LoRA'}: T_1 = {t1 * 1000:.0f} ms/step on one node (measured), gradient {b / 1e6:.2f} MB/step")
    print("| nodes K | rows/rank | compute T_1/K | all-reduce | step | speed-up | epoch |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for k in [1, 2, 4, 8, 16, 32, 64]:
        if k > a.batch: break
        comm = 0 if k == 1 else 2 * (k - 1) / k * b / a.bandwidth + 2 * (k - 1) * a.alpha
        step = t1 / k + comm
        print(f"| {k} | {a.batch / k:.0f} | {t1 / k * 1000:.0f} ms | {comm * 1000:.1f} ms | {step * 1000:.0f} ms | {t1 / step:.2f}x | {steps_per_epoch * step / 3600:.2f} h |")
    # Communication equals compute at K* = 1 + T_1 * bw / (2B) (alpha neglected); the
    # speed-up can never exceed T_1 / (2B / bw), the all-reduce of an infinitely large ring.
    kstar = 1 + t1 * a.bandwidth / (2 * b)
    print(f"\ncommunication = compute at K ≈ {kstar:.1f}; speed-up bound T_1 / (2B/bw) = {t1 / (2 * b / a.bandwidth):.1f}x (and K ≤ the global batch, {a.batch})\n")
