import XCTest
import Foundation
import TestKit

/// `data prepare` + `eval` end to end on the bundled MovieLens data with a tiny random checkpoint.
final class DataCommandTests: XCTestCase {
    func testPrepareThenEvaluate() throws {
        let dir = try CLI.tmp("data")
        let raw = SharedData.repoRoot.appendingPathComponent("data/movielens-latest-small/ratings.csv").path
        let ds = dir.appendingPathComponent("ml").path
        var r = try CLI.run(["data", "prepare", "--input", raw, "--output", ds])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertTrue(r.stdout.contains("663 users"), r.stdout)
        XCTAssertTrue(r.stdout.contains("2,398 items"), r.stdout)
        for f in ["sequences.txt", "items.tsv", "users.tsv", "negatives-valid.txt", "negatives-test.txt", "dataset.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: ds + "/" + f), f)
        }
        let ck = dir.appendingPathComponent("ck").path
        r = try CLI.run(["init", "--output", ck, "--items", "2398", "--layers", "1", "--hidden", "32", "--intermediate", "48",
                         "--heads", "2", "--item-dim", "8", "--max-seq-len", "20"])
        XCTAssertEqual(r.status, 0, r.all)
        let metrics = dir.appendingPathComponent("m.json").path, ranks = dir.appendingPathComponent("r.tsv").path
        r = try CLI.run(["eval", "--checkpoint", ck, "--data", ds, "--split", "test", "--candidates", "both",
                         "--output", metrics, "--ranks", ranks])
        XCTAssertEqual(r.status, 0, r.all)
        let m = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: metrics))) as? [String: Any])
        XCTAssertEqual(m["users"] as? Int, 663)
        let full = try XCTUnwrap(m["full"] as? [String: Double]), sampled = try XCTUnwrap(m["sampled"] as? [String: Double])
        for k in ["HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR", "MRR@10"] {
            XCTAssertNotNil(full[k], k); XCTAssertNotNil(sampled[k], k)
        }
        // A random model: sampled ranking (1000 candidates) is easier than full (~2,300).
        XCTAssertGreaterThan(sampled["MRR"]!, full["MRR"]!)
        let lines = try String(contentsOfFile: ranks, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 663)
        let cols = lines[0].split(separator: "\t")
        XCTAssertEqual(cols.count, 3)
        XCTAssertLessThanOrEqual(Int(cols[1])!, 1000)
        // --users: a fixed subset, same numbers twice (the metrics file is ours: --force replaces it).
        r = try CLI.run(["eval", "--checkpoint", ck, "--data", ds, "--candidates", "full", "--users", "100", "--output", metrics])
        XCTAssertNotEqual(r.status, 0, "an existing metrics file is replaced only with --force")
        XCTAssertTrue(r.stderr.contains("already holds a metrics file (slmrec eval)"), r.stderr)
        r = try CLI.run(["eval", "--checkpoint", ck, "--data", ds, "--candidates", "full", "--users", "100", "--output", metrics, "--force"])
        XCTAssertEqual(r.status, 0, r.all)
        let a = try Data(contentsOf: URL(fileURLWithPath: metrics))
        XCTAssertEqual(try CLI.run(["eval", "--checkpoint", ck, "--data", ds, "--candidates", "full", "--users", "100", "--output", metrics, "--force"]).status, 0)
        let b = try Data(contentsOf: URL(fileURLWithPath: metrics))
        let ma = try JSONSerialization.jsonObject(with: a) as! [String: Any], mb = try JSONSerialization.jsonObject(with: b) as! [String: Any]
        XCTAssertEqual(ma["users"] as? Int, 100)
        XCTAssertEqual(ma["full"] as? [String: Double], mb["full"] as? [String: Double])

        // Item count mismatch: a clear error, no metrics written.
        let ck2 = dir.appendingPathComponent("ck2").path
        XCTAssertEqual(try CLI.run(["init", "--output", ck2, "--items", "50", "--layers", "1", "--hidden", "16", "--intermediate", "24", "--heads", "2", "--item-dim", "4"]).status, 0)
        let m2 = dir.appendingPathComponent("m2.json").path
        r = try CLI.run(["eval", "--checkpoint", ck2, "--data", ds, "--output", m2])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("2398") && r.stderr.contains("50"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: m2))
    }

    func testPrepareBadInput() throws {
        let dir = try CLI.tmp("data-bad")
        let raw = dir.appendingPathComponent("ratings.csv")
        try Data("userId,movieId,rating,timestamp\n1,2,5,100\n1,x,4,101\n".utf8).write(to: raw)
        let out = dir.appendingPathComponent("out").path
        var r = try CLI.run(["data", "prepare", "--input", raw.path, "--output", out])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("ratings.csv") && r.stderr.contains("3"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no partial output directory")
        r = try CLI.run(["data", "prepare", "--input", raw.path, "--output", out, "--skip-bad-lines", "--kcore", "1"])
        XCTAssertEqual(r.status, 0, r.all)
    }
}
