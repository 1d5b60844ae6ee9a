import XCTest
import Foundation
import TestKit

/// `data prepare --negatives-store counter`, `data negatives`, and evaluation on a counter store
/// giving the metrics of the same lists stored as text.
final class NegativesCommandTests: XCTestCase {
    func testCounterStoreEndToEnd() throws {
        let dir = try CLI.tmp("negatives")
        let raw = SharedData.repoRoot.appendingPathComponent("data/movielens-latest-small/ratings.csv").path
        let counter = dir.appendingPathComponent("counter").path, text = dir.appendingPathComponent("text").path
        var r = try CLI.run(["data", "prepare", "--input", raw, "--output", counter, "--negatives-store", "counter", "--negatives", "200"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertFalse(FileManager.default.fileExists(atPath: counter + "/negatives-test.txt"))
        r = try CLI.run(["data", "prepare", "--input", raw, "--output", text, "--negatives", "200"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertTrue(FileManager.default.fileExists(atPath: text + "/negatives-test.txt"))

        // The counter lists as text, then a text-store copy of the dataset that holds them.
        let copy = dir.appendingPathComponent("copy").path
        try FileManager.default.copyItem(atPath: text, toPath: copy)
        for split in ["valid", "test"] {
            let out = dir.appendingPathComponent("\(split).txt").path
            r = try CLI.run(["data", "negatives", "--data", counter, "--split", split, "--output", out])
            XCTAssertEqual(r.status, 0, r.all)
            XCTAssertTrue(r.stdout.contains("663 users' \(split) negatives (counter store)"), r.stdout)
            try FileManager.default.removeItem(atPath: copy + "/negatives-\(split).txt")
            try FileManager.default.copyItem(atPath: out, toPath: copy + "/negatives-\(split).txt")
        }
        // The copy's record still holds the text lists' sha256: drop it (the files are ours now).
        var rec = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: copy + "/dataset.json"))) as? [String: Any])
        var proc = rec["processing"] as! [String: Any]
        proc["negatives_sha256"] = nil
        rec["processing"] = proc
        try JSONSerialization.data(withJSONObject: rec).write(to: URL(fileURLWithPath: copy + "/dataset.json"))

        let ck = dir.appendingPathComponent("ck").path
        XCTAssertEqual(try CLI.run(["init", "--output", ck, "--items", "2398", "--layers", "1", "--hidden", "32", "--intermediate", "48",
                                    "--heads", "2", "--item-dim", "8", "--max-seq-len", "20"]).status, 0)
        func sampled(_ data: String) throws -> [String: Double] {
            let m = dir.appendingPathComponent("m-\(URL(fileURLWithPath: data).lastPathComponent).json").path
            let r = try CLI.run(["eval", "--checkpoint", ck, "--data", data, "--candidates", "sampled", "--output", m, "--force"])
            XCTAssertEqual(r.status, 0, r.all)
            let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: m))) as? [String: Any])
            return try XCTUnwrap(j["sampled"] as? [String: Double])
        }
        XCTAssertEqual(try sampled(counter), try sampled(copy), "a counter store evaluates as its lists written out")
        XCTAssertNotEqual(try sampled(counter), try sampled(text), "and the two stores draw different lists")

        // Bad input: a user outside the dataset, an edited text file, an existing output.
        r = try CLI.run(["data", "negatives", "--data", counter, "--split", "test", "--users", "1,664", "--output", dir.appendingPathComponent("x.txt").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("\"664\" is not a user id in 1…663"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.txt").path))
        let neg = text + "/negatives-test.txt"
        var lines = try String(contentsOfFile: neg, encoding: .utf8)
        lines = lines.replacingOccurrences(of: "\n5 ", with: "\n5 1 ")
        try lines.write(toFile: neg, atomically: true, encoding: .utf8)
        r = try CLI.run(["eval", "--checkpoint", ck, "--data", text, "--candidates", "sampled", "--output", dir.appendingPathComponent("m3.json").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains(neg) && r.stderr.contains("negatives_sha256.test"), r.stderr)
        let out = dir.appendingPathComponent("test.txt").path
        r = try CLI.run(["data", "negatives", "--data", counter, "--split", "test", "--output", out])
        XCTAssertNotEqual(r.status, 0, "an existing file is replaced only with --force")
        XCTAssertEqual(try CLI.run(["data", "negatives", "--data", counter, "--split", "test", "--output", out, "--force"]).status, 0)
    }

    func testSoftmaxFlagsAreChecked() throws {
        let dir = try CLI.tmp("softmax-flags")
        let raw = SharedData.repoRoot.appendingPathComponent("data/movielens-latest-small/ratings.csv").path
        let ds = dir.appendingPathComponent("ml").path
        XCTAssertEqual(try CLI.run(["data", "prepare", "--input", raw, "--output", ds]).status, 0)
        for (args, says) in [(["--sampled-negatives", "10"], "apply to --softmax sampled"),
                             (["--softmax", "sampled", "--sampled-negatives", "0"], "at least 1"),
                             (["--softmax", "sampled", "--sampled-negatives", "3000"], "2398 items"),
                             (["--softmax", "sampledd"], "sampledd")] {
            let out = dir.appendingPathComponent("s").path
            let r = try CLI.run(["sasrec", "--data", ds, "--output", out, "--epochs", "1", "--quiet"] + args)
            XCTAssertNotEqual(r.status, 0, args.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(says), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }
}
