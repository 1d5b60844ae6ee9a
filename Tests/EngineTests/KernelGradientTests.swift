import XCTest
import Common
import Engine
import TestKit

/// A finite-difference check for every backward kernel: L = Σ out ⊙ w for a random w, so
/// dL/dout = w, and the analytic input/parameter gradients must match central differences.
final class KernelGradientTests: XCTestCase {
    var rng = SeededRNG(seed: 11)

    func check(_ name: String, analytic: [Float], numeric: [Float], file: StaticString = #filePath, line: UInt = #line) {
        if let f = gradientCheckFailure(name, analytic: analytic, numeric: numeric) { XCTFail(f, file: file, line: line) }
    }

    func dot(_ a: [Float], _ b: [Float]) -> Double { weightedSum(a, b) }

    func testLinear() {
        let m = 3, n = 5, k = 4
        var x = randomArray(m * k, &rng), wgt = randomArray(n * k, &rng), bias = randomArray(n, &rng)
        let dy = randomArray(m * n, &rng)
        func f(_ x: [Float], _ w: [Float], _ b: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: m * n)
            linearForward(out: &y, inp: x, weight: w, bias: b, m: m, n: n, k: k)
            return y
        }
        var dx = [Float](repeating: 0, count: m * k), dw = [Float](repeating: 0, count: n * k), db = [Float](repeating: 0, count: n)
        linearBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: dy, inp: x, weight: wgt, m: m, n: n, k: k)
        let (w0, b0, x0) = (wgt, bias, x)
        check("dx", analytic: dx, numeric: numericGradient(&x) { dot(f($0, w0, b0), dy) })
        check("dw", analytic: dw, numeric: numericGradient(&wgt) { dot(f(x0, $0, b0), dy) })
        check("db", analytic: db, numeric: numericGradient(&bias) { dot(f(x0, w0, $0), dy) })
    }

    func testLoRALinear() {
        let m = 3, n = 5, k = 4, r = 2
        let s: Float = 2
        var x = randomArray(m * k, &rng), a = randomArray(r * k, &rng), b = randomArray(n * r, &rng)
        let dy = randomArray(m * n, &rng)
        func f(_ x: [Float], _ a: [Float], _ b: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: m * n), xa = [Float](repeating: 0, count: m * r)
            loraForward(out: &y, xa: &xa, inp: x, a: a, b: b, scaling: s, m: m, n: n, k: k, r: r)
            return y
        }
        var xa = [Float](repeating: 0, count: m * r), y = [Float](repeating: 0, count: m * n)
        loraForward(out: &y, xa: &xa, inp: x, a: a, b: b, scaling: s, m: m, n: n, k: k, r: r)
        var dx = [Float](repeating: 0, count: m * k), da = [Float](repeating: 0, count: r * k), db = [Float](repeating: 0, count: n * r)
        var scratch = [Float](repeating: 0, count: m * r)
        loraBackward(dinp: &dx, da: &da, db: &db, scratch: &scratch, dout: dy, inp: x, xa: xa, a: a, b: b, scaling: s, m: m, n: n, k: k, r: r)
        let (x0, a0, b0) = (x, a, b)
        check("dx", analytic: dx, numeric: numericGradient(&x) { dot(f($0, a0, b0), dy) })
        check("dA", analytic: da, numeric: numericGradient(&a) { dot(f(x0, $0, b0), dy) })
        check("dB", analytic: db, numeric: numericGradient(&b) { dot(f(x0, a0, $0), dy) })
    }

    func testRMSNorm() {
        let m = 3, c = 8
        var x = randomArray(m * c, &rng), wgt = randomArray(c, &rng).map { 1 + 0.3 * $0 }
        let dy = randomArray(m * c, &rng)
        func f(_ x: [Float], _ w: [Float]) -> [Float] {
            var y = [Float](repeating: 0, count: m * c), r = [Float](repeating: 0, count: m)
            rmsnormForward(out: &y, rstd: &r, inp: x, weight: w, m: m, c: c, eps: 1e-6)
            return y
        }
        var y = [Float](repeating: 0, count: m * c), rstd = [Float](repeating: 0, count: m)
        rmsnormForward(out: &y, rstd: &rstd, inp: x, weight: wgt, m: m, c: c, eps: 1e-6)
        var dx = [Float](repeating: 0, count: m * c), dw = [Float](repeating: 0, count: c)
        rmsnormBackward(dinp: &dx, dweight: &dw, dout: dy, inp: x, weight: wgt, rstd: rstd, m: m, c: c)
        let (x0, w0) = (x, wgt)
        check("dx", analytic: dx, numeric: numericGradient(&x, eps: 1e-3) { dot(f($0, w0), dy) })
        check("dw", analytic: dw, numeric: numericGradient(&wgt, eps: 1e-3) { dot(f(x0, $0), dy) })
    }

    func testRoPE() {
        let nTok = 5, nh = 2, hd = 8
        let table = RopeTable(headDim: hd, theta: 10000, maxPositions: 16)
        let pos: [Int32] = [0, 3, 1, 7, 15]
        var x = randomArray(nTok * nh * hd, &rng)
        let dy = randomArray(nTok * nh * hd, &rng)
        func f(_ x: [Float]) -> [Float] { var y = x; ropeForward(x: &y, pos: pos, nTok: nTok, nHeads: nh, ld: nh * hd, table: table); return y }
        var dx = dy
        ropeBackward(dx: &dx, pos: pos, nTok: nTok, nHeads: nh, ld: nh * hd, table: table)
        check("dx", analytic: dx, numeric: numericGradient(&x, eps: 1e-3) { dot(f($0), dy) })
        // Position 0 is the identity; a rotation preserves each pair's norm.
        let y = f(x)
        for i in 0..<(nh * hd) { XCTAssertEqual(y[i], x[i], accuracy: 1e-6) }
    }

    func testAttentionGQA() {
        // With and without a shared prefix (the prompt rows [0, 2) seen by every sequence).
        for prefix in [0, 2] {
            let nh = 4, nkv = 2, hd = 3
            let seqStart = [prefix, prefix + 3, prefix + 4, prefix + 8]    // sequences of 3, 1 and 4 tokens
            let nTok = prefix + 8
            var q = randomArray(nTok * nh * hd, &rng), k = randomArray(nTok * nkv * hd, &rng), v = randomArray(nTok * nkv * hd, &rng)
            let dy = randomArray(nTok * nh * hd, &rng)
            let (segs, total) = attentionSegments(seqStart: seqStart, prefix: prefix, nHeads: nh)
            func f(_ q: [Float], _ k: [Float], _ v: [Float]) -> [Float] {
                var out = [Float](repeating: 0, count: nTok * nh * hd), p = [Float](repeating: 0, count: total)
                attentionForward(out: &out, probs: &p, q: q, k: k, v: v, segments: segs, nHeads: nh, nKVHeads: nkv, headDim: hd)
                return out
            }
            var out = [Float](repeating: 0, count: nTok * nh * hd), probs = [Float](repeating: 0, count: total)
            attentionForward(out: &out, probs: &probs, q: q, k: k, v: v, segments: segs, nHeads: nh, nKVHeads: nkv, headDim: hd)
            var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = [Float](repeating: 0, count: v.count)
            attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: dy, q: q, k: k, v: v, probs: probs, segments: segs, nHeads: nh, nKVHeads: nkv, headDim: hd)
            let (q0, k0, v0) = (q, k, v)
            check("dq p=\(prefix)", analytic: dq, numeric: numericGradient(&q, eps: 1e-3) { dot(f($0, k0, v0), dy) })
            check("dk p=\(prefix)", analytic: dk, numeric: numericGradient(&k, eps: 1e-3) { dot(f(q0, $0, v0), dy) })
            check("dv p=\(prefix)", analytic: dv, numeric: numericGradient(&v, eps: 1e-3) { dot(f(q0, k0, $0), dy) })
            if prefix == 0 {
                // Causality: the first token of each sequence only sees itself, so its output is its value row.
                for (s, g) in [(0, 0), (3, 0), (4, 1)] {
                    for i in 0..<hd { XCTAssertEqual(out[s * nh * hd + (g * 2) * hd + i], v[s * nkv * hd + g * hd + i], accuracy: 1e-5) }
                }
            }
        }
    }

    /// The per-row attention of fast inference computes exactly the rows of the full kernel
    /// (with and without a shared prefix, with GQA, last and middle tokens).
    func testAttentionRowsEqualTheFullKernelsRows() {
        for prefix in [0, 3] {
            let nh = 4, nkv = 2, hd = 5
            let seqStart = [prefix, prefix + 3, prefix + 4, prefix + 9]
            let nTok = prefix + 9
            let q = randomArray(nTok * nh * hd, &rng), k = randomArray(nTok * nkv * hd, &rng), v = randomArray(nTok * nkv * hd, &rng)
            let (segs, total) = attentionSegments(seqStart: seqStart, prefix: prefix, nHeads: nh)
            var full = [Float](repeating: 0, count: nTok * nh * hd), p = [Float](repeating: 0, count: total)
            attentionForward(out: &full, probs: &p, q: q, k: k, v: v, segments: segs, nHeads: nh, nKVHeads: nkv, headDim: hd)
            // (token, sequence): each sequence's last token, plus middle and first ones.
            let rows: [(Int, Int)] = [(prefix + 2, 0), (prefix + 3, 1), (prefix + 8, 2), (prefix + 5, 2), (prefix, 0)]
            let off = prefix > 0 ? 1 : 0
            var qr: [Float] = []
            for (t, _) in rows { qr += q[(t * nh * hd)..<((t + 1) * nh * hd)] }
            var out = [Float](repeating: 0, count: rows.count * nh * hd)
            attentionRowsForward(out: &out, q: qr, k: k, v: v, tokens: rows.map(\.0), rowSegments: rows.map { segs[$0.1 + off] },
                                 nHeads: nh, nKVHeads: nkv, headDim: hd)
            for (r, (t, _)) in rows.enumerated() {
                let want = Array(full[(t * nh * hd)..<((t + 1) * nh * hd)]), got = Array(out[(r * nh * hd)..<((r + 1) * nh * hd)])
                XCTAssertTrue(allClose(got, want, atol: 1e-6, rtol: 1e-5).ok, "prefix \(prefix) token \(t)")
            }
        }
    }

    /// A shared prefix gives exactly what each sequence would get with its own copy of it.
    func testSharedPrefixEqualsPerSequenceCopies() {
        let nh = 2, hd = 4, pre = 3, lens = [2, 5]
        let prefixQ = randomArray(pre * nh * hd, &rng), prefixK = randomArray(pre * nh * hd, &rng), prefixV = randomArray(pre * nh * hd, &rng)
        let own = lens.map { n in (randomArray(n * nh * hd, &rng), randomArray(n * nh * hd, &rng), randomArray(n * nh * hd, &rng)) }
        // Shared layout: [prefix, seq0, seq1].
        let q = prefixQ + own.flatMap(\.0), k = prefixK + own.flatMap(\.1), v = prefixV + own.flatMap(\.2)
        let seqStart = [pre, pre + lens[0], pre + lens[0] + lens[1]]
        let (segs, total) = attentionSegments(seqStart: seqStart, prefix: pre, nHeads: nh)
        var out = [Float](repeating: 0, count: q.count), p = [Float](repeating: 0, count: total)
        attentionForward(out: &out, probs: &p, q: q, k: k, v: v, segments: segs, nHeads: nh, nKVHeads: nh, headDim: hd)
        // Copies: [prefix, seq0, prefix, seq1] with no sharing.
        var q2: [Float] = [], k2: [Float] = [], v2: [Float] = [], starts = [0]
        for (i, n) in lens.enumerated() {
            q2 += prefixQ + own[i].0; k2 += prefixK + own[i].1; v2 += prefixV + own[i].2
            starts.append(starts.last! + pre + n)
        }
        let (segs2, total2) = attentionSegments(seqStart: starts, prefix: 0, nHeads: nh)
        var out2 = [Float](repeating: 0, count: q2.count), p2 = [Float](repeating: 0, count: total2)
        attentionForward(out: &out2, probs: &p2, q: q2, k: k2, v: v2, segments: segs2, nHeads: nh, nKVHeads: nh, headDim: hd)
        let row = nh * hd
        for (i, n) in lens.enumerated() {
            let a = Array(out[(seqStart[i] * row)..<((seqStart[i] + n) * row)])
            let b = Array(out2[((starts[i] + pre) * row)..<((starts[i] + pre + n) * row)])
            XCTAssertTrue(allClose(a, b, atol: 1e-6, rtol: 1e-5).ok, "sequence \(i)")
        }
    }

    func testSwiGLU() {
        let n = 10
        var g = randomArray(n, &rng, scale: 2), u = randomArray(n, &rng)
        let dy = randomArray(n, &rng)
        func f(_ g: [Float], _ u: [Float]) -> [Float] { var y = [Float](repeating: 0, count: n); swigluForward(out: &y, gate: g, up: u, count: n); return y }
        var dg = [Float](repeating: 0, count: n), du = [Float](repeating: 0, count: n)
        swigluBackward(dgate: &dg, dup: &du, dout: dy, gate: g, up: u, count: n)
        let (g0, u0) = (g, u)
        check("dgate", analytic: dg, numeric: numericGradient(&g, eps: 1e-3) { dot(f($0, u0), dy) })
        check("dup", analytic: du, numeric: numericGradient(&u, eps: 1e-3) { dot(f(g0, $0), dy) })
    }

    func testEmbeddingScatterAdd() {
        let dim = 3
        var table = randomArray(5 * dim, &rng)
        let ids: [Int32] = [2, 4, 2, 1]
        let dy = randomArray(ids.count * dim, &rng)
        func f(_ t: [Float]) -> [Float] { var y = [Float](repeating: 0, count: ids.count * dim); embeddingForward(out: &y, table: t, ids: ids, dim: dim); return y }
        var dt = [Float](repeating: 0, count: table.count)
        embeddingBackward(dtable: &dt, dout: dy, ids: ids, dim: dim)
        check("dtable", analytic: dt, numeric: numericGradient(&table, eps: 1e-3) { dot(f($0), dy) })
        XCTAssertEqual(dt[0], 0)   // row 0 (padding) never used, never updated
    }

    func testCrossEntropy() {
        let r = 3, cols = 6
        var s = randomArray(r * cols, &rng, scale: 2)
        let targets: [Int32] = [1, 5, 3]
        func f(_ s: [Float]) -> Double {
            var l = [Float](repeating: 0, count: r), p = [Float](repeating: 0, count: r * cols)
            crossEntropyForward(losses: &l, probs: &p, scores: s, targets: targets, cols: cols)
            return l.reduce(0) { $0 + Double($1) } / Double(r)
        }
        var l = [Float](repeating: 0, count: r), p = [Float](repeating: 0, count: r * cols)
        crossEntropyForward(losses: &l, probs: &p, scores: s, targets: targets, cols: cols)
        var ds = [Float](repeating: 0, count: r * cols)
        crossEntropyBackward(dscores: &ds, probs: p, targets: targets, cols: cols, scale: 1 / Float(r))
        check("dscores", analytic: ds, numeric: numericGradient(&s, eps: 1e-3, f))
        for i in 0..<r { XCTAssertEqual(ds[i * cols], 0, "column 0 (padding item) is not a class") }
    }

    func testSgemmMatchesNaive() {
        for (ta, tb) in [(Transpose.none, Transpose.none), (.none, .transpose), (.transpose, .none), (.transpose, .transpose)] {
            for (m, n, k) in [(1, 1, 1), (7, 5, 3), (33, 17, 65), (64, 3, 128)] {
                let a = randomArray(m * k, &rng), b = randomArray(k * n, &rng)
                var c1 = randomArray(m * n, &rng)
                var c2 = c1
                let lda = ta == .none ? k : m, ldb = tb == .none ? n : k
                sgemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 0.25, c: &c1, ldc: n)
                sgemmNaive(ta, tb, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 0.25, c: &c2, ldc: n)
                let (ok, cmp) = allClose(c1, c2, atol: 1e-4, rtol: 1e-4)
                XCTAssertTrue(ok, "\(ta) \(tb) \(m)x\(n)x\(k): \(cmp)")
            }
        }
    }
}
