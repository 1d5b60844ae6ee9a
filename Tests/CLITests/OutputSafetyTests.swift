import XCTest
import Foundation
import ModelFormat
import TestKit

/// Data safety (docs/outputs.md): no command destroys what the user did not ask to destroy.
/// Each case here failed before the output guard existed: the commands replaced any existing
/// `--output` and exited 0.
final class OutputSafetyTests: XCTestCase {
    var dir: URL!
    var data: URL!
    var raw: URL!
    var ck: URL!

    let tiny = ["--layers", "2", "--hidden", "16", "--intermediate", "24", "--heads", "2", "--item-dim", "8",
                "--prompt-length", "2", "--max-seq-len", "10"]

    override func setUpWithError() throws {
        dir = try CLI.tmp("safety")
        data = try TinyModels.preparePatternDataset(in: dir)
        raw = dir.appendingPathComponent("pattern-sequences.txt")
        ck = dir.appendingPathComponent("ck")
        let r = try CLI.run(["init", "--output", ck.path, "--data", data.path] + tiny)
        XCTAssertEqual(r.status, 0, r.all)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A directory of the user's that no command may touch.
    func makeNotes(_ name: String = "notes") throws -> URL {
        let u = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        try "precious".write(to: u.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        return u
    }

    func assertNotesIntact(_ u: URL, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: u.path), ["notes.txt"], "nothing added or removed", file: file, line: line)
        XCTAssertEqual(try String(contentsOf: u.appendingPathComponent("notes.txt"), encoding: .utf8), "precious", file: file, line: line)
    }

