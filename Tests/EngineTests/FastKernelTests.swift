import XCTest
import CKernels
import Common
import Engine
import TestKit

/// The vectorised C kernels against the plain Swift reference kernels.
final class FastKernelTests: XCTestCase {
    var rng = SeededRNG(seed: 21)

    func testExpIsAccurateOverTheRange() {
        let xs: [Float] = stride(from: -87, through: 88, by: 0.37).map { Float($0) } + [0, -0, 1e-8, -1e-8, 0.5, -0.5]
        var ys = [Float](repeating: 0, count: xs.count)
        ck_exp(xs.count, xs, &ys)
        for (x, y) in zip(xs, ys) {
            let ref = Float(exp(Double(x)))
            XCTAssertEqual(y, ref, accuracy: 4 * ref.ulp, "exp(\(x))")
        }
    }

    func testSwiGLUMatchesReference() {
        let n = 1037
        let g = randomArray(n, &rng, scale: 4), u = randomArray(n, &rng), dy = randomArray(n, &rng)
        var a = [Float](repeating: 0, count: n), b = a
        swigluForward(out: &a, gate: g, up: u, count: n)
        ck_swiglu_forward(n, g, u, &b)
        XCTAssertTrue(allClose(b, a, atol: 1e-6, rtol: 1e-5).ok)
        var dg1 = a, du1 = a, dg2 = a, du2 = a
        swigluBackward(dgate: &dg1, dup: &du1, dout: dy, gate: g, up: u, count: n)
        ck_swiglu_backward(n, dy, g, u, &dg2, &du2)
        XCTAssertTrue(allClose(dg2, dg1, atol: 1e-6, rtol: 1e-5).ok)
        XCTAssertTrue(allClose(du2, du1, atol: 1e-6, rtol: 1e-5).ok)
    }

    func testRMSNormMatchesReference() {
        let m = 5, c = 67
        let x = randomArray(m * c, &rng), w = randomArray(c, &rng), dy = randomArray(m * c, &rng)
        var y1 = [Float](repeating: 0, count: m * c), y2 = y1, r1 = [Float](repeating: 0, count: m), r2 = r1
        rmsnormForward(out: &y1, rstd: &r1, inp: x, weight: w, m: m, c: c, eps: 1e-6)
        ck_rmsnorm_forward(m, c, x, w, 1e-6, &y2, &r2)
        XCTAssertTrue(allClose(y2, y1, atol: 1e-6, rtol: 1e-5).ok)
        var dx1 = [Float](repeating: 0.5, count: m * c), dx2 = dx1, dw1 = [Float](repeating: 0.25, count: c), dw2 = dw1
        rmsnormBackward(dinp: &dx1, dweight: &dw1, dout: dy, inp: x, weight: w, rstd: r1, m: m, c: c)
        ck_rmsnorm_backward(m, c, dy, x, w, r2, &dx2, &dw2)
        XCTAssertTrue(allClose(dx2, dx1, atol: 1e-5, rtol: 1e-4).ok, "accumulates into dx")
        XCTAssertTrue(allClose(dw2, dw1, atol: 1e-5, rtol: 1e-4).ok, "accumulates into dw")
    }

    func testSoftmax() {
        var x = randomArray(33, &rng, scale: 10)
        let ref: [Double] = { let m = x.max()!; let e = x.map { exp(Double($0 - m)) }; let s = e.reduce(0, +); return e.map { $0 / s } }()
        ck_softmax_inplace(x.count, &x)
        for (a, b) in zip(x, ref) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
    }
}
