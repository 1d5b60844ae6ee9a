import XCTest
import Foundation
import ModelFormat
import Common
import TestKit

/// `slmrec import-gguf` and `slmrec init --base FILE.gguf` on the built binary, with a tiny
/// llama GGUF written by the test (GGUFBuilder, as llama.cpp's converter lays it out).
final class PretrainedTrunkTests: XCTestCase {
    func tinyGGUF(_ dir: URL, _ name: String = "tiny.gguf") throws -> URL {
        let u = dir.appendingPathComponent(name)
        try GGUFBuilder.tinyLlama().write(to: u)
        return u
    }

    func testImportGGUFWritesAHuggingFaceDirectoryWithTheOriginalWeights() throws {
        let dir = try CLI.tmp()
        let gguf = try tinyGGUF(dir)
        let out = dir.appendingPathComponent("hf")
        var r = try CLI.run(["import-gguf", gguf.path, "--output", out.path])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertTrue(r.stdout.contains("2 layers, hidden 16, 4 heads (2 KV), vocab 10"), r.all)
        let store = try TensorStore.open(directory: out)
        let hf = GGUFBuilder.tinyLlamaHF()
        XCTAssertEqual(Set(store.names), Set(hf.keys), "tied embeddings: no lm_head, as save_pretrained writes it")
        for (name, t) in hf {
            XCTAssertEqual(store.info(name)?.shape, t.shape, name)
            XCTAssertEqual(try store.floats(name), t.values, name)
        }
        let cfg = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as? [String: Any])
        XCTAssertEqual(cfg["architectures"] as? [String], ["LlamaForCausalLM"])
        XCTAssertEqual(cfg["num_key_value_heads"] as? Int, 2)
        XCTAssertEqual(cfg["tie_word_embeddings"] as? Bool, true)
        XCTAssertEqual(cfg["rope_theta"] as? Double, 100000)
        let rec = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("gguf-import.json"))) as? [String: Any])
        XCTAssertEqual(rec["source"] as? String, "tiny.gguf")

        // An existing import is not replaced without --force; with it, bf16 replaces it.
        r = try CLI.run(["import-gguf", gguf.path, "--output", out.path, "--dtype", "bf16"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--force"), r.all)
        r = try CLI.run(["import-gguf", gguf.path, "--output", out.path, "--dtype", "bf16", "--force"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertEqual(try TensorStore.open(directory: out).info("model.norm.weight")?.dtype, .bf16)
    }

    func testBadGGUFIsNamedAndNothingIsWritten() throws {
        let dir = try CLI.tmp()
        let good = try Data(contentsOf: try tinyGGUF(dir))
        let cases: [(String, Data, String)] = [
            ("truncated.gguf", good.prefix(good.count - 100), "truncated"),
            ("magic.gguf", Data("GGML".utf8) + good.dropFirst(4), "not \"GGUF\""),
            ("text.gguf", Data("hello".utf8), "not \"GGUF\""),
        ]
        for (name, bytes, needle) in cases {
            let f = dir.appendingPathComponent(name)
            try bytes.write(to: f)
            let out = dir.appendingPathComponent("out-\(name)")
            let r = try CLI.run(["import-gguf", f.path, "--output", out.path])
            XCTAssertNotEqual(r.status, 0, name)
            XCTAssertTrue(r.stderr.contains(name) && r.stderr.contains(needle), "\(name): \(r.all)")
            XCTAssertTrue(r.stderr.contains("Fix:"), r.all)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "\(name): nothing is written")
        }
        // A non-llama architecture names the key.
        var qwen = GGUFBuilder.tinyLlama()
        qwen.metadata = qwen.metadata.map { $0.0 == "general.architecture" ? ($0.0, .string("qwen2")) : $0 }
        let q = dir.appendingPathComponent("qwen.gguf")
        try qwen.write(to: q)
        let r = try CLI.run(["import-gguf", q.path, "--output", dir.appendingPathComponent("q").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("general.architecture") && r.stderr.contains("qwen2"), r.all)
    }

    /// `init --base` takes the .gguf itself, or its import: the same checkpoint either way.
    func testInitFromAGGUFEqualsInitFromItsImport() throws {
        let dir = try CLI.tmp()
        let gguf = try tinyGGUF(dir)
        let hf = dir.appendingPathComponent("hf")
        XCTAssertEqual(try CLI.run(["import-gguf", gguf.path, "--output", hf.path]).status, 0)
        let args = ["--keep-layers", "1", "--items", "20", "--item-dim", "8", "--prompt-token-ids", "3", "--prompt-token-ids", "7",
                    "--suffix-token-ids", "1", "--seed", "3"]
        let a = dir.appendingPathComponent("from-gguf"), b = dir.appendingPathComponent("from-hf")
        var r = try CLI.run(["init", "--base", gguf.path, "--output", a.path] + args)
        XCTAssertEqual(r.status, 0, r.all)
        r = try CLI.run(["init", "--base", hf.path, "--output", b.path] + args)
        XCTAssertEqual(r.status, 0, r.all)
        let ta = try Checkpoint.load(directory: a).tensors, tb = try Checkpoint.load(directory: b).tensors
        XCTAssertEqual(ta, tb)
        let emb = GGUFBuilder.tinyLlamaHF()["model.embed_tokens.weight"]!.values
        XCTAssertEqual(try ta["ellmrec.prompt_embeddings"]?.floats(), Array(emb[48..<64] + emb[112..<128]))
        XCTAssertEqual(try ta["model.layers.0.self_attn.q_proj.weight"]?.floats(), GGUFBuilder.tinyLlamaHF()["model.layers.0.self_attn.q_proj.weight"]!.values)
        XCTAssertNil(ta["model.layers.1.self_attn.q_proj.weight"], "one layer kept")
    }
}
