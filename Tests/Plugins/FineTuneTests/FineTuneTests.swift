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

    /// Option values reach the files as written: `lora_dropout: 0.05` in adapter_config.json,
    /// not the fp32 value 0.05000000074505806.
    func testAdapterConfigRecordsTheOptionsAsWritten() throws {
        let ck = PassConformance.tinyCheckpoint(layers: 2)
        let o = try options("{data: '\(data.path)', mode: 'lora', lora_rank: 2, lora_alpha: 3.3, lora_dropout: 0.05, objective: 'last', max_steps: 2, valid_users: 0}")
        let r = try FineTune().apply(try context(ck), options: o)
        let dir = tmp.appendingPathComponent("adapter-05")
        try XCTUnwrap(r.adapter).save(to: dir)
        let text = try String(contentsOf: dir.appendingPathComponent(LoRAAdapter.configFile), encoding: .utf8)
        XCTAssertTrue(text.contains("\"lora_dropout\": 0.05,") || text.contains("\"lora_dropout\": 0.05\n"), text)
        XCTAssertTrue(text.contains("\"lora_alpha\": 3.3"), text)
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

    func testSeedIsAStageSettingNotAnOption() throws {
        XCTAssertThrowsError(try AnyPass(FineTune.self).decodeOptions(JSONText.parseJSON5(Data("{data: 'x', seed: 3}".utf8), file: "t"), path: "options")) {
            XCTAssertTrue("\($0)".contains("`seed:` on the recipe stage") && "\($0)".contains("--seed"), "\($0)")
        }
        XCTAssertFalse(FineTune.Options.fields.map(\.name).contains("seed"))
    }
}

/// Seeds of recipe stages (docs/recipes.md#seeds): one derivation, recorded where it is used.
/// Once, every training stage of a `seed: 42` recipe trained with seed 42 ^ 42 = 0.
final class StageSeedTests: XCTestCase {
    var tmp: URL!
    var data: URL!
    var base: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("seeds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        data = try TinyModels.preparePatternDataset(in: tmp)
        base = tmp.appendingPathComponent("base")
        try PassConformance.tinyCheckpoint(layers: 2).save(to: base)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    func plan(seed: UInt64, secondSeed: String = "") throws -> Plan {
        // LoRA: the stage's seed draws the adapter's initialisation and the batch order.
        let options = "{data: '\(data.path)', mode: 'lora', lora_rank: 2, objective: 'last', epochs: 2, batch_size: 8, valid_users: 0, patience: 0}"
        let text = """
            { inputs: { base: '\(base.path)' }, seed: \(seed),
              stages: [{name: 'first', pass: 'finetune', options: \(options)},
                       {name: 'second', pass: 'finetune', input: 'base', \(secondSeed) options: \(options)}] }
            """
        return try Planner.plan(Recipe.parse(Data(text.utf8), path: "r.json5"), registry: PassRegistry([FineTune.self]))
    }

    func run(_ plan: Plan, _ name: String) throws -> URL {
        let dir = tmp.appendingPathComponent(name)
        try RecipeRunner(evaluator: nil, quiet: true).run(plan, runDirectory: dir, resume: false)
        return dir
    }

    func json(_ url: URL) throws -> [String: JSONValue] {
        try XCTUnwrap(JSONText.parseJSON5(Data(contentsOf: url), file: url.path).objectValue)
    }

    func testTwoStagesGetDifferentSeedsAndEveryRecordSaysWhichOne() throws {
        let p = try plan(seed: 42)
        let seeds = p.stages.map(\.seed)
        XCTAssertEqual(seeds, [StageSeed.derive(recipeSeed: 42, stage: "first"), StageSeed.derive(recipeSeed: 42, stage: "second")])
        XCTAssertNotEqual(seeds[0], seeds[1])
        XCTAssertFalse(seeds.contains(0))
        XCTAssertFalse(seeds.contains(42), "a stage's seed is derived from the recipe's, not the recipe's itself")
        XCTAssertLessThan(seeds.max()!, 1 << 53, "exact in any JSON reader")
        // A stage's own seed is used as given.
        XCTAssertEqual(try plan(seed: 42, secondSeed: "seed: 5,").stages.map(\.seed), [seeds[0], 5])

        let dir = try run(p, "run")
        let effective = try XCTUnwrap(json(dir.appendingPathComponent("recipe.effective.json"))["stages"]?.arrayValue)
        for (i, name) in ["first", "second"].enumerated() {
            XCTAssertEqual(effective[i].objectValue?["seed"]?.intValue, Int(seeds[i]), "recipe.effective.json")
            let metrics = try json(dir.appendingPathComponent("\(name)/metrics.json"))
            XCTAssertEqual(metrics["seed"]?.intValue, Int(seeds[i]), "\(name)/metrics.json")
        }
        // Same options, same input, different seeds: the two stages trained differently.
        let a = try Checkpoint.load(directory: dir.appendingPathComponent("first/checkpoint"))
        let b = try Checkpoint.load(directory: dir.appendingPathComponent("second/checkpoint"))
        XCTAssertNotEqual(a.tensors[ParamName.prompt], b.tensors[ParamName.prompt])
    }

    func testTheRecipeSeedChangesTheResultAndTheSameSeedReproducesIt() throws {
        func weights(_ dir: URL) throws -> ([String: Tensor], [String: Tensor]) {
            let ck = try Checkpoint.load(directory: dir.appendingPathComponent("first/checkpoint"))
            let ad = try Safetensors.read(dir.appendingPathComponent("first/adapter/adapter_model.safetensors"))
            return (ck.tensors, ad)
        }
        let one = try weights(run(try plan(seed: 42), "a"))
        let again = try weights(run(try plan(seed: 42), "b"))
        let other = try weights(run(try plan(seed: 43), "c"))
        XCTAssertEqual(one.0, again.0, "same seed: the same checkpoint")
        XCTAssertEqual(one.1, again.1, "same seed: the same adapter")
        XCTAssertNotEqual(one.1, other.1, "another recipe seed: another adapter")
        XCTAssertNotEqual(one.0[ParamName.prompt], other.0[ParamName.prompt], "another recipe seed: other trained weights")
    }
}

