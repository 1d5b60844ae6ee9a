import Foundation
import XCTest
import Common
import Engine
@testable import Evaluation

/// StreamedRanking (Engine/Kernels) against the reference: materialise U·Eᵀ (ItemScores, the
/// scores every ranking path reads), rank with Ranking.rankFull / Ranking.rank, and require
/// every rank to be identical.
final class StreamedRankingTests: XCTestCase {
    struct Case {
        var users: [Float], table: [Float], dim: Int, n: Int
        var queries: [StreamedRanking.Query]
    }

    /// `grid`: entries drawn from {-1, 0, 1} so many dot products tie exactly (in any order of
    /// addition), which is where a pessimistic rank is easiest to get wrong.
    func makeCase(B: Int, n: Int, dim: Int, grid: Bool, seed: UInt64) -> Case {
        var rng = SeededRNG(seed: seed)
        func v() -> Float { grid ? Float(rng.nextInt(below: 3) - 1) : rng.nextNormal() }
        let users = (0..<(B * dim)).map { _ in v() }
        var table = (0..<((n + 1) * dim)).map { _ in v() }
        for j in 0..<dim { table[j] = 0 }   // padding row
        let queries = (0..<B).map { _ -> StreamedRanking.Query in
            let y = Int32(1 + rng.nextInt(below: n))
            // Histories with duplicates and sometimes the target itself (a repeat purchase).
            var hist = (0..<rng.nextInt(below: 12)).map { _ in Int32(1 + rng.nextInt(below: n)) }
            if rng.nextInt(below: 4) == 0 { hist.append(y) }
            if let h = hist.first { hist.append(h) }
            var cands = (0..<min(n, 20)).map { _ in Int32(1 + rng.nextInt(below: n)) }
            if rng.nextInt(below: 5) == 0 { cands.append(y) }   // ignored, as Ranking.rank ignores it
            return StreamedRanking.Query(target: y, history: hist, candidates: cands)
        }
        return Case(users: users, table: table, dim: dim, n: n, queries: queries)
    }

    func reference(_ c: Case) -> (sampled: [Int], full: [Int]) {
        let B = c.queries.count, cols = c.n + 1
        var scores = [Float](repeating: 0, count: B * cols)
        c.users.withUnsafeBufferPointer { u in c.table.withUnsafeBufferPointer { t in scores.withUnsafeMutableBufferPointer { s in
            ItemScores.tile(users: u.baseAddress!, count: B, dim: c.dim, table: t.baseAddress!, from: 0, n: cols, out: s.baseAddress!, ldo: cols)
        }}}
        var rs: [Int] = [], rf: [Int] = []
        scores.withUnsafeBufferPointer { s in
            for (b, q) in c.queries.enumerated() {
                let row = UnsafeBufferPointer(rebasing: s[(b * cols)..<((b + 1) * cols)])
                rf.append(Ranking.rankFull(scores: row, target: Int(q.target), exclude: q.history))
                rs.append(q.candidates!.withUnsafeBufferPointer { Ranking.rank(scores: row, target: Int(q.target), candidates: $0) })
            }
        }
        return (rs, rf)
    }

    func streamed(_ c: Case, block: Int) -> (sampled: [Int], full: [Int]) {
        let r = c.users.withUnsafeBufferPointer { u in c.table.withUnsafeBufferPointer { t in
            StreamedRanking.ranks(users: u.baseAddress!, dim: c.dim, table: t.baseAddress!, numItems: c.n, queries: c.queries,
                                  full: true, block: block)
        }}
        return (r.sampled!, r.full!)
    }

    func testEqualsMaterialisedRanksWithExactTies() {
        for (B, n, dim) in [(1, 5, 3), (37, 300, 8), (256, 1000, 16)] {
            let c = makeCase(B: B, n: n, dim: dim, grid: true, seed: UInt64(B * n))
            let ref = reference(c)
            if B > 1 { XCTAssertGreaterThan(Set(ref.full).count, 1, "the case must not be degenerate") }
            for block in [1, 7, 64, 8192] {
                let s = streamed(c, block: block)
                XCTAssertEqual(s.full, ref.full, "full, B \(B) n \(n) block \(block)")
                XCTAssertEqual(s.sampled, ref.sampled, "sampled, B \(B) n \(n) block \(block)")
            }
        }
    }

