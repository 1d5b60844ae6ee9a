import Common
import Foundation

/// The single source of truth for tensor names and shapes (Hugging Face LlamaModel names plus
/// the `ellmrec.*` head).
public enum TensorNames {
    public static let linearModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    /// Tensors of a raw LLaMa checkpoint that the recommender does not use; dropped on read.
    public static let ignorable = [tokenEmbedding, lmHead, "model.rotary_emb.inv_freq"]
    /// A raw LLaMa's token embedding (a pretrained trunk's prompt rows come from it) and LM head.
    public static let tokenEmbedding = "model.embed_tokens.weight", lmHead = "lm_head.weight"

    /// Also matches the per-layer `model.layers.{i}.self_attn.rotary_emb.inv_freq` buffers that
    /// older transformers saved.
    public static func isIgnorable(_ name: String) -> Bool {
        ignorable.contains(name) || (name.hasPrefix("model.layers.") && name.hasSuffix(".self_attn.rotary_emb.inv_freq"))
    }

    public static func layerPrefix(_ i: Int) -> String { "model.layers.\(i)." }

    /// Attention projections sit under `self_attn`, the MLP ones under `mlp`.
    public static func parent(_ module: String) -> String {
        ["gate_proj", "up_proj", "down_proj"].contains(module) ? "mlp" : "self_attn"
    }

    /// "model.layers.{i}.self_attn.q_proj" (no ".weight").
    public static func linear(_ i: Int, _ module: String) -> String {
        "\(layerPrefix(i))\(parent(module)).\(module)"
    }

    /// [out, in] as stored by Hugging Face; [] for an unknown module name.
    public static func linearShape(_ module: String, _ c: ModelConfig) -> [Int] {
        let q = c.numHeads * c.headDim, kv = c.numKVHeads * c.headDim
        switch module {
        case "q_proj": return [q, c.hiddenSize]
        case "k_proj", "v_proj": return [kv, c.hiddenSize]
        case "o_proj": return [c.hiddenSize, q]
        case "gate_proj", "up_proj": return [c.intermediateSize, c.hiddenSize]
        case "down_proj": return [c.hiddenSize, c.intermediateSize]
        default: return []
        }
    }

    public static let itemEmbedding = "ellmrec.item_embedding.weight"
    public static let inputProjWeight = "ellmrec.input_proj.weight"
    public static let inputProjBias = "ellmrec.input_proj.bias"
    public static let outputProjWeight = "ellmrec.output_proj.weight"
    public static let outputProjBias = "ellmrec.output_proj.bias"
    public static let promptEmbeddings = "ellmrec.prompt_embeddings"
    public static let suffixEmbeddings = "ellmrec.prompt_suffix_embeddings"
    public static let finalNorm = "model.norm.weight"

    /// Every tensor of a float checkpoint, in the spec's order.
    public static func expected(for c: ModelConfig, inputProjBias: Bool, outputProjBias: Bool) -> [(name: String, shape: [Int])] {
        var out: [(name: String, shape: [Int])] = []
        for i in 0..<max(c.numLayers, 0) {
            let p = layerPrefix(i)
            out.append((p + "input_layernorm.weight", [c.hiddenSize]))
            for m in ["q_proj", "k_proj", "v_proj", "o_proj"] { out.append((linear(i, m) + ".weight", linearShape(m, c))) }
            out.append((p + "post_attention_layernorm.weight", [c.hiddenSize]))
            for m in ["gate_proj", "up_proj", "down_proj"] { out.append((linear(i, m) + ".weight", linearShape(m, c))) }
        }
        out.append((finalNorm, [c.hiddenSize]))
        let e = c.ellmrec
        out.append((itemEmbedding, [e.numItems + 1, e.itemDim]))
        out.append((inputProjWeight, [c.hiddenSize, e.itemDim]))
        if inputProjBias { out.append((TensorNames.inputProjBias, [c.hiddenSize])) }
        out.append((outputProjWeight, [e.itemDim, c.hiddenSize]))
        if outputProjBias { out.append((TensorNames.outputProjBias, [e.itemDim])) }
        if e.promptLength > 0 { out.append((promptEmbeddings, [e.promptLength, c.hiddenSize])) }
        if e.suffixLength > 0 { out.append((suffixEmbeddings, [e.suffixLength, c.hiddenSize])) }
        return out
    }

    /// The quantized linear modules (without ".weight") of an int8 checkpoint.
    public static func quantizedModules(for c: ModelConfig) -> [String] {
        guard let q = c.quantization else { return [] }
        var out: [String] = []
        for i in 0..<max(c.numLayers, 0) {
            for m in linearModules where !q.isIgnored(linear(i, m)) { out.append(linear(i, m)) }
        }
        return out
    }
}

/// A whole E-LLMRec checkpoint in memory: config plus every tensor by Hugging Face name.
public struct Checkpoint: Sendable {
    public var config: ModelConfig
    public var tensors: [String: Tensor]

    public init(config: ModelConfig, tensors: [String: Tensor]) {
        self.config = config
        self.tensors = tensors
    }

    public var inputProjBias: Bool { tensors[TensorNames.inputProjBias] != nil }
    public var outputProjBias: Bool { tensors[TensorNames.outputProjBias] != nil }

    /// Total number of stored elements (int8 weights count once; their scales are included).
    public var parameterCount: Int { tensors.values.reduce(0) { $0 + $1.count } }

    public static let configFile = "config.json"

    /// What `save` writes: the one thing `--force` may replace at a checkpoint output
    /// (a Hugging Face directory with other files is not a previous slmrec output).
    public static let outputKind = OutputKind(name: "checkpoint", files: [configFile, TensorStore.singleFile],
                                              required: [configFile, TensorStore.singleFile])

