import Cluster
import CommandKit
import Common
import Foundation

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

// Under mpirun, MPI starts here, on the main thread, before any command runs (a plain run
// never touches MPI). Rank 0 alone prints: the others' standard output goes nowhere, their
// errors still reach standard error with their rank named (docs/scale-out.md).
let world = Cluster.world
if let failure = Cluster.initialisationFailure {
    FileHandle.standardError.write(Data("slmrec: \(failure)\n".utf8))
    exit(1)
}
if !world.isLeader {
    let null = open("/dev/null", O_WRONLY); if null >= 0 { dup2(null, 1); close(null) }
    LogOutput.follower = true
}
let status = Slmrec.runAsRoot(Array(CommandLine.arguments.dropFirst()))
world.finish(status: status)
exit(status)
