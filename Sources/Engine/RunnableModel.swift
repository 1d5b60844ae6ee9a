import Foundation
import ModelFormat

/// The one loader of "a model as it runs": a float or int8 checkpoint directory, with a LoRA
/// adapter attached (validated against the checkpoint's config) when one is given. `slmrec
/// eval`, `embed`, `grads`, the recipe's evaluator and the report's timing all load through it.
public enum RunnableModel {
    /// - Parameter requireFloat: refuse an int8 checkpoint (commands that train or take gradients).
    public static func load(checkpoint dir: URL, adapter: URL? = nil, requireFloat: Bool = false) throws -> ELLMRecModel {
        let ck = try Checkpoint.load(directory: dir)
        if ck.config.quantization != nil {
            if requireFloat {
                throw EngineError("\(dir.path): the checkpoint is int8-quantized; this needs the float model (the stage before quantization)")
            }
            if adapter != nil {
                throw EngineError("\(dir.path): an int8 checkpoint takes no adapter; merge the adapter (slmrec apply lora-merge) before quantizing")
            }
            return try ELLMRecModel.loadQuantized(checkpoint: ck)
        }
        let model = try ELLMRecModel(checkpoint: ck)
        if let adapter {
            let a = try LoRAAdapter.load(directory: adapter)
            try a.validate(against: ck.config, source: adapter.path)
            model.lora = try LoRAWeights(adapter: a, dims: model.dims)
        }
        return model
    }
}
