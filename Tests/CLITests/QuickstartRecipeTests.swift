import XCTest
import Foundation
import TestKit

/// The quickstart recipe in a reduced form (tiny model, a fraction of an epoch) on the
/// bundled data: the run completes, the report has one row per compared model, and every
/// quality number in it is the one the run's stage wrote.
final class QuickstartRecipeTests: XCTestCase {
    func testReducedQuickstartReport() throws {
        let dir = try CLI.tmp("quickstart")
        let root = SharedData.repoRoot
        let data = dir.appendingPathComponent("data").path, initDir = dir.appendingPathComponent("init").path
        var r = try CLI.run(["data", "prepare", "--input", root.appendingPathComponent("data/movielens-latest-small/ratings.csv").path, "--output", data])
        XCTAssertEqual(r.status, 0, r.all)
        r = try CLI.run(["init", "--output", initDir, "--data", data, "--layers", "2", "--hidden", "16", "--intermediate", "24",
                         "--heads", "2", "--item-dim", "8", "--prompt-length", "2", "--max-seq-len", "10"])
        XCTAssertEqual(r.status, 0, r.all)
        let run = dir.appendingPathComponent("run")
        r = try CLI.run(["run", root.appendingPathComponent("recipes/quickstart.json5").path, "--output", run.path,
                         "--set", "data=\(data)", "--set", "init=\(initDir)", "--set", "epochs=0.1", "--set", "student_layers=1",
                         "--set", "evaluate.users=100", "--skip-report-timing"])
        XCTAssertEqual(r.status, 0, r.all)
        let report = run.appendingPathComponent("report")
        for f in ["report.md", "report.csv", "report.json", "report.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: report.appendingPathComponent(f).path), f)
        }
        let md = try String(contentsOf: report.appendingPathComponent("report.md"), encoding: .utf8)
        let compared = ["teacher", "pruned", "pruned-ft", "slmrec", "slmrec-int8"]
        for m in compared { XCTAssertTrue(md.contains("| \(m) |"), "report.md has a row for \(m)") }
        XCTAssertTrue(r.stdout.contains("| slmrec-int8 |"), "slmrec run prints the table")

        // Every quality number in report.json is the stage's own evaluation.
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: report.appendingPathComponent("report.json"))) as? [String: Any])
        let rows = try XCTUnwrap(json["models"] as? [[String: Any]], "report.json lists the models: \(json.keys)")
        XCTAssertEqual(rows.compactMap { $0["name"] as? String }, compared)
        var checked = 0
        for row in rows {
            let name = try XCTUnwrap(row["name"] as? String)
            let metrics = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("\(name)/metrics.json"))) as? [String: Any])
            let eval = try XCTUnwrap(metrics["evaluation"] as? [String: Double], "\(name) was evaluated")
            XCTAssertEqual(eval["users"], 100)
            let quality = try XCTUnwrap(row["quality"] as? [String: Double], name)
            for (k, v) in eval where k.hasPrefix("full.") || k.hasPrefix("sampled.") {
                guard let mine = quality[k] else { continue }
                XCTAssertEqual(mine, v, accuracy: 1e-12, "\(name) \(k)")
                checked += 1
            }
            XCTAssertEqual(row["layers"] as? Int, name == "teacher" ? 2 : 1)
            if let pct = (row["percent_of_teacher"] as? [String: Double])?["full.MRR"], let t = quality["full.MRR"],
               let teacher = (rows[0]["quality"] as? [String: Double])?["full.MRR"], teacher > 0 {
                XCTAssertEqual(pct, 100 * t / teacher, accuracy: 1e-9, "\(name) % of teacher")
            }
        }
        XCTAssertGreaterThan(checked, 40, "the report's quality numbers were found and compared")
    }
}

final class ComparedInputTests: XCTestCase {
    /// A recipe input named in `compare` (the teacher a recipe starts from) is evaluated like
    /// the stages, so the report has its numbers and the percentages relative to it.
    func testComparedInputIsEvaluated() throws {
        let dir = try CLI.tmp("inputs")
        let data = try TinyModels.preparePatternDataset(in: dir)
        let base = dir.appendingPathComponent("base").path
        XCTAssertEqual(try CLI.run(["init", "--output", base, "--data", data.path, "--layers", "2", "--hidden", "16",
                                    "--intermediate", "24", "--heads", "2", "--item-dim", "8", "--prompt-length", "2"]).status, 0)
        let recipe = dir.appendingPathComponent("r.json5")
        try """
        { inputs: { base: "\(base)" }, evaluate: { data: "\(data.path)", split: "test", candidates: "both" },
          stages: [ { name: "first", pass: "prune-layers", input: "base", options: { strategy: "keep-first", keep: 1 } } ],
          compare: ["base", "first"] }
        """.write(to: recipe, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run")
        let r = try CLI.run(["run", recipe.path, "--output", run.path, "--skip-report-timing"])
        XCTAssertEqual(r.status, 0, r.all)
        let m = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("inputs/base/metrics.json"))) as? [String: Any])
        let eval = try XCTUnwrap(m["evaluation"] as? [String: Double])
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("report/report.json"))) as? [String: Any])
        let rows = try XCTUnwrap(json["models"] as? [[String: Any]])
        XCTAssertEqual(rows.first?["name"] as? String, "base")
        let q = try XCTUnwrap(rows.first?["quality"] as? [String: Double])
        XCTAssertEqual(q["full.MRR"], eval["full.MRR"])
        XCTAssertEqual((rows.last?["percent_of_teacher"] as? [String: Double])?["full.MRR"] ?? -1,
                       100 * ((rows.last?["quality"] as? [String: Double])?["full.MRR"] ?? 0) / (q["full.MRR"] ?? 1), accuracy: 1e-9)
    }
}
