import XCTest
import Foundation
import ModelFormat
import Engine
import Toolbench
import TestKit
@testable import LayerPruning

final class LayerPruningTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("prune-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    /// A calibration dataset: user lines with ids in 1…11 (TinyModels' item count).
    func writeData(users: Int = 12) throws -> URL {
        let dir = tmp.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var text = ""
        for u in 1...users { text += "\(u) " + (0..<(3 + u % 6)).map { String(1 + (u * 7 + $0 * 3) % 11) }.joined(separator: " ") + "\n" }
        try text.write(to: dir.appendingPathComponent("sequences.txt"), atomically: true, encoding: .utf8)
        return dir
    }

    func testConformanceKeepFirst() throws {
        XCTAssertEqual(try PassConformance.check(PruneLayers.self, options: "{strategy: 'keep-first', keep: 2}",
                                                 checkpoint: PassConformance.tinyCheckpoint()), [])
    }

    func testConformanceBlockInfluence() throws {
        let data = try writeData()
        XCTAssertEqual(try PassConformance.check(PruneLayers.self, options: "{strategy: 'block-influence', keep: 2, data: '\(data.path)', users: 8, batch_size: 3}",
                                                 checkpoint: PassConformance.tinyCheckpoint()), [])
    }

    func testKeepListRenumbersTensorsAndConfig() throws {
        let ck = PassConformance.tinyCheckpoint(layers: 3)
        let out = LayerRenumbering.keep([0, 2], of: ck)
        XCTAssertEqual(out.config.numLayers, 2)
        XCTAssertNoThrow(try out.validate(source: "pruned"))
        for m in TensorNames.linearModules {
            XCTAssertEqual(out.tensors[TensorNames.linear(1, m) + ".weight"], ck.tensors[TensorNames.linear(2, m) + ".weight"])
            XCTAssertEqual(out.tensors[TensorNames.linear(0, m) + ".weight"], ck.tensors[TensorNames.linear(0, m) + ".weight"])
        }
        XCTAssertEqual(out.tensors["model.layers.1.input_layernorm.weight"], ck.tensors["model.layers.2.input_layernorm.weight"])
        XCTAssertNil(out.tensors["model.layers.2.input_layernorm.weight"])
        XCTAssertEqual(out.tensors[TensorNames.itemEmbedding], ck.tensors[TensorNames.itemEmbedding])
        // The pruned model computes exactly what the original computes without layer 1.
        let full = try ELLMRecModel(checkpoint: ck), pruned = try ELLMRecModel(checkpoint: out)
        let batch = try PackedBatch(sequences: TinyModels.sequences, targets: nil, dims: full.dims)
        let pb = try PackedBatch(sequences: TinyModels.sequences, targets: nil, dims: pruned.dims)
        XCTAssertEqual(pruned.forward(pb).hiddenState(1, dims: pruned.dims), full.forward(batch).hiddenState(1, dims: full.dims))
    }

    /// Zeroing o_proj and down_proj makes a layer the identity on the residual stream
    /// (x + 0 + 0), so cos(h_in, h_out) = 1 and BI = 0: it must be the one dropped.
    func makeIdentity(_ ck: inout Checkpoint, layer l: Int) {
        for m in ["o_proj", "down_proj"] {
            let name = TensorNames.linear(l, m) + ".weight"
            let t = ck.tensors[name]!
            ck.tensors[name] = Tensor(floats: [Float](repeating: 0, count: t.count), shape: t.shape)
        }
    }

    func testBlockInfluenceHandCheckable() throws {
        var ck = PassConformance.tinyCheckpoint(layers: 3)
        makeIdentity(&ck, layer: 1)
        let model = try ELLMRecModel(checkpoint: ck)
        let seqs = TinyModels.sequences
        let bi = try LayerScores.blockInfluence(model: model, sequences: seqs, batchSize: 3)
        XCTAssertEqual(bi.count, 3)
        XCTAssertEqual(bi[1], 0, accuracy: 1e-9)
        XCTAssertGreaterThan(bi[0], 1e-4)
        XCTAssertGreaterThan(bi[2], 1e-4)
        // The same number from the residual streams by hand: 1 − mean over tokens of cos(x0, x1).
        // (One sequence per forward, so each sees its own prompt rows, as ShortGPT counts them.)
        var s = 0.0, n = 0
        let C = model.dims.hidden
        for seq in seqs {
            let acts = model.forward(try PackedBatch(sequences: [seq], targets: nil, dims: model.dims), training: true)
            let a = Array(acts.residual(0)!), b = Array(acts.residual(1)!)
            for t in 0..<(a.count / C) {
                var ab = 0.0, aa = 0.0, bb = 0.0
                for i in 0..<C { let x = Double(a[t * C + i]), y = Double(b[t * C + i]); ab += x * y; aa += x * x; bb += y * y }
                s += ab / (aa.squareRoot() * bb.squareRoot())
                n += 1
            }
        }
        // The pass ran in batches of 3 + 1, this forward in one batch of 4: BLAS blocking differs
        // slightly, hence fp32-level agreement rather than bit equality.
        XCTAssertEqual(bi[0], 1 - s / Double(n), accuracy: 1e-6)
        XCTAssertEqual(LayerScores.keepHighest(bi, count: 2), [0, 2])
    }

    func testBlockInfluencePassDropsIdentityLayer() throws {
        var ck = PassConformance.tinyCheckpoint(layers: 3)
        makeIdentity(&ck, layer: 1)
        let input = tmp.appendingPathComponent("in")
        try ck.save(to: input)
        let data = try writeData()
        let o = PruneLayers.Options(strategy: .blockInfluence, keep: 2, data: data.path, users: 10, batchSize: 4)
        let ctx = PassContext(input: input, workDirectory: tmp, stage: "t", log: { _ in }, quiet: true)
        let r = try PruneLayers().apply(ctx, options: o)
        XCTAssertEqual(r.metrics["kept_layers"], .ints([0, 2]))
        XCTAssertEqual(r.checkpoint?.config.numLayers, 2)
        XCTAssertEqual(r.metrics["block_influence"]?.arrayValue?.count, 3)
    }

    /// Layers 1 and 2 as identities: hidden.1 == hidden.3, so the angular distance of the
    /// block starting at 1 with n = 2 is 0 (arccos(1)/π) and that block goes.
    func testAngularDropsIdentityBlock() throws {
        var ck = PassConformance.tinyCheckpoint(layers: 4)
        makeIdentity(&ck, layer: 1)
        makeIdentity(&ck, layer: 2)
        let model = try ELLMRecModel(checkpoint: ck)
        let d = try LayerScores.angularDistances(model: model, sequences: TinyModels.sequences, block: 2, batchSize: 2)
        XCTAssertEqual(d.count, 3)
        XCTAssertEqual(d[1], 0, accuracy: 1e-3)  // acos near 1 amplifies rounding: sqrt(2·1e-7)/π
        XCTAssertGreaterThan(d[0], 0.01)
        XCTAssertGreaterThan(d[2], 0.01)
        XCTAssertEqual(LayerScores.argmin(d), 1)
        let input = tmp.appendingPathComponent("in")
        try ck.save(to: input)
        let data = try writeData()
        let r = try PruneLayers().apply(PassContext(input: input, workDirectory: tmp, stage: "t", log: { _ in }, quiet: true),
                                        options: .init(strategy: .angular, keep: 2, data: data.path, users: 10))
        XCTAssertEqual(r.metrics["kept_layers"], .ints([0, 3]))
        XCTAssertEqual(r.metrics["dropped_block_start"], .int(1))
    }

    func testCalibrationDropsTargetsAndTruncates() throws {
        let dir = tmp.appendingPathComponent("cal")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "1 1 2 3 4 5 6 7\n2 5 6\n3 9 8 7 6\n".write(to: dir.appendingPathComponent("sequences.txt"), atomically: true, encoding: .utf8)
        let s = try CalibrationData.sequences(directory: dir, users: 3, maxLength: 3, numItems: 11)
        XCTAssertEqual(s, [[3, 4, 5], [9, 8]])  // user 2 has only its two targets: skipped
        XCTAssertEqual(try CalibrationData.sequences(directory: dir, users: 1, maxLength: 50, numItems: 11), [[1, 2, 3, 4, 5]])
        XCTAssertThrowsError(try CalibrationData.sequences(directory: dir, users: 3, maxLength: 3, numItems: 5)) {
            XCTAssertTrue("\($0)".contains("not an id in 1…5"), "\($0)")
        }
    }

    func testPreconditions() throws {
        let m = ModelSummary(PassConformance.tinyCheckpoint(layers: 3))
        XCTAssertThrowsError(try PruneLayers().check(m, options: .init(strategy: .keepFirst, keep: 4), references: [:])) {
            XCTAssertTrue("\($0)".contains("only 3 layers"), "\($0)")
        }
        XCTAssertThrowsError(try PruneLayers().check(m, options: .init(strategy: .keepList, layers: [0, 3]), references: [:]))
        var q = m
        q.config.quantization = .int8Channel(ignore: [])
        XCTAssertThrowsError(try PruneLayers().check(q, options: .init(strategy: .keepFirst, keep: 1), references: [:]))
        XCTAssertEqual(try PruneLayers().check(m, options: .init(strategy: .keepFirst, keep: 1), references: [:]).checkpoint?.numLayers, 1)
        // Options that do nothing are errors.
        XCTAssertThrowsError(try PruneLayers.Options(strategy: .keepFirst, keep: 1, data: "x").validate())
        XCTAssertThrowsError(try PruneLayers.Options(strategy: .keepList, keep: 1, layers: [0]).validate())
        XCTAssertThrowsError(try PruneLayers.Options(strategy: .blockInfluence, keep: 1).validate())
    }

    /// I/O bound: a medium checkpoint (hidden 512, 8 layers, 10,000 items) pruned end to end.
    func testMediumTiming() throws {
        let d = ModelDims(hidden: 512, intermediate: 1376, layers: 8, heads: 8, numItems: 10_000, itemDim: 64, promptLength: 4)
        let input = tmp.appendingPathComponent("medium")
        try ELLMRecModel.random(dims: d, seed: 1).checkpoint().save(to: input)
        let t0 = Date()
        let r = try PruneLayers().apply(PassContext(input: input, workDirectory: tmp, stage: "t", log: { _ in }, quiet: true),
                                        options: .init(strategy: .keepFirst, keep: 4))
        try r.checkpoint!.save(to: tmp.appendingPathComponent("out"))
        print(String(format: "prune-layers medium (load + prune + save): %.3f s", Date().timeIntervalSince(t0)))
    }
}
