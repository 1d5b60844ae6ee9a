import Common
import Foundation

/// A PEFT LoRA adapter (spec "LoRA adapter"): effective weight W + (alpha / r) · B · A.
public struct LoRAAdapter: Sendable {
    public var r: Int
    public var alpha: Double
    public var dropout: Double
    public var targetModules: [String]
    /// Keyed by canonical module name ("model.layers.0.self_attn.q_proj"); a is [r, in], b is [out, r].
    public var weights: [String: (a: Tensor, b: Tensor)]
    /// adapter_config.json as read (or the defaults below), written back with the typed fields.
    public var raw: [String: JSONValue]

    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"
    /// What `save` writes (PEFT's two files), for the output guard.
    public static let outputKind = OutputKind(name: "LoRA adapter", files: [configFile, weightsFile], required: [configFile, weightsFile])
    /// PEFT's prefix for our LlamaModel-based model (what PEFT 0.21 wrote in the fixtures).
    public static let savePrefix = "base_model.model.model.layers."
    /// Also accepted: the prefix PEFT writes when the wrapped model is a bare LlamaModel.
    public static let acceptedPrefixes = ["base_model.model.model.layers.", "base_model.model.layers."]

    public var scaling: Float { Float(alpha / Double(r)) }

    /// The name PEFT saves a LoRA matrix under: "model.layers.3.self_attn.q_proj.lora_A" →
    /// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" (nil: not a layer's).
    public static func peftTensorName(_ name: String) -> String? {
        guard name.hasPrefix("model.layers.") else { return nil }
        return savePrefix + name.dropFirst("model.layers.".count) + ".weight"
    }

    public init(r: Int, alpha: Double, targetModules: [String], dropout: Double = 0, weights: [String: (a: Tensor, b: Tensor)]) {
        self.r = r
        self.alpha = alpha
        self.dropout = dropout
        self.targetModules = targetModules
        self.weights = weights
        self.raw = [
            "peft_type": .string("LORA"),
            "task_type": .null,
            "base_model_name_or_path": .null,
            "bias": .string("none"),
            "fan_in_fan_out": .bool(false),
            "use_rslora": .bool(false),
            "use_dora": .bool(false),
            "modules_to_save": .null,
            "init_lora_weights": .bool(true),
            "inference_mode": .bool(true),
        ]
    }

    /// Options that change the maths. If one is set we refuse the adapter rather than merge it
    /// wrongly; `nil`/`false`/empty values are what PEFT writes by default.
    private static let unsupportedFlags = ["use_rslora", "use_dora", "fan_in_fan_out", "lora_bias", "use_qalora"]
    private static let unsupportedIfSet = ["layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern",
                                           "modules_to_save", "target_parameters", "exclude_modules", "megatron_config", "trainable_token_indices"]

