import Foundation
import Common

/// What `slmrec inspect` reports of a checkpoint (`--json` writes this record).
public struct CheckpointSummary: Codable, Sendable, Equatable {
    public var path: String
    public var layers: Int, hiddenSize: Int, intermediateSize: Int, heads: Int, kvHeads: Int, headDim: Int
    public var numItems: Int, itemDim: Int, promptLength: Int, suffixLength: Int, maxSeqLen: Int
    public var parameters: Int
    public var parametersByGroup: [String: Int]
    public var nonEmbeddingParameters: Int
    public var bytesOnDisk: Int
    /// Tensors per dtype.
    public var dtypes: [String: Int]
    public var torchDtype: String
    public var quantization: String
    /// An adapter_config.json inside the checkpoint (Hugging Face would attach it).
    public var adapterInDirectory: Bool
    /// The text the prompt blocks were built from (init --base --prompt-text), if any.
    public var promptText: String?, suffixText: String?
    /// The pretrained trunk the decoder came from, if recorded.
    public var trunk: String?

    /// The group a tensor's values count in: decoder layers, item table, prompt, projections
    /// or final norm. Int8 scales are not parameters (they count in no group).
    public static func group(of name: String) -> String? {
        if name.hasSuffix(".weight_scale") { return nil }
        if name.hasPrefix("model.layers.") { return "decoder layers" }
        if name == TensorNames.itemEmbedding { return "item table" }
        if name.hasPrefix("ellmrec.prompt") { return "prompt" }
        if name.hasPrefix("ellmrec.") { return "projections" }
        return "final norm"
    }

    public init(_ ck: Checkpoint, directory: URL) throws {
        let c = ck.config
        var groups: [String: Int] = [:], dtypes: [String: Int] = [:]
        for (name, t) in ck.tensors {
            if let g = Self.group(of: name) { groups[g, default: 0] += t.count }
            dtypes[t.dtype.rawValue, default: 0] += 1
        }
        let total = groups.values.reduce(0, +)
        path = directory.path
        layers = c.numLayers; hiddenSize = c.hiddenSize; intermediateSize = c.intermediateSize
        heads = c.numHeads; kvHeads = c.numKVHeads; headDim = c.headDim
        numItems = c.ellmrec.numItems; itemDim = c.ellmrec.itemDim; promptLength = c.ellmrec.promptLength
        suffixLength = c.ellmrec.suffixLength; maxSeqLen = c.ellmrec.maxSeqLen
        parameters = total
        parametersByGroup = groups
        nonEmbeddingParameters = total - (groups["item table"] ?? 0)
        bytesOnDisk = try TensorStore.open(directory: directory).bytesOnDisk
        self.dtypes = dtypes
        torchDtype = c.torchDtype
        quantization = c.quantization == nil ? "none" : "int8 per-channel weights (compressed-tensors)"
        adapterInDirectory = FileManager.default.fileExists(atPath: directory.appendingPathComponent(LoRAAdapter.configFile).path)
        promptText = c.ellmrec.prompt?.text
        suffixText = c.ellmrec.suffix?.text
        trunk = c.ellmrec.trunk
    }

    enum CodingKeys: String, CodingKey {
        case path, layers, hiddenSize = "hidden_size", intermediateSize = "intermediate_size", heads, kvHeads = "kv_heads", headDim = "head_dim"
        case numItems = "num_items", itemDim = "item_dim", promptLength = "prompt_length", suffixLength = "suffix_length", maxSeqLen = "max_seq_len"
        case parameters, parametersByGroup = "parameters_by_group", nonEmbeddingParameters = "non_embedding_parameters"
        case bytesOnDisk = "bytes_on_disk", dtypes, torchDtype = "torch_dtype", quantization, adapterInDirectory = "adapter_in_directory"
        case promptText = "prompt_text", suffixText = "suffix_text", trunk
    }
}