    /// Reads config.json and the tensors, drops ignorable tensors, and validates.
    public static func load(directory: URL) throws -> Checkpoint {
        let config = try ModelConfig.load(from: directory.appendingPathComponent(configFile))
        let store = try TensorStore.open(directory: directory)
        var tensors: [String: Tensor] = [:]
        for n in store.names where !TensorNames.isIgnorable(n) { tensors[n] = try store.tensor(n) }
        let c = Checkpoint(config: config, tensors: tensors)
        try c.validate(source: directory.path)
        try c.checkFinite(source: directory.appendingPathComponent(TensorStore.singleFile).path)
        return c
    }

    /// Every float weight finite: a NaN or Inf (a diverged training, a corrupt file) is named
    /// here, with its tensor and first position, before any evaluation prints NaN metrics.
    public func checkFinite(source: String) throws {
        for name in tensors.keys.sorted() {
            guard let t = tensors[name], let i = t.firstNonFinite() else { continue }
            let v = (try? t.floats()[i]).map { $0.isNaN ? "NaN" : "\($0)" } ?? "non-finite"
            throw ModelFormatError(file: source, problem: "tensor \"\(name)\" holds \(v) at \(t.position(ofFlatIndex: i)) (flat index \(i) of shape \(t.shape))",
                                   fix: "the weights are corrupt or the training that wrote them diverged; use an earlier checkpoint, or retrain with a lower learning rate")
        }
    }

    /// Every expected tensor present with the shape the config implies, nothing unexpected,
    /// supported dtypes, and the int8 layout where `quantization_config` says so.
    public func validate(source: String) throws {
        func bad(_ p: String, _ fix: String) -> ModelFormatError { ModelFormatError(file: source, problem: p, fix: fix) }
        let c = config
        let quantized = Set(TensorNames.quantizedModules(for: c).map { $0 + ".weight" })
        var expected = TensorNames.expected(for: c, inputProjBias: inputProjBias, outputProjBias: outputProjBias)
        for (name, shape) in expected where quantized.contains(name) {
            expected.append((String(name.dropLast(".weight".count)) + ".weight_scale", [shape[0], 1]))
        }
        var seen = Set<String>()
        for (name, shape) in expected {
            seen.insert(name)
            guard let t = tensors[name] else {
                throw bad("missing tensor \"\(name)\" (expected shape \(shape))",
                          "the checkpoint does not match config.json (hidden_size \(c.hiddenSize), layers \(c.numLayers), ellmrec \(c.ellmrec.numItems) items × \(c.ellmrec.itemDim)); re-export it")
            }
            guard t.shape == shape else {
                throw bad("tensor \"\(name)\" has shape \(t.shape), expected \(shape)",
                          "config.json and the tensors disagree; fix the config or re-export the checkpoint")
            }
            guard t.data.count == t.count * t.dtype.byteSize else {
                throw bad("tensor \"\(name)\" holds \(t.data.count) bytes for \(t.dtype.rawValue) \(t.shape)", "this is a bug in the code that built it")
            }
            if quantized.contains(name) {
                guard t.dtype == .i8 else {
                    throw bad("quantized weight \"\(name)\" is \(t.dtype.rawValue), expected I8",
                              "quantization_config lists it as quantized; store it as int8 or add the module to \"ignore\"")
                }
            } else if name.hasSuffix(".weight_scale") {
                guard t.dtype == .f32 else {
                    throw bad("scale \"\(name)\" is \(t.dtype.rawValue), expected F32", "store per-channel scales as float32")
                }
            } else {
                guard t.dtype.isFloat else {
                    throw bad("tensor \"\(name)\" is \(t.dtype.rawValue); only F32, F16 and BF16 are supported here",
                              c.quantization == nil ? "int8 weights need a quantization_config in config.json" : "this module is not quantized per quantization_config (check \"ignore\")")
                }
            }
        }
        let extra = tensors.keys.filter { !seen.contains($0) && !TensorNames.isIgnorable($0) }.sorted()
        if let first = extra.first {
            var hint = "remove it, or fix config.json so that it is expected"
            if first == TensorNames.promptEmbeddings { hint = "set ellmrec.prompt_length to its number of rows" }
            if first == TensorNames.suffixEmbeddings { hint = "set ellmrec.suffix_length to its number of rows" }
            throw bad("unexpected tensor \"\(first)\"\(extra.count > 1 ? " (and \(extra.count - 1) more)" : "")", hint)
        }
    }

    /// Writes config.json + model.safetensors into a temporary directory, then renames it onto
    /// `directory`. `dtype` converts the float tensors (int8 weights and their F32 scales stay)
    /// and updates torch_dtype.
    public func save(to directory: URL, dtype: DType? = nil) throws {
        var out = self
        if let dt = dtype {
            guard dt.isFloat, let name = dt.torchName else {
                throw ModelFormatError(file: directory.path, problem: "cannot save a checkpoint as \(dt.rawValue)",
                                       fix: "choose F32, F16 or BF16; int8 goes through quantization")
            }
            for (n, t) in tensors where t.dtype.isFloat && !n.hasSuffix(".weight_scale") { out.tensors[n] = try t.converted(to: dt) }
            out.config.torchDtype = name
        }
        try out.validate(source: directory.path)
        let finalOut = out
        do {
            try AtomicFile.writeDirectory(directory) { tmp in
                try Safetensors.write(finalOut.tensors, to: tmp.appendingPathComponent(TensorStore.singleFile))
                try finalOut.config.write(to: tmp.appendingPathComponent(Checkpoint.configFile))
            }
        } catch let e as ModelFormatError {
            throw e
        } catch {
            let f = writeFailure(error, what: "the checkpoint", path: directory.path)
            throw ModelFormatError(file: directory.path, problem: f.problem, fix: f.fix)
        }
    }
}
