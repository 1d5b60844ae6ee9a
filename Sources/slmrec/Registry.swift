import Foundation
import Evaluation
import RecData
import Toolbench
import LayerPruning
import LoRAMerge
import Int8Quantization
import FineTune
import LayerwiseKD

/// The one place in code that names the compression passes (the composition root picks the
/// implementations, as swift-log's bootstrap does). Order = the order `slmrec passes` lists.
let registry = PassRegistry([
    PruneLayers.self,
    LoRAMerge.self,
    QuantizeInt8.self,
    FineTune.self,
    LayerwiseKD.self,
])

/// The recipe runner's evaluation hook: each evaluated stage's checkpoint (float or int8, with
/// its adapter when the stage produced one) is ranked on the recipe's dataset with the same
/// evaluator as `slmrec eval`; metrics come back as "full.NDCG@10", "sampled.HR@10", ….
struct RecipeEvaluator: StageEvaluator {
    /// Every stage of a recipe is ranked on the same dataset: load it once.
    let datasets = DatasetCache()

    func evaluate(stage: StageOutput, spec: EvaluateSpec) throws -> [String: Double] {
        guard let ckpt = stage.checkpoint else { throw EvaluationUnavailable("the stage produced no checkpoint") }
        let model = try loadEvalModel(ckpt.path, adapter: stage.adapter?.path)
        let dataURL = spec.data.hasPrefix("/") ? URL(fileURLWithPath: spec.data) : stage.baseDirectory.appendingPathComponent(spec.data)
        let ds = try datasets.load(dataURL)
        let r = try ModelEvaluator.evaluate(model: model, dataset: ds, options: EvalOptions(
            split: spec.split == .test ? .test : .valid,
            candidates: Candidates(rawValue: spec.candidates.rawValue) ?? .both, users: spec.users, progress: false))
        var out: [String: Double] = ["users": Double(r.users), "users_per_second": r.usersPerSecond]
        for (k, v) in r.full ?? [:] { out["full.\(k)"] = v }
        for (k, v) in r.sampled ?? [:] { out["sampled.\(k)"] = v }
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
