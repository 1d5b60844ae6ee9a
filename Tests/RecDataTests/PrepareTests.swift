import Foundation
import XCTest
@testable import Common
@testable import RecData

final class PrepareTests: XCTestCase {
    /// z has one user, so D–z goes; D is left with one item, so D–w goes; w is left with
    /// one user, so C–w goes; C is left with one item, so C–y goes. Only A, B × x, y remain.
    func testKCoreCascade() throws {
        let dir = try makeTempDir(self)
        let url = try writeFile(dir, "r.csv", """
            userId,movieId,rating,timestamp
            1,100,5,1
            1,200,5,2
            2,100,5,3
            2,200,5,4
            3,200,5,5
            3,300,5,6
            4,300,5,7
            4,400,5,8

            """)
        let (stats, ds) = try prepare(url, in: dir, kcore: 2)
        XCTAssertEqual(stats.users, 2)
        XCTAssertEqual(stats.items, 2)
        XCTAssertEqual(stats.interactions, 4)
        XCTAssertEqual(ds.sequences, [[1, 2], [1, 2]])
        let (s1, _) = try prepare(url, in: dir, kcore: 1, out: "k1")
        XCTAssertEqual(s1.interactions, 8)
    }

    func testChronologicalTieBreakKeepsFileOrder() throws {
        let dir = try makeTempDir(self)
        let url = try writeFile(dir, "r.csv", "1,11,5,100\n1,22,5,50\n1,33,5,100\n1,44,5,50\n")
        let (_, ds) = try prepare(url, in: dir)
        // Items numbered by first appearance in the file: 11→1, 22→2, 33→3, 44→4.
        XCTAssertEqual(ds.sequences, [[2, 4, 1, 3]])
    }

