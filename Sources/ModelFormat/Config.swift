import Foundation
import Common

/// The `ellmrec` object of config.json: the recommendation head's sizes.
public struct ELLMRecConfig: Sendable, Equatable {
    public var numItems: Int      // N (row 0 of the item table is padding, so N + 1 rows)
    public var itemDim: Int       // D0
    public var promptLength: Int  // P
    public var suffixLength: Int
    public var maxSeqLen: Int     // T of the item history
    /// Where the prompt blocks came from when `init --base` built them from text through the
    /// trunk's tokenizer (E4SRec/SLMRec's instruction): the text and its token ids, kept so
    /// `inspect` can show them. Training may move the embeddings away from those tokens'.
    public var prompt: PromptText?
    public var suffix: PromptText?
    /// The pretrained trunk the decoder layers were taken from (a file or directory name).
    public var trunk: String?

    public struct PromptText: Sendable, Equatable {
        public var text: String
        public var tokenIds: [Int]
        public init(text: String, tokenIds: [Int]) { self.text = text; self.tokenIds = tokenIds }
    }

    public init(numItems: Int, itemDim: Int, promptLength: Int = 0, suffixLength: Int = 0, maxSeqLen: Int = 50) {
        self.numItems = numItems
        self.itemDim = itemDim
        self.promptLength = promptLength
        self.suffixLength = suffixLength
        self.maxSeqLen = maxSeqLen
    }

    /// Keys of the `ellmrec` object for the fields above.
    static let promptTextKey = "prompt_text", promptIdsKey = "prompt_token_ids"
    static let suffixTextKey = "suffix_text", suffixIdsKey = "suffix_token_ids", trunkKey = "trunk"
}

/// `quantization_config` in the compressed-tensors int8 layout (per-output-channel symmetric
/// weights, as llm-compressor writes and vLLM reads).
public struct QuantizationConfig: Sendable, Equatable {
    /// Modules left in float: exact module names, or `re:<regex>` patterns (llm-compressor's syntax).
    public var ignore: [String]
    public var weightBits: Int
    public var raw: JSONValue

    public init(ignore: [String], weightBits: Int, raw: JSONValue) {
        self.ignore = ignore
        self.weightBits = weightBits
        self.raw = raw
    }

    /// Exactly the JSON block of the spec.
    public static func int8Channel(ignore: [String]) -> QuantizationConfig {
        let raw: JSONValue = .object([
            "quant_method": .string("compressed-tensors"),
            "format": .string("int-quantized"),
            "quantization_status": .string("compressed"),
            "config_groups": .object(["group_0": .object([
                "targets": .array([.string("Linear")]),
                "weights": .object(["num_bits": .int(8), "type": .string("int"), "symmetric": .bool(true),
                                    "strategy": .string("channel"), "dynamic": .bool(false)]),
                "input_activations": .object(["num_bits": .int(8), "type": .string("int"), "symmetric": .bool(true),
                                              "strategy": .string("token"), "dynamic": .bool(true)]),
            ])]),
            "ignore": .array(ignore.map { .string($0) }),
        ])
        return QuantizationConfig(ignore: ignore, weightBits: 8, raw: raw)
    }

    /// Whether `module` (e.g. "model.layers.0.self_attn.q_proj") stays in float.
    public func isIgnored(_ module: String) -> Bool {
        for pattern in ignore {
            if pattern.hasPrefix("re:") {
                let re = String(pattern.dropFirst(3))
                if let r = try? NSRegularExpression(pattern: "^(?:\(re))$"),
                   r.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil { return true }
            } else if pattern == module {
                return true
            }
        }
        return false
    }

    /// The serialized block with `ignore` taken from the typed field.
    var jsonValue: JSONValue {
        guard case .object(var o) = raw else { return raw }
        o["ignore"] = .array(ignore.map { .string($0) })
        return .object(o)
    }

