import XCTest
import Common

final class AtomicFileTests: XCTestCase {
    func tmpDir() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("slmrec-common-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    func testWriteReplacesFileAtomically() throws {
        let d = try tmpDir()
        let f = d.appendingPathComponent("a.json")
        try AtomicFile.write(Data("old".utf8), to: f)
        try AtomicFile.write(Data("new".utf8), to: f)
        XCTAssertEqual(try String(contentsOf: f, encoding: .utf8), "new")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: d.path), ["a.json"], "no temporary left behind")
    }

    func testWriteRefusesToReplaceADirectory() throws {
        let d = try tmpDir()
        let target = d.appendingPathComponent("ckpt")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: target.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: target))
        XCTAssertEqual(try String(contentsOf: target.appendingPathComponent("model.safetensors"), encoding: .utf8), "keep")
    }

    func testWriteDirectoryFailureKeepsOldDirectory() throws {
        let d = try tmpDir()
        let target = d.appendingPathComponent("out")
        try AtomicFile.writeDirectory(target) { try Data("v1".utf8).write(to: $0.appendingPathComponent("f")) }
        struct Boom: Error {}
        XCTAssertThrowsError(try AtomicFile.writeDirectory(target) { tmp in
            try Data("partial".utf8).write(to: tmp.appendingPathComponent("f"))
            throw Boom()
        })
        XCTAssertEqual(try String(contentsOf: target.appendingPathComponent("f"), encoding: .utf8), "v1")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: d.path), ["out"], "no temporary left behind")
        try AtomicFile.writeDirectory(target) { try Data("v2".utf8).write(to: $0.appendingPathComponent("f")) }
        XCTAssertEqual(try String(contentsOf: target.appendingPathComponent("f"), encoding: .utf8), "v2")
    }
}

final class SeededRNGTests: XCTestCase {
    func testSameSeedSameStreamDifferentSeedDifferent() {
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42), c = SeededRNG(seed: 43)
        let xa = (0..<5).map { _ in a.next() }, xb = (0..<5).map { _ in b.next() }, xc = (0..<5).map { _ in c.next() }
        XCTAssertEqual(xa, xb)
        XCTAssertNotEqual(xa, xc)
        var s1 = SeededRNG(seed: 42, stream: "x"), s2 = SeededRNG(seed: 42, stream: "y")
        XCTAssertNotEqual(s1.next(), s2.next())
    }

    func testUniformIntIsInRangeAndCoversIt() {
        var r = SeededRNG(seed: 1)
        var seen = Set<Int>()
        for _ in 0..<1000 { let v = r.nextInt(below: 7); XCTAssert((0..<7).contains(v)); seen.insert(v) }
        XCTAssertEqual(seen.count, 7)
    }

    func testNormalMoments() {
        var r = SeededRNG(seed: 9)
        let xs = (0..<20000).map { _ in Double(r.nextNormal()) }
        let mean = xs.reduce(0, +) / Double(xs.count)
        let varc = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count)
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(varc, 1, accuracy: 0.05)
    }
}