    func testDedupeKeepsFirst() throws {
        let dir = try makeTempDir(self)
        let url = try writeFile(dir, "r.csv", "1,11,5,10\n1,22,5,20\n1,11,4,30\n2,11,5,10\n")
        let (stats, ds) = try prepare(url, in: dir)
        XCTAssertEqual(stats.interactions, 3)
        XCTAssertEqual(ds.sequences, [[1, 2], [1]])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: ds.directory.appendingPathComponent("dataset.json"))) as? [String: Any]
        XCTAssertEqual((json?["processing"] as? [String: Any])?["duplicates_dropped"] as? Int, 1)
    }

    private func negativesFixture(_ dir: URL) throws -> URL {
        var lines: [String] = []
        for u in 1...6 { lines.append("\(u) " + (0..<(u + 2)).map { String(($0 * 7 + u) % 40 + 1) }.joined(separator: " ")) }
        return try writeFile(dir, "seq.txt", lines.joined(separator: "\n") + "\n")
    }

    func testNegativesDeterministicAndExcludeHistory() throws {
        let dir = try makeTempDir(self)
        let url = try negativesFixture(dir)
        let (_, a) = try prepare(url, in: dir, negatives: 20, seed: 7, out: "a")
        let (_, b) = try prepare(url, in: dir, negatives: 20, seed: 7, out: "b")
        let (_, c) = try prepare(url, in: dir, negatives: 20, seed: 8, out: "c")
        for split in ["valid", "test"] {
            let fa = try Data(contentsOf: a.directory.appendingPathComponent("negatives-\(split).txt"))
            XCTAssertEqual(fa, try Data(contentsOf: b.directory.appendingPathComponent("negatives-\(split).txt")))
            XCTAssertNotEqual(fa, try Data(contentsOf: c.directory.appendingPathComponent("negatives-\(split).txt")))
        }
        let valid = try a.negatives(.valid), test = try a.negatives(.test)
        XCTAssertNotEqual(valid, test, "valid and test draw from separate streams")
        for (u, seq) in a.sequences.enumerated() {
            for negs in [valid[u], test[u]] {
                XCTAssertEqual(negs.count, 20)
                XCTAssertEqual(Set(negs).count, 20, "without replacement")
                XCTAssertTrue(Set(negs).isDisjoint(with: seq), "user \(u + 1): a negative is in the history")
                XCTAssertTrue(negs.allSatisfy { $0 >= 1 && Int($0) <= a.numItems })
            }
        }
    }

    func testNegativesWhenFewUnseenItems() throws {
        let dir = try makeTempDir(self)
        let url = try writeFile(dir, "seq.txt", "1 1 2 3 4 5\n2 6 7 8\n")
        let (_, ds) = try prepare(url, in: dir, negatives: 10)
        let test = try ds.negatives(.test)
        XCTAssertEqual(Set(test[0]), [6, 7, 8])          // every unseen item, nothing else
        XCTAssertEqual(Set(test[1]), [1, 2, 3, 4, 5])
    }

    func testMalformedLineNamesFileAndLine() throws {
        let dir = try makeTempDir(self)
        let url = try writeFile(dir, "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4,5\n1,abc,4,6\n2,10,4\n")
        let out = dir.appendingPathComponent("out")
        XCTAssertThrowsError(try DataPrepare.run(PrepareOptions(input: url, output: out, kcore: 0), progress: false)) { e in
            guard case let RecDataError.malformedLine(file, line, text, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(file, url.path)
            XCTAssertEqual(line, 3)
            XCTAssertEqual(text, "1,abc,4,6")
            let msg = "\(e)"
            XCTAssertTrue(msg.contains("\(url.path):3:") && msg.contains("1,abc,4,6") && msg.contains("--skip-bad-lines"), msg)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "no partial output on error")
        let stats = try DataPrepare.run(PrepareOptions(input: url, output: out, kcore: 0, skipBadLines: true), progress: false)
        XCTAssertEqual(stats.badLinesSkipped, 2)
        XCTAssertEqual(stats.interactions, 1)
    }

    func testBadJSONAndWrongFieldCount() throws {
        let dir = try makeTempDir(self)
        let js = try writeFile(dir, "r.json", "{\"reviewerID\": \"A\", \"asin\": \"B\", \"overall\": 5, \"unixReviewTime\": 1}\n{\"reviewerID\": \"A\", \"asin\": \n")
        XCTAssertThrowsError(try prepare(js, in: dir)) { e in
            guard case let RecDataError.malformedLine(_, line, _, reason) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(line, 2)
            XCTAssertTrue(reason.contains("bad JSON"), reason)
        }
        let dat = try writeFile(dir, "r.dat", "1::2::5::9\n1::2::5\n")
        XCTAssertThrowsError(try prepare(dat, in: dir)) { e in
            guard case let RecDataError.malformedLine(_, line, _, reason) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(line, 2)
            XCTAssertTrue(reason.contains("expected 4 fields"), reason)
        }
    }

    func testEmptyResultAndUnknownFormat() throws {
        let dir = try makeTempDir(self)
        let low = try writeFile(dir, "r.csv", "1,10,1,5\n2,10,2,6\n")
        XCTAssertThrowsError(try prepare(low, in: dir)) { e in
            guard case RecDataError.emptyResult = e else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try prepare(low, in: dir, kcore: 5, minRating: 0)) { e in
            guard case RecDataError.emptyResult = e else { return XCTFail("\(e)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
        let weird = try writeFile(dir, "notes.txt", "hello world\n")
        XCTAssertThrowsError(try prepare(weird, in: dir)) { e in
            guard case RecDataError.unknownFormat = e else { return XCTFail("\(e)") }
            XCTAssertTrue("\(e)".contains("--format"))
        }
        XCTAssertThrowsError(try prepare(dir.appendingPathComponent("missing.csv"), in: dir)) { e in
            guard case RecDataError.io = e else { return XCTFail("\(e)") }
        }
    }

    func testDatasetJSON() throws {
        let dir = try makeTempDir(self)
        let url = Paths.fixtures.appendingPathComponent("ratings.csv")
        let (stats, ds) = try prepare(url, in: dir, negatives: 2, seed: 9)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: ds.directory.appendingPathComponent("dataset.json"))) as? [String: Any])
        XCTAssertEqual(json["tool_version"] as? String, "0.1.0")
        let source = try XCTUnwrap(json["source"] as? [String: Any])
        XCTAssertEqual(source["sha256"] as? String, try SHA256.hex(ofFile: url))
        XCTAssertEqual(source["format"] as? String, "movielens-csv")
        let st = try XCTUnwrap(json["statistics"] as? [String: Any])
        XCTAssertEqual(st["interactions"] as? Int, stats.interactions)
        let opts = try XCTUnwrap(json["options"] as? [String: Any])
        XCTAssertEqual(opts["seed"] as? Int, 9)
        XCTAssertEqual(opts["rating_filter"] as? String, "rating > 3.0")
    }
}

