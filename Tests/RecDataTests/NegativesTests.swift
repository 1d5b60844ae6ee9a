import Foundation
import XCTest
@testable import Common
@testable import RecData

/// The two stores of fixed negatives (Negatives.swift, docs/data.md "Fixed negatives").
final class NegativesTests: XCTestCase {
    let fixture = Paths.fixtures.appendingPathComponent("counter-negatives")

    func prepareCounter(_ input: URL, in dir: URL, negatives: Int, seed: UInt64, store: NegativesStore? = .counter) throws -> PreparedDataset {
        let out = dir.appendingPathComponent("out")
        try DataPrepare.run(PrepareOptions(input: input, output: out, format: .sequences, kcore: 1, negatives: negatives,
                                           negativesStore: store, seed: seed), progress: false)
        return try PreparedDataset.load(directory: out)
    }

    func lines(_ lists: [[Int32]]) -> String {
        lists.enumerated().map { k, l in ([k + 1] + l.map(Int.init)).map(String.init).joined(separator: " ") + "\n" }.joined()
    }

    /// The expected files were written by scripts/negatives-reference.py (the algorithm in
    /// Python, standard library only) from this input prepared with --negatives 20 --seed 7:
    /// 45 users by rejection sampling, 5 by the dense (Fisher–Yates) branch, 5 with fewer
    /// than 20 unseen items.
    func testCounterListsMatchTheReferenceImplementation() throws {
        let dir = try makeTempDir(self)
        let ds = try prepareCounter(fixture.appendingPathComponent("input.txt"), in: dir, negatives: 20, seed: 7)
        XCTAssertEqual(ds.negativesStore, .counter)
        XCTAssertFalse(FileManager.default.fileExists(atPath: ds.directory.appendingPathComponent("negatives-test.txt").path))
        XCTAssertEqual(ds.record?.processing.usersWithFewerNegatives, 5)
        for split in [Split.valid, .test] {
            let expected = try readText(fixture.appendingPathComponent("expected-\(split.rawValue).txt"))
            XCTAssertEqual(lines(try ds.negatives(split)), expected, split.rawValue)
        }
        // Any subset of users, in any order, gets the same lists (nothing depends on the others).
        let src = try ds.negativeSource(.test), all = try ds.negatives(.test)
        XCTAssertEqual(src.lists(users: [50, 3, 3, 17]), [all[49], all[2], all[2], all[16]])
    }

    /// The properties the protocol needs, on a catalogue where rejection sampling runs.
    func testCounterListsAreDistinctUnseenAndSeeded() throws {
        let dir = try makeTempDir(self)
        var rng = SeededRNG(seed: 1)
        let text = (1...200).map { u in ([u] + (0..<(3 + rng.nextInt(below: 30))).map { _ in 1 + rng.nextInt(below: 3000) }).map(String.init).joined(separator: " ") }
        let input = try writeFile(dir, "in.txt", text.joined(separator: "\n") + "\n")
        let a = try prepareCounter(input, in: dir.appendingPathComponent("a"), negatives: 99, seed: 42)
        let b = try prepareCounter(input, in: dir.appendingPathComponent("b"), negatives: 99, seed: 43)
        let na = try a.negatives(.test), nb = try b.negatives(.test), va = try a.negatives(.valid)
        for u in 0..<a.numUsers {
            XCTAssertEqual(na[u].count, 99)
            XCTAssertEqual(Set(na[u]).count, 99, "distinct")
            XCTAssertTrue(Set(na[u]).isDisjoint(with: a.sequences[u]), "never an item of the user's whole sequence")
            XCTAssertTrue(na[u].allSatisfy { $0 >= 1 && Int($0) <= a.numItems })
        }
        XCTAssertNotEqual(na, nb, "the seed matters")
        XCTAssertNotEqual(na, va, "valid and test are different streams")
        let again = try prepareCounter(input, in: dir.appendingPathComponent("c"), negatives: 99, seed: 42)
        XCTAssertEqual(try again.negatives(.test), na, "same seed, same lists")
    }

