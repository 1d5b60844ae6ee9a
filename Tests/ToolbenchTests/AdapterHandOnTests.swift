import XCTest
import Foundation
import ModelFormat
import Toolbench
import TestKit

/// A stage that trains LoRA hands on one model: its checkpoint with its adapter merged. The
/// stages that read it (as input or as a teacher) must see that model, not the frozen base
/// the checkpoint holds without the adapter (before this, an E4SRec LoRA teacher was
/// distilled from, pruned and quantized as its untrained base).
final class AdapterHandOnTests: XCTestCase {
    /// Writes its input and a rank-2 adapter on every q_proj (a LoRA fine-tune's outputs).
    struct LoRATrain: CompressionPass {
        static let name = "lora-train"
        static let summary = "Checkpoint plus a rank-2 q_proj adapter (test pass)."
        struct Options: PassOptions { static let fields: [OptionField] = [] }
        func check(_ model: ModelSummary, options: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
            PlannedOutput(checkpoint: model, adapter: true)
        }
        func apply(_ context: PassContext, options: Options) throws -> PassResult {
            let ck = try context.loadInput()
            return PassResult(checkpoint: ck, adapter: AdapterHandOnTests.adapter(for: ck))
        }
    }

    /// Outputs the `teacher` reference as it was handed to the pass.
    struct CopyTeacher: CompressionPass {
        static let name = "copy-teacher"
        static let summary = "Returns its teacher (test pass)."
        static let references = [ReferenceSpec("teacher", .checkpoint, required: true, "the teacher")]
        struct Options: PassOptions { static let fields: [OptionField] = [] }
        func check(_ model: ModelSummary, options: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
            PlannedOutput(checkpoint: references["teacher"]?.model)
        }
        func apply(_ context: PassContext, options: Options) throws -> PassResult {
            PassResult(checkpoint: try context.loadReference("teacher"))
        }
    }

    static func adapter(for ck: Checkpoint) -> LoRAAdapter {
        var w: [String: (a: Tensor, b: Tensor)] = [:]
        let c = ck.config.hiddenSize
        for l in 0..<ck.config.numLayers {
            let rows = ck.config.numHeads * ck.config.headDim
            w[TensorNames.linear(l, "q_proj")] = (Tensor(floats: (0..<(2 * c)).map { Float($0 % 7) * 0.01 - 0.03 }, shape: [2, c]),
                                                 Tensor(floats: (0..<(rows * 2)).map { Float($0 % 5) * 0.02 - 0.04 }, shape: [rows, 2]))
        }
        return LoRAAdapter(r: 2, alpha: 4, targetModules: ["q_proj"], weights: w)
    }

    func testInputsAndTeachersOfALoRAStageAreMerged() throws {
        let dir = try tempDir("adapter-hand-on")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = dir.appendingPathComponent("base")
        let ck = tinyCheckpoint(layers: 2)
        try ck.save(to: base)
        let text = """
        { inputs: { base: '\(base.path)' }, stages: [
          { name: 'ft', pass: 'lora-train' },
          { name: 'next', pass: 'shrink', input: 'ft', options: { layers: 2 } },
          { name: 'kd', pass: 'copy-teacher', input: 'base', references: { teacher: 'ft' } },
          { name: 'plain', pass: 'shrink', input: 'base', options: { layers: 2 } },
        ] }
        """
        let registry = PassRegistry([Shrink.self, LoRATrain.self, CopyTeacher.self])
        let plan = try Planner.plan(Recipe.parse(Data(text.utf8), path: "r.json5"), registry: registry)
        let run = dir.appendingPathComponent("run")
        try RecipeRunner(evaluator: nil, quiet: true).run(plan, runDirectory: run, resume: false)

        let merged = try ck.merging(Self.adapter(for: ck), source: "test")
        let q = TensorNames.linear(1, "q_proj") + ".weight"
        let expect = try XCTUnwrap(merged.tensors[q]).floats()
        XCTAssertNotEqual(expect, try XCTUnwrap(ck.tensors[q]).floats(), "the adapter must change the weight for this test to mean anything")
        for stage in ["next", "kd"] {
            let got = try Checkpoint.load(directory: run.appendingPathComponent("\(stage)/checkpoint"))
            XCTAssertEqual(try XCTUnwrap(got.tensors[q]).floats(), expect, "\(stage) must see ft's checkpoint with ft's adapter merged")
            let log = try String(contentsOf: run.appendingPathComponent("\(stage)/log.txt"), encoding: .utf8)
            XCTAssertTrue(log.contains("merged the adapter"), "\(stage)'s log says it merged: \(log)")
        }
        // The stage that trained keeps its checkpoint unmerged, next to its adapter (PEFT's layout).
        let ft = try Checkpoint.load(directory: run.appendingPathComponent("ft/checkpoint"))
        XCTAssertEqual(try XCTUnwrap(ft.tensors[q]).floats(), try XCTUnwrap(ck.tensors[q]).floats())
        // A stage reading a plain checkpoint merges nothing.
        let plain = try Checkpoint.load(directory: run.appendingPathComponent("plain/checkpoint"))
        XCTAssertEqual(try XCTUnwrap(plain.tensors[q]).floats(), try XCTUnwrap(ck.tensors[q]).floats())
    }
}