    func recipe(steps: Int = 60, checkpointEvery: Int = 0) throws -> URL {
        let u = dir.appendingPathComponent("train-\(steps).json5")
        try """
        { inputs: { init: "\(ck.path)" },
          stages: [ { name: "ft", pass: "finetune", input: "init",
                      options: { data: "\(data.path)", max_steps: \(steps), batch_size: 8, lr: 0.002, checkpoint_every: \(checkpointEvery),
                                 valid_every: 100000, valid_users: 0, patience: 0 } } ] }
        """.write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    func finetuneOptions(steps: Int) -> String {
        "{data: \"\(data.path)\", max_steps: \(steps), batch_size: 8, lr: 0.002, checkpoint_every: 25, valid_every: 100000, valid_users: 0, patience: 0}"
    }

    /// Every command that writes a directory, pointed at `out`.
    func writers(_ out: String) throws -> [String: [String]] {
        [
            "init": ["init", "--output", out, "--items", "11"],
            "convert": ["convert", "--input", ck.path, "--output", out],
            "apply": ["apply", "prune-layers", "--input", ck.path, "--output", out, "--options", "{strategy: \"keep-first\", keep: 1}"],
            "data prepare": ["data", "prepare", "--input", raw.path, "--output", out, "--format", "sequences", "--kcore", "1", "--negatives", "5"],
            "data subsample": ["data", "subsample", "--data", data.path, "--users", "10", "--output", out],
            "sasrec": ["sasrec", "--data", data.path, "--output", out, "--epochs", "1", "--quiet"],
            "run": ["run", try recipe().path, "--output", out, "--no-report"],
        ]
    }

    func testNoCommandReplacesADirectoryItDidNotWriteEvenWithForce() throws {
        let notes = try makeNotes()
        for (name, args) in try writers(notes.path).sorted(by: { $0.key < $1.key }) {
            for extra in [[], ["--force"]] + (name == "run" ? [["--resume"]] : []) {
                let r = try CLI.run(args + extra)
                XCTAssertNotEqual(r.status, 0, "\(name) \(extra) must refuse: \(r.all)")
                XCTAssertTrue(r.stderr.contains(notes.path) && r.stderr.contains("notes.txt"), "\(name) \(extra) names the path and what is in it: \(r.stderr)")
                XCTAssertTrue(r.stderr.contains("never replaces it"), "\(name) \(extra): \(r.stderr)")
                assertNotesIntact(notes)
            }
        }
        // A file where a directory output goes is not replaced either.
        let f = dir.appendingPathComponent("a-file")
        try "keep me".write(to: f, atomically: true, encoding: .utf8)
        let r = try CLI.run(["convert", "--input", ck.path, "--output", f.path, "--force"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("is a file"), r.stderr)
        XCTAssertEqual(try String(contentsOf: f, encoding: .utf8), "keep me")
    }

    func testAPreviousOutputIsReplacedOnlyWithForce() throws {
        let outs = (try writers("")).keys.sorted()
        for name in outs {
            let out = path("prev-" + name.replacingOccurrences(of: " ", with: "-"))
            let args = try writers(out)[name]!
            var r = try CLI.run(args)
            XCTAssertEqual(r.status, 0, "\(name) first write: \(r.all)")
            let before = try snapshot(URL(fileURLWithPath: out))
            r = try CLI.run(args)
            XCTAssertNotEqual(r.status, 0, "\(name) without --force must refuse")
            XCTAssertTrue(r.stderr.contains("already holds") && r.stderr.contains("pass --") && r.stderr.contains("--force to replace it"),
                          "\(name) refuses because it is a previous output, and says which flag replaces it: \(r.stderr)")
            XCTAssertEqual(try snapshot(URL(fileURLWithPath: out)), before, "\(name): the previous output is untouched")
            r = try CLI.run(args + ["--force"])
            XCTAssertEqual(r.status, 0, "\(name) --force replaces a previous output of its kind: \(r.all)")
            let siblings = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".prev-") }
            XCTAssertEqual(siblings, [], "no temporaries, old copies or locks left beside the outputs")
        }
        // A checkpoint is not a dataset: --force replaces only an output of the same kind.
        let r = try CLI.run(["data", "prepare", "--input", raw.path, "--output", ck.path, "--format", "sequences", "--kcore", "1", "--force"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("is not a prepared dataset"), r.stderr)
        XCTAssertNoThrow(try Checkpoint.load(directory: ck))
    }

    /// File names and contents under `u` (hidden names included).
    func snapshot(_ u: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let e = FileManager.default.enumerator(at: u, includingPropertiesForKeys: [.isRegularFileKey])
        while let f = e?.nextObject() as? URL {
            if (try f.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                out[String(f.path.dropFirst(u.path.count))] = try Data(contentsOf: f)
            }
        }
        return out
    }

    func testForbiddenTargetsAreRefusedEvenWithForce() throws {
        let fm = FileManager.default
        // Each target below looks like a previous checkpoint, so only the rule protects it.
        func checkpointCopy(_ name: String) throws -> URL {
            let u = dir.appendingPathComponent(name)
            try fm.copyItem(at: ck, to: u)
            return u
        }
        let weights = try Data(contentsOf: ck.appendingPathComponent("model.safetensors"))
        // The current directory.
        let cwd = try checkpointCopy("cwd-ck")
        var r = try CLI.run(["init", "--output", ".", "--items", "11", "--force"], cwd: cwd)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("is the current directory"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: cwd.appendingPathComponent("model.safetensors")), weights)
        // A directory above the current one.
        let sub = cwd.appendingPathComponent("deeper")
        try fm.createDirectory(at: sub, withIntermediateDirectories: true)
        r = try CLI.run(["init", "--output", "..", "--items", "11", "--force"], cwd: sub)
        XCTAssertTrue(r.status != 0 && r.stderr.contains("contains the current directory"), r.stderr)
        // The input itself, and the directory holding the input.
        r = try CLI.run(["convert", "--input", ck.path, "--output", ck.path, "--force"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is an input of this command (--input)"), r.stderr)
        let parent = dir.appendingPathComponent("parent")
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        try fm.copyItem(at: ck, to: parent.appendingPathComponent("ck"))
        r = try CLI.run(["convert", "--input", parent.appendingPathComponent("ck").path, "--output", parent.path, "--force"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("contains an input of this command"), r.stderr)
        r = try CLI.run(["data", "prepare", "--input", raw.path, "--output", dir.path, "--format", "sequences", "--force"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("contains an input of this command"), r.stderr)
        // Inside an input directory.
        r = try CLI.run(["convert", "--input", ck.path, "--output", ck.appendingPathComponent("inner").path])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is inside an input directory"), r.stderr)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: ck.path).sorted(), ["config.json", "model.safetensors"])
        // A run directory that contains a recipe input.
        r = try CLI.run(["run", try recipe().path, "--output", dir.path, "--force", "--no-report"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("contains an input of this command"), r.stderr)
        XCTAssertFalse(fm.fileExists(atPath: dir.appendingPathComponent("recipe.effective.json").path))
        // The root and the home directory.
        r = try CLI.run(["convert", "--input", ck.path, "--output", "/", "--force"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is the root directory"), r.stderr)
        let home = try checkpointCopy("home-ck")
        r = try CLI.run(["convert", "--input", ck.path, "--output", home.path, "--force"], env: ["HOME": home.path])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is your home directory"), r.stderr)
        r = try CLI.run(["convert", "--input", ck.path, "--output", "~", "--force"], env: ["HOME": home.path])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is your home directory"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: home.appendingPathComponent("model.safetensors")), weights)
        // A symbolic link is not followed and not replaced.
        let link = dir.appendingPathComponent("link-ck")
        try fm.createSymbolicLink(at: link, withDestinationURL: cwd)
        r = try CLI.run(["convert", "--input", ck.path, "--output", link.path, "--force"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("symbolic link"), r.stderr)
    }

    func testFileOutputsFollowTheSameRule() throws {
        let batch = dir.appendingPathComponent("batch.json")
        try #"{"sequences": [[1, 2, 3], [4, 5]], "targets": [4, 6]}"#.write(to: batch, atomically: true, encoding: .utf8)
        let batchText = try String(contentsOf: batch, encoding: .utf8)
        let foreign = dir.appendingPathComponent("paper.md")
        try "my draft".write(to: foreign, atomically: true, encoding: .utf8)
        // The input itself, a file inside an input directory, a file slmrec did not write.
        var r = try CLI.run(["embed", "--checkpoint", ck.path, "--sequences", batch.path, "--output", batch.path, "--force"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is an input of this command (--sequences)"), r.stderr)
        XCTAssertEqual(try String(contentsOf: batch, encoding: .utf8), batchText)
        r = try CLI.run(["eval", "--checkpoint", ck.path, "--data", data.path, "--output", data.appendingPathComponent("dataset.json").path, "--force"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is inside an input directory of this command (--data"), r.stderr)
        for args in [["grads", "--checkpoint", ck.path, "--batch", batch.path, "--output", foreign.path, "--force"],
                     ["eval", "--checkpoint", ck.path, "--data", data.path, "--output", foreign.path, "--force"],
                     ["eval", "--checkpoint", ck.path, "--data", data.path, "--output", path("m.json"), "--ranks", foreign.path, "--force"]] {
            r = try CLI.run(args)
            XCTAssertTrue(r.status != 0 && r.stderr.contains("is not a") && r.stderr.contains("never replaces it"), "\(args[0]): \(r.stderr)")
            XCTAssertEqual(try String(contentsOf: foreign, encoding: .utf8), "my draft")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("m.json")), "nothing written when one output is refused")
        // A previous output of the same kind: --force replaces it.
        let emb = path("emb.safetensors")
        XCTAssertEqual(try CLI.run(["embed", "--checkpoint", ck.path, "--sequences", batch.path, "--output", emb]).status, 0)
        r = try CLI.run(["embed", "--checkpoint", ck.path, "--sequences", batch.path, "--output", emb])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("already holds an embeddings file"), r.stderr)
        XCTAssertEqual(try CLI.run(["embed", "--checkpoint", ck.path, "--sequences", batch.path, "--output", emb, "--force"]).status, 0)
        // A grads file is not an embeddings file.
        r = try CLI.run(["grads", "--checkpoint", ck.path, "--batch", batch.path, "--output", emb, "--force"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is not a gradients file"), r.stderr)
        // compare: an explicit --output that is not a report.
        let notes = try makeNotes()
        let run = dir.appendingPathComponent("run")
        XCTAssertEqual(try CLI.run(["run", try recipe().path, "--output", run.path, "--no-report"]).status, 0)
        r = try CLI.run(["compare", run.path, "--skip-timing", "--quiet", "--output", notes.path, "--force"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is not a report written by slmrec"), r.stderr)
        assertNotesIntact(notes)
        // Without --output, the report goes into the first directory only when it is a run.
        r = try CLI.run(["compare", ck.path, "--skip-timing", "--quiet"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is not a run directory"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: ck.path).sorted(), ["config.json", "model.safetensors"])
        r = try CLI.run(["compare", run.appendingPathComponent("ft").path, "--skip-timing", "--quiet"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is not a run directory"), r.stderr)
        // The run's own report is rewritten freely; another report needs --force.
        XCTAssertEqual(try CLI.run(["compare", run.path, "--skip-timing", "--quiet"]).status, 0)
        XCTAssertEqual(try CLI.run(["compare", run.path, "--skip-timing", "--quiet"]).status, 0)
        let other = path("other-report")
        XCTAssertEqual(try CLI.run(["compare", run.path, "--skip-timing", "--quiet", "--output", other]).status, 0)
        XCTAssertNotEqual(try CLI.run(["compare", run.path, "--skip-timing", "--quiet", "--output", other]).status, 0)
        XCTAssertEqual(try CLI.run(["compare", run.path, "--skip-timing", "--quiet", "--output", other, "--force"]).status, 0)
    }

    func testKillInsideTheSwapWindowNeverLeavesTheOutputMissing() throws {
        let fm = FileManager.default
        let out = dir.appendingPathComponent("out")
        XCTAssertEqual(try CLI.run(["init", "--output", out.path, "--data", data.path, "--seed", "1"] + tiny).status, 0)
        let first = try Data(contentsOf: out.appendingPathComponent("model.safetensors"))
        func killInWindow(seed: String, env extra: [String: String]) throws {
            let marker = dir.appendingPathComponent("marker-\(seed)")
            let env = ["SLMREC_FAULT_POINT": "swap-window", "SLMREC_FAULT_MARKER": marker.path].merging(extra) { $1 }
            let p = try CLI.spawn(["init", "--output", out.path, "--data", data.path, "--seed", seed, "--force"] + tiny,
                                  stderr: dir.appendingPathComponent("stderr-\(seed)"), env: env)
            XCTAssertTrue(CLI.wait(upTo: 60, while: p) { fm.fileExists(atPath: marker.path) }, "reached the swap window")
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        func debris() throws -> [String] { try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".out.") }.sorted() }

        // renameat2(RENAME_EXCHANGE): killed right after the swap, before the old copy is
        // deleted. The output is the new, complete checkpoint; the old one is debris.
        try killInWindow(seed: "2", env: [:])
        let second = try Data(contentsOf: out.appendingPathComponent("model.safetensors"))
        XCTAssertNotEqual(second, first, "the new checkpoint is in place")
        XCTAssertNoThrow(try Checkpoint.load(directory: out))
        // Left beside it: the old copy, and the killed process's lock file (no longer locked).
        let left = try debris()
        XCTAssertEqual(left.filter { !$0.hasSuffix(".lock") }.count, 1, left.description)
        XCTAssertTrue(left.contains { $0.hasPrefix(".out.tmp-") }, left.description)
        var r = try CLI.run(["init", "--output", out.path, "--data", data.path, "--seed", "2"] + tiny)
        XCTAssertNotEqual(r.status, 0, "still needs --force")
        XCTAssertTrue(r.stderr.contains("removed") && r.stderr.contains(".out.tmp-"), "the debris is cleaned, with a message: \(r.stderr)")
        XCTAssertEqual(try debris(), [])
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("model.safetensors")), second)

        // Two renames (filesystems without RENAME_EXCHANGE): killed between them, the output
        // is missing; the next command on it restores it from the hidden copy.
        try killInWindow(seed: "3", env: ["SLMREC_TEST_NO_RENAME_EXCHANGE": "1"])
        XCTAssertFalse(fm.fileExists(atPath: out.path), "inside the window the output is aside")
        let aside = try debris()
        XCTAssertTrue(aside.contains { $0.hasPrefix(".out.old-") }, aside.description)
        r = try CLI.run(["init", "--output", out.path, "--data", data.path, "--seed", "3"] + tiny)
        XCTAssertTrue(r.stderr.contains("restored \(out.path)"), r.stderr)
        XCTAssertNotEqual(r.status, 0, "restored, it is a previous output again: --force is needed")
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("model.safetensors")), second, "the previous checkpoint is back, intact")
        XCTAssertEqual(try debris(), [])
        // And the fallback replacement itself works when not interrupted.
        r = try CLI.run(["init", "--output", out.path, "--data", data.path, "--seed", "3", "--force"] + tiny, env: ["SLMREC_TEST_NO_RENAME_EXCHANGE": "1"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertNotEqual(try Data(contentsOf: out.appendingPathComponent("model.safetensors")), second)
        XCTAssertEqual(try debris(), [])
    }

    func testStaleDebrisIsCleaned() throws {
        let fm = FileManager.default
        let out = dir.appendingPathComponent("out")
        XCTAssertEqual(try CLI.run(["init", "--output", out.path, "--items", "11"]).status, 0)
        let dead: Int32 = 2_147_483_646   // above Linux's pid_max: no such process
        let staleTmp = dir.appendingPathComponent(".out.tmp-\(dead)-12345"), staleOld = dir.appendingPathComponent(".out.old-\(dead)")
        let live = dir.appendingPathComponent(".out.tmp-\(getpid())-777")
        for d in [staleTmp, staleOld, live] {
            try fm.createDirectory(at: d, withIntermediateDirectories: true)
            try Data("x".utf8).write(to: d.appendingPathComponent("model.safetensors"))
        }
        let r = try CLI.run(["init", "--output", out.path, "--items", "11", "--force"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertFalse(fm.fileExists(atPath: staleTmp.path), "a dead process's temporary is removed")
        XCTAssertFalse(fm.fileExists(atPath: staleOld.path), "a dead process's old copy is removed (the output exists)")
        // Holding the output's lock, no other writer of it can be at work: a sibling whose pid
        // is alive (reused, or this test's) is debris too. (Without the lock, AtomicFile spares
        // live pids: OutputSafetyUnitTests.)
        XCTAssertFalse(fm.fileExists(atPath: live.path), "under the lock every temporary of the output is debris")
        XCTAssertTrue(r.stderr.contains(staleTmp.path) && r.stderr.contains(staleOld.path), r.stderr)

        // A pass that fails before training leaves no state anywhere: not beside the output,
        // not in the system temp directory.
        let other = dir.appendingPathComponent("other-items")
        XCTAssertEqual(try CLI.run(["init", "--output", other.path, "--items", "30"] + tiny).status, 0)
        let temps = Set(try fm.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("slmrec-apply") })
        let failed = try CLI.run(["apply", "finetune", "--input", other.path, "--output", path("ft"), "--options", finetuneOptions(steps: 10)])
        XCTAssertNotEqual(failed.status, 0)
        XCTAssertTrue(failed.stderr.contains("items"), failed.stderr)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".ft") || $0 == "ft" }, [])
        XCTAssertEqual(Set(try fm.contentsOfDirectory(atPath: NSTemporaryDirectory()).filter { $0.hasPrefix("slmrec-apply") }), temps)
    }

    func testApplyResumesAfterKillNineWithIdenticalWeights() throws {
        let fm = FileManager.default
        let opts = finetuneOptions(steps: 1500)
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        var r = try CLI.run(["apply", "finetune", "--input", ck.path, "--output", a.path, "--options", opts])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertFalse(fm.fileExists(atPath: path(".a.work")), "the work directory goes once the output is written")

        let args = ["apply", "finetune", "--input", ck.path, "--output", b.path, "--options", opts]
        let p = try CLI.spawn(args, stderr: dir.appendingPathComponent("kill.err"))
        let trainer = dir.appendingPathComponent(".b.work/trainer")
        XCTAssertTrue(CLI.wait(upTo: 120, while: p) { (CLI.savedStep(trainer) ?? 0) >= 100 }, "a trainer checkpoint exists beside the output")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        XCTAssertFalse(fm.fileExists(atPath: b.path), "no output from a killed apply")
        let step = try XCTUnwrap(CLI.savedStep(trainer))

        // Without --resume the state is not thrown away silently.
        r = try CLI.run(args)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--resume") && r.stderr.contains(".b.work"), r.stderr)
        XCTAssertEqual(CLI.savedStep(trainer), step, "the state is untouched")
        // Other options are not resumed from this state.
        r = try CLI.run(["apply", "finetune", "--input", ck.path, "--output", b.path, "--options", finetuneOptions(steps: 1400), "--resume"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("other inputs, options or seed"), r.stderr)

        r = try CLI.run(args + ["--resume"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertTrue(r.stderr.contains("resuming at step \(step)"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: a.appendingPathComponent("model.safetensors")), try Data(contentsOf: b.appendingPathComponent("model.safetensors")),
                       "resumed weights are bit-identical to the uninterrupted apply")
        XCTAssertFalse(fm.fileExists(atPath: path(".b.work")))
    }

    func testSASRecStopsOnSIGINTAndResumesToTheSameWeights() throws {
        let fm = FileManager.default
        let common = ["sasrec", "--data", data.path, "--epochs", "60", "--patience", "100", "--batch-size", "4", "--hidden", "16", "--quiet"]
        let a = path("sa"), b = dir.appendingPathComponent("sb")
        var r = try CLI.run(common + ["--output", a])
        XCTAssertEqual(r.status, 0, r.all)
        let args = common + ["--output", b.path]
        let errFile = dir.appendingPathComponent("sasrec.err")
        let p = try CLI.spawn(args, stderr: errFile)
        let state = dir.appendingPathComponent(".sb.work/state/trainer.json")
        XCTAssertTrue(CLI.wait(upTo: 120, while: p) { fm.fileExists(atPath: state.path) }, "an epoch's state was saved")
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let err = try String(contentsOf: errFile, encoding: .utf8)
        XCTAssertEqual(p.terminationStatus, 130, err)
        XCTAssertTrue(err.contains("interrupted by SIGINT") && err.contains("--quiet --output \(b.path) --resume"), err)
        XCTAssertFalse(fm.fileExists(atPath: b.path))
        r = try CLI.run(args)
        XCTAssertTrue(r.status != 0 && r.stderr.contains("add --resume"), r.stderr)
        r = try CLI.run(args + ["--resume"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a + "/sasrec.safetensors")), try Data(contentsOf: b.appendingPathComponent("sasrec.safetensors")))
        XCTAssertFalse(fm.fileExists(atPath: path(".sb.work")))
    }

    /// Killed after a stage trained but before its directory was written (during its
    /// evaluation): the training is not lost, --resume only evaluates and writes.
    func testAKillAfterTrainingKeepsTheTraining() throws {
        let fm = FileManager.default
        let recipe = dir.appendingPathComponent("eval.json5")
        try """
        { inputs: { init: "\(ck.path)" }, evaluate: { data: "\(data.path)", split: "test", candidates: "full" },
          stages: [ { name: "ft", pass: "finetune", input: "init",
                      options: { data: "\(data.path)", max_steps: 40, batch_size: 8, lr: 0.002, valid_every: 100000, valid_users: 0, patience: 0 } } ] }
        """.write(to: recipe, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run"), marker = dir.appendingPathComponent("marker")
        let p = try CLI.spawn(["run", recipe.path, "--output", run.path, "--no-report"], stderr: dir.appendingPathComponent("eval.err"),
                              env: ["SLMREC_FAULT_POINT": "stage-evaluation", "SLMREC_FAULT_MARKER": marker.path])
        XCTAssertTrue(CLI.wait(upTo: 120, while: p) { fm.fileExists(atPath: marker.path) }, "reached the stage's evaluation")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let r = try CLI.run(["run", recipe.path, "--output", run.path, "--no-report", "--resume"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertTrue(r.stderr.contains("resuming at step 40 of 40"), "no step is trained again: \(r.stderr)")
        XCTAssertNoThrow(try Checkpoint.load(directory: run.appendingPathComponent("ft/checkpoint")))
        XCTAssertFalse(fm.fileExists(atPath: run.appendingPathComponent(".work").path), "the state goes once the stage is written")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: run.path).filter { $0.hasPrefix(".") }, [], "no debris in the run directory")
    }

    /// `run --force` replaced the previous run; interrupted, it is continued with --resume
    /// (the printed command drops --force, which cannot be combined with --resume).
    func testAnInterruptedForcedRunResumesWithoutForce() throws {
        let fm = FileManager.default
        let run = dir.appendingPathComponent("run")
        XCTAssertEqual(try CLI.run(["run", try recipe().path, "--output", run.path, "--no-report"]).status, 0)
        let long = try recipe(steps: 1500)
        let errFile = dir.appendingPathComponent("force.err")
        let p = try CLI.spawn(["run", long.path, "--output", run.path, "--no-report", "--force"], stderr: errFile)
        let work = run.appendingPathComponent(".work")
        XCTAssertTrue(CLI.wait(upTo: 120, while: p) {
            ((try? fm.contentsOfDirectory(atPath: work.path)) ?? []).contains { fm.fileExists(atPath: work.appendingPathComponent("\($0)/trainer/log.jsonl").path) }
        }, "training started")
        kill(p.processIdentifier, SIGSTOP)
        kill(p.processIdentifier, SIGINT)
        kill(p.processIdentifier, SIGCONT)
        p.waitUntilExit()
        let err = try String(contentsOf: errFile, encoding: .utf8)
        XCTAssertEqual(p.terminationStatus, 130, err)
        let line = try XCTUnwrap(err.split(separator: "\n").last { $0.hasSuffix("--resume") }, err)
        XCTAssertFalse(line.contains("--force"), String(line))
        XCTAssertTrue(line.hasSuffix("--output \(run.path) --no-report --resume"), String(line))
        let r = try CLI.run(["run", long.path, "--output", run.path, "--no-report", "--resume"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertTrue(r.stderr.contains("resuming at step"), r.stderr)
    }

    /// The non-finite guard names a state directory that still exists after the command exits.
    func testAFailedApplyKeepsTheStateItsMessageNames() throws {
        let opts = "{data: \"\(data.path)\", max_steps: 50, batch_size: 8, lr: 1e30, grad_clip: 0, valid_every: 100000, valid_users: 0, patience: 0}"
        let r = try CLI.run(["apply", "finetune", "--input", ck.path, "--output", path("nan"), "--options", opts])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("is not finite"), r.stderr)
        let named = try XCTUnwrap(r.stderr.range(of: #"saved in (\S+)\."#, options: .regularExpression).map { String(r.stderr[$0].dropFirst(9).dropLast()) }, r.stderr)
        XCTAssertEqual(named, path(".nan.work/trainer"))
        XCTAssertNotNil(CLI.savedStep(URL(fileURLWithPath: named)), "the state the message names is there")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("nan")))
    }

    /// SIGINT (run) and SIGTERM (apply) stop at a step boundary with the state saved, print
    /// the command that resumes, exit 130 / 143; resuming gives the uninterrupted weights. While
    /// each runs, a second writer of the same output is refused (the lock).
    func testSignalsStopCleanlyAndOnlyOneWriterAtATime() throws {
        let fm = FileManager.default
        let recipe = try recipe(steps: 1500, checkpointEvery: 0)
        let ref = dir.appendingPathComponent("ref")
        var r = try CLI.run(["run", recipe.path, "--output", ref.path, "--no-report"])
        XCTAssertEqual(r.status, 0, r.all)
        let refWeights = try Data(contentsOf: ref.appendingPathComponent("ft/checkpoint/model.safetensors"))

        // slmrec run, SIGINT.
        let run = dir.appendingPathComponent("run")
        let runArgs = ["run", recipe.path, "--output", run.path, "--no-report"]
        let errFile = dir.appendingPathComponent("run.err")
        let p = try CLI.spawn(runArgs, stderr: errFile)
        let work = run.appendingPathComponent(".work")
        XCTAssertTrue(CLI.wait(upTo: 120, while: p) {
            ((try? fm.contentsOfDirectory(atPath: work.path)) ?? []).contains { fm.fileExists(atPath: work.appendingPathComponent("\($0)/trainer/log.jsonl").path) }
        }, "training started")
        // Paused while the second writers are tried (so it cannot finish first on a slow
        // machine); it keeps its lock.
        kill(p.processIdentifier, SIGSTOP)
        r = try CLI.run(runArgs + ["--resume"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("is being written by another slmrec process (pid \(p.processIdentifier)"), r.stderr)
        r = try CLI.run(runArgs + ["--force"])
        XCTAssertTrue(r.status != 0 && r.stderr.contains("being written by another slmrec process"), r.stderr)
        XCTAssertTrue(p.isRunning, "the first run goes on")
        kill(p.processIdentifier, SIGINT)   // pending while stopped, handled on SIGCONT
        kill(p.processIdentifier, SIGCONT)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit)
        XCTAssertEqual(p.terminationStatus, 130)
        let err = try String(contentsOf: errFile, encoding: .utf8)
        XCTAssertTrue(err.contains("interrupted by SIGINT after step"), err)
        XCTAssertTrue(err.contains("Resume with") && err.contains("--no-report --resume"), err)
        XCTAssertFalse(fm.fileExists(atPath: run.appendingPathComponent("ft").path), "no stage output from an interrupted stage")
        r = try CLI.run(runArgs + ["--resume"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertTrue(r.stderr.contains("resuming at step"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("ft/checkpoint/model.safetensors")), refWeights)

        // slmrec apply, SIGTERM.
        let opts = finetuneOptions(steps: 1500)
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        XCTAssertEqual(try CLI.run(["apply", "finetune", "--input", ck.path, "--output", a.path, "--options", opts]).status, 0)
        // b holds a previous checkpoint: this apply replaces it (--force), and its output is
        // swapped in only at the end, so the resume needs --force too.
        XCTAssertEqual(try CLI.run(["convert", "--input", ck.path, "--output", b.path]).status, 0)
        let applyArgs = ["apply", "finetune", "--input", ck.path, "--output", b.path, "--options", opts, "--force"]
        let applyErr = dir.appendingPathComponent("apply.err")
        let q = try CLI.spawn(applyArgs, stderr: applyErr)
        let log = dir.appendingPathComponent(".b.work/trainer/log.jsonl")
        XCTAssertTrue(CLI.wait(upTo: 120, while: q) { fm.fileExists(atPath: log.path) }, "training started")
        kill(q.processIdentifier, SIGSTOP)
        r = try CLI.run(applyArgs)
        XCTAssertTrue(r.status != 0 && r.stderr.contains("is being written by another slmrec process (pid \(q.processIdentifier)"), r.stderr)
        kill(q.processIdentifier, SIGTERM)
        kill(q.processIdentifier, SIGCONT)
        q.waitUntilExit()
        XCTAssertEqual(q.terminationStatus, 143)
        let aerr = try String(contentsOf: applyErr, encoding: .utf8)
        XCTAssertTrue(aerr.contains("interrupted by SIGTERM after step") && aerr.contains("--force --resume"), aerr)
        XCTAssertNoThrow(try Checkpoint.load(directory: b), "the previous checkpoint is still there")
        XCTAssertNotNil(CLI.savedStep(dir.appendingPathComponent(".b.work/trainer")), "the state was saved at the stop")
        r = try CLI.run(applyArgs + ["--resume"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertEqual(try Data(contentsOf: a.appendingPathComponent("model.safetensors")), try Data(contentsOf: b.appendingPathComponent("model.safetensors")))
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".b.") || $0.hasPrefix(".run.") }, [], "no lock or work left")
    }
}
