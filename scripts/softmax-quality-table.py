#!/usr/bin/env python3
"""Markdown table for docs/benchmarks.md "Sampled vs full softmax": SASRec trained with each
softmax on the same data and budget (scripts/softmax-quality), from the runs' metrics.json.
Selection on the validation split (full NDCG@10, SASRec's rule); test under both protocols.
Usage: scripts/softmax-quality-table.py NAME=DIR ..."""
import json, sys

K = ["HR@10", "NDCG@10", "MRR"]
print("| dataset / softmax | epochs (best) | train s | valid full NDCG@10 | "
      + " | ".join(f"test full {k}" for k in K) + " | " + " | ".join(f"test sampled {k}" for k in K) + " |")
print("|---" * (4 + 2 * len(K)) + "|")
for arg in sys.argv[1:]:
    name, d = arg.split("=", 1)
    try:
        m = json.load(open(d + "/metrics.json"))
    except OSError:
        print(f"| {name} | pending |" + " |" * (3 + 2 * len(K)))
        continue
    f, s = m["test_full"], m["test_sampled"]
    print(f"| {name} | {m['epochs_run']} ({m['best_epoch']}) | {m['train_step_seconds']:.0f} | {m['valid']['full']['NDCG@10']:.4f} | "
          + " | ".join(f"{f[k]:.4f}" for k in K) + " | " + " | ".join(f"{s[k]:.4f}" for k in K) + " |")
