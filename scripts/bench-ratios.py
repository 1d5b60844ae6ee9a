#!/usr/bin/env python3
"""Optional tooling, the last step of `make bench-compare`: reads the JSON that
`slmrec bench --json` and scripts/bench-pytorch.py --json wrote into one directory and prints
slmrec/PyTorch per row, with the CPU model and ISA they ran on.

    python3 scripts/bench-ratios.py out/bench-compare

Reads every slmrec-CONFIG.json, slmrec-CONFIG-int8.json and slmrec-io.json there with its
pytorch-… counterpart; one without a counterpart is reported and skipped. Rows
are paired by their "id", never by position. Refuses (exit 1) when the two sides name a
different CPU, ISA or thread count: a ratio across machines is what this replaces.
Standard library only.
"""
import json, os, sys

ORDER = {"tiny": 0, "small": 1, "medium": 2, "smollm2-8": 3, "smollm2-8-lora-only": 4, "io": 9}


def runs(d):
    """(config, suffix) of every slmrec-*.json in d: configs smallest first, each fp32 then int8, io last."""
    found = []
    for name in os.listdir(d):
        if name.startswith("slmrec-") and name.endswith(".json"):
            stem = name[len("slmrec-"):-len(".json")]
            config, suffix = (stem[:-5], "-int8") if stem.endswith("-int8") else (stem, "")
            found.append((config, suffix))
    return sorted(found, key=lambda r: (ORDER.get(r[0], 5), r[0], r[1]))


def load(d, side, config, suffix):
    name = f"{side}-{config}{suffix}.json"
    try:
        with open(os.path.join(d, name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as e:
        sys.exit(f"bench-ratios: {os.path.join(d, name)} is not valid JSON ({e}); run make bench-compare again")


def machine_key(o):
    m = o["machine"]
    return (m["cpu_model"], m["isa"], m["avx2"], m["avx512f"], m["avx512_vnni"], o["threads"])


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench-ratios.py DIR   (the directory make bench-compare writes, out/bench-compare)")
    d = sys.argv[1]
    pairs = []
    if not os.path.isdir(d):
        sys.exit(f"bench-ratios: {d} is not a directory; run make bench-compare")
    for config, suffix in runs(d):
        ours, theirs = load(d, "slmrec", config, suffix), load(d, "pytorch", config, suffix)
        if ours is None or theirs is None:
            print(f"note: no {'slmrec' if ours is None else 'pytorch'}-{config}{suffix}.json in {d}; skipped", file=sys.stderr)
            continue
        pairs.append((config, suffix, ours, theirs))
    if not pairs:
        sys.exit(f"bench-ratios: nothing to compare in {d}; run make bench-compare")

    keys = {machine_key(o) for _, _, a, b in pairs for o in (a, b)}
    if len(keys) != 1:
        lines = "\n".join(f"  {k}" for k in sorted(keys))
        sys.exit(f"bench-ratios: the outputs come from different machines or thread counts; no ratio printed:\n{lines}")
    m = pairs[0][2]["machine"]
    threads = pairs[0][2]["threads"]
    pt = next(b for *_, b in pairs)
    v = pt["versions"]
    int8_kernels = next((a.get("int8_kernels") for _, s, a, _ in pairs if s == "-int8"), None)

    print("make bench-compare: slmrec and PyTorch on the same shapes, one after the other, on this machine")
    print(f"CPU: {m['cpu_model']}; ISA: {m['isa']} (avx2 {yn(m['avx2'])}, avx512f {yn(m['avx512f'])}, "
          f"avx512_vnni {yn(m['avx512_vnni'])}); {m['logical_cpus']} logical CPUs; {threads} threads on both sides")
    print(f"slmrec {pairs[0][2].get('version', '?')} (OpenBLAS sgemm {pairs[0][2].get('sgemm_gflops', 0):.0f} GFLOP/s"
          + (f", int8 kernels {int8_kernels}" if int8_kernels else "") + ")")
    print(f"PyTorch {v['torch']} (CPU capability {pt.get('cpu_capability', '?')}), transformers {v['transformers']}, "
          f"peft {v['peft']}, Python {v['python']}; {pt.get('seconds_per_row', '?')} s per row, median")
    try:
        with open(os.path.join(d, "loadavg.txt")) as f:
            loadavg = f.read().split()[:3]
        print(f"load average before the runs (1, 5, 15 min): {', '.join(loadavg)} "
              "(anything else running on these cores slows both sides unevenly: run on an idle machine)")
    except (OSError, IndexError):
        pass
    print()

    table = [["config", "row", "slmrec", "PyTorch", "slmrec/PyTorch", "peak RSS slmrec / PyTorch"]]
    notes = []
    for config, suffix, ours, theirs in pairs:
        by_id = {r["id"]: r for r in theirs["rows"]}
        rss = f"{mib(ours['peak_rss_bytes'])} / {mib(theirs['peak_rss_bytes'])} MiB"
        for r in ours["rows"]:
            t = by_id.get(r["id"])
            if t is None:
                notes.append(f"{config}: PyTorch has no row {r['id']!r}; not compared")
                continue
            if t["unit"] != r["unit"]:
                sys.exit(f"bench-ratios: row {r['id']} is in {r['unit']} for slmrec and {t['unit']} for PyTorch")
            table.append([config, r["name"], f"{r['rate']:.1f} {r['unit']}", f"{t['rate']:.1f} {t['unit']}",
                          f"{r['rate'] / t['rate']:.2f}x", rss])
            rss = ""
        if suffix == "-int8":
            notes.append(f"{config} int8/fp32 inference: slmrec {ours['int8_vs_fp32']:.2f}x, PyTorch {theirs['int8_vs_fp32']:.2f}x; "
                         f"top-10 overlap with fp32: slmrec {ours['top10_overlap']:.3f}, PyTorch {theirs['top10_overlap']:.3f}")
    print(text_table(table))
    if notes:
        print()
        for n in notes:
            print(n)


def yn(b):
    return "yes" if b else "no"


def mib(n):
    return f"{n / 1048576:.0f}"


def text_table(rows):
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    left = {0, 1}
    out = []
    for j, r in enumerate(rows):
        out.append("  ".join(c.ljust(w[i]) if i in left else c.rjust(w[i]) for i, c in enumerate(r)).rstrip())
        if j == 0:
            out.append("  ".join("-" * x for x in w))
    return "\n".join(out)


if __name__ == "__main__":
    main()
