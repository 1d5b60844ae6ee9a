import Foundation
import Common
import Engine
import ModelFormat
import RecData
import Toolbench
import Training

/// `layerwise-kd`: SLMRec's layer-wise knowledge distillation (Xu et al., ICLR 2025, §4).
/// The input checkpoint is the student's initialisation (e.g. `prune-layers keep-first N` of
/// the teacher); the `teacher` reference is the deep model it learns from.
public struct LayerwiseKD: CompressionPass {
    public static let name = "layerwise-kd"
    public static let summary = "Distil a shallow student from a deep teacher: CE + λ1·D_cos + λ2·D_norm + λ3·L_ms over B blocks (SLMRec)."
    public static let references = [ReferenceSpec("teacher", .checkpoint, required: true, "the deeper model the student learns from")]

    public typealias Align = KDSettings.Align
    public typealias LastBlock = KDSettings.LastBlock
    public typealias TeacherMode = KDSettings.TeacherMode

    public struct Options: PassOptions {
        public var data: String
        public var settings = KDSettings()
        public var model = TrainableOptions()
        public var trainer = TrainerOptions()

        enum CodingKeys: String, CodingKey { case data }

        public init(data: String) { self.data = data }

        public init(from decoder: Decoder) throws {
            data = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .data)
            settings = try KDSettings(from: decoder)
            model = try TrainableOptions(from: decoder)
            trainer = try TrainerOptions(from: decoder)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(data, forKey: .data)
            try settings.encode(to: encoder)
            try model.encodeFields(to: encoder)
            try trainer.encodeFields(to: encoder)
        }

        public static let fields: [OptionField] = [
            OptionField("data", "path", "Prepared dataset directory."),
            OptionField("blocks", "int", default: "4", "B: teacher layer k·M/B pairs with student layer k·N/B, k = 1…B."),
            OptionField("lambda_cos", "number", default: "1", "λ1, weight of D_cos (mean over blocks of 1 − cosine)."),
            OptionField("lambda_norm", "number", default: "0.01", "λ2, weight of D_norm (mean over blocks of ‖h_t − h_s‖²)."),
            OptionField("lambda_ms", "number", default: "0.1", "λ3, weight of L_ms (mean CE of the B−1 intermediate heads)."),
            OptionField("align", "last|all", default: "last", "Align the last position (the paper) or every scored position."),
            OptionField("last_block", "pre-norm|post-norm", default: "pre-norm", "Compare the last block before or after model.norm."),
            OptionField("teacher_mode", "offline|online", default: "offline", "Frozen teacher, or trained jointly (the paper's RQ4)."),
            OptionField("cache_teacher", "bool", default: "true offline", "Cache the frozen teacher's states per example after their first use (offline only)."),
        ] + TrainableOptions.optionFields + TrainerOptions.optionFields

        public var inputPaths: [String] { [data] }

