import XCTest
import Foundation
import Common
import Engine
import ModelFormat
import RecData
import TestKit
import Toolbench
@testable import FineTune

final class FineTuneTests: XCTestCase {
    var tmp: URL!
    var data: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        data = try TinyModels.preparePatternDataset(in: tmp)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    func testConformance() throws {
        let ck = PassConformance.tinyCheckpoint(layers: 2)
        XCTAssertEqual(try PassConformance.check(FineTune.self, options: "{data: '\(data.path)', objective: 'last', epochs: 1, valid_users: 0}", checkpoint: ck), [])
        XCTAssertEqual(try PassConformance.check(FineTune.self, options: "{data: '\(data.path)', mode: 'lora', objective: 'last', epochs: 1, lora_rank: 2}", checkpoint: ck), [])
    }

    func context(_ ck: Checkpoint) throws -> PassContext {
        let input = tmp.appendingPathComponent("in-\(UUID().uuidString)")
        try ck.save(to: input)
        return PassContext(input: input, workDirectory: tmp.appendingPathComponent("work-\(UUID().uuidString)"), stage: "test", quiet: true)
    }

    func options(_ json5: String) throws -> FineTune.Options {
        try StrictDecoding.decode(FineTune.Options.self, from: JSONText.parseJSON5(Data(json5.utf8), file: "t"), path: "options")
    }

    /// Full fine-tuning changes every trainable tensor, keeps the frozen item table, and
    /// improves validation quality over the untrained model.
    func testFullFineTuningLearns() throws {
        let ck = PassConformance.tinyCheckpoint(layers: 2)
        let o = try options("{data: '\(data.path)', objective: 'last', prefix_augmentation: true, epochs: 15, lr: 0.005, batch_size: 16, valid_users: 0, patience: 0}")
        let r = try FineTune().apply(try context(ck), options: o)
        let out = try XCTUnwrap(r.checkpoint)
        XCTAssertNil(r.adapter)
        XCTAssertEqual(out.tensors[ParamName.itemEmbedding], ck.tensors[ParamName.itemEmbedding], "item table frozen by default")
        XCTAssertNotEqual(out.tensors[ParamName.weight(0, .q)], ck.tensors[ParamName.weight(0, .q)])
        let history = try XCTUnwrap(r.metrics["history"]?.arrayValue)
        let first = try XCTUnwrap(history.first?.objectValue?["valid_MRR"]?.doubleValue)
        let best = try XCTUnwrap(r.metrics["best_valid_metric"]?.doubleValue)
        XCTAssertGreaterThan(best, first)
        XCTAssertGreaterThan(try XCTUnwrap(r.metrics["trainable_parameters"]?.intValue), 0)
    }

    /// LoRA: the decoder is frozen, the adapter is written in PEFT's layout and reloads.
    func testLoRAProducesAPEFTAdapter() throws {
        let ck = PassConformance.tinyCheckpoint(layers: 2)
        let o = try options("{data: '\(data.path)', mode: 'lora', lora_rank: 2, lora_targets: ['q_proj', 'down_proj'], objective: 'last', epochs: 2, valid_users: 0}")
        let r = try FineTune().apply(try context(ck), options: o)
        let out = try XCTUnwrap(r.checkpoint), ad = try XCTUnwrap(r.adapter)
        XCTAssertEqual(out.tensors[ParamName.weight(1, .down)], ck.tensors[ParamName.weight(1, .down)], "base decoder frozen")
        XCTAssertNotEqual(out.tensors[ParamName.prompt], ck.tensors[ParamName.prompt], "prompt trains")
        let dir = tmp.appendingPathComponent("adapter")
        try ad.save(to: dir)
        let back = try LoRAAdapter.load(directory: dir)
        try back.validate(against: out.config, source: dir.path)
        XCTAssertEqual(Set(back.targetModules), ["q_proj", "down_proj"])
        XCTAssertEqual(back.r, 2)
    }

    func testBadOptions() throws {
        XCTAssertThrowsError(try options("{data: 'x', lora_dropout: 0.1}").validate()) { XCTAssertTrue("\($0)".contains("lora_dropout")) }
        XCTAssertThrowsError(try options("{data: 'x', mode: 'lora', lora_targets: ['qproj']}").validate()) { XCTAssertTrue("\($0)".contains("qproj")) }
        XCTAssertThrowsError(try options("{data: 'x', metric: 'AUC'}").validate())
        XCTAssertThrowsError(try options("{data: 'x', lrr: 0.1}")) { XCTAssertTrue("\($0)".contains("lr"), "\($0)") }
        // all-positions with a suffix model is refused at plan time.
        let ck = PassConformance.tinyCheckpoint(layers: 2)
        XCTAssertThrowsError(try FineTune().check(ModelSummary(ck), options: try options("{data: 'x'}"), references: [:])) {
            XCTAssertTrue("\($0)".contains("suffix"))
        }
    }
}
