import Foundation
import XCTest
@testable import Common
@testable import RecData

/// Each input format on a small checked-in sample (Tests/RecDataTests/Fixtures).
final class FormatTests: XCTestCase {
    private func run(_ name: String, format: InputFormat = .auto, minRating: Double? = nil) throws -> (DatasetStats, PreparedDataset) {
        try prepare(Paths.fixtures.appendingPathComponent(name), in: makeTempDir(self), format: format, minRating: minRating)
    }
    private func tsv(_ ds: PreparedDataset, _ name: String) throws -> [[String]] {
        try readText(ds.directory.appendingPathComponent(name)).split(separator: "\n").dropFirst()
            .map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    func testDetection() throws {
        let expect: [String: InputFormat] = [
            "ratings.csv": .movielensCSV, "ratings.dat": .movielensDat, "u.data": .udata, "amazon.csv": .amazonCSV,
            "reviews.json": .amazonJSON, "sample.inter": .recboleInter, "sequences.txt": .sequences,
            "ratings-gz.csv.gz": .movielensCSV,
        ]
        for (name, f) in expect {
            XCTAssertEqual(try InputFormat.detect(url: Paths.fixtures.appendingPathComponent(name)), f, name)
        }
        XCTAssertEqual(InputFormat(rawValue: "movielens-csv"), .movielensCSV)
        XCTAssertEqual(InputFormat(rawValue: "recbole-inter"), .recboleInter)
    }

    /// Default filter "rating > 3" keeps 3.5 and drops 1.0; chronological order; titles from movies.csv.
    func testMovieLensCSV() throws {
        let (stats, ds) = try run("ratings.csv")
        XCTAssertEqual(stats.interactions, 5)
        XCTAssertEqual(ds.sequences, [[3, 2, 1], [2, 4]])
        let items = try tsv(ds, "items.tsv")
        XCTAssertEqual(items[0], ["1", "10", "Heat, The"])
        XCTAssertEqual(items[1], ["2", "20", "Toy Story (1995)"])
        XCTAssertEqual(items[2], ["3", "30", ""])
        XCTAssertEqual(items[3], ["4", "40", "Say \"Hi\""])
        XCTAssertEqual(try tsv(ds, "users.tsv"), [["1", "1"], ["2", "2"]])
    }

    func testMovieLensDat() throws {
        let (_, ds) = try run("ratings.dat")
        XCTAssertEqual(ds.sequences, [[1], [2, 1]])
        XCTAssertEqual(try tsv(ds, "items.tsv").map { $0[1] }, ["10", "30"])
    }

    func testUData() throws {
        let (_, ds) = try run("u.data", minRating: 0)
        XCTAssertEqual(ds.sequences, [[2, 1], [2]])
        XCTAssertEqual(try tsv(ds, "users.tsv").map { $0[1] }, ["196", "186"])
        let (s3, _) = try run("u.data")  // default > 3 leaves one rating
        XCTAssertEqual(s3.interactions, 1)
    }

    func testAmazonCSV() throws {
        let (_, ds) = try run("amazon.csv")
        XCTAssertEqual(ds.sequences, [[2, 1], [1]])
        XCTAssertEqual(try tsv(ds, "users.tsv").map { $0[1] }, ["A3RTKL9KB8KLID", "AXBOB"])
        XCTAssertEqual(try tsv(ds, "items.tsv").map { $0[1] }, ["0000031852", "B0000AAA"])
    }

    func testAmazonJSON() throws {
        let (stats, ds) = try run("reviews.json")
        XCTAssertEqual(stats.interactions, 2)  // the 2-star review is filtered; "4.0" as a string is accepted
        XCTAssertEqual(ds.sequences, [[1], [2]])
        XCTAssertEqual(try tsv(ds, "items.tsv").map { $0[1] }, ["B01", "B02"])
    }

    func testRecBoleInterWithTitleIds() throws {
        let (_, ds) = try run("sample.inter")
        XCTAssertEqual(ds.sequences, [[1], [2]])
        XCTAssertEqual(try tsv(ds, "items.tsv").map { $0[1] }, ["One Flew Over the Cuckoo's Nest (1975)", "Heat (1995)"])
    }

    func testRecBoleImplicitWithoutRatingColumn() throws {
        let dir = try makeTempDir(self)
        let url = try writeFile(dir, "x.inter", "user_id:token\titem_id:token\n1\t7\n1\t8\n2\t7\n")
        let (stats, ds) = try prepare(url, in: dir, minRating: 5)  // ignored: no rating column
        XCTAssertEqual(stats.interactions, 3)
        XCTAssertEqual(ds.sequences, [[1, 2], [1]])
    }

    func testSequencesKeepsDenseIds() throws {
        let (stats, ds) = try run("sequences.txt")
        XCTAssertEqual(stats.users, 3)
        XCTAssertEqual(ds.sequences, [[1, 2, 3], [4, 2], [1, 4, 5, 2]])
    }

    func testSequencesReindexesSparseIds() throws {
        let dir = try makeTempDir(self)
        let url = try writeFile(dir, "seq.txt", "5 30 20\n9 20 10\n")
        let (_, ds) = try prepare(url, in: dir, format: .sequences)
        XCTAssertEqual(ds.sequences, [[1, 2], [2, 3]])
        XCTAssertEqual(try tsv(ds, "users.tsv").map { $0[1] }, ["5", "9"])
        XCTAssertEqual(try tsv(ds, "items.tsv").map { $0[1] }, ["30", "20", "10"])
    }

    func testGzipInput() throws {
        let (_, ds) = try run("ratings-gz.csv.gz")
        XCTAssertEqual(ds.sequences, [[1, 2], [1]])
    }

    /// A truncated download must fail loudly, not yield a silently shorter dataset.
    func testTruncatedGzipIsAnIOError() throws {
        let dir = try makeTempDir(self)
        let good = try Data(contentsOf: Paths.fixtures.appendingPathComponent("ratings-gz.csv.gz"))
        let bad = good.prefix(good.count - 6)
        let url = dir.appendingPathComponent("broken.csv.gz")
        try bad.write(to: url)
        XCTAssertThrowsError(try prepare(url, in: dir, format: .movielensCSV)) { e in
            guard case let RecDataError.io(file, detail) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(file, url.path)
            XCTAssertTrue(detail.contains("read error"), detail)
        }
    }

    func testLongLinesAcrossBufferBoundaries() throws {
        let dir = try makeTempDir(self)
        // One 3-million-byte line: longer than the reader's 1 MB chunk.
        var text = "1"
        for i in 1...400_000 { text += " \(i)" }
        text += "\n2 1 2\n"
        let url = try writeFile(dir, "long.txt", text)
        let (stats, ds) = try prepare(url, in: dir, format: .sequences)
        XCTAssertEqual(stats.interactions, 400_002)
        XCTAssertEqual(ds.sequences[1], [1, 2])
    }

    /// The reader sizes its chunks to the file (16 KB for a small one): a small .gz file that
    /// expands to megabytes — a 1.6 MB line among 200,000 short ones — must still be read
    /// whole, and the key tables (starting at 1,024 slots) grow to 200,000 users.
    func testSmallGzipExpandingFarBeyondItsChunk() throws {
        let dir = try makeTempDir(self)
        // The long line repeats one item (it compresses to almost nothing; prepare keeps one
        // interaction per user and item: 7 and 8).
        let long = "0 " + String(repeating: "7 ", count: 800_000) + "8"
        var text = long + "\n"
        for u in 1...200_000 { text += "\(u) \(u % 97 + 1) \(u % 89 + 101)\n" }
        let plain = try writeFile(dir, "big.txt", text)
        let gz = Process()
        gz.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gz.arguments = ["-9", "-k", plain.path]
        try gz.run(); gz.waitUntilExit()
        let url = dir.appendingPathComponent("big.txt.gz")
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int ?? 0
        XCTAssertLessThan(size, text.utf8.count / 4, "the test needs a file that expands well beyond its size")
        var lines = 0, longest = 0
        try LineReader(url: url).forEachLine { line, _ in lines += 1; longest = max(longest, line.count); return true }
        XCTAssertEqual(lines, 200_001)
        XCTAssertEqual(longest, long.utf8.count)
        let (stats, ds) = try prepare(url, in: dir, format: .sequences)
        XCTAssertEqual(stats.users, 200_001)
        XCTAssertEqual(stats.interactions, 2 + 400_000)
        XCTAssertEqual(ds.sequences[0].count, 2)
    }
}
