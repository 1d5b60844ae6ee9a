import CKernels
import Foundation

// Ranking without a (users × N) score matrix. The pessimistic rank of a target (ties count
// against it; Evaluation/Ranking.swift is the reference and the ellmrec-checkpoint spec's
// "Ranking ties" the rule) is
//
//   full:    1 + #{i ∈ 1…N, i ≠ target, i ∉ history : s_i ≥ s_target or s_i is NaN}
//   sampled: 1 + #{c ∈ candidates, c ≠ target      : s_c ≥ s_target or s_c is NaN}
//
// so it needs no sort and no full row: the scores s = U·Eᵀ are formed one block of items at a
// time (a (B, block) tile: 8 MB at B = 256, block = 8,192, where the whole row set is 386 MB
// at Cloth's N = 377 k) and each tile is counted while it is in cache.
//
// The count needs s_target before the target's own tile comes by. A separate product
// U·E[targets]ᵀ gives it, but not always as the very float the tile holds (another sgemm
// shape may add the D products in another order), and a rank must not move by one because of
// the last bit. So the counts are taken against that estimate t̃, and every score within
// δ = 4·D·2⁻²⁴·Σ_d |u_d·e_d| of it (twice the error bound of two float dot products, Higham's
// γ_D) is kept aside; when the target's tile is reached its exact score t is known, and
//   #{s ≥ t} = #{s ≥ t̃} − #{kept s ≥ t̃} + #{kept s ≥ t},
// which is exact whenever |t − t̃| ≤ δ (every score between t and t̃ is then kept). The
// history's and the candidates' scores are read from their tiles and judged against t at the
// end. Should the band overflow (a model scoring thousands of items alike) or the bound fail,
// the batch is counted again against the exact t: the result is the materialised path's rank
// in every case (the tests compare every rank with `Ranking.rankFull` / `Ranking.rank`).

public enum StreamedRanking {
    public static let defaultBlock = 8192
    /// Scores kept near t̃ per user before the batch falls back to a second pass.
    static let bandCapacity = 2048

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

    /// Per-user state of one pass.
    struct UserScan {
        var above = 0           // #{s ≥ threshold or NaN} over every item seen so far
        var band: [Float] = []  // scores within δ of the threshold (estimate pass only)
        var bandCount = 0
        var exact: Float = .nan // the target's score as its tile holds it
        var excludedScores: [Float] = []
        var candidateScores: [Float] = []
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
        // Per user: sorted excluded ids (distinct, in 1…n, ≠ target) and sorted candidates
        // (in 1…n, ≠ target, with multiplicity), walked block by block.
        var excluded = [[Int32]](repeating: [], count: B), cands = excluded
        var validTarget = [Bool](repeating: false, count: B)
        for (b, q) in queries.enumerated() {
            let y = Int(q.target)
            validTarget[b] = y >= 1 && y <= n
            if full {
                var ex = q.history.filter { $0 >= 1 && Int($0) <= n && Int($0) != y }
                ex.sort()
                var w = 0
                for e in ex where w == 0 || ex[w - 1] != e { ex[w] = e; w += 1 }
                ex.removeLast(ex.count - w)
                excluded[b] = ex
            }
            if let c = q.candidates { cands[b] = c.filter { $0 >= 1 && Int($0) <= n && Int($0) != y }.sorted() }
        }
        // t̃ from U·E[targets]ᵀ (B, B) on its diagonal, and its error bound δ.
        var estimate = [Float](repeating: .nan, count: B), delta = [Float](repeating: 0, count: B)
        do {
            let et = ws.buffer("rank.targetRows", B * dim), g = ws.buffer("rank.diag", B * B)
            for (b, q) in queries.enumerated() {
                (et.ptr + b * dim).update(from: table + (validTarget[b] ? Int(q.target) : 0) * dim, count: dim)
            }
            sgemm(.none, .transpose, m: B, n: B, k: dim, a: users, lda: dim, b: et.ptr, ldb: dim, c: g.ptr, ldc: B)
            for b in 0..<B where validTarget[b] {
                estimate[b] = g.ptr[b * B + b]
                var mag = 0.0
                for d in 0..<dim { mag += abs(Double(users[b * dim + d]) * Double(et.ptr[b * dim + d])) }
                delta[b] = Float(4 * Double(dim) * 0x1p-24 * mag)
            }
        }
        let nb = max(1, min(block, n))
        let tileBuffer = ws.buffer("rank.tile", B * nb)   // held here: without a workspace it is this call's own
        let bandScratch = ws.buffer("rank.band", ParallelConfig.workers * bandCapacity)

