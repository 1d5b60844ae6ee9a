import Foundation
import XCTest
import Common
@testable import ModelFormat

final class CheckpointTests: XCTestCase {
    func testLoadPublicFixture() throws {
        let ck = try Checkpoint.load(directory: try fixture("tiny-public").appendingPathComponent("checkpoint"))
        XCTAssertEqual(ck.tensors.count, 25)
        XCTAssertTrue(ck.inputProjBias)
        XCTAssertTrue(ck.outputProjBias)
        XCTAssertEqual(ck.tensors["ellmrec.item_embedding.weight"]?.shape, [51, 16])
        XCTAssertEqual(ck.tensors["model.layers.1.mlp.down_proj.weight"]?.shape, [64, 172])
        XCTAssertEqual(ck.tensors["ellmrec.prompt_embeddings"]?.shape, [2, 64])
        XCTAssertNil(ck.tensors["ellmrec.prompt_suffix_embeddings"])
        XCTAssertEqual(ck.parameterCount, (411320 - 8 - 2480) / 4)
        XCTAssertEqual(TensorNames.expected(for: ck.config, inputProjBias: true, outputProjBias: true).count, 25)
    }

    func testLoadSuffixFixture() throws {
        let ck = try Checkpoint.load(directory: try fixture("tiny-suffix").appendingPathComponent("checkpoint"))
        XCTAssertEqual(ck.tensors.count, 25)
        XCTAssertTrue(ck.inputProjBias)
        XCTAssertFalse(ck.outputProjBias)
        XCTAssertEqual(ck.tensors["ellmrec.prompt_suffix_embeddings"]?.shape, [3, 64])
        let names = TensorNames.expected(for: ck.config, inputProjBias: true, outputProjBias: false).map(\.name)
        XCTAssertEqual(names.first, "model.layers.0.input_layernorm.weight")
        XCTAssertEqual(names[1], "model.layers.0.self_attn.q_proj.weight")
        XCTAssertEqual(names.last, "ellmrec.prompt_suffix_embeddings")
        let store = try TensorStore.open(directory: try fixture("tiny-suffix").appendingPathComponent("checkpoint"))
        XCTAssertEqual(store.bytesOnDisk, 412040)
        XCTAssertEqual(store.info("ellmrec.prompt_suffix_embeddings")?.shape, [3, 64])
    }

    func testNames() {
        XCTAssertEqual(TensorNames.linear(3, "q_proj"), "model.layers.3.self_attn.q_proj")
        XCTAssertEqual(TensorNames.linear(0, "down_proj"), "model.layers.0.mlp.down_proj")
        let c = tinyConfig()
        XCTAssertEqual(TensorNames.linearShape("k_proj", c), [4, 8])
        XCTAssertEqual(TensorNames.linearShape("o_proj", c), [8, 8])
        XCTAssertEqual(TensorNames.linearShape("down_proj", c), [8, 12])
        XCTAssertTrue(TensorNames.isIgnorable("model.layers.7.self_attn.rotary_emb.inv_freq"))
        XCTAssertTrue(TensorNames.isIgnorable("lm_head.weight"))
        XCTAssertFalse(TensorNames.isIgnorable("model.norm.weight"))
        XCTAssertNil(TensorNames.expected(for: tinyConfig(prompt: 0), inputProjBias: false, outputProjBias: false)
            .first { $0.name == "ellmrec.prompt_embeddings" })
    }

    /// A NaN or Inf weight is named at load (tensor, position), in every float dtype.
    func testNonFiniteWeightsAreNamedAtLoad() throws {
        for (dtype, bad) in [(DType.f32, Float.nan), (.bf16, Float.infinity), (.f16, -Float.infinity)] {
            var ck = tinyCheckpoint(tinyConfig(suffix: 1), bias: false)
            let name = "model.layers.0.mlp.up_proj.weight"
            let t = try XCTUnwrap(ck.tensors[name])
            var v = try t.floats()
            v[t.shape[1] * 2 + 3] = bad
            ck.tensors[name] = Tensor(floats: v, shape: t.shape)
            let dir = try tempDir().appendingPathComponent("ck")
            try ck.save(to: dir, dtype: dtype)
            XCTAssertThrowsError(try Checkpoint.load(directory: dir), "\(dtype)") {
                let m = "\($0)"
                XCTAssertTrue(m.contains("model.safetensors") && m.contains("tensor \"\(name)\" holds") && m.contains("at [2, 3] (flat index \(t.shape[1] * 2 + 3)"), m)
                XCTAssertTrue(m.contains(bad.isNaN ? "NaN" : "inf"), m)
            }
        }
        // Finite extremes are not flagged.
        XCTAssertNil(Tensor(floats: [Float.greatestFiniteMagnitude, -0, .leastNonzeroMagnitude], shape: [3]).firstNonFinite())
        XCTAssertEqual(Tensor(floats: [1, 2, .nan], shape: [3], dtype: .bf16).firstNonFinite(), 2)
    }

