import Common
import ModelFormat
import Foundation
import Evaluation
import ModelEvaluation
import Engine
import RecData
import Toolbench

/// The recipe runner's evaluation hook: each evaluated stage's checkpoint (float or int8, with
/// its adapter when the stage produced one) is ranked on the recipe's dataset with the same
/// evaluator as `slmrec eval`; metrics come back as "full.NDCG@10", "sampled.HR@10", ….
public struct RecipeEvaluator: StageEvaluator {
    /// Every stage of a recipe is ranked on the same dataset: load it once.
    let datasets = DatasetCache()

    public init() {}

    public func evaluate(stage: StageOutput, spec: EvaluateSpec) throws -> [String: Double] {
        guard let ckpt = stage.checkpoint else { throw EvaluationUnavailable("the stage produced no checkpoint") }
        let model = try RunnableModel.load(checkpoint: ckpt, adapter: stage.adapter)
        let ds = try datasets.load(resolvePath(spec.data, relativeTo: stage.baseDirectory))
        let r = try ModelEvaluator.evaluate(model: model, dataset: ds, options: EvalOptions(
            split: spec.split, candidates: spec.candidates, users: spec.users, progress: false))
        var out = MetricName.qualifiedMetrics(sampled: r.sampled, full: r.full)
        out["users"] = Double(r.users)
        out["users_per_second"] = r.usersPerSecond
        return out
    }
}

/// Loaded datasets by directory, for evaluators that rank many models on one dataset.
final class DatasetCache: @unchecked Sendable {
    private let lock = NSLock()
    private var byPath: [String: PreparedDataset] = [:]
    func load(_ url: URL) throws -> PreparedDataset {
        lock.lock(); defer { lock.unlock() }
        let key = url.standardizedFileURL.path
        if let d = byPath[key] { return d }
        let d = try PreparedDataset.load(directory: url)
        byPath[key] = d
        return d
    }
}
