import XCTest
import Foundation
import Common
#if canImport(FoundationXML)
import FoundationXML
#endif
import ModelFormat
import Engine
import Toolbench
import Evaluation
import Reports
import TestKit

/// A synthetic run directory as `slmrec run` writes it: tiny random checkpoints and
/// hand-written metrics.json files whose numbers the report must carry through unchanged.
struct SyntheticRun {
    let dir: URL
    let dataset: URL
    /// stage → its metrics.json evaluation object.
    var evaluations: [String: [String: Double]] = [:]
    var dims: [String: ModelDims] = [:]

    static func metrics(seed: Double, users: Int) -> [String: Double] {
        var e: [String: Double] = ["users": Double(users), "users_per_second": 1000]
        for (i, k) in MetricName.reportedQualified.enumerated() { e[k] = (0.01 + 0.003 * Double(i)) * seed }
        return e
    }

    /// teacher (2 layers, trained), pruned (1 layer, not trained), pruned-lora (1 layer + adapter).
    static func make(users: Int = 50, datasetHash: String? = nil, root: URL? = nil, runName: String = "synth") throws -> SyntheticRun {
        let base = try root ?? tmpDir("report")
        let fm = FileManager.default
        let dataset = base.appendingPathComponent("data/ds")
        try fm.createDirectory(at: dataset, withIntermediateDirectories: true)
        try Data("synthetic dataset\n".utf8).write(to: dataset.appendingPathComponent("sequences.txt"))
        let dir = base.appendingPathComponent("runs/\(runName)")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        var run = SyntheticRun(dir: dir, dataset: dataset)
        let stages: [(String, String, Int, Double, [String: JSONValue])] = [
            ("teacher", "finetune", 2, 1.0, ["train_seconds": .double(12.5), "seconds": .double(13.0), "trainable_parameters": .int(4321), "steps": .int(10)]),
            ("pruned", "prune-layers", 1, 0.8, ["seconds": .double(0.25)]),
            ("pruned-lora", "finetune", 1, 1.1, ["train_seconds": .double(3.5), "seconds": .double(4.0), "trainable_parameters": .int(256)]),
        ]
        for (i, (name, pass, layers, q, extra)) in stages.enumerated() {
            var d = TinyModels.dims()
            d.layers = layers
            let sd = dir.appendingPathComponent(name)
            try ELLMRecModel.random(dims: d, seed: UInt64(i + 1)).checkpoint().save(to: sd.appendingPathComponent("checkpoint"))
            if name == "pruned-lora" {
                let l = LoRAWeights(dims: d, rank: 2, alpha: 4, targets: [.q, .v])
                try l.adapter(dims: d).save(to: sd.appendingPathComponent("adapter"))
            }
            let ev = metrics(seed: q, users: users)
            var m = extra
            m["evaluation"] = .object(ev.mapValues { .double($0) })
            try JSONText.pretty(.object(m)).write(to: sd.appendingPathComponent("metrics.json"))
            try JSONText.pretty(.object(["pass": .string(pass), "input": .string(i == 0 ? "init" : "teacher"), "key": .string("k\(i)")]))
                .write(to: sd.appendingPathComponent("stage.json"))
            run.evaluations[name] = ev
            run.dims[name] = d
        }
        let recipe: JSONValue = .object([
            "compare": .array(stages.map { .string($0.0) }),
            "stages": .array(stages.map { .object(["name": .string($0.0), "pass": .string($0.1)]) }),
            "evaluate": .object(["data": .string("data/ds"), "split": .string("test"), "candidates": .string("both")]),
            "inputs": .object(["init": .string(dir.appendingPathComponent("teacher/checkpoint").path)]),
        ])
        try JSONText.pretty(recipe).write(to: dir.appendingPathComponent(ReportLoader.recipeFile))
        var inputs: [String: JSONValue] = [:]
        if let datasetHash { inputs["option_paths"] = .object([dataset.path: .string(datasetHash)]) }
        try JSONText.pretty(.object(inputs)).write(to: dir.appendingPathComponent("inputs.json"))
        return run
    }

