import XCTest
import Foundation
import TestKit

/// A full disk and a read-only output directory (issue 12): each command that writes gets a
/// clear error naming the path, leaves nothing partial, and an earlier output at the same
/// path survives byte for byte. The small filesystem is a tmpfs mounted in a private mount
/// namespace (`unshare -m`), so the test needs root and mount permission; it skips elsewhere.
final class DiskFaultTests: XCTestCase {
    var dir: URL!
    var data: URL!
    var ck: String { dir.appendingPathComponent("ck").path }

    override func setUpWithError() throws {
        dir = try CLI.tmp("disk")
        data = try TinyModels.preparePatternDataset(in: dir)
        let r = try CLI.run(["init", "--output", ck, "--data", data.path, "--layers", "2", "--hidden", "64", "--intermediate", "96",
                             "--heads", "4", "--item-dim", "8", "--prompt-length", "2"])
        XCTAssertEqual(r.status, 0, r.all)
    }

    /// Runs `script` (sh) in a private mount namespace with $D a fresh tmpfs of `size`
    /// (mounted read-only after `setup` when `readOnly`), $S the slmrec binary.
    func inSmallFilesystem(size: String, readOnly: Bool = false, setup: String = "", _ script: String) throws -> CLI.Result {
        let unshare = "/usr/bin/unshare"
        guard FileManager.default.isExecutableFile(atPath: unshare) else { throw XCTSkip("no unshare") }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: unshare)
        probe.arguments = ["-m", "sh", "-c", "mount -t tmpfs -o size=64k none \(dir.path)"]
        probe.standardError = FileHandle.nullDevice
        try probe.run(); probe.waitUntilExit()
        guard probe.terminationStatus == 0 else { throw XCTSkip("unshare -m / mount not permitted here") }
        let mnt = dir.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: mnt, withIntermediateDirectories: true)
        let body = """
        set -u; D=\(mnt.path); S=\(CLI.binary.path)
        mount -t tmpfs -o size=\(size) none "$D" || exit 90
        \(setup)
        \(readOnly ? "mount -o remount,ro \"$D\" || exit 91" : "")
        \(script)
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: unshare)
        p.arguments = ["-m", "sh", "-c", body]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLI.Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// The checks every case prints: the command's status, the directory's listing after it,
    /// and the earlier output's checksum before and after.
    static let report = """
        rc=$?; echo "rc=$rc"; echo "listing:"; ls -A "$D"; echo "end"
        echo "after=$(cat "$D"/prev/* 2>/dev/null | md5sum | cut -d' ' -f1)"
        """

    func check(_ r: CLI.Result, mentions: String, file: StaticString = #filePath, line: UInt = #line) {
        let rc = r.stdout.components(separatedBy: "rc=").last.flatMap { Int($0.prefix { $0.isNumber }) }
        XCTAssertNotNil(rc, r.all, file: file, line: line)
        if let rc { XCTAssertTrue(rc != 0 && rc < 128, "exit \(rc): \(r.all)", file: file, line: line) }
        XCTAssertTrue(r.stderr.contains(mentions), "the error names \(mentions): \(r.stderr)", file: file, line: line)
        XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr, file: file, line: line)
        let listing = r.stdout.components(separatedBy: "listing:\n").last?.components(separatedBy: "end").first ?? ""
        let names = listing.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        XCTAssertEqual(names.filter { $0 != "prev" && $0 != ".fill" }, [], "nothing partial is left: \(names)", file: file, line: line)
        let before = r.stdout.components(separatedBy: "before=").last?.prefix(32), after = r.stdout.components(separatedBy: "after=").last?.prefix(32)
        XCTAssertEqual(before, after, "the earlier output is intact", file: file, line: line)
    }

    /// Every writing command on a filesystem with too little room: the disk is filled, then
    /// `free` KiB given back, so a write starts and fails part way (or at once with 0); `prev`
    /// is an earlier output that --force would replace.
    func testFullDiskLeavesNothingPartialAndTheEarlierOutputIntact() throws {
        let cases: [(name: String, prev: String, free: Int, command: String)] = [
            ("apply --force", "cp -r \(ck) \"$D/prev\"", 64, "$S apply prune-layers --input \(ck) --output \"$D/prev\" --force --options '{strategy: \"keep-first\", keep: 1}'"),
            ("apply", "mkdir \"$D/prev\"", 64, "$S apply prune-layers --input \(ck) --output \"$D/new\" --options '{strategy: \"keep-first\", keep: 1}'"),
            ("data prepare --force", "cp -r \(data.path) \"$D/prev\"", 4,
             "$S data prepare --input \(dir.path)/pattern-sequences.txt --output \"$D/prev\" --force --format sequences --kcore 1 --negatives 400"),
            ("eval", "mkdir \"$D/prev\"", 0, "$S eval --checkpoint \(ck) --data \(data.path) --output \"$D/m.json\" --ranks \"$D/ranks.tsv\""),
            ("init", "mkdir \"$D/prev\"", 64, "$S init --output \"$D/new\" --data \(data.path) --layers 2 --hidden 64 --intermediate 96 --heads 4 --item-dim 8 --prompt-length 2"),
            ("sasrec", "mkdir \"$D/prev\"", 16, "$S sasrec --data \(data.path) --output \"$D/s\" --epochs 1 --hidden 64 --layers 1 --heads 1 --max-len 8 --quiet"),
        ]
        for c in cases {
            let setup = "\(c.prev) || exit 92; echo \"before=$(cat \"$D\"/prev/* 2>/dev/null | md5sum | cut -d' ' -f1)\"\n"
                + "dd if=/dev/zero of=\"$D/.fill\" bs=4k 2>/dev/null; truncate -s -\(c.free)k \"$D/.fill\""
            let r = try inSmallFilesystem(size: "2m", setup: setup, c.command + "\n" + Self.report)
            if r.status == 90 || r.status == 92 { XCTFail("\(c.name): setup failed \(r.all)"); continue }
            check(r, mentions: "No space left on device")
            XCTAssertTrue(r.stderr.contains(dir.appendingPathComponent("small").path), "\(c.name): the path is named: \(r.stderr)")
            print("\(c.name): \(r.stderr.split(separator: "\n").first ?? "")")
        }
    }

    /// A read-only output directory: refused with the path named, nothing written, the earlier output intact.
    func testReadOnlyOutputDirectory() throws {
        let cases: [(name: String, command: String)] = [
            ("apply --force", "$S apply prune-layers --input \(ck) --output \"$D/prev\" --force --options '{strategy: \"keep-first\", keep: 1}'"),
            ("data prepare", "$S data prepare --input \(dir.path)/pattern-sequences.txt --output \"$D/new\" --format sequences --kcore 1 --negatives 5"),
            ("eval", "$S eval --checkpoint \(ck) --data \(data.path) --output \"$D/m.json\""),
            ("sasrec", "$S sasrec --data \(data.path) --output \"$D/s\" --epochs 1 --hidden 8 --layers 1 --heads 1 --max-len 8 --quiet"),
        ]
        for c in cases {
            let r = try inSmallFilesystem(size: "4m", readOnly: true, setup: "cp -r \(ck) \"$D/prev\" || exit 92; echo \"before=$(cat \"$D\"/prev/* | md5sum | cut -d' ' -f1)\"",
                                          c.command + "\n" + Self.report)
            if r.status == 90 || r.status == 91 || r.status == 92 { XCTFail("\(c.name): setup failed \(r.all)"); continue }
            check(r, mentions: "Read-only file system")
            XCTAssertTrue(r.stderr.contains(dir.appendingPathComponent("small").path), "\(c.name): the path is named: \(r.stderr)")
            print("\(c.name): \(r.stderr.split(separator: "\n").first ?? "")")
        }
    }
}
