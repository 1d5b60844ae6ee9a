import Foundation
import Common
import ModelFormat

// Running a plan: one stage directory at a time, each written under a temporary name and
// renamed when complete; a stage whose key (stageKey) is unchanged is skipped on --resume.

/// The evaluation hook: the host never imports model evaluation code; the CLI passes an
/// implementation in. Throw `EvaluationUnavailable` to record why nothing was measured.
public protocol StageEvaluator: Sendable {
    func evaluate(stage: StageOutput, spec: EvaluateSpec) throws -> [String: Double]
}

public struct EvaluationUnavailable: Error, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// A finished stage's artifacts, as the evaluator sees them.
public struct StageOutput: Sendable {
    public var name: String
    public var checkpoint: URL?
    public var adapter: URL?
    public var baseDirectory: URL
    public init(name: String, checkpoint: URL?, adapter: URL?, baseDirectory: URL) {
        self.name = name; self.checkpoint = checkpoint; self.adapter = adapter; self.baseDirectory = baseDirectory
    }
}

/// How a run's processes share it (docs/scale-out.md). One process (`single`) writes
/// everything and waits for no one. Under mpirun the CLI gives rank 0 `writes` and the other
/// ranks not, with `synchronize` a barrier: every rank runs every pass and evaluation (their
/// training and ranking are data-parallel collectives), rank 0 alone writes the run
/// directory, and the others read what it wrote once it is in place — each decision a rank
/// takes from the run directory (skip on --resume, a cached validation, an input already
/// evaluated) is read after a `synchronize`, so every rank takes the same one.
public struct RunCoordination: Sendable {
    public var writes: Bool
    public var synchronize: @Sendable () throws -> Void
    /// Throws unless every rank sees the directory rank 0 created (one filesystem).
    public var requireShared: @Sendable (URL) throws -> Void
    public init(writes: Bool, synchronize: @escaping @Sendable () throws -> Void, requireShared: @escaping @Sendable (URL) throws -> Void) {
        self.writes = writes; self.synchronize = synchronize; self.requireShared = requireShared
    }
    public static let single = RunCoordination(writes: true, synchronize: {}, requireShared: { _ in })
}

/// A thread-safe line buffer for a stage's log.
final class LogBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    let echo: Bool
    init(echo: Bool) { self.echo = echo }
    func append(_ s: String) {
        lock.lock(); lines.append(s); lock.unlock()
        if echo { logLine(s) }
    }
    var text: String { lock.lock(); defer { lock.unlock() }; return lines.joined(separator: "\n") + "\n" }
}

public struct StageRecord: Sendable {
    public var name: String
    public var skipped: Bool
    public var seconds: Double
    public var directory: URL
    /// Why a stage was skipped other than by --resume (a failed gate upstream, no selection).
    public var reason: String? = nil
    /// The stage's gate, judged on the validation split.
    public var gate: GateOutcome? = nil
}

public struct RecipeRunner: Sendable {
    public var evaluator: (any StageEvaluator)?
    public var quiet: Bool
    public var coordination: RunCoordination

    public init(evaluator: (any StageEvaluator)?, quiet: Bool = false, coordination: RunCoordination = .single) {
        self.evaluator = evaluator
        self.quiet = quiet
        self.coordination = coordination
    }

    public static let stageFile = "stage.json"
    /// A judged stage's (or input's) validation metrics: what gates and selection read.
    public static let validationFile = "validation.json"
    /// Every gate's outcome and every group's selection, at the top of the run directory.
    public static let gatesFile = "gates.json"
    public static let selectionsFile = "selections.json"

    /// The gates, skipped stages and selections a run recorded (empty when it has none).
    public static func judgements(in runDirectory: URL) -> Judgements {
        let dec = JSONDecoder()
        let g = FileManager.default.contents(atPath: runDirectory.appendingPathComponent(gatesFile).path).flatMap { try? dec.decode(Judgements.Gates.self, from: $0) }
        let sel = FileManager.default.contents(atPath: runDirectory.appendingPathComponent(selectionsFile).path).flatMap { try? dec.decode([SelectionRecord].self, from: $0) } ?? []
        return Judgements(gates: g?.gates ?? [:], skipped: g?.skipped ?? [:], selections: sel)
    }

