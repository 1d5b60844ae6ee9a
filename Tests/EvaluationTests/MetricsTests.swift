import Foundation
import XCTest
@testable import Evaluation

final class RankingTests: XCTestCase {
    private func rank(_ scores: [Float], _ target: Int, _ cands: [Int32]) -> Int {
        scores.withUnsafeBufferPointer { s in cands.withUnsafeBufferPointer { Ranking.rank(scores: s, target: target, candidates: $0) } }
    }
    private func full(_ scores: [Float], _ target: Int, _ ex: [Int32]) -> Int {
        scores.withUnsafeBufferPointer { Ranking.rankFull(scores: $0, target: target, exclude: ex) }
    }

    func testSampledRank() {
        //            pad   1    2    3    4    5
        let s: [Float] = [9, 0.5, 0.9, 0.1, 0.7, 0.5]
        XCTAssertEqual(rank(s, 1, [3]), 1)
        XCTAssertEqual(rank(s, 1, [2, 3, 4]), 3)     // 0.9 and 0.7 above
        XCTAssertEqual(rank(s, 1, [5, 3]), 2)        // tie with item 5 counts against the target
        XCTAssertEqual(rank(s, 2, [1, 3, 4, 5]), 1)
    }

    func testAllEqualScoresRankLast() {
        let s = [Float](repeating: 0.25, count: 11)
        let negs: [Int32] = [2, 3, 4, 5, 6, 7, 8, 9, 10]
        XCTAssertEqual(rank(s, 1, negs), 10)
        XCTAssertEqual(full(s, 1, []), 10)
        var acc = MetricAccumulator()
        acc.add(rank: rank(s, 1, negs))
        XCTAssertEqual(acc.metrics()["HR@1"], 0)
    }

    func testNaN() {
        let s: [Float] = [0, .nan, 0.1, 0.2]
        XCTAssertEqual(rank(s, 1, [2, 3]), 3)        // NaN target: worst
        XCTAssertEqual(full(s, 1, []), 3)
        let t: [Float] = [0, 0.9, .nan, 0.2]
        XCTAssertEqual(rank(t, 1, [2, 3]), 2)        // NaN competitor beats the target
        XCTAssertEqual(full(t, 1, []), 2)
    }

    func testFullRankingMasksHistoryButNotTarget() {
        //                 pad  1    2    3    4    5    6
        let s: [Float] = [100, 0.6, 0.9, 0.8, 0.1, 0.7, 0.6]
        XCTAssertEqual(full(s, 1, []), 5)                 // 2,3,5 above; 6 ties → pessimistic
        XCTAssertEqual(full(s, 1, [2, 3]), 3)             // history 2,3 masked; 5 and tie 6 remain
        XCTAssertEqual(full(s, 1, [2, 3, 3, 2]), 3)       // duplicates count once
        XCTAssertEqual(full(s, 1, [1, 2, 3]), 3)          // the target in the history stays ranked
        XCTAssertEqual(full(s, 1, [2, 3, 5, 6]), 1)
        XCTAssertEqual(full(s, 4, [0, 99]), 6)            // pad (100) never ranked; out-of-range ignored
    }

    func testMetricsHandComputed() throws {
        var acc = MetricAccumulator()
        for r in [1, 3, 12, 25] { acc.add(rank: r) }
        let m = acc.metrics()
        XCTAssertEqual(Set(m.keys), Set(MetricAccumulator.keys))
        XCTAssertEqual(acc.count, 4)
        XCTAssertEqual(try XCTUnwrap(m["HR@1"]), 0.25, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(m["HR@5"]), 0.5, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(m["HR@10"]), 0.5, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(m["HR@20"]), 0.75, accuracy: 1e-12)
        // NDCG: 1/log2(2)=1, 1/log2(4)=0.5, 1/log2(13)
        XCTAssertEqual(try XCTUnwrap(m["NDCG@5"]), (1 + 0.5) / 4, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(m["NDCG@10"]), (1 + 0.5) / 4, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(m["NDCG@20"]), (1 + 0.5 + 1 / log2(13.0)) / 4, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(m["MRR"]), (1 + 1.0 / 3 + 1.0 / 12 + 1.0 / 25) / 4, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(m["MRR@10"]), (1 + 1.0 / 3) / 4, accuracy: 1e-12)
    }

    func testMergeEqualsSequential() {
        var a = MetricAccumulator(), b = MetricAccumulator(), all = MetricAccumulator()
        for r in [1, 2, 7] { a.add(rank: r); all.add(rank: r) }
        for r in [15, 1000] { b.add(rank: r); all.add(rank: r) }
        a.merge(b)
        XCTAssertEqual(a.count, 5)
        for k in MetricAccumulator.keys { XCTAssertEqual(a.metrics()[k] ?? -1, all.metrics()[k] ?? -2, accuracy: 1e-12) }
        XCTAssertEqual(MetricAccumulator().metrics()["HR@10"], 0)
    }
}
