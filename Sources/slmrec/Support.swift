import Foundation
import Cluster
import Common
import CommandKit
import ModelFormat
import Engine
import RecData
import Toolbench

let toolVersion = "0.1.0"

/// Resolves a path argument relative to the current directory.
func fileURL(_ path: String) -> URL { resolvePath(path) }

/// "A model as it runs" as every command that runs one takes it: a checkpoint (float or int8)
/// and, optionally, a LoRA adapter attached to it, loaded and validated once (RunnableModel).
struct ModelOptions: ParsableArguments {
    @Option(help: "Checkpoint directory (float, or int8 where the command only runs inference).") var checkpoint: String
    @Option(help: "LoRA adapter directory (PEFT layout), attached to the checkpoint.") var adapter: String?

    /// The inputs for the output guard (an output may never replace them).
    var inputs: [(String, URL)] { [("--checkpoint", fileURL(checkpoint))] + (adapter.map { [("--adapter", fileURL($0))] } ?? []) }

    func load(requireFloat: Bool = false) throws -> ELLMRecModel {
        try RunnableModel.load(checkpoint: fileURL(checkpoint), adapter: adapter.map(fileURL), requireFloat: requireFloat)
    }
}

/// Standard output for results (the CLI keeps standard error for progress and logs).
func emit(_ s: String) { print(s) }