final class DatasetTests: XCTestCase {
    func testExamplesPerSplit() throws {
        let dir = try makeTempDir(self)
        let url = try writeFile(dir, "seq.txt", "1 1 2 3 4\n2 5 6 7\n")
        let (_, ds) = try prepare(url, in: dir, negatives: 1)
        XCTAssertEqual(try ds.examples(split: .test, maxLength: 50),
                       [Example(user: 1, input: [1, 2, 3], target: 4), Example(user: 2, input: [5, 6], target: 7)])
        XCTAssertEqual(try ds.examples(split: .test, maxLength: 2)[0], Example(user: 1, input: [2, 3], target: 4))
        XCTAssertEqual(try ds.examples(split: .valid, maxLength: 50),
                       [Example(user: 1, input: [1, 2], target: 3), Example(user: 2, input: [5], target: 6)])
        XCTAssertEqual(try ds.examples(split: .train, maxLength: 50), [Example(user: 1, input: [1], target: 2)])
        XCTAssertEqual(Array(ds.trainingSequence(user: 1)), [1, 2])
        XCTAssertThrowsError(try ds.negatives(.train))
    }

    func testShortUserIsAnError() throws {
        let dir = try makeTempDir(self)
        let url = try writeFile(dir, "seq.txt", "1 1 2 3\n2 4 5\n")
        let (_, ds) = try prepare(url, in: dir, negatives: 1)
        XCTAssertThrowsError(try ds.examples(split: .test, maxLength: 50)) { e in
            XCTAssertEqual(e as? RecDataError, .sequenceTooShort(user: 2, length: 2, split: "test"))
            XCTAssertTrue("\(e)".contains("user 2"))
        }
        XCTAssertEqual(try ds.examples(split: .train, maxLength: 50).count, 0)
    }

    func testLengthGroupedBatches() {
        var rng = SeededRNG(seed: 1)
        XCTAssertEqual(lengthGroupedBatches(lengths: [5, 1, 3, 1, 5, 2], batchSize: 2, shuffle: false, rng: &rng),
                       [[1, 3], [5, 2], [0, 4]])
        let lengths = (0..<1000).map { ($0 * 37) % 50 + 1 }
        var r1 = SeededRNG(seed: 3), r2 = SeededRNG(seed: 3)
        let a = lengthGroupedBatches(lengths: lengths, batchSize: 32, shuffle: true, rng: &r1)
        XCTAssertEqual(a, lengthGroupedBatches(lengths: lengths, batchSize: 32, shuffle: true, rng: &r2))
        XCTAssertEqual(a.flatMap { $0 }.sorted(), Array(0..<1000))
        // Similar lengths share a batch: the spread within a batch is small.
        XCTAssertTrue(a.allSatisfy { b in (b.map { lengths[$0] }.max() ?? 0) - (b.map { lengths[$0] }.min() ?? 0) <= 2 })
        var r3 = SeededRNG(seed: 4)
        XCTAssertNotEqual(a, lengthGroupedBatches(lengths: lengths, batchSize: 32, shuffle: true, rng: &r3))
    }
}
