import CommandKit

/// `slmrec`: the toolbench's command line. This target is the composition root: it is the
/// only place that names the compression passes (Registry.swift) and the only code that exits.
struct Slmrec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slmrec",
        abstract: "Make LLM-based sequential recommenders small and fast: distil, prune, quantize, compare.",
        discussion: """
        Checkpoints are Hugging Face LLaMa directories with an `ellmrec` head (see docs/checkpoint-format.md). \
        Start with `slmrec init`, inspect with `slmrec inspect`, run a recipe with `slmrec run`.
        """,
        version: toolVersion,
        subcommands: [Init.self, Inspect.self, Embed.self, Grads.self, Convert.self, ImportGGUF.self, Tokenize.self, Bench.self]
            + dataCommands + sasrecCommands + passCommands + compareCommands)
}

Slmrec.main()
