import XCTest
import Foundation
import Common
import Engine
import ModelFormat
import TestKit

/// Library code the CLI commands call (init --base, grads, embed's batch file, inspect).
final class LibraryTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lib-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// A Hugging Face LLaMa directory: config.json and the trunk's tensors with a token table.
    func baseModel(layers: Int = 3, vocab: Int = 10) throws -> (URL, [String: Tensor]) {
        var d = TinyModels.dims(suffix: 0)
        d.layers = layers
        let m = TinyModels.model(d, seed: 3)
        let base = dir.appendingPathComponent("base")
        try m.checkpoint().save(to: base)
        var rng = SeededRNG(seed: 4)
        var tensors = m.checkpoint().tensors.filter { !$0.key.hasPrefix("ellmrec.") }
        tensors["model.embed_tokens.weight"] = Tensor(floats: (0..<(vocab * d.hidden)).map { _ in rng.nextNormal() }, shape: [vocab, d.hidden])
        try Safetensors.write(tensors, to: base.appendingPathComponent("model.safetensors"))
        return (base, tensors)
    }

    func testTrunkImportKeepsTheFirstLayersAndTakesThePromptFromTheTokenTable() throws {
        let (base, tensors) = try baseModel()
        var t = TrunkImport(numItems: 7)
        t.keepLayers = 2
        t.itemDim = 5
        t.promptTokenIds = [3, 0, 9]
        t.suffixTokenIds = [1]
        t.maxSeqLen = 6
        let ck = try t.wrap(base: base)
        XCTAssertEqual(ck.config.numLayers, 2)
        XCTAssertEqual(ck.config.ellmrec.numItems, 7)
        XCTAssertEqual(ck.config.ellmrec.itemDim, 5)
        XCTAssertEqual(ck.config.ellmrec.promptLength, 3)
        XCTAssertEqual(ck.config.ellmrec.suffixLength, 1)
        XCTAssertEqual(ck.config.ellmrec.maxSeqLen, 6)
        for l in 0..<2 {
            for name in [ParamName.inputNorm(l), ParamName.weight(l, .q), ParamName.weight(l, .down)] {
                XCTAssertEqual(try ck.tensors[name]?.floats(), try tensors[name]?.floats(), name)
            }
        }
        XCTAssertNil(ck.tensors[ParamName.weight(2, .q)], "layer 2 is not kept")
        XCTAssertEqual(try ck.tensors[ParamName.finalNorm]?.floats(), try tensors[ParamName.finalNorm]?.floats())
        let emb = try XCTUnwrap(tensors["model.embed_tokens.weight"]).floats(), c = TinyModels.dims().hidden
        let rows = [3, 0, 9].flatMap { emb[($0 * c)..<(($0 + 1) * c)] }
        XCTAssertEqual(try ck.tensors[ParamName.prompt]?.floats(), Array(rows))
        XCTAssertEqual(try ck.tensors[ParamName.suffix]?.floats(), Array(emb[c..<(2 * c)]))
        // The fresh head is the seed's: the same seed, the same checkpoint.
        XCTAssertEqual(try t.wrap(base: base).tensors, ck.tensors)
        // Problems name the file or the field.
        t.keepLayers = 4
        XCTAssertThrowsError(try t.wrap(base: base)) { XCTAssertTrue("\($0)".contains("num_hidden_layers"), "\($0)") }
        t.keepLayers = 1
        t.promptTokenIds = [10]
        XCTAssertThrowsError(try t.wrap(base: base)) { XCTAssertTrue("\($0)".contains("0..<10"), "\($0)") }
        XCTAssertThrowsError(try t.wrap(base: dir.appendingPathComponent("nowhere"))) { XCTAssertTrue("\($0)".contains("nowhere: no such file"), "\($0)") }
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try t.wrap(base: empty)) { XCTAssertTrue("\($0)".contains("config.json"), "\($0)") }
    }

    /// `slmrec grads` names LoRA gradients exactly as PEFT saves the adapter's tensors, so the
    /// verification script can pair them by name.
    func testLoRAGradientNamesAreTheAdaptersTensorNames() throws {
        let d = TinyModels.dims()
        let m = TinyModels.model(d)
        m.lora = LoRAWeights(dims: d, rank: 2, alpha: 4, targets: [.q, .v, .down])
        var rng = SeededRNG(seed: 2)
        m.lora?.initialise(rng: &rng)
        let batch = try PackedBatch(sequences: TinyModels.sequences, targets: TinyModels.targets, dims: d)
        let grads = m.lossGradients(batch)
        let adapter = try XCTUnwrap(m.lora).adapter(dims: d)
        let saved = dir.appendingPathComponent("adapter")
        try adapter.save(to: saved)
        let names = Set(try Safetensors.read(saved.appendingPathComponent(LoRAAdapter.weightsFile)).keys)
        XCTAssertEqual(Set(grads.keys.filter { $0 != "loss" }), Set(names.map { "grad." + $0 }))
        XCTAssertEqual(try grads["loss"]?.floats().first, m.forward(batch, training: true).loss)
        // Without an adapter: every base tensor, under its own name.
        m.lora = nil
        XCTAssertEqual(Set(m.lossGradients(batch).keys), Set(m.params.layout.names.map { "grad." + $0 } + ["loss"]))
    }

    func testBatchFileNamesTheFieldAndTheFix() throws {
        let f = dir.appendingPathComponent("b.json")
        try Data(#"{"sequences": [[1, 2], [3]], "targets": [4, 5]}"#.utf8).write(to: f)
        let b = try BatchFile.load(f)
        XCTAssertEqual(b.sequences, [[1, 2], [3]])
        XCTAssertEqual(b.targets, [4, 5])
        for (json, field) in [(#"{"sequences": [[1, 2.5]]}"#, "sequences[0][1]"), (#"{"sequences": [[1]], "targets": [1, 2]}"#, "targets"),
                              (#"{"sequences": "x"}"#, "sequences"), (#"{"sequences": [[1]], "targets": ["a"]}"#, "targets[0]")] {
            try Data(json.utf8).write(to: f)
            XCTAssertThrowsError(try BatchFile.load(f)) { XCTAssertTrue("\($0)".contains(field) && "\($0)".contains("Fix:"), "\(json): \($0)") }
        }
        try Data(#"{"sequences": [[1, 99]]}"#.utf8).write(to: f)
        XCTAssertThrowsError(try BatchFile.load(f).packed(dims: TinyModels.dims(), withTargets: false)) { XCTAssertTrue("\($0)".contains("1…11"), "\($0)") }
        XCTAssertThrowsError(try BatchFile.load(f).packed(dims: TinyModels.dims(), withTargets: true)) { XCTAssertTrue("\($0)".contains("targets"), "\($0)") }
    }

    /// A float read from a config is written back as it was read (`1e-06`, not the fp32 value
    /// 9.999999974752427e-07), through the engine's dims and a saved checkpoint.
    func testConfigFloatsAreWrittenBackAsRead() throws {
        var d = TinyModels.dims()
        d.rmsNormEps = 1e-6
        let ck = TinyModels.model(d).checkpoint()
        let out = dir.appendingPathComponent("ck")
        try ck.save(to: out)
        let text = try String(contentsOf: out.appendingPathComponent("config.json"), encoding: .utf8)
        XCTAssertTrue(text.contains("\"rms_norm_eps\": 1e-06"), text)
        let back = try Checkpoint.load(directory: out)
        XCTAssertEqual(back.config.rmsNormEps, 1e-6)
        XCTAssertEqual(ModelDims(config: back.config, inputProjBias: true, outputProjBias: true).rmsEps, Float(1e-6))
    }

    func testCheckpointSummaryGroupsEveryParameterOnce() throws {
        let ck = TinyModels.model(TinyModels.dims()).checkpoint()
        let out = dir.appendingPathComponent("ck")
        try ck.save(to: out)
        let s = try CheckpointSummary(ck, directory: out)
        XCTAssertEqual(s.parameters, ck.parameterCount)
        XCTAssertEqual(s.parametersByGroup.values.reduce(0, +), ck.parameterCount)
        XCTAssertEqual(s.parametersByGroup["item table"], ck.tensors[ParamName.itemEmbedding]?.count)
        XCTAssertEqual(s.nonEmbeddingParameters, ck.parameterCount - (ck.tensors[ParamName.itemEmbedding]?.count ?? 0))
        XCTAssertEqual(Set(s.parametersByGroup.keys), ["decoder layers", "item table", "prompt", "projections", "final norm"])
        XCTAssertEqual(CheckpointSummary.group(of: "model.layers.0.self_attn.q_proj.weight_scale"), nil, "int8 scales are not parameters")
        XCTAssertEqual(CheckpointSummary.group(of: ParamName.suffix), "prompt")
        XCTAssertFalse(s.adapterInDirectory)
    }
}