    static func tmpDir(_ name: String) throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("slmrec-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}

/// Small timing budget: the structure is under test, not the speed.
func quickOptions(cwd: URL, baseline: String? = nil) -> CompareOptions {
    CompareOptions(baseline: baseline, timing: TimingOptions(batch: 8, throughputSeconds: 0.01, latencyCalls: 5), cwd: cwd)
}

final class ReportStructureTests: XCTestCase {
    func testMarkdownHasOneRowPerModelWithTheRunsNumbers() throws {
        let run = try SyntheticRun.make()
        let r = try ComparisonBuilder.build([run.dir], options: quickOptions(cwd: run.dir))
        XCTAssertEqual(r.rows.map(\.name), ["teacher", "pruned", "pruned-lora"])
        XCTAssertEqual(r.teacher, "teacher")
        XCTAssertTrue(r.warnings.isEmpty, "\(r.warnings)")
        let md = r.markdown()
        for name in ["teacher", "pruned", "pruned-lora"] {
            // Two quality tables and the cost table.
            XCTAssertEqual(md.components(separatedBy: "\n").filter { $0.hasPrefix("| \(name) |") }.count, 3, name)
        }
        let t = run.evaluations["teacher"]!, p = run.evaluations["pruned"]!
        let prunedFull = md.components(separatedBy: "\n").first { $0.hasPrefix("| pruned |") }!
        let cell = String(format: "%.4f (%.1f%%)", p["full.NDCG@10"]!, p["full.NDCG@10"]! / t["full.NDCG@10"]! * 100)
        XCTAssertTrue(prunedFull.contains(cell), "\(prunedFull) lacks \(cell)")
        XCTAssertTrue(md.contains("| teacher | " + String(format: "%.4f (100.0%%)", t["full.HR@1"]!)))
        let cost = md.components(separatedBy: "\n").filter { $0.hasPrefix("| pruned |") }.last!
        XCTAssertTrue(cost.contains("| prune-layers | 1 |"), cost)
        XCTAssertTrue(cost.contains("0.2 s\\*"), cost)   // stage seconds, marked
        XCTAssertTrue(md.contains("test split of `data/ds`"))
        XCTAssertTrue(md.contains("50 users"))
    }

    func testCSVAndJSONAgreeWithTheMetricsFiles() throws {
        let run = try SyntheticRun.make()
        let r = try ComparisonBuilder.build([run.dir], options: quickOptions(cwd: run.dir))
        let out = run.dir.appendingPathComponent("report")
        try r.write(to: out)
        for f in ComparisonReport.files { XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f) }

        let lines = try String(contentsOf: out.appendingPathComponent("report.csv"), encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = lines[0]
        XCTAssertEqual(header, ComparisonReport.csvColumns)
        XCTAssertEqual(lines.count, 4)
        func col(_ row: [String], _ name: String) -> String { row[header.firstIndex(of: name)!] }
        let t = run.evaluations["teacher"]!
        for row in lines.dropFirst() {
            let name = row[0], ev = run.evaluations[name]!
            for k in MetricName.reportedQualified {
                XCTAssertEqual(Double(col(row, k)), ev[k], "\(name) \(k)")
                XCTAssertEqual(Double(col(row, "\(k) % teacher"))!, ev[k]! / t[k]! * 100, accuracy: 1e-9)
            }
            let d = run.dims[name]!
            let total = ParamName.specs(d).reduce(0) { $0 + $1.shape.reduce(1, *) }
            let item = (d.numItems + 1) * d.itemDim
            if name != "pruned-lora" {
                XCTAssertEqual(Int(col(row, "parameters")), total, name)
            }
            XCTAssertEqual(Int(col(row, "non_embedding_parameters"))! + item, Int(col(row, "parameters"))!, name)
            XCTAssertEqual(Int(col(row, "layers")), d.layers)
            let ckBytes = try FileManager.default.contentsOfDirectory(atPath: run.dir.appendingPathComponent("\(name)/checkpoint").path)
                .map { try FileManager.default.attributesOfItem(atPath: run.dir.appendingPathComponent("\(name)/checkpoint/\($0)").path)[.size] as! NSNumber }
                .reduce(0) { $0 + $1.intValue }
            if name == "pruned-lora" {
                XCTAssertGreaterThan(Int(col(row, "disk_bytes"))!, ckBytes)   // checkpoint + adapter
            } else {
                XCTAssertEqual(Int(col(row, "disk_bytes")), ckBytes)
            }
            XCTAssertGreaterThan(Double(col(row, "users_per_second"))!, 0)
            XCTAssertEqual(col(row, "latency_calls"), "5")
        }
        XCTAssertEqual(col(lines[1], "train_seconds"), "12.5")
        XCTAssertEqual(col(lines[1], "trainable_parameters"), "4321")
        XCTAssertEqual(col(lines[2], "train_seconds"), "0.25")
        XCTAssertEqual(col(lines[2], "train_seconds_field"), "seconds")
        XCTAssertEqual(col(lines[2], "trainable_parameters"), "")

        // The adapter's parameters are counted: pruned-lora = pruned (same dims) + LoRA A and B.
        let d = run.dims["pruned-lora"]!
        let lora = d.layers * ((2 * d.hidden + 2 * d.qDim) + (2 * d.hidden + 2 * d.kvDim))
        XCTAssertEqual(Int(col(lines[3], "parameters"))!, Int(col(lines[2], "parameters"))! + lora)

        let json = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        let models = json.objectValue!["models"]!.arrayValue!
        XCTAssertEqual(models.count, 3)
        for m in models {
            let o = m.objectValue!, name = o["name"]!.stringValue!
            let q = o["quality"]!.objectValue!, pct = o["percent_of_teacher"]!.objectValue!
            for k in MetricName.reportedQualified {
                XCTAssertEqual(q[k]?.doubleValue, run.evaluations[name]![k], "\(name) \(k)")
                XCTAssertEqual(pct[k]!.doubleValue!, run.evaluations[name]![k]! / t[k]! * 100, accuracy: 1e-9)
            }
            XCTAssertEqual(o["comparable"], .bool(true))
        }
        XCTAssertEqual(json.objectValue!["teacher"], .string("teacher"))
    }

    func testSVGParsesWithOneLabelledPointPerModelAndTheParetoLine() throws {
        let run = try SyntheticRun.make()
        let r = try ComparisonBuilder.build([run.dir], options: quickOptions(cwd: run.dir))
        let svg = r.svg()
        let probe = SVGProbe()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = probe
        XCTAssertTrue(parser.parse(), "SVG is not well-formed XML: \(String(describing: parser.parserError))")
        XCTAssertEqual(probe.root, "svg")
        XCTAssertEqual(probe.points.sorted(), ["pruned", "pruned-lora", "teacher"])
        for n in probe.points { XCTAssertTrue(probe.texts.contains(n), "no label \(n)") }
        XCTAssertEqual(probe.polylines.count, 1)
        let front = r.paretoFront
        XCTAssertFalse(front.isEmpty)
        XCTAssertEqual(probe.polylines[0].split(separator: " ").count, front.count)
        XCTAssertTrue(probe.texts.contains { $0.contains("NDCG@10") })
        XCTAssertTrue(probe.texts.contains { $0.contains("ms per user") })
        XCTAssertGreaterThanOrEqual(probe.ticks, 4)
    }

    func testParetoFrontKeepsOnlyNonDominatedModels() {
        func row(_ n: String, _ q: Double, _ ms: Double) -> ReportRow {
            var r = ReportRow(name: n, kind: .stage, pass: "x", directory: URL(fileURLWithPath: "/tmp"))
            r.quality[ComparisonReport.chartKey] = q
            r.context = EvalContext(dataset: "d", datasetID: "h", split: "test", candidates: "both", users: 10)
            r.timing = InferenceTiming(usersPerSecond: 1000 / ms, batch: 512, batches: 1, latencyP50Ms: 1, latencyP99Ms: 1, latencyCalls: 1)
            return r
        }
        let r = ComparisonReport(title: "t", rows: [row("big", 0.30, 4), row("mid", 0.28, 2), row("bad", 0.20, 3), row("tiny", 0.10, 0.5), row("worse-tiny", 0.09, 0.6)],
                                 teacher: "big", timingSetup: "", created: "")
        XCTAssertEqual(r.paretoFront, ["tiny", "mid", "big"])
    }

    func testModelsEvaluatedDifferentlyAreMarkedNotComparable() throws {
        let root = try SyntheticRun.tmpDir("mixed")
        let a = try SyntheticRun.make(users: 50, datasetHash: "fnv1a64:aaaa", root: root.appendingPathComponent("a"), runName: "base")
        let b = try SyntheticRun.make(users: 40, datasetHash: "fnv1a64:bbbb", root: root.appendingPathComponent("b"), runName: "other")
        let r = try ComparisonBuilder.build([a.dir, b.dir.appendingPathComponent("pruned")], options: quickOptions(cwd: root))
        // The same stage name from two runs is qualified with the run's name.
        XCTAssertEqual(r.rows.map(\.name), ["teacher", "base/pruned", "pruned-lora", "other/pruned"])
        XCTAssertTrue(r.comparable(r.rows[1]))
        let other = r.rows[3]
        XCTAssertFalse(r.comparable(other))
        XCTAssertNil(r.percentOfTeacher(other, "full.NDCG@10"))
        XCTAssertTrue(r.warnings.contains { $0.contains("NOT comparable") && $0.contains("fnv1a64:bbbb") && $0.contains("40 users vs 50") }, "\(r.warnings)")
        let md = r.markdown()
        XCTAssertTrue(md.contains("> **Warning:**"))
        XCTAssertTrue(md.contains("†"))
        let line = md.components(separatedBy: "\n").first { $0.hasPrefix("| other/pruned |") }!
        XCTAssertFalse(line.contains("%"), line)
        XCTAssertFalse(r.chartPoints.contains { $0.name == "other/pruned" })
        XCTAssertTrue(r.csv().contains("other/pruned,stage,prune-layers,false,1,"))
    }

    func testAModelWithoutEvaluationShowsDashesAndANote() throws {
        let run = try SyntheticRun.make()
        let m = run.dir.appendingPathComponent("pruned/metrics.json")
        try JSONText.pretty(.object(["seconds": .double(0.5), "evaluation": .string("no dataset here")])).write(to: m)
        let r = try ComparisonBuilder.build([run.dir], options: CompareOptions(skipTiming: true, cwd: run.dir))
        let row = r.rows[1]
        XCTAssertTrue(row.quality.isEmpty)
        XCTAssertTrue(row.notes.contains("not evaluated: no dataset here"))
        let md = r.markdown()
        let line = md.components(separatedBy: "\n").first { $0.hasPrefix("| pruned |") }!
        XCTAssertEqual(line, "| pruned | " + Array(repeating: "-", count: MetricName.reported.count).joined(separator: " | ") + " |")
        XCTAssertTrue(r.warnings.contains { $0.contains("`pruned` has no evaluation") })
        XCTAssertTrue(md.contains("not evaluated: no dataset here"))
        XCTAssertNil(r.rows[0].timing)
        XCTAssertTrue(md.contains("Timing skipped"))
    }

    func testATeacherWithoutEvaluationGivesNoPercentagesButKeepsTheOthersComparable() throws {
        let run = try SyntheticRun.make()
        try JSONText.pretty(.object(["seconds": .double(1)])).write(to: run.dir.appendingPathComponent("teacher/metrics.json"))
        let r = try ComparisonBuilder.build([run.dir], options: CompareOptions(skipTiming: true, cwd: run.dir))
        XCTAssertEqual(r.referenceRow?.name, "pruned")
        XCTAssertTrue(r.comparable(r.rows[2]))
        XCTAssertNil(r.percentOfTeacher(r.rows[2], "full.NDCG@10"))
        let md = r.markdown()
        XCTAssertFalse(md.contains("†"))
        XCTAssertTrue(md.contains("The teacher `teacher` has no evaluation: no percentages."))
        let line = md.components(separatedBy: "\n").first { $0.hasPrefix("| pruned-lora |") }!
        XCTAssertFalse(line.contains("%"), line)
    }

    func testNotARunDirectoryIsAClearError() throws {
        let empty = try SyntheticRun.tmpDir("notarun")
        XCTAssertThrowsError(try ComparisonBuilder.build([empty], options: CompareOptions(skipTiming: true))) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains(empty.path) && s.contains("is not a run directory"), s)
        }
        let missing = empty.appendingPathComponent("nope")
        XCTAssertThrowsError(try ComparisonBuilder.build([missing], options: CompareOptions(skipTiming: true))) { e in
            XCTAssertTrue("\(e)".contains("nope: does not exist"), "\(e)")
        }
        let run = try SyntheticRun.make()
        XCTAssertThrowsError(try ComparisonBuilder.build([run.dir], options: CompareOptions(baseline: "techer", skipTiming: true, cwd: run.dir))) { e in
            XCTAssertTrue("\(e)".contains("did you mean \"teacher\""), "\(e)")
        }
    }

