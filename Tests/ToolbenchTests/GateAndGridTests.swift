import XCTest
import Foundation
import Common
import ModelFormat
import Toolbench
import TestKit

/// Quality gates, grid sweeps and selection (docs/recipes.md#gates-sweeps-and-selection),
/// with the test passes and an evaluator whose metrics grow with depth: full.NDCG@10 =
/// layers / 10, so a 2-layer student of a 4-layer base is at 50 % of it.
final class GateAndGridTests: XCTestCase {
    var dir: URL!
    var base: URL!

    override func setUpWithError() throws {
        dir = try tempDir("gates")
        base = dir.appendingPathComponent("base")
        try tinyCheckpoint(layers: 4).save(to: base)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// Metrics from depth; counts the evaluations per split (gates must read valid only).
    final class DepthEvaluator: StageEvaluator, @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [String: Int] = [:]
        var splits: [String: Int] { lock.lock(); defer { lock.unlock() }; return counts }
        func evaluate(stage: StageOutput, spec: EvaluateSpec) throws -> [String: Double] {
            lock.lock(); counts[spec.split.rawValue, default: 0] += 1; lock.unlock()
            let l = Double(try ModelSummary.load(directory: stage.checkpoint!).numLayers)
            return ["full.NDCG@10": l / 10, "full.MRR": l / 20, "sampled.MRR": 0.5 - l / 100]
        }
    }

    func plan(_ stages: String, overrides: [String] = [], evaluate: Bool = true) throws -> Plan {
        let text = "{ inputs: { base: '\(base.path)' }, \(evaluate ? "evaluate: {data: 'd', split: 'test'}," : "") stages: [\(stages)] }"
        return try Planner.plan(Recipe.parse(Data(text.utf8), path: "r.json5", overrides: overrides), registry: testRegistry)
    }

