import XCTest
import Foundation
import TestKit

/// `slmrec recommend` on the bundled MovieLens data (titles from movies.csv) with a tiny random
/// checkpoint, checked against `slmrec eval`'s full-ranking ranks for the same users.
final class RecommendCommandTests: XCTestCase {
    var dir: URL!
    var ds = "", ck = ""

    override func setUpWithError() throws {
        dir = try CLI.tmp("recommend")
        ds = dir.appendingPathComponent("ml").path
        ck = dir.appendingPathComponent("ck").path
        let raw = SharedData.repoRoot.appendingPathComponent("data/movielens-latest-small/ratings.csv").path
        var r = try CLI.run(["data", "prepare", "--input", raw, "--output", ds])
        XCTAssertEqual(r.status, 0, r.all)
        r = try CLI.run(["init", "--output", ck, "--items", "2398", "--layers", "1", "--hidden", "32", "--intermediate", "48",
                         "--heads", "2", "--item-dim", "8", "--max-seq-len", "20", "--seed", "7"])
        XCTAssertEqual(r.status, 0, r.all)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func lines(_ path: String) throws -> [[String]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    /// Sequences and the catalogue as prepare wrote them.
    func dataset() throws -> (sequences: [[Int]], items: [[String]], users: [[String]]) {
        let seqs = try String(contentsOfFile: ds + "/sequences.txt", encoding: .utf8).split(separator: "\n")
            .map { $0.split(separator: " ").dropFirst().map { Int($0)! } }
        return (seqs, Array(try lines(ds + "/items.tsv").dropFirst()), Array(try lines(ds + "/users.tsv").dropFirst()))
    }

    func testTopKAgreesWithEvalsFullRanking() throws {
        let k = 50
        let ranks = dir.appendingPathComponent("ranks.tsv").path, recs = dir.appendingPathComponent("recs.tsv").path
        var r = try CLI.run(["eval", "--checkpoint", ck, "--data", ds, "--split", "test", "--candidates", "full",
                             "--output", dir.appendingPathComponent("m.json").path, "--ranks", ranks])
        XCTAssertEqual(r.status, 0, r.all)
        r = try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--history", "test", "--top-k", "\(k)", "--output", recs])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertTrue(r.stdout.contains("663 users, top 50"), r.stdout)
        let (seqs, items, users) = try dataset()
        let rows = try lines(recs)
        XCTAssertEqual(rows[0], ["user", "original_user", "rank", "item", "original_item", "score", "title"])
        var byUser: [Int: [[String]]] = [:]
        for row in rows.dropFirst() { byUser[Int(row[0])!, default: []].append(row) }
        XCTAssertEqual(byUser.count, 663)
        let rankOf = Dictionary(uniqueKeysWithValues: try lines(ranks).map { (Int($0[0])!, Int($0[1])!) })
        var checked = 0, inList = 0
        for (u, list) in byUser {
            XCTAssertEqual(list.count, k)
            let history = Set(seqs[u - 1].dropLast())
            let target = seqs[u - 1].last!
            XCTAssertEqual(list.map { Int($0[2])! }, Array(1...k), "ranks 1…K in order")
            XCTAssertEqual(list[0][1], users[u - 1][1], "original user id from users.tsv")
            let scores = list.map { Float($0[5])! }
            XCTAssertEqual(scores, scores.sorted(by: >), "best first")
            for row in list {
                let item = Int(row[3])!
                XCTAssertFalse(history.contains(item), "user \(u): item \(item) is in the history")
                XCTAssertEqual(row[4], items[item - 1][1], "original item id from items.tsv")
                XCTAssertEqual(row[6], items[item - 1].count > 2 ? items[item - 1][2] : "", "title from items.tsv")
            }
            // eval's full rank of the held-out item is its place in the list (a repeat purchase
            // stays a candidate in eval but is history here: skipped).
            guard !history.contains(target), let rank = rankOf[u] else { continue }
            checked += 1
            let place = list.firstIndex { Int($0[3])! == target }.map { $0 + 1 }
            if rank <= k { inList += 1; XCTAssertEqual(place, rank, "user \(u)") } else { XCTAssertNil(place, "user \(u): rank \(rank)") }
        }
        XCTAssertGreaterThan(checked, 600)
        XCTAssertGreaterThan(inList, 3, "some held-out items are in the top \(k), so places are compared")
        XCTAssertTrue(rows.dropFirst().contains { !$0[6].isEmpty }, "MovieLens titles are written")
    }

    func testUsersSequencesAndJSONLines() throws {
        let (seqs, items, users) = try dataset()
        let tsv = dir.appendingPathComponent("u.tsv").path, jsonl = dir.appendingPathComponent("u.jsonl").path
        var r = try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--users", "5, 2", "--top-k", "7", "--output", tsv])
        XCTAssertEqual(r.status, 0, r.all)
        let rows = Array(try lines(tsv).dropFirst())
        XCTAssertEqual(rows.map { $0[0] }, Array(repeating: "5", count: 7) + Array(repeating: "2", count: 7), "the order asked for")
        r = try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--users", "5,2", "--top-k", "7", "--output", jsonl])
        XCTAssertEqual(r.status, 0, r.all)
        let objects = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        XCTAssertEqual(objects.map { $0["user"] as? Int }, [5, 2])
        XCTAssertEqual(objects[0]["original_user"] as? String, users[4][1])
        let recs = try XCTUnwrap(objects[0]["recommendations"] as? [[String: Any]])
        XCTAssertEqual(recs.map { $0["item"] as? Int }, rows.prefix(7).map { Int($0[3]) }, "JSON lines and TSV agree")
        XCTAssertEqual(recs.map { $0["score"] as? Double }, rows.prefix(7).map { Double($0[5]) })

        // A raw history (original ids) gives what the same dataset user gets.
        let seqFile = dir.appendingPathComponent("histories.txt")
        let raw = seqs[4].map { items[$0 - 1][1] }.joined(separator: " ")
        try "someone \(raw)\r\n\n".write(to: seqFile, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("s.tsv").path
        r = try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--sequences", seqFile.path, "--top-k", "7", "--output", out])
        XCTAssertEqual(r.status, 0, r.all)
        let srows = Array(try lines(out).dropFirst())
        XCTAssertEqual(srows.map { $0[1] }, Array(repeating: "someone", count: 7))
        XCTAssertEqual(srows.map { $0[3] }, rows.prefix(7).map { $0[3] })

        // An unknown raw item: an error naming the file, line and id; dropped when asked.
        try "a \(items[0][1]) no-such-item\n".write(to: seqFile, atomically: true, encoding: .utf8)
        let bad = dir.appendingPathComponent("bad.tsv").path
        r = try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--sequences", seqFile.path, "--output", bad])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("histories.txt:1: item \"no-such-item\" is not in the catalogue"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad))
        r = try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--sequences", seqFile.path, "--skip-unknown-items", "--output", bad])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertTrue(r.stderr.contains("dropped 1 item(s)"), r.stderr)
    }

    /// An int8 checkpoint recommends too (the same scores eval ranks, int8 kernels).
    func testInt8Checkpoint() throws {
        let q = dir.appendingPathComponent("q").path, out = dir.appendingPathComponent("q.tsv").path
        var r = try CLI.run(["apply", "quantize-int8", "--input", ck, "--output", q])
        XCTAssertEqual(r.status, 0, r.all)
        r = try CLI.run(["recommend", "--checkpoint", q, "--data", ds, "--users", "1,2,3", "--top-k", "5", "--output", out])
        XCTAssertEqual(r.status, 0, r.all)
        let rows = Array(try lines(out).dropFirst())
        XCTAssertEqual(rows.map { $0[0] }, ["1", "1", "1", "1", "1", "2", "2", "2", "2", "2", "3", "3", "3", "3", "3"])
    }

    func testBadInputIsRefusedBeforeAnyOutput() throws {
        let out = dir.appendingPathComponent("x.tsv").path
        for (args, message) in [
            (["--top-k", "0"], "--top-k must be at least 1"),
            (["--top-k", "2399"], "--top-k 2399 is more than the 2398 items"),
            (["--top-k", "abc"], "--top-k"),
            (["--users", "0"], "--users: user 0 is not in"),
            (["--users", "1,x"], "--users: \"x\" is not a user id"),
            (["--users", "664"], "its users are 1…663"),
            (["--sequences", "/nonexistent/h.txt"], "/nonexistent/h.txt does not exist"),
            (["--sequences", "/nonexistent/h.txt", "--users", "1"], "leave out --users and --history"),
        ] {
            let r = try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--output", out] + args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(args)")
        }
        // A file recommend did not write is never replaced, not even with --force.
        let other = dir.appendingPathComponent("notes.tsv")
        try "my notes\n".write(to: other, atomically: true, encoding: .utf8)
        let r = try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--users", "1", "--output", other.path, "--force"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(try String(contentsOf: other, encoding: .utf8), "my notes\n")
        // Its own output is replaced with --force.
        XCTAssertEqual(try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--users", "1", "--output", out]).status, 0)
        XCTAssertNotEqual(try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--users", "2", "--output", out]).status, 0)
        XCTAssertEqual(try CLI.run(["recommend", "--checkpoint", ck, "--data", ds, "--users", "2", "--output", out, "--force"]).status, 0)
        XCTAssertEqual(try lines(out)[1][0], "2")
    }
}
