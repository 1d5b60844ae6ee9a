import Foundation
import Common
import ModelFormat

/// A llama-architecture GGUF seen as a Hugging Face LLaMa: its metadata mapped to
/// `config.json` keys and its tensors to Hugging Face names, dequantized on demand.
///
/// Names follow llama.cpp's `gguf-py/gguf/tensor_mapping.py` (MODEL_ARCH.LLAMA) and the keys
/// `gguf-py/gguf/constants.py`; transformers' `integrations/ggml.py` (GGUF_CONFIG_MAPPING) does
/// the same mapping in the other direction, and `modeling_gguf_pytorch_utils.py`
/// (`LlamaConverter`) reverses the q/k row permutation as `unpermute` below does.
public struct LlamaGGUF: Sendable {
    public let file: GGUFFile
    /// The Hugging Face `config.json` (LlamaForCausalLM) this file corresponds to.
    public let config: [String: JSONValue]
    public let layers: Int, hidden: Int, intermediate: Int, heads: Int, kvHeads: Int, headDim: Int, vocabSize: Int
    public let tiedEmbeddings: Bool
    /// Hugging Face name → GGUF name, for every tensor of the file.
    public let hfToGGUF: [String: String]

    var path: String { file.url.path }

    public init(_ file: GGUFFile) throws {
        self.file = file
        let path = file.url.path, m = file.metadata
        func bad(_ key: String, _ problem: String, _ fix: String) -> ModelFormatError {
            ModelFormatError(file: path, problem: "\(key): \(problem)", fix: fix)
        }
        guard let arch = m["general.architecture"]?.stringValue else {
            throw bad("general.architecture", "missing (or not a string)", "the file is not a model GGUF; re-convert it with llama.cpp")
        }
        guard arch == "llama" else {
            throw bad("general.architecture", "is \"\(arch)\"; only \"llama\" is supported (LLaMa, TinyLlama, SmolLM, Mistral-7B and Llama-3 without RoPE scaling)",
                      "use a llama-architecture model; \(arch) differs in its layers (biases, norms, attention) and would compute something else")
        }
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            guard let v = m[key] else {
                if let d { return d }
                throw bad(key, "missing", "the file lacks a required llama hyper-parameter; re-convert it with llama.cpp's convert_hf_to_gguf.py")
            }
            guard let i = v.intValue, i > 0 else { throw bad(key, "is \(v.summary) (a \(v.typeName)), not a positive integer", "re-convert the model") }
            return i
        }
        func float(_ key: String, default d: Double) throws -> Double {
            guard let v = m[key] else { return d }
            guard let x = v.doubleValue, x > 0, x.isFinite else { throw bad(key, "is \(v.summary), not a positive number", "re-convert the model") }
            return x
        }
        layers = try int("llama.block_count")
        hidden = try int("llama.embedding_length")
        intermediate = try int("llama.feed_forward_length")
        heads = try int("llama.attention.head_count")
        kvHeads = try int("llama.attention.head_count_kv", default: heads)
        guard heads % kvHeads == 0 else {
            throw bad("llama.attention.head_count_kv", "\(kvHeads) does not divide llama.attention.head_count \(heads)", "re-convert the model")
        }
        let defaultHeadDim = hidden % heads == 0 ? hidden / heads : nil
        headDim = try int("llama.attention.key_length", default: defaultHeadDim)
        let valueLength = try int("llama.attention.value_length", default: headDim)
        guard valueLength == headDim else {
            throw bad("llama.attention.value_length", "\(valueLength) differs from llama.attention.key_length \(headDim)", "LLaMa uses one head size; this model is not a LLaMa")
        }
        let ropeDims = try int("llama.rope.dimension_count", default: headDim)
        guard ropeDims == headDim else {
            throw bad("llama.rope.dimension_count", "\(ropeDims) is not the head size \(headDim) (partial rotary embeddings)", "only full-head RoPE (LLaMa's) is implemented")
        }
        if let t = m["llama.rope.scaling.type"]?.stringValue, t != "none" {
            throw bad("llama.rope.scaling.type", "is \"\(t)\": RoPE scaling is not implemented",
                      "use a model without RoPE scaling (the engine implements LLaMa's default RoPE); for short recommendation prompts a non-scaled variant of the model works")
        }
        if let f = m["llama.rope.scaling.factor"]?.doubleValue, f != 1 {
            throw bad("llama.rope.scaling.factor", "is \(f): RoPE scaling is not implemented", "use a model without RoPE scaling")
        }
        if let e = m["llama.expert_count"]?.intValue, e > 0 {
            throw bad("llama.expert_count", "is \(e): mixture-of-experts layers are not implemented", "use a dense llama model")
        }
        let eps = try float("llama.attention.layer_norm_rms_epsilon", default: 1e-5)
        let theta = try float("llama.rope.freq_base", default: 10000)
        let context = try int("llama.context_length", default: 2048)
        let tokenCount = m["tokenizer.ggml.tokens"]?.arrayValue?.count
        let vocab = try int("llama.vocab_size", default: tokenCount)
        vocabSize = vocab

