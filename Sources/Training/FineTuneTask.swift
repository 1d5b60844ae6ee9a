import Foundation
import Common
import Engine

/// Which tensors of an E-LLMRec model train (E4SRec freezes the item table by default).
public struct TrainableParts: Codable, Sendable, Equatable {
    public var itemTable = false
    public var projections = true
    public var prompt = true
    public init(itemTable: Bool = false, projections: Bool = true, prompt: Bool = true) {
        self.itemTable = itemTable; self.projections = projections; self.prompt = prompt
    }

    /// The base-model tensors that train: the chosen head/prompt parts, plus the decoder
    /// (layers, norms) when `decoder` is true (full fine-tuning).
    public func names(_ layout: ParamLayout, decoder: Bool) -> Set<String> {
        var s = Set<String>()
        for n in layout.names {
            if n == ParamName.itemEmbedding { if itemTable { s.insert(n) } }
            else if n.hasPrefix("ellmrec.input_proj") || n.hasPrefix("ellmrec.output_proj") { if projections { s.insert(n) } }
            else if n == ParamName.prompt || n == ParamName.suffix { if prompt { s.insert(n) } }
            else if decoder { s.insert(n) }
        }
        return s
    }
}

public struct LoRAOptions: Codable, Sendable, Equatable {
    public var rank: Int = 8
    public var alpha: Float = 16
    public var targets: [String] = ["q_proj", "v_proj"]
    public init(rank: Int = 8, alpha: Float = 16, targets: [String] = ["q_proj", "v_proj"]) {
        self.rank = rank; self.alpha = alpha; self.targets = targets
    }
}

/// Cross-entropy fine-tuning of an E-LLMRec model, full or LoRA (the E4SRec / SLMRec
/// objective: the next item over all items).
public final class FineTuneTask: TrainingTask {
    public let model: ELLMRecModel
    public let groups: [ParamGroup]
    public var evalModel: ELLMRecModel { model }
    public var dims: ModelDims { model.dims }

    public init(model: ELLMRecModel, lora: LoRAOptions?, parts: TrainableParts, seed: UInt64) throws {
        self.model = model
        var g = [ParamGroup(name: "model", params: model.params, trainable: parts.names(model.params.layout, decoder: lora == nil))]
        if let lora {
            let kinds = try lora.targets.map { t -> LinearKind in
                guard let k = LinearKind(module: t) else {
                    throw TrainingError(message: "lora target \"\(t)\" is not one of \(LinearKind.allCases.map(\.module).joined(separator: ", "))")
                }
                return k
            }
            if lora.rank < 1 { throw TrainingError(message: "lora rank must be at least 1") }
            let w = LoRAWeights(dims: model.dims, rank: lora.rank, alpha: lora.alpha, targets: kinds)
            var rng = SeededRNG(seed: seed, stream: "lora-init")
            w.initialise(rng: &rng)
            model.lora = w
            g.append(ParamGroup(name: "lora", params: w.params, trainable: Set(w.params.layout.names)))
        }
        groups = g
    }

    public func step(_ batch: PackedBatch, sampleIndices: [Int], grads: [ParamSet], workspace: Workspace) -> [String: Double] {
        let a = model.forward(batch, training: true, workspace: workspace)
        var req = BackwardRequest(grads: grads[0], trainable: groups[0].trainable)
        if grads.count > 1 { req.loraGrads = grads[1] }
        model.backward(a, req, workspace: workspace)
        return ["loss": Double(a.loss), "ce": Double(a.loss)]
    }
}