    func assertPlanError(_ stages: String, _ message: String, evaluate: Bool = true, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try plan(stages, evaluate: evaluate), file: file, line: line) {
            XCTAssertTrue("\($0)".contains(message), "\($0)", file: file, line: line)
        }
    }

    // MARK: planning

    func testGridExpandsIntoNamedVariantsWithOneSeed() throws {
        let p = try plan("""
            {name: 'small', pass: 'shrink', grid: {layers: [1, 3], 'inner.lambda': [0.5, 2]}, select: {best: 'valid.full.MRR'}},
            {name: 'kd', pass: 'distil', input: 'small', references: {teacher: 'base'}}
            """)
        XCTAssertEqual(p.stages.map(\.name), ["small-lambda0.5-layers1", "small-lambda0.5-layers3", "small-lambda2-layers1", "small-lambda2-layers3", "kd"])
        XCTAssertEqual(Set(p.stages.prefix(4).map(\.seed)).count, 1, "a sweep compares options, not seeds")
        XCTAssertEqual(p.stages[1].effectiveOptions["layers"], .int(3))
        XCTAssertEqual(p.stages[2].effectiveOptions["inner"]?["lambda"]?.doubleValue, 2)
        XCTAssertEqual(p.groups["small"]?.variants.count, 4)
        XCTAssertEqual(p.stages[4].input, "small", "a dependant reads the group; the runner resolves its selection")
        XCTAssertEqual(try p.stagesNeeded(for: ["kd"]).count, 5, "a group needs every variant")
        XCTAssertEqual(GridExpansion.labels(["lambda_norm", "keep", "lambda_cos"]), ["lambda_norm": "ln", "keep": "keep", "lambda_cos": "lc"])
        XCTAssertEqual(GridExpansion.labels(["lambda_norm", "learning_note"]), ["lambda_norm": "lambdanorm", "learning_note": "learningnote"], "colliding initials")
    }

    func testGridAndGateErrorsBeforeAnyWork() {
        assertPlanError("{name: 's', pass: 'shrink', grid: {}}", "empty grid")
        assertPlanError("{name: 's', pass: 'shrink', grid: {layers: []}}", "no values")
        assertPlanError("{name: 's', pass: 'shrink', grid: {layers: 2}}", "not a list of values")
        assertPlanError("{name: 's', pass: 'shrink', options: {layers: 2}, grid: {layers: [1, 2]}}", "layers is also set in options")
        assertPlanError("{name: 's', pass: 'shrink', options: {layers: 1}, grid: {layres: [1, 2]}}", "unknown option \"layres\"")
        assertPlanError("{name: 's', pass: 'shrink', grid: {layers: [1, 9]}}", "keeping 9 layers but the model has only 4")
        assertPlanError("{name: 's', pass: 'shrink', options: {layers: 1}, select: {best: 'full.MRR'}}", "select without grid")
        assertPlanError("{name: 's', pass: 'shrink', grid: {layers: [1, 2]}}, {name: 'kd', pass: 'distil', input: 'base', references: {teacher: 's'}}",
                        "reference teacher \"s\" is a grid of 2 variants with no select")
        assertPlanError("{name: 's', pass: 'shrink', grid: {layers: [1, 2]}}, {name: 'kd', pass: 'shrink', input: 's', grid: {layers: [1]}}",
                        "already runs once per variant of s")
        assertPlanError("{name: 's', pass: 'shrink', grid: {layers: [1, 2]}, select: {}}", "no criterion")
        assertPlanError("{name: 's', pass: 'shrink', grid: {layers: [1, 2]}, select: {best: 'test.full.MRR'}}", "reads the test split")
        assertPlanError("{name: 's', pass: 'shrink', grid: {layers: [1, 2]}, select: {best: 'full.MRR', smallest: 'params'}}", "both best and smallest")
        assertPlanError("{name: 's', pass: 'shrink', grid: {layers: [1, 2]}, select: {smallest: 'weights'}}", "\"weights\" is not one of params, bytes")
        assertPlanError("{name: 's', pass: 'shrink', options: {layers: 2}, gate: {metric: 'full.NDGC@10', min: 0.1}}", "did you mean \"NDCG@10\"")
        assertPlanError("{name: 's', pass: 'shrink', options: {layers: 2}, gate: {metric: 'full.MRR'}}", "no threshold")
        assertPlanError("{name: 's', pass: 'shrink', options: {layers: 2}, gate: {metric: 'full.MRR', min_ratio: 0.9}}", "min_ratio without of")
        assertPlanError("{name: 's', pass: 'shrink', options: {layers: 2}, gate: {metric: 'full.MRR', min: 0.1, min_ratio: 0.9, of: 'base'}}", "both min and min_ratio")
        assertPlanError("{name: 's', pass: 'shrink', options: {layers: 2}, gate: {metric: 'full.MRR', min_ratio: 0.9, of: 'teacher'}}", "gate.of \"teacher\" is not a recipe input or an earlier stage")
        assertPlanError("{name: 's', pass: 'shrink', options: {layers: 2}, gate: {metric: 'full.MRR', min: 0.1, on_fail: 'stop'}}", "\"stop\" is not one of skip, continue")
        assertPlanError("{name: 's', pass: 'shrink', options: {layers: 2}, gate: {metric: 'full.MRR', min: 0.1}}", "the recipe has none", evaluate: false)
    }

    /// A stage reading a grid without a selection runs once per variant, and may select.
    func testASweepCarriesDownAChain() throws {
        let p = try plan("""
            {name: 'pruned', pass: 'shrink', grid: {layers: [1, 2, 3]}},
            {name: 'kd', pass: 'distil', references: {teacher: 'base'}, select: {smallest: 'params'}},
            {name: 'ship', pass: 'shrink', options: {layers: 1}}
            """)
        XCTAssertEqual(p.stages.map(\.name), ["pruned-layers1", "pruned-layers2", "pruned-layers3", "kd-layers1", "kd-layers2", "kd-layers3", "ship"])
        XCTAssertEqual(p.stages[3...5].map(\.input), ["pruned-layers1", "pruned-layers2", "pruned-layers3"])
        XCTAssertEqual(p.groups["kd"]?.variants, ["kd-layers1", "kd-layers2", "kd-layers3"])
        XCTAssertEqual(p.stages[6].input, "kd", "after a selecting group, the default input is its pick")
        let run = dir.appendingPathComponent("run")
        let r = try RecipeRunner(evaluator: DepthEvaluator(), quiet: true).run(p, runDirectory: run, resume: false)
        XCTAssertEqual(r.count, 7)
        XCTAssertEqual(RecipeRunner.judgements(in: run).selections.first?.selected, "kd-layers1")
    }

    // MARK: running

    func testAFailedGateSkipsItsDependantsUnlessContinue() throws {
        let stages = """
            {name: 'two', pass: 'shrink', options: {layers: 2}, gate: {metric: 'full.NDCG@10', min_ratio: 0.75, of: 'base'}},
            {name: 'kd', pass: 'distil', input: 'two', references: {teacher: 'base'}},
            {name: 'three', pass: 'shrink', input: 'base', options: {layers: 3}, gate: {metric: 'valid.full.NDCG@10', min_ratio: 0.7, of: 'base'}},
            {name: 'kd3', pass: 'distil', input: 'three', references: {teacher: 'base'}}
            """
        let run = dir.appendingPathComponent("run")
        let ev = DepthEvaluator()
        let runner = RecipeRunner(evaluator: ev, quiet: true)
        let r = try runner.run(plan(stages), runDirectory: run, resume: false)
        XCTAssertEqual(r.map(\.name), ["two", "kd", "three", "kd3"])
        XCTAssertEqual(r.map(\.skipped), [false, true, false, false])
        XCTAssertEqual(r[0].gate?.passed, false, "0.2 < 0.75 × 0.4")
        XCTAssertEqual(r[0].gate?.threshold ?? 0, 0.3, accuracy: 1e-12)
        XCTAssertEqual(r[2].gate?.passed, true, "0.3 ≥ 0.7 × 0.4")
        XCTAssertTrue(r[1].reason?.contains("two failed its gate") ?? false, r[1].reason ?? "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("kd").path))
        // Recorded: metrics.json of the stage, gates.json of the run, the measured validation.
        let m = try JSONValue.parse(Data(contentsOf: run.appendingPathComponent("two/metrics.json")))
        XCTAssertEqual(m["gate"]?["passed"], .bool(false))
        XCTAssertEqual(RecipeRunner.judgements(in: run).gates["three"]?.passed, true)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("inputs/base/validation.json").path))
        XCTAssertEqual(ev.splits["valid"], 3, "two, three and the reference base, each measured once on validation")
        XCTAssertEqual(ev.splits["test"], 3, "the recipe's own test evaluation of the stages that ran (two, three, kd3)")

        // A lower bar on --resume: judged again from the cached metrics, nothing retrained or remeasured.
        let r2 = try runner.run(plan(stages, overrides: ["stages.two.gate.min_ratio=0.5"]), runDirectory: run, resume: true)
        XCTAssertEqual(r2.map(\.skipped), [true, false, true, true], "two and three unchanged; kd now runs")
        XCTAssertEqual(r2[0].gate?.passed, true)
        XCTAssertEqual(ev.splits["valid"], 3, "validation metrics came from validation.json")
        XCTAssertEqual(try JSONValue.parse(Data(contentsOf: run.appendingPathComponent("two/metrics.json")))["gate"]?["passed"], .bool(true))

        // on_fail: continue runs the dependants of a failed gate.
        let run3 = dir.appendingPathComponent("run3")
        let r3 = try runner.run(plan(stages, overrides: ["stages.two.gate.on_fail=continue"]), runDirectory: run3, resume: false)
        XCTAssertEqual(r3.map(\.skipped), [false, false, false, false])
        XCTAssertEqual(r3[0].gate?.passed, false)
    }

    func testSelectionPicksOnValidationAndDependantsReadThePick() throws {
        let stages = """
            {name: 'student', pass: 'shrink', grid: {layers: [1, 2, 3]},
             select: {smallest: 'params', gate: {metric: 'full.NDCG@10', min_ratio: 0.5, of: 'base'}}},
            {name: 'kd', pass: 'distil', references: {teacher: 'base'}},
            {name: 'best', pass: 'shrink', input: 'base', grid: {layers: [1, 2, 3]}, select: {best: 'sampled.MRR'}},
            {name: 'after', pass: 'distil', input: 'best', references: {teacher: 'base'}}
            """
        let run = dir.appendingPathComponent("run")
        let runner = RecipeRunner(evaluator: DepthEvaluator(), quiet: true)
        let r = try runner.run(plan(stages), runDirectory: run, resume: false)
        XCTAssertEqual(r.map(\.name), ["student-layers1", "student-layers2", "student-layers3", "kd",
                                        "best-layers1", "best-layers2", "best-layers3", "after"])
        let sel = RecipeRunner.judgements(in: run).selections
        XCTAssertEqual(sel.map(\.group), ["student", "best"])
        // 1 layer: 0.1 < 0.5 × 0.4; 2 layers pass and are smaller than 3.
        XCTAssertEqual(sel[0].selected, "student-layers2")
        XCTAssertEqual(sel[0].candidates.map { $0.gate?.passed }, [false, true, true])
        XCTAssertTrue(sel[0].reason.contains("fewest params"), sel[0].reason)
        // sampled.MRR falls with depth in this evaluator: the 1-layer variant is best.
        XCTAssertEqual(sel[1].selected, "best-layers1")
        // kd (default input: the group) and after read the selected variants.
        XCTAssertEqual(try Checkpoint.load(directory: run.appendingPathComponent("kd/checkpoint")).config.numLayers, 2)
        XCTAssertEqual(try Checkpoint.load(directory: run.appendingPathComponent("after/checkpoint")).config.numLayers, 1)
        // Resume: everything skipped, the same picks.
        XCTAssertEqual(try runner.run(plan(stages), runDirectory: run, resume: true).map(\.skipped), Array(repeating: true, count: 8))
        XCTAssertEqual(RecipeRunner.judgements(in: run).selections.map(\.selected), ["student-layers2", "best-layers1"])
        // A bar nothing passes: no pick, and what reads the group is skipped with the reason.
        let run2 = dir.appendingPathComponent("run2")
        let r2 = try runner.run(plan(stages, overrides: ["stages.student.select.gate.min_ratio=2"]), runDirectory: run2, resume: false)
        XCTAssertEqual(r2[3].skipped, true)
        XCTAssertTrue(r2[3].reason?.contains("student selected no variant") ?? false, r2[3].reason ?? "")
        XCTAssertNil(RecipeRunner.judgements(in: run2).selections.first?.selected)
    }
}
