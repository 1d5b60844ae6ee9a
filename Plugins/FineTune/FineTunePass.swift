import Foundation
import Engine
import ModelFormat
import RecData
import Toolbench
import Training
import TrainingKit

/// `finetune`: cross-entropy fine-tuning of an E-LLMRec model on a prepared dataset, full or
/// LoRA (E4SRec, Li et al. 2023; the teacher and the pruned-student healing in SLMRec).
public struct FineTune: CompressionPass {
    public static let name = "finetune"
    public static let summary = "Fine-tune on a dataset with next-item cross-entropy over all items (full or LoRA)."

    public typealias Options = TrainingPassOptions<NoSettings>

    public init() {}

    public func check(_ model: ModelSummary, options o: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        try o.check(model)
        return PlannedOutput(checkpoint: model, adapter: o.model.mode == .lora)
    }

    public func apply(_ context: PassContext, options o: Options) throws -> PassResult {
        let ck = try context.loadInput()
        let model = try ELLMRecModel(checkpoint: ck)
        let ds = try PreparedDataset.load(directory: context.resolve(o.data))
        let task = try FineTuneTask(model: model, lora: o.model.lora, parts: o.model.parts, seed: context.seed)
        return try TrainingRun.train(task, dataset: ds, context: context, options: o, base: ck.config, pass: Self.name) { t in
            "finetune (\(o.model.mode.rawValue)) on \(ds.directory.path): \(t.samples.count) examples, \(t.totalSteps) steps, objective \(o.trainer.objective.rawValue), seed \(context.seed)"
        }
    }
}
