import Foundation
import Common
import Engine
import ModelFormat
import Toolbench
import Training

// The options every training pass shares, declared once each (OptionTable): the dataset, what
// trains (TrainableOptions) and the trainer's (TrainerOptions), plus the pass's own settings.
// `finetune` is `TrainingPassOptions<NoSettings>`, `layerwise-kd` is
// `TrainingPassOptions<KDSettings>`; a new training pass declares only its settings.

/// A training pass's own settings (KD's blocks and λs), flattened into its options object.
public protocol TrainingSettings: Sendable, Equatable {
    init()
    static var table: OptionTable<Self> { get }
    /// Value problems that need no model, phrased as what to change (`model`: what trains).
    func problems(with model: TrainableOptions) -> [String]
    /// Whether the pass's loss reads the full (rows, N+1) scores (KD's logit term), which
    /// only softmax full forms.
    var readsEveryScore: Bool { get }
}

extension TrainingSettings {
    public func problems(with model: TrainableOptions) -> [String] { [] }
    public var readsEveryScore: Bool { false }
}

/// No settings of its own (`finetune`).
public struct NoSettings: TrainingSettings {
    public init() {}
    public static var table: OptionTable<NoSettings> { OptionTable([]) }
}

/// What trains in a training pass's model: full or LoRA, and which head/prompt parts.
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

    public static let table = OptionTable<TrainableOptions>([
        .option("mode", \.mode, "Train every tensor, or LoRA adapters on a frozen decoder."),
        .option("lora_rank", \.loraRank, "LoRA rank r."),
        .option("lora_alpha", \.loraAlpha, "LoRA alpha (scaling alpha/r)."),
        .option("lora_targets", \.loraTargets, "Linear modules that get adapters."),
        .option("lora_dropout", \.loraDropout, "Dropout on the adapter input during training (PEFT's lora_dropout)."),
        .option("train_item_table", \.trainItemTable, "Train the item embedding table (E4SRec freezes it)."),
        .option("train_projections", \.trainProjections, "Train input_proj and output_proj."),
        .option("train_prompt", \.trainPrompt, "Train the prompt (and suffix) embeddings."),
    ])

    public func problems() -> [String] {
        var p: [String] = []
        if !(loraDropout >= 0 && loraDropout < 1) { p.append("lora_dropout \(loraDropout) is outside [0, 1): use e.g. 0.05") }
        if mode == .full && loraDropout != 0 {
            p.append("lora_dropout is set but mode is full (there is no adapter to drop into): set mode: \"lora\" or remove lora_dropout")
        }
        guard mode == .lora else { return p }
        if loraRank < 1 { p.append("lora_rank must be at least 1 (e.g. 8)") }
        if loraTargets.isEmpty { p.append("lora_targets is empty: name modules such as [\"q_proj\", \"v_proj\"]") }
        for t in loraTargets where LinearKind(module: t) == nil {
            p.append("lora_targets: \"\(t)\" is not a linear module (use \(LinearKind.allCases.map(\.module).joined(separator: ", ")))")
        }
        return p
    }

    public var lora: LoRAOptions? { mode == .lora ? LoRAOptions(rank: loraRank, alpha: loraAlpha, targets: loraTargets, dropout: loraDropout) : nil }
    public var parts: TrainableParts { TrainableParts(itemTable: trainItemTable, projections: trainProjections, prompt: trainPrompt) }
}

extension Objective: OptionChoice {}
extension ItemSoftmax: OptionEnum {}
extension ItemSampler.Distribution: OptionEnum {}

