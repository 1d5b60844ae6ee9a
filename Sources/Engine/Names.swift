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
    public func path(layer: Int) -> String {
        switch self {
        case .q, .k, .v, .o: "model.layers.\(layer).self_attn.\(module)"
        case .gate, .up, .down: "model.layers.\(layer).mlp.\(module)"
        }
    }

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
    public static let finalNorm = "model.norm.weight"
    public static let itemEmbedding = "ellmrec.item_embedding.weight"
    public static let inputProj = "ellmrec.input_proj.weight"
    public static let inputProjBias = "ellmrec.input_proj.bias"
    public static let outputProj = "ellmrec.output_proj.weight"
    public static let outputProjBias = "ellmrec.output_proj.bias"
    public static let prompt = "ellmrec.prompt_embeddings"
    public static let suffix = "ellmrec.prompt_suffix_embeddings"
    public static func loraA(_ layer: Int, _ kind: LinearKind) -> String { kind.path(layer: layer) + ".lora_A" }
    public static func loraB(_ layer: Int, _ kind: LinearKind) -> String { kind.path(layer: layer) + ".lora_B" }

    /// Every tensor of an E-LLMRec checkpoint with these dims, in the contract's order.
    public static func specs(_ d: ModelDims) -> [(name: String, shape: [Int])] {
        var s: [(name: String, shape: [Int])] = []
        for l in 0..<d.layers {
            s.append((inputNorm(l), [d.hidden]))
            for k in [LinearKind.q, .k, .v, .o] { s.append((weight(l, k), k.shape(d))) }
            s.append((postNorm(l), [d.hidden]))
            for k in [LinearKind.gate, .up, .down] { s.append((weight(l, k), k.shape(d))) }
        }
        s.append((finalNorm, [d.hidden]))
        s.append((itemEmbedding, [d.numItems + 1, d.itemDim]))
        s.append((inputProj, [d.hidden, d.itemDim]))
        if d.inputProjBias { s.append((inputProjBias, [d.hidden])) }
        s.append((outputProj, [d.itemDim, d.hidden]))
        if d.outputProjBias { s.append((outputProjBias, [d.itemDim])) }
        if d.promptLength > 0 { s.append((prompt, [d.promptLength, d.hidden])) }
        if d.suffixLength > 0 { s.append((suffix, [d.suffixLength, d.hidden])) }
        return s
    }
}
