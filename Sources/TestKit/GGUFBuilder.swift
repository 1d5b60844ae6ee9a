import Foundation
import ModelFormat
import Common

/// Writes GGUF files for tests, byte by byte, following ggml/docs/gguf.md (the reader under
/// test is not used to write them). Fields can be corrupted on purpose through `rawHeader`
/// overrides and by editing the returned bytes.
public struct GGUFBuilder {
    public enum Value {
        case u8(UInt8), i8(Int8), u16(UInt16), i16(Int16), u32(UInt32), i32(Int32), u64(UInt64), i64(Int64)
        case f32(Float), f64(Double), bool(Bool), string(String)
        case strings([String]), floats([Float]), i32s([Int32])
    }
    public struct TensorEntry {
        public var name: String
        public var ne: [UInt64]       // ggml order: ne[0] fastest
        public var type: UInt32
        public var data: [UInt8]
        public var offsetOverride: UInt64?
    }

    public var version: UInt32 = 3
    public var alignment = 32
    public var metadata: [(String, Value)] = []
    public var tensors: [TensorEntry] = []
    /// Replaces the tensor count written in the header (a count that lies).
    public var tensorCountOverride: UInt64?

    public init() {}

    public mutating func set(_ key: String, _ v: Value) { metadata.append((key, v)) }

