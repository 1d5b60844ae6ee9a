import Foundation
import Common
import Engine
import ModelFormat
import RecData
import Toolbench
import Training

/// What every training pass does once it has built its task: train it on the stage's dataset
/// with the stage's seed, and return the trained model (and adapter) with the run's metrics.
public enum TrainingRun {
    /// - Parameters:
    ///   - task: built with `context.seed` (LoRA initialisation, dropout).
    ///   - base: the input checkpoint's config (unknown keys and dtype carry over).
    ///   - describe: the log line that says what is trained, given the trainer.
    ///   - metrics: the pass's own metrics, added to the run's.
    public static func train<S>(_ task: TrainingTask, dataset: PreparedDataset, context: PassContext, options o: TrainingPassOptions<S>,
                                base: ModelConfig, pass: String, describe: (Trainer) -> String,
                                metrics extra: [String: JSONValue] = [:]) throws -> PassResult {
        var trainer = o.trainer
        trainer.seed = context.seed
        let t = try Trainer(task: task, dataset: dataset, options: trainer, stateDirectory: context.workDirectory.appendingPathComponent("trainer"))
        t.label = "\(context.stage): \(pass)"
        t.quiet = context.quiet
        context.log(describe(t))
        let r = try t.run(resume: context.resume)
        context.log(String(format: "trained %d steps in %.1f s (%.0f tokens/s), best valid %@ %.4f at step %d", r.steps, r.seconds, r.tokensPerSecond,
                           trainer.metric, r.bestMetric ?? .nan, r.bestStep))
        var metrics = r.metrics
        metrics["trainable_parameters"] = .int(task.groups.filter { $0.role == .model || $0.role == .adapter }.reduce(0) { $0 + $1.trainableCount })
        metrics["examples"] = .int(t.samples.count)
        for (k, v) in extra { metrics[k] = v }
        let model = task.evalModel
        return PassResult(checkpoint: model.checkpoint(base: base),
                          adapter: model.lora.map { $0.adapter(dims: model.dims) }, metrics: metrics)
    }
}
