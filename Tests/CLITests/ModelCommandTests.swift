import XCTest
import Foundation
import ModelFormat
import TestKit

/// End-to-end tests of the model commands on the built binary.
final class ModelCommandTests: XCTestCase {
    func fixture(_ name: String) throws -> URL {
        guard let s = SharedData.directory() else { throw XCTSkip("../shared is not present: fixture-based CLI tests skipped") }
        return s.appendingPathComponent("fixtures/\(name)")
    }

    func testInitInspectEmbedConvert() throws {
        let dir = try CLI.tmp()
        let ck = dir.appendingPathComponent("ck").path
        var r = try CLI.run(["init", "--output", ck, "--items", "40", "--layers", "2", "--hidden", "32", "--intermediate", "48",
                             "--heads", "4", "--kv-heads", "2", "--item-dim", "8", "--prompt-length", "3", "--seed", "5"])
        XCTAssertEqual(r.status, 0, r.all)
        r = try CLI.run(["inspect", ck, "--json"])
        XCTAssertEqual(r.status, 0, r.all)
        let info = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(info["layers"] as? Int, 2)
        XCTAssertEqual(info["kv_heads"] as? Int, 2)
        XCTAssertEqual(info["num_items"] as? Int, 40)
        // Same seed, same checkpoint bytes.
        let ck2 = dir.appendingPathComponent("ck2").path
        XCTAssertEqual(try CLI.run(["init", "--output", ck2, "--items", "40", "--layers", "2", "--hidden", "32", "--intermediate", "48",
                                    "--heads", "4", "--kv-heads", "2", "--item-dim", "8", "--prompt-length", "3", "--seed", "5"]).status, 0)
        XCTAssertEqual(FileManager.default.contents(atPath: ck + "/model.safetensors"), FileManager.default.contents(atPath: ck2 + "/model.safetensors"))

        let batch = dir.appendingPathComponent("batch.json")
        try Data(#"{"sequences": [[1, 2, 3], [40], [5, 6]]}"#.utf8).write(to: batch)
        let out = dir.appendingPathComponent("u.safetensors").path
        r = try CLI.run(["embed", "--checkpoint", ck, "--sequences", batch.path, "--output", out, "--hidden-states"])
        XCTAssertEqual(r.status, 0, r.all)
        let t = try Safetensors.read(URL(fileURLWithPath: out))
        XCTAssertEqual(t["user"]?.shape, [3, 8])
        XCTAssertEqual(t["scores"]?.shape, [3, 41])
        XCTAssertEqual(t["last_hidden"]?.shape, [3, 32])
        XCTAssertEqual(t["hidden.2"]?.shape, [3, 32])
        XCTAssertNil(t["hidden.3"])

        let bf = dir.appendingPathComponent("bf16").path
        r = try CLI.run(["convert", "--input", ck, "--output", bf, "--dtype", "bf16"])
        XCTAssertEqual(r.status, 0, r.all)
        r = try CLI.run(["inspect", bf, "--json"])
        let info2 = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((info2["dtypes"] as? [String: Int])?["BF16"], 25)
        XCTAssertEqual(info2["torch_dtype"] as? String, "bfloat16")
    }

    /// `slmrec grads` reproduces the golden Hugging Face loss and gradients.
    func testGradsMatchGoldenFixture() throws {
        let f = try fixture("tiny-public")
        let dir = try CLI.tmp()
        let out = dir.appendingPathComponent("g.safetensors").path
        var r = try CLI.run(["grads", "--checkpoint", f.appendingPathComponent("checkpoint").path,
                             "--batch", f.appendingPathComponent("batch.json").path, "--output", out])
        XCTAssertEqual(r.status, 0, r.all)
        let golden = try Safetensors.read(f.appendingPathComponent("golden.safetensors"))
        var g = try Safetensors.read(URL(fileURLWithPath: out))
        XCTAssertEqual(try g["loss"]!.floats()[0], try golden["loss"]!.floats()[0], accuracy: 1e-5)
        let gradNames = golden.keys.filter { $0.hasPrefix("grad.") }
        XCTAssertEqual(gradNames.count, g.count - 1)
        for n in gradNames {
            let (ok, cmp) = closeToMax(try g[n]!.floats(), try golden[n]!.floats(), atol: 1e-6, rtol: 1e-3)
            XCTAssertTrue(ok, "\(n): \(cmp)")
        }
        // With the adapter: LoRA gradients under PEFT's names.
        r = try CLI.run(["grads", "--checkpoint", f.appendingPathComponent("checkpoint").path, "--adapter", f.appendingPathComponent("adapter").path,
                         "--batch", f.appendingPathComponent("batch.json").path, "--output", out])
        XCTAssertEqual(r.status, 0, r.all)
        g = try Safetensors.read(URL(fileURLWithPath: out))
        XCTAssertEqual(try g["loss"]!.floats()[0], try golden["lora.loss"]!.floats()[0], accuracy: 1e-5)
        for n in golden.keys where n.hasPrefix("lora.grad.") {
            let mine = try XCTUnwrap(g[String(n.dropFirst("lora.".count))], n)
            XCTAssertTrue(closeToMax(try mine.floats(), try golden[n]!.floats(), atol: 1e-6, rtol: 1e-3).ok, n)
        }
    }

    func testHelpAndUsageErrors() throws {
        var r = try CLI.run(["--help"])
        XCTAssertEqual(r.status, 0)
        for cmd in ["init", "inspect", "embed", "grads", "convert", "bench", "data", "eval"] { XCTAssertTrue(r.stdout.contains(cmd), cmd) }
        r = try CLI.run(["init", "--ouput", "x"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("--output"), r.stderr)
        r = try CLI.run(["eval", "--checkpoint", "x", "--data", "y", "--output", "z", "--candidates", "some"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("sampled"), r.stderr)
    }
}
