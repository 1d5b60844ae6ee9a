import XCTest
import Foundation
import ModelFormat
import Engine
import Common
import Toolbench
import TestKit
@testable import LoRAMerge

final class LoRAMergeTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("merge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    /// A random adapter for a checkpoint (B non-zero, so the merge changes something).
    static func adapter(for ck: Checkpoint, r: Int = 2, targets: [String] = ["q_proj", "v_proj", "down_proj"]) -> LoRAAdapter {
        var rng = SeededRNG(seed: 3)
        var w: [String: (a: Tensor, b: Tensor)] = [:]
        for l in 0..<ck.config.numLayers {
            for m in targets {
                let s = TensorNames.linearShape(m, ck.config)
                w[TensorNames.linear(l, m)] = (Tensor(floats: (0..<(r * s[1])).map { _ in rng.nextNormal() * 0.1 }, shape: [r, s[1]]),
                                               Tensor(floats: (0..<(s[0] * r)).map { _ in rng.nextNormal() * 0.1 }, shape: [s[0], r]))
            }
        }
        return LoRAAdapter(r: r, alpha: 6, targetModules: targets, weights: w)
    }

    func testConformance() throws {
        let ck = PassConformance.tinyCheckpoint()
        let dir = tmp.appendingPathComponent("adapter")
        try Self.adapter(for: ck).save(to: dir)
        XCTAssertEqual(try PassConformance.check(LoRAMerge.self, options: "{adapter: '\(dir.path)'}", checkpoint: ck), [])
    }

    /// PEFT's merge_and_unload on the golden fixtures: merged.* tensors to fp32 rounding.
    func testMatchesPEFTMergeOnGoldenFixtures() throws {
        guard let shared = SharedData.directory() else { throw XCTSkip("../shared fixtures are not available") }
        for fixture in ["tiny-public", "tiny-suffix"] {
            let root = shared.appendingPathComponent("fixtures/\(fixture)")
            let ck = try Checkpoint.load(directory: root.appendingPathComponent("checkpoint"))
            let ad = try LoRAAdapter.load(directory: root.appendingPathComponent("adapter"))
            let merged = try ck.merging(ad, source: "test")
            let golden = try SafetensorsFile(url: root.appendingPathComponent("golden.safetensors"))
            var compared = 0
            for name in golden.names where name.hasPrefix("merged.") {
                let ours = try XCTUnwrap(merged.tensors[String(name.dropFirst("merged.".count))]).floats()
                let (ok, cmp) = allClose(ours, try golden.floats(name), atol: 1e-6, rtol: 1e-5)
                XCTAssertTrue(ok, "\(fixture) \(name): \(cmp)")
                compared += 1
            }
            XCTAssertEqual(compared, ck.config.numLayers * 7, fixture)
        }
    }

    func testMathAndDtype() throws {
        var ck = PassConformance.tinyCheckpoint(layers: 2)
        let ad = Self.adapter(for: ck, r: 2, targets: ["q_proj"])
        let merged = try ck.merging(ad, source: "test")
        // By hand for one element: W[i,j] + (alpha/r)·Σ_k B[i,k]·A[k,j].
        let name = TensorNames.linear(1, "q_proj")
        let w = try ck.tensors[name + ".weight"]!.floats(), m = try merged.tensors[name + ".weight"]!.floats()
        let a = try ad.weights[name]!.a.floats(), b = try ad.weights[name]!.b.floats()
        let cols = ck.tensors[name + ".weight"]!.shape[1]
        let (i, j) = (3, 5)
        let expect = w[i * cols + j] + 3 * (b[i * 2] * a[j] + b[i * 2 + 1] * a[cols + j])
        XCTAssertEqual(m[i * cols + j], expect, accuracy: 1e-6)
        // Untargeted modules are untouched.
        XCTAssertEqual(merged.tensors[TensorNames.linear(0, "k_proj") + ".weight"], ck.tensors[TensorNames.linear(0, "k_proj") + ".weight"])
        // A bf16 checkpoint stays bf16.
        for (n, t) in ck.tensors { ck.tensors[n] = try t.converted(to: .bf16) }
        let mb = try ck.merging(ad, source: "test")
        XCTAssertEqual(mb.tensors[name + ".weight"]?.dtype, .bf16)
    }

    func testRejectsMissingAdapterAndUnsupportedOptions() throws {
        let ck = PassConformance.tinyCheckpoint()
        let m = ModelSummary(ck)
        XCTAssertThrowsError(try LoRAMerge().check(m, options: .init(), references: [:])) {
            XCTAssertTrue("\($0)".contains("no adapter"), "\($0)")
        }
        let dir = tmp.appendingPathComponent("dora")
        try Self.adapter(for: ck).save(to: dir)
        let cfgURL = dir.appendingPathComponent(LoRAAdapter.configFile)
        let text = try String(contentsOf: cfgURL, encoding: .utf8).replacingOccurrences(of: "\"use_dora\" : false", with: "\"use_dora\" : true")
            .replacingOccurrences(of: "\"use_dora\": false", with: "\"use_dora\": true")
        try text.write(to: cfgURL, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try LoRAMerge().check(m, options: .init(adapter: dir.path), references: [:])) {
            XCTAssertTrue("\($0)".contains("use_dora"), "\($0)")
        }
        var q = m
        q.config.quantization = .int8Channel(ignore: [])
        XCTAssertThrowsError(try LoRAMerge().check(q, options: .init(adapter: dir.path), references: [:]))
    }

    func testMediumTiming() throws {
        let d = ModelDims(hidden: 512, intermediate: 1376, layers: 8, heads: 8, numItems: 10_000, itemDim: 64, promptLength: 4)
        let ck = ELLMRecModel.random(dims: d, seed: 1).checkpoint()
        let input = tmp.appendingPathComponent("medium"), adDir = tmp.appendingPathComponent("ad")
        try ck.save(to: input)
        try Self.adapter(for: ck, r: 8, targets: TensorNames.linearModules).save(to: adDir)
        let t0 = Date()
        let r = try LoRAMerge().apply(PassContext(input: input, workDirectory: tmp, stage: "t", log: { _ in }, quiet: true),
                                      options: .init(adapter: adDir.path))
        try r.checkpoint!.save(to: tmp.appendingPathComponent("out"))
        print(String(format: "lora-merge medium r=8 all modules (load + merge + save): %.3f s", Date().timeIntervalSince(t0)))
    }

    /// In a recipe, `lora-merge` of a LoRA stage's own adapter (input: "ft", references:
    /// { adapter: "ft" }) merges it once: the input is handed on with that adapter merged
    /// already, and merging it again would add B·A twice.
    func testMergingAStagesOwnAdapterMergesItOnce() throws {
        struct TrainLoRA: CompressionPass {
            static let name = "train-lora"
            static let summary = "Its input plus a fixed adapter (test pass)."
            struct Options: PassOptions { static let fields: [OptionField] = [] }
            func check(_ model: ModelSummary, options: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
                PlannedOutput(checkpoint: model, adapter: true)
            }
            func apply(_ context: PassContext, options: Options) throws -> PassResult {
                let ck = try context.loadInput()
                return PassResult(checkpoint: ck, adapter: LoRAMergeTests.adapter(for: ck))
            }
        }
        let ck = PassConformance.tinyCheckpoint()
        let base = tmp.appendingPathComponent("base")
        try ck.save(to: base)
        let text = """
        { inputs: { base: '\(base.path)' }, stages: [
          { name: 'ft', pass: 'train-lora' },
          { name: 'merged', pass: 'lora-merge', input: 'ft', references: { adapter: 'ft' } },
        ] }
        """
        let plan = try Planner.plan(Recipe.parse(Data(text.utf8), path: "r.json5"), registry: PassRegistry([TrainLoRA.self, LoRAMerge.self]))
        let run = tmp.appendingPathComponent("run")
        try RecipeRunner(evaluator: nil, quiet: true).run(plan, runDirectory: run, resume: false)
        let expect = try ck.merging(Self.adapter(for: ck), source: "test")
        let got = try Checkpoint.load(directory: run.appendingPathComponent("merged/checkpoint"))
        let name = TensorNames.linear(0, "q_proj") + ".weight"
        XCTAssertNotEqual(try XCTUnwrap(expect.tensors[name]).floats(), try XCTUnwrap(ck.tensors[name]).floats())
        XCTAssertEqual(try XCTUnwrap(got.tensors[name]).floats(), try XCTUnwrap(expect.tensors[name]).floats(), "merged once, not twice")
    }
}
