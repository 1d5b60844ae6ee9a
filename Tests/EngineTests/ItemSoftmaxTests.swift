import Foundation
import XCTest
import Common
import TestKit
@testable import Engine

/// The streamed and sampled losses over items (Engine/Kernels/ItemSoftmax.swift).
final class ItemSoftmaxTests: XCTestCase {
    var rng = SeededRNG(seed: 21)

    func check(_ name: String, analytic: [Float], numeric: [Float]) {
        if let f = gradientCheckFailure(name, analytic: analytic, numeric: numeric) { XCTFail(f) }
    }

    /// The full tiled kernel (itself finite-difference tested in SASRecKernelTests).
    func full(_ u: [Float], _ table: [Float], _ targets: [Int32], rows: Int, n: Int, dim: Int) -> (loss: Double, du: [Float], dt: [Float]) {
        var du = [Float](repeating: 0, count: rows * dim), dt = [Float](repeating: 0, count: (n + 1) * dim)
        let l = targets.withUnsafeBufferPointer {
            tiedCrossEntropyForwardBackward(dh: &du, dtable: &dt, h: u, table: table, targets: $0.baseAddress!, rows: rows,
                                            cols: n + 1, dim: dim, scale: 1 / Float(rows))
        }
        return (l, du, dt)
    }

    func streamed(_ u: [Float], _ table: [Float], _ targets: [Int32], rows: Int, n: Int, dim: Int, block: Int) -> (loss: Double, du: [Float], dt: [Float]) {
        var du = [Float](repeating: 0, count: rows * dim), dt = [Float](repeating: 0, count: (n + 1) * dim)
        var lse = [Float](repeating: 0, count: rows)
        let l = targets.withUnsafeBufferPointer { tg -> Double in
            let l = ItemSoftmaxLoss.streamedForward(u: u, table: table, numItems: n, dim: dim, targets: tg.baseAddress!, rows: rows,
                                                    lse: &lse, block: block)
            ItemSoftmaxLoss.streamedBackward(du: &du, dtable: &dt, u: u, table: table, numItems: n, dim: dim, targets: tg.baseAddress!,
                                             rows: rows, lse: lse, scale: 1 / Float(rows), block: block)
            return l
        }
        return (l, du, dt)
    }

    /// Exact: the same loss and gradients as the materialised softmax, for blocks that do and do
    /// not divide N and row counts beyond one row chunk (512).
    func testStreamedEqualsFullSoftmax() {
        for (rows, n, dim) in [(5, 37, 4), (600, 1500, 16)] {
            let u = randomArray(rows * dim, &rng, scale: 2), table = randomArray((n + 1) * dim, &rng)
            let targets = (0..<rows).map { _ in Int32(1 + rng.nextInt(below: n)) }
            let ref = full(u, table, targets, rows: rows, n: n, dim: dim)
            for block in [1, 10, 256, 8192] where !(rows > 100 && block < 10) {
                let s = streamed(u, table, targets, rows: rows, n: n, dim: dim, block: block)
                XCTAssertEqual(s.loss, ref.loss, accuracy: 1e-5 * abs(ref.loss), "loss, block \(block)")
                XCTAssertTrue(allClose(s.du, ref.du, atol: 1e-6, rtol: 1e-4).ok, "du, block \(block): \(allClose(s.du, ref.du, atol: 1e-6, rtol: 1e-4).cmp)")
                XCTAssertTrue(allClose(s.dt, ref.dt, atol: 1e-6, rtol: 1e-4).ok, "dtable, block \(block): \(allClose(s.dt, ref.dt, atol: 1e-6, rtol: 1e-4).cmp)")
                XCTAssertEqual(Array(s.dt[0..<dim]), [Float](repeating: 0, count: dim), "the padding row is never a class")
            }
        }
    }

