import Foundation
import XCTest
import Common
import Engine
@testable import Evaluation

/// StreamedRanking (Engine/Kernels) against the reference: materialise U·Eᵀ with the same
/// sgemm, rank with Ranking.rankFull / Ranking.rank, and require every rank to be identical.
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
            sgemm(.none, .transpose, m: B, n: cols, k: c.dim, a: u.baseAddress!, lda: c.dim, b: t.baseAddress!, ldb: c.dim,
                  c: s.baseAddress!, ldc: cols)
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

    /// Real-valued scores: s_target from the (B, B) product must be the very float the tile
    /// holds, or a near-tie would rank differently from the materialised path.
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

    /// A model that scores thousands of items alike overflows the band kept around the
    /// estimate: the batch is counted again against the exact scores, with the same ranks.
    func testManyTiesFallBackToAnExactSecondPass() {
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
}
