import XCTest
import Common
import Engine
import TestKit

/// Finite-difference checks for the kernels SASRec adds (LayerNorm, ReLU/GELU, dropout,
/// the fused tied cross-entropy), and the fused CE against the plain reference path.
final class SASRecKernelTests: XCTestCase {
    var rng = SeededRNG(seed: 31)

    func check(_ name: String, analytic: [Float], numeric: [Float], file: StaticString = #filePath, line: UInt = #line) {
        if let f = gradientCheckFailure(name, analytic: analytic, numeric: numeric) { XCTFail(f, file: file, line: line) }
    }

    func dot(_ a: [Float], _ b: [Float]) -> Double { weightedSum(a, b) }

    func testLayerNorm() {
        let m = 3, c = 8
        var x = randomArray(m * c, &rng), w = randomArray(c, &rng).map { 1 + 0.3 * $0 }, b = randomArray(c, &rng)
        let dy = randomArray(m * c, &rng)
        func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: m * c), mu = [Float](repeating: 0, count: m), r = mu
            layernormForward(out: &y, mean: &mu, rstd: &r, inp: x, weight: w, bias: b, m: m, c: c, eps: 1e-5)
            return y
        }
        var y = [Float](repeating: 0, count: m * c), mu = [Float](repeating: 0, count: m), r = mu
        layernormForward(out: &y, mean: &mu, rstd: &r, inp: x, weight: w, bias: b, m: m, c: c, eps: 1e-5)
        // Each row of x̂ has mean 0 and variance 1.
        for i in 0..<m {
            let row = (0..<c).map { (y[i * c + $0] - b[$0]) / w[$0] }
            XCTAssertEqual(row.reduce(0, +) / Float(c), 0, accuracy: 1e-5)
            XCTAssertEqual(row.map { $0 * $0 }.reduce(0, +) / Float(c), 1, accuracy: 1e-3)
        }
        var dx = [Float](repeating: 0, count: m * c), dw = [Float](repeating: 0, count: c), db = dw
        layernormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: dy, inp: x, weight: w, mean: mu, rstd: r, m: m, c: c)
        let (x0, w0, b0) = (x, w, b)
        check("dx", analytic: dx, numeric: numericGradient(&x) { dot(f($0, w0, b0), dy) })
        check("dw", analytic: dw, numeric: numericGradient(&w) { dot(f(x0, $0, b0), dy) })
        check("db", analytic: db, numeric: numericGradient(&b) { dot(f(x0, w0, $0), dy) })
    }

    func testActivations() {
        for act in PointwiseActivation.allCases {
            let n = 40
            // Keep ReLU inputs away from the kink at 0, where differences are meaningless.
            var x = randomArray(n, &rng).map { abs($0) < 0.05 ? $0 + 0.2 : $0 }
            let dy = randomArray(n, &rng)
            func f(_ x: [Float]) -> [Float] { var y = [Float](repeating: 0, count: n); activationForward(act, out: &y, inp: x, count: n); return y }
            var dx = [Float](repeating: 0.5, count: n)   // accumulates onto existing values
            activationBackward(act, dinp: &dx, dout: dy, inp: x, count: n)
            let num = numericGradient(&x, eps: 1e-3) { dot(f($0), dy) }
            check("\(act)", analytic: dx.map { $0 - 0.5 }, numeric: num)
        }
        var y = [Float](repeating: 0, count: 3)
        activationForward(.gelu, out: &y, inp: [0, 1, -1], count: 3)
        XCTAssertEqual(y[0], 0); XCTAssertEqual(y[1], 0.8413447, accuracy: 1e-6); XCTAssertEqual(y[2], -0.1586553, accuracy: 1e-6)
    }

    func testDropout() {
        let n = 20_000
        let x = randomArray(n, &rng)
        var y = [Float](repeating: 0, count: n), mask = y
        // p = 0 is the identity and its backward passes the gradient through unchanged.
        dropoutForward(out: &y, mask: &mask, inp: x, count: n, p: 0, rng: &rng)
        XCTAssertEqual(y, x)
        var dx = [Float](repeating: 0, count: n)
        dropoutBackward(dinp: &dx, dout: x, mask: mask, count: n)
        XCTAssertEqual(dx, x)
        // p = 0.25: about a quarter dropped, the rest scaled by 4/3; backward uses the same mask.
        var r1 = SeededRNG(seed: 5), r2 = SeededRNG(seed: 5)
        dropoutForward(out: &y, mask: &mask, inp: x, count: n, p: 0.25, rng: &r1)
        let dropped = mask.filter { $0 == 0 }.count
        XCTAssertEqual(Double(dropped) / Double(n), 0.25, accuracy: 0.02)
        XCTAssertTrue(mask.allSatisfy { $0 == 0 || abs($0 - 4.0 / 3.0) < 1e-6 })
        var y2 = y, mask2 = mask
        dropoutForward(out: &y2, mask: &mask2, inp: x, count: n, p: 0.25, rng: &r2)
        XCTAssertEqual(mask2, mask, "same seed, same mask")
        // The kernel is linear in x given the mask: its gradient is the mask.
        let dy = randomArray(n, &rng)
        dx = [Float](repeating: 0, count: n)
        dropoutBackward(dinp: &dx, dout: dy, mask: mask, count: n)
        for i in 0..<n { XCTAssertEqual(dx[i], dy[i] * mask[i]) }
    }

    func testTiedCrossEntropyMatchesReferenceAndFiniteDifferences() {
        let rows = 7, cols = 13, dim = 5
        var h = randomArray(rows * dim, &rng), table = randomArray(cols * dim, &rng)
        let targets: [Int32] = (0..<rows).map { Int32(1 + $0 % (cols - 1)) }
        func loss(_ h: [Float], _ table: [Float]) -> Double {
            var s = [Float](repeating: 0, count: rows * cols), p = s, l = [Float](repeating: 0, count: rows)
            sgemmNaive(.none, .transpose, m: rows, n: cols, k: dim, a: h, lda: dim, b: table, ldb: dim, c: &s, ldc: cols)
            crossEntropyForward(losses: &l, probs: &p, scores: s, targets: targets, cols: cols)
            return l.reduce(0) { $0 + Double($1) } / Double(rows)
        }
        var dh = [Float](repeating: 0, count: rows * dim), dt = [Float](repeating: 0, count: cols * dim)
        // A chunk smaller than the row count exercises the tiling.
        let total = targets.withUnsafeBufferPointer {
            tiedCrossEntropyForwardBackward(dh: &dh, dtable: &dt, h: h, table: table, targets: $0.baseAddress!,
                                            rows: rows, cols: cols, dim: dim, scale: 1 / Float(rows), chunk: 3)
        }
        XCTAssertEqual(total / Double(rows), loss(h, table), accuracy: 1e-4)
        XCTAssertEqual(Array(dt[0..<dim]), [Float](repeating: 0, count: dim), "padding row gets no gradient")
        let (h0, t0) = (h, table)
        check("dh", analytic: dh, numeric: numericGradient(&h, eps: 1e-2) { loss($0, t0) })
        check("dtable", analytic: dt, numeric: numericGradient(&table, eps: 1e-2) { loss(h0, $0) })
    }
}