    func testStreamedMatchesFiniteDifferences() {
        let rows = 4, n = 23, dim = 3
        var u = randomArray(rows * dim, &rng), table = randomArray((n + 1) * dim, &rng)
        let targets: [Int32] = [1, 23, 7, 7]
        let s = streamed(u, table, targets, rows: rows, n: n, dim: dim, block: 5)
        func loss(_ u: [Float], _ t: [Float]) -> Double { streamed(u, t, targets, rows: rows, n: n, dim: dim, block: 5).loss / Double(rows) }
        let (u0, t0) = (u, table)
        check("du", analytic: s.du, numeric: numericGradient(&u, eps: 1e-2) { loss($0, t0) })
        check("dtable", analytic: s.dt, numeric: numericGradient(&table, eps: 1e-2) { loss(u0, $0) })
    }

    func sampled(_ u: [Float], _ table: [Float], _ targets: [Int32], rows: Int, dim: Int, sample: SampledItems) -> (loss: Double, du: [Float], dt: [Float]) {
        var du = [Float](repeating: 0, count: rows * dim), dt = [Float](repeating: 0, count: table.count)
        let l = targets.withUnsafeBufferPointer {
            ItemSoftmaxLoss.sampled(du: &du, dtable: &dt, u: u, table: table, dim: dim, targets: $0.baseAddress!, rows: rows,
                                    sample: sample, scale: 1 / Float(rows))
        }
        return (l, du, dt)
    }

    /// The log-Q-corrected loss and its gradient, with repeated negatives and accidental hits.
    func testSampledMatchesFiniteDifferences() throws {
        let rows = 5, n = 30, dim = 4
        var u = randomArray(rows * dim, &rng), table = randomArray((n + 1) * dim, &rng)
        let targets: [Int32] = [3, 9, 9, 30, 1]
        var counts = (0...n).map { $0 * 3 % 17 }
        counts[0] = 0
        let sampler = try ItemSampler(distribution: .popularity, numItems: n, count: 12, counts: counts)
        var s = sampler.draw(seed: 5, step: 2)
        // Force a repeat and accidental hits of two rows' targets.
        var ids = s.ids
        ids[0] = 9; ids[1] = 9; ids[2] = 3
        s = SampledItems(ids: ids, logQ: ids.map { s.logQAll[Int($0)] }, logQAll: s.logQAll)
        let r = sampled(u, table, targets, rows: rows, dim: dim, sample: s)
        // By hand for row 0: logits over {target} ∪ negatives with −log q, hits masked.
        do {
            func dot(_ a: Int, _ item: Int) -> Double { (0..<dim).reduce(0) { $0 + Double(u[a * dim + $1]) * Double(table[item * dim + $1]) } }
            var o = [dot(0, 3) - Double(s.logQAll[3])]
            for id in ids where id != 3 { o.append(dot(0, Int(id)) - Double(s.logQAll[Int(id)])) }
            let m = o.max()!
            let lse = m + log(o.reduce(0) { $0 + exp($1 - m) })
            let r0 = sampled(Array(u[0..<dim]), table, [3], rows: 1, dim: dim, sample: s)
            XCTAssertEqual(r0.loss, lse - o[0], accuracy: 1e-5)
        }
        func loss(_ u: [Float], _ t: [Float]) -> Double { sampled(u, t, targets, rows: rows, dim: dim, sample: s).loss / Double(rows) }
        let (u0, t0) = (u, table)
        check("du", analytic: r.du, numeric: numericGradient(&u, eps: 1e-2) { loss($0, t0) })
        check("dtable", analytic: r.dt, numeric: numericGradient(&table, eps: 1e-2) { loss(u0, $0) })
    }

