import Foundation
import Common
import ModelFormat

// The plugin host's contract. A pass lives in its own target under Plugins/<Name>/, depends
// on this module (never on another pass), and is named exactly once in code: the literal list
// in the CLI's Registry.swift. Shape borrowed from swift-log: the core defines the protocol
// and its implementation requirements; a shared test kit (TestKit.PassConformance) checks them.

/// A compression pass.
///
/// Implementation requirements (checked by `PassConformance` where they can be):
/// - `name` is stable kebab-case (`prune-layers`); recipes and `slmrec apply` use it.
/// - `summary` is one line (no newline), shown by `slmrec passes`.
/// - `Options` decodes strictly through `StrictDecoding` (the host does this): every field is
///   read with `decode`/`decodeIfPresent` under the name listed in `Options.fields`, and
///   `validate()` rejects values that are out of range or do nothing in combination.
/// - `check` is cheap (no tensor data, no training): it validates preconditions against the
///   *planned* model (the host runs it for every stage before any work, on the shapes the
///   previous stages will produce) and returns what the stage will produce.
/// - `apply` never modifies its inputs; it returns the new checkpoint and/or adapter and its
///   metrics, and the host writes them to a temporary directory renamed into place. Given the
///   same inputs, options and `context.seed`, it produces the same result.
/// - Errors are `ToolbenchError`s (or ModelFormat/Engine errors) saying what to do.
public protocol CompressionPass: Sendable {
    associatedtype Options: PassOptions
    static var name: String { get }
    static var summary: String { get }
    /// Named inputs besides the main checkpoint (a distillation `teacher`, an `adapter`).
    static var references: [ReferenceSpec] { get }
    init()
    func check(_ model: ModelSummary, options: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput
    func apply(_ context: PassContext, options: Options) throws -> PassResult
}

extension CompressionPass {
    public static var references: [ReferenceSpec] { [] }
}

/// A pass's options: Codable (decoded strictly; encoded for the effective recipe, so every
/// default appears in `recipe.effective.json`).
public protocol PassOptions: Codable, Sendable {
    /// One entry per option, in the order `slmrec passes` prints them.
    static var fields: [OptionField] { get }
    /// Value checks that need no model (ranges, combinations). Throw `ToolbenchError`.
    func validate() throws
    /// Option values naming files or directories whose content is an input of the pass
    /// (a dataset, an adapter): hashed into the run's provenance and the resume key.
    var inputPaths: [String] { get }
    /// Keys people put here that belong elsewhere, with where they go (said instead of
    /// "unknown option").
    static var misplacedKeys: [String: String] { get }
}

extension PassOptions {
    public func validate() throws {}
    public var inputPaths: [String] { [] }
    public static var misplacedKeys: [String: String] { [:] }
}

/// One option as `slmrec passes` lists it.
public struct OptionField: Sendable, Equatable {
    public var name: String
    public var type: String
    /// `nil`: required.
    public var defaultValue: String?
    public var help: String

    public init(_ name: String, _ type: String, default defaultValue: String? = nil, _ help: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.help = help
    }
}

public enum ArtifactKind: String, Sendable, Codable {
    /// A checkpoint directory (config.json + model.safetensors).
    case checkpoint
    /// A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors).
    case adapter
}

/// A named input a pass reads besides its main checkpoint, bound in a recipe stage's
/// `references` object (`references: { teacher: "base" }`).
public struct ReferenceSpec: Sendable, Equatable {
    public var name: String
    public var kind: ArtifactKind
    public var required: Bool
    public var help: String

    public init(_ name: String, _ kind: ArtifactKind, required: Bool, _ help: String) {
        self.name = name
        self.kind = kind
        self.required = required
        self.help = help
    }
}

/// What `check` sees of a bound reference at plan time.
public struct PlannedArtifact: Sendable {
    public var kind: ArtifactKind
    /// The planned model for a checkpoint reference.
    public var model: ModelSummary?
    /// The directory, when it exists already (an external input); nil for a stage's future output.
    public var existingPath: URL?

    public init(kind: ArtifactKind, model: ModelSummary?, existingPath: URL?) {
        self.kind = kind
        self.model = model
        self.existingPath = existingPath
    }
}

/// What a stage will produce, as `check` plans it.
public struct PlannedOutput: Sendable {
    public var checkpoint: ModelSummary?
    public var adapter: Bool

    public init(checkpoint: ModelSummary?, adapter: Bool = false) {
        self.checkpoint = checkpoint
        self.adapter = adapter
    }
}

/// The cheap view of a checkpoint that planning works on: its config and which optional
/// tensors exist (read from config.json and the safetensors header, no tensor data).
public struct ModelSummary: Sendable, Equatable {
    public var config: ModelConfig
    public var inputProjBias: Bool
    public var outputProjBias: Bool

    public init(config: ModelConfig, inputProjBias: Bool = true, outputProjBias: Bool = true) {
        self.config = config
        self.inputProjBias = inputProjBias
        self.outputProjBias = outputProjBias
    }

