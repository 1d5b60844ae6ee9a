import XCTest
import Foundation
import Common
import ModelFormat
import Toolbench
import TestKit

final class StrictDecodingTests: XCTestCase {
    func decode(_ text: String) throws -> Shrink.Options {
        let v = try JSONText.parseJSON5(Data(text.utf8), file: "t")
        return try StrictDecoding.decode(Shrink.Options.self, from: v, path: "stages[2].options", documented: Shrink.Options.fields.map(\.name))
    }

    func testDefaultsAndNested() throws {
        XCTAssertEqual(try decode("{layers: 2}").inner.lambda, 1)
        XCTAssertEqual(try decode("{layers: 2, inner: {lambda: 0.5}}").inner.lambda, 0.5)
    }

    func testUnknownNestedKeyNamesPathAndSuggests() {
        XCTAssertThrowsError(try decode("{layers: 2, inner: {lamda: 0.5}}")) {
            XCTAssertEqual("\($0)", "stages[2].options.inner.lamda: unknown option \"lamda\" — did you mean \"lambda\"? Fix: known options here: lambda")
        }
    }

    func testMisspelledRequiredKeyIsReportedAsMisspelling() {
        XCTAssertThrowsError(try decode("{layer: 2}")) {
            XCTAssertTrue("\($0)".contains("stages[2].options.layer: unknown option \"layer\" — did you mean \"layers\"?"), "\($0)")
        }
    }

    func testMissingRequiredAndWrongType() {
        XCTAssertThrowsError(try decode("{}")) { XCTAssertTrue("\($0)".contains("missing required option \"layers\""), "\($0)") }
        XCTAssertThrowsError(try decode("{layers: 'two'}")) { XCTAssertTrue("\($0)".contains("stages[2].options.layers: expected an integer"), "\($0)") }
        XCTAssertThrowsError(try decode("{layers: 2.5}"))
    }

    func testEnumValueSuggestion() throws {
        let v = JSONValue.object(["split": .string("vaild"), "data": .string("d")])
        XCTAssertThrowsError(try StrictDecoding.decode(EvaluateSpec.self, from: v, path: "evaluate")) {
            XCTAssertTrue("\($0)".contains("\"vaild\" is not one of valid, test — did you mean \"valid\"?"), "\($0)")
        }
    }

    func testJSON5SyntaxErrorLineAndColumn() {
        let text = "{\n  // comment\n  inputs: { a: 'x' },\n  stages: [1, 2,, 3],\n}"
        XCTAssertThrowsError(try JSONText.parseJSON5(Data(text.utf8), file: "r.json5")) {
            XCTAssertTrue("\($0)".hasPrefix("r.json5:4:17: JSON5 syntax error"), "\($0)")
        }
        XCTAssertNoThrow(try JSON5Locator.parse("{a: 1, 'b': [0x1F, .5, +3, Infinity], /* c */ d: \"x\",}"))
        XCTAssertThrowsError(try JSON5Locator.parse("{a: 1\n b: 2}")) { XCTAssertEqual(($0 as? JSON5Locator.Located)?.line, 2) }
        // Foundation's JSON5 scanner traps on this (the fuzzers' first find): refused, named.
        let bad = Data([0x7B, 0x22, 0x22, 0x3A, 0x30, 0x2C, 0xFF, 0x00, 0xB2, 0x0A, 0x20, 0x20, 0x22, 0x68])
        XCTAssertThrowsError(try JSONText.parseJSON5(bad, file: "r.json5")) {
            XCTAssertEqual("\($0)", "r.json5: byte 6 is not valid UTF-8 (0xff). Fix: save the file as UTF-8")
        }
        // …and on some numbers (`0x1e-3`, `-0x8000000000000001`, `9999999999999999999`; the
        // 1M-execution fuzz run): our parser names them instead.
        XCTAssertThrowsError(try JSONText.parseJSON5(Data("{a: 1,\n  lr: 0x1e-3}".utf8), file: "r.json5")) {
            XCTAssertEqual("\($0)", "r.json5:2:7: JSON5 syntax error: invalid number \"0x1e-3\". Fix: fix the syntax at line 2, column 7")
        }
        XCTAssertThrowsError(try JSONText.parseJSON5(Data("-0x8000000000000001".utf8), file: "r.json5")) {
            XCTAssertTrue("\($0)".contains("out of range"), "\($0)")
        }
        XCTAssertThrowsError(try JSONText.parseJSON5(Data("[1e309]".utf8), file: "r.json5")) { XCTAssertTrue("\($0)".contains("out of range"), "\($0)") }
        XCTAssertEqual(try JSONText.parseJSON5(Data("9999999999999999999".utf8), file: "r.json5"), .double(1e19), "beyond Int: a Double")
        XCTAssertEqual(try JSONText.parseJSON5(Data("{k: \"0x1\", // 0x2\n /* 0x3 */ a0x: '\\x41\\u00e9\\ud83d\\ude00', b: 0x1F, c: -.5, d: +3, e: 2., f: [Infinity, -Infinity], g: null,}".utf8), file: "r.json5"),
                       .object(["k": .string("0x1"), "a0x": .string("Aé😀"), "b": .int(31), "c": .double(-0.5), "d": .int(3), "e": .double(2),
                                "f": .array([.double(.infinity), .double(-.infinity)]), "g": .null]))
        XCTAssertThrowsError(try JSONText.parseJSON5(Data("{a: 1, a: 2}".utf8), file: "r.json5")) { XCTAssertTrue("\($0)".contains("appears twice"), "\($0)") }
        XCTAssertThrowsError(try JSONText.parseJSON5(Data((String(repeating: "[", count: 300) + String(repeating: "]", count: 300)).utf8), file: "r.json5")) {
            XCTAssertTrue("\($0)".contains("nested deeper than 256"), "\($0)")
        }
        XCTAssertNil(firstInvalidUTF8(Data("é😀 ok".utf8)))
        XCTAssertEqual(firstInvalidUTF8(Data([0x61, 0xC3])), 1, "a truncated sequence")
    }

