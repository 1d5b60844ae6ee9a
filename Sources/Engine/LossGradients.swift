import Foundation
import ModelFormat

extension ELLMRecModel {
    /// The loss of `batch` (with targets) and its gradient with respect to every trainable
    /// tensor, named for checking against PyTorch (`slmrec grads`): with an adapter, the LoRA
    /// matrices under PEFT's saved names (`grad.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`);
    /// otherwise every base tensor (`grad.model.layers.0.self_attn.q_proj.weight`). `loss` holds the loss.
    public func lossGradients(_ batch: PackedBatch) -> [String: Tensor] {
        let a = forward(batch, training: true)
        var out: [String: Tensor] = ["loss": Tensor(floats: [a.loss], shape: [])]
        if let lora {
            let g = ParamSet(layout: lora.params.layout)
            backward(a, BackwardRequest(grads: nil, loraGrads: g))
            for e in g.layout.entries {
                out["grad." + (LoRAAdapter.peftTensorName(e.name) ?? e.name)] = Tensor(floats: g.values(e.name), shape: e.shape)
            }
        } else {
            let g = ParamSet(layout: params.layout)
            backward(a, BackwardRequest(grads: g))
            for e in g.layout.entries { out["grad.\(e.name)"] = Tensor(floats: g.values(e.name), shape: e.shape) }
        }
        return out
    }
}
