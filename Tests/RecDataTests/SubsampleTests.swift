import Foundation
import XCTest
@testable import Common
@testable import RecData

/// `data subsample` (Subsample.swift): which users are drawn, and that the output is the
/// source restricted to them, with the catalogue untouched.
final class SubsampleTests: XCTestCase {
    /// 12 raw users 1000, 1003, … with 3…7 items each from 30 raw items 500…529, rated 5 at
    /// increasing times: prepare renumbers both (first appearance), so new and raw ids differ.
    private func source(_ dir: URL, negatives: Int = 20) throws -> PreparedDataset {
        var lines = ["userId,movieId,rating,timestamp"]
        for u in 0..<12 {
            for j in 0..<(3 + u % 5) { lines.append("\(1000 + 3 * u),\(500 + (u * 7 + j * 3) % 30),5,\(j)") }
        }
        let raw = try writeFile(dir, "ratings.csv", lines.joined(separator: "\n") + "\n")
        return try prepare(raw, in: dir, negatives: negatives, out: "src").1
    }

    private func subsample(_ src: URL, _ dir: URL, users: Int, seed: UInt64 = 42, out: String) throws -> (DatasetStats, PreparedDataset) {
        let url = dir.appendingPathComponent(out)
        let stats = try DataSubsample.run(SubsampleOptions(data: src, output: url, users: users, seed: seed), progress: false)
        return (stats, try PreparedDataset.load(directory: url))
    }