    func testBaselineAndSASRecRow() throws {
        let run = try SyntheticRun.make()
        let sas = run.dir.deletingLastPathComponent().appendingPathComponent("sasrec")
        try FileManager.default.createDirectory(at: sas, withIntermediateDirectories: true)
        try Data("{\"hidden\": 64}".utf8).write(to: sas.appendingPathComponent("config.json"))   // SASRec writes its own config.json
        let full: [String: JSONValue] = ["HR@10": .double(0.05), "NDCG@10": .double(0.025), "MRR": .double(0.02)]
        // The layout `slmrec sasrec` writes: test metrics under "test".
        try JSONText.pretty(.object(["model": .string("sasrec"), "dataset": .string(run.dataset.path),
                                     "test": .object(["full": .object(full), "users": .int(50)]),
                                     "parameters": .int(1234), "train_wall_seconds": .double(9.0)]))
            .write(to: sas.appendingPathComponent("metrics.json"))
        let r = try ComparisonBuilder.build([run.dir, sas], options: CompareOptions(baseline: "pruned", skipTiming: true, cwd: run.dir))
        XCTAssertEqual(r.teacher, "pruned")
        let s = r.rows.last!
        XCTAssertEqual(s.kind, .sasrec)
        XCTAssertTrue(r.comparable(s), "\(r.warnings)")   // same dataset content, split and users
        XCTAssertEqual(r.percentOfTeacher(s, "full.NDCG@10")!, 0.025 / run.evaluations["pruned"]!["full.NDCG@10"]! * 100, accuracy: 1e-9)
        XCTAssertNil(s.quality["sampled.NDCG@10"])
        XCTAssertEqual(r.percentOfTeacher(r.rows[1], "full.MRR")!, 100, accuracy: 1e-12)
        let cost = r.markdown().components(separatedBy: "\n").filter { $0.hasPrefix("| sasrec |") }.last!
        XCTAssertTrue(cost.hasPrefix("| sasrec | sasrec | - | 1.2K |"), cost)
    }
}