    /// Real-valued scores: a near-tie must rank as in the whole row, so every tile must hold
    /// the whole row's floats (ItemScores' shape-independent products).
    func testEqualsMaterialisedRanksWithFloatScores() {
        for (B, n, dim) in [(3, 2000, 64), (256, 5000, 64), (200, 777, 576)] {
            let c = makeCase(B: B, n: n, dim: dim, grid: false, seed: 7 + UInt64(B))
            let ref = reference(c)
            for block in [100, 1024, 8192] {
                let s = streamed(c, block: block)
                XCTAssertEqual(s.full, ref.full, "full, B \(B) n \(n) dim \(dim) block \(block)")
                XCTAssertEqual(s.sampled, ref.sampled, "sampled, B \(B) n \(n) dim \(dim) block \(block)")
            }
        }
    }

    /// A model that scores thousands of items alike: every one of them ties with the target.
    func testManyTies() {
        var c = makeCase(B: 9, n: 6000, dim: 4, grid: true, seed: 11)
        for j in 0..<(4 * 4) { c.users[j] = 0 }   // users 0–3 score every item 0
        let ref = reference(c), s = streamed(c, block: 512)
        XCTAssertEqual(s.full, ref.full)
        XCTAssertEqual(s.sampled, ref.sampled)
        XCTAssertEqual(s.full[0], 6000 - Set(c.queries[0].history.filter { $0 != c.queries[0].target }).count)
    }

    /// A NaN target score ranks last; a NaN competitor counts against the target (Ranking's rule).
    func testNaNScores() {
        var c = makeCase(B: 4, n: 50, dim: 4, grid: true, seed: 3)
        // User 0's vector NaN: every score NaN, so the worst rank under both protocols.
        for j in 0..<4 { c.users[j] = .nan }
        // Item 10's row NaN: it beats every other user's target.
        for j in 0..<4 { c.table[10 * 4 + j] = .nan }
        let ref = reference(c), s = streamed(c, block: 8)
        XCTAssertEqual(s.full, ref.full)
        XCTAssertEqual(s.sampled, ref.sampled)
        let distinct = Set(c.queries[0].history.filter { $0 != c.queries[0].target }).count
        XCTAssertEqual(s.full[0], 50 - distinct)
    }

    /// ItemScores' floats do not depend on the block, the batch or the offset (sgemm's do), and
    /// `score` is the same float; the values agree with sgemm to fp32 rounding.
    func testItemScoresAreShapeIndependent() {
        let B = 37, n = 1000, dim = 64
        let c = makeCase(B: B, n: n, dim: dim, grid: false, seed: 5)
        let cols = n + 1
        var whole = [Float](repeating: 0, count: B * cols), ref = whole
        c.users.withUnsafeBufferPointer { u in c.table.withUnsafeBufferPointer { t in
            ItemScores.tile(users: u.baseAddress!, count: B, dim: dim, table: t.baseAddress!, from: 0, n: cols, out: &whole, ldo: cols)
            sgemm(.none, .transpose, m: B, n: cols, k: dim, a: u.baseAddress!, lda: dim, b: t.baseAddress!, ldb: dim, c: &ref, ldc: cols)
            for (b0, j0, bn, jn) in [(0, 1, 5, 77), (3, 500, 34, 501), (36, 999, 1, 2)] {
                var part = [Float](repeating: 0, count: bn * jn)
                ItemScores.tile(users: u.baseAddress! + b0 * dim, count: bn, dim: dim, table: t.baseAddress!, from: j0, n: jn, out: &part, ldo: jn)
                for b in 0..<bn { for j in 0..<jn {
                    XCTAssertEqual(part[b * jn + j].bitPattern, whole[(b0 + b) * cols + j0 + j].bitPattern)
                    XCTAssertEqual(ItemScores.score(u.baseAddress! + (b0 + b) * dim, t.baseAddress! + (j0 + j) * dim, dim: dim).bitPattern,
                                   whole[(b0 + b) * cols + j0 + j].bitPattern)
                }}
            }
        }}
        XCTAssertTrue(allCloseLocal(whole, ref, atol: 1e-4, rtol: 1e-5))
    }

    func allCloseLocal(_ a: [Float], _ b: [Float], atol: Float, rtol: Float) -> Bool {
        zip(a, b).allSatisfy { abs($0 - $1) <= atol + rtol * abs($1) }
    }
}
