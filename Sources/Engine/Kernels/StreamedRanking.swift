import CKernels
import Foundation

// Ranking without a (users × N) score matrix. The pessimistic rank of a target (ties count
// against it; Evaluation/Ranking.swift is the reference and the ellmrec-checkpoint spec's
// "Ranking ties" the rule) is
//
//   full:    1 + #{i ∈ 1…N, i ≠ target, i ∉ history : s_i ≥ s_target or s_i is NaN}
//   sampled: 1 + #{c ∈ candidates, c ≠ target      : s_c ≥ s_target or s_c is NaN}
//
// so it needs no sort and no full row: s_target is formed first (ItemScores.score), then the
// scores are formed one block of items at a time (a (B, block) tile: 8 MB at B = 256 and
// block = 8,192, where the whole rows are 386 MB at Cloth's N = 377 k) and each tile is counted
// against it while it is in cache; the history's items (subtracted) and the candidates
// (counted) are looked up in the tile that holds them. ItemScores gives every score the same
// float whatever the block, so these ranks are exactly those of the whole row (the tests
// compare every rank with `Ranking.rankFull` / `Ranking.rank` on `ItemScores` rows).

public enum StreamedRanking {
    public static let defaultBlock = 8192

    /// One user's inputs: its target, its history (any order, duplicates allowed: the items
    /// excluded from full ranking) and, for the sampled protocol, its candidates (any order,
    /// each occurrence counted, as `Ranking.rank` does).
    public struct Query {
        public var target: Int32
        public var history: [Int32]
        public var candidates: [Int32]?
        public init(target: Int32, history: [Int32], candidates: [Int32]?) {
            self.target = target; self.history = history; self.candidates = candidates
        }
    }

    /// Ranks of `queries.count` users whose vectors are `users` (B, dim), against the item
    /// table `table` (numItems + 1, dim; row 0 padding, never ranked). Returns (sampled, full)
    /// ranks, 1-based; `sampled` is nil when no query has candidates, `full` when `full` is false.
    public static func ranks(users: UnsafePointer<Float>, dim: Int, table: UnsafePointer<Float>, numItems n: Int,
                             queries: [Query], full: Bool, block: Int = defaultBlock,
                             workspace ws: Workspace? = nil) -> (sampled: [Int]?, full: [Int]?) {
        let B = queries.count
        guard B > 0 else { return (nil, full ? [] : nil) }
        let doSampled = queries.contains { $0.candidates != nil }
        // Per user: the target's score, the excluded ids (distinct, in 1…n, ≠ target, sorted) and
        // the candidates (in 1…n, ≠ target, with multiplicity, in block order), walked block by block.
        var t = [Float](repeating: .nan, count: B)
        var excluded = [[Int32]](repeating: [], count: B), cands = excluded
        var validTarget = [Bool](repeating: false, count: B)
        let nb = max(1, min(block, n))
        t.withUnsafeMutableBufferPointer { tp in
        excluded.withUnsafeMutableBufferPointer { ep in
        cands.withUnsafeMutableBufferPointer { cp in
        validTarget.withUnsafeMutableBufferPointer { vp in
            nonisolated(unsafe) let tp = tp, ep = ep, cp = cp, vp = vp
            parallelFor(B) { b in
                let q = queries[b], y = Int(q.target)
                vp[b] = y >= 1 && y <= n
                if vp[b] { tp[b] = ItemScores.score(users + b * dim, table + y * dim, dim: dim) }
                if full {
                    var ex = q.history.filter { $0 >= 1 && Int($0) <= n && Int($0) != y }
                    ex.sort()
                    var w = 0
                    for e in ex where w == 0 || ex[w - 1] != e { ex[w] = e; w += 1 }
                    ex.removeLast(ex.count - w)
                    ep[b] = ex
                }
                // Candidates need only be grouped by block, in block order (a counting sort:
                // 999 ids, no comparison sort).
                if let c = q.candidates { cp[b] = groupedByBlock(c.filter { $0 >= 1 && Int($0) <= n && Int($0) != y }, block: nb, numItems: n) }
            }
        }}}}
        var aboveF = [Int](repeating: 0, count: B), aboveS = aboveF
        var curE = [Int](repeating: 0, count: B), curC = curE
        let tileBuffer = ws.buffer("rank.tile", B * nb)   // held here: without a workspace it is this call's own
        let tile = tileBuffer.ptr
        var j0 = 1
        while j0 <= n {
            let cnt = min(nb, n + 1 - j0), jEnd = j0 + cnt
            ItemScores.tile(users: users, count: B, dim: dim, table: table, from: j0, n: cnt, out: tile, ldo: cnt, workspace: ws)
            aboveF.withUnsafeMutableBufferPointer { af in
            aboveS.withUnsafeMutableBufferPointer { asp in
            curE.withUnsafeMutableBufferPointer { ce in
            curC.withUnsafeMutableBufferPointer { cc in
                nonisolated(unsafe) let af = af, asp = asp, ce = ce, cc = cc
                parallelFor(B) { b in
                    let tb = t[b]
                    guard validTarget[b], !tb.isNaN else { return }
                    let row = UnsafePointer(tile + b * cnt)
                    @inline(__always) func beats(_ j: Int32) -> Bool { let s = row[Int(j) - j0]; return s >= tb || s.isNaN }
                    if full {
                        var c = ck_count_ge(cnt, row, tb)
                        let y = Int(queries[b].target)
                        if y >= j0 && y < jEnd { c -= 1 }   // the target itself (s_target ≥ s_target)
                        let ex = excluded[b]
                        var k = ce[b]
                        while k < ex.count && Int(ex[k]) < jEnd { if beats(ex[k]) { c -= 1 }; k += 1 }
                        ce[b] = k
                        af[b] += c
                    }
                    if doSampled {
                        let cs = cands[b]
                        var k = cc[b], c = 0
                        while k < cs.count && Int(cs[k]) < jEnd { if beats(cs[k]) { c += 1 }; k += 1 }
                        cc[b] = k
                        asp[b] += c
                    }
                }
            }}}}
            j0 = jEnd
        }
        withExtendedLifetime(tileBuffer) {}
        // A NaN or invalid target gets the worst rank: 1 + every competitor.
        let ok = (0..<B).map { validTarget[$0] && !t[$0].isNaN }
        let outF: [Int]? = full ? (0..<B).map { b in
            ok[b] ? aboveF[b] + 1 : n - excluded[b].count - (validTarget[b] ? 1 : 0) + 1
        } : nil
        let outS: [Int]? = doSampled ? (0..<B).map { b in ok[b] ? aboveS[b] + 1 : cands[b].count + 1 } : nil
        return (outS, outF)
    }

    /// `ids` (each in 1…numItems) reordered so that the blocks [1 + k·block, 1 + (k+1)·block)
    /// come in increasing k; within a block, in their original order.
    static func groupedByBlock(_ ids: [Int32], block: Int, numItems: Int) -> [Int32] {
        let blocks = (numItems + block - 1) / block
        if blocks <= 1 || ids.count < 2 { return ids }
        var start = [Int](repeating: 0, count: blocks + 1)
        for id in ids { start[(Int(id) - 1) / block + 1] += 1 }
        for k in 0..<blocks { start[k + 1] += start[k] }
        var out = [Int32](repeating: 0, count: ids.count)
        for id in ids { let k = (Int(id) - 1) / block; out[start[k]] = id; start[k] += 1 }
        return out
    }
}
