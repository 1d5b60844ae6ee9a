import XCTest
import Foundation
import ModelFormat
import TestKit

/// kill -9 in the middle of a training stage, then `slmrec run --resume`: the run continues
/// from the last trainer checkpoint and ends with exactly the weights of an uninterrupted run.
final class KillResumeTests: XCTestCase {
    func testKillNineThenResumeGivesTheSameWeights() throws {
        let dir = try CLI.tmp("kill")
        let data = try TinyModels.preparePatternDataset(in: dir)
        let initDir = dir.appendingPathComponent("init").path
        XCTAssertEqual(try CLI.run(["init", "--output", initDir, "--data", data.path, "--layers", "2", "--hidden", "16",
                                    "--intermediate", "24", "--heads", "2", "--item-dim", "8", "--prompt-length", "2", "--max-seq-len", "10"]).status, 0)
        let recipe = dir.appendingPathComponent("train.json5")
        try """
        { inputs: { init: "\(initDir)" },
          stages: [ { name: "ft", pass: "finetune", input: "init",
                      options: { data: "\(data.path)", max_steps: 1500, batch_size: 8, lr: 0.002, checkpoint_every: 25,
                                 valid_every: 100000, valid_users: 0, patience: 0 } } ] }
        """.write(to: recipe, atomically: true, encoding: .utf8)

        // Uninterrupted reference.
        let a = dir.appendingPathComponent("a")
        var r = try CLI.run(["run", recipe.path, "--output", a.path, "--no-report"])
        XCTAssertEqual(r.status, 0, r.all)

        // Killed with SIGKILL once a trainer checkpoint exists, then resumed.
        let b = dir.appendingPathComponent("b")
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = ["run", recipe.path, "--output", b.path, "--no-report"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let work = b.appendingPathComponent(".work")
        var killedAt: Int?
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline {
            if let stage = try? FileManager.default.contentsOfDirectory(atPath: work.path).first,
               let d = FileManager.default.contents(atPath: work.appendingPathComponent("\(stage)/trainer/state/trainer.json").path),
               let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any], let step = o["step"] as? Int, step >= 100 {
                kill(p.processIdentifier, SIGKILL)
                killedAt = step
                break
            }
            usleep(2000)
        }
        p.waitUntilExit()
        let k = try XCTUnwrap(killedAt, "the run finished before it could be killed; raise max_steps")
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        XCTAssertFalse(FileManager.default.fileExists(atPath: b.appendingPathComponent("ft/checkpoint").path), "no stage output from a killed run")
        r = try CLI.run(["run", recipe.path, "--output", b.path, "--resume", "--no-report"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertTrue(r.stderr.contains("resuming at step"), "resumed from the trainer state (killed after step \(k)): \(r.stderr)")
        let wa = try Data(contentsOf: a.appendingPathComponent("ft/checkpoint/model.safetensors"))
        let wb = try Data(contentsOf: b.appendingPathComponent("ft/checkpoint/model.safetensors"))
        XCTAssertEqual(wa, wb, "resumed weights are identical to the uninterrupted run's")
    }
}