    func testEditDistanceSuggestions() {
        XCTAssertEqual(nearest("lamda", in: ["lambda", "layers"]), "lambda")
        XCTAssertNil(nearest("xyz", in: ["lambda"]))
    }
}

final class RecipeTests: XCTestCase {
    var dir: URL!
    var base: URL!

    override func setUpWithError() throws {
        dir = try tempDir("recipe")
        base = dir.appendingPathComponent("base")
        try tinyCheckpoint(layers: 4).save(to: base)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func recipe(_ stages: String, extra: String = "", overrides: [String] = []) throws -> Recipe {
        let text = "{ vars: { base: '\(base.path)', n: 3 }, inputs: { base: '${base}' }, \(extra) stages: [\(stages)] }"
        return try Recipe.parse(Data(text.utf8), path: "r.json5", overrides: overrides)
    }

    func plan(_ stages: String, extra: String = "", overrides: [String] = []) throws -> Plan {
        try Planner.plan(recipe(stages, extra: extra, overrides: overrides), registry: testRegistry)
    }

    func testPlansShapesThroughStages() throws {
        let p = try plan("{name: 'a', pass: 'shrink', options: {layers: 3}}, {name: 'b', pass: 'shrink', options: {layers: 2}}")
        XCTAssertEqual(p.stages.map(\.input), ["base", "a"])  // default input: the previous stage
        XCTAssertEqual(p.stages.map { $0.output.checkpoint?.numLayers }, [3, 2])
        // b's check runs on a's planned 3 layers: asking for 4 fails before any work.
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: 3}}, {name: 'b', pass: 'shrink', options: {layers: 4}}")) {
            XCTAssertEqual("\($0)", "r.json5: stage \"b\" (stages[1]): keeping 4 layers but the model has only 3. Fix: keep fewer")
        }
    }

    func testUnknownPassListsKnown() {
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrnk', options: {layers: 3}}")) {
            XCTAssertTrue("\($0)".contains("r.json5: stage \"a\" (stages[0]): unknown pass \"shrnk\" — did you mean \"shrink\"?"), "\($0)")
            XCTAssertTrue("\($0)".contains("known passes: shrink, distil, make-adapter"), "\($0)")
        }
    }

    func testMisspelledOptionAndTopLevelKey() {
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: 3, inner: {lamda: 2}}}")) {
            XCTAssertTrue("\($0)".contains("r.json5: stage \"a\": stages[0].options.inner.lamda: unknown option \"lamda\" — did you mean \"lambda\"?"), "\($0)")
        }
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', optoins: {layers: 3}}")) {
            XCTAssertTrue("\($0)".contains("stages[0].optoins") && "\($0)".contains("did you mean \"options\""), "\($0)")
        }
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: 3}}", extra: "compair: [],")) {
            XCTAssertTrue("\($0)".contains("did you mean \"compare\""), "\($0)")
        }
    }

    func testReferences() throws {
        // Variants from one start plus a named teacher reference.
        let p = try plan("""
            {name: 'small', pass: 'shrink', input: 'base', options: {layers: 2}},
            {name: 'mid', pass: 'shrink', input: 'base', options: {layers: 3}},
            {name: 'kd', pass: 'distil', input: 'small', references: {teacher: 'base'}}
            """, extra: "compare: ['base', 'small', 'kd'],")
        XCTAssertEqual(p.stages[2].references, ["teacher": "base"])
        XCTAssertEqual(p.stages[1].input, "base")
        XCTAssertThrowsError(try plan("{name: 'kd', pass: 'distil', input: 'base', references: {teacher: 'big'}}, {name: 'big', pass: 'shrink', options: {layers: 4}}")) {
            XCTAssertTrue("\($0)".contains("reference teacher \"big\" refers to a stage that comes later (stages[1])"), "\($0)")
        }
        XCTAssertThrowsError(try plan("{name: 'kd', pass: 'distil', input: 'base', references: {teacher: 'bsae'}}")) {
            XCTAssertTrue("\($0)".contains("is not a recipe input or an earlier stage — did you mean \"base\"?"), "\($0)")
        }
        XCTAssertThrowsError(try plan("{name: 'kd', pass: 'distil', input: 'base'}")) {
            XCTAssertTrue("\($0)".contains("needs reference \"teacher\""), "\($0)")
        }
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', input: 'nope', options: {layers: 1}}"))
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: 1}}", extra: "compare: ['a', 'zz'],"))
        // An adapter-only stage cannot be a checkpoint input.
        XCTAssertThrowsError(try plan("{name: 'ad', pass: 'make-adapter'}, {name: 'x', pass: 'shrink', input: 'ad', options: {layers: 1}}")) {
            XCTAssertTrue("\($0)".contains("is an adapter, not a checkpoint"), "\($0)")
        }
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: 1}}, {name: 'a', pass: 'shrink', options: {layers: 1}}"))
    }

    func testVarsAndOverrides() throws {
        let p = try plan("{name: 'a', pass: 'shrink', options: {layers: '${n}'}}", extra: "", overrides: ["vars.n=2"])
        XCTAssertEqual(p.stages[0].output.checkpoint?.numLayers, 2)
        let q = try plan("{name: 'a', pass: 'shrink', options: {layers: 3}}", overrides: ["stages.a.options.layers=1", "stages[0].seed=9"])
        XCTAssertEqual(q.stages[0].output.checkpoint?.numLayers, 1)
        XCTAssertEqual(q.stages[0].seed, 9)
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: 3}}", overrides: ["stages.b.options.layers=1"])) {
            XCTAssertTrue("\($0)".contains("did you mean \"a\""), "\($0)")
        }
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: '${m}'}}")) {
            XCTAssertTrue("\($0)".contains("unknown variable ${m}"), "\($0)")
        }
        // A variable the recipe never declares is an error, not a silent no-op …
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: '${n}'}}", extra: "", overrides: ["vars.nn=2"])) {
            XCTAssertTrue("\($0)".contains("declares no vars.nn") && "\($0)".contains("did you mean \"n\""), "\($0)")
        }
        // … and a bare name is short for vars.<name>.
        let r = try plan("{name: 'a', pass: 'shrink', options: {layers: '${n}'}}", extra: "", overrides: ["n=1"])
        XCTAssertEqual(r.stages[0].output.checkpoint?.numLayers, 1)
        // Effective recipe: defaults filled in.
        let eff = q.effectiveRecipe
        XCTAssertEqual(eff.objectValue?["stages"]?.arrayValue?.first?.objectValue?["options"],
                       .object(["layers": .int(1), "inner": .object(["lambda": .int(1)])]))  // JSON has no 1.0 vs 1
    }

    /// Bug 13 (docs/reliability.md): a `--set` key of 1,500 segments nested the options that
    /// deep, and decoding them probed every level type by type, printing the whole subtree into
    /// each failed probe's message: 2.9 s for one 3 KB key. Keys are now held to the parser's
    /// nesting limit, and an options subtree is taken whole (integral floats still integers).
    func testDeepOverridesAreBoundedAndOptionsTakenWhole() throws {
        let deep = (0..<300).map { _ in "a" }.joined(separator: ".")
        XCTAssertThrowsError(try recipe("{name: 'a', pass: 'shrink', options: {layers: 3}}", overrides: ["stages.a.options.\(deep)=1"])) {
            XCTAssertTrue("\($0)".contains("r.json5: --set stages.a.options.a.a.a") && "\($0)".contains("the key path has 303 segments, more than the 256 levels a recipe may nest"), "\($0)")
        }
        XCTAssertThrowsError(try recipe("{name: 'a', pass: 'shrink'}", overrides: ["stages[0]" + String(repeating: "[0]", count: 300) + "=1"])) {
            XCTAssertTrue("\($0)".contains("more than the 256 levels"), "\($0)")
        }
        // Under the limit: the subtree arrives whole, and the pass's strict decoding names the
        // unknown key at its place.
        let path = (0..<200).map { _ in "b" }.joined(separator: ".")
        let r = try recipe("{name: 'a', pass: 'shrink', options: {layers: 3.0, x: {y: [1.0, 2.5, {z: -0.0}]}}}", overrides: ["stages.a.options.deep.\(path)=7"])
        var node = r.stages[0].options.objectValue?["deep"]
        for _ in 0..<200 { node = node?.objectValue?["b"] }
        XCTAssertEqual(node, .int(7))
        XCTAssertEqual(r.stages[0].options.objectValue?["layers"], .int(3))
        XCTAssertEqual(r.stages[0].options.objectValue?["x"], .object(["y": .array([.int(1), .double(2.5), .object(["z": .int(0)])])]))
        XCTAssertThrowsError(try Planner.plan(r, registry: testRegistry)) {
            XCTAssertTrue("\($0)".contains("stages[0].options.deep: unknown option \"deep\""), "\($0)")
        }
        // Keys below a JSONValue field are the field's business; a misspelling beside it is not.
        XCTAssertThrowsError(try recipe("{name: 'a', pass: 'shrink', options: {layers: 3}, grdi: {keep: [1]}}")) {
            XCTAssertTrue("\($0)".contains("did you mean \"grid\""), "\($0)")
        }
    }

    func testEvaluateBlockStrict() throws {
        XCTAssertNoThrow(try plan("{name: 'a', pass: 'shrink', options: {layers: 3}}", extra: "evaluate: {data: 'd', split: 'test', candidates: 'both', users: 10},"))
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: 3}}", extra: "evaluate: {data: 'd', candidate: 'full'},")) {
            XCTAssertTrue("\($0)".contains("did you mean \"candidates\""), "\($0)")
        }
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: 3}}", extra: "evaluate: {data: 'd', users: 0},"))
        XCTAssertThrowsError(try plan("{name: 'a', pass: 'shrink', options: {layers: 3}}", extra: "evaluate: {split: 'valid'},"))
    }
}

