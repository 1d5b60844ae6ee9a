import Foundation
import ModelFormat
import Tokenizer

extension LlamaGGUF {
    public func tokenizer() throws -> Tokenizer { try file.tokenizer() }
}

extension GGUFFile {
    /// Whether the file carries a vocabulary (`tokenizer.ggml.model`).
    public var hasTokenizer: Bool { metadata["tokenizer.ggml.model"] != nil }

    /// The trunk's tokenizer from the `tokenizer.ggml.*` metadata (llama.cpp's
    /// `llama_vocab::load`): `gpt2` (byte-level BPE, SmolLM2 / Llama-3) or `llama`
    /// (SentencePiece-style BPE with scores, LLaMa-2 / TinyLlama). Other kinds are refused by name.
    public func tokenizerVocabulary() throws -> TokenizerVocabulary {
        let m = metadata, path = url.path
        func bad(_ key: String, _ problem: String, _ fix: String = "re-convert the model with llama.cpp's convert_hf_to_gguf.py") -> ModelFormatError {
            ModelFormatError(file: path, problem: "\(key): \(problem)", fix: fix)
        }
        guard let kind = m["tokenizer.ggml.model"]?.stringValue else {
            throw bad("tokenizer.ggml.model", "missing: the file has no tokenizer", "use a GGUF with its vocabulary, or pass --prompt-token-ids")
        }
        guard let model = TokenizerVocabulary.Model(rawValue: kind) else {
            throw bad("tokenizer.ggml.model", "is \"\(kind)\"; supported: gpt2 (byte-level BPE) and llama (SentencePiece BPE)",
                      "use a model with one of those tokenizers, or pass --prompt-token-ids")
        }
        func strings(_ key: String, required: Bool) throws -> [String] {
            guard let v = m[key] else {
                if required { throw bad(key, "missing") }
                return []
            }
            guard let a = v.arrayValue else { throw bad(key, "is a \(v.typeName), not an array of strings") }
            return try a.enumerated().map { i, e in
                guard let s = e.stringValue else { throw bad(key, "element \(i) is a \(e.typeName), not a string") }
                return s
            }
        }
        let tokens = try strings("tokenizer.ggml.tokens", required: true)
        let merges = try strings("tokenizer.ggml.merges", required: model == .gpt2)
        var scores: [Float]?
        if let v = m["tokenizer.ggml.scores"] {
            guard let a = v.arrayValue, a.count == tokens.count else { throw bad("tokenizer.ggml.scores", "is not an array of \(tokens.count) floats") }
            scores = try a.enumerated().map { i, e in
                guard case .float32(let f) = e else { throw bad("tokenizer.ggml.scores", "element \(i) is a \(e.typeName), not a float32") }
                return f
            }
        }
        var types: [Int32]?
        if let v = m["tokenizer.ggml.token_type"] {
            guard let a = v.arrayValue, a.count == tokens.count else { throw bad("tokenizer.ggml.token_type", "is not an array of \(tokens.count) integers") }
            types = try a.enumerated().map { i, e in
                guard let x = e.intValue, let t = Int32(exactly: x) else { throw bad("tokenizer.ggml.token_type", "element \(i) is not an int32") }
                return t
            }
        }
        func id(_ key: String) throws -> Int? {
            guard let v = m[key] else { return nil }
            guard let i = v.intValue, i >= 0, i < tokens.count else { throw bad(key, "is \(v.summary), not a token id below \(tokens.count)") }
            return i
        }
        let pre = m["tokenizer.ggml.pre"]?.stringValue
        // llama.cpp's defaults when the file is silent: BOS as `defaultAddBos` says (SentencePiece
        // and Llama-3 vocabularies add it, byte-level GPT-2 style ones do not); a space prefix
        // for SentencePiece vocabularies.
        let addBos = m["tokenizer.ggml.add_bos_token"]?.boolValue
        let addSpacePrefix = m["tokenizer.ggml.add_space_prefix"]?.boolValue ?? (model == .llama)
        return TokenizerVocabulary(model: model, pre: pre, tokens: tokens, scores: scores, tokenTypes: types,
                                   merges: merges, bosId: try id("tokenizer.ggml.bos_token_id"), eosId: try id("tokenizer.ggml.eos_token_id"),
                                   unkId: try id("tokenizer.ggml.unknown_token_id"), padId: try id("tokenizer.ggml.padding_token_id"),
                                   addBos: addBos, addSpacePrefix: addSpacePrefix)
    }

    public func tokenizer() throws -> Tokenizer { try Tokenizer(tokenizerVocabulary(), source: url.path) }
}