/// Collects what the SVG tests look at.
final class SVGProbe: NSObject, XMLParserDelegate {
    var root: String?
    var points: [String] = []
    var polylines: [String] = []
    var texts: [String] = []
    var ticks = 0
    private var inText = false, isTick = false, current = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes a: [String: String] = [:]) {
        if root == nil { root = name }
        if name == "g", a["class"] == "point", let m = a["data-model"] { points.append(m) }
        if name == "polyline", a["class"] == "pareto" { polylines.append(a["points"] ?? "") }
        if name == "text" { inText = true; current = ""; isTick = a["class"] == "tick" }
    }
    func parser(_ parser: XMLParser, foundCharacters s: String) { if inText { current += s } }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text" { texts.append(current); if isTick { ticks += 1 }; inText = false }
    }
}

/// A run with gates and a selection: the report marks the failed gate (table, section, chart),
/// lists the stage a gate kept from running, and shows the pick with every candidate.
final class ReportJudgementTests: XCTestCase {
    func testGatesAndSelectionAppearInTheReport() throws {
        let run = try SyntheticRun.make()
        let failed = GateOutcome(metric: "valid.full.NDCG@10", value: 0.02, threshold: 0.03, of: "teacher", referenceValue: 0.04, passed: false)
        let m = run.dir.appendingPathComponent("pruned/metrics.json")
        var o = try JSONValue.parse(Data(contentsOf: m)).objectValue ?? [:]
        o["gate"] = try JSONValue.encoding(failed)
        try JSONText.write(.object(o), to: m)
        // The recipe also compared a stage the failed gate kept from running.
        let rf = run.dir.appendingPathComponent(ReportLoader.recipeFile)
        var recipe = try JSONValue.parse(Data(contentsOf: rf)).objectValue ?? [:]
        recipe["compare"] = .array((recipe["compare"]?.arrayValue ?? []) + [.string("pruned-kd")])
        try JSONText.write(.object(recipe), to: rf)
        try JSONText.write(encoding: Judgements.Gates(gates: ["pruned": failed], skipped: ["pruned-kd": "pruned failed its gate"]),
                           to: run.dir.appendingPathComponent(RecipeRunner.gatesFile))
        let sel = SelectionRecord(group: "student", rule: "smallest params", selected: "pruned-lora", reason: "the fewest params (1,234) of the 1 variants that passed the gate",
                                  candidates: [.init(variant: "pruned", criterion: 1000, gate: failed), .init(variant: "pruned-lora", criterion: 1234, gate: nil)])
        try JSONText.write(encoding: [sel], to: run.dir.appendingPathComponent(RecipeRunner.selectionsFile))

        let r = try ComparisonBuilder.build([run.dir], options: quickOptions(cwd: run.dir))
        XCTAssertEqual(r.rows.map(\.name), ["teacher", "pruned", "pruned-lora"], "a stage that was not run is no row (and no error)")
        XCTAssertEqual(r.rows[1].gate, failed)
        let md = r.markdown()
        XCTAssertTrue(md.contains("## Gates and selection (validation split)"), md)
        XCTAssertTrue(md.contains("| pruned | valid.full.NDCG@10 | 0.0200 | 0.0300 (0.7500 × `teacher`) | **failed** ✗ |"), md)
        XCTAssertTrue(md.contains("- `pruned-kd` was not run: pruned failed its gate."), md)
        XCTAssertTrue(md.contains("**student** (smallest params): selected `pruned-lora`"), md)
        XCTAssertTrue(md.contains("| pruned-lora ← | 1234 | - |"), md)
        XCTAssertTrue(r.svg().contains("class=\"gate-failed\"") && r.svg().contains("pruned ✗ gate"))
        let costRow = md.components(separatedBy: "\n").first { $0.hasPrefix("| pruned | prune-layers") }
        XCTAssertTrue(md.contains(" Gate (valid) |") && (costRow?.hasSuffix("| **failed** ✗ |") ?? false), costRow ?? md)
    }
}