    private func json(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url.appendingPathComponent("dataset.json"))) as? [String: Any])
    }

    /// Rows of a TSV after its header.
    private func tsvRows(_ url: URL) throws -> [[String]] {
        try readText(url).split(separator: "\n").dropFirst().map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    func testSampleUsersIsSeededSortedAndWithoutReplacement() {
        let a = DataSubsample.sampleUsers(count: 5, of: 12, seed: 42)
        XCTAssertEqual(a, [1, 4, 7, 11, 12], "a regression anchor: SeededRNG(42, stream: \"subsample-users\")")
        XCTAssertEqual(DataSubsample.sampleUsers(count: 5, of: 12, seed: 42), a, "same seed, same users")
        XCTAssertNotEqual(DataSubsample.sampleUsers(count: 5, of: 12, seed: 43), a, "another seed, other users")
        XCTAssertEqual(DataSubsample.sampleUsers(count: 12, of: 12, seed: 9), Array(1...12), "all of them: a copy")
        XCTAssertEqual(DataSubsample.sampleUsers(count: 1, of: 1, seed: 9), [1])
        for seed in UInt64(0)..<50 {
            let s = DataSubsample.sampleUsers(count: 7, of: 20, seed: seed)
            XCTAssertEqual(s.count, 7)
            XCTAssertEqual(s, s.sorted(), "source order")
            XCTAssertEqual(Set(s).count, 7, "without replacement")
            XCTAssertTrue(s.allSatisfy { (1...20).contains($0) })
        }
    }

    /// Every 2-subset of 5 users is equally likely (1/10): 20,000 draws, each count within
    /// 5 standard deviations (√(20000·0.1·0.9) ≈ 42) of 2,000. A sampler biased towards early
    /// or late users (e.g. "take each with probability 2/5") fails this.
    func testSampleUsersIsUniformOverSubsets() {
        var counts: [[Int]: Int] = [:]
        for seed in UInt64(0)..<20_000 { counts[DataSubsample.sampleUsers(count: 2, of: 5, seed: seed), default: 0] += 1 }
        XCTAssertEqual(counts.count, 10)
        for (subset, n) in counts { XCTAssertEqual(Double(n), 2000, accuracy: 210, "\(subset)") }
    }

    func testSubsampleIsTheSourceRestrictedToTheSampledUsers() throws {
        let dir = try makeTempDir(self)
        let src = try source(dir)
        XCTAssertEqual(src.numUsers, 12)
        let (stats, sub) = try subsample(src.directory, dir, users: 5, seed: 42, out: "sub")
        let picked = DataSubsample.sampleUsers(count: 5, of: 12, seed: 42)   // [1, 4, 7, 11, 12]

        // Users renumbered 1…5 in source order, sequences intact; the catalogue unchanged.
        XCTAssertEqual(sub.numUsers, 5)
        XCTAssertEqual(sub.numItems, src.numItems)
        XCTAssertEqual(sub.sequences, picked.map { src.sequences[$0 - 1] })
        XCTAssertEqual(try readText(sub.directory.appendingPathComponent("sequences.txt")).split(separator: "\n").first,
                       "1 1 2 3", "source user 1 (raw 1000) is new user 1, with its items")
        XCTAssertEqual(try Data(contentsOf: sub.directory.appendingPathComponent("items.tsv")),
                       try Data(contentsOf: src.directory.appendingPathComponent("items.tsv")), "items.tsv byte for byte")
        // The negatives follow their users.
        for split in [Split.valid, .test] {
            XCTAssertEqual(try sub.negatives(split), try picked.map { try src.negatives(split)[$0 - 1] }, "\(split)")
        }
        // users.tsv: new id → raw id (raw user k is 1000 + 3(k − 1): prepare kept file order).
        XCTAssertEqual(try tsvRows(sub.directory.appendingPathComponent("users.tsv")),
                       [["1", "1000"], ["2", "1009"], ["3", "1018"], ["4", "1030"], ["5", "1033"]])
        XCTAssertEqual(try readText(sub.directory.appendingPathComponent("users.tsv")).split(separator: "\n").first, "user_id\toriginal_id")

        // Statistics recomputed: source user k has 3 + (k − 1) % 5 items: 3, 6, 4, 3, 4; all 30 items stay.
        XCTAssertEqual(src.numItems, 30)
        XCTAssertEqual(stats, DatasetStats(users: 5, items: 30, interactions: 20, averageLength: 4, density: 20.0 / 150, badLinesSkipped: 0))
        let j = try json(sub.directory), srcJSON = try json(src.directory)
        let st = try XCTUnwrap(j["statistics"] as? [String: Any])
        XCTAssertEqual(st["users"] as? Int, 5)
        XCTAssertEqual(st["items"] as? Int, 30)
        XCTAssertEqual(st["interactions"] as? Int, 20)
        XCTAssertEqual(try XCTUnwrap(st["average_length"] as? Double), 4, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(st["density"] as? Double), 20.0 / 150, accuracy: 1e-12)
        let s = try XCTUnwrap(j["subsample"] as? [String: Any])
        XCTAssertEqual(s["source"] as? String, src.directory.path)
        XCTAssertEqual(s["source_dataset_sha256"] as? String, try SHA256.hex(ofFile: src.directory.appendingPathComponent("dataset.json")))
        XCTAssertEqual(s["users"] as? Int, 5)
        XCTAssertEqual(s["source_users"] as? Int, 12)
        XCTAssertEqual(s["seed"] as? Int, 42)
        XCTAssertEqual(s["items_with_interactions"] as? Int, Set(sub.sequences.joined()).count)
        XCTAssertNil(srcJSON["subsample"], "data prepare writes no subsample entry")
        // The rest of the record is the source's.
        for key in ["source", "options", "tool", "tool_version"] {
            XCTAssertEqual(j[key] as? NSObject, srcJSON[key] as? NSObject, key)
        }
    }

    func testDeterministicPerSeed() throws {
        let dir = try makeTempDir(self)
        let src = try source(dir)
        let names = ["sequences.txt", "users.tsv", "negatives-valid.txt", "negatives-test.txt", "items.tsv", "dataset.json"]
        let (_, a) = try subsample(src.directory, dir, users: 6, seed: 3, out: "a")
        let (_, b) = try subsample(src.directory, dir, users: 6, seed: 3, out: "b")
        let (_, c) = try subsample(src.directory, dir, users: 6, seed: 4, out: "c")
        for f in names {
            XCTAssertEqual(try Data(contentsOf: a.directory.appendingPathComponent(f)), try Data(contentsOf: b.directory.appendingPathComponent(f)), f)
        }
        XCTAssertNotEqual(a.sequences, c.sequences, "seeds 3 and 4 draw different users")
        XCTAssertEqual(a.sequences, DataSubsample.sampleUsers(count: 6, of: 12, seed: 3).map { src.sequences[$0 - 1] })
        XCTAssertEqual(c.sequences, DataSubsample.sampleUsers(count: 6, of: 12, seed: 4).map { src.sequences[$0 - 1] })
    }

    func testAllUsersIsACopyAndTwiceKeepsRawIds() throws {
        let dir = try makeTempDir(self)
        let src = try source(dir)
        let (stats, all) = try subsample(src.directory, dir, users: 12, out: "all")
        for f in ["sequences.txt", "users.tsv", "negatives-valid.txt", "negatives-test.txt", "items.tsv"] {
            XCTAssertEqual(try Data(contentsOf: all.directory.appendingPathComponent(f)), try Data(contentsOf: src.directory.appendingPathComponent(f)), f)
        }
        let srcStats = try XCTUnwrap(try json(src.directory)["statistics"] as? NSDictionary)
        XCTAssertEqual(try json(all.directory)["statistics"] as? NSDictionary, srcStats)
        XCTAssertEqual(stats.interactions, 57, "3+4+5+6+7 twice, then 3+4")

        // A subsample of a subsample: users.tsv still names the raw users, sequences theirs.
        let (_, once) = try subsample(src.directory, dir, users: 8, seed: 1, out: "once")
        let (_, twice) = try subsample(once.directory, dir, users: 3, seed: 2, out: "twice")
        let rawOf = Dictionary(uniqueKeysWithValues: try tsvRows(src.directory.appendingPathComponent("users.tsv")).map { ($0[1], Int($0[0])!) })
        let rows = try tsvRows(twice.directory.appendingPathComponent("users.tsv"))
        XCTAssertEqual(rows.map { $0[0] }, ["1", "2", "3"])
        for (k, row) in rows.enumerated() {
            XCTAssertTrue(row[1].hasPrefix("10"), "a raw id: \(row)")
            XCTAssertEqual(twice.sequences[k], src.sequences[try XCTUnwrap(rawOf[row[1]]) - 1], "user \(k + 1) = raw \(row[1])")
        }
        let s = try XCTUnwrap(try json(twice.directory)["subsample"] as? [String: Any])
        XCTAssertEqual(s["source"] as? String, once.directory.path)
        XCTAssertEqual(s["source_users"] as? Int, 8)
    }

    func testUsersOutOfRangeIsRefusedAndWritesNothing() throws {
        let dir = try makeTempDir(self)
        let src = try source(dir)
        for n in [0, 13, -1] {
            let out = dir.appendingPathComponent("out-\(n)")
            XCTAssertThrowsError(try DataSubsample.run(SubsampleOptions(data: src.directory, output: out, users: n), progress: false)) { e in
                let text = "\(e)"
                XCTAssertEqual(e as? RecDataError, .badOption(option: "--users", detail:
                    "\(n) is outside 1…12 (\(src.directory.path) has 12 users); pass a number in that range (12 copies the dataset)"))
                XCTAssertTrue(text.hasPrefix("--users: \(n) is outside 1…12"), text)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        }
    }

    func testOptionalFilesAreSkippedAndInconsistentSourcesRefused() throws {
        let dir = try makeTempDir(self)
        let fm = FileManager.default
        let src = try source(dir)
        // Without users.tsv and negatives-test.txt (a prepared dataset needs neither).
        let bare = dir.appendingPathComponent("bare")
        try fm.copyItem(at: src.directory, to: bare)
        try fm.removeItem(at: bare.appendingPathComponent("users.tsv"))
        try fm.removeItem(at: bare.appendingPathComponent("negatives-test.txt"))
        let (_, sub) = try subsample(bare, dir, users: 4, out: "sub")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: sub.directory.path).sorted(),
                       ["dataset.json", "items.tsv", "negatives-valid.txt", "sequences.txt"])
        XCTAssertEqual(try sub.negatives(.valid).count, 4)

        // Negatives out of order: the file and line are named, nothing is written.
        let bad = dir.appendingPathComponent("bad")
        try fm.copyItem(at: src.directory, to: bad)
        var lines = try readText(bad.appendingPathComponent("negatives-valid.txt")).split(separator: "\n").map(String.init)
        lines.swapAt(2, 3)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: bad.appendingPathComponent("negatives-valid.txt"))
        let out = dir.appendingPathComponent("out")
        XCTAssertThrowsError(try DataSubsample.run(SubsampleOptions(data: bad, output: out, users: 12), progress: false)) { e in
            XCTAssertEqual(e as? RecDataError, .badDataset(file: bad.appendingPathComponent("negatives-valid.txt").path, line: 3,
                                                           detail: "expected user 3 first on this line, found \"4\""))
        }
        XCTAssertFalse(fm.fileExists(atPath: out.path))

        // A record that disagrees with the files.
        let lying = dir.appendingPathComponent("lying")
        try fm.copyItem(at: src.directory, to: lying)
        let record = lying.appendingPathComponent("dataset.json")
        let text = try readText(record)
        XCTAssertTrue(text.contains("\"users\": 12\n"), text)
        try Data(text.replacingOccurrences(of: "\"users\": 12\n", with: "\"users\": 13\n").utf8).write(to: record)
        XCTAssertThrowsError(try DataSubsample.run(SubsampleOptions(data: lying, output: out, users: 2), progress: false)) { e in
            XCTAssertEqual(e as? RecDataError, .badDataset(file: lying.appendingPathComponent("sequences.txt").path, line: 0,
                                                           detail: "12 users, but dataset.json records 13"))
        }
        // No dataset.json at all.
        try fm.removeItem(at: record)
        XCTAssertThrowsError(try DataSubsample.run(SubsampleOptions(data: lying, output: out, users: 2), progress: false)) { e in
            XCTAssertTrue("\(e)".contains("dataset.json: missing"), "\(e)")
        }
    }
}