    public static func load(directory: URL) throws -> LoRAAdapter {
        let cfgURL = directory.appendingPathComponent(configFile)
        let file = cfgURL.path
        func bad(_ p: String, _ fix: String) -> ModelFormatError { ModelFormatError(file: file, problem: p, fix: fix) }
        let o = try readJSONObject(cfgURL, readFix: "an adapter directory holds adapter_config.json and adapter_model.safetensors",
                                   objectFix: "re-save the adapter with PEFT")
        let peftType = o["peft_type"]?.stringValue ?? "missing"
        guard peftType == "LORA" else {
            throw bad("peft_type is \(peftType); only LORA adapters are supported", "use a LoRA adapter")
        }
        for k in unsupportedFlags where o[k]?.boolValue == true {
            throw bad("\(k) is true, which is not supported (it changes the merge maths)", "retrain without \(k) or merge the adapter in PEFT first")
        }
        for k in unsupportedIfSet {
            guard let v = o[k] else { continue }
            let empty = v.isNull || v.boolValue == false || v.arrayValue?.isEmpty == true || v.objectValue?.isEmpty == true
            if !empty {
                throw bad("\(k) is \(JSONText.compact(v)), which is not supported", "retrain without \(k) or merge the adapter in PEFT first")
            }
        }
        if let b = o["bias"]?.stringValue, b != "none" {
            throw bad("bias is \"\(b)\"; only \"none\" is supported", "retrain with bias=\"none\" or merge in PEFT first")
        }
        let targets: [String]
        switch o["target_modules"] {
        case .array(let a)?:
            targets = try a.map {
                guard let s = $0.stringValue else { throw bad("target_modules holds a non-string", "list module names") }
                return s
            }
        case .string(let s)?:
            throw bad("target_modules is the string \"\(s)\" (a regex or \"all-linear\"), which is not supported",
                      "list the modules explicitly, e.g. [\"q_proj\", \"v_proj\"]")
        default:
            throw bad("target_modules is missing", "list the modules, e.g. [\"q_proj\", \"v_proj\"]")
        }
        for t in targets where !TensorNames.linearModules.contains(t) {
            throw bad("target module \"\(t)\" is not supported (supported: \(TensorNames.linearModules.joined(separator: ", ")))",
                      "LoRA may target only the LLaMa linear layers")
        }
        let r = try o["r"].map { v -> Int in
            guard let i = v.intValue, i > 0 else { throw bad("r is \(JSONText.compact(v)); it must be a positive integer", "fix r") }
            return i
        } ?? 8  // PEFT's default
        let alpha = try o["lora_alpha"].map { v -> Double in
            guard let d = v.doubleValue else { throw bad("lora_alpha is \(JSONText.compact(v)), not a number", "fix lora_alpha") }
            return d
        } ?? 8  // PEFT's default
        let dropout = o["lora_dropout"]?.doubleValue ?? 0

        let wURL = directory.appendingPathComponent(weightsFile)
        let st = try SafetensorsFile(url: wURL)
        var aw: [String: Tensor] = [:], bw: [String: Tensor] = [:]
        for name in st.names {
            guard let (module, isA) = canonical(name) else {
                throw ModelFormatError(file: wURL.path, problem: "unexpected tensor \"\(name)\"",
                                       fix: "expected \(savePrefix){i}.self_attn.q_proj.lora_A.weight-style names (PEFT layout)")
            }
            let t = try st.tensor(name)
            guard t.dtype.isFloat else {
                throw ModelFormatError(file: wURL.path, problem: "tensor \"\(name)\" is \(t.dtype.rawValue), not a float tensor", fix: "store LoRA weights as F32, F16 or BF16")
            }
            if isA { aw[module] = t } else { bw[module] = t }
        }
        var weights: [String: (a: Tensor, b: Tensor)] = [:]
        for (m, a) in aw {
            guard let b = bw[m] else {
                throw ModelFormatError(file: wURL.path, problem: "\(m) has lora_A but no lora_B", fix: "the adapter file is incomplete; re-save it")
            }
            weights[m] = (a, b)
        }
        for m in bw.keys where aw[m] == nil {
            throw ModelFormatError(file: wURL.path, problem: "\(m) has lora_B but no lora_A", fix: "the adapter file is incomplete; re-save it")
        }
        var ad = LoRAAdapter(r: r, alpha: alpha, targetModules: targets, dropout: dropout, weights: weights)
        ad.raw = o
        return ad
    }

    /// Maps a PEFT tensor name to (canonical module name, is lora_A).
    static func canonical(_ name: String) -> (String, Bool)? {
        guard let prefix = acceptedPrefixes.first(where: { name.hasPrefix($0) }) else { return nil }
        let parts = name.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // {i} {self_attn|mlp} {module} {lora_A|lora_B} weight
        guard parts.count == 5, let i = Int(parts[0]), i >= 0, String(i) == parts[0], parts[4] == "weight",
              TensorNames.linearModules.contains(parts[2]), TensorNames.parent(parts[2]) == parts[1],
              parts[3] == "lora_A" || parts[3] == "lora_B" else { return nil }
        return (TensorNames.linear(i, parts[2]), parts[3] == "lora_A")
    }

    /// Every layer × targeted module present with a [r, in] and b [out, r]; nothing else.
    public func validate(against config: ModelConfig, source: String) throws {
        func bad(_ p: String, _ fix: String) -> ModelFormatError { ModelFormatError(file: source, problem: p, fix: fix) }
        guard r > 0 else { throw bad("r is \(r); it must be positive", "fix r") }
        var expected = Set<String>()
        for i in 0..<config.numLayers {
            for m in targetModules {
                let name = TensorNames.linear(i, m)
                expected.insert(name)
                let shape = TensorNames.linearShape(m, config)
                guard shape.count == 2 else { throw bad("target module \"\(m)\" is not a LLaMa linear layer", "target only \(TensorNames.linearModules.joined(separator: ", "))") }
                guard let w = weights[name] else {
                    throw bad("missing LoRA weights for \(name)", "the adapter must cover every layer of each target module (did the layer count change?)")
                }
                guard w.a.shape == [r, shape[1]] else {
                    throw bad("\(name).lora_A has shape \(w.a.shape), expected [\(r), \(shape[1])]", "the adapter does not match this model's config")
                }
                guard w.b.shape == [shape[0], r] else {
                    throw bad("\(name).lora_B has shape \(w.b.shape), expected [\(shape[0]), \(r)]", "the adapter does not match this model's config")
                }
            }
        }
        if let extra = weights.keys.filter({ !expected.contains($0) }).sorted().first {
            throw bad("unexpected LoRA weights for \(extra)", "it is not a targeted module of a layer in this model")
        }
    }

