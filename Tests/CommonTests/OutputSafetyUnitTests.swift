import XCTest
import Foundation
@testable import Common

/// The pieces behind docs/outputs.md, in-process: output kinds, the guard's rules, the atomic
/// swap and its recovery, the lock.
final class OutputSafetyUnitTests: XCTestCase {
    var dir: URL!
    let fm = FileManager.default

    override func setUpWithError() throws {
        dir = fm.temporaryDirectory.appendingPathComponent("slmrec-outputs-\(UUID().uuidString)")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? fm.removeItem(at: dir) }

    let checkpoint = OutputKind(name: "checkpoint", files: ["config.json", "model.safetensors"], required: ["config.json", "model.safetensors"])

    func make(_ name: String, files: [String]) throws -> URL {
        let u = dir.appendingPathComponent(name)
        try fm.createDirectory(at: u, withIntermediateDirectories: true)
        for f in files {
            let p = u.appendingPathComponent(f)
            try fm.createDirectory(at: p.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(f.utf8).write(to: p)
        }
        return u
    }

    func testKindsRecogniseExactlyWhatTheyWrite() throws {
        XCTAssertNil(checkpoint.mismatch(at: try make("a", files: ["config.json", "model.safetensors"])))
        XCTAssertNil(checkpoint.mismatch(at: try make("b", files: ["config.json", "model.safetensors", ".model.safetensors.tmp-1-2"])),
                     "a temporary of one of its own files does not count")
        XCTAssertEqual(checkpoint.mismatch(at: try make("b2", files: ["config.json", "model.safetensors", ".notes.work/x"])),
                       "it holds the directory .notes.work/, which slmrec never writes in a checkpoint")
        XCTAssertEqual(checkpoint.mismatch(at: try make("b3", files: ["config.json", "model.safetensors", ".ft.tmp-1-2"])),
                       "it holds .ft.tmp-1-2, which slmrec never writes in a checkpoint")
        XCTAssertEqual(checkpoint.mismatch(at: try make("c", files: ["config.json", "model.safetensors", "notes.txt"])),
                       "it holds notes.txt, which slmrec never writes in a checkpoint")
        XCTAssertEqual(checkpoint.mismatch(at: try make("d", files: ["config.json"])), "it has no model.safetensors, which every checkpoint has")
        XCTAssertEqual(checkpoint.mismatch(at: try make("e", files: ["config.json", "model.safetensors", "sub/x"])),
                       "it holds the directory sub/, which slmrec never writes in a checkpoint")
        XCTAssertEqual(checkpoint.mismatch(at: try make("f", files: ["config.json", "model.safetensors", ".git/HEAD"])),
                       "it holds the directory .git/, which slmrec never writes in a checkpoint")
        // Nested kinds and patterns.
        let run = OutputKind(name: "run", files: ["r.json", "*.log"], required: ["r.json"], directories: ["ck": checkpoint],
                             otherDirectories: OutputKind(name: "stage", files: ["m.json"], required: []))
        XCTAssertNil(run.mismatch(at: try make("g", files: ["r.json", "a.log", "ck/config.json", "ck/model.safetensors", "s1/m.json"])))
        XCTAssertEqual(run.mismatch(at: try make("h", files: ["r.json", "ck/config.json", "ck/model.safetensors", "ck/extra"])),
                       "it holds ck/extra, which slmrec never writes in a checkpoint")
        XCTAssertTrue(OutputKind.matches("x.log", "*.log") && !OutputKind.matches("x.lo", "*.log") && OutputKind.matches(".log", "*.log"))
    }

    func testGuardRules() throws {
        let ck = try make("ck", files: ["config.json", "model.safetensors"])
        let notes = try make("notes", files: ["notes.txt"])
        let input = try make("in", files: ["config.json", "model.safetensors"])
        func refusal(_ u: URL, force: Bool = true, inputs: [(String, URL)] = []) -> String? {
            do { try OutputGuard.check(u, kind: checkpoint, force: force, inputs: inputs); return nil } catch { return "\(error)" }
        }
        XCTAssertEqual(try OutputGuard.check(dir.appendingPathComponent("new"), kind: checkpoint, force: false, inputs: []), .nothing)
        XCTAssertEqual(try OutputGuard.check(try make("empty", files: []), kind: checkpoint, force: false, inputs: []), .emptyDirectory)
        // Only temporaries of its own files (a first write into it was killed): empty.
        XCTAssertEqual(try OutputGuard.check(try make("killed-first", files: [".config.json.tmp-1-2"]), kind: checkpoint, force: false, inputs: []),
                       .emptyDirectory)
        // Only hidden entries (another output's training state): not empty, not a checkpoint.
        let hidden = try make("hidden", files: [".ft.work/trainer/state/trainer.json"])
        XCTAssertThrowsError(try OutputGuard.check(hidden, kind: checkpoint, force: true, inputs: [])) {
            XCTAssertTrue("\($0)".contains(".ft.work"), "\($0)")
        }
        XCTAssertEqual(try OutputGuard.check(ck, kind: checkpoint, force: true, inputs: []), .previousOutput)
        XCTAssertTrue(refusal(ck, force: false)?.contains("already holds a checkpoint. Fix: pass --force") ?? false)
        XCTAssertTrue(refusal(notes)?.contains("is not a checkpoint written by slmrec: it holds notes.txt") ?? false)
        XCTAssertTrue(refusal(input, inputs: [("--input", input)])?.contains("is an input of this command (--input)") ?? false)
        XCTAssertTrue(refusal(dir, inputs: [("--input", input)])?.contains("contains an input") ?? false)
        XCTAssertTrue(refusal(input.appendingPathComponent("x"), inputs: [("--input", input)])?.contains("inside an input directory") ?? false)
        // Through a symbolic link and `..`, the same directory is the same.
        let link = dir.appendingPathComponent("link")
        try fm.createSymbolicLink(at: link, withDestinationURL: dir)
        XCTAssertTrue(refusal(URL(fileURLWithPath: link.path + "/in"), inputs: [("--input", input)])?.contains("is an input") ?? false)
        XCTAssertTrue(refusal(URL(fileURLWithPath: dir.path + "/notes/../in"), inputs: [("--input", input)])?.contains("is an input") ?? false)
        XCTAssertTrue(refusal(URL(fileURLWithPath: "/"))?.contains("root directory") ?? false)
        XCTAssertTrue(refusal(URL(fileURLWithPath: fm.currentDirectoryPath))?.contains("current directory") ?? false)
        // Resuming accepts a previous output without --force, never a foreign directory.
        XCTAssertEqual(try OutputGuard.check(ck, kind: checkpoint, force: false, inputs: [], resume: true), .previousOutput)
        XCTAssertThrowsError(try OutputGuard.check(notes, kind: checkpoint, force: false, inputs: [], resume: true))
        XCTAssertEqual(OutputGuard.realPath(URL(fileURLWithPath: link.path + "/not/yet")), OutputGuard.realPath(dir) + "/not/yet")
    }

    func deadPID() throws -> pid_t {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    func testSwapReplacesADirectoryInOneStepAndLeavesNothingBehind() throws {
        let out = dir.appendingPathComponent("out")
        for round in 0..<3 {
            try AtomicFile.writeDirectory(out) { tmp in try Data("v\(round)".utf8).write(to: tmp.appendingPathComponent("f")) }
            XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("f"), encoding: .utf8), "v\(round)")
        }
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path), ["out"])
        // A failing body leaves the previous directory and no temporary.
        XCTAssertThrowsError(try AtomicFile.writeDirectory(out) { _ in throw CocoaError(.fileWriteUnknown) })
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("f"), encoding: .utf8), "v2")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path), ["out"])
        try AtomicFile.replaceWithEmptyDirectory(out)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: out.path), [])
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path), ["out"])
    }

    func testRecoverRestoresRemovesAndSparesTheLiving() throws {
        let out = dir.appendingPathComponent("out")
        let dead = try deadPID()
        // Killed between the two renames: out is missing, the previous one is aside.
        _ = try make(".out.old-\(dead)", files: ["f"])
        _ = try make(".out.tmp-\(dead)-9", files: ["g"])
        _ = try make(".out.tmp-\(getpid())-8", files: ["mine"])
        _ = try make(".outer.tmp-\(dead)-9", files: ["other output"])
        var said: [String] = []
        let done = AtomicFile.recover(out) { said.append($0) }
        XCTAssertEqual(done.count, 2, "\(done)")
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("f"), encoding: .utf8), "f", "restored")
        XCTAssertTrue(said.contains { $0.contains("restored \(out.path)") })
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path).sorted(), [".out.tmp-\(getpid())-8", ".outer.tmp-\(dead)-9", "out"])
        try fm.removeItem(at: dir.appendingPathComponent(".outer.tmp-\(dead)-9"))
        // With the output present, an old copy is removed instead.
        _ = try make(".out.old-\(dead)", files: ["stale"])
        AtomicFile.recover(out) { _ in }
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("f"), encoding: .utf8), "f")
        XCTAssertFalse(fm.fileExists(atPath: dir.appendingPathComponent(".out.old-\(dead)").path))
        XCTAssertEqual(AtomicFile.debrisOwner(".out.tmp-1-2"), "out")
        XCTAssertEqual(AtomicFile.debrisOwner(".a.b.old-3"), "a.b")
        XCTAssertEqual(AtomicFile.debrisOwner(".x.tmp-y.tmp-4-5"), "x.tmp-y")
        for other in [".git", ".out.tmp-x-2", "out.tmp-1-2", ".x.lock", ".x.work", ".old-3"] { XCTAssertNil(AtomicFile.debrisOwner(other), other) }

        // Killed during the deletion of an old copy: what is left is a temporary, never restored.
        let out2 = dir.appendingPathComponent("out2")
        _ = try make(".out2.old-\(dead)", files: ["partial"])
        AtomicFile.discard(dir.appendingPathComponent(".out2.old-\(dead)"))
        XCTAssertFalse(try fm.contentsOfDirectory(atPath: dir.path).contains { $0.hasPrefix(".out2.") })
        XCTAssertFalse(fm.fileExists(atPath: out2.path))
        // Inside an output whose lock is held (a run directory), debris at any depth goes,
        // whatever its pid (here this process's, as for pid 1 in every container).
        let run = try make("run", files: ["recipe.effective.json", "ft/stage.json", ".ft.tmp-\(getpid())-3/x",
                                          ".work/ft-k/trainer/.state.tmp-\(getpid())-4/t", ".inputs.json.tmp-\(getpid())-5"])
        AtomicFile.recoverTree(run) { _ in }
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: run.path).sorted(), [".work", "ft", "recipe.effective.json"])
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: run.appendingPathComponent(".work/ft-k/trainer").path), [])
        // Holding the lock, a sibling whose pid looks alive (this process's) is debris too.
        _ = try make(".out.tmp-\(getpid())-1", files: ["x"])
        AtomicFile.recover(out, holdingLock: true) { _ in }
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".out.") }, [])
    }

    func testLockAdmitsOneWriterAndIsGoneAfterwards() throws {
        let out = dir.appendingPathComponent("out")
        let lock = try OutputLock.acquire(out)
        XCTAssertThrowsError(try OutputLock.acquire(out)) { e in
            XCTAssertTrue("\(e)".contains("is being written by another slmrec process (pid \(getpid())"), "\(e)")
        }
        OutputLock.removeIfStale(out)
        XCTAssertTrue(fm.fileExists(atPath: lock.file.path), "a held lock is not stale")
        lock.release()
        XCTAssertFalse(fm.fileExists(atPath: lock.file.path))
        XCTAssertEqual(try OutputLock.holding(out) { 7 }, 7)
        // The race: B opened the lock file before its holder released (and removed) it, and a
        // new writer C then locked a new file under the name. B's stale check must not unlink
        // C's file, or a third writer could lock a fresh one next to C.
        let a = try OutputLock.acquire(out)
        let staleFD = open(a.file.path, O_RDWR)
        a.release()
        let c = try OutputLock.acquire(out)
        OutputLock.removeIfStale(c.file, openedAs: staleFD)
        close(staleFD)
        XCTAssertTrue(fm.fileExists(atPath: c.file.path), "the live lock file stays")
        XCTAssertThrowsError(try OutputLock.acquire(out), "still one writer")
        c.release()
        // A lock file left by a killed process is reused, then removed.
        try Data("pid 1: gone".utf8).write(to: lock.file)
        XCTAssertEqual(try OutputLock.holding(out) { 8 }, 8)
        XCTAssertFalse(fm.fileExists(atPath: lock.file.path))
    }

    func testStopSignalsAreCaughtOnlyWhileCatching() throws {
        XCTAssertThrowsError(try StopSignals.catching { () -> Int in
            raise(SIGINT)   // the flag, not the default action
            XCTAssertEqual(StopSignals.received, SIGINT)
            return 1
        }) { e in
            let i = e as? Interrupted
            XCTAssertEqual(i?.exitCode, 130)
            XCTAssertEqual(i?.signalName, "SIGINT")
        }
        XCTAssertNil(StopSignals.received)
        XCTAssertEqual(try StopSignals.catching { 5 }, 5)
        // A signal the process was told to ignore (nohup, a background job) stays ignored.
        signal(SIGTERM, SIG_IGN)
        defer { signal(SIGTERM, SIG_DFL) }
        XCTAssertEqual(try StopSignals.catching { () -> Int in
            raise(SIGTERM)
            XCTAssertNil(StopSignals.received)
            return 6
        }, 6)
        raise(SIGTERM)   // still ignored after release, or this process would end here
        XCTAssertEqual(Interrupted(signal: SIGTERM, step: 3, stateDirectory: nil).exitCode, 143)
        XCTAssertEqual(shellQuoted("a b"), "'a b'")
        XCTAssertEqual(shellQuoted("{x: \"it's\"}"), "'{x: \"it'\\''s\"}'")
        XCTAssertEqual(shellQuoted("--set=a.b/c"), "--set=a.b/c")
    }
}
