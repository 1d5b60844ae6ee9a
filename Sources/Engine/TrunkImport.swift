import Foundation
import Common
import ModelFormat
import GGUF
import Tokenizer

/// A pretrained LLaMa trunk under a new recommendation head (E4SRec, Li et al. 2023; SLMRec
/// takes the first N layers of LLaMa-2): the first `keepLayers` decoder layers and the final
/// norm of a Hugging Face LLaMa directory, a fresh E-LLMRec head (input/output projections,
/// item table) and prompt embeddings copied from the trunk's token embeddings.
public struct TrunkImport: Sendable {
    /// Decoder layers kept (nil: all).
    public var keepLayers: Int?
    public var numItems: Int
    public var itemDim = 64
    /// An item table to start from, (N+1, item_dim) (E4SRec: SASRec's, frozen).
    public var itemTable: Tensor?
    /// Token ids whose embeddings become the prompt before the items, and after them.
    public var promptTokenIds: [Int] = []
    public var suffixTokenIds: [Int] = []
    /// Or the prompt as text, tokenized with the trunk's own tokenizer (E4SRec/SLMRec's
    /// instruction before the items, "\n### Response:\n" after them). BOS goes before the
    /// prompt only when the trunk's tokenizer adds one (SmolLM2's does not); never before the suffix.
    public var promptText: String?
    public var suffixText: String?
    public var maxSeqLen = 50
    /// Seed of the fresh head.
    public var seed: UInt64 = 42

    public init(numItems: Int) { self.numItems = numItems }

    /// The checkpoint; errors name the file and what to fix. `base` is a Hugging Face LLaMa
    /// directory or a llama GGUF file.
    public func wrap(base url: URL) throws -> Checkpoint { try wrap(try PretrainedTrunk.open(url)) }

    public func wrap(_ trunk: PretrainedTrunk) throws -> Checkpoint {
        var json = trunk.config
        let where_ = trunk.configSource
        if promptText != nil && !promptTokenIds.isEmpty || suffixText != nil && !suffixTokenIds.isEmpty {
            throw EngineError("give the prompt (and the suffix) as text (--prompt-text/--suffix-text) or as token ids (--prompt-token-ids/--suffix-token-ids), not both")
        }
        var promptIds = promptTokenIds, suffixIds = suffixTokenIds
        var texts: (prompt: ELLMRecConfig.PromptText?, suffix: ELLMRecConfig.PromptText?) = (nil, nil)
        if promptText != nil || suffixText != nil {
            guard let tok = try trunk.tokenizer() else {
                throw EngineError("\(trunk.name): the base model has no tokenizer (a tokenizer.json, or tokenizer.ggml.* metadata in a GGUF), so the prompt text cannot be tokenized; add its tokenizer.json or pass --prompt-token-ids")
            }
            func encode(_ text: String, bos: Bool?, what: String) throws -> [Int] {
                let ids = tok.encode(text, addBos: bos)
                if ids.isEmpty { throw EngineError("the \(what) text is empty: it gives no tokens") }
                return ids
            }
            if let t = promptText { promptIds = try encode(t, bos: nil, what: "prompt"); texts.prompt = .init(text: t, tokenIds: promptIds) }
            if let t = suffixText { suffixIds = try encode(t, bos: false, what: "suffix"); texts.suffix = .init(text: t, tokenIds: suffixIds) }
        }
        let total = json["num_hidden_layers"]?.intValue ?? 0
        let keep = keepLayers ?? total
        if keep < 1 || keep > total { throw EngineError("\(where_): cannot keep \(keep) layers: the base model has \(total) layers (num_hidden_layers)") }
        if numItems < 1 { throw EngineError("a recommendation head needs at least one item (got \(numItems))") }
        let dim = itemTable?.shape[1] ?? itemDim
        json["num_hidden_layers"] = .int(keep)
        var ell: [String: JSONValue] = ["num_items": .int(itemTable.map { $0.shape[0] - 1 } ?? numItems), "item_dim": .int(dim),
                                        "prompt_length": .int(promptIds.count), "max_seq_len": .int(maxSeqLen)]
        if !suffixIds.isEmpty { ell["suffix_length"] = .int(suffixIds.count) }
        json["ellmrec"] = .object(ell)
        json["architectures"] = .array([.string("LlamaModel")])
        var cfg = try ModelConfig.parse(json, file: where_)
        cfg.ellmrec.prompt = texts.prompt
        cfg.ellmrec.suffix = texts.suffix
        cfg.ellmrec.trunk = trunk.name
        let model = ELLMRecModel.random(dims: ModelDims(config: cfg, inputProjBias: true, outputProjBias: true), seed: seed)
        for l in 0..<keep {
            for name in [ParamName.inputNorm(l), ParamName.postNorm(l)] + LinearKind.allCases.map({ ParamName.weight(l, $0) }) {
                model.params.set(name, try trunk.floats(name))
            }
        }
        model.params.set(ParamName.finalNorm, try trunk.floats(ParamName.finalNorm))
        for (ids, what) in [(promptIds, "prompt"), (suffixIds, "suffix")] {
            for id in ids where id < 0 || id >= trunk.vocabSize {
                throw EngineError("\(what) token ids: token id \(id) is outside the base model's vocabulary 0..<\(trunk.vocabSize)")
            }
        }
        if !promptIds.isEmpty || !suffixIds.isEmpty {
            // One read of the token embedding for both blocks (a directory's is decoded whole).
            let rows = try trunk.embeddingRows(promptIds + suffixIds), split = promptIds.count * cfg.hiddenSize
            if !promptIds.isEmpty { model.params.set(ParamName.prompt, Array(rows[..<split])) }
            if !suffixIds.isEmpty { model.params.set(ParamName.suffix, Array(rows[split...])) }
        }
        if let t = itemTable { model.params.set(ParamName.itemEmbedding, try t.floats()) }
        return model.checkpoint(base: cfg)
    }
}