    /// A run ends with its comparison report in `report/` (written by the CLI's `Reports`);
    /// the run directory's layout, and so what the report directory holds, is the host's.
    public static let reportDirectory = "report"
    /// report-depth.svg only when the compared models differ in depth (Reports' `depthChartFile`).
    public static let reportFiles = ["report.md", "report.csv", "report.json", "report.svg", "report-depth.svg"]
    public static let reportKind = OutputKind(name: "report", files: reportFiles, required: [])

    /// What a run directory holds (docs/recipes.md), for the output guard: `--force`
    /// replaces a directory like this and nothing else.
    public static let runDirectoryKind: OutputKind = {
        let stage = OutputKind(name: "stage directory", files: ["metrics.json", "log.txt", stageFile, validationFile], required: [],
                               directories: [ArtifactKind.checkpoint.rawValue: Checkpoint.outputKind,
                                             ArtifactKind.adapter.rawValue: LoRAAdapter.outputKind])
        let evaluatedInput = OutputKind(name: "evaluated input", files: ["metrics.json", validationFile], required: [])
        return OutputKind(name: "run directory", files: ["recipe.effective.json", "inputs.json", gatesFile, selectionsFile], required: ["recipe.effective.json"],
                          directories: [reportDirectory: reportKind,
                                        "inputs": OutputKind(name: "run directory", files: [], required: [], otherDirectories: evaluatedInput),
                                        ".work": .opaque("run directory")],
                          otherDirectories: stage)
    }()

    /// The output rule for a run directory (docs/outputs.md); `targetOnly` checks only what
    /// holds whatever is there (before the lock is taken beside it).
    @discardableResult
    public static func checkRunDirectory(_ dir: URL, plan: Plan, resume: Bool, force: Bool, targetOnly: Bool = false) throws -> OutputGuard.Existing {
        try OutputGuard.check(dir, kind: runDirectoryKind, force: force, inputs: inputs(of: plan), resume: resume, resumable: true,
                              targetOnly: targetOnly)
    }

    /// Everything outside the run directory that a plan reads (for the output guard).
    public static func inputs(of plan: Plan) -> [(String, URL)] {
        var out: [(String, URL)] = [("the recipe", URL(fileURLWithPath: plan.recipe.path))]
        for (n, a) in plan.inputs.sorted(by: { $0.key < $1.key }) { out.append(("recipe input \(n)", a.url)) }
        for s in plan.stages { for p in s.options.inputPaths { out.append(("stage \(s.name)'s option path", resolvePath(p, relativeTo: plan.baseDirectory))) } }
        if let e = plan.recipe.evaluate { out.append(("evaluate.data", resolvePath(e.data, relativeTo: plan.baseDirectory))) }
        return out
    }

