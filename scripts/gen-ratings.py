#!/usr/bin/env python3
"""Writes a synthetic MovieLens-style ratings.csv for the `data prepare` speed benchmark.

Deterministic (fixed seed, Python's Mersenne Twister), standard library only. The default
shape follows MovieLens 10M: 69,878 users, 10,677 movies, 10,000,000 ratings on the
half-star scale, with Zipf-like item popularity and per-user chronological timestamps
(including some equal timestamps, as real logs have). Users may rate the same movie twice.

    scripts/gen-ratings.py OUT.csv [--ratings 10000000] [--users 69878] [--items 10677] [--seed 1]
"""
import argparse
import itertools
import random
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output")
    ap.add_argument("--ratings", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=69_878)
    ap.add_argument("--items", type=int, default=10_677)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.users < 1 or a.items < 1 or a.ratings < a.users:
        print("need users >= 1, items >= 1 and ratings >= users", file=sys.stderr)
        return 2
    rng = random.Random(a.seed)

    # Heavy-tailed user lengths (Pareto), scaled so they sum to exactly --ratings.
    raw = [rng.paretovariate(1.2) for _ in range(a.users)]
    scale = (a.ratings - a.users) / sum(raw)
    lengths = [1 + int(r * scale) for r in raw]
    short = a.ratings - sum(lengths)
    for i in range(short):
        lengths[i % a.users] += 1

    # Zipf-like popularity over shuffled movie ids (ids are sparse, like MovieLens').
    ids = rng.sample(range(1, a.items * 6), a.items)
    cum = list(itertools.accumulate(1.0 / (rank + 10) ** 0.9 for rank in range(a.items)))
    stars = ["0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0"]
    star_cum = list(itertools.accumulate([1, 3, 1, 8, 4, 23, 9, 29, 8, 15]))

    with open(a.output, "w", buffering=1 << 20) as f:
        f.write("userId,movieId,rating,timestamp\n")
        for u, n in enumerate(lengths, start=1):
            items = rng.choices(ids, cum_weights=cum, k=n)
            rs = rng.choices(stars, cum_weights=star_cum, k=n)
            t = 789_652_009 + rng.randrange(400_000_000)
            out = []
            for it, r in zip(items, rs):
                t += rng.choice((0, 0, 1, 7, 60, 3600))
                out.append(f"{u},{it},{r},{t}\n")
            f.write("".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
