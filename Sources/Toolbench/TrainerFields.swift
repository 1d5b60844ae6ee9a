import Training

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

extension JSONValue {
    /// A JSONSerialization-style value (numbers, strings, arrays, dictionaries) as JSONValue.
    public static func any(_ v: Any) -> JSONValue {
        switch v {
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(i)
        case let d as Double: return .number(d)
        case let f as Float: return .number(Double(f))
        case let s as String: return .string(s)
        case let a as [Any]: return .array(a.map(any))
        case let o as [String: Any]: return .object(o.mapValues(any))
        case let opt as Optional<Any>: return opt.map(any) ?? .null
        default: return .string("\(v)")
        }
    }
}
