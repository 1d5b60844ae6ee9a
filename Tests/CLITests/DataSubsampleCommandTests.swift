import XCTest
import Foundation
import RecData
import TestKit

/// `data subsample` end to end: a tiny prepared dataset subsampled by the binary, read back by
/// the library and by `init`/`eval`, and the output guard `data prepare` has.
final class DataSubsampleCommandTests: XCTestCase {
    let tiny = ["--layers", "1", "--hidden", "16", "--intermediate", "24", "--heads", "2", "--item-dim", "8",
                "--prompt-length", "2", "--max-seq-len", "10"]

    func testSubsampleThenLoadAndEvaluate() throws {
        let dir = try CLI.tmp("subsample")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try TinyModels.preparePatternDataset(in: dir)   // 40 users, 11 items, 5 negatives
        let src = try PreparedDataset.load(directory: data)
        XCTAssertEqual(src.numUsers, 40)
        let out = dir.appendingPathComponent("sub").path
        let args = ["data", "subsample", "--data", data.path, "--users", "10", "--seed", "7", "--output", out]
        var r = try CLI.run(args)
        XCTAssertEqual(r.status, 0, r.all)

        let sub = try PreparedDataset.load(directory: URL(fileURLWithPath: out))
        let picked = DataSubsample.sampleUsers(count: 10, of: 40, seed: 7)
        XCTAssertEqual(sub.numUsers, 10)
        XCTAssertEqual(sub.numItems, 11)
        XCTAssertEqual(sub.sequences, picked.map { src.sequences[$0 - 1] })
        XCTAssertEqual(try sub.negatives(.test), try picked.map { try src.negatives(.test)[$0 - 1] })
        let interactions = sub.sequences.reduce(0) { $0 + $1.count }
        XCTAssertEqual(r.stdout.split(separator: "\n").first.map(String.init),
                       "10 users, 11 items, \(interactions) interactions, "
                           + String(format: "average length %.2f, density %.4f%%", Double(interactions) / 10, Double(interactions) / 110 * 100))
        XCTAssertTrue(r.stdout.contains("wrote \(out)"), r.stdout)
        let record = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/dataset.json"))) as? [String: Any])
        let s = try XCTUnwrap(record["subsample"] as? [String: Any])
        XCTAssertEqual(s["source"] as? String, data.path)
        XCTAssertEqual(s["users"] as? Int, 10)
        XCTAssertEqual(s["source_users"] as? Int, 40)
        XCTAssertEqual(s["seed"] as? Int, 7)

        // The commands read it as they read data prepare's output.
        let ck = dir.appendingPathComponent("ck").path
        r = try CLI.run(["init", "--output", ck, "--data", out] + tiny)
        XCTAssertEqual(r.status, 0, r.all)
        let metrics = dir.appendingPathComponent("m.json").path
        r = try CLI.run(["eval", "--checkpoint", ck, "--data", out, "--candidates", "both", "--output", metrics])
        XCTAssertEqual(r.status, 0, r.all)
        let m = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: metrics))) as? [String: Any])
        XCTAssertEqual(m["users"] as? Int, 10)

        // The output guard of data prepare.
        r = try CLI.run(args)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("already holds a prepared dataset"), r.stderr)
        r = try CLI.run(["data", "subsample", "--data", data.path, "--users", "10", "--seed", "8", "--output", out, "--force"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertEqual(try PreparedDataset.load(directory: URL(fileURLWithPath: out)).sequences,
                       DataSubsample.sampleUsers(count: 10, of: 40, seed: 8).map { src.sequences[$0 - 1] }, "--force replaced it")
        let before = try Data(contentsOf: data.appendingPathComponent("sequences.txt"))
        r = try CLI.run(["data", "subsample", "--data", data.path, "--users", "10", "--output", data.path, "--force"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("is an input of this command (--data)"), r.stderr)
        r = try CLI.run(["data", "subsample", "--data", data.path, "--users", "10", "--output", data.path + "/sub"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("is inside an input directory"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: data.appendingPathComponent("sequences.txt")), before, "the source is untouched")
        let notes = dir.appendingPathComponent("notes")
        try FileManager.default.createDirectory(at: notes, withIntermediateDirectories: true)
        try "precious".write(to: notes.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        r = try CLI.run(["data", "subsample", "--data", data.path, "--users", "10", "--output", notes.path, "--force"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("notes.txt, which slmrec never writes in a prepared dataset"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: notes.path), ["notes.txt"])

        // --users outside 1…40: the option, the range, and no output.
        let none = dir.appendingPathComponent("none").path
        r = try CLI.run(["data", "subsample", "--data", data.path, "--users", "41", "--output", none])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--users: 41 is outside 1…40"), r.stderr)
        r = try CLI.run(["data", "subsample", "--data", data.path, "--users", "0", "--output", none])
        XCTAssertEqual(r.status, 64, r.all)
        XCTAssertTrue(r.stderr.contains("--users must be at least 1"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: none))
    }
}