/// A pretrained LLaMa whose layers become a trunk: a Hugging Face directory (config.json +
/// safetensors) or a llama GGUF file (dequantized on read, q/k rows in Hugging Face order).
public struct PretrainedTrunk: Sendable {
    /// The Hugging Face config keys (without `ellmrec`).
    public let config: [String: JSONValue]
    /// What error messages name as the config's origin (config.json or the .gguf file).
    public let configSource: String
    public let vocabSize: Int
    /// The trunk's file or directory name (recorded as `ellmrec.trunk`).
    public let name: String
    private let tensor: @Sendable (String) throws -> [Float]
    private let rows: @Sendable ([Int]) throws -> [Float]
    private let loadTokenizer: @Sendable () throws -> Tokenizer?

    /// The trunk's tokenizer (nil: it has none): from the GGUF's tokenizer.ggml.* metadata or
    /// the directory's tokenizer.json.
    public func tokenizer() throws -> Tokenizer? { try loadTokenizer() }

    public func floats(_ hfName: String) throws -> [Float] { try tensor(hfName) }
    /// Rows of the token embedding (`TensorNames.tokenEmbedding`).
    public func embeddingRows(_ ids: [Int]) throws -> [Float] { try rows(ids) }

    public static func open(_ url: URL) throws -> PretrainedTrunk {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw EngineError("\(url.path): no such file or directory (--base takes a Hugging Face LLaMa directory or a .gguf file)")
        }
        if !isDir.boolValue {
            let g = try LlamaGGUF.open(url)
            return PretrainedTrunk(config: g.config, configSource: url.path, vocabSize: g.vocabSize, name: url.lastPathComponent,
                                   tensor: { try g.floats($0) }, rows: { try g.embeddingRows($0) },
                                   loadTokenizer: { g.file.hasTokenizer ? try g.tokenizer() : nil })
        }
        let cfgURL = url.appendingPathComponent(Checkpoint.configFile)
        let json = try readJSONObject(cfgURL, readFix: "--base takes a Hugging Face LLaMa directory (with config.json) or a .gguf file",
                                      objectFix: "config.json must be a LlamaConfig object")
        let store = try TensorStore.open(directory: url)
        let emb = store.info(TensorNames.tokenEmbedding)
        let vocab = emb?.shape.first ?? 0, width = emb?.shape.last ?? 0
        let tokenizerURL = url.appendingPathComponent("tokenizer.json")
        return PretrainedTrunk(config: json, configSource: cfgURL.path, vocabSize: vocab, name: url.lastPathComponent,
                               tensor: { try store.floats($0) }, rows: { ids in
            let all = try store.floats(TensorNames.tokenEmbedding)
            return ids.flatMap { all[($0 * width)..<(($0 + 1) * width)] }
        }, loadTokenizer: {
            FileManager.default.fileExists(atPath: tokenizerURL.path) ? try Tokenizer.load(tokenizerJSON: tokenizerURL) : nil
        })
    }
}
