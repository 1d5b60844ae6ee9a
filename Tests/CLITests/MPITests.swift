import XCTest
import Foundation
import TestKit

/// `slmrec` under Open MPI's mpirun (docs/scale-out.md): sharded evaluation gives exactly the
/// single process's ranks and metrics, and ranks that read different inputs are refused.
/// .ci/run installs openmpi-bin, so in CI these run; elsewhere they skip without mpirun.
final class MPITests: XCTestCase {
    static var mpirun: URL? {
        ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].map { URL(fileURLWithPath: $0) }.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// `mpirun -np K slmrec ARGS` (several app contexts when `apps` has more than one).
    func mpirun(_ apps: [(ranks: Int, args: [String])]) throws -> CLI.Result {
        guard let m = Self.mpirun else { throw XCTSkip("mpirun is not installed (apt-get install -y openmpi-bin libopenmpi-dev)") }
        var args = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]
        for (i, a) in apps.enumerated() {
            if i > 0 { args.append(":") }
            args += ["-np", "\(a.ranks)", CLI.binary.path] + a.args
        }
        let p = Process()
        p.executableURL = m
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLI.Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func metricsWithoutTiming(_ url: URL) throws -> [String: Any] {
        var m = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        m["seconds"] = nil; m["users_per_second"] = nil
        return m
    }

    func testShardedEvaluationEqualsOneProcess() throws {
        let dir = try CLI.tmp("mpi-eval")
        let data = try TinyModels.preparePatternDataset(in: dir)
        let ck = dir.appendingPathComponent("ck").path
        XCTAssertEqual(try CLI.run(["init", "--output", ck, "--data", data.path, "--layers", "2", "--hidden", "32", "--intermediate", "48",
                                    "--heads", "2", "--item-dim", "8", "--prompt-length", "2", "--seed", "3"]).status, 0)
        func eval(_ name: String) -> [String] {
            ["eval", "--checkpoint", ck, "--data", data.path, "--batch-size", "7", "--output", dir.appendingPathComponent("\(name).json").path,
             "--ranks", dir.appendingPathComponent("\(name).tsv").path]
        }
        let one = try CLI.run(eval("one"))
        XCTAssertEqual(one.status, 0, one.all)
        for k in [2, 3] {
            let r = try mpirun([(k, eval("np\(k)"))])
            XCTAssertEqual(r.status, 0, r.all)
            XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("np\(k).tsv"), encoding: .utf8),
                           try String(contentsOf: dir.appendingPathComponent("one.tsv"), encoding: .utf8), "every user's ranks, np \(k)")
            XCTAssertEqual(NSDictionary(dictionary: try metricsWithoutTiming(dir.appendingPathComponent("np\(k).json"))),
                           NSDictionary(dictionary: try metricsWithoutTiming(dir.appendingPathComponent("one.json"))), "metrics, np \(k)")
            // Rank 0 alone prints: one table, not k.
            XCTAssertEqual(r.stdout.components(separatedBy: "full ranking").count - 1, 1, r.stdout)
        }
    }

    func testRanksThatReadDifferentDataAreRefused() throws {
        let dir = try CLI.tmp("mpi-mismatch")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("a"), withIntermediateDirectories: true)
        let a = try TinyModels.preparePatternDataset(in: dir.appendingPathComponent("a"))
        // The same catalogue, other users: a node whose copy of the data went stale.
        let raw = dir.appendingPathComponent("b.txt")
        try Data(TinyModels.patternSequencesText(users: 40, items: 11, seed: 2).utf8).write(to: raw)
        let b = dir.appendingPathComponent("b")
        let p = try CLI.run(["data", "prepare", "--input", raw.path, "--output", b.path, "--format", "sequences", "--kcore", "1", "--negatives", "5"])
        XCTAssertEqual(p.status, 0, p.all)
        let ck = dir.appendingPathComponent("ck").path
        XCTAssertEqual(try CLI.run(["init", "--output", ck, "--data", a.path, "--layers", "1", "--hidden", "16", "--intermediate", "32",
                                    "--heads", "2", "--item-dim", "8", "--prompt-length", "1"]).status, 0)
        let out = dir.appendingPathComponent("m.json")
        let r = try mpirun([(1, ["eval", "--checkpoint", ck, "--data", a.path, "--output", out.path]),
                            (1, ["eval", "--checkpoint", ck, "--data", b.path, "--output", out.path])])
        XCTAssertNotEqual(r.status, 0, r.all)
        XCTAssertTrue(r.stderr.contains("ranks disagree on the prepared dataset"), r.stderr)
        XCTAssertTrue(r.stderr.contains("rank 1 differs from rank 0"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "no partial output")
    }
}