    /// Parses and checks that the block describes what the engine implements: compressed-tensors,
    /// symmetric int8 weights with one scale per output channel.
    static func parse(_ v: JSONValue, file: String) throws -> QuantizationConfig {
        func bad(_ p: String) -> ModelFormatError {
            ModelFormatError(file: file, problem: "quantization_config: \(p)",
                             fix: "only compressed-tensors int8 per-channel symmetric weights are supported (see docs/checkpoint-format.md)")
        }
        guard case .object(let o) = v else { throw bad("is not an object") }
        guard o["quant_method"]?.stringValue == "compressed-tensors" else {
            throw bad("quant_method is \(o["quant_method"].map { JSONText.compact($0) } ?? "missing"), expected \"compressed-tensors\"")
        }
        guard let groups = o["config_groups"]?.objectValue, !groups.isEmpty else { throw bad("no config_groups") }
        var bits: Int?
        for (gname, g) in groups {
            guard let w = g["weights"]?.objectValue else { throw bad("group \(gname) has no weights scheme") }
            guard let nb = w["num_bits"]?.intValue, nb == 8 else { throw bad("group \(gname) weights.num_bits is not 8") }
            guard w["type"]?.stringValue ?? "int" == "int" else { throw bad("group \(gname) weights.type is not int") }
            guard w["symmetric"]?.boolValue ?? true else { throw bad("group \(gname) weights are asymmetric") }
            guard w["strategy"]?.stringValue == "channel" else { throw bad("group \(gname) weights.strategy is not \"channel\"") }
            bits = nb
        }
        var ignore: [String] = []
        if let ig = o["ignore"], !ig.isNull {
            guard let arr = ig.arrayValue else { throw bad("ignore is not a list") }
            for e in arr {
                guard let s = e.stringValue else { throw bad("ignore holds a non-string") }
                ignore.append(s)
            }
        }
        return QuantizationConfig(ignore: ignore, weightBits: bits ?? 8, raw: v)
    }
}

/// config.json: Hugging Face LlamaConfig keys plus the `ellmrec` object. The typed fields are a
/// view; `raw` keeps every key of the file, and typed fields overwrite their keys on write.
public struct ModelConfig: Sendable, Equatable {
    public var hiddenSize: Int         // C (d1)
    public var intermediateSize: Int   // I
    public var numLayers: Int          // L
    public var numHeads: Int           // NH
    public var numKVHeads: Int         // NKV
    public var headDim: Int            // HD
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var maxPositionEmbeddings: Int
    public var torchDtype: String      // "float32" | "float16" | "bfloat16"
    public var ellmrec: ELLMRecConfig
    public var quantization: QuantizationConfig?
    public var raw: [String: JSONValue]

    public init(hiddenSize: Int, intermediateSize: Int, numLayers: Int, numHeads: Int, numKVHeads: Int, headDim: Int? = nil,
                rmsNormEps: Double = 1e-6, ropeTheta: Double = 10000, maxPositionEmbeddings: Int = 2048,
                ellmrec: ELLMRecConfig, torchDtype: String = "float32") {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim ?? (numHeads > 0 ? hiddenSize / numHeads : 0)
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.torchDtype = torchDtype
        self.ellmrec = ellmrec
        self.quantization = nil
        // The keys LlamaConfig needs so that `LlamaModel.from_pretrained` builds this model
        // (the typed keys are added on write).
        self.raw = [
            "model_type": .string("llama"),
            "architectures": .array([.string("LlamaModel")]),
            "hidden_act": .string("silu"),
            "attention_bias": .bool(false),
            "attention_dropout": .double(0),
            "mlp_bias": .bool(false),
            "tie_word_embeddings": .bool(false),
            "initializer_range": .double(0.02),
            "vocab_size": .int(32000),
            "pad_token_id": .null,
            "bos_token_id": .int(1),
            "eos_token_id": .int(2),
            "pretraining_tp": .int(1),
            "use_cache": .bool(true),
            "rope_scaling": .null,
            "rope_parameters": .object(["rope_type": .string("default"), "rope_theta": .double(ropeTheta)]),
        ]
    }

    public static func load(from url: URL) throws -> ModelConfig {
        let o = try readJSONObject(url, readFix: "check that config.json exists", objectFix: "config.json must be a LlamaConfig object")
        return try parse(o, file: url.path)
    }

