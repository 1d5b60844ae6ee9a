import Foundation
import Common
import ModelFormat

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
    public var maxSeqLen = 50
    /// Seed of the fresh head.
    public var seed: UInt64 = 42

    public init(numItems: Int) { self.numItems = numItems }

    /// The checkpoint; errors name the file and what to fix.
    public func wrap(base dir: URL) throws -> Checkpoint {
        let cfgURL = dir.appendingPathComponent(Checkpoint.configFile)
        guard let data = FileManager.default.contents(atPath: cfgURL.path), case .object(var json)? = try? JSONValue.parse(data) else {
            throw EngineError("\(cfgURL.path): cannot read a JSON object (is the base a Hugging Face model directory?)")
        }
        let total = json["num_hidden_layers"]?.intValue ?? 0
        let keep = keepLayers ?? total
        if keep < 1 || keep > total { throw EngineError("\(cfgURL.path): cannot keep \(keep) layers: the base model has \(total) layers (num_hidden_layers)") }
        if numItems < 1 { throw EngineError("a recommendation head needs at least one item (got \(numItems))") }
        let dim = itemTable?.shape[1] ?? itemDim
        json["num_hidden_layers"] = .int(keep)
        var ell: [String: JSONValue] = ["num_items": .int(itemTable.map { $0.shape[0] - 1 } ?? numItems), "item_dim": .int(dim),
                                        "prompt_length": .int(promptTokenIds.count), "max_seq_len": .int(maxSeqLen)]
        if !suffixTokenIds.isEmpty { ell["suffix_length"] = .int(suffixTokenIds.count) }
        json["ellmrec"] = .object(ell)
        json["architectures"] = .array([.string("LlamaModel")])
        let cfg = try ModelConfig.parse(json, file: cfgURL.path)
        let store = try TensorStore.open(directory: dir)
        let model = ELLMRecModel.random(dims: ModelDims(config: cfg, inputProjBias: true, outputProjBias: true), seed: seed)
        for l in 0..<keep {
            for name in [ParamName.inputNorm(l), ParamName.postNorm(l)] + LinearKind.allCases.map({ ParamName.weight(l, $0) }) {
                model.params.set(name, try store.tensor(name).floats())
            }
        }
        model.params.set(ParamName.finalNorm, try store.tensor(ParamName.finalNorm).floats())
        if !promptTokenIds.isEmpty || !suffixTokenIds.isEmpty {
            let emb = try store.tensor("model.embed_tokens.weight")
            let rows = try emb.floats(), vocab = emb.shape[0], c = emb.shape[1]
            func gather(_ ids: [Int], _ what: String) throws -> [Float] {
                try ids.flatMap { id -> ArraySlice<Float> in
                    guard id >= 0 && id < vocab else { throw EngineError("\(what): token id \(id) is outside the base model's vocabulary 0..<\(vocab)") }
                    return rows[(id * c)..<((id + 1) * c)]
                }
            }
            if !promptTokenIds.isEmpty { model.params.set(ParamName.prompt, try gather(promptTokenIds, "prompt token ids")) }
            if !suffixTokenIds.isEmpty { model.params.set(ParamName.suffix, try gather(suffixTokenIds, "suffix token ids")) }
        }
        if let t = itemTable { model.params.set(ParamName.itemEmbedding, try t.floats()) }
        return model.checkpoint(base: cfg)
    }
}
