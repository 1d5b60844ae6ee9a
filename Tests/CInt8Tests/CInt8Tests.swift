import XCTest
import Foundation
import CInt8

/// Deterministic PRNG (SplitMix64).
struct SplitMix64 {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// uniform integer in lo...hi
    mutating func int(_ lo: Int, _ hi: Int) -> Int { lo + Int(next() % UInt64(hi - lo + 1)) }
    mutating func float(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
}

enum Fill { case random, allMax, allMin, mixedExtremes, full }

func makeInt8(_ count: Int, _ fill: Fill, _ rng: inout SplitMix64) -> [Int8] {
    (0..<count).map { _ in
        switch fill {
        case .random: return Int8(rng.int(-127, 127))
        case .allMax: return 127
        case .allMin: return -127
        case .mixedExtremes: return rng.int(0, 1) == 0 ? -127 : 127
        case .full: return Int8(rng.int(-128, 127))
        }
    }
}

/// ISA ids exercised by the tests: 0 portable, 1 AVX2, 2 AVX-512 VNNI, 3 AVX-VNNI (256-bit).
let allISAs: [Int32] = [0, 1, 2, 3]

final class CInt8Tests: XCTestCase {
    override func tearDown() {
        _ = cint8_set_isa(-1)
        _ = cint8_set_num_threads(0)
        super.tearDown()
    }

    /// Runs `body` for every ISA supported on this machine; returns the ISAs that ran.
    @discardableResult
    func forEachISA(_ body: (Int32) throws -> Void) rethrows -> [Int32] {
        var ran: [Int32] = []
        for isa in allISAs {
            if cint8_set_isa(isa) != isa { continue }
            ran.append(isa)
            try body(isa)
        }
        _ = cint8_set_isa(-1)
        return ran
    }

    func refGemm(_ M: Int, _ N: Int, _ K: Int, _ A: [Int8], _ B: [Int8]) -> [Int32] {
        var C = [Int32](repeating: 0, count: M * N)
        cint8_gemm_ref(Int32(M), Int32(N), Int32(K), A, B, &C)
        return C
    }

    func testISADetection() {
        let best = cint8_best_isa()
        XCTAssertEqual(cint8_set_isa(-1), best)
        XCTAssertEqual(cint8_set_isa(0), 0)
        XCTAssertEqual(String(cString: cint8_isa_name()), "portable")
        let ran = forEachISA { _ in }
        XCTAssertTrue(ran.contains(0))
        print("CInt8: best ISA = \(best), paths tested = \(ran)")
    }

    func testReferenceGemmSmall() {
        // [[1,2,3],[-4,5,-6]] x [[1,0,-1],[2,2,2]]^T
        let A: [Int8] = [1, 2, 3, -4, 5, -6]
        let B: [Int8] = [1, 0, -1, 2, 2, 2]
        XCTAssertEqual(refGemm(2, 2, 3, A, B), [-2, 12, 2, -10])
    }

    func testGemmExactAllISAsOddSizes() {
        var rng = SplitMix64(42)
        let Ms = [1, 3, 17], Ns = [1, 5, 33, 257], Ks = [1, 3, 15, 65, 688, 1377]
        let fills: [Fill] = [.random, .allMax, .allMin, .mixedExtremes]
        var checked = 0
        for M in Ms { for N in Ns { for K in Ks {
            let fa = fills[(M + N + K) % fills.count]
            let fw = fills[(M * 3 + N + K * 7) % fills.count]
            let A = makeInt8(M * K, fa, &rng)
            let W = makeInt8(N * K, fw, &rng)
            let ref = refGemm(M, N, K, A, W)
            guard let p = cint8_pack(Int32(N), Int32(K), W, nil) else { XCTFail("pack"); return }
            defer { cint8_packed_free(p) }
            XCTAssertEqual(cint8_packed_n(p), Int32(N))
            XCTAssertEqual(cint8_packed_k(p), Int32(K))
            forEachISA { isa in
                var C = [Int32](repeating: -1, count: M * N)
                cint8_gemm_packed(Int32(M), A, p, &C)
                if C != ref {
                    XCTFail("isa \(isa) M=\(M) N=\(N) K=\(K) mismatch")
                }
                checked += 1
            }
        }}}
        XCTAssertGreaterThan(checked, 0)
    }

