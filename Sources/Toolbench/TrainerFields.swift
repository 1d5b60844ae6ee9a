import Training
import Engine

extension TrainerOptions {
    /// The shared trainer's options as `slmrec passes` lists them (every training pass
    /// appends these to its own).
    public static let optionFields: [OptionField] = {
        let d = TrainerOptions()
        return [
            OptionField("lr", "number", default: "\(d.lr)", "Peak learning rate (AdamW)."),
            OptionField("warmup_steps", "int", default: "\(d.warmupSteps)", "Linear warmup steps (0: use warmup_fraction)."),
            OptionField("warmup_fraction", "number", default: "\(d.warmupFraction)", "Warmup as a fraction of all steps."),
            OptionField("min_lr_ratio", "number", default: "\(d.minLRRatio)", "Cosine decay floor, as a fraction of lr."),
            OptionField("weight_decay", "number", default: "\(d.weightDecay)", "AdamW weight decay (not on norms and biases)."),
            OptionField("beta1", "number", default: "\(d.beta1)", "AdamW β1."),
            OptionField("beta2", "number", default: "\(d.beta2)", "AdamW β2."),
            OptionField("eps", "number", default: "\(d.eps)", "AdamW ε."),
            OptionField("grad_clip", "number", default: "\(d.gradClip)", "Clip the global gradient L2 norm (0: off)."),
            OptionField("batch_size", "int", default: "\(d.batchSize)", "Examples per step (length-grouped, shuffled buckets)."),
            OptionField("epochs", "number", default: "\(d.epochs)", "Epoch budget (fractions allowed)."),
            OptionField("max_steps", "int", default: "\(d.maxSteps)", "Step budget; overrides epochs when > 0."),
            OptionField("objective", "last|all-positions", default: d.objective.rawValue, "Score the last position (SLMRec) or every item position (= every prefix)."),
            OptionField("prefix_augmentation", "bool", default: "\(d.prefixAugmentation)", "With objective last: every prefix is an example (E4SRec)."),
            OptionField("valid_every", "int", default: "\(d.validEvery)", "Validate every N steps (0: every epoch)."),
            OptionField("valid_users", "int", default: "\(d.validUsers)", "Validate on a fixed subset of users (0: all)."),
            OptionField("valid_candidates", "full|sampled", default: d.validCandidates.rawValue, "Validation ranking protocol."),
            OptionField("metric", "string", default: d.metric, "Selection metric (MRR, NDCG@10, HR@10, …)."),
            OptionField("patience", "int", default: "\(d.patience)", "Stop after N validations without improvement (0: never)."),
            OptionField("checkpoint_every", "int", default: "\(d.checkpointEvery)", "Resumable checkpoint every N steps (0: at validations)."),
            OptionField("seed", "int", default: "\(d.seed)", "Seed for data order and initialisation."),
        ]
    }()
}

import ModelFormat
import Foundation

/// What trains in a training pass's model — full or LoRA, and which head/prompt parts —
/// decoded flat from the pass options (shared by `finetune` and `layerwise-kd`).
public struct TrainableOptions: Sendable, Equatable {
    public enum Mode: String, OptionEnum { case full, lora }
    public var mode: Mode = .full
    public var loraRank = 8
    public var loraAlpha: Float = 16
    public var loraTargets = ["q_proj", "v_proj"]
    public var loraDropout: Float = 0
    public var trainItemTable = false
    public var trainProjections = true
    public var trainPrompt = true

    public init() {}

    enum CodingKeys: String, CodingKey {
        case mode, loraRank = "lora_rank", loraAlpha = "lora_alpha", loraTargets = "lora_targets", loraDropout = "lora_dropout"
        case trainItemTable = "train_item_table", trainProjections = "train_projections", trainPrompt = "train_prompt"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainableOptions()
        mode = try c.decodeIfPresent(Mode.self, forKey: .mode) ?? d.mode
        loraRank = try c.decodeIfPresent(Int.self, forKey: .loraRank) ?? d.loraRank
        loraAlpha = try c.decodeIfPresent(Float.self, forKey: .loraAlpha) ?? d.loraAlpha
        loraTargets = try c.decodeIfPresent([String].self, forKey: .loraTargets) ?? d.loraTargets
        loraDropout = try c.decodeIfPresent(Float.self, forKey: .loraDropout) ?? d.loraDropout
        trainItemTable = try c.decodeIfPresent(Bool.self, forKey: .trainItemTable) ?? d.trainItemTable
        trainProjections = try c.decodeIfPresent(Bool.self, forKey: .trainProjections) ?? d.trainProjections
        trainPrompt = try c.decodeIfPresent(Bool.self, forKey: .trainPrompt) ?? d.trainPrompt
    }

    public func encodeFields(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mode, forKey: .mode); try c.encode(loraRank, forKey: .loraRank); try c.encode(loraAlpha, forKey: .loraAlpha)
        try c.encode(loraTargets, forKey: .loraTargets); try c.encode(loraDropout, forKey: .loraDropout)
        try c.encode(trainItemTable, forKey: .trainItemTable)
        try c.encode(trainProjections, forKey: .trainProjections); try c.encode(trainPrompt, forKey: .trainPrompt)
    }

    public static let optionFields: [OptionField] = [
        OptionField("mode", "full|lora", default: "full", "Train every tensor, or LoRA adapters on a frozen decoder."),
        OptionField("lora_rank", "int", default: "8", "LoRA rank r."),
        OptionField("lora_alpha", "number", default: "16", "LoRA alpha (scaling alpha/r)."),
        OptionField("lora_targets", "[string]", default: "[q_proj, v_proj]", "Linear modules that get adapters."),
        OptionField("lora_dropout", "number", default: "0", "Dropout on the adapter input during training (PEFT's lora_dropout)."),
        OptionField("train_item_table", "bool", default: "false", "Train the item embedding table (E4SRec freezes it)."),
        OptionField("train_projections", "bool", default: "true", "Train input_proj and output_proj."),
        OptionField("train_prompt", "bool", default: "true", "Train the prompt (and suffix) embeddings."),
    ]

    public func validate() throws {
        if !(loraDropout >= 0 && loraDropout < 1) {
            throw passError("lora_dropout \(loraDropout) is outside [0, 1)", fix: "use e.g. 0.05")
        }
        if mode == .full && loraDropout != 0 {
            throw passError("lora_dropout is set but mode is full (there is no adapter to drop into)", fix: "set mode: \"lora\" or remove lora_dropout")
        }
        guard mode == .lora else { return }
        if loraRank < 1 { throw passError("lora_rank must be at least 1", fix: "set lora_rank to e.g. 8") }
        if loraTargets.isEmpty { throw passError("lora_targets is empty", fix: "name modules such as [\"q_proj\", \"v_proj\"]") }
        for t in loraTargets where LinearKind(module: t) == nil {
            throw passError("lora_targets: \"\(t)\" is not a linear module", fix: "use \(LinearKind.allCases.map(\.module).joined(separator: ", "))")
        }
    }

    public var lora: LoRAOptions? { mode == .lora ? LoRAOptions(rank: loraRank, alpha: loraAlpha, targets: loraTargets, dropout: loraDropout) : nil }
    public var parts: TrainableParts { TrainableParts(itemTable: trainItemTable, projections: trainProjections, prompt: trainPrompt) }
}