    /// With every item drawn once and uniform q the sampled softmax is the full one (the target
    /// is masked among the negatives, and the correction shifts every logit alike).
    func testSampledOverTheWholeCatalogueIsTheFullSoftmax() {
        let rows = 6, n = 40, dim = 5
        let u = randomArray(rows * dim, &rng), table = randomArray((n + 1) * dim, &rng)
        let targets = (0..<rows).map { _ in Int32(1 + rng.nextInt(below: n)) }
        let lq = [Float](repeating: Float(-log(Double(n))), count: n + 1)
        let s = SampledItems(ids: (1...n).map(Int32.init), logQ: [Float](repeating: lq[1], count: n), logQAll: lq)
        let a = sampled(u, table, targets, rows: rows, dim: dim, sample: s), ref = full(u, table, targets, rows: rows, n: n, dim: dim)
        XCTAssertEqual(a.loss, ref.loss, accuracy: 1e-4)
        XCTAssertTrue(allClose(a.du, ref.du, atol: 1e-6, rtol: 1e-4).ok)
        XCTAssertTrue(allClose(a.dt, ref.dt, atol: 1e-6, rtol: 1e-4).ok)
    }

    func testSamplerIsSeededAndFollowsPopularity() throws {
        let n = 50
        var counts = [Int](repeating: 0, count: n + 1)
        counts[7] = 999   // q_7 = 1000 / (1000 + 49)
        let s = try ItemSampler(distribution: .popularity, numItems: n, count: 40, counts: counts)
        let a = s.draw(seed: 1, step: 3)
        XCTAssertEqual(a, s.draw(seed: 1, step: 3), "the same (seed, step), the same negatives")
        XCTAssertNotEqual(a.ids, s.draw(seed: 1, step: 4).ids)
        let ids = (0..<100).flatMap { s.draw(seed: 1, step: $0).ids }
        let share = Double(ids.filter { $0 == 7 }.count) / Double(ids.count)
        XCTAssertEqual(share, 1000.0 / 1049, accuracy: 0.02)
        XCTAssertTrue(ids.allSatisfy { $0 >= 1 && Int($0) <= n })
        XCTAssertEqual(a.logQAll[7], Float(log(1000.0 / 1049)), accuracy: 1e-6)
        XCTAssertEqual(a.logQAll[8], Float(log(1.0 / 1049)), accuracy: 1e-6)
        let u = try ItemSampler(distribution: .uniform, numItems: n, count: 50)
        XCTAssertEqual(Set((0..<100).flatMap { u.draw(seed: 2, step: $0).ids }).count, n, "uniform reaches every item")
        XCTAssertThrowsError(try ItemSampler(distribution: .uniform, numItems: n, count: n + 1)) { e in
            XCTAssertTrue("\(e)".contains("sampled_negatives is 51") && "\(e)".contains("50 items"), "\(e)")
        }
        XCTAssertThrowsError(try ItemSampler(distribution: .popularity, numItems: n, count: 3, counts: [1, 2]))
    }

    /// The E-LLMRec model: a streamed batch has the full batch's loss and every gradient, and
    /// forms no (R, N+1) matrix.
    func testModelStreamedLossAndGradientsEqualFull() throws {
        let d = TinyModels.dims(suffix: 0)
        let m = TinyModels.model(d)
        var b = try PackedBatch(sequences: TinyModels.sequences, targets: TinyModels.targets, dims: d, objective: .allPositions)
        let ref = m.lossGradients(b)
        b.softmax = .streamed
        let a = m.forward(b, training: true)
        XCTAssertEqual(a.scores.count, 0)
        let got = m.lossGradients(b)
        XCTAssertEqual(try got["loss"]!.floats()[0], try ref["loss"]!.floats()[0], accuracy: 1e-5)
        for (k, v) in ref where k != "loss" {
            let c = allClose(try got[k]!.floats(), try v.floats(), atol: 1e-6, rtol: 1e-4)
            XCTAssertTrue(c.ok, "\(k): \(c.cmp)")
        }
        // Sampled: trains the same parameters, a different (estimated) loss.
        b.softmax = .sampled
        b.sample = try ItemSampler(distribution: .uniform, numItems: d.numItems, count: 5).draw(seed: 1, step: 0)
        let s = m.lossGradients(b)
        XCTAssertEqual(Set(s.keys), Set(ref.keys))
        XCTAssertTrue(try s["loss"]!.floats()[0].isFinite)
        XCTAssertLessThan(try s["loss"]!.floats()[0], try ref["loss"]!.floats()[0], "6 candidates instead of 11")
    }
}
