import ModelFormat

// The engine's view of the checkpoint's tensor names. Names are Hugging Face's, so a view
// in the parameter buffer is addressed exactly as the tensor is in model.safetensors.

/// The seven linear modules of a LLaMa decoder layer.
public enum LinearKind: Int, CaseIterable, Sendable, Codable {
    case q, k, v, o, gate, up, down

    /// PEFT's target-module name.
    public var module: String {
        switch self {
        case .q: "q_proj"
        case .k: "k_proj"
        case .v: "v_proj"
        case .o: "o_proj"
        case .gate: "gate_proj"
        case .up: "up_proj"
        case .down: "down_proj"
        }
    }

    public init?(module: String) {
        guard let k = LinearKind.allCases.first(where: { $0.module == module }) else { return nil }
        self = k
    }

    /// "model.layers.{i}.self_attn.q_proj" (no ".weight").
    public func path(layer: Int) -> String { TensorNames.linear(layer, module) }

    /// [out, in] for this architecture.
    public func shape(_ d: ModelDims) -> [Int] {
        switch self {
        case .q: [d.qDim, d.hidden]
        case .k, .v: [d.kvDim, d.hidden]
        case .o: [d.hidden, d.qDim]
        case .gate, .up: [d.intermediate, d.hidden]
        case .down: [d.hidden, d.intermediate]
        }
    }
}

public enum ParamName {
    public static func weight(_ layer: Int, _ kind: LinearKind) -> String { kind.path(layer: layer) + ".weight" }
    public static func inputNorm(_ layer: Int) -> String { "model.layers.\(layer).input_layernorm.weight" }
    public static func postNorm(_ layer: Int) -> String { "model.layers.\(layer).post_attention_layernorm.weight" }
    public static let finalNorm = TensorNames.finalNorm
    public static let itemEmbedding = TensorNames.itemEmbedding
    public static let inputProj = TensorNames.inputProjWeight
    public static let inputProjBias = TensorNames.inputProjBias
    public static let outputProj = TensorNames.outputProjWeight
    public static let outputProjBias = TensorNames.outputProjBias
    public static let prompt = TensorNames.promptEmbeddings
    public static let suffix = TensorNames.suffixEmbeddings
    public static func loraA(_ layer: Int, _ kind: LinearKind) -> String { kind.path(layer: layer) + ".lora_A" }
    public static func loraB(_ layer: Int, _ kind: LinearKind) -> String { kind.path(layer: layer) + ".lora_B" }
}
