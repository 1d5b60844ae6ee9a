import Foundation
import XCTest
@testable import Common
@testable import RecData

/// Locations derived from this file's path (the package declares no test resources).
enum Paths {
    static let testsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let fixtures = testsDir.appendingPathComponent("Fixtures")
    /// Repository root: Tests/RecDataTests/ → ../..
    static let repoRoot = testsDir.deletingLastPathComponent().deletingLastPathComponent()

    /// `$SLMREC_SHARED` or `<repo>/../shared`, when present.
    static func shared() -> URL? {
        if let env = ProcessInfo.processInfo.environment["SLMREC_SHARED"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        let candidates = [repoRoot.deletingLastPathComponent().appendingPathComponent("shared"),
                          // Worktrees live next to the main checkout; the shared dir is beside them.
                          repoRoot.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared")]
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("data").path) }
    }
}

/// A fresh temporary directory removed at the end of the test.
func makeTempDir(_ test: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("recdata-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

func writeFile(_ dir: URL, _ name: String, _ text: String) throws -> URL {
    let url = dir.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url
}

func readText(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

/// Runs prepare quietly into `<dir>/out` and loads the result.
func prepare(_ input: URL, in dir: URL, format: InputFormat = .auto, kcore: Int = 0, negatives: Int = 0,
             minRating: Double? = nil, seed: UInt64 = 42, skipBad: Bool = false, out: String = "out") throws -> (DatasetStats, PreparedDataset) {
    let outURL = dir.appendingPathComponent(out)
    let stats = try DataPrepare.run(PrepareOptions(input: input, output: outURL, format: format, minRating: minRating,
                                                   kcore: kcore, negatives: negatives, seed: seed, skipBadLines: skipBad),
                                    progress: false)
    return (stats, try PreparedDataset.load(directory: outURL))
}