    func testGemmExactExtremes() {
        // every value at the extremes, all sizes combos that hit tails, plus full int8 range incl. -128
        var rng = SplitMix64(7)
        for (M, N, K) in [(17, 33, 1377), (7, 257, 688), (13, 64, 256), (6, 16, 64), (5, 48, 65)] {
            for (fa, fw) in [(Fill.allMax, Fill.allMax), (.allMin, .allMax), (.allMin, .allMin),
                             (.mixedExtremes, .mixedExtremes), (.full, .full), (.full, .random)] {
                let A = makeInt8(M * K, fa, &rng)
                let W = makeInt8(N * K, fw, &rng)
                let ref = refGemm(M, N, K, A, W)
                let p = cint8_pack(Int32(N), Int32(K), W, nil)!
                defer { cint8_packed_free(p) }
                forEachISA { isa in
                    var C = [Int32](repeating: 0, count: M * N)
                    cint8_gemm_packed(Int32(M), A, p, &C)
                    XCTAssertEqual(C, ref, "isa \(isa) M=\(M) N=\(N) K=\(K) \(fa)/\(fw)")
                }
            }
        }
    }

    func testGemmExactAtMaximumK() {
        // K = 65536 with all-extreme values: |sum| up to 2^30 must stay exact on every path
        let (M, N, K) = (3, 17, 65536)
        var A = [Int8](repeating: -128, count: M * K)
        for k in 0..<K { A[K + k] = 127; A[2 * K + k] = k % 2 == 0 ? 127 : -128 }
        var W = [Int8](repeating: -128, count: N * K)
        for k in 0..<K { W[K + k] = 127; W[2 * K + k] = -127 }
        let ref = refGemm(M, N, K, A, W)
        XCTAssertEqual(ref[0], 1 << 30)
        let p = cint8_pack(Int32(N), Int32(K), W, nil)!
        defer { cint8_packed_free(p) }
        forEachISA { isa in
            var C = [Int32](repeating: 0, count: M * N)
            cint8_gemm_packed(Int32(M), A, p, &C)
            XCTAssertEqual(C, ref, "isa \(isa)")
        }
    }

    func testLinearMatchesFloatReference() {
        var rng = SplitMix64(1234)
        for (M, N, K) in [(1, 1, 1), (3, 5, 3), (17, 33, 15), (3, 257, 65), (17, 257, 688), (1, 33, 1377), (17, 5, 1377)] {
            for useBias in [false, true] {
                let A = makeInt8(M * K, .random, &rng)
                let W = makeInt8(N * K, (M + N) % 2 == 0 ? .random : .mixedExtremes, &rng)
                let aScale = (0..<M).map { i in i == 1 ? Float(0) : rng.float(1e-4, 0.05) }
                let wScale = (0..<N).map { _ in rng.float(1e-4, 0.02) }
                let bias = (0..<N).map { _ in rng.float(-2, 2) }
                let Y0 = (0..<(M * N)).map { _ in rng.float(-1, 1) }
                let ref = refGemm(M, N, K, A, W)
                let p = cint8_pack(Int32(N), Int32(K), W, wScale)!
                defer { cint8_packed_free(p) }
                var first: [Float]? = nil
                var firstAcc: [Float]? = nil
                forEachISA { isa in
                    for accumulate in [Int32(0), 1] {
                        var Y = Y0
                        if useBias {
                            cint8_linear(Int32(M), A, aScale, p, bias, &Y, accumulate)
                        } else {
                            cint8_linear(Int32(M), A, aScale, p, nil, &Y, accumulate)
                        }
                        for m in 0..<M { for n in 0..<N {
                            let prod = Double(ref[m * N + n]) * Double(aScale[m]) * Double(wScale[n])
                            let b = useBias ? Double(bias[n]) : 0
                            var expect = prod + b
                            var mag = abs(prod) + abs(b)
                            if accumulate != 0 { expect += Double(Y0[m * N + n]); mag += abs(Double(Y0[m * N + n])) }
                            let got = Double(Y[m * N + n])
                            if abs(got - expect) > 1e-6 * mag + 1e-30 {
                                XCTFail("isa \(isa) M=\(M) N=\(N) K=\(K) bias=\(useBias) acc=\(accumulate) [\(m),\(n)] got \(got) want \(expect)")
                                return
                            }
                        }}
                        // all paths bit-identical (same epilogue op order)
                        if accumulate == 0 {
                            if let f = first { XCTAssertEqual(Y, f, "isa \(isa) differs from first path") } else { first = Y }
                        } else {
                            if let f = firstAcc { XCTAssertEqual(Y, f, "isa \(isa) differs (accumulate)") } else { firstAcc = Y }
                        }
                    }
                }
            }
        }
    }

