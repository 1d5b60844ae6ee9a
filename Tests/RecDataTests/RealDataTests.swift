import Foundation
import XCTest
@testable import Common
@testable import RecData

/// Statistics on the real data sets (shared Amazon files, bundled MovieLens).
final class RealDataTests: XCTestCase {
    private func sharedFile(_ rel: String) throws -> URL {
        guard let shared = Paths.shared() else {
            throw XCTSkip("shared data not found: set SLMREC_SHARED or place it at ../shared next to the repository")
        }
        let url = shared.appendingPathComponent(rel)
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("\(url.path) is absent") }
        return url
    }

    func testSportsStatistics() throws {
        let url = try sharedFile("data/amazon2014/Sports_and_Outdoors.txt")
        let dir = try makeTempDir(self)
        // Few negatives: the statistics do not depend on them and debug builds are slow.
        let (stats, ds) = try prepare(url, in: dir, kcore: 5, negatives: 5)
        XCTAssertEqual(stats.users, 35_598)
        XCTAssertEqual(stats.items, 18_357)
        XCTAssertEqual(stats.interactions, 296_337)
        // The file's ids are already dense 1…N, so they are kept: our sequences equal the file.
        let original = try readText(url).split(separator: "\n").prefix(3).map(String.init)
        let ours = try readText(ds.directory.appendingPathComponent("sequences.txt")).split(separator: "\n").prefix(3).map(String.init)
        XCTAssertEqual(original, ours)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: ds.directory.appendingPathComponent("dataset.json"))) as? [String: Any]
        let source = json?["source"] as? [String: Any]
        XCTAssertEqual(source?["sha256"] as? String, try SHA256.hex(ofFile: url))

        // 5,000 of its users (data subsample's default seed): the whole catalogue stays.
        let sub = dir.appendingPathComponent("sub5k")
        let subStats = try DataSubsample.run(SubsampleOptions(data: ds.directory, output: sub, users: 5000), progress: false)
        XCTAssertEqual(subStats, DatasetStats(users: 5000, items: 18_357, interactions: 41_447, badLinesSkipped: 0))
        let subDS = try PreparedDataset.load(directory: sub)
        XCTAssertEqual(subDS.numItems, 18_357)
        XCTAssertEqual(Set(subDS.sequences.joined()).count, 13_746, "items some sampled user touched")
        XCTAssertEqual(try Data(contentsOf: sub.appendingPathComponent("items.tsv")), try Data(contentsOf: ds.directory.appendingPathComponent("items.tsv")))
    }

    func testBeautyStatistics() throws {
        let url = try sharedFile("data/amazon2014/Beauty.txt")
        let dir = try makeTempDir(self)
        let (stats, _) = try prepare(url, in: dir, kcore: 5, negatives: 5)
        XCTAssertEqual(stats.users, 22_363)
        XCTAssertEqual(stats.items, 12_101)
        XCTAssertEqual(stats.interactions, 198_502)
    }

    func testBundledMovieLens() throws {
        let url = Paths.repoRoot.appendingPathComponent("data/movielens-latest-small/ratings.csv")
        let dir = try makeTempDir(self)
        let (s35, _) = try prepare(url, in: dir, kcore: 5, negatives: 5, minRating: 3.5, out: "o35")
        print("PROBE 3.5: \(s35.summary)")
        let (stats, ds) = try prepare(url, in: dir, kcore: 5, negatives: 5)
        // Numbers quoted in data/movielens-latest-small/README.md ("about").
        XCTAssertEqual(stats.users, 663, accuracy: 5)
        XCTAssertEqual(stats.items, 2_398, accuracy: 30)
        XCTAssertEqual(stats.interactions, 54_096, accuracy: 300)
        let items = try readText(ds.directory.appendingPathComponent("items.tsv"))
        XCTAssertTrue(items.contains("\tToy Story\n") || items.contains("\tJumanji\n"), "titles from movies.csv")
        print("bundled MovieLens: \(stats.summary)")
    }

    /// Release-mode timing harness: `SLMREC_BENCH_PREPARE=/path/ratings.csv swift test -c release --filter testBenchPrepare`.
    func testBenchPrepare() throws {
        guard let path = ProcessInfo.processInfo.environment["SLMREC_BENCH_PREPARE"], !path.isEmpty else {
            throw XCTSkip("set SLMREC_BENCH_PREPARE=path/to/ratings.csv to time data prepare")
        }
        let out = URL(fileURLWithPath: ProcessInfo.processInfo.environment["SLMREC_BENCH_OUT"] ?? NSTemporaryDirectory() + "/slmrec-bench-prepare")
        let t0 = Date()
        let minRating = ProcessInfo.processInfo.environment["SLMREC_BENCH_MIN_RATING"].flatMap(Double.init)
        let stats = try DataPrepare.run(PrepareOptions(input: URL(fileURLWithPath: path), output: out, minRating: minRating), progress: true)
        let dt = Date().timeIntervalSince(t0)
        // Peak resident set size from the kernel (VmHWM), in kB.
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let hwm = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }.map(String.init) ?? "VmHWM: ?"
        print(String(format: "BENCH prepare: %.1f s; %@; %@", dt, hwm, stats.summary))
    }
}
