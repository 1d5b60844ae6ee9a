import Foundation
import Common
import ModelFormat

// Checkpoint (files, dtypes, config.json) ↔ engine (one Float buffer). ModelFormat owns the
// names and shapes (TensorNames.expected); the engine lays them out in that order.

extension ModelDims {
    public init(config c: ModelConfig, inputProjBias: Bool, outputProjBias: Bool) {
        self.init(hidden: c.hiddenSize, intermediate: c.intermediateSize, layers: c.numLayers, heads: c.numHeads,
                  kvHeads: c.numKVHeads, headDim: c.headDim, numItems: c.ellmrec.numItems, itemDim: c.ellmrec.itemDim,
                  promptLength: c.ellmrec.promptLength, suffixLength: c.ellmrec.suffixLength, maxSeqLen: c.ellmrec.maxSeqLen,
                  rmsNormEps: c.rmsNormEps, ropeTheta: c.ropeTheta, maxPositions: c.maxPositionEmbeddings,
                  inputProjBias: inputProjBias, outputProjBias: outputProjBias)
    }

    /// A Hugging Face config for these dims (used by `slmrec init` and by tests).
    public func config() -> ModelConfig {
        ModelConfig(hiddenSize: hidden, intermediateSize: intermediate, numLayers: layers, numHeads: heads, numKVHeads: kvHeads,
                    headDim: headDim, rmsNormEps: rmsNormEps, ropeTheta: ropeTheta, maxPositionEmbeddings: maxPositions,
                    ellmrec: ELLMRecConfig(numItems: numItems, itemDim: itemDim, promptLength: promptLength,
                                           suffixLength: suffixLength, maxSeqLen: maxSeqLen))
    }
}

extension ParamName {
    /// Every tensor of an E-LLMRec checkpoint with these dims, as ModelFormat defines them.
    public static func specs(_ d: ModelDims) -> [(name: String, shape: [Int])] {
        TensorNames.expected(for: d.config(), inputProjBias: d.inputProjBias, outputProjBias: d.outputProjBias)
    }
}

extension ELLMRecModel {
    /// Loads a validated float checkpoint (F32/F16/BF16 are upcast exactly to fp32).
    public convenience init(checkpoint ck: Checkpoint) throws {
        if ck.config.quantization != nil {
            throw EngineError("this checkpoint is int8-quantized: load it with Int8Model (slmrec embed/eval/bench handle both)")
        }
        let dims = ModelDims(config: ck.config, inputProjBias: ck.inputProjBias, outputProjBias: ck.outputProjBias)
        self.init(dims: dims)
        for e in params.layout.entries {
            guard let t = ck.tensors[e.name] else { throw EngineError("checkpoint has no tensor \(e.name)") }
            let v = try t.floats()
            guard v.count == e.count else { throw EngineError("\(e.name): \(v.count) values, expected \(e.count)") }
            params.set(e.name, v)
        }
    }

    public static func load(directory: URL) throws -> ELLMRecModel {
        try ELLMRecModel(checkpoint: Checkpoint.load(directory: directory))
    }

    /// The model as a checkpoint; `base` supplies config keys to preserve (unknown keys, dtype).
    public func checkpoint(base: ModelConfig? = nil) -> Checkpoint {
        var cfg = base ?? dims.config()
        let fresh = dims.config()
        cfg.hiddenSize = fresh.hiddenSize; cfg.intermediateSize = fresh.intermediateSize; cfg.numLayers = fresh.numLayers
        cfg.numHeads = fresh.numHeads; cfg.numKVHeads = fresh.numKVHeads; cfg.headDim = fresh.headDim
        // The head's numbers are the model's; where its prompt and trunk came from stays
        // recorded (the config drops a prompt text whose length no longer matches).
        let origin = cfg.ellmrec
        cfg.ellmrec = fresh.ellmrec
        cfg.ellmrec.prompt = origin.prompt
        cfg.ellmrec.suffix = origin.suffix
        cfg.ellmrec.trunk = origin.trunk
        cfg.torchDtype = "float32"   // the engine's tensors are fp32 (slmrec convert changes it)
        var tensors: [String: Tensor] = [:]
        for e in params.layout.entries { tensors[e.name] = Tensor(floats: params.values(e.name), shape: e.shape) }
        return Checkpoint(config: cfg, tensors: tensors)
    }
}

extension LoRAWeights {
    /// Attaches a PEFT adapter (validated against the model's config by ModelFormat).
    public convenience init(adapter: LoRAAdapter, dims: ModelDims) throws {
        let kinds = try adapter.targetModules.map { m -> LinearKind in
            guard let k = LinearKind(module: m) else { throw EngineError("adapter targets \(m), which is not a LLaMa linear module") }
            return k
        }
        self.init(dims: dims, rank: adapter.r, alpha: Float(adapter.alpha), targets: kinds)
        for l in 0..<dims.layers {
            for k in targets {
                guard let pair = adapter.weights[k.path(layer: l)] else { throw EngineError("adapter has no weights for \(k.path(layer: l))") }
                params.set(ParamName.loraA(l, k), try pair.a.floats())
                params.set(ParamName.loraB(l, k), try pair.b.floats())
            }
        }
    }

    /// The adapter in PEFT's layout; `lora_alpha` and `lora_dropout` as a person wrote them
    /// (`0.05`), not the fp32 values the engine holds.
    public func adapter(dims: ModelDims) -> LoRAAdapter {
        var w: [String: (a: Tensor, b: Tensor)] = [:]
        for l in 0..<dims.layers {
            for k in targets {
                let a = params.layout.entry(ParamName.loraA(l, k))!, b = params.layout.entry(ParamName.loraB(l, k))!
                w[k.path(layer: l)] = (Tensor(floats: params.values(a.name), shape: a.shape), Tensor(floats: params.values(b.name), shape: b.shape))
            }
        }
        return LoRAAdapter(r: rank, alpha: Double(decimal: alpha), targetModules: targets.map(\.module), dropout: Double(decimal: dropout), weights: w)
    }
}