    /// A float tensor stored as F32, shape in PyTorch order.
    public mutating func f32(_ name: String, shape: [Int], _ values: [Float]) {
        var d: [UInt8] = []
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { d += $0 } }
        tensors.append(TensorEntry(name: name, ne: shape.reversed().map(UInt64.init), type: 0, data: d))
    }

    /// Raw block bytes of any ggml type, shape in PyTorch order.
    public mutating func raw(_ name: String, shape: [Int], type: UInt32, _ bytes: [UInt8]) {
        tensors.append(TensorEntry(name: name, ne: shape.reversed().map(UInt64.init), type: type, data: bytes))
    }

    static func le<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    static func str(_ s: String, _ out: inout [UInt8]) { le(UInt64(s.utf8.count), &out); out += Array(s.utf8) }

    static func value(_ v: Value, _ out: inout [UInt8]) {
        switch v {
        case .u8(let x): le(UInt32(0), &out); out.append(x)
        case .i8(let x): le(UInt32(1), &out); out.append(UInt8(bitPattern: x))
        case .u16(let x): le(UInt32(2), &out); le(x, &out)
        case .i16(let x): le(UInt32(3), &out); le(x, &out)
        case .u32(let x): le(UInt32(4), &out); le(x, &out)
        case .i32(let x): le(UInt32(5), &out); le(x, &out)
        case .f32(let x): le(UInt32(6), &out); le(x.bitPattern, &out)
        case .bool(let x): le(UInt32(7), &out); out.append(x ? 1 : 0)
        case .string(let s): le(UInt32(8), &out); str(s, &out)
        case .u64(let x): le(UInt32(10), &out); le(x, &out)
        case .i64(let x): le(UInt32(11), &out); le(x, &out)
        case .f64(let x): le(UInt32(12), &out); le(x.bitPattern, &out)
        case .strings(let a): le(UInt32(9), &out); le(UInt32(8), &out); le(UInt64(a.count), &out); for s in a { str(s, &out) }
        case .floats(let a): le(UInt32(9), &out); le(UInt32(6), &out); le(UInt64(a.count), &out); for x in a { le(x.bitPattern, &out) }
        case .i32s(let a): le(UInt32(9), &out); le(UInt32(5), &out); le(UInt64(a.count), &out); for x in a { le(x, &out) }
        }
    }

    /// The file's bytes: header, metadata, tensor table, padding, data (each tensor aligned).
    public func bytes() -> [UInt8] {
        var out: [UInt8] = Array("GGUF".utf8)
        GGUFBuilder.le(version, &out)
        GGUFBuilder.le(tensorCountOverride ?? UInt64(tensors.count), &out)
        GGUFBuilder.le(UInt64(metadata.count), &out)
        for (k, v) in metadata { GGUFBuilder.str(k, &out); GGUFBuilder.value(v, &out) }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, o) in zip(tensors, offsets) {
            GGUFBuilder.str(t.name, &out)
            GGUFBuilder.le(UInt32(t.ne.count), &out)
            for n in t.ne { GGUFBuilder.le(n, &out) }
            GGUFBuilder.le(t.type, &out)
            GGUFBuilder.le(t.offsetOverride ?? UInt64(o), &out)
        }
        while out.count % alignment != 0 { out.append(0) }
        let dataStart = out.count
        for (i, t) in tensors.enumerated() {
            out += t.data
            if i < tensors.count - 1 { while (out.count - dataStart) % alignment != 0 { out.append(0) } }
        }
        return out
    }

    public func write(to url: URL) throws { try Data(bytes()).write(to: url) }

    /// A tiny llama model (Hugging Face tensor order in `hf`), converted as llama.cpp's
    /// convert_hf_to_gguf.py does: q/k rows permuted for its RoPE layout
    /// (`w.reshape(n_head, 2, d/2, C).swapaxes(1, 2)`), names mapped, F32 storage.
    public static func llama(hf: [String: (shape: [Int], values: [Float])], layers: Int, hidden: Int, intermediate: Int,
                             heads: Int, kvHeads: Int, vocab: [String], merges: [String] = [], ropeTheta: Float = 100000, eps: Float = 1e-5,
                             context: UInt32 = 2048) -> GGUFBuilder {
        var b = GGUFBuilder()
        b.set("general.architecture", .string("llama"))
        b.set("general.name", .string("tiny-test-llama"))
        b.set("llama.block_count", .u32(UInt32(layers)))
        b.set("llama.context_length", .u32(context))
        b.set("llama.embedding_length", .u32(UInt32(hidden)))
        b.set("llama.feed_forward_length", .u32(UInt32(intermediate)))
        b.set("llama.attention.head_count", .u32(UInt32(heads)))
        b.set("llama.attention.head_count_kv", .u32(UInt32(kvHeads)))
        b.set("llama.rope.freq_base", .f32(ropeTheta))
        b.set("llama.attention.layer_norm_rms_epsilon", .f32(eps))
        b.set("llama.rope.dimension_count", .u32(UInt32(hidden / heads)))
        b.set("general.alignment", .u32(32))
        b.set("tokenizer.ggml.model", .string("gpt2"))
        b.set("tokenizer.ggml.pre", .string("smollm"))
        b.set("tokenizer.ggml.tokens", .strings(vocab))
        b.set("tokenizer.ggml.merges", .strings(merges))
        b.set("tokenizer.ggml.bos_token_id", .u32(0))
        b.set("tokenizer.ggml.eos_token_id", .u32(1))
        func permute(_ w: [Float], _ nh: Int, _ c: Int) -> [Float] {
            let d = w.count / c / nh, half = d / 2
            var out = w
            // GGUF row h·d + 2i + j holds Hugging Face row h·d + j·d/2 + i.
            for h in 0..<nh { for i in 0..<half { for j in 0..<2 {
                let dst = (h * d + 2 * i + j) * c, src = (h * d + j * half + i) * c
                for k in 0..<c { out[dst + k] = w[src + k] }
            } } }
            return out
        }
        let names: [(String, String)] = [("model.embed_tokens.weight", "token_embd.weight"), ("model.norm.weight", "output_norm.weight"),
                                         ("lm_head.weight", "output.weight")]
        for (hfName, g) in names { if let t = hf[hfName] { b.f32(g, shape: t.shape, t.values) } }
        let per: [(String, String)] = [("input_layernorm.weight", "attn_norm.weight"), ("self_attn.q_proj.weight", "attn_q.weight"),
                                       ("self_attn.k_proj.weight", "attn_k.weight"), ("self_attn.v_proj.weight", "attn_v.weight"),
                                       ("self_attn.o_proj.weight", "attn_output.weight"), ("post_attention_layernorm.weight", "ffn_norm.weight"),
                                       ("mlp.gate_proj.weight", "ffn_gate.weight"), ("mlp.up_proj.weight", "ffn_up.weight"),
                                       ("mlp.down_proj.weight", "ffn_down.weight")]
        for l in 0..<layers {
            for (hfSuffix, g) in per {
                guard let t = hf["model.layers.\(l).\(hfSuffix)"] else { continue }
                var v = t.values
                if hfSuffix.hasPrefix("self_attn.q_proj") { v = permute(v, heads, hidden) }
                if hfSuffix.hasPrefix("self_attn.k_proj") { v = permute(v, kvHeads, hidden) }
                b.f32("blk.\(l).\(g)", shape: t.shape, v)
            }
        }
        return b
    }

    /// Hugging Face tensors of a tiny GQA llama (hidden 16, 4 heads of 4, 2 KV heads,
    /// intermediate 24, vocabulary 10), seeded.
    public static func tinyLlamaHF(layers: Int = 2, tied: Bool = true) -> [String: (shape: [Int], values: [Float])] {
        var rng = SeededRNG(seed: 5)
        let c = 16, i = 24, q = 16, kv = 8, v = 10
        var t: [String: (shape: [Int], values: [Float])] = [:]
        func add(_ n: String, _ s: [Int]) { t[n] = (s, randomArray(s.reduce(1, *), &rng)) }
        add("model.embed_tokens.weight", [v, c])
        add("model.norm.weight", [c])
        if !tied { add("lm_head.weight", [v, c]) }
        for l in 0..<layers {
            let p = "model.layers.\(l)."
            add(p + "input_layernorm.weight", [c]); add(p + "post_attention_layernorm.weight", [c])
            add(p + "self_attn.q_proj.weight", [q, c]); add(p + "self_attn.k_proj.weight", [kv, c])
            add(p + "self_attn.v_proj.weight", [kv, c]); add(p + "self_attn.o_proj.weight", [c, q])
            add(p + "mlp.gate_proj.weight", [i, c]); add(p + "mlp.up_proj.weight", [i, c]); add(p + "mlp.down_proj.weight", [c, i])
        }
        return t
    }

    /// `tinyLlamaHF` written as llama.cpp would, with a 10-token byte-level BPE vocabulary
    /// (GPT-2's byte alphabet: "Ġ" is the space): "t", "o", "p", "Ġ", "to", "op", "top", "Ġtop", "<s>", "</s>".
    public static let tinyVocabulary = ["<s>", "</s>", "t", "o", "p", "Ġ", "to", "op", "top", "Ġtop"]
    public static let tinyMerges = ["o p", "t op", "Ġ top", "t o"]
    public static func tinyLlama(layers: Int = 2, tied: Bool = true) -> GGUFBuilder {
        llama(hf: tinyLlamaHF(layers: layers, tied: tied), layers: layers, hidden: 16, intermediate: 24, heads: 4, kvHeads: 2,
              vocab: tinyVocabulary, merges: tinyMerges)
    }
}