extension TrainerOptions {
    /// The trainer's options as a pass exposes them. `seed` is not one: every stage trains
    /// with the seed the host derived for it (`PassContext.seed`, docs/recipes.md#seeds).
    public static let table = OptionTable<TrainerOptions>([
        .option("lr", \.lr, "Peak learning rate (AdamW)."),
        .option("warmup_steps", \.warmupSteps, "Linear warmup steps (0: use warmup_fraction)."),
        .option("warmup_fraction", \.warmupFraction, "Warmup as a fraction of all steps."),
        .option("min_lr_ratio", \.minLRRatio, "Cosine decay floor, as a fraction of lr."),
        .option("weight_decay", \.weightDecay, "AdamW weight decay (not on norms and biases)."),
        .option("beta1", \.beta1, "AdamW β1."),
        .option("beta2", \.beta2, "AdamW β2."),
        .option("eps", \.eps, "AdamW ε."),
        .option("grad_clip", \.gradClip, "Clip the global gradient L2 norm (0: off)."),
        .option("batch_size", \.batchSize, "Examples per step (length-grouped, shuffled buckets)."),
        .option("epochs", \.epochs, "Epoch budget (fractions allowed)."),
        .option("max_steps", \.maxSteps, "Step budget; overrides epochs when > 0."),
        .option("objective", \.objective, "Score the last position (SLMRec) or every item position (= every prefix)."),
        .option("prefix_augmentation", \.prefixAugmentation, "With objective last: every prefix is an example (E4SRec)."),
        .option("valid_every", \.validEvery, "Validate every N steps (0: every epoch)."),
        .option("valid_users", \.validUsers, "Validate on a fixed subset of users (0: all)."),
        .option("valid_candidates", \.validCandidates, type: "full|sampled", "Validation ranking protocol."),
        .option("metric", \.metric, "Selection metric (MRR, NDCG@10, HR@10, …)."),
        .option("patience", \.patience, "Stop after N validations without improvement (0: never)."),
        .option("checkpoint_every", \.checkpointEvery, "Resumable checkpoint every N steps (0: at validations)."),
        .option("softmax", \.softmaxChoice, "Loss over the items: full (exact), streamed (exact, by item blocks) or sampled (log-Q)."),
        .option("sampled_negatives", \.sampledNegativesChoice, "Shared negatives per step (softmax sampled; default 1024)."),
        .option("sampler", \.samplerChoice, "Negatives' distribution (softmax sampled): uniform (default) or popularity."),
    ])
}

/// A training pass's options: `data`, the pass's settings, what trains and the trainer's,
/// side by side in one object. One decode, one encode, one listing, all from the tables.
public struct TrainingPassOptions<Settings: TrainingSettings>: PassOptions, Equatable {
    public var data = ""
    public var settings = Settings()
    public var model = TrainableOptions()
    public var trainer = TrainerOptions()

    public init(data: String) { self.data = data }

    static var table: OptionTable<Self> {
        OptionTable([.required("data", \.data, type: "path", "Prepared dataset directory (slmrec data prepare).")]
            + OptionTable<Self>.part(\.settings, Settings.table)
            + OptionTable<Self>.part(\.model, TrainableOptions.table)
            + OptionTable<Self>.part(\.trainer, TrainerOptions.table))
    }

    public init(from decoder: Decoder) throws {
        try Self.table.decode(&self, from: decoder)
    }

    public func encode(to encoder: Encoder) throws { try Self.table.encode(self, to: encoder) }

    public static var fields: [OptionField] { table.fields(defaults: Self(data: "")) }

    public static var misplacedKeys: [String: String] {
        ["seed": "a pass trains with its stage's seed: `seed:` on the recipe stage (or the recipe's seed, from which each stage's is derived), `--seed` for slmrec apply"]
    }

    public var inputPaths: [String] { [data] }

    public func validate() throws {
        var p = trainer.problems() + settings.problems(with: model) + model.problems()
        if settings.readsEveryScore && trainer.softmax != .full {
            p.append("softmax \"\(trainer.softmax.rawValue)\" forms no (rows, items) score matrix, which lambda_kl's logit term reads: set softmax \"full\", or drop lambda_kl")
        }
        if !p.isEmpty { throw passError(p.joined(separator: "; "), fix: "change these options") }
    }

    /// The plan-time rule check on the planned model (the same check `Trainer.init` runs).
    public func check(_ model: ModelSummary, what: String = "the model") throws {
        if model.isQuantized { throw passError("\(what) is int8-quantized", fix: "train the float model, then quantize") }
        let p = trainer.problems(for: model.dims)
        if !p.isEmpty { throw passError(p.joined(separator: "; "), fix: "change these options") }
    }
}

extension ModelSummary {
    /// The engine's dims of the planned model (no tensor data).
    public var dims: ModelDims { ModelDims(config: config, inputProjBias: inputProjBias, outputProjBias: outputProjBias) }
}
