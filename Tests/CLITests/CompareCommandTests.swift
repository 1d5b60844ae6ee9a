import XCTest
import Foundation
import ModelFormat
import Engine
import TestKit

/// `slmrec compare` on the built binary, on a synthetic run directory written here.
final class CompareCommandTests: XCTestCase {
    /// A run with a 2-layer teacher and a 1-layer student, both evaluated on the same users.
    func makeRun() throws -> URL {
        let base = try CLI.tmp("compare")
        let dir = base.appendingPathComponent("runs/tiny")
        for (i, (name, layers, q)) in [("teacher", 2, 1.0), ("student", 1, 0.9)].enumerated() {
            var d = TinyModels.dims()
            d.layers = layers
            let sd = dir.appendingPathComponent(name)
            try ELLMRecModel.random(dims: d, seed: UInt64(i + 1)).checkpoint().save(to: sd.appendingPathComponent("checkpoint"))
            var ev = ["\"users\": 30"]
            for p in ["full", "sampled"] { for m in ["HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"] { ev.append("\"\(p).\(m)\": \(0.05 * q)") } }
            try Data("{\"train_seconds\": \(7 + i), \"seconds\": 8, \"trainable_parameters\": 100, \"evaluation\": {\(ev.joined(separator: ", "))}}".utf8)
                .write(to: sd.appendingPathComponent("metrics.json"))
            try Data("{\"pass\": \"finetune\", \"input\": \"init\", \"key\": \"k\"}".utf8).write(to: sd.appendingPathComponent("stage.json"))
        }
        try Data("""
        {"compare": ["teacher", "student"], "inputs": {}, "stages": [{"name": "teacher", "pass": "finetune"}, {"name": "student", "pass": "finetune"}],
         "evaluate": {"data": "data/none", "split": "test", "candidates": "both"}}
        """.utf8).write(to: dir.appendingPathComponent("recipe.effective.json"))
        try Data("{}".utf8).write(to: dir.appendingPathComponent("inputs.json"))
        return dir
    }

    func testCompareWritesTheFourFilesAndPrintsTheTables() throws {
        let run = try makeRun()
        let out = run.deletingLastPathComponent().appendingPathComponent("report-out")
        let r = try CLI.run(["compare", run.path, "--output", out.path, "--users-per-batch", "16", "--latency-users", "10", "--throughput-seconds", "0.05"])
        XCTAssertEqual(r.status, 0, r.all)
        for f in ["report.md", "report.csv", "report.json", "report.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f)
        }
        XCTAssertTrue(r.stdout.contains("| teacher | 0.0500 (100.0%)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("| student | 0.0450 (90.0%)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("Users/s (batch 16)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("p50 and p99 of 10 calls"), r.stdout)
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(r.stdout.contains(md.trimmingCharacters(in: .newlines)))
    }

    func testDefaultOutputIsInsideTheRunAndBaselineIsHonoured() throws {
        let run = try makeRun()
        let r = try CLI.run(["compare", run.path, "--skip-timing", "--baseline", "student", "--quiet"])
        XCTAssertEqual(r.status, 0, r.all)
        let md = try String(contentsOf: run.appendingPathComponent("report/report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("| student | 0.0450 (100.0%)"), md)
        XCTAssertTrue(md.contains("| teacher | 0.0500 (111.1%)"), md)
        XCTAssertFalse(r.stdout.contains("| teacher |"))
    }

    func testBadInputIsAClearError() throws {
        let empty = try CLI.tmp("compare-bad")
        let r = try CLI.run(["compare", empty.path, "--skip-timing"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains(empty.path) && r.stderr.contains("is not a run directory"), r.all)
        let none = try CLI.run(["compare"])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("at least one run or stage directory"), none.all)
        let run = try makeRun()
        let b = try CLI.run(["compare", run.path, "--skip-timing", "--baseline", "nobody"])
        XCTAssertNotEqual(b.status, 0)
        XCTAssertTrue(b.stderr.contains("\"nobody\" is not one of the models (teacher, student)"), b.all)
    }
}
