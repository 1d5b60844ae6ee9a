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
        // With the adapter: LoRA gradients under PEFT's names (replacing the previous gradients file).
        r = try CLI.run(["grads", "--checkpoint", f.appendingPathComponent("checkpoint").path, "--adapter", f.appendingPathComponent("adapter").path,
                         "--batch", f.appendingPathComponent("batch.json").path, "--output", out, "--force"])
        XCTAssertEqual(r.status, 0, r.all)
        g = try Safetensors.read(URL(fileURLWithPath: out))
        XCTAssertEqual(try g["loss"]!.floats()[0], try golden["lora.loss"]!.floats()[0], accuracy: 1e-5)
        for n in golden.keys where n.hasPrefix("lora.grad.") {
            let mine = try XCTUnwrap(g[String(n.dropFirst("lora.".count))], n)
            XCTAssertTrue(closeToMax(try mine.floats(), try golden[n]!.floats(), atol: 1e-6, rtol: 1e-3).ok, n)
        }
    }

    /// `slmrec bench --io` is the benchmark row that replaced a timed unit test: it runs, says
    /// which machine it ran on, and its JSON has the rows `make bench-compare` pairs by id.
    /// One benchmark at a time: combining modes is a usage error.
    func testBenchIORowAndModeErrors() throws {
        let r = try CLI.run(["bench", "--io", "--seconds", "0.05", "--json"])
        XCTAssertEqual(r.status, 0, r.all)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let rows = try XCTUnwrap(json["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.compactMap { $0["id"] as? String }, ["safetensors_write", "safetensors_read"])
        XCTAssertTrue(rows.allSatisfy { ($0["rate"] as? Double ?? 0) > 0 })
        let machine = try XCTUnwrap(json["machine"] as? [String: Any])
        XCTAssertNotNil(machine["isa"] as? String)
        XCTAssertNotNil(machine["cpu_model"] as? String)
        let both = try CLI.run(["bench", "--io", "--int8"])
        XCTAssertEqual(both.status, 64, both.all)
        XCTAssertTrue(both.stderr.contains("one at a time"), both.stderr)
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

final class InitFromBaseTests: XCTestCase {
    /// `slmrec init --base`: a pretrained LLaMa's first layers and final norm become the trunk;
    /// the prompt rows are the embed_tokens rows of the given token ids.
    func testWrapPretrainedLlama() throws {
        let dir = try CLI.tmp("base")
        let base = dir.appendingPathComponent("llama")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        let c = 32, inter = 48, vocab = 100, layers = 3
        let cfg: [String: Any] = ["architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": c, "intermediate_size": inter,
                                  "num_hidden_layers": layers, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": vocab,
                                  "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 256, "hidden_act": "silu",
                                  "torch_dtype": "bfloat16", "tie_word_embeddings": false]
        try JSONSerialization.data(withJSONObject: cfg).write(to: base.appendingPathComponent("config.json"))
        var t: [String: Tensor] = [:]
        var k: Float = 0
        func tensor(_ shape: [Int]) -> Tensor {
            k += 1
            let n = shape.reduce(1, *)
            return Tensor(floats: (0..<n).map { Float($0 % 7) * 0.01 + k * 0.001 }, shape: shape, dtype: .bf16)
        }
        t["model.embed_tokens.weight"] = Tensor(floats: (0..<(vocab * c)).map { Float($0 / c) }, shape: [vocab, c], dtype: .bf16)
        t["lm_head.weight"] = tensor([vocab, c])
        t["model.norm.weight"] = tensor([c])
        for l in 0..<layers {
            t["model.layers.\(l).input_layernorm.weight"] = tensor([c])
            t["model.layers.\(l).post_attention_layernorm.weight"] = tensor([c])
            t["model.layers.\(l).self_attn.q_proj.weight"] = tensor([c, c])
            t["model.layers.\(l).self_attn.k_proj.weight"] = tensor([16, c])
            t["model.layers.\(l).self_attn.v_proj.weight"] = tensor([16, c])
            t["model.layers.\(l).self_attn.o_proj.weight"] = tensor([c, c])
            t["model.layers.\(l).mlp.gate_proj.weight"] = tensor([inter, c])
            t["model.layers.\(l).mlp.up_proj.weight"] = tensor([inter, c])
            t["model.layers.\(l).mlp.down_proj.weight"] = tensor([c, inter])
        }
        try Safetensors.write(t, to: base.appendingPathComponent("model.safetensors"))
        let out = dir.appendingPathComponent("ck")
        let r = try CLI.run(["init", "--output", out.path, "--base", base.path, "--keep-layers", "2", "--prompt-token-ids", "5,7",
                             "--suffix-token-ids", "9", "--items", "20", "--item-dim", "8"])
        XCTAssertEqual(r.status, 0, r.all)
        let ck = try Checkpoint.load(directory: out)
        XCTAssertEqual(ck.config.numLayers, 2)
        XCTAssertEqual(ck.config.numKVHeads, 2)
        XCTAssertEqual(ck.config.ropeTheta, 500000)
        XCTAssertEqual(ck.config.ellmrec.promptLength, 2)
        XCTAssertEqual(ck.config.ellmrec.suffixLength, 1)
        XCTAssertEqual(try ck.tensors["ellmrec.prompt_embeddings"]!.floats(), [Float](repeating: 5, count: c) + [Float](repeating: 7, count: c))
        XCTAssertEqual(try ck.tensors["ellmrec.prompt_suffix_embeddings"]!.floats(), [Float](repeating: 9, count: c))
        XCTAssertEqual(try ck.tensors["model.layers.1.mlp.up_proj.weight"]!.floats(), try t["model.layers.1.mlp.up_proj.weight"]!.floats())
        XCTAssertNil(ck.tensors["model.layers.2.mlp.up_proj.weight"])
        XCTAssertNil(ck.tensors["lm_head.weight"])
        // Architecture flags cannot apply to a wrapped model: an error, not silently ignored.
        let r3 = try CLI.run(["init", "--output", dir.appendingPathComponent("x").path, "--base", base.path, "--layers", "2", "--items", "20"])
        XCTAssertEqual(r3.status, 64)
        XCTAssertTrue(r3.stderr.contains("--layers") && r3.stderr.contains("--base"), r3.stderr)
        // Too many layers: a clear error, nothing written.
        let bad = dir.appendingPathComponent("bad")
        let r2 = try CLI.run(["init", "--output", bad.path, "--base", base.path, "--keep-layers", "4", "--items", "20"])
        XCTAssertNotEqual(r2.status, 0)
        XCTAssertTrue(r2.stderr.contains("3 layers"), r2.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: bad.path))
    }
}
