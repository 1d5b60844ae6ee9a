import Foundation
import Common
import Engine
import Cluster

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
    /// PEFT's lora_dropout on the adapter input, training only.
    public var dropout: Float = 0
    public init(rank: Int = 8, alpha: Float = 16, targets: [String] = ["q_proj", "v_proj"], dropout: Float = 0) {
        self.rank = rank; self.alpha = alpha; self.targets = targets; self.dropout = dropout
    }
}

/// Cross-entropy fine-tuning of an E-LLMRec model, full or LoRA (the E4SRec / SLMRec
/// objective: the next item over all items).
public final class FineTuneTask: TrainingTask {
    public let model: ELLMRecModel
    public let groups: [ParamGroup]
    public var evalModel: ELLMRecModel { model }
    public var dims: ModelDims { model.dims }
    let seed: UInt64

    public init(model: ELLMRecModel, lora: LoRAOptions?, parts: TrainableParts, seed: UInt64) throws {
        self.model = model
        self.seed = seed
        groups = try Self.groups(model: model, lora: lora, parts: parts, seed: seed)
    }

    /// The groups that train `model`: its base tensors (the chosen parts, the decoder too when
    /// full), and fresh LoRA adapters attached to it when `lora` is given. Every task that
    /// trains an E-LLMRec model (fine-tuning, a distillation student) builds them here.
    public static func groups(model: ELLMRecModel, lora: LoRAOptions?, parts: TrainableParts, seed: UInt64) throws -> [ParamGroup] {
        var g = [ParamGroup(name: ParamGroup.model, params: model.params, trainable: parts.names(model.params.layout, decoder: lora == nil), role: .model)]
        if let lora { g.append(try model.attachLoRA(lora, seed: seed)) }
        return g
    }

    public func step(_ batch: PackedBatch, step: Int, sampleIndices: [Int], grads: Gradients, workspace: Workspace) -> [String: Double] {
        model.lora?.dropoutSeed = Self.stepSeed(seed, step)
        let a = model.forward(batch, training: true, workspace: workspace)
        var req = BackwardRequest(grads: grads[ParamGroup.model]!, trainable: groups[0].trainable)
        req.loraGrads = grads[ParamGroup.lora]
        model.backward(a, req, workspace: workspace)
        return ["loss": Double(a.loss), "ce": Double(a.loss)]
    }

    /// A per-step seed: the same step of the same run draws the same dropout masks, resumed or not.
    /// Under mpirun each rank draws its own masks (its rows are others than rank 0's); a
    /// single process is rank 0 and draws what it always drew.
    public static func stepSeed(_ seed: UInt64, _ step: Int) -> UInt64 {
        let rank = Cluster.world.rank
        var r = SeededRNG(seed: seed ^ (UInt64(truncatingIfNeeded: step) &* 0x9E37_79B9_7F4A_7C15), stream: rank == 0 ? "step" : "step-rank-\(rank)")
        return r.next()
    }
}

extension ELLMRecModel {
    /// Attaches fresh LoRA adapters to this model (A from the seed's "lora-init" stream, B zero:
    /// the model's function is unchanged until they train) and returns their group.
    public func attachLoRA(_ lora: LoRAOptions, seed: UInt64) throws -> ParamGroup {
        let kinds = try lora.targets.map { t -> LinearKind in
            guard let k = LinearKind(module: t) else {
                throw TrainingError(message: "lora target \"\(t)\" is not one of \(LinearKind.allCases.map(\.module).joined(separator: ", "))")
            }
            return k
        }
        if lora.rank < 1 { throw TrainingError(message: "lora rank must be at least 1") }
        if !(lora.dropout >= 0 && lora.dropout < 1) { throw TrainingError(message: "lora dropout must be in [0, 1)") }
        let w = LoRAWeights(dims: dims, rank: lora.rank, alpha: lora.alpha, targets: kinds)
        w.dropout = lora.dropout
        var rng = SeededRNG(seed: seed, stream: "lora-init")
        w.initialise(rng: &rng)
        self.lora = w
        return ParamGroup(name: ParamGroup.lora, params: w.params, trainable: Set(w.params.layout.names), role: .adapter)
    }
}