/// A plain-text table: the first row is the header; numeric-looking columns align right.
func textTable(_ rows: [[String]]) -> String {
    guard let header = rows.first else { return "" }
    let n = header.count
    var width = [Int](repeating: 0, count: n)
    for r in rows { for (i, c) in r.enumerated() where i < n { width[i] = max(width[i], c.count) } }
    let numeric = (0..<n).map { i in rows.dropFirst().allSatisfy { r in i < r.count && (r[i].first.map { $0.isNumber || $0 == "-" } ?? true) } }
    return rows.map { r in
        (0..<n).map { i -> String in
            let c = i < r.count ? r[i] : ""
            let pad = String(repeating: " ", count: width[i] - c.count)
            return numeric[i] && i > 0 ? pad + c : c + pad
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}

/// The rule for every output (docs/outputs.md): refuse a target that must never be
/// replaced; then, holding the output's lock (one writer at a time), clean what interrupted
/// writes left beside it (a restored output counts as existing), check what is there, and
/// run `body`.
func writingOutput<T>(_ url: URL, kind: OutputKind, force: Bool, inputs: [(String, URL)], flag: String = "--output",
                      keepsTrainingState: Bool = false, _ body: () throws -> T) throws -> T {
    try OutputGuard.check(url, kind: kind, flag: flag, force: force, inputs: inputs, targetOnly: true)
    return try OutputLock.holding(url) {
        AtomicFile.recover(url, holdingLock: true)
        try OutputGuard.check(url, kind: kind, flag: flag, force: force, inputs: inputs)
        if !keepsTrainingState { noteTrainingState(beside: url) }
        return try body()
    }
}

/// An interrupted `apply`/`sasrec` on this output left training state beside it: say so (it
/// is kept: only that command with --resume, or the user, removes it).
func noteTrainingState(beside url: URL) {
    let work = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).work")
    guard let d = FileManager.default.contents(atPath: work.appendingPathComponent(WorkDirectory.keyFile).path),
          let v = try? JSONDecoder().decode(JSONValue.self, from: d), let cmd = v.objectValue?["command"]?.stringValue else { return }
    logLine("slmrec: note: \(work.path) holds the training state of an interrupted command on this output; it resumes with: \(cmd)")
}

/// This process's command line with `--resume` added: what continues an interrupted run.
/// `dropForce` (`slmrec run`, whose --force emptied the run directory at the start): what it
/// replaced is gone already and the new run is continued in place. `apply` and `sasrec` swap
/// their output in only at the end, so their --force is still needed.
func resumeCommand(dropForce: Bool = false) -> String {
    var args = CommandLine.arguments.filter { !dropForce || $0 != "--force" }
    if !args.contains("--resume") { args.append("--resume") }
    return args.map(shellQuoted).joined(separator: " ")
}

/// Prints how to continue after SIGINT/SIGTERM stopped training, and the exit status to
/// end with (130, 143: the shell's 128 + signal).
func exitAfterInterrupt(_ e: Interrupted, dropForce: Bool = false) -> ExitCode {
    logLine("slmrec: \(e).")
    logLine("Resume with (from \(FileManager.default.currentDirectoryPath)):\n  \(resumeCommand(dropForce: dropForce))")
    return ExitCode(e.exitCode)
}

/// The resumable state of a command that trains outside a recipe (`apply`, `sasrec`): kept
/// beside its output as `.NAME.work` (under the output's lock) until the output is written,
/// so a kill or Ctrl-C loses at most the work since the last save, and the same command with
/// `--resume` continues. `work.json` records what the state is for (a content key).
struct WorkDirectory {
    let url: URL
    let key: String
    static let keyFile = "work.json"

    /// Prepares `.NAME.work` beside `output`. `keyParts` say what the state is for (options,
    /// seed, and each input's `ContentHash.identity`); existing state is continued only with
    /// `resume` and only for the same parts; without `resume` it is never discarded silently.
    init(beside output: URL, keyParts: [String: JSONValue], resume: Bool, what: String) throws {
        url = Self.location(beside: output)
        key = ContentHash.of(string: JSONText.compact(.object(keyParts)))   // compact sorts keys
        let fm = FileManager.default
        let keyURL = url.appendingPathComponent(Self.keyFile)
        AtomicFile.recover(url, holdingLock: true)   // under the output's lock: a removal of it that was killed
        AtomicFile.recoverTree(url)   // and whatever a killed save inside it left
        if holdsState {
            guard resume else {
                throw OutputRefused(url.path, problem: "holds the training state of an interrupted `\(what)` to \(output.path)",
                                    fix: "add --resume to continue it, or remove that directory to start over")
            }
            let saved = fm.contents(atPath: keyURL.path).flatMap { try? JSONDecoder().decode(JSONValue.self, from: $0) }
            guard saved?.objectValue?["key"]?.stringValue == key else {
                throw OutputRefused(url.path, problem: "holds training state for other inputs, options or seed than this command's",
                                    fix: "resume with exactly the command that was interrupted, or remove that directory to start over")
            }
        } else {
            AtomicFile.remove(url)
            if resume { logLine("\(what): nothing to resume in \(url.path); starting from the beginning") }
        }
        try fm.createDirectory(at: url, withIntermediateDirectories: true)
        try JSONText.write(.object(["key": .string(key), "command": .string(resumeCommand())]), to: keyURL)
    }

    /// `.NAME.work` beside the output NAME (what a follower rank of a data-parallel command
    /// reads rank 0's state from; it never creates or removes it).
    static func location(beside output: URL) -> URL {
        output.deletingLastPathComponent().appendingPathComponent(".\(output.lastPathComponent).work")
    }

    /// Whether anything besides the key file is there (trainer state worth keeping).
    var holdsState: Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).contains { $0 != Self.keyFile }
    }

    /// After a failure: keep the state if there is some (and say so), else remove the directory.
    func keepOrRemove(what: String) {
        if holdsState { logLine("\(what): the training state is kept in \(url.path): the same command with --resume continues it; remove it to start over with other options") }
        else { AtomicFile.remove(url) }
    }

    func remove() { AtomicFile.remove(url) }
}

/// Under mpirun: every rank must have loaded the same weights and the same prepared data
/// (a node with a stale copy would train or rank something else); a single process checks
/// nothing. The fingerprints cover the weights' bytes and dataset.json (which records the
/// sha256 of the source file and the negatives).
func requireSameInputs(model: ELLMRecModel, dataset: PreparedDataset) throws {
    let world = Cluster.world
    guard world.isDistributed else { return }
    var w = Fingerprint()
    w.add(floats: model.params.buffer.ptr, count: model.params.buffer.count)
    if let lora = model.lora { w.add(floats: lora.params.buffer.ptr, count: lora.params.buffer.count) }
    try world.requireAgreement("the model's weights (--checkpoint/--adapter)", w.value)
    var d = Fingerprint()
    d.add(FileManager.default.contents(atPath: dataset.directory.appendingPathComponent("dataset.json").path) ?? Data())
    d.add("\(dataset.numUsers) \(dataset.numItems)")
    try world.requireAgreement("the prepared dataset (--data \(dataset.directory.path))", d.value)
}