    func testQuantizeRows() {
        // row 0: zeros; row 1: ties with scale exactly 1; row 2: negative max; row 3: random long row
        let K = 40
        var X = [Float](repeating: 0, count: 4 * K)
        let ties: [Float] = [127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 4.5, -126.5, 126.5, 0.49999997, -3.5]
        let tiesExpect: [Int8] = [127, 0, 2, 2, 0, -2, -2, 4, 4, -126, 126, 0, -4]
        for i in 0..<K { X[K + i] = i < ties.count ? ties[i] : Float(i % 7) - 3.5 }
        // put ties again in the vector part of the row (indices 16..28) -> use the same values
        for i in 0..<ties.count { X[K + 16 + i] = ties[i] }
        var rng = SplitMix64(99)
        for i in 0..<K { X[2 * K + i] = rng.float(-3, 1) }
        X[2 * K + 17] = -5.25
        for i in 0..<K { X[3 * K + i] = rng.float(-10, 10) }
        var results: [[Int8]] = []
        forEachISA { isa in
            var Q = [Int8](repeating: 99, count: 4 * K)
            var S = [Float](repeating: -1, count: 4)
            cint8_quantize_rows(4, Int32(K), X, &Q, &S)
            XCTAssertEqual(S[0], 0)
            XCTAssertEqual(Array(Q[0..<K]), [Int8](repeating: 0, count: K), "isa \(isa) zero row")
            XCTAssertEqual(S[1], 1.0, "isa \(isa)")
            XCTAssertEqual(Array(Q[K..<(K + ties.count)]), tiesExpect, "isa \(isa) ties (scalar head)")
            XCTAssertEqual(Array(Q[(K + 16)..<(K + 16 + ties.count)]), tiesExpect, "isa \(isa) ties (vector part)")
            XCTAssertEqual(S[2], Float(5.25) / 127, "isa \(isa)")
            XCTAssertEqual(Q[2 * K + 17], -127, "isa \(isa) negative max")
            // reference for every element
            for m in 0..<4 {
                let s = S[m]
                for k in 0..<K {
                    let want: Int8 = s == 0 ? 0 : Int8(max(-127, min(127, (X[m * K + k] / s).rounded(.toNearestOrEven))))
                    XCTAssertEqual(Q[m * K + k], want, "isa \(isa) [\(m),\(k)]")
                }
                let mx = Q[(m * K)..<((m + 1) * K)].map { abs(Int($0)) }.max()!
                XCTAssertEqual(mx, m == 0 ? 0 : 127, "isa \(isa) row \(m): max maps to 127")
            }
            results.append(Q)
        }
        for r in results.dropFirst() { XCTAssertEqual(r, results[0]) }
    }

    func testQuantizeRandomSizesAllISAsAgree() {
        var rng = SplitMix64(5)
        for K in [1, 3, 15, 16, 17, 31, 32, 33, 65, 688, 1377] {
            let M = 3
            let X = (0..<(M * K)).map { _ in rng.float(-4, 4) * (rng.int(0, 9) == 0 ? 100 : 1) }
            var base: ([Int8], [Float])? = nil
            forEachISA { isa in
                var Q = [Int8](repeating: 0, count: M * K)
                var S = [Float](repeating: 0, count: M)
                cint8_quantize_rows(Int32(M), Int32(K), X, &Q, &S)
                if let b = base {
                    XCTAssertEqual(Q, b.0, "isa \(isa) K=\(K)")
                    XCTAssertEqual(S, b.1, "isa \(isa) K=\(K)")
                } else { base = (Q, S) }
                for m in 0..<M { XCTAssertEqual(Q[(m * K)..<((m + 1) * K)].map { abs(Int($0)) }.max(), 127) }
            }
        }
    }

    func testQuantizeNonFiniteConsistentAcrossISAs() {
        // NaN is ignored for the row max and quantizes to 0; +-Inf rows get scale inf (finite -> 0)
        let K = 37
        var X = [Float](repeating: 0, count: 3 * K)
        for k in 0..<K { X[k] = Float(k) - 18; X[K + k] = Float(k % 5); X[2 * K + k] = Float(k) }
        X[3] = .nan; X[20] = .nan            // row 0: NaNs in head and vector part
        X[K + 33] = .nan                      // row 1: NaN in the tail
        X[2 * K + 5] = .infinity               // row 2: inf
        var base: ([Int8], [Float])? = nil
        forEachISA { isa in
            var Q = [Int8](repeating: 55, count: 3 * K)
            var S = [Float](repeating: 0, count: 3)
            cint8_quantize_rows(3, Int32(K), X, &Q, &S)
            XCTAssertEqual(S[0], 18 / 127, "isa \(isa)")
            XCTAssertEqual(Q[3], 0); XCTAssertEqual(Q[20], 0); XCTAssertEqual(Q[K + 33], 0)
            XCTAssertEqual(Q[0], -127)
            if let b = base {
                XCTAssertEqual(Q, b.0, "isa \(isa)")
                XCTAssertEqual(S.map { $0.bitPattern }, b.1.map { $0.bitPattern }, "isa \(isa)")
            } else { base = (Q, S) }
        }
    }

