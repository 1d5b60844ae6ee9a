/// Rank of a held-out target item given a score for every item.
///
/// Ties are pessimistic: every competitor scoring *at least* as high as the target is
/// ranked above it, so a model that scores all items the same gets the worst rank, not
/// the best (ellmrec-checkpoint spec, "Ranking ties"). NaN never helps: a NaN target
/// score gets the worst possible rank and a NaN competitor counts as beating the target.
public enum Ranking {
    /// Sampled protocol: 1 + #{c ∈ candidates, c ≠ target : scores[c] ≥ scores[target] or NaN}.
    /// `scores` is indexed by item id; `candidates` are the user's fixed negatives (a
    /// candidate equal to the target, which prepare never writes, is ignored rather than
    /// counted against the target). Ids outside `scores` are ignored.
    public static func rank(scores: UnsafeBufferPointer<Float>, target: Int, candidates: UnsafeBufferPointer<Int32>) -> Int {
        let others = candidates.reduce(0) { $0 + (Int($1) != target && Int($1) >= 0 && Int($1) < scores.count ? 1 : 0) }
        guard target >= 0, target < scores.count else { return others + 1 }
        let t = scores[target]
        if t.isNaN { return others + 1 }
        var above = 0
        for c in candidates {
            let i = Int(c)
            guard i != target, i >= 0, i < scores.count else { continue }
            let s = scores[i]
            if s >= t || s.isNaN { above += 1 }
        }
        return above + 1
    }

    /// Full-ranking protocol: `scores` has numItems + 1 entries (index 0 is padding and is
    /// never ranked). The target is ranked among all items 1…numItems except those in
    /// `exclude` (the user's history); the target itself is never excluded, even when it
    /// occurs in the history (a repeat purchase). Duplicates in `exclude` count once.
    public static func rankFull(scores: UnsafeBufferPointer<Float>, target: Int, exclude: some Collection<Int32>) -> Int {
        let n = scores.count - 1
        guard n >= 1 else { return 1 }
        // Distinct excluded ids in 1…n other than the target.
        var ex = exclude.map { Int($0) }.filter { $0 >= 1 && $0 <= n && $0 != target }
        ex.sort()
        var distinct = 0
        var prev = -1
        for e in ex where e != prev { distinct += 1; prev = e }
        let validTarget = target >= 1 && target <= n
        let competitors = n - distinct - (validTarget ? 1 : 0)
        guard validTarget else { return competitors + 1 }
        let t = scores[target]
        if t.isNaN { return competitors + 1 }
        var above = 0
        for i in 1...n where i != target {
            let s = scores[i]
            if s >= t || s.isNaN { above += 1 }
        }
        // Remove the excluded items that were counted.
        prev = -1
        for e in ex where e != prev {
            prev = e
            let s = scores[e]
            if s >= t || s.isNaN { above -= 1 }
        }
        return above + 1
    }
}