    /// Reads the keys as Hugging Face reads them and rejects what the engine does not implement.
    public static func parse(_ o: [String: JSONValue], file: String) throws -> ModelConfig {
        func bad(_ p: String, _ fix: String) -> ModelFormatError { ModelFormatError(file: file, problem: p, fix: fix) }
        func int(_ obj: [String: JSONValue], _ key: String, path: String, default d: Int? = nil) throws -> Int {
            guard let v = obj[key], !v.isNull else {
                if let d { return d }
                throw bad("missing required key \"\(path)\"", "add \"\(path)\" to config.json")
            }
            guard let i = v.intValue else { throw bad("\"\(path)\" is \(JSONText.compact(v)), not an integer", "write \"\(path)\" as an integer") }
            return i
        }
        func positive(_ v: Int, _ path: String) throws {
            if v <= 0 { throw bad("\"\(path)\" is \(v); it must be positive", "set \"\(path)\" to a positive integer") }
        }
        let hidden = try int(o, "hidden_size", path: "hidden_size")
        let inter = try int(o, "intermediate_size", path: "intermediate_size")
        let layers = try int(o, "num_hidden_layers", path: "num_hidden_layers")
        let heads = try int(o, "num_attention_heads", path: "num_attention_heads")
        let kv = try int(o, "num_key_value_heads", path: "num_key_value_heads", default: heads)
        try positive(hidden, "hidden_size")
        try positive(inter, "intermediate_size")
        try positive(layers, "num_hidden_layers")
        try positive(heads, "num_attention_heads")
        try positive(kv, "num_key_value_heads")
        guard heads % kv == 0 else {
            throw bad("num_attention_heads \(heads) is not divisible by num_key_value_heads \(kv)", "grouped-query attention needs heads to be a multiple of kv heads")
        }
        let headDim: Int
        if let hd = o["head_dim"], !hd.isNull {
            headDim = try int(o, "head_dim", path: "head_dim")
            try positive(headDim, "head_dim")
        } else {
            guard hidden % heads == 0 else {
                throw bad("hidden_size \(hidden) is not divisible by num_attention_heads \(heads) and there is no head_dim",
                          "add \"head_dim\" or fix hidden_size / num_attention_heads")
            }
            headDim = hidden / heads
        }
        let act = o["hidden_act"]?.stringValue ?? "silu"
        guard act == "silu" else {
            throw bad("hidden_act is \"\(act)\"; only \"silu\" is supported", "LLaMa uses silu; convert or retrain the model")
        }
        for key in ["attention_bias", "mlp_bias"] where o[key]?.boolValue == true {
            throw bad("\(key) is true; LLaMa linear layers without bias are the only supported kind", "set \(key) to false (the checkpoint must not have bias tensors)")
        }
        if let rs = o["rope_scaling"], !rs.isNull {
            throw bad("rope_scaling is \(JSONText.compact(rs)): unsupported RoPE scaling", "only default RoPE is implemented; remove rope_scaling (set it to null)")
        }
        var theta = o["rope_theta"]?.doubleValue ?? 10000
        if let rp = o["rope_parameters"], !rp.isNull {
            guard let rpo = rp.objectValue else { throw bad("rope_parameters is not an object", "fix rope_parameters") }
            let type = rpo["rope_type"]?.stringValue ?? rpo["type"]?.stringValue ?? "default"
            guard type == "default" else {
                throw bad("rope_parameters.rope_type is \"\(type)\": unsupported RoPE scaling", "only \"default\" RoPE is implemented")
            }
            if let t = rpo["rope_theta"]?.doubleValue { theta = t }  // the newer spelling wins
        }
        guard theta > 0 else { throw bad("rope_theta is \(theta); it must be positive", "set rope_theta (10000 for LLaMa)") }
        let eps = o["rms_norm_eps"]?.doubleValue ?? 1e-6
        guard eps > 0 else { throw bad("rms_norm_eps is \(eps); it must be positive", "set rms_norm_eps (1e-6 for LLaMa)") }
        let maxPos = try int(o, "max_position_embeddings", path: "max_position_embeddings", default: 2048)
        try positive(maxPos, "max_position_embeddings")
        // transformers 5 writes `dtype` (and still reads `torch_dtype`); when both are present
        // the newer key wins, as in transformers.
        let dtypeName = o["dtype"]?.stringValue ?? o["torch_dtype"]?.stringValue ?? "float32"
        guard DType(torchName: dtypeName) != nil else {
            throw bad("torch_dtype is \"\(dtypeName)\"", "use float32, float16 or bfloat16")
        }

        guard let e = o["ellmrec"]?.objectValue else {
            throw bad("missing required key \"ellmrec\" (num_items, item_dim, ...)", "add the ellmrec object, e.g. \"ellmrec\": {\"num_items\": 1682, \"item_dim\": 64}")
        }
        let items = try int(e, "num_items", path: "ellmrec.num_items")
        let itemDim = try int(e, "item_dim", path: "ellmrec.item_dim")
        let prompt = try int(e, "prompt_length", path: "ellmrec.prompt_length", default: 0)
        let suffix = try int(e, "suffix_length", path: "ellmrec.suffix_length", default: 0)
        let maxSeq = try int(e, "max_seq_len", path: "ellmrec.max_seq_len", default: 50)
        func promptText(_ textKey: String, _ idsKey: String, length: Int) throws -> ELLMRecConfig.PromptText? {
            guard let t = e[textKey], !t.isNull else { return nil }
            guard let text = t.stringValue else { throw bad("\"ellmrec.\(textKey)\" is not a string", "write the prompt text as a JSON string or remove the key") }
            guard let arr = e[idsKey]?.arrayValue, case let ids = arr.compactMap(\.intValue), ids.count == arr.count, ids.count == length else {
                throw bad("\"ellmrec.\(idsKey)\" is missing or does not list the \(length) token ids of \"ellmrec.\(textKey)\"",
                          "remove both keys (the prompt embeddings stay as they are) or re-create the checkpoint with slmrec init --base")
            }
            return ELLMRecConfig.PromptText(text: text, tokenIds: ids)
        }
        try positive(items, "ellmrec.num_items")
        try positive(itemDim, "ellmrec.item_dim")
        try positive(maxSeq, "ellmrec.max_seq_len")
        if prompt < 0 { throw bad("\"ellmrec.prompt_length\" is \(prompt); it must be >= 0", "set it to 0 or more") }
        if suffix < 0 { throw bad("\"ellmrec.suffix_length\" is \(suffix); it must be >= 0", "set it to 0 or more") }
        // A file's sizes drive allocations: refuse absurd ones here, before anything is
        // allocated (each dimension, then the parameter count they imply, overflow-checked).
        for (v, path, cap) in [(hidden, "hidden_size", Self.limits.dimension), (inter, "intermediate_size", Self.limits.dimension),
                               (layers, "num_hidden_layers", Self.limits.layers), (heads, "num_attention_heads", Self.limits.dimension),
                               (headDim, "head_dim", Self.limits.dimension), (items, "ellmrec.num_items", Self.limits.items),
                               (itemDim, "ellmrec.item_dim", Self.limits.dimension), (maxSeq, "ellmrec.max_seq_len", Self.limits.sequence),
                               (prompt, "ellmrec.prompt_length", Self.limits.sequence), (suffix, "ellmrec.suffix_length", Self.limits.sequence)] where v > cap {
            throw bad("\"\(path)\" is \(v), above this toolbench's limit of \(cap)", "check the value (a corrupt or hostile config.json?)")
        }
        var total = 0, overflow = false
        func add(_ terms: Int...) {
            var prod = 1
            for t in terms { let (p, o) = prod.multipliedReportingOverflow(by: t); prod = p; overflow = overflow || o }
            let (sum, o) = total.addingReportingOverflow(prod); total = sum; overflow = overflow || o
        }
        add(layers, hidden, heads * headDim + 2 * kv * headDim)   // q, k, v
        add(layers, heads * headDim, hidden)                      // o
        add(layers, 3, hidden, inter)                             // gate, up, down
        add(items + 1, itemDim); add(itemDim, hidden); add(hidden, itemDim)
        if overflow || total > Self.limits.parameters {
            throw bad("the sizes imply \(overflow ? "more than \(Int.max)" : "\(total)") parameters, above this toolbench's limit of \(Self.limits.parameters)",
                      "check hidden_size, intermediate_size, num_hidden_layers and ellmrec.num_items (a corrupt or hostile config.json?)")
        }

        var quant: QuantizationConfig?
        if let q = o["quantization_config"], !q.isNull { quant = try QuantizationConfig.parse(q, file: file) }

        var c = ModelConfig(hiddenSize: hidden, intermediateSize: inter, numLayers: layers, numHeads: heads, numKVHeads: kv,
                            headDim: headDim, rmsNormEps: eps, ropeTheta: theta, maxPositionEmbeddings: maxPos,
                            ellmrec: ELLMRecConfig(numItems: items, itemDim: itemDim, promptLength: prompt, suffixLength: suffix, maxSeqLen: maxSeq),
                            torchDtype: dtypeName)
        c.ellmrec.prompt = try promptText(ELLMRecConfig.promptTextKey, ELLMRecConfig.promptIdsKey, length: prompt)
        c.ellmrec.suffix = try promptText(ELLMRecConfig.suffixTextKey, ELLMRecConfig.suffixIdsKey, length: suffix)
        if let t = e[ELLMRecConfig.trunkKey], !t.isNull {
            guard let s = t.stringValue else { throw bad("\"ellmrec.trunk\" is not a string", "write the trunk's name as a string or remove the key") }
            c.ellmrec.trunk = s
        }
        c.quantization = quant
        c.raw = o
        return c
    }

