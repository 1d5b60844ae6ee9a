import CommandKit

enum Format: String, CaseIterable, ExpressibleByArgument { case json, csv, tsv }

struct Root: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slmrec", abstract: "The SLMRec toolbench.",
        discussion: "Compress, evaluate and benchmark small language models for recommendation.",
        version: "1.2.3", subcommands: [DataGroup.self, Eval.self, Kinds.self, Score.self, Embed.self])
}

struct DataGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Dataset tools.", subcommands: [Prepare.self])
}

struct Prepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prepare a dataset split.",
        discussion: "Reads the raw interactions and writes the train/valid/test splits used by every other command.")

    @Option(name: [.customLong("output"), .customShort("o")], help: "Output directory.") var output: String
    @Option(help: "Random seed.") var seed: Int = 42
    @Option(help: "Maximum sequence length.") var maxLength: Int?
    @Option(help: "Output format.") var format: Format = .json
    @Flag(inversion: .prefixedNo, help: "Shuffle the interactions.") var shuffle = true
    @Flag(name: "-v", help: "Verbose logging.") var verbose = false
    @Argument(help: "The raw data file.") var input: String

    mutating func validate() throws {
        if seed < 0 { throw ValidationError("--seed must be non-negative") }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a checkpoint.")
    @Argument(help: "Checkpoint path.") var checkpoint: String
    @Argument(help: "Extra files.") var extra: [String]
    @Option(help: "Metrics to compute.") var metric: [String] = ["ndcg"]
    @Option(help: "Prompt token ids.") var promptTokenIds: [Int] = []
    @Option(name: .customLong("k"), help: "Cut-off.") var cutoff: Int = 10
    /// Plain stored properties are ignored by the parser.
    var validated = false

    mutating func validate() throws {
        if checkpoint == "bad" { throw ValidationError("checkpoint 'bad' is not allowed") }
        validated = true
    }

    mutating func run() throws {
        guard validated else { throw ValidationError("run() before validate()") }
        if checkpoint == "fail" { throw RunFailure() }
    }
}

struct RunFailure: Error, CustomStringConvertible { var description: String { "the model exploded" } }

struct Kinds: ParsableCommand {
    @Option var int: Int = 0
    @Option var double: Double = 0
    @Option var float: Float = 0
    @Option var unsigned: UInt64 = 0
    @Option var string: String = ""
    @Option var bool: Bool = false
    @Option var format: Format?
    @Option var formats: [Format] = []
    @Flag var json = false
    @Flag(inversion: .prefixedEnableDisable) var cache = false
    @Argument var name: String?
}

/// Options two commands share, declared once.
struct ModelArguments: ParsableArguments {
    @Option(help: "Checkpoint directory.") var checkpoint: String
    @Option(help: "LoRA adapter directory.") var adapter: String?
    func validate() throws {
        if adapter == checkpoint { throw ValidationError("--adapter and --checkpoint must differ") }
    }
}

struct Score: ParsableCommand {
    @OptionGroup var model: ModelArguments
    @Option(help: "Users to score.") var users: Int = 10
}

struct Embed: ParsableCommand {
    @OptionGroup var model: ModelArguments
    @Flag(help: "Print JSON.") var json = false
}
