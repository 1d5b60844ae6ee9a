#!/usr/bin/env python3
"""Markdown tables of recipes/pretrained-sports.json5's run, from its stages' metrics.json
(nothing typed in): the committed copies in docs/results/pretrained-sports/run*/, one directory
per run (machine + SASRec item table; the live RUN_DIR stands in for the newest). A stage run
in two runs gets a row per run, "name [runN]"; percentages are of the same run's e4srec8 (none
when that run has no e4srec8). Validation MRR (the selection metric, 3,000 fixed users), test
metrics under both protocols, training cost per run. Stages not yet run show "pending".
Usage: scripts/pretrained-sports-tables.py [RUN_DIR] [SASREC_DIR]"""
import json, os, sys

run = sys.argv[1] if len(sys.argv) > 1 else "runs/pretrained-sports"
sasrec = sys.argv[2] if len(sys.argv) > 2 else "runs/sports-sasrec"
METRICS = ["HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR"]
REF = "e4srec8"


RECORD = "docs/results/pretrained-sports"   # run1/, run2/, … (scripts/pretrained-sports)
RUNS = sorted(d for d in os.listdir(RECORD) if d.startswith("run") and os.path.isdir(os.path.join(RECORD, d)))


def load(stage, r):
    paths = [os.path.join(RECORD, r, stage + ".metrics.json")]
    if r == RUNS[-1]:
        paths.insert(0, os.path.join(run, stage, "metrics.json"))
    for p in paths:
        if os.path.exists(p):
            return json.load(open(p))
    return None


def sasrec_row(r):
    p = os.path.join(sasrec, "metrics.json") if r == RUNS[-1] else ""
    if not os.path.exists(p):
        p = os.path.join(RECORD, r, "sports-sasrec.metrics.json")
    if not os.path.exists(p):
        return None
    m = json.load(open(p))
    ev = {}
    for proto in ("full", "sampled"):
        for k, v in m["test_" + proto].items():
            if isinstance(v, (int, float)):
                ev[f"{proto}.{k}"] = v
    return {"evaluation": ev, "best_valid_metric": m["valid"]["full"]["MRR"], "sasrec": True,
            "train_seconds": m.get("train_wall_seconds"), "trainable_parameters": m.get("parameters")}


def found(s):
    """(label "s [run]", metrics, run) for every run that has stage s."""
    out = []
    for r in RUNS:
        m = sasrec_row(r) if s == "SASRec" else load(s, r)
        if m is not None:
            out.append((s, m, r))
    return [(f"{s} [{r}]", m, r) for s, m, r in out]


def row(name, m, ref, proto):
    if m is None:
        return f"| {name} | pending |" + " |" * len(METRICS)
    ev = m.get("evaluation")
    if not isinstance(ev, dict):
        return f"| {name} | not evaluated |" + " |" * len(METRICS)
    cells = []
    for k in METRICS:
        v = ev.get(f"{proto}.{k}")
        r = (ref or {}).get("evaluation", {}).get(f"{proto}.{k}") if ref else None
        cells.append("-" if v is None else f"{v:.4f}" + (f" ({100 * v / r:.1f}%)" if r else ""))
    val = m.get("best_valid_metric")
    vtext = "-" if val is None else f"{val:.4f}" + (" (all users)" if m.get("sasrec") else "")
    return f"| {name} | {vtext} | " + " | ".join(cells) + " |"


def table(title, stages, proto):
    out = [f"**{title}** ({'full ranking, history masked' if proto == 'full' else '999 fixed negatives'}; "
           f"in parentheses % of the same run's {REF}; valid MRR: best validation MRR, 3,000 users, full ranking)", "",
           "| model | valid MRR | " + " | ".join(METRICS) + " |", "|---|---:|" + "---:|" * len(METRICS)]
    for s in stages:
        rows = found(s)
        if not rows:
            out.append(row(s, None, None, proto))
        for label, m, r in rows:
            out.append(row(label, m, load(REF, r), proto))
    return "\n".join(out) + "\n"


def cost(stages):
    out = ["| model | steps | train time | examples/s | trainable params | seed |", "|---|---:|---:|---:|---:|---:|"]
    for s in stages:
        rows = found(s)
        if not rows:
            out.append(f"| {s} | pending | | | | |")
        for label, m, r in rows:
            t = m.get("train_seconds")
            out.append(f"| {label} | {m.get('steps', '-')} | " + ("-" if t is None else f"{t:.0f} s") + " | "
                       + (f"{m['samples_per_second']:.0f}" if "samples_per_second" in m else "-") + " | "
                       + (f"{m['trainable_parameters']:,}" if "trainable_parameters" in m else "-") + f" | {m.get('seed', '-')} |")
    return "\n".join(out) + "\n"


main = ["e4srec30", "e4srec8", "e4srec4", "slmrec4", "kd-cos-ms", "kd-norm-small", "slmrec4-warm", "e4srec8-first4",
        "random8", "random8-full", "e4srec8-suffix", "e4srec8-int8", "slmrec4-int8", "SASRec"]
print(table("Main comparison", main, "full"))
print(table("Main comparison", main, "sampled"))
abl = ["slmrec4", "kd-cos", "kd-cos-norm", "kd-cos-ms", "kd-norm-small", "kd-b1", "kd-b2", "kd-online", "e4srec4"]
print(table("Ablations, blocks, online KD", abl, "full"))
depth = ["e4srec1", "e4srec2", "e4srec4", "e4srec8", "e4srec16", "e4srec30",
         "e4srec30-first1", "e4srec30-first2", "e4srec30-first4", "e4srec30-first8", "e4srec30-first16"]
print(table("Depth (Figure 2)", depth, "full"))
trained = [s for s in dict.fromkeys(main + abl + depth) if s != "SASRec" and not s.endswith("-int8") and "-first" not in s]
print("**Training cost** (2 cores; `train time` is the stage's training loop, validations included; run1 and run2 are different machines: compare times within a run only)\n")
print(cost(trained))
for s in ["slmrec4", "kd-cos-ms", "kd-norm-small", "slmrec4-warm", "kd-cos", "kd-cos-norm", "kd-b1", "kd-b2", "kd-online"]:
    for label, m, r in found(s):
        if "loss_terms" in m:
            t = m["loss_terms"]
            print(f"- `{label}` mean loss terms: " + ", ".join(f"{k} {v:.4g}" for k, v in t.items()))