    func testSaveLoadAndDtypeConversion() throws {
        var ck = tinyCheckpoint(tinyConfig(suffix: 1), bias: false)
        ck.tensors["model.embed_tokens.weight"] = Tensor(floats: [1, 2], shape: [1, 2])  // ignorable
        let dir = try tempDir().appendingPathComponent("ck")
        try ck.save(to: dir)
        let back = try Checkpoint.load(directory: dir)
        XCTAssertNil(back.tensors["model.embed_tokens.weight"], "ignorable tensors are dropped on read")
        ck.tensors.removeValue(forKey: "model.embed_tokens.weight")
        XCTAssertEqual(back.tensors, ck.tensors)
        XCTAssertEqual(back.config.ellmrec, ck.config.ellmrec)
        try ck.save(to: dir, dtype: .bf16)  // replaces the directory atomically
        let half = try Checkpoint.load(directory: dir)
        XCTAssertEqual(half.config.torchDtype, "bfloat16")
        XCTAssertEqual(half.tensors["model.norm.weight"]?.dtype, .bf16)
        XCTAssertEqual(try half.tensors["model.norm.weight"]?.floats(), try ck.tensors["model.norm.weight"]?.converted(to: .bf16).floats())
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)), ["config.json", "model.safetensors"])
    }

    func testInt8Layout() throws {
        var c = tinyConfig()
        c.quantization = .int8Channel(ignore: ["model.layers.1.mlp.down_proj"])
        var ck = tinyCheckpoint(c)
        for i in 0..<2 {
            for m in TensorNames.linearModules where !(i == 1 && m == "down_proj") {
                let n = TensorNames.linear(i, m)
                let s = TensorNames.linearShape(m, c)
                ck.tensors[n + ".weight"] = Tensor(int8: [Int8](repeating: 3, count: s[0] * s[1]), shape: s)
                ck.tensors[n + ".weight_scale"] = Tensor(floats: [Float](repeating: 0.01, count: s[0]), shape: [s[0], 1])
            }
        }
        try ck.validate(source: "mem")
        let dir = try tempDir().appendingPathComponent("q")
        try ck.save(to: dir, dtype: .f16)
        let back = try Checkpoint.load(directory: dir)
        XCTAssertEqual(back.tensors["model.layers.0.self_attn.q_proj.weight"]?.dtype, .i8)
        XCTAssertEqual(back.tensors["model.layers.0.self_attn.q_proj.weight_scale"]?.dtype, .f32)
        XCTAssertEqual(back.tensors["model.layers.1.mlp.down_proj.weight"]?.dtype, .f16)
        XCTAssertEqual(back.config.quantization?.ignore, ["model.layers.1.mlp.down_proj"])

        var noScale = ck
        noScale.tensors.removeValue(forKey: "model.layers.0.mlp.up_proj.weight_scale")
        assertFormatError({ try noScale.validate(source: "q-ck") }, file: "q-ck", contains: ["model.layers.0.mlp.up_proj.weight_scale", "missing"])
        var badScale = ck
        badScale.tensors["model.layers.0.mlp.up_proj.weight_scale"] = Tensor(floats: [Float](repeating: 0, count: 12), shape: [12])
        assertFormatError({ try badScale.validate(source: "q-ck") }, file: "q-ck", contains: ["weight_scale", "[12]", "[12, 1]"])
        var floatWeight = ck
        floatWeight.tensors["model.layers.0.self_attn.q_proj.weight"] = Tensor(floats: [Float](repeating: 0, count: 64), shape: [8, 8])
        assertFormatError({ try floatWeight.validate(source: "q-ck") }, file: "q-ck", contains: ["q_proj.weight", "expected I8"])
        var f16Scale = ck
        f16Scale.tensors["model.layers.0.mlp.up_proj.weight_scale"] = Tensor(floats: [Float](repeating: 0, count: 12), shape: [12, 1], dtype: .f16)
        assertFormatError({ try f16Scale.validate(source: "q-ck") }, file: "q-ck", contains: ["expected F32"])
    }

    func testValidationErrors() throws {
        let c = tinyConfig()
        let good = tinyCheckpoint(c)
        try good.validate(source: "ok")
        var missing = good
        missing.tensors.removeValue(forKey: "model.layers.1.self_attn.v_proj.weight")
        assertFormatError({ try missing.validate(source: "ck-dir") }, file: "ck-dir", contains: ["missing tensor \"model.layers.1.self_attn.v_proj.weight\"", "[4, 8]"])
        var shape = good
        shape.tensors["model.layers.0.mlp.gate_proj.weight"] = Tensor(floats: [Float](repeating: 0, count: 96), shape: [8, 12])
        assertFormatError({ try shape.validate(source: "ck-dir") }, file: "ck-dir", contains: ["model.layers.0.mlp.gate_proj.weight", "[8, 12]", "expected [12, 8]"])
        var extra = good
        extra.tensors["model.layers.2.input_layernorm.weight"] = Tensor(floats: [Float](repeating: 0, count: 8), shape: [8])
        assertFormatError({ try extra.validate(source: "ck-dir") }, file: "ck-dir", contains: ["unexpected tensor \"model.layers.2.input_layernorm.weight\""])
        var intT = good
        intT.tensors["model.norm.weight"] = Tensor(int32: [Int32](repeating: 0, count: 8), shape: [8])
        assertFormatError({ try intT.validate(source: "ck-dir") }, file: "ck-dir", contains: ["model.norm.weight", "I32"])
        var suffix = good
        suffix.tensors["ellmrec.prompt_suffix_embeddings"] = Tensor(floats: [Float](repeating: 0, count: 8), shape: [1, 8])
        assertFormatError({ try suffix.validate(source: "ck-dir") }, file: "ck-dir", contains: ["ellmrec.prompt_suffix_embeddings"])

        // The same checks run on load: a config that disagrees with the tensors names the tensor.
        let dir = try tempDir().appendingPathComponent("ck")
        try good.save(to: dir)
        var cfg = c
        cfg.intermediateSize = 10
        try cfg.write(to: dir.appendingPathComponent("config.json"))
        assertFormatError({ _ = try Checkpoint.load(directory: dir) }, file: "ck", contains: ["model.layers.0.mlp.gate_proj.weight", "[12, 8]", "expected [10, 8]"])
        // A failed save (invalid checkpoint) leaves the existing directory untouched.
        let before = try Data(contentsOf: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try missing.save(to: dir))
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("model.safetensors")), before)
    }

    func testShardedStore() throws {
        let dir = try tempDir()
        let a = Tensor(floats: [1, 2, 3], shape: [3])
        let b = Tensor(floats: [4, 5], shape: [1, 2], dtype: .f16)
        try Safetensors.write(["a": a], to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        try Safetensors.write(["b": b], to: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        let index = #"{"metadata": {"total_size": 16}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let store = try TensorStore.open(directory: dir)
        XCTAssertEqual(store.names, ["a", "b"])
        XCTAssertEqual(try store.tensor("a"), a)
        XCTAssertEqual(try store.tensor("b"), b)
        XCTAssertEqual(store.info("b")?.dtype, .f16)
        XCTAssertGreaterThan(store.bytesOnDisk, 0)

        let missingShard = #"{"weight_map": {"a": "model-00001-of-00002.safetensors", "c": "model-00003-of-00003.safetensors"}}"#
        try Data(missingShard.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        assertFormatError({ _ = try TensorStore.open(directory: dir) }, file: "model.safetensors.index.json", contains: ["model-00003-of-00003.safetensors", "missing"])
        let notInShard = #"{"weight_map": {"a": "model-00001-of-00002.safetensors", "z": "model-00002-of-00002.safetensors"}}"#
        try Data(notInShard.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        assertFormatError({ _ = try TensorStore.open(directory: dir) }, file: "model-00002-of-00002.safetensors", contains: ["\"z\"", "not in this shard"])
        let empty = try tempDir()
        assertFormatError({ _ = try TensorStore.open(directory: empty) }, file: empty.path, contains: ["model.safetensors"])
    }
}