        // One pass over the item blocks, counting against `threshold` (with a band around it
        // when `band`), and reading the target's, the history's and the candidates' scores.
        func pass(threshold: [Float], band: Bool) -> [UserScan] {
            var scans = [UserScan](repeating: UserScan(), count: B)
            let tile = tileBuffer.ptr
            var j0 = 1
            while j0 <= n {
                let cnt = min(nb, n + 1 - j0)
                sgemm(.none, .transpose, m: B, n: cnt, k: dim, a: users, lda: dim, b: table + j0 * dim, ldb: dim, c: tile, ldc: cnt)
                let jEnd = j0 + cnt
                scans.withUnsafeMutableBufferPointer { sp in
                    nonisolated(unsafe) let sp = sp
                    parallelFor(B, withWorker: true) { b, worker in
                        guard validTarget[b], !threshold[b].isNaN else { return }
                        let row = UnsafePointer(tile + b * cnt)
                        if full {
                            let t = threshold[b]
                            var lo = Float.infinity, hi = -Float.infinity   // an empty band
                            if band { lo = t - delta[b]; hi = t + delta[b] }
                            let scratch = bandScratch.ptr + worker * bandCapacity
                            var found = 0
                            sp[b].above += ck_rank_scan(cnt, row, t, lo, hi, scratch, bandCapacity, &found)
                            sp[b].bandCount += found
                            if sp[b].band.count < bandCapacity {
                                sp[b].band.append(contentsOf: UnsafeBufferPointer(start: scratch, count: min(found, bandCapacity - sp[b].band.count)))
                            }
                            for e in excluded[b] where Int(e) >= j0 && Int(e) < jEnd { sp[b].excludedScores.append(row[Int(e) - j0]) }
                        }
                        let y = Int(queries[b].target)
                        if y >= j0 && y < jEnd { sp[b].exact = row[y - j0] }
                        if doSampled {
                            for e in cands[b] where Int(e) >= j0 && Int(e) < jEnd { sp[b].candidateScores.append(row[Int(e) - j0]) }
                        }
                    }
                }
                j0 = jEnd
            }
            return scans
        }

        var scans = pass(threshold: estimate, band: true)
        // Full ranking's count against the exact score; nil where the band cannot give it.
        var counts = [Int?](repeating: nil, count: B)
        var retry = false
        if full {
            for b in 0..<B where validTarget[b] && !scans[b].exact.isNaN {
                let s = scans[b], t = s.exact, tt = estimate[b]
                if s.bandCount > bandCapacity || !(abs(t - tt) <= delta[b]) { retry = true; continue }
                counts[b] = s.above - s.band.reduce(0) { $0 + ($1 >= tt ? 1 : 0) } + s.band.reduce(0) { $0 + ($1 >= t ? 1 : 0) }
            }
        }
        if retry {
            // Second pass against the exact scores (rare: see above).
            let exact = scans.map(\.exact)
            let again = pass(threshold: exact, band: false)
            for b in 0..<B where validTarget[b] && !exact[b].isNaN && counts[b] == nil { counts[b] = again[b].above }
        }
        withExtendedLifetime(tileBuffer) {}
        withExtendedLifetime(bandScratch) {}

        // A NaN or invalid target gets the worst rank: 1 + every competitor.
        @inline(__always) func beats(_ s: Float, _ t: Float) -> Bool { s >= t || s.isNaN }
        var outF: [Int]? = nil, outS: [Int]? = nil
        if full {
            outF = (0..<B).map { b in
                guard let c = counts[b] else { return n - excluded[b].count - (validTarget[b] ? 1 : 0) + 1 }
                let t = scans[b].exact
                // c counted the target itself (t ≥ t) and the history's items that beat it.
                return c - 1 - scans[b].excludedScores.reduce(0) { $0 + (beats($1, t) ? 1 : 0) } + 1
            }
        }
        if doSampled {
            outS = (0..<B).map { b in
                let t = scans[b].exact
                guard validTarget[b], !t.isNaN else { return cands[b].count + 1 }
                return scans[b].candidateScores.reduce(0) { $0 + (beats($1, t) ? 1 : 0) } + 1
            }
        }
        return (outS, outF)
    }
}