        // The tensor table: every tensor must map to a Hugging Face name, every expected one
        // must be there with its shape.
        var map: [String: String] = [:], expected: [String: [Int]] = [:]
        let qd = heads * headDim, kvd = kvHeads * headDim
        func expect(_ gguf: String, _ hf: String, _ shape: [Int]) { map[hf] = gguf; expected[gguf] = shape }
        expect("token_embd.weight", TensorNames.tokenEmbedding, [vocab, hidden])
        expect("output_norm.weight", TensorNames.finalNorm, [hidden])
        let linearShape: [String: [Int]] = ["q_proj": [qd, hidden], "k_proj": [kvd, hidden], "v_proj": [kvd, hidden], "o_proj": [hidden, qd],
                                            "gate_proj": [intermediate, hidden], "up_proj": [intermediate, hidden], "down_proj": [hidden, intermediate]]
        for l in 0..<layers {
            let b = "blk.\(l).", h = TensorNames.layerPrefix(l)
            expect(b + "attn_norm.weight", h + "input_layernorm.weight", [hidden])
            expect(b + "ffn_norm.weight", h + "post_attention_layernorm.weight", [hidden])
            for (g, m) in LlamaGGUF.linearNames { expect(b + g + ".weight", TensorNames.linear(l, m) + ".weight", linearShape[m] ?? []) }
        }
        tiedEmbeddings = file.info("output.weight") == nil
        if !tiedEmbeddings { expect("output.weight", TensorNames.lmHead, [vocab, hidden]) }
        for t in file.tensors {
            guard let shape = expected[t.name] else {
                if t.name == "rope_freqs.weight" {
                    throw ModelFormatError(file: path, problem: "tensor \"rope_freqs.weight\": the model uses Llama-3.1-style RoPE frequency scaling",
                                           fix: "RoPE scaling is not implemented; use a model without it")
                }
                throw ModelFormatError(file: path, problem: "tensor \"\(t.name)\" is not part of a \(layers)-layer llama model",
                                       fix: "the tensor count or llama.block_count is wrong, or the model has parts the engine does not implement (biases, extra norms); re-convert it")
            }
            guard t.shape == shape else {
                throw ModelFormatError(file: path, problem: "tensor \"\(t.name)\" has shape \(t.shape); the metadata implies \(shape)",
                                       fix: "the tensor table and the llama.* metadata disagree; re-convert the model")
            }
        }
        for (g, _) in expected where file.info(g) == nil {
            throw ModelFormatError(file: path, problem: "tensor \"\(g)\" is missing (the file has \(file.tensors.count) tensors, a \(layers)-layer llama needs \(expected.count))",
                                   fix: "the file is incomplete or llama.block_count is wrong; re-convert it")
        }
        if let tc = tokenCount, tc != vocab {
            throw bad("tokenizer.ggml.tokens", "holds \(tc) tokens but the vocabulary is \(vocab)", "re-convert the model")
        }
        hfToGGUF = map

