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

    public enum Mode: String, OptionEnum { case full, lora }

    public struct Options: PassOptions {
        public var data: String
        public var mode: Mode = .full
        public var loraRank = 8
        public var loraAlpha: Float = 16
        public var loraDropout: Float = 0
        public var loraTargets = ["q_proj", "v_proj"]
        public var trainItemTable = false
        public var trainProjections = true
        public var trainPrompt = true
        public var trainer = TrainerOptions()

        enum CodingKeys: String, CodingKey {
            case data, mode, loraRank = "lora_rank", loraAlpha = "lora_alpha", loraDropout = "lora_dropout", loraTargets = "lora_targets"
            case trainItemTable = "train_item_table", trainProjections = "train_projections", trainPrompt = "train_prompt"
        }

        public init(data: String) { self.data = data }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            data = try c.decode(String.self, forKey: .data)
            mode = try c.decodeIfPresent(Mode.self, forKey: .mode) ?? .full
            loraRank = try c.decodeIfPresent(Int.self, forKey: .loraRank) ?? 8
            loraAlpha = try c.decodeIfPresent(Float.self, forKey: .loraAlpha) ?? 16
            loraDropout = try c.decodeIfPresent(Float.self, forKey: .loraDropout) ?? 0
            loraTargets = try c.decodeIfPresent([String].self, forKey: .loraTargets) ?? ["q_proj", "v_proj"]
            trainItemTable = try c.decodeIfPresent(Bool.self, forKey: .trainItemTable) ?? false
            trainProjections = try c.decodeIfPresent(Bool.self, forKey: .trainProjections) ?? true
            trainPrompt = try c.decodeIfPresent(Bool.self, forKey: .trainPrompt) ?? true
            trainer = try TrainerOptions(from: decoder)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(data, forKey: .data); try c.encode(mode, forKey: .mode)
            try c.encode(loraRank, forKey: .loraRank); try c.encode(loraAlpha, forKey: .loraAlpha)
            try c.encode(loraDropout, forKey: .loraDropout); try c.encode(loraTargets, forKey: .loraTargets)
            try c.encode(trainItemTable, forKey: .trainItemTable); try c.encode(trainProjections, forKey: .trainProjections)
            try c.encode(trainPrompt, forKey: .trainPrompt)
            try trainer.encodeFields(to: encoder)
        }

        public static let fields: [OptionField] = [
            OptionField("data", "path", "Prepared dataset directory (slmrec data prepare)."),
            OptionField("mode", "full|lora", default: "full", "Train every tensor, or LoRA adapters on a frozen decoder."),
            OptionField("lora_rank", "int", default: "8", "LoRA rank r."),
            OptionField("lora_alpha", "number", default: "16", "LoRA alpha (scaling alpha/r)."),
            OptionField("lora_dropout", "number", default: "0", "LoRA dropout (only 0 is supported: the engine has no dropout yet)."),
            OptionField("lora_targets", "[string]", default: "[q_proj, v_proj]", "Linear modules that get adapters."),
            OptionField("train_item_table", "bool", default: "false", "Train the item embedding table (E4SRec freezes it)."),
            OptionField("train_projections", "bool", default: "true", "Train input_proj and output_proj."),
            OptionField("train_prompt", "bool", default: "true", "Train the prompt (and suffix) embeddings."),
        ] + TrainerOptions.optionFields

        public var inputPaths: [String] { [data] }

        public func validate() throws {
            let p = trainer.problems()
            if !p.isEmpty { throw passError(p.joined(separator: "; "), fix: "change these options") }
            if mode == .lora {
                if loraRank < 1 { throw passError("lora_rank must be at least 1", fix: "set lora_rank to e.g. 8") }
                if loraTargets.isEmpty { throw passError("lora_targets is empty", fix: "name modules such as [\"q_proj\", \"v_proj\"]") }
                for t in loraTargets where LinearKind(module: t) == nil {
                    throw passError("lora_targets: \"\(t)\" is not a linear module", fix: "use \(LinearKind.allCases.map(\.module).joined(separator: ", "))")
                }
            }
            if loraDropout != 0 {
                throw passError("lora_dropout \(loraDropout) is not supported (the engine has no dropout)", fix: "set lora_dropout to 0")
            }
        }
    }

    public init() {}

    public func check(_ model: ModelSummary, options o: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        if model.isQuantized { throw passError("the model is int8-quantized", fix: "fine-tune the float model, then quantize") }
        if o.trainer.objective == .allPositions && model.config.ellmrec.suffixLength > 0 {
            throw passError("objective all-positions needs a model without a prompt suffix (suffix_length \(model.config.ellmrec.suffixLength))",
                            fix: "set objective: \"last\"")
        }
        return PlannedOutput(checkpoint: model, adapter: o.mode == .lora)
    }

    public func apply(_ context: PassContext, options o: Options) throws -> PassResult {
        let ck = try context.loadInput()
        let model = try ELLMRecModel(checkpoint: ck)
        let ds = try PreparedDataset.load(directory: context.resolve(o.data))
        var trainer = o.trainer
        trainer.seed = o.trainer.seed ^ context.seed
        let lora = o.mode == .lora ? LoRAOptions(rank: o.loraRank, alpha: o.loraAlpha, targets: o.loraTargets) : nil
        let parts = TrainableParts(itemTable: o.trainItemTable, projections: o.trainProjections, prompt: o.trainPrompt)
        let task = try FineTuneTask(model: model, lora: lora, parts: parts, seed: trainer.seed)
        let t = try Trainer(task: task, dataset: ds, options: trainer, stateDirectory: context.workDirectory.appendingPathComponent("trainer"))
        t.label = "\(context.stage): finetune"
        t.quiet = context.quiet
        context.log("finetune (\(o.mode.rawValue)) on \(ds.directory.path): \(t.samples.count) examples, \(t.totalSteps) steps, objective \(trainer.objective.rawValue)")
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
        let adapter = model.lora.map { $0.adapter(dims: model.dims) }
        return PassResult(checkpoint: out, adapter: adapter, metrics: metrics)
    }
}
