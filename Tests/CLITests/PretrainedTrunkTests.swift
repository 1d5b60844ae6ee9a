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

    static func smollm2() throws -> URL {
        let env = ProcessInfo.processInfo.environment
        let cache = env["SLMREC_CACHE"].map { URL(fileURLWithPath: $0) }
            ?? (env["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")).appendingPathComponent("slmrec")
        let u = cache.appendingPathComponent("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        guard FileManager.default.fileExists(atPath: u.path) else {
            throw XCTSkip("\(u.path) is absent: run scripts/fetch-smollm2 to test the real SmolLM2-135M")
        }
        return u
    }

    /// The E4SRec/SLMRec prompt as text through SmolLM2's own tokenizer: `tokenize` shows the
    /// ids, `init --prompt-text` builds the prompt from exactly those token embeddings (no BOS:
    /// SmolLM2 adds none), and `inspect` shows the text.
    func testInitWithPromptTextOnTheRealSmolLM2() throws {
        let gguf = try Self.smollm2()
        let dir = try CLI.tmp()
        let instruction = "Given the user's purchase history, predict next possible item to be purchased."
        var r = try CLI.run(["tokenize", "--base", gguf.path, instruction, "--json"])
        XCTAssertEqual(r.status, 0, r.all)
        let tok = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let ids = try XCTUnwrap(tok["ids"] as? [Int])
        XCTAssertEqual(ids, [15423, 260, 2914, 506, 7131, 1463, 28, 3142, 1867, 1636, 5033, 288, 325, 10610, 30])
        XCTAssertEqual((tok["pieces"] as? [String])?.first, "Given")

        let ck = dir.appendingPathComponent("smol2")
        r = try CLI.run(["init", "--base", gguf.path, "--keep-layers", "2", "--items", "30", "--item-dim", "16",
                         "--prompt-text", instruction, "--suffix-text", "\n### Response:\n", "--output", ck.path])
        XCTAssertEqual(r.status, 0, r.all)
        let c = try Checkpoint.load(directory: ck)
        XCTAssertEqual(c.config.numLayers, 2)
        XCTAssertEqual(c.config.numKVHeads, 3)
        XCTAssertEqual(c.config.headDim, 64)
        XCTAssertEqual(c.config.ellmrec.promptLength, 15)
        XCTAssertEqual(c.config.ellmrec.suffixLength, 5)
        XCTAssertEqual(c.config.ellmrec.prompt?.tokenIds, ids)
        XCTAssertEqual(c.config.ellmrec.suffix?.tokenIds, [198, 3757, 14212, 42, 198])
        XCTAssertEqual(c.config.ellmrec.trunk, "SmolLM2-135M-Instruct.Q4_1.gguf")
        // The prompt rows are the (dequantized Q8_0) token embeddings of those ids, the same as
        // with --prompt-token-ids.
        let byIds = dir.appendingPathComponent("by-ids")
        r = try CLI.run(["init", "--base", gguf.path, "--keep-layers", "2", "--items", "30", "--item-dim", "16", "--output", byIds.path]
                        + ids.flatMap { ["--prompt-token-ids", "\($0)"] })
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertEqual(try Checkpoint.load(directory: byIds).tensors["ellmrec.prompt_embeddings"], c.tensors["ellmrec.prompt_embeddings"])
        r = try CLI.run(["inspect", ck.path])
        XCTAssertTrue(r.stdout.contains("prompt text  \"Given the user's purchase history"), r.all)
        XCTAssertTrue(r.stdout.contains(#"suffix text  "\n### Response:\n" (5 tokens"#), r.all)
        XCTAssertTrue(r.stdout.contains("trunk        pretrained layers from SmolLM2-135M-Instruct.Q4_1.gguf"), r.all)
        // Text and ids together are refused.
        r = try CLI.run(["init", "--base", gguf.path, "--items", "30", "--prompt-text", "x", "--prompt-token-ids", "3", "--output", dir.appendingPathComponent("x").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("not both"), r.all)
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

        // The prompt as text: the GGUF's vocabulary and the tokenizer.json import-gguf exported
        // from it give the same ids ("top top" → top, Ġtop = 8, 9), hence the same checkpoint.
        let text = ["--keep-layers", "1", "--items", "20", "--item-dim", "8", "--prompt-text", "top top", "--suffix-text", " to", "--seed", "3"]
        let c = dir.appendingPathComponent("text-gguf"), d = dir.appendingPathComponent("text-hf")
        XCTAssertEqual(try CLI.run(["init", "--base", gguf.path, "--output", c.path] + text).status, 0)
        r = try CLI.run(["init", "--base", hf.path, "--output", d.path] + text)
        XCTAssertEqual(r.status, 0, r.all)
        let cc = try Checkpoint.load(directory: c)
        XCTAssertEqual(cc.config.ellmrec.prompt?.tokenIds, [8, 9])
        XCTAssertEqual(cc.config.ellmrec.suffix?.tokenIds, [5, 6])
        XCTAssertEqual(try tensors(c), try tensors(d))
        XCTAssertEqual(try Checkpoint.load(directory: d).config.ellmrec.prompt?.text, "top top")
        XCTAssertEqual(try cc.tensors["ellmrec.prompt_embeddings"]?.floats(), Array(emb[128..<144] + emb[144..<160]))
    }

    func tensors(_ u: URL) throws -> [String: Tensor] { try Checkpoint.load(directory: u).tensors }
}