    /// The largest sizes a config.json may claim (far above any E-LLMRec that fits a CPU
    /// machine: LLaMa-3-70B has hidden 8,192, 80 layers, intermediate 28,672).
    public static let limits = (dimension: 1 << 17, layers: 1 << 12, items: 1 << 28, sequence: 1 << 20, parameters: 1 << 36)

    /// The dictionary written to disk: `raw` with the typed fields written over their keys.
    /// Numbers keep the kind they had in the file (a file's `10000` stays `10000`).
    public var mergedJSON: [String: JSONValue] {
        var o = raw
        func setInt(_ key: String, _ v: Int, in d: inout [String: JSONValue]) {
            if case .double = d[key] { d[key] = .double(Double(v)) } else { d[key] = .int(v) }
        }
        func setDouble(_ key: String, _ v: Double, in d: inout [String: JSONValue]) {
            if case .int = d[key], v.rounded() == v, abs(v) < 9e15 { d[key] = .int(Int(v)) } else { d[key] = .double(v) }
        }
        setInt("hidden_size", hiddenSize, in: &o)
        setInt("intermediate_size", intermediateSize, in: &o)
        setInt("num_hidden_layers", numLayers, in: &o)
        setInt("num_attention_heads", numHeads, in: &o)
        setInt("num_key_value_heads", numKVHeads, in: &o)
        setInt("head_dim", headDim, in: &o)
        setDouble("rms_norm_eps", rmsNormEps, in: &o)
        setInt("max_position_embeddings", maxPositionEmbeddings, in: &o)
        // Both RoPE spellings are kept in step so that old and new transformers agree.
        setDouble("rope_theta", ropeTheta, in: &o)
        if case .object(var rp) = o["rope_parameters"] {
            setDouble("rope_theta", ropeTheta, in: &rp)
            o["rope_parameters"] = .object(rp)
        }
        o["torch_dtype"] = .string(torchDtype)
        if o["dtype"] != nil { o["dtype"] = .string(torchDtype) }
        var e = raw["ellmrec"]?.objectValue ?? [:]
        setInt("num_items", ellmrec.numItems, in: &e)
        setInt("item_dim", ellmrec.itemDim, in: &e)
        setInt("prompt_length", ellmrec.promptLength, in: &e)
        setInt("max_seq_len", ellmrec.maxSeqLen, in: &e)
        if ellmrec.suffixLength > 0 || e["suffix_length"] != nil { setInt("suffix_length", ellmrec.suffixLength, in: &e) }
        // A prompt whose length no longer matches its text (a pass changed it) loses the text.
        for (p, len, tk, ik) in [(ellmrec.prompt, ellmrec.promptLength, ELLMRecConfig.promptTextKey, ELLMRecConfig.promptIdsKey),
                                 (ellmrec.suffix, ellmrec.suffixLength, ELLMRecConfig.suffixTextKey, ELLMRecConfig.suffixIdsKey)] {
            if let p, p.tokenIds.count == len {
                e[tk] = .string(p.text)
                e[ik] = .array(p.tokenIds.map { .int($0) })
            } else {
                e.removeValue(forKey: tk); e.removeValue(forKey: ik)
            }
        }
        if let t = ellmrec.trunk { e[ELLMRecConfig.trunkKey] = .string(t) } else { e.removeValue(forKey: ELLMRecConfig.trunkKey) }
        o["ellmrec"] = .object(e)
        if let q = quantization { o["quantization_config"] = q.jsonValue } else { o.removeValue(forKey: "quantization_config") }
        return o
    }

    public func jsonData() throws -> Data {
        Data((JSONText.prettyString(.object(mergedJSON)) + "\n").utf8)
    }

    public func write(to url: URL) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            throw ModelFormatError(file: url.path, problem: "cannot write config.json: the path is an existing directory", fix: "choose a file path")
        }
        do {
            try AtomicFile.write(try jsonData(), to: url)
        } catch let e as ModelFormatError {
            throw e
        } catch {
            let f = writeFailure(error, what: "config.json", path: url.path)
            throw ModelFormatError(file: url.path, problem: f.problem, fix: f.fix)
        }
    }
}