    /// The Python reference, run live when python3 is on the machine, on a larger catalogue.
    func testPythonReferenceAgreesLive() throws {
        guard let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("python3 not found")
        }
        let dir = try makeTempDir(self)
        var rng = SeededRNG(seed: 9)
        let text = (1...60).map { u in ([u] + (0..<(3 + rng.nextInt(below: 60))).map { _ in 1 + rng.nextInt(below: 900) }).map(String.init).joined(separator: " ") }
        let ds = try prepareCounter(try writeFile(dir, "in.txt", text.joined(separator: "\n") + "\n"), in: dir, negatives: 300, seed: 123)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [Paths.repoRoot.appendingPathComponent("scripts/negatives-reference.py").path, ds.directory.path, "--split", "valid"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        XCTAssertEqual(String(decoding: out, as: UTF8.self), lines(try ds.negatives(.valid)))
    }

    func testTextStoreIsCheckedAgainstTheRecord() throws {
        let dir = try makeTempDir(self)
        let ds = try prepareCounter(fixture.appendingPathComponent("input.txt"), in: dir, negatives: 5, seed: 7, store: nil)
        XCTAssertEqual(ds.negativesStore, .text, "small data: text by default")
        XCTAssertEqual(ds.record?.processing.negativesSha256?.keys.sorted(), ["test", "valid"])
        XCTAssertEqual(try ds.negatives(.test).count, 50)
        // Edit one id in place: the file no longer matches what prepare drew.
        let url = ds.directory.appendingPathComponent("negatives-test.txt")
        var text = try readText(url)
        text = text.replacingOccurrences(of: "\n2 ", with: "\n2 1")
        try Data(text.utf8).write(to: url)
        let reloaded = try PreparedDataset.load(directory: ds.directory)
        XCTAssertThrowsError(try reloaded.negatives(.test)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains(url.path) && m.contains("negatives_sha256.test") && m.contains("re-run data prepare"), m)
        }
        XCTAssertNoThrow(try reloaded.negatives(.valid))
    }

    func testCounterStoreRefusesAStrayNegativesFile() throws {
        let dir = try makeTempDir(self)
        let ds = try prepareCounter(fixture.appendingPathComponent("input.txt"), in: dir, negatives: 5, seed: 7)
        let stray = ds.directory.appendingPathComponent("negatives-valid.txt")
        try Data("1 2 3\n".utf8).write(to: stray)
        XCTAssertThrowsError(try ds.negativeSource(.valid)) { e in
            XCTAssertTrue("\(e)".contains(stray.path) && "\(e)".contains("negatives_store"), "\(e)")
        }
        XCTAssertNoThrow(try ds.negativeSource(.test))
    }

    func testAutomaticStore() {
        XCTAssertEqual(NegativesStore.automatic(users: 35_598, count: 999), .text)            // Sports
        XCTAssertEqual(NegativesStore.automatic(users: 1_219_678, count: 999), .counter)      // Cloth
        XCTAssertEqual(NegativesStore.automatic(users: Int.max / 2, count: 999), .counter)    // overflow
    }

    /// A subsample renumbers users, so it keeps the source's counter lists as text.
    func testSubsampleOfACounterDatasetKeepsTheLists() throws {
        let dir = try makeTempDir(self)
        let ds = try prepareCounter(fixture.appendingPathComponent("input.txt"), in: dir, negatives: 20, seed: 7)
        let out = dir.appendingPathComponent("sub")
        try DataSubsample.run(SubsampleOptions(data: ds.directory, output: out, users: 12, seed: 3), progress: false)
        let sub = try PreparedDataset.load(directory: out)
        XCTAssertEqual(sub.negativesStore, .text)
        let src = try ds.negatives(.test), got = try sub.negatives(.test)
        // users.tsv: new id → the source's original id (here the source ids, kept as published).
        var ids: [Int] = []
        try LineReader(url: out.appendingPathComponent("users.tsv")).forEachLine { line, n in
            if n > 1 { ids.append(Int(String(decoding: line, as: UTF8.self).split(separator: "\t")[1])!) }
            return true
        }
        XCTAssertEqual(ids.count, 12)
        for (k, u) in ids.enumerated() { XCTAssertEqual(got[k], src[u - 1], "user \(u)") }
    }
}
