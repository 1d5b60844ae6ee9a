#!/usr/bin/env python3
"""A synthetic dataset of Amazon-18 Clothing's shape, for the scaling benchmarks (docs/benchmarks.md).

The SLMRec paper's largest set, Amazon-18 "Clothing, Shoes and Jewelry" after 5-core, has
1,219,678 users, 376,858 items and 11,285,464 interactions (mean length 9.25). This writes an
Amazon ratings-only CSV (`item,user,rating,timestamp`, the `amazon-csv` format of
`slmrec data prepare`) with that shape at any size:

- users' lengths: 5 + a heavy tail (Pareto, alpha 1.8), scaled so the mean is the target's;
- items' popularity: 5 + a Zipf-like share (weight 1/(rank+10)^1.1), so there is a long tail
  and a head of bestsellers, as in Amazon data;
- who bought what: every item's purchases are shuffled and dealt to the users (a
  configuration model), so each user and item starts with at least 5 interactions; the few
  repeated user-item pairs this makes are dropped by `data prepare`, and its 5-core then
  trims a handful of users and items (the prepared sizes are printed by prepare);
- ratings are 4 or 5 (all pass the paper's "rating > 3"), timestamps increase per user
  from a random day in 2010-2018, with equal timestamps now and then, as real logs have.

Deterministic from --seed (Python's Mersenne Twister), standard library only. Never commit
the output (450 MB at full size); write it under runs/.

    scripts/gen-cloth.py OUT.csv [--users 1219678] [--items N] [--interactions N] [--seed 1]

--items and --interactions default to Cloth's ratios to --users (0.309 items and 9.25
interactions per user).
"""
import argparse
import random
import sys

CLOTH_USERS, CLOTH_ITEMS, CLOTH_INTER = 1_219_678, 376_858, 11_285_464


def scaled_lengths(rng, n, total, floor, draw):
    """n integers >= floor summing to exactly total, shaped like floor + draw()."""
    raw = [draw() for _ in range(n)]
    extra = total - floor * n
    if extra < 0:
        raise SystemExit(f"need at least {floor} interactions per user and per item")
    s = sum(raw)
    out = [floor + int(r * extra / s) for r in raw]
    short = total - sum(out)
    # Hand the rounding remainder out one by one, to random rows.
    for i in rng.sample(range(n), short) if short <= n else [k % n for k in range(short)]:
        out[i] += 1
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output")
    ap.add_argument("--users", type=int, default=CLOTH_USERS)
    ap.add_argument("--items", type=int)
    ap.add_argument("--interactions", type=int)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    users = a.users
    items = a.items or max(5, round(users * CLOTH_ITEMS / CLOTH_USERS))
    inter = a.interactions or round(users * CLOTH_INTER / CLOTH_USERS)
    if users < 1 or items < 5 or inter < 5 * max(users, items):
        print("need users >= 1, items >= 5 and interactions >= 5 x max(users, items)", file=sys.stderr)
        return 2
    rng = random.Random(a.seed)

    user_len = scaled_lengths(rng, users, inter, 5, lambda: rng.paretovariate(1.8) - 1)
    ranks = list(range(items))
    rng.shuffle(ranks)  # popularity rank of each item id: ids are not ordered by popularity
    weights = [1.0 / (r + 10) ** 1.1 for r in ranks]
    wsum = sum(weights)
    extra = inter - 5 * items
    item_cnt = [5 + int(w * extra / wsum) for w in weights]
    for i in rng.sample(range(items), inter - sum(item_cnt)):
        item_cnt[i] += 1

    slots = [0] * inter
    k = 0
    for i, c in enumerate(item_cnt):
        slots[k:k + c] = [i] * c
        k += c
    rng.shuffle(slots)

    item_ids = [f"B{rng.getrandbits(36):09X}" for _ in range(items)]
    user_ids = [f"A{rng.getrandbits(52):013X}" for _ in range(users)]
    day = 86_400
    with open(a.output, "w", buffering=1 << 22) as f:
        k = 0
        for u in range(users):
            t = 1_262_304_000 + rng.randrange(9 * 365) * day   # 2010-01-01 + up to 9 years
            uid = user_ids[u]
            lines = []
            for _ in range(user_len[u]):
                t += rng.choice((0, day, day, 3 * day, 7 * day, 30 * day))
                lines.append(f"{item_ids[slots[k]]},{uid},{'5.0' if rng.random() < 0.6 else '4.0'},{t}\n")
                k += 1
            f.write("".join(lines))
    print(f"{a.output}: {users:,} users, {items:,} items, {inter:,} interactions (before data prepare's dedup and 5-core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
