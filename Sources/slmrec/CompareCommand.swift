import Foundation
import Common
import CommandKit
import Toolbench
import Reports

/// `slmrec compare` (the side-by-side report; `slmrec run` writes one at the end too).
let compareCommands: [any ParsableCommand.Type] = [Compare.self]

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the models of a recipe run: quality (both protocols, % of the teacher), size, training time, measured speed.",
        discussion: """
        Give a run directory (its `compare` list, in order), stage directories, checkpoints or a SASRec baseline \
        directory (slmrec sasrec --output DIR). Writes report.md (paste-ready tables), report.csv, report.json, \
        report.svg (NDCG@10 against ms per user, Pareto front) and, when the models differ in depth, report-depth.svg \
        (NDCG@10 against decoder layers) into --output (default <first dir>/report) and prints the Markdown. Quality comes from the run's metrics.json files; throughput and latency are measured now, every \
        model on the same inputs. Models evaluated on another dataset, split or user count are marked not comparable. \
        See docs/reports.md.
        """)

    @Argument(help: "Run directories (runs/<recipe>), stage directories, checkpoints or SASRec baseline directories.", valueName: "dir")
    var directories: [String] = []
    @Option(help: "Report directory (default: <first directory>/report).") var output: String?
    @Option(help: "The model percentages are relative to (default: the first one, the teacher).") var baseline: String?
    @Option(help: "Users per batch for the throughput column.") var usersPerBatch: Int = 512
    @Option(help: "Batch-1 calls behind the latency percentiles.") var latencyUsers: Int = 200
    @Option(help: "Seconds of throughput timing per model.") var throughputSeconds: Double = 2
    @Flag(help: "Do not time the models (cost columns show \"-\").") var skipTiming = false
    @Flag(help: "Do not print the Markdown report.") var quiet = false
    @Flag(help: "Replace an existing report at an explicit --output (the default <run>/report is the run's own and is rewritten).") var force = false

    func validate() throws {
        if directories.isEmpty { throw ValidationError("give at least one run or stage directory, e.g. slmrec compare runs/quickstart") }
        if usersPerBatch < 1 { throw ValidationError("--users-per-batch must be at least 1 (got \(usersPerBatch))") }
        if latencyUsers < 1 { throw ValidationError("--latency-users must be at least 1 (got \(latencyUsers))") }
        if !(throughputSeconds > 0) { throw ValidationError("--throughput-seconds must be positive (got \(throughputSeconds))") }
    }

    func run() throws {
        #if DEBUG
        if !skipTiming { logLine("warning: this is a debug build; its timings are not representative (use .build/release/slmrec)") }
        #endif
        var o = CompareOptions(baseline: baseline, timing: TimingOptions(batch: usersPerBatch, throughputSeconds: throughputSeconds, latencyCalls: latencyUsers),
                               skipTiming: skipTiming)
        o.log = { logLine($0) }
        let first = fileURL(directories[0])
        let own = first.appendingPathComponent("report")
        let out = output.map(fileURL) ?? own
        // A run directory's own report/ belongs to the run and is regenerated freely (as
        // `slmrec run` does), holding the run's lock. Any other output follows the rule: never
        // inside a compared directory (a checkpoint, a stage, a SASRec output are inputs), and
        // an existing report is replaced only with --force.
        let runsOwn = OutputGuard.realPath(out) == OutputGuard.realPath(own) && RecipeRunner.runDirectoryKind.mismatch(at: first) == nil
        if !runsOwn {
            if output == nil {
                throw ValidationError("\(directories[0]) is not a run directory: its report would be written inside it; give --output REPORT_DIR")
            }
            try OutputGuard.check(out, kind: ComparisonReport.outputKind, force: force, inputs: directories.map { ("compared directory", fileURL($0)) })
        }
        let report = try ComparisonBuilder.build(directories.map(fileURL), options: o)
        if runsOwn {
            try OutputLock.holding(first) { try report.write(to: out) }
        } else {
            // Checked again under the lock: the timing above can take a while.
            try writingOutput(out, kind: ComparisonReport.outputKind, force: force, inputs: directories.map { ("compared directory", fileURL($0)) }) {
                try report.write(to: out)
            }
        }
        if !quiet { emit(report.markdown()) }
        emit("report: \(report.outputFiles.map { out.appendingPathComponent($0).path }.joined(separator: ", "))")
    }
}

/// The end of `slmrec run`: the report of the run's `compare` list in <run>/report/.
func writeRunReport(_ runDirectory: URL, skipTiming: Bool = false) {
    do {
        var o = CompareOptions(skipTiming: skipTiming)
        o.log = { logLine($0) }
        let report = try ComparisonBuilder.build([runDirectory], options: o)
        let out = runDirectory.appendingPathComponent("report")
        try report.write(to: out)
        emit(report.markdown())
        emit("report: \(out.path)/report.md (also \(report.outputFiles.dropFirst().joined(separator: ", ")))")
    } catch {
        logLine("warning: the run finished but its comparison report failed: \(error) (retry with `slmrec compare \(runDirectory.path)`)")
    }
}
