import Foundation
import Engine
import ModelFormat
import RecData
import Toolbench
import Training
import TrainingKit

/// `layerwise-kd`: SLMRec's layer-wise knowledge distillation (Xu et al., ICLR 2025, §4).
/// The input checkpoint is the student's initialisation (e.g. `prune-layers keep-first N` of
/// the teacher); the `teacher` reference is the deep model it learns from.
public struct LayerwiseKD: CompressionPass {
    public static let name = "layerwise-kd"
    public static let summary = "Distil a shallow student from a deep teacher: CE + λ1·D_cos + λ2·D_norm + λ3·L_ms over B layer pairs (SLMRec), optionally + λ_kl·τ²·KL of the scores."
    public static let references = [ReferenceSpec("teacher", .checkpoint, required: true, "the deeper model the student learns from")]

    public typealias Align = KDSettings.Align
    public typealias LastBlock = KDSettings.LastBlock
    public typealias TeacherMode = KDSettings.TeacherMode
    public typealias Options = TrainingPassOptions<KDSettings>

    public init() {}

    public func check(_ model: ModelSummary, options o: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        try o.check(model, what: "the student")
        guard let teacher = references["teacher"]?.model else {
            throw passError("no teacher", fix: "bind references: { teacher: \"<stage or input>\" }")
        }
        if teacher.isQuantized { throw passError("the teacher is int8-quantized", fix: "distil from the float teacher") }
        let p = LayerwiseKDTask.problems(teacher: teacher.dims, student: model.dims, settings: o.settings)
        if !p.isEmpty { throw passError(p.joined(separator: "; "), fix: "change the options or the models as each problem says") }
        return PlannedOutput(checkpoint: model, adapter: o.model.mode == .lora)
    }

    public func apply(_ context: PassContext, options o: Options) throws -> PassResult {
        guard context.references["teacher"] != nil else { throw passError("no teacher", fix: "bind references: { teacher: … }") }
        let ck = try context.loadInput()
        let student = try ELLMRecModel(checkpoint: ck)
        // A LoRA-trained teacher (E4SRec's) comes with its adapter merged: the model it was
        // evaluated as, not its frozen base.
        let teacher = try ELLMRecModel(checkpoint: context.loadReference("teacher"))
        let ds = try PreparedDataset.load(directory: context.resolve(o.data))
        let task = try LayerwiseKDTask(student: student, teacher: teacher, settings: o.settings, lora: o.model.lora, parts: o.model.parts, seed: context.seed)
        let s = o.settings
        let pairs = task.layerPairs
        let logit = (s.lambdaKL ?? 0) > 0 ? ", λ_kl \(s.lambdaKL ?? 0) at τ \(s.temperature ?? 1)" : ""
        // The L_ms heads are counted apart from the student's trainable tensors: training aids, not output.
        let heads = task.groups.filter { $0.role == .auxiliary }.reduce(0) { $0 + $1.trainableCount }
        return try TrainingRun.train(task, dataset: ds, context: context, options: o, base: ck.config, pass: Self.name, describe: { _ in
            "layerwise-kd \(teacher.dims.layers) → \(student.dims.layers) layers, blocks \(pairs.map { "t\($0.teacher)↔s\($0.student)" }.joined(separator: " ")), λ = (\(s.lambdaCos), \(s.lambdaNorm), \(s.lambdaMS))\(logit), \(s.teacherMode.rawValue) teacher, seed \(context.seed)"
        }, metrics: [
            "kd_head_parameters": .int(heads),
            "block_pairs": .array(pairs.map { .array([.int($0.teacher), .int($0.student)]) }),
        ])
    }
}