final class RunnerTests: XCTestCase {
    var dir: URL!
    var base: URL!

    override func setUpWithError() throws {
        dir = try tempDir("runner")
        base = dir.appendingPathComponent("base")
        try tinyCheckpoint(layers: 4).save(to: base)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    let stages = """
        {name: 'a', pass: 'shrink', options: {layers: 3}},
        {name: 'b', pass: 'shrink', options: {layers: 2}},
        {name: 'kd', pass: 'distil', input: 'b', references: {teacher: 'a'}},
        {name: 'ad', pass: 'make-adapter', input: 'base'}
        """

    func plan(_ overrides: [String] = [], evaluate: Bool = false) throws -> Plan {
        let text = "{ inputs: { base: '\(base.path)' }, \(evaluate ? "evaluate: {data: 'd'}," : "") stages: [\(stages)] }"
        return try Planner.plan(Recipe.parse(Data(text.utf8), path: "r.json5", overrides: overrides), registry: testRegistry)
    }

    struct FixedEvaluator: StageEvaluator {
        func evaluate(stage: StageOutput, spec: EvaluateSpec) throws -> [String: Double] {
            ["layers": Double(try ModelSummary.load(directory: stage.checkpoint!).numLayers)]
        }
    }

    /// The resume key changes with each thing a stage's output depends on, and with nothing else.
    func testStageKeyCoversPassOptionsSeedAndInputs() throws {
        let p = try plan()
        let b = p.stages[1]
        let keys = ["base": "h-base", "a": "k-a", "b": "k-b"]
        let key = RecipeRunner.stageKey(b, inputKeys: keys, optionPathHashes: [])
        XCTAssertEqual(key, RecipeRunner.stageKey(b, inputKeys: keys, optionPathHashes: []), "deterministic")
        XCTAssertEqual(key, RecipeRunner.stageKey(b, inputKeys: keys.merging(["b": "other"]) { $1 }, optionPathHashes: []),
                       "another stage's key is not an input of this one")
        var changed = keys
        changed["a"] = "k-a2"   // b's input
        XCTAssertNotEqual(key, RecipeRunner.stageKey(b, inputKeys: changed, optionPathHashes: []), "input")
        var seeded = b
        seeded.seed &+= 1
        XCTAssertNotEqual(key, RecipeRunner.stageKey(seeded, inputKeys: keys, optionPathHashes: []), "seed")
        let other = try plan(["stages.b.options.layers=1"]).stages[1]
        XCTAssertNotEqual(key, RecipeRunner.stageKey(other, inputKeys: keys, optionPathHashes: []), "options")
        XCTAssertNotEqual(key, RecipeRunner.stageKey(b, inputKeys: keys, optionPathHashes: ["h-data"]), "option paths")
        let kd = p.stages[2]   // references: {teacher: a}
        var teacherChanged = keys
        teacherChanged["a"] = "k-a2"
        XCTAssertNotEqual(RecipeRunner.stageKey(kd, inputKeys: keys, optionPathHashes: []),
                          RecipeRunner.stageKey(kd, inputKeys: teacherChanged, optionPathHashes: []), "reference")
    }

    /// `slmrec run --stage`: a part of a recipe runs with exactly the earlier stages it reads
    /// (input and references, transitively), and leaves every other stage alone.
    func testRunningAPartRunsWhatItReads() throws {
        let p = try plan()
        XCTAssertEqual(try p.stagesNeeded(for: ["b"]), ["a", "b"], "b's input is the stage before it")
        XCTAssertEqual(try p.stagesNeeded(for: ["kd"]), ["a", "b", "kd"], "input b and teacher a")
        XCTAssertEqual(try p.stagesNeeded(for: ["ad"]), ["ad"], "a recipe input is not a stage")
        XCTAssertEqual(try p.stagesNeeded(for: ["ad", "b"]), ["a", "b", "ad"])
        XCTAssertThrowsError(try p.stagesNeeded(for: ["kd2"])) {
            XCTAssertTrue("\($0)".contains("the recipe has no stage \"kd2\"") && "\($0)".contains("give one of: a, b, kd, ad"), "\($0)")
        }
        let run = dir.appendingPathComponent("run")
        let runner = RecipeRunner(evaluator: nil, quiet: true)
        let fm = FileManager.default
        XCTAssertThrowsError(try runner.run(p, runDirectory: run, resume: false, only: ["kd2"]))
        XCTAssertEqual(try runner.run(p, runDirectory: run, resume: false, only: ["ad"]).map(\.name), ["ad"])
        XCTAssertFalse(fm.fileExists(atPath: run.appendingPathComponent("a").path), "a stage not selected is not run")
        // The next part continues the same directory: what it reads runs, what ran stays.
        let r = try runner.run(p, runDirectory: run, resume: true, only: ["kd"])
        XCTAssertEqual(r.map(\.name), ["a", "b", "kd"])
        XCTAssertEqual(r.map(\.skipped), [false, false, false])
        XCTAssertTrue(fm.fileExists(atPath: run.appendingPathComponent("ad/adapter/adapter_config.json").path), "an earlier part's stage stays")
        XCTAssertEqual(try runner.run(p, runDirectory: run, resume: true).map(\.skipped), [true, true, true, true], "the parts make the whole run")
    }

    func testRunWritesStagesAndResumes() throws {
        let run = dir.appendingPathComponent("run")
        let runner = RecipeRunner(evaluator: FixedEvaluator(), quiet: true)
        let r1 = try runner.run(plan(evaluate: true), runDirectory: run, resume: false)
        XCTAssertEqual(r1.map(\.skipped), [false, false, false, false])
        let fm = FileManager.default
        for f in ["recipe.effective.json", "inputs.json", "a/checkpoint/model.safetensors", "a/metrics.json", "a/log.txt", "a/stage.json",
                  "kd/checkpoint/config.json", "ad/adapter/adapter_config.json"] {
            XCTAssertTrue(fm.fileExists(atPath: run.appendingPathComponent(f).path), f)
        }
        XCTAssertEqual(try Checkpoint.load(directory: run.appendingPathComponent("b/checkpoint")).config.numLayers, 2)
        let metrics = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: run.appendingPathComponent("b/metrics.json")))
        XCTAssertEqual(metrics.objectValue?["evaluation"]?.objectValue?["layers"]?.doubleValue, 2)
        XCTAssertEqual(metrics.objectValue?["layers"], .int(2))
        let inputs = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: run.appendingPathComponent("inputs.json")))
        XCTAssertEqual(inputs.objectValue?["base"]?.objectValue?["hash"]?.stringValue, try ContentHash.of(path: base))
        XCTAssertEqual(try String(contentsOf: run.appendingPathComponent("a/log.txt"), encoding: .utf8), "kept 3\n")
        XCTAssertFalse(try fm.contentsOfDirectory(atPath: run.path).contains { $0.hasPrefix(".") }, "no temporaries left")

        // Not resuming into a used directory is refused.
        XCTAssertThrowsError(try runner.run(plan(), runDirectory: run, resume: false))
        // Unchanged: everything skipped.
        XCTAssertEqual(try runner.run(plan(evaluate: true), runDirectory: run, resume: true).map(\.skipped), [true, true, true, true])
        // Changed option of b: b and what reads b rerun; a and ad do not.
        XCTAssertEqual(try runner.run(plan(["stages.b.options.inner.lambda=2"], evaluate: true), runDirectory: run, resume: true).map(\.skipped),
                       [true, false, false, true])
        // An incomplete stage (no stage.json) reruns.
        try fm.removeItem(at: run.appendingPathComponent("ad/stage.json"))
        XCTAssertEqual(try runner.run(plan(["stages.b.options.inner.lambda=2"], evaluate: true), runDirectory: run, resume: true).map(\.skipped),
                       [true, true, true, false])
        // A changed input checkpoint (content, same path): everything reruns.
        var ck = try Checkpoint.load(directory: base)
        ck.tensors[TensorNames.finalNorm] = Tensor(floats: [Float](repeating: 2, count: ck.config.hiddenSize), shape: [ck.config.hiddenSize])
        try ck.save(to: base)
        XCTAssertEqual(try runner.run(plan(["stages.b.options.inner.lambda=2"], evaluate: true), runDirectory: run, resume: true).map(\.skipped),
                       [false, false, false, false])
    }

    func testUnconfiguredEvaluatorIsRecorded() throws {
        let run = dir.appendingPathComponent("run")
        try RecipeRunner(evaluator: nil, quiet: true).run(plan(evaluate: true), runDirectory: run, resume: false)
        let metrics = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: run.appendingPathComponent("a/metrics.json")))
        XCTAssertEqual(metrics.objectValue?["evaluation"], .string("evaluation not configured"))
    }

    /// A failure inside a stage leaves no stage directory behind and names the stage.
    func testFailingStageLeavesNothingHalfWritten() throws {
        let run = dir.appendingPathComponent("run")
        let p = try plan()
        try FileManager.default.removeItem(at: base)  // the input vanishes after planning
        XCTAssertThrowsError(try RecipeRunner(evaluator: nil, quiet: true).run(p, runDirectory: run, resume: false)) {
            XCTAssertTrue("\($0)".contains("base"), "\($0)")
        }
        let left = (try? FileManager.default.contentsOfDirectory(atPath: run.path)) ?? []
        XCTAssertFalse(left.contains("a"))
        XCTAssertFalse(left.contains { $0.hasPrefix(".a.tmp") })
    }
}
