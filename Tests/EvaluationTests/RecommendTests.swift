import XCTest
import Common
@testable import ModelEvaluation

/// The top-K selection against a full sort, on scores with ties, NaN, ±Inf and exclusions.
final class RecommendTopKTests: XCTestCase {
    func reference(_ scores: [Float], k: Int, exclude: Set<Int32>) -> [ScoredItem] {
        let all = (1..<scores.count).map { ScoredItem(item: Int32($0), score: scores[$0]) }
            .filter { $0.score.isFinite && !exclude.contains($0.item) }
        return Array(all.sorted { $0.score > $1.score || ($0.score == $1.score && $0.item < $1.item) }.prefix(k))
    }

    func testMatchesAFullSort() {
        var rng = SeededRNG(seed: 3)
        for trial in 0..<300 {
            let n = 1 + Int(rng.next() % 60)
            // Few distinct values so ties are common; some NaN and infinities.
            var scores: [Float] = [0] + (0..<n).map { _ in Float(Int(rng.next() % 7)) - 3 }
            for _ in 0..<Int(rng.next() % 3) { scores[1 + Int(rng.next() % UInt64(n))] = [.nan, .infinity, -.infinity][Int(rng.next() % 3)] }
            let exclude = Set((0..<Int(rng.next() % 10)).map { _ in Int32(1 + Int(rng.next() % UInt64(n))) })
            let k = 1 + Int(rng.next() % UInt64(n + 5))
            let got = scores.withUnsafeBufferPointer { Recommender.topK(scores: $0, k: k, exclude: exclude) }
            XCTAssertEqual(got, reference(scores, k: k, exclude: exclude), "trial \(trial)")
        }
    }

    func testEdgeCases() {
        let s: [Float] = [9, 1, 3, 2]   // index 0 is padding: never recommended
        s.withUnsafeBufferPointer {
            XCTAssertEqual(Recommender.topK(scores: $0, k: 2, exclude: []).map(\.item), [2, 3])
            XCTAssertEqual(Recommender.topK(scores: $0, k: 10, exclude: [2]).map(\.item), [3, 1], "fewer than k candidates")
            XCTAssertEqual(Recommender.topK(scores: $0, k: 0, exclude: []), [])
        }
    }
}
