import Foundation
import Common
import Engine
import ModelFormat
import RecData
import Toolbench
import Training

/// `finetune`: cross-entropy fine-tuning of an E-LLMRec model on a prepared dataset, full or
/// LoRA (E4SRec, Li et al. 2023; the teacher and the pruned-student healing in SLMRec).
public struct FineTune: CompressionPass {
    public static let name = "finetune"
    public static let summary = "Fine-tune on a dataset with next-item cross-entropy over all items (full or LoRA)."

    public struct Options: PassOptions {
        public var data: String
        public var model = TrainableOptions()
        public var trainer = TrainerOptions()

        enum CodingKeys: String, CodingKey { case data }

        public init(data: String) { self.data = data }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            data = try c.decode(String.self, forKey: .data)
            model = try TrainableOptions(from: decoder)
            trainer = try TrainerOptions(from: decoder)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(data, forKey: .data)
            try model.encodeFields(to: encoder)
            try trainer.encodeFields(to: encoder)
        }

        public static let fields: [OptionField] = [
            OptionField("data", "path", "Prepared dataset directory (slmrec data prepare)."),
        ] + TrainableOptions.optionFields + TrainerOptions.optionFields

        public var inputPaths: [String] { [data] }

        public func validate() throws {
            let p = trainer.problems()
            if !p.isEmpty { throw passError(p.joined(separator: "; "), fix: "change these options") }
            try model.validate()
        }
    }

    public init() {}

    public func check(_ model: ModelSummary, options o: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        if model.isQuantized { throw passError("the model is int8-quantized", fix: "fine-tune the float model, then quantize") }
        if o.trainer.objective == .allPositions && model.config.ellmrec.suffixLength > 0 {
            throw passError("objective all-positions needs a model without a prompt suffix (suffix_length \(model.config.ellmrec.suffixLength))",
                            fix: "set objective: \"last\"")
        }
        return PlannedOutput(checkpoint: model, adapter: o.model.mode == .lora)
    }

    public func apply(_ context: PassContext, options o: Options) throws -> PassResult {
        let ck = try context.loadInput()
        let model = try ELLMRecModel(checkpoint: ck)
        let ds = try PreparedDataset.load(directory: context.resolve(o.data))
        var trainer = o.trainer
        trainer.seed = o.trainer.seed ^ context.seed
        let task = try FineTuneTask(model: model, lora: o.model.lora, parts: o.model.parts, seed: trainer.seed)
        let t = try Trainer(task: task, dataset: ds, options: trainer, stateDirectory: context.workDirectory.appendingPathComponent("trainer"))
        t.label = "\(context.stage): finetune"
        t.quiet = context.quiet
        context.log("finetune (\(o.model.mode.rawValue)) on \(ds.directory.path): \(t.samples.count) examples, \(t.totalSteps) steps, objective \(trainer.objective.rawValue)")
        let r = try t.run(resume: context.resume)
        var trainable = 0
        for g in task.groups { for e in g.params.layout.entries where g.trainable.contains(e.name) { trainable += e.count } }
        var metrics = r.json.mapValues(JSONValue.any)
        metrics["trainable_parameters"] = .int(trainable)
        metrics["examples"] = .int(t.samples.count)
        metrics["history"] = .array(r.history.map(JSONValue.any))
        context.log(String(format: "trained %d steps in %.1f s (%.0f tokens/s), best valid %@ %.4f at step %d", r.steps, r.seconds, r.tokensPerSecond,
                           trainer.metric, r.bestMetric ?? .nan, r.bestStep))
        let out = model.checkpoint(base: ck.config)
        let adapter = model.lora.map { $0.adapter(dims: model.dims, dropout: Double($0.dropout)) }
        return PassResult(checkpoint: out, adapter: adapter, metrics: metrics)
    }
}