    /// Runs a validated plan into `runDirectory`: `recipe.effective.json`, `inputs.json`
    /// (content hashes) and one directory per stage (checkpoint/, adapter/, metrics.json,
    /// log.txt, stage.json). With `resume`, a stage whose directory holds a stage.json with
    /// the same key (pass, effective options, seed, and the keys of its inputs) is skipped.
    /// An existing non-empty run directory needs `resume` (continue it) or `force` (replace
    /// it: swapped for an empty one first); the caller holds the directory's `OutputLock`.
    @discardableResult
    /// `only`: run just these stages and the earlier ones they read (Plan.stagesNeeded); the
    /// others are neither run nor touched, so their directories from an earlier run stay.
    public func run(_ plan: Plan, runDirectory: URL, resume: Bool, force: Bool = false, only stages: [String]? = nil) throws -> [StageRecord] {
        let fm = FileManager.default
        let only = try stages.map { try plan.stagesNeeded(for: $0) }
        if resume && force {
            throw ToolbenchError(runDirectory.path, problem: "--resume continues the run directory and --force replaces it", fix: "give one of them")
        }
        let writes = coordination.writes, sync = coordination.synchronize
        if writes {
            AtomicFile.recover(runDirectory)
            let existing = try Self.checkRunDirectory(runDirectory, plan: plan, resume: resume, force: force)
            if existing == .previousOutput && force {
                try AtomicFile.replaceWithEmptyDirectory(runDirectory)
                if !quiet { logLine("replaced the previous run directory \(runDirectory.path) (--force)") }
            }
            try fm.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        }
        let isQuiet = quiet
        func say(_ line: String) { if !isQuiet { logLine(line) } }

        // Content hashes of every external input (recipe inputs and option paths).
        var keys: [String: String] = [:]
        var hashes: [String: JSONValue] = [:]
        for (name, art) in plan.inputs.sorted(by: { $0.key < $1.key }) {
            let h = try ContentHash.of(path: art.url)
            keys[name] = h
            hashes[name] = .object(["path": .string(art.url.path), "kind": .string(art.kind.rawValue), "hash": .string(h)])
        }
        var pathHashes: [String: String] = [:]
        for s in plan.stages {
            for p in s.options.inputPaths {
                let url = resolvePath(p, relativeTo: plan.baseDirectory)
                if pathHashes[url.path] == nil { pathHashes[url.path] = try ContentHash.of(path: url) }
            }
        }
        if !pathHashes.isEmpty { hashes["option_paths"] = .object(pathHashes.mapValues { .string($0) }) }
        if writes {
            try JSONText.write(plan.effectiveRecipe, to: runDirectory.appendingPathComponent("recipe.effective.json"))
            try JSONText.write(.object(hashes), to: runDirectory.appendingPathComponent("inputs.json"))
        }
        // Every rank reads the stages rank 0 writes here: one directory for all, or nothing runs.
        try sync()
        try coordination.requireShared(runDirectory)

        var records: [StageRecord] = []
        var dirs: [String: URL] = [:]
        for (n, a) in plan.inputs { dirs[n] = a.url }
        var judge = Judge(plan: plan, runDirectory: runDirectory, evaluator: evaluator, coordination: coordination, say: say)
        for s in plan.stages {
            // Rank 0 has written every earlier stage (and its judgement) before any rank reads them.
            try sync()
            let stageDir = runDirectory.appendingPathComponent(s.name)
            if let only, !only.contains(s.name) {
                say("[\(s.index + 1)/\(plan.stages.count)] \(s.name): not selected (--stage), not run")
                continue
            }
            // A stage downstream of a failed gate (or of a group with no selection) is not run.
            if let reason = judge.blockedReason(for: s) {
                say("[\(s.index + 1)/\(plan.stages.count)] \(s.name): skipped: \(reason)")
                judge.skip(s.name, reason: reason)
                records.append(StageRecord(name: s.name, skipped: true, seconds: 0, directory: stageDir, reason: reason))
                judge.groupDone(s, keys: &keys)
                continue
            }
            let paths = s.options.inputPaths.map { resolvePath($0, relativeTo: plan.baseDirectory).path }
            let key = Self.stageKey(s, inputKeys: keys, optionPathHashes: paths.map { pathHashes[$0] ?? "?" })
            keys[s.name] = key
            let resolved = judge.selected
            let refDir: (String, ArtifactKind) -> URL = { group, kind in
                let name = resolved[group] ?? group
                if let d = dirs[name], plan.inputs[name] != nil { return d }
                return runDirectory.appendingPathComponent(name).appendingPathComponent(kind.rawValue)
            }
            // A stage that trained LoRA produced a checkpoint and the adapter that goes with it.
            let adapterOf: (String) -> URL? = { group in
                let name = resolved[group] ?? group
                guard plan.inputs[name] == nil, plan.stages.first(where: { $0.name == name })?.output.adapter == true else { return nil }
                return runDirectory.appendingPathComponent(name).appendingPathComponent(ArtifactKind.adapter.rawValue)
            }
            if resume, let data = fm.contents(atPath: stageDir.appendingPathComponent(Self.stageFile).path),
               let rec = try? JSONDecoder().decode(JSONValue.self, from: data), rec.objectValue?["key"]?.stringValue == key {
                say("[\(s.index + 1)/\(plan.stages.count)] \(s.name): unchanged, skipped (--resume)")
                let gate = try judge.stageDone(s, key: key)
                records.append(StageRecord(name: s.name, skipped: true, seconds: 0, directory: stageDir, gate: gate))
                judge.groupDone(s, keys: &keys)
                continue
            }
            say("[\(s.index + 1)/\(plan.stages.count)] \(s.name): \(s.pass.name) on \(s.input)")
            let start = Date()
            let log = LogBuffer(echo: !quiet)
            let evaluator = self.evaluator
            let quiet = self.quiet
            // The work directory (training state) lives outside the stage's temporary
            // directory, keyed by the stage's inputs+options, so a killed run resumed with
            // --resume continues a half-trained stage from its last checkpoint.
            let work = runDirectory.appendingPathComponent(".work").appendingPathComponent("\(s.name)-\(key.prefix(16))")
            // State this stage left under an older key (its options or inputs changed since)
            // can never be resumed: it goes.
            for old in (try? fm.contentsOfDirectory(atPath: work.deletingLastPathComponent().path)) ?? []
            where writes && old != work.lastPathComponent && old.hasPrefix("\(s.name)-")
                && old.dropFirst(s.name.count + 1).count == 16 && old.dropFirst(s.name.count + 1).hasPrefix("fnv1a64:") {
                AtomicFile.remove(work.deletingLastPathComponent().appendingPathComponent(old))
                say("    removed the training state of an earlier version of \(s.name) (.work/\(old)): its options or inputs changed")
            }
            // Writes the stage's files into `tmp` (rank 0: the stage directory's temporary name;
            // another rank: a private scratch directory, discarded; its work directory is rank
            // 0's, which it only reads).
            func produce(_ tmp: URL) throws {
                if writes { try fm.createDirectory(at: work, withIntermediateDirectories: true) }
                var refs: [String: URL] = [:], refAdapters: [String: URL] = [:]
                for (r, target) in s.references {
                    let kind = s.pass.references.first { $0.name == r }?.kind ?? .checkpoint
                    refs[r] = refDir(target, kind)
                    if kind == .checkpoint, let a = adapterOf(target) { refAdapters[r] = a }
                }
                let ctx = PassContext(input: refDir(s.input, .checkpoint), references: refs,
                                      inputAdapter: adapterOf(s.input), referenceAdapters: refAdapters, workDirectory: work,
                                      baseDirectory: plan.baseDirectory, seed: s.seed, stage: s.name,
                                      log: { log.append($0) }, quiet: quiet, resume: resume)
                let result = try s.pass.apply(ctx, options: s.options)
                var metrics = result.metrics
                if let ck = result.checkpoint { try ck.save(to: tmp.appendingPathComponent(ArtifactKind.checkpoint.rawValue)) }
                if let ad = result.adapter { try ad.save(to: tmp.appendingPathComponent(ArtifactKind.adapter.rawValue)) }
                if (s.output.checkpoint != nil) != (result.checkpoint != nil) || s.output.adapter != (result.adapter != nil) {
                    throw ToolbenchError("stage \(s.name)", problem: "pass \(s.pass.name) produced other artifacts than it planned", fix: "this is a bug in the pass")
                }
                FaultPoint.reach("stage-evaluation")
                if let spec = plan.recipe.evaluate, s.evaluate, result.checkpoint != nil, spec.stages?.contains(s.name) ?? true {
                    let out = StageOutput(name: s.name, checkpoint: tmp.appendingPathComponent("checkpoint"),
                                          adapter: result.adapter == nil ? nil : tmp.appendingPathComponent("adapter"),
                                          baseDirectory: plan.baseDirectory)
                    do {
                        guard let evaluator else { throw EvaluationUnavailable("evaluation not configured") }
                        metrics["evaluation"] = .object(try evaluator.evaluate(stage: out, spec: spec).mapValues { .number($0) })
                    } catch let e as EvaluationUnavailable {
                        metrics["evaluation"] = .string(e.reason)
                        log.append("evaluation: \(e.reason)")
                    }
                }
                let secs = Date().timeIntervalSince(start)
                metrics["seconds"] = .number(secs)
                metrics["seed"] = .int(Int(truncatingIfNeeded: s.seed))   // the one it ran with
                try JSONText.pretty(.object(metrics)).write(to: tmp.appendingPathComponent("metrics.json"))
                try Data(log.text.utf8).write(to: tmp.appendingPathComponent("log.txt"))
                let record: JSONValue = .object(["key": .string(key), "pass": .string(s.pass.name), "input": .string(s.input),
                                                 "options": s.effectiveOptions, "seed": .int(Int(truncatingIfNeeded: s.seed))])
                try JSONText.pretty(record).write(to: tmp.appendingPathComponent(Self.stageFile))
            }
            do {
                if writes {
                    if !resume { AtomicFile.remove(work) }
                    try AtomicFile.writeDirectory(stageDir) { try produce($0) }
                } else {
                    let scratch = fm.temporaryDirectory.appendingPathComponent("slmrec-rank-\(ProcessInfo.processInfo.processIdentifier)-\(s.name)")
                    try? fm.removeItem(at: scratch)
                    try fm.createDirectory(at: scratch, withIntermediateDirectories: true)
                    defer { try? fm.removeItem(at: scratch) }
                    try produce(scratch)
                }
            } catch let e as ToolbenchError {
                throw e.within("\(plan.recipe.path): stage \"\(s.name)\"")
            } catch let e as Interrupted {
                throw e   // the CLI prints how to resume and exits 128 + signal
            } catch {
                throw ToolbenchError("\(plan.recipe.path): stage \"\(s.name)\"", problem: "\(error)", fix: "the stage's output was not written; fix the cause and rerun with --resume")
            }
            // The training state goes only once the stage directory is in place: a kill during
            // the stage's evaluation or while writing it must not cost the training.
            if writes {
                AtomicFile.remove(work)
                // Drop the run's .work directory once no stage has state in it.
                if (try? fm.contentsOfDirectory(atPath: work.deletingLastPathComponent().path))?.isEmpty ?? false {
                    try? fm.removeItem(at: work.deletingLastPathComponent())
                }
            }
            let secs = Date().timeIntervalSince(start)
            say(String(format: "    done in %.2f s → %@", secs, stageDir.path))
            let gate = try judge.stageDone(s, key: key)
            records.append(StageRecord(name: s.name, skipped: false, seconds: secs, directory: stageDir, gate: gate))
            judge.groupDone(s, keys: &keys)
        }
        return records
    }


    /// A stage's resume key: a hash of everything its output depends on — the pass, its
    /// effective options, the seed it runs with, and the keys of its input, its references
    /// and its option paths (content hashes of recipe inputs, stage keys of earlier stages).
    /// A stage whose stage.json holds the same key is skipped by --resume.
    public static func stageKey(_ s: PlannedStage, inputKeys: [String: String], optionPathHashes: [String]) -> String {
        let key: JSONValue = .object([
            "pass": .string(s.pass.name), "options": s.effectiveOptions, "seed": .int(Int(truncatingIfNeeded: s.seed)),
            "input": .string(inputKeys[s.input] ?? "?"),
            "references": .object(s.references.mapValues { .string(inputKeys[$0] ?? "?") }),
            "option_paths": .array(optionPathHashes.map { .string($0) }),
        ])
        return ContentHash.of(string: JSONText.compact(key))
    }
}
