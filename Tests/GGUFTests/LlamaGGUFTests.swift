import XCTest
import Foundation
import Common
import ModelFormat
import TestKit
@testable import GGUF

/// A llama GGUF as a Hugging Face LLaMa: config, names, the q/k permutation reversed; what it
/// refuses; and the real SmolLM2-135M file when `scripts/fetch-smollm2` has fetched it.
final class LlamaGGUFTests: XCTestCase {
    var tmp: URL!
    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("llama-gguf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }


    func tiny(layers: Int = 2, tied: Bool = true, edit: (inout GGUFBuilder) -> Void = { _ in }) throws -> URL {
        var b = GGUFBuilder.tinyLlama(layers: layers, tied: tied)
        edit(&b)
        let u = tmp.appendingPathComponent("tiny-\(UUID().uuidString).gguf")
        try b.write(to: u)
        return u
    }

    func testTinyLlamaMapsToHuggingFaceWithQKUnpermuted() throws {
        let m = try LlamaGGUF.open(try tiny())
        XCTAssertEqual(m.config["num_hidden_layers"], .int(2))
        XCTAssertEqual(m.config["hidden_size"], .int(16))
        XCTAssertEqual(m.config["num_key_value_heads"], .int(2))
        XCTAssertEqual(m.config["head_dim"], .int(4))
        XCTAssertEqual(m.config["vocab_size"], .int(10))
        XCTAssertEqual(m.config["tie_word_embeddings"], .bool(true))
        XCTAssertEqual(m.config["rope_theta"]?.doubleValue, 100000)
        XCTAssertEqual(m.config["rms_norm_eps"]?.doubleValue ?? 0, 1e-5, accuracy: 1e-12)
        XCTAssertEqual(m.config["bos_token_id"], .int(0))
        XCTAssertEqual(m.config["eos_token_id"], .int(1))
        XCTAssertTrue(m.tiedEmbeddings)
        // Every tensor comes back exactly as the Hugging Face original (q/k un-permuted).
        let hf = GGUFBuilder.tinyLlamaHF()
        XCTAssertEqual(Set(m.hfToGGUF.keys), Set(hf.keys))
        for (name, t) in hf {
            XCTAssertEqual(m.shape(name), t.shape, name)
            XCTAssertEqual(try m.floats(name), t.values, name)
        }
        // Without the inverse permutation q would differ (the test can fail).
        XCTAssertNotEqual(try m.file.floats("blk.0.attn_q.weight"), hf["model.layers.0.self_attn.q_proj.weight"]!.values)
        let ids = [3, 0, 9]
        let emb = hf["model.embed_tokens.weight"]!.values
        XCTAssertEqual(try m.embeddingRows(ids), ids.flatMap { emb[($0 * 16)..<(($0 + 1) * 16)] })
    }

    func testUntiedOutputIsMappedToLmHead() throws {
        let m = try LlamaGGUF.open(try tiny(tied: false))
        XCTAssertFalse(m.tiedEmbeddings)
        XCTAssertEqual(m.config["tie_word_embeddings"], .bool(false))
        XCTAssertEqual(try m.floats("lm_head.weight"), GGUFBuilder.tinyLlamaHF(tied: false)["lm_head.weight"]!.values)
    }

    func error(_ url: URL) -> String {
        do { _ = try LlamaGGUF.open(url) } catch { return "\(error)" }
        XCTFail("no error")
        return ""
    }

    func testRefusesWhatItCannotRepresent() throws {
        func replacing(_ key: String, _ v: GGUFBuilder.Value) -> (inout GGUFBuilder) -> Void {
            { b in b.metadata = b.metadata.map { $0.0 == key ? (key, v) : $0 } }
        }
        let qwen = error(try tiny(edit: replacing("general.architecture", .string("qwen2"))))
        XCTAssertTrue(qwen.contains("general.architecture") && qwen.contains("\"qwen2\""), qwen)
        let rope = error(try tiny { $0.set("llama.rope.scaling.type", .string("linear")) })
        XCTAssertTrue(rope.contains("llama.rope.scaling.type") && rope.contains("not implemented"), rope)
        let missing = error(try tiny { b in b.tensors.removeAll { $0.name == "blk.1.ffn_up.weight" } })
        XCTAssertTrue(missing.contains("\"blk.1.ffn_up.weight\" is missing"), missing)
        let extra = error(try tiny(layers: 2, edit: replacing("llama.block_count", .u32(1))))
        XCTAssertTrue(extra.contains("\"blk.1.") && extra.contains("not part of a 1-layer llama"), extra)
        let shape = error(try tiny(edit: replacing("llama.feed_forward_length", .u32(32))))
        XCTAssertTrue(shape.contains("ffn_gate.weight") && shape.contains("metadata implies"), shape)
        let noHeads = error(try tiny { b in b.metadata.removeAll { $0.0 == "llama.attention.head_count" } })
        XCTAssertTrue(noHeads.contains("llama.attention.head_count: missing"), noHeads)
        let freqs = error(try tiny { $0.f32("rope_freqs.weight", shape: [2], [1, 1]) })
        XCTAssertTrue(freqs.contains("rope_freqs"), freqs)
        let tokens = error(try tiny(edit: replacing("tokenizer.ggml.tokens", .strings(["a", "b"]))))
        // Two tokens imply a vocabulary of 2, which the 10-row embedding contradicts.
        XCTAssertTrue(tokens.contains("\"token_embd.weight\" has shape [10, 16]; the metadata implies [2, 16]"), tokens)
    }

    // MARK: the real file

    static func smollm2() throws -> URL {
        guard let u = FetchedFiles.present(FetchedFiles.smollm2) else { throw XCTSkip(FetchedFiles.missing(FetchedFiles.smollm2)) }
        return u
    }

    func testRealSmolLM2Metadata() throws {
        let m = try LlamaGGUF.open(try Self.smollm2())
        XCTAssertEqual(m.file.version, 3)
        XCTAssertEqual([m.layers, m.hidden, m.intermediate, m.heads, m.kvHeads, m.headDim, m.vocabSize], [30, 576, 1536, 9, 3, 64, 49152])
        XCTAssertEqual(m.config["rope_theta"]?.doubleValue, 100000)
        XCTAssertEqual(m.config["rms_norm_eps"]?.doubleValue ?? 0, 1e-5, accuracy: 1e-12)
        XCTAssertTrue(m.tiedEmbeddings)
        XCTAssertEqual(m.file.info("token_embd.weight")?.type, .q8_0)
        XCTAssertEqual(m.file.info("blk.0.ffn_up.weight")?.type, .q4_1)
        XCTAssertEqual(m.file.info("blk.0.attn_norm.weight")?.type, .f32)
        XCTAssertEqual(Double(m.parameterCount) / 1e6, 134.5, accuracy: 0.1)
        XCTAssertEqual(m.file.metadata["tokenizer.ggml.model"]?.stringValue, "gpt2")
        XCTAssertEqual(m.file.metadata["tokenizer.ggml.merges"]?.arrayValue?.count, 48900)
        // Norm weights are plain floats: the first layer's are near 1 but not all 1 (pretrained).
        let norm = try m.floats("model.layers.0.input_layernorm.weight")
        XCTAssertEqual(norm.count, 576)
        XCTAssertTrue(norm.contains { $0 != norm[0] })
    }
}
