import Foundation
import Common
import Engine
import Evaluation
import ModelEvaluation
import RecData

/// SASRec is ranked by the same protocol as E-LLMRec checkpoints
/// (`ModelEvaluator.rankHeldOut`), so SASRec rows are comparable: input = the sequence before
/// the target, truncated to the `maxLen` most recent items; sampled = against the dataset's
/// fixed negatives; full = against all items but the user's whole history; pessimistic ties.
public enum SASRecEvaluator {
    public static func evaluate(model: SASRecModel, dataset: PreparedDataset, split: Split, candidates: Candidates,
                                users: Int? = nil, batchSize: Int = 256, progress: Bool = false,
                                workspace: Workspace = Workspace()) throws -> EvalResult {
        let maxLen = model.config.maxLen
        return try ModelEvaluator.rankHeldOut(
            dataset: dataset, numItems: model.config.numItems, maxLength: maxLen,
            options: EvalOptions(split: split, candidates: candidates, users: users, batchSize: batchSize, progress: progress),
            table: UnsafePointer(model.params.req(SASRecNames.itemEmbedding)), dim: model.config.hidden) { ex in
            UnsafePointer(model.lastStates(SASRecBatch(inputs: ex.map { $0.input[...] }, targets: nil, maxLen: maxLen), workspace: workspace))
        }
    }
}
