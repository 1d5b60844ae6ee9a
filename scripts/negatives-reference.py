#!/usr/bin/env python3
"""The counter store's fixed negatives (slmrec-negatives-v1), recomputed outside the toolbench.

A prepared dataset whose dataset.json says `options.negatives_store: "counter"` keeps no
negatives files: user u's list for a split is a pure function of (seed, split, u, the user's
sequence, the number of items). This script is the reference implementation of that function
(standard library only; docs/data.md "Counter negatives" is the same algorithm in prose), so
any tool can check or reproduce the sampled protocol without our binary:

    scripts/negatives-reference.py DATA_DIR --split test [--users 1,2,3 | --first 100]

prints `USER N1 … Nk` lines, the layout of a text store's negatives-test.txt.
"""
import argparse
import json
import os
import sys

M64 = (1 << 64) - 1


def fnv1a64(s: str) -> int:
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


class Xoshiro256ss:
    """xoshiro256** seeded through SplitMix64, as Sources/Common/RNG.swift (SeededRNG)."""

    def __init__(self, seed: int):
        sm = seed & M64
        st = []
        for _ in range(4):
            sm = (sm + 0x9E3779B97F4A7C15) & M64
            z = sm
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            st.append(z ^ (z >> 31))
        self.s = st

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    def next(self) -> int:
        s = self.s
        result = (self._rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def below(self, n: int) -> int:
        """Uniform in 0..n-1 without modulo bias (Lemire's method, as SeededRNG.nextInt(below:))."""
        m = self.next() * n
        low = m & M64
        if low < n:
            t = ((1 << 64) - n) % n
            while low < t:
                m = self.next() * n
                low = m & M64
        return m >> 64


def user_rng(seed: int, split: str, user: int) -> Xoshiro256ss:
    stream = (seed ^ fnv1a64("negatives-" + split)) & M64
    return Xoshiro256ss((stream + user * 0x9E3779B97F4A7C15) & M64)


def draw(rng: Xoshiro256ss, history, num_items: int, count: int):
    seen = set(history)
    available = num_items - len(seen)
    if available <= count or available < 2 * count:
        pool = [i for i in range(1, num_items + 1) if i not in seen]
        take = min(count, len(pool))
        for i in range(take):
            j = i + rng.below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:take]
    out = []
    while len(out) < count:
        c = 1 + rng.below(num_items)
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--split", choices=["valid", "test"], required=True)
    ap.add_argument("--users", help="comma-separated user ids (1-based)")
    ap.add_argument("--first", type=int, help="the first N users")
    a = ap.parse_args()
    with open(os.path.join(a.data, "dataset.json")) as f:
        rec = json.load(f)
    opts = rec["options"]
    if opts.get("negatives_store", "text") != "counter":
        print(f"{a.data}/dataset.json: options.negatives_store is not \"counter\"; read negatives-{a.split}.txt instead", file=sys.stderr)
        return 2
    seed, count, num_items = int(opts["seed"]), int(opts["negatives"]), int(rec["statistics"]["items"])
    seqs = {}
    with open(os.path.join(a.data, "sequences.txt")) as f:
        for line in f:
            v = line.split()
            if v:
                seqs[int(v[0])] = [int(x) for x in v[1:]]
    users = sorted(seqs) if not (a.users or a.first) else (
        [int(x) for x in a.users.split(",")] if a.users else list(range(1, min(a.first, len(seqs)) + 1)))
    for u in users:
        if u not in seqs:
            print(f"{a.data}/sequences.txt: no user {u}", file=sys.stderr)
            return 2
        neg = draw(user_rng(seed, a.split, u), seqs[u], num_items, count)
        print(" ".join(str(x) for x in [u] + neg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