    /// PEFT layout in a temporary directory renamed into place.
    public func save(to directory: URL) throws {
        var tensors: [String: Tensor] = [:]
        for (m, w) in weights {
            guard m.hasPrefix("model.layers.") else {
                throw ModelFormatError(file: directory.path, problem: "LoRA module name \"\(m)\" is not model.layers.*", fix: "use TensorNames.linear(i, module)")
            }
            tensors[LoRAAdapter.savePrefix + m.dropFirst("model.layers.".count) + ".lora_A.weight"] = w.a
            tensors[LoRAAdapter.savePrefix + m.dropFirst("model.layers.".count) + ".lora_B.weight"] = w.b
        }
        var cfg = raw
        cfg["peft_type"] = .string("LORA")
        cfg["r"] = .int(r)
        cfg["lora_alpha"] = alpha.rounded() == alpha && abs(alpha) < 9e15 ? .int(Int(alpha)) : .double(alpha)
        cfg["lora_dropout"] = .double(dropout)
        cfg["target_modules"] = .array(targetModules.map { .string($0) })
        let cfgData = Data((JSONText.prettyString(.object(cfg)) + "\n").utf8)
        do {
            try AtomicFile.writeDirectory(directory) { tmp in
                try Safetensors.write(tensors, to: tmp.appendingPathComponent(LoRAAdapter.weightsFile))
                try cfgData.write(to: tmp.appendingPathComponent(LoRAAdapter.configFile))
            }
        } catch let e as ModelFormatError {
            throw e
        } catch {
            let f = writeFailure(error, what: "the adapter", path: directory.path)
            throw ModelFormatError(file: directory.path, problem: f.problem, fix: f.fix)
        }
    }
}

extension Checkpoint {
    /// This checkpoint with `adapter` folded in: W' = W + s·(B·A), s = lora_alpha / r, as PEFT's
    /// `Linear.merge` computes it (`get_delta_weight` = (B @ A) · scaling, added to the base
    /// weight), in fp32; the result keeps the base weight's dtype (one rounding for F16/BF16).
    /// `lora-merge` is this as a pass; a recipe stage that reads a LoRA stage's model gets it
    /// merged this way (`PassContext.loadInput`), so a stage always hands on one model.
    public func merging(_ adapter: LoRAAdapter, source: String) throws -> Checkpoint {
        var out = self
        let r = adapter.r, s = adapter.scaling
        for (module, pair) in adapter.weights.sorted(by: { $0.key < $1.key }) {
            let wName = module + ".weight"
            guard let w = tensors[wName], w.shape.count == 2 else {
                throw ModelFormatError(file: source, problem: "the adapter targets \(module), but the checkpoint has no 2-D weight \(wName)",
                                       fix: "merge the adapter into the model it was trained on")
            }
            let rows = w.shape[0], cols = w.shape[1]
            var merged = try w.floats()
            let a = try pair.a.floats(), b = try pair.b.floats()   // a (r, in), b (out, r)
            guard a.count == r * cols, b.count == rows * r else {
                throw ModelFormatError(file: source, problem: "\(module): LoRA shapes \(pair.a.shape), \(pair.b.shape) do not fit the weight \(w.shape)",
                                       fix: "merge the adapter into the model it was trained on")
            }
            // Row by row: delta_i = Σ_k B[i,k]·A[k,:] (PEFT's B @ A), then W_i += delta_i · s — the
            // same fp32 operations as PEFT's W + (B @ A)·s. A rank-r update is memory-bound;
            // plain loops (vectorised by the compiler) beat a threaded GEMM's start-up here.
            var delta = [Float](repeating: 0, count: cols)
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in merged.withUnsafeMutableBufferPointer { wp in
                delta.withUnsafeMutableBufferPointer { dp in
                    let d = dp.baseAddress!
                    for i in 0..<rows {
                        dp.update(repeating: 0)
                        for k in 0..<r {
                            let bik = bp[i * r + k], ak = ap.baseAddress! + k * cols
                            for j in 0..<cols { d[j] += bik * ak[j] }
                        }
                        let w = wp.baseAddress! + i * cols
                        for j in 0..<cols { w[j] += d[j] * s }
                    }
                }
            } } }
            out.tensors[wName] = Tensor(floats: merged, shape: w.shape, dtype: w.dtype)
        }
        return out
    }
}