        var c: [String: JSONValue] = [
            "architectures": .array([.string("LlamaForCausalLM")]), "model_type": .string("llama"),
            "hidden_size": .int(hidden), "intermediate_size": .int(intermediate), "num_hidden_layers": .int(layers),
            "num_attention_heads": .int(heads), "num_key_value_heads": .int(kvHeads), "head_dim": .int(headDim),
            "rms_norm_eps": .double(eps), "rope_theta": .double(theta),
            "rope_parameters": .object(["rope_type": .string("default"), "rope_theta": .double(theta)]),
            "max_position_embeddings": .int(context), "vocab_size": .int(vocab),
            "tie_word_embeddings": .bool(tiedEmbeddings), "hidden_act": .string("silu"),
            "attention_bias": .bool(false), "attention_dropout": .double(0), "mlp_bias": .bool(false),
            "initializer_range": .double(0.02), "pretraining_tp": .int(1), "use_cache": .bool(true), "rope_scaling": .null,
            "torch_dtype": .string("float32"),
        ]
        for (key, hf) in [("tokenizer.ggml.bos_token_id", "bos_token_id"), ("tokenizer.ggml.eos_token_id", "eos_token_id"),
                          ("tokenizer.ggml.padding_token_id", "pad_token_id")] {
            if let v = m[key]?.intValue { c[hf] = .int(v) } else { c[hf] = .null }
        }
        config = c
    }

    public static func open(_ url: URL) throws -> LlamaGGUF { try LlamaGGUF(GGUFFile(url: url)) }

    /// llama.cpp's names of a block's linear layers and Hugging Face's module names.
    static let linearNames = [("attn_q", "q_proj"), ("attn_k", "k_proj"), ("attn_v", "v_proj"), ("attn_output", "o_proj"),
                              ("ffn_gate", "gate_proj"), ("ffn_up", "up_proj"), ("ffn_down", "down_proj")]

    /// The shape of a tensor by its Hugging Face name.
    public func shape(_ hfName: String) -> [Int]? { hfToGGUF[hfName].flatMap { file.info($0)?.shape } }

    /// A tensor by its Hugging Face name, dequantized to fp32, q/k rows back in Hugging Face order.
    public func floats(_ hfName: String) throws -> [Float] {
        guard let g = hfToGGUF[hfName] else {
            throw ModelFormatError(file: path, problem: "no tensor for \"\(hfName)\"", fix: "the model has \(layers) layers; check the name")
        }
        let w = try file.floats(g)
        if hfName.hasSuffix(".self_attn.q_proj.weight") { return LlamaGGUF.unpermute(w, heads: heads, columns: hidden) }
        if hfName.hasSuffix(".self_attn.k_proj.weight") { return LlamaGGUF.unpermute(w, heads: kvHeads, columns: hidden) }
        return w
    }

    /// Rows of the token embedding (for prompt blocks), without decoding the whole table.
    public func embeddingRows(_ ids: [Int]) throws -> [Float] { try file.rows("token_embd.weight", ids) }

    /// llama.cpp's converter (`convert_hf_to_gguf.py`, LlamaModel.permute) stores each head's
    /// rows of q_proj / k_proj interleaved for its RoPE (pairs (x_i, x_{i+d/2}) adjacent):
    /// `w.reshape(n_head, 2, d/2, C).swapaxes(1, 2)`. The inverse, per head: GGUF row 2i + j is
    /// Hugging Face row j·d/2 + i (j ∈ {0, 1}). Skipping it still produces fluent short text but
    /// a wrong model (the issue measured SmolLM2's perplexity 13.2 → 54.5).
    public static func unpermute(_ w: [Float], heads: Int, columns c: Int) -> [Float] {
        let rows = w.count / c, d = rows / heads, half = d / 2
        var out = [Float](repeating: 0, count: w.count)
        w.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for h in 0..<heads {
                    for i in 0..<half {
                        for j in 0..<2 {
                            let from = (h * d + 2 * i + j) * c, to = (h * d + j * half + i) * c
                            (dst.baseAddress! + to).update(from: src.baseAddress! + from, count: c)
                        }
                    }
                }
            }
        }
        return out
    }

    /// Every tensor under its Hugging Face name, dequantized and in `dtype`.
    public func huggingFaceTensors(dtype: DType) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (hf, g) in hfToGGUF {
            guard let info = file.info(g) else { continue }
            out[hf] = Tensor(floats: try floats(hf), shape: info.shape, dtype: dtype)
        }
        return out
    }

    /// Counts of each ggml type among the tensors ("Q4_1": 182, …).
    public var typeCounts: [String: Int] { file.tensors.reduce(into: [:]) { $0[$1.type.name, default: 0] += 1 } }

    public var parameterCount: Int { file.tensors.reduce(0) { $0 + $1.count } }
}