    public init(_ ck: Checkpoint) {
        self.init(config: ck.config, inputProjBias: ck.inputProjBias, outputProjBias: ck.outputProjBias)
    }

    public var numLayers: Int { config.numLayers }
    public var isQuantized: Bool { config.quantization != nil }

    public static func load(directory: URL) throws -> ModelSummary {
        let config = try ModelConfig.load(from: directory.appendingPathComponent(Checkpoint.configFile))
        let store = try TensorStore.open(directory: directory)
        return ModelSummary(config: config, inputProjBias: store.info(TensorNames.inputProjBias) != nil,
                            outputProjBias: store.info(TensorNames.outputProjBias) != nil)
    }
}

/// Everything `apply` receives besides its options.
public struct PassContext: Sendable {
    /// The main input checkpoint directory (read only).
    public var input: URL
    /// Bound references by name (`teacher`, `adapter`): directories, read only.
    public var references: [String: URL]
    /// The adapter the input's stage trained alongside its checkpoint (a LoRA `finetune`),
    /// nil when it has none. `loadInput()` folds it in: a stage hands on one model, the one
    /// its evaluation measured, never its frozen base without the adapter.
    public var inputAdapter: URL?
    /// The same for checkpoint references (a LoRA-trained teacher), by reference name.
    public var referenceAdapters: [String: URL]
    /// A scratch directory inside the stage's temporary directory (intermediate files,
    /// training snapshots); removed when the stage completes.
    public var workDirectory: URL
    /// Relative paths in options resolve against this (the current directory).
    public var baseDirectory: URL
    /// The stage's seed: the stage's own `seed`, else derived from the recipe's seed and the
    /// stage's name (`StageSeed.derive`); `slmrec apply --seed` as given. Every random choice
    /// of the pass draws from it, and the host records it in the stage's metrics.json.
    public var seed: UInt64
    /// "prune-layers" for `slmrec apply`, the stage name in a recipe.
    public var stage: String
    /// Log lines go to the stage's log file and to standard error.
    public var log: @Sendable (String) -> Void
    /// Quiet progress bars (tests).
    public var quiet: Bool
    /// `slmrec run --resume`: a training pass continues from the state in `workDirectory`.
    public var resume: Bool

    public init(input: URL, references: [String: URL] = [:], inputAdapter: URL? = nil, referenceAdapters: [String: URL] = [:],
                workDirectory: URL, baseDirectory: URL? = nil,
                seed: UInt64 = 0, stage: String, log: @escaping @Sendable (String) -> Void = { logLine($0) }, quiet: Bool = false,
                resume: Bool = false) {
        self.input = input
        self.references = references
        self.inputAdapter = inputAdapter
        self.referenceAdapters = referenceAdapters
        self.workDirectory = workDirectory
        self.baseDirectory = baseDirectory ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        self.seed = seed
        self.stage = stage
        self.log = log
        self.quiet = quiet
        self.resume = resume
    }

    /// An option's path, relative to `baseDirectory` unless absolute.
    public func resolve(_ path: String) -> URL { resolvePath(path, relativeTo: baseDirectory) }

    /// The input checkpoint, with its stage's adapter merged when it has one.
    public func loadInput() throws -> Checkpoint { try load(input, adapter: inputAdapter) }

    /// A checkpoint reference (`teacher`), with its stage's adapter merged when it has one.
    public func loadReference(_ name: String) throws -> Checkpoint {
        guard let dir = references[name] else {
            throw ToolbenchError("stage \(stage)", problem: "no reference named \(name)", fix: "bind references: { \(name): \"<stage or input>\" }")
        }
        return try load(dir, adapter: referenceAdapters[name])
    }

    private func load(_ dir: URL, adapter: URL?) throws -> Checkpoint {
        let ck = try Checkpoint.load(directory: dir)
        guard let adapter else { return ck }
        let a = try LoRAAdapter.load(directory: adapter)
        try a.validate(against: ck.config, source: adapter.path)
        log("merged the adapter \(adapter.path) (r \(a.r), alpha \(a.alpha), \(a.weights.count) modules) into \(dir.path)")
        return try ck.merging(a, source: adapter.path)
    }

    /// A progress reporter for long work (training steps, calibration batches).
    public func progress(_ label: String, total: Int, unit: String = "it") -> ProgressReporter {
        ProgressReporter(label: "\(stage): \(label)", total: total, unit: unit, quiet: quiet)
    }
}

/// What `apply` returns. The host writes `checkpoint` to `<stage>/checkpoint`, `adapter` to
/// `<stage>/adapter` and `metrics` to `<stage>/metrics.json`.
public struct PassResult: Sendable {
    public var checkpoint: Checkpoint?
    public var adapter: LoRAAdapter?
    public var metrics: [String: JSONValue]

    public init(checkpoint: Checkpoint?, adapter: LoRAAdapter? = nil, metrics: [String: JSONValue] = [:]) {
        self.checkpoint = checkpoint
        self.adapter = adapter
        self.metrics = metrics
    }
}
