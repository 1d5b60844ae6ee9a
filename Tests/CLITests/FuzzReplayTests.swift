import XCTest
import Foundation
import TestKit

/// The fuzz targets' seed corpus and every minimised crash input libFuzzer found
/// (Tests/Fuzz/regressions/<target>/, docs/reliability.md) replayed through the same entry
/// points with the replay driver: each must end without a crash.
final class FuzzReplayTests: XCTestCase {
    func testSeedCorpusAndRegressionsReplayWithoutACrash() throws {
        let root = SharedData.repoRoot
        let driver = root.appendingPathComponent(".build/debug/slmrec-fuzz")
        guard FileManager.default.isExecutableFile(atPath: driver.path) else {
            throw XCTSkip("slmrec-fuzz is not built: run `swift build --product slmrec-fuzz` (make test does)")
        }
        let fm = FileManager.default
        var replayed = 0
        for set in ["corpus", "regressions"] {
            let dir = root.appendingPathComponent("Tests/Fuzz/\(set)")
            for target in ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !target.hasPrefix(".") {
                let p = Process()
                p.executableURL = driver
                p.arguments = [target, dir.appendingPathComponent(target).path]
                let out = Pipe()
                p.standardOutput = out
                p.standardError = out
                try p.run()
                let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                XCTAssertEqual(p.terminationStatus, 0, "\(set)/\(target): \(text)")
                XCTAssertTrue(text.contains("no crash"), "\(set)/\(target): \(text)")
                replayed += 1
            }
        }
        XCTAssertGreaterThanOrEqual(replayed, 15, "every target has a seed corpus")
    }
}
