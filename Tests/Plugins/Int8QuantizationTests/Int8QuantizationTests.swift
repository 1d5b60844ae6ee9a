import XCTest
import Foundation
import ModelFormat
import Engine
import Toolbench
import TestKit
@testable import Int8Quantization

final class Int8QuantizationTests: XCTestCase {
    func testConformance() throws {
        XCTAssertEqual(try PassConformance.check(QuantizeInt8.self, options: "{modules: ['q_proj', 'down_proj'], ignore: ['model.layers.0.mlp.down_proj']}",
                                                 checkpoint: PassConformance.tinyCheckpoint()), [])
    }

    /// max|row| = 127 gives scale 1, so q = round_half_even(w): 2.5 → 2, 3.5 → 4, −2.5 → −2
    /// (torch.round), and ±127 stays.
    func testScalesAndRoundHalfEven() throws {
        let w: [Float] = [127, 2.5, 3.5, -2.5, 0.49, -127, 0, 1.5,
                          0, 0, 0, 0, 0, 0, 0, 0]
        let q = try Int8Math.quantizeRows(w, rows: 2, cols: 8)
        XCTAssertEqual(q.values[0..<8].map { $0 }, [127, 2, 4, -2, 0, -127, 0, 2])
        XCTAssertEqual(q.scales, [1, 1])
        XCTAssertEqual(q.values[8..<16].map { $0 }, [Int8](repeating: 0, count: 8))
    }

    func testRoundTripErrorBoundAndFormat() throws {
        let ck = PassConformance.tinyCheckpoint(layers: 2)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("q8-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try ck.save(to: dir.appendingPathComponent("in"))
        let o = QuantizeInt8.Options(ignore: ["re:model\\.layers\\.1\\.mlp\\..*"])
        let r = try QuantizeInt8().apply(PassContext(input: dir.appendingPathComponent("in"), workDirectory: dir, stage: "t", log: { _ in }, quiet: true), options: o)
        let out = try XCTUnwrap(r.checkpoint)
        var ignore = QuantizeInt8.alwaysIgnored + o.ignore
        ignore += []  // every kind selected: no per-module entries
        XCTAssertEqual(out.config.quantization, QuantizationConfig.int8Channel(ignore: ignore))
        let quantized = TensorNames.quantizedModules(for: out.config)
        XCTAssertEqual(quantized.count, 7 + 4)
        for m in quantized {
            let wt = out.tensors[m + ".weight"]!, st = out.tensors[m + ".weight_scale"]!
            XCTAssertEqual(wt.dtype, .i8)
            XCTAssertEqual(st.dtype, .f32)
            XCTAssertEqual(st.shape, [wt.shape[0], 1])
            let w = try ck.tensors[m + ".weight"]!.floats(), q = try wt.int8s(), s = try st.floats()
            let cols = wt.shape[1]
            for row in 0..<wt.shape[0] {
                let maxAbs = w[(row * cols)..<((row + 1) * cols)].map(abs).max()!
                XCTAssertEqual(s[row], maxAbs / 127)  // exactly, as computed in fp32
                for c in 0..<cols {
                    let i = row * cols + c
                    XCTAssertEqual(q[i], Int8((w[i] / s[row]).rounded(.toNearestOrEven)))
                    XCTAssertLessThanOrEqual(abs(w[i] - Float(q[i]) * s[row]), s[row] * 0.5 * (1 + 1e-5))
                }
            }
        }
        // Float modules are bit-identical.
        XCTAssertEqual(out.tensors[TensorNames.linear(1, "up_proj") + ".weight"], ck.tensors[TensorNames.linear(1, "up_proj") + ".weight"])
        XCTAssertEqual(out.tensors[TensorNames.itemEmbedding], ck.tensors[TensorNames.itemEmbedding])
        // Per-layer relative error ‖W−Ŵ‖/‖W‖ is small for 8 bits (≈ 1/(127·√3) per row on average).
        for e in r.metrics["layer_relative_error"]?.arrayValue ?? [] { XCTAssertLessThan(e.doubleValue ?? 1, 0.02) }
        XCTAssertEqual(r.metrics["quantized_modules"], .int(11))
        XCTAssertNoThrow(try out.validate(source: "q"))
    }

    func testByteRatio() throws {
        let d = ModelDims(hidden: 64, intermediate: 128, layers: 2, heads: 4, numItems: 20, itemDim: 8)
        let ck = ELLMRecModel.random(dims: d, seed: 2).checkpoint()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("q8b-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try ck.save(to: dir)
        let r = try QuantizeInt8().apply(PassContext(input: dir, workDirectory: dir, stage: "t", log: { _ in }, quiet: true), options: .init())
        let before = r.metrics["linear_weight_bytes_before"]?.intValue ?? 0, after = r.metrics["linear_weight_bytes_after"]?.intValue ?? 1
        // fp32 → int8 + one fp32 scale per row: 4·in / (in + 4) ≥ 3.76 here.
        XCTAssertGreaterThan(Double(before) / Double(after), 3.7)
    }

    func testPreconditions() throws {
        let m = ModelSummary(PassConformance.tinyCheckpoint(layers: 2))
        var q = m
        q.config.quantization = .int8Channel(ignore: [])
        XCTAssertThrowsError(try QuantizeInt8().check(q, options: .init(), references: [:])) {
            XCTAssertTrue("\($0)".contains("already int8-quantized"), "\($0)")
        }
        XCTAssertThrowsError(try QuantizeInt8().check(m, options: .init(ignore: ["model.layers.5.mlp.up_proj"]), references: [:])) {
            XCTAssertTrue("\($0)".contains("matches no decoder linear"), "\($0)")
        }
        XCTAssertThrowsError(try QuantizeInt8.Options(modules: ["q_prj"]).validate()) {
            XCTAssertTrue("\($0)".contains("did you mean \"q_proj\""), "\($0)")
        }
        XCTAssertThrowsError(try QuantizeInt8().check(m, options: .init(ignore: ["re:.*"]), references: [:]))
        let planned = try QuantizeInt8().check(m, options: .init(modules: ["down_proj"]), references: [:])
        XCTAssertEqual(planned.checkpoint.map { TensorNames.quantizedModules(for: $0.config).count }, 2)
    }
}