    func testLinearF32Convenience() {
        var rng = SplitMix64(77)
        let (M, N, K) = (5, 33, 65)
        let X = (0..<(M * K)).map { _ in rng.float(-1, 1) }
        let W = makeInt8(N * K, .random, &rng)
        let ws = (0..<N).map { _ in rng.float(0.001, 0.01) }
        let bias = (0..<N).map { _ in rng.float(-1, 1) }
        let p = cint8_pack(Int32(N), Int32(K), W, ws)!
        defer { cint8_packed_free(p) }
        forEachISA { isa in
            var Q = [Int8](repeating: 0, count: M * K)
            var S = [Float](repeating: 0, count: M)
            cint8_quantize_rows(Int32(M), Int32(K), X, &Q, &S)
            var want = [Float](repeating: 0, count: M * N)
            cint8_linear(Int32(M), Q, S, p, bias, &want, 0)
            var got = [Float](repeating: 7, count: M * N)
            cint8_linear_f32(Int32(M), X, p, bias, &got)
            XCTAssertEqual(got, want, "isa \(isa)")
            var got2 = [Float](repeating: 0, count: M * N)
            var q = [Int8](repeating: 0, count: M * K)
            var s = [Float](repeating: 0, count: M)
            cint8_linear_f32_scratch(Int32(M), X, p, bias, &got2, 0, &q, &s)
            XCTAssertEqual(got2, want, "isa \(isa) scratch")
            // and close to the fp32 product (quantization error only)
            var maxErr: Float = 0, maxRef: Float = 0
            for m in 0..<M { for n in 0..<N {
                var r: Float = bias[n]
                for k in 0..<K { r += X[m * K + k] * Float(W[n * K + k]) * ws[n] }
                maxErr = max(maxErr, abs(r - got[m * N + n])); maxRef = max(maxRef, abs(r))
            }}
            XCTAssertLessThan(maxErr, 0.02 * maxRef)
        }
    }

    func testMultithreadedMatchesSingleThreaded() {
        var rng = SplitMix64(2024)
        // all above the multithreading threshold (2^24 MACs): channel-chunk mode (M < 384) and row-chunk mode
        for (M, N, K) in [(64, 257, 1377), (50, 513, 688), (400, 1376, 64), (401, 33, 1377), (1001, 5, 1377)] {
            let A = makeInt8(M * K, .random, &rng)
            let W = makeInt8(N * K, .random, &rng)
            let ref = refGemm(M, N, K, A, W)
            let ws = (0..<N).map { _ in rng.float(0.001, 0.01) }
            let aS = (0..<M).map { _ in rng.float(0.001, 0.01) }
            let p = cint8_pack(Int32(N), Int32(K), W, ws)!
            defer { cint8_packed_free(p) }
            forEachISA { isa in
                var ys: [[Float]] = []
                for t in [Int32(1), 2, 3] {
                    XCTAssertEqual(cint8_set_num_threads(t), t)
                    var C = [Int32](repeating: 0, count: M * N)
                    cint8_gemm_packed(Int32(M), A, p, &C)
                    XCTAssertEqual(C, ref, "isa \(isa) threads \(t) M=\(M) N=\(N) K=\(K)")
                    var Y = [Float](repeating: 0, count: M * N)
                    cint8_linear(Int32(M), A, aS, p, nil, &Y, 0)
                    ys.append(Y)
                }
                XCTAssertEqual(ys[0], ys[1]); XCTAssertEqual(ys[0], ys[2])
            }
        }
    }