        public func validate() throws {
            let p = trainer.problems()
            if !p.isEmpty { throw passError(p.joined(separator: "; "), fix: "change these options") }
            if settings.blocks < 1 { throw passError("blocks must be at least 1", fix: "set blocks to a divisor of both depths") }
            for (n, v) in [("lambda_cos", settings.lambdaCos), ("lambda_norm", settings.lambdaNorm), ("lambda_ms", settings.lambdaMS)] where v < 0 || !v.isFinite {
                throw passError("\(n) must be a finite number >= 0 (got \(v))", fix: "set \(n) to e.g. 0.1")
            }
            try model.validate()
            if settings.teacherMode == .online && settings.cacheTeacher == true {
                throw passError("cache_teacher is true but teacher_mode is online (a teacher that trains cannot be cached)", fix: "drop cache_teacher, or use teacher_mode offline")
            }
            if model.mode == .lora && settings.teacherMode == .online {
                throw passError("online distillation with a LoRA student is not supported", fix: "use mode full, or teacher_mode offline")
            }
        }
    }

    public init() {}

    public func check(_ model: ModelSummary, options o: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        if model.isQuantized { throw passError("the student is int8-quantized", fix: "distil into the float model, then quantize") }
        guard let teacher = references["teacher"]?.model else {
            throw passError("no teacher", fix: "bind references: { teacher: \"<stage or input>\" }")
        }
        if teacher.isQuantized { throw passError("the teacher is int8-quantized", fix: "distil from the float teacher") }
        let t = ModelDims(config: teacher.config, inputProjBias: teacher.inputProjBias, outputProjBias: teacher.outputProjBias)
        let s = ModelDims(config: model.config, inputProjBias: model.inputProjBias, outputProjBias: model.outputProjBias)
        let p = LayerwiseKDTask.problems(teacher: t, student: s, settings: o.settings)
        if !p.isEmpty { throw passError(p.joined(separator: "; "), fix: "choose blocks that divide both depths and a student of the teacher's width") }
        if o.trainer.objective == .allPositions && s.suffixLength > 0 {
            throw passError("objective all-positions needs a model without a prompt suffix", fix: "set objective: \"last\"")
        }
        return PlannedOutput(checkpoint: model, adapter: o.model.mode == .lora)
    }

    public func apply(_ context: PassContext, options o: Options) throws -> PassResult {
        guard let teacherDir = context.references["teacher"] else { throw passError("no teacher", fix: "bind references: { teacher: … }") }
        let ck = try context.loadInput()
        let student = try ELLMRecModel(checkpoint: ck)
        let teacher = try ELLMRecModel.load(directory: teacherDir)
        let ds = try PreparedDataset.load(directory: context.resolve(o.data))
        var trainer = o.trainer
        trainer.seed = o.trainer.seed ^ context.seed
        let task = try LayerwiseKDTask(student: student, teacher: teacher, settings: o.settings, lora: o.model.lora, parts: o.model.parts, seed: trainer.seed)
        let t = try Trainer(task: task, dataset: ds, options: trainer, stateDirectory: context.workDirectory.appendingPathComponent("trainer"))
        t.label = "\(context.stage): layerwise-kd"
        t.quiet = context.quiet
        let s = o.settings
        let pairs = LayerwiseKDTask.pairs(teacherLayers: teacher.dims.layers, studentLayers: student.dims.layers, blocks: s.blocks)
        context.log("layerwise-kd \(teacher.dims.layers) → \(student.dims.layers) layers, blocks \(pairs.map { "t\($0.teacher)↔s\($0.student)" }.joined(separator: " ")), λ = (\(s.lambdaCos), \(s.lambdaNorm), \(s.lambdaMS)), \(s.teacherMode.rawValue) teacher")
        let r = try t.run(resume: context.resume)
        // The student's trainable tensors; the L_ms heads are counted apart (training aids, not output).
        var trainable = 0, heads = 0
        for g in task.groups where g.name != "teacher" {
            for e in g.params.layout.entries where g.trainable.contains(e.name) {
                if g.name == "kd-heads" { heads += e.count } else { trainable += e.count }
            }
        }
        var metrics = r.json.mapValues(JSONValue.any)
        metrics["trainable_parameters"] = .int(trainable)
        metrics["kd_head_parameters"] = .int(heads)
        metrics["examples"] = .int(t.samples.count)
        metrics["block_pairs"] = .array(pairs.map { .array([.int($0.teacher), .int($0.student)]) })
        metrics["history"] = .array(r.history.map(JSONValue.any))
        // Mean of each loss term over the run, from the trainer's log.
        metrics["loss_terms"] = .object(Self.meanTerms(t.stateDirectory.appendingPathComponent("log.jsonl")).mapValues { .number($0) })
        let out = student.checkpoint(base: ck.config)
        return PassResult(checkpoint: out, adapter: student.lora.map { $0.adapter(dims: student.dims, dropout: Double($0.dropout)) }, metrics: metrics)
    }

    static func meanTerms(_ url: URL) -> [String: Double] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [:] }
        var sums: [String: Double] = [:], n = 0
        for line in text.split(separator: "\n") {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], o["loss"] != nil else { continue }
            n += 1
            for k in ["loss", "ce", "d_cos", "d_norm", "l_ms", "teacher_ce"] { if let v = o[k] as? Double { sums[k, default: 0] += v } }
        }
        return sums.mapValues { $0 / Double(max(n, 1)) }
    }
}