    func testConcurrentCallersShareThePool() {
        // several threads call cint8_linear at once (pool busy -> callers fall back to running alone)
        final class Box: @unchecked Sendable {
            var results: [[Int32]]
            let lock = NSLock()
            init(_ n: Int) { results = Array(repeating: [], count: n) }
        }
        var rng = SplitMix64(31337)
        let (M, N, K) = (500, 264, 300)
        let A = makeInt8(M * K, .random, &rng)
        let W = makeInt8(N * K, .random, &rng)
        let ref = refGemm(M, N, K, A, W)
        nonisolated(unsafe) let p = cint8_pack(Int32(N), Int32(K), W, nil)!
        defer { cint8_packed_free(p) }
        forEachISA { isa in
            guard isa != 0 else { return }
            _ = cint8_set_num_threads(2)
            let box = Box(8)
            DispatchQueue.concurrentPerform(iterations: 8) { it in
                var C = [Int32](repeating: 0, count: M * N)
                for _ in 0..<3 { cint8_gemm_packed(Int32(M), A, p, &C) }
                box.lock.lock(); box.results[it] = C; box.lock.unlock()
            }
            for r in box.results { XCTAssertEqual(r, ref, "isa \(isa)") }
        }
    }

    func testPackEdgeCases() {
        XCTAssertNil(cint8_pack(0, 4, [Int8](repeating: 0, count: 4), nil))
        XCTAssertNil(cint8_pack(4, 0, [Int8](repeating: 0, count: 4), nil))
        XCTAssertNil(cint8_pack(1, 65537, [Int8](repeating: 0, count: 65537), nil))
        cint8_packed_free(nil)
        // M = 0 is a no-op
        let p = cint8_pack(2, 2, [1, 2, 3, 4], nil)!
        defer { cint8_packed_free(p) }
        var Y: [Float] = [5, 5]
        cint8_linear(0, [], [], p, nil, &Y, 0)
        XCTAssertEqual(Y, [5, 5])
    }

    /// Not a unit test: run with CINT8_BENCH=1 (release build) to print int8 GOPS.
    func testThroughputReport() throws {
        guard ProcessInfo.processInfo.environment["CINT8_BENCH"] == "1" else {
            throw XCTSkip("set CINT8_BENCH=1 to run the throughput report")
        }
        let M = 3200 // 64 sequences x 50 tokens
        let shapes: [(Int, Int)] = [(256, 256), (688, 256), (256, 688), (512, 512), (1376, 512), (512, 1376), (1376, 1376)]
        let minSeconds = Double(ProcessInfo.processInfo.environment["CINT8_BENCH_SECONDS"] ?? "") ?? 0.3
        var rng = SplitMix64(1)
        var lines: [String] = []
        func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        func lpad(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
        lines.append(pad("isa", 11) + pad("NxK", 11) + lpad("threads", 8) + lpad("GOPS", 10) + lpad("ms/call", 10))
        for (N, K) in shapes {
            let A = makeInt8(M * K, .random, &rng)
            let W = makeInt8(N * K, .random, &rng)
            let aS = [Float](repeating: 0.01, count: M)
            let ws = [Float](repeating: 0.01, count: N)
            let bias = [Float](repeating: 0.1, count: N)
            let p = cint8_pack(Int32(N), Int32(K), W, ws)!
            defer { cint8_packed_free(p) }
            var Y = [Float](repeating: 0, count: M * N)
            for isa in allISAs {
                if cint8_set_isa(isa) != isa { continue }
                if isa == 0 && (N * K > 256 * 256) { continue } // portable: only the small shape (slow)
                for threads in [Int32(1), 2] {
                    _ = cint8_set_num_threads(threads)
                    cint8_linear(Int32(M), A, aS, p, bias, &Y, 0) // warm-up
                    var iters = 0
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    var elapsed = 0.0
                    repeat {
                        cint8_linear(Int32(M), A, aS, p, bias, &Y, 0)
                        iters += 1
                        elapsed = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
                    } while elapsed < minSeconds
                    let gops = 2.0 * Double(M) * Double(N) * Double(K) * Double(iters) / elapsed * 1e-9
                    let name = String(cString: cint8_isa_name())
                    lines.append(pad(name, 11) + pad("\(N)x\(K)", 11) + lpad("\(threads)", 8)
                                 + lpad(String(format: "%.1f", gops), 10) + lpad(String(format: "%.3f", elapsed / Double(iters) * 1e3), 10))
                }
            }
        }
        _ = cint8_set_isa(-1)
        _ = cint8_set_num_threads(0)
        print("CInt8 throughput, M=\(M) (int8 ops = 2*M*N*K; includes activation shift/pad copy and float epilogue)")
        for l in lines { print(l) }
        for isa in [Int32(2), 3] where cint8_set_isa(isa) == isa {
            print(String(format: "Measured single-core peak of %@ dot-product instruction: %.0f GOPS (vpdpbusd = %d int8 ops)",
                         String(cString: cint8_isa_name()), cint8_peak_gops(), isa == 2 ? 128 : 64))
        }
        _ = cint8_set_isa(-1)
    }
}
