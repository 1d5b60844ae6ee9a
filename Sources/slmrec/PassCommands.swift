import Cluster
import Foundation
import ModelEvaluation
import Common
import CommandKit
import ModelFormat
import Toolbench
import Reports

/// `slmrec passes`, `slmrec apply`, `slmrec run` (the plugin host's commands).
let passCommands: [any ParsableCommand.Type] = [Passes.self, Apply.self, Run.self]

struct Passes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the compression passes with their options, types, defaults and help.")

    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        if json {
            let list: JSONValue = .array(registry.passes.map { p in
                .object(["name": .string(p.name), "summary": .string(p.summary),
                         "options": .array(p.fields.map { f in
                             .object(["name": .string(f.name), "type": .string(f.type), "default": f.defaultValue.map { .string($0) } ?? .null,
                                      "required": .bool(f.defaultValue == nil), "help": .string(f.help)]) }),
                         "references": .array(p.references.map { r in
                             .object(["name": .string(r.name), "kind": .string(r.kind.rawValue), "required": .bool(r.required), "help": .string(r.help)]) })])
            })
            print(String(decoding: JSONText.pretty(list), as: UTF8.self), terminator: "")
            return
        }
        for p in registry.passes {
            emit("\(p.name) — \(p.summary)")
            let rows = p.fields.map { f in ["    " + f.name, f.type, f.defaultValue.map { "default \($0)" } ?? "required", f.help] }
            let width = (0..<3).map { i in rows.map { $0[i].count }.max() ?? 0 }
            for r in rows { emit((0..<3).map { pad(r[$0], width[$0]) }.joined(separator: "  ") + "  " + r[3]) }
            for r in p.references {
                emit("    reference " + pad(r.name, 12) + " \(r.kind.rawValue) (\(r.required ? "required" : "optional")): \(r.help)")
            }
            emit("")
        }
        emit("Details: docs/passes.md. Use one with `slmrec apply PASS` or in a recipe (docs/recipes.md).")
    }
}

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one compression pass on a checkpoint, outside a recipe.",
        discussion: """
        Example: slmrec apply lora-merge --input CKPT --output OUT --options '{adapter: "ADAPTER_DIR"}'. The output is written \
        to a temporary directory and swapped in when complete; metrics go to OUT.metrics.json. A training pass keeps its \
        resumable state in .OUT.work beside the output until it finishes: after a kill or Ctrl-C, the same command with \
        --resume continues it. An existing OUT is replaced only if it is a previous checkpoint and --force is given.
        """)

    @Argument(help: "Pass name (see `slmrec passes`).") var pass: String
    @Option(help: "Input checkpoint directory.") var input: String
    @Option(help: "Output checkpoint directory.") var output: String
    @Option(help: "Pass options as a JSON5 object.") var options: String = "{}"
    @Option(help: "Adapter output directory (passes that produce an adapter).") var adapterOutput: String?
    @Option(name: .customLong("ref"), help: "A named reference the pass declares: name=DIR (e.g. teacher=runs/teacher, adapter=runs/ft/adapter). Repeatable.")
    var refs: [String] = []
    @Option(help: "The pass's seed (initialisation, data order, dropout, calibration samples); recorded in OUT.metrics.json.") var seed: UInt64 = 42
    @Flag(help: "Continue the training state an interrupted run of this command left in .OUTPUT.work.") var resume = false
    @Flag(help: "Replace an existing checkpoint at --output (and adapter at --adapter-output); nothing else is ever replaced.") var force = false

    mutating func validate() throws {
        if seed > StageSeed.limit { throw ValidationError("--seed must be at most \(StageSeed.limit) (it is recorded as a JSON integer)") }
    }

    /// What `apply` writes beside its output (`OUT.metrics.json`).
    static let metricsKind = OutputKind.jsonFile("apply metrics file", keys: ["options", "seconds"])

    func run() throws {
        let p = try registry.pass(named: pass)
        var refURLs: [String: URL] = [:], planned: [String: PlannedArtifact] = [:]
        for r in refs {
            guard let eq = r.firstIndex(of: "="), eq != r.startIndex else { throw ValidationError("--ref \(r): expected name=DIR") }
            let name = String(r[..<eq]), url = fileURL(String(r[r.index(after: eq)...]))
            guard let spec = p.references.first(where: { $0.name == name }) else {
                throw ValidationError("--ref \(name): \(p.name) takes \(p.references.isEmpty ? "no references" : "references " + p.references.map(\.name).joined(separator: ", "))")
            }
            refURLs[name] = url
            planned[name] = PlannedArtifact(kind: spec.kind, model: spec.kind == .checkpoint ? try ModelSummary.load(directory: url) : nil, existingPath: url)
        }
        for spec in p.references where spec.required && refURLs[spec.name] == nil {
            throw ValidationError("\(p.name) needs --ref \(spec.name)=DIR (\(spec.help))")
        }
        let where_ = "apply \(p.name)"
        let inURL = fileURL(input), outURL = fileURL(output)
        let model: ModelSummary
        do { model = try ModelSummary.load(directory: inURL) } catch { throw ToolbenchError(where_, problem: "\(error)", fix: "check --input") }
        let tree = try JSONText.parseJSON5(Data(options.utf8), file: "--options")
        let opts: any PassOptions
        let plannedOut: PlannedOutput
        do {
            opts = try p.decodeOptions(tree, path: "options")
            plannedOut = try p.check(model, options: opts, references: planned)
        } catch let e as ToolbenchError { throw e.within(where_) }
        if plannedOut.adapter && adapterOutput == nil {
            throw ValidationError("\(p.name) produces an adapter: give --adapter-output DIR")
        }
        let inputs: [(String, URL)] = [("--input", inURL)] + refURLs.sorted { $0.key < $1.key }.map { ("--ref \($0.key)", $0.value) }
            + opts.inputPaths.map { ("option path", fileURL($0)) }
        let adapterURL = adapterOutput.map(fileURL)
        if let adapterURL {
            let a = OutputGuard.realPath(adapterURL), o = OutputGuard.realPath(outURL)
            if a == o || a.hasPrefix(o + "/") || o.hasPrefix(a + "/") {
                throw ValidationError("--adapter-output and --output must be separate directories (neither inside the other)")
            }
        }
        // OUT.metrics.json beside the checkpoint is part of the output: the same rule.
        let metricsURL = Self.metricsURL(beside: outURL)
        func checkMetrics() throws {
            try OutputGuard.check(metricsURL, kind: Self.metricsKind, flag: "the metrics file beside --output", force: force, inputs: inputs,
                                  alternative: "choose another --output")
        }
        // Under mpirun, rank 0 owns the output, its lock and the work directory; the other
        // ranks only train their share (the trainer synchronises them after rank 0 set up).
        if !Cluster.world.isLeader { return try applyAsFollower(p, opts: opts, references: refURLs) }
        try checkMetrics()
        try writingOutput(outURL, kind: Checkpoint.outputKind, force: force, inputs: inputs, keepsTrainingState: true) {
            try checkMetrics()   // again, under the output's lock
            if let adapterURL {
                try writingOutput(adapterURL, kind: LoRAAdapter.outputKind, force: force, inputs: inputs, flag: "--adapter-output", keepsTrainingState: true) {
                    try apply(p, opts: opts, inputs: inputs, references: refURLs, adapterURL: adapterURL)
                }
            } else {
                try apply(p, opts: opts, inputs: inputs, references: refURLs, adapterURL: nil)
            }
        }
    }

    /// OUT.metrics.json, beside the checkpoint OUT.
    static func metricsURL(beside output: URL) -> URL {
        output.deletingLastPathComponent().appendingPathComponent(output.lastPathComponent + ".metrics.json")
    }

    /// A rank other than 0 of a data-parallel `apply`: the same pass on the same inputs, with
    /// rank 0's work directory (read only: the trainer's state on --resume); writes nothing.
    func applyAsFollower(_ p: AnyPass, opts: any PassOptions, references: [String: URL]) throws {
        let work = WorkDirectory.location(beside: fileURL(output))
        let ctx = PassContext(input: fileURL(input), references: references, workDirectory: work, seed: seed, stage: p.name, resume: resume)
        do { _ = try p.apply(ctx, options: opts) } catch let e as Interrupted { throw exitAfterInterrupt(e) }
    }

    /// Runs the pass with its work directory beside the output (`.NAME.work`): kept when a
    /// training pass is interrupted or fails with state worth keeping, removed on success.
    func apply(_ p: AnyPass, opts: any PassOptions, inputs: [(String, URL)], references: [String: URL], adapterURL: URL?) throws {
        let inURL = fileURL(input), outURL = fileURL(output), where_ = "apply \(p.name)"
        // What the state is for: the pass, its options, the seed and every input.
        var keyObj: [String: JSONValue] = ["pass": .string(p.name), "options": try AnyPass.effective(opts), "seed": .int(Int(truncatingIfNeeded: seed))]
        for (label, url) in inputs { keyObj["input " + label] = .string(try ContentHash.identity(of: url)) }
        let work = try WorkDirectory(beside: outURL, keyParts: keyObj, resume: resume, what: "slmrec apply")
        let start = Date()
        let ctx = PassContext(input: inURL, references: references, workDirectory: work.url, seed: seed, stage: p.name, resume: resume)
        let result: PassResult
        do { result = try p.apply(ctx, options: opts) } catch let e as Interrupted {
            throw exitAfterInterrupt(e)
        } catch {
            work.keepOrRemove(what: where_)
            if let e = error as? ToolbenchError { throw e.within(where_) }
            throw error
        }
        do {
            if let ck = result.checkpoint { try ck.save(to: outURL) }
            if let ad = result.adapter, let adapterURL { try ad.save(to: adapterURL) }
        } catch {
            // A full disk, a read-only directory: the training (if any) is kept for --resume,
            // an empty work directory goes.
            work.keepOrRemove(what: where_)
            throw error
        }
        var metrics = result.metrics
        metrics["seconds"] = .number(Date().timeIntervalSince(start))
        metrics["options"] = try AnyPass.effective(opts)
        metrics["seed"] = .int(Int(truncatingIfNeeded: seed))
        let metricsURL = Self.metricsURL(beside: outURL)
        // The metrics file belongs to the output whose lock this holds: what a write of it
        // killed earlier left beside it goes (found by scripts/fault-kill9.py).
        AtomicFile.recover(metricsURL, holdingLock: true)
        try JSONText.write(.object(metrics), to: metricsURL)
        work.remove()
        emit(String(format: "%@: wrote %@ in %.2f s (metrics: %@)", p.name, output, Date().timeIntervalSince(start), metricsURL.path))
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recipe: validate every stage, then run them into a run directory.",
        discussion: "The run directory holds recipe.effective.json (defaults filled in), inputs.json (content hashes) and one directory per stage (checkpoint/, adapter/, metrics.json, log.txt, stage.json). --resume skips stages whose inputs and options are unchanged. See docs/recipes.md.")

    @Argument(help: "Recipe file (JSON5).") var recipe: String
    @Option(help: "Run directory (default: runs/<recipe name>).") var output: String?
    @Flag(help: "Continue an existing run directory, skipping unchanged completed stages.") var resume = false
    @Option(name: .customLong("set"), help: "Override a recipe value: key.path=value (e.g. vars.data=data/ml-100k, stages.pruned.options.keep=4). Repeatable.")
    var overrides: [String] = []
    @Option(name: .customLong("stage"), help: "Run only this stage and the earlier stages it reads (its input, its teacher); repeatable. The others are not run and their directories stay; no report is written.")
    var stages: [String] = []
    @Flag(help: "Validate and print the plan, run nothing.") var dryRun = false
    @Flag(help: "Write the final comparison report without timing the models (cost columns \"-\").") var skipReportTiming = false
    @Flag(help: "Do not write the comparison report (run `slmrec compare` yourself, e.g. with a SASRec baseline).") var noReport = false
    @Flag(help: "Replace an existing run directory at --output (nothing else is ever replaced; docs/outputs.md).") var force = false

    func validate() throws {
        if resume && force { throw ValidationError("--resume continues the run directory and --force replaces it: give one of them") }
    }

    func run() throws {
        let r = try Recipe.load(path: recipe, overrides: overrides)
        let plan = try Planner.plan(r, registry: registry)
        let name = (URL(fileURLWithPath: recipe).lastPathComponent as NSString).deletingPathExtension
        let dir = fileURL(output ?? "runs/\(name)")
        let selected = stages.isEmpty ? nil : stages
        let only = try selected.map { try plan.stagesNeeded(for: $0) }
        if dryRun {
            // The plan is what a dry run checks; whether the run directory may be written is
            // said, not enforced (it can change before the real run).
            do { try RecipeRunner.checkRunDirectory(dir, plan: plan, resume: resume, force: force) } catch {
                emit("note: the run as given would stop here: \(error)")
            }
            for s in plan.stages {
                let layers = s.output.checkpoint.map { "\($0.numLayers) layers\($0.isQuantized ? ", int8" : "")" } ?? "adapter"
                let mark = only.map { $0.contains(s.name) ? "" : "  (not selected)" } ?? ""
                emit("\(s.name): \(s.pass.name) on \(s.input) → \(layers)  options \(JSONText.compact(s.effectiveOptions))\(mark)")
                if let g = s.gate { emit("  gate: \(g.metric) ≥ \(g.min.map { "\($0)" } ?? "\(g.minRatio ?? 0) × \(g.of ?? "?")") on the validation split, on fail: \(g.onFail.rawValue)") }
                if let grp = s.group, let g = plan.groups[grp], g.variants.last == s.name {
                    emit("  group \(grp): \(g.variants.count) variants; \(g.select.map { "select \($0.summary)" } ?? "no select (read a variant by name)")")
                }
            }
            emit("plan OK (\(plan.stages.count) stages); would write \(dir.path)")
            return
        }
        let world = Cluster.world, coordination = Self.coordination(world)
        if !world.isLeader {
            // Under mpirun: every stage's passes and evaluations with rank 0 (data-parallel),
            // reading what rank 0 writes; no lock, no files, no report (RunCoordination).
            let evaluator = RecipeEvaluator()
            do {
                _ = try RecipeRunner(evaluator: evaluator, quiet: true, coordination: coordination)
                    .run(plan, runDirectory: dir, resume: resume, force: force, only: selected)
            } catch let e as Interrupted {
                throw exitAfterInterrupt(e, dropForce: true)
            }
            if only == nil { try evaluateComparedInputs(plan, runDirectory: dir, evaluator: evaluator, coordination: coordination) }
            return
        }
        // Refused targets first (before a lock file is created beside them); then one writer
        // at a time for the whole run: stages, evaluated inputs and the report.
        try RecipeRunner.checkRunDirectory(dir, plan: plan, resume: resume, force: force, targetOnly: true)
        try OutputLock.holding(dir) {
            AtomicFile.recover(dir, holdingLock: true)
            AtomicFile.recoverTree(dir)   // stages, state and files inside it
            let evaluator = RecipeEvaluator()
            let records: [StageRecord]
            do {
                records = try RecipeRunner(evaluator: evaluator, coordination: coordination)
                    .run(plan, runDirectory: dir, resume: resume, force: force, only: selected)
            } catch let e as Interrupted {
                throw exitAfterInterrupt(e, dropForce: true)
            }
            let ran = records.filter { !$0.skipped }.count
            if only != nil {
                // A part of the recipe: the comparison would miss the stages not run.
                emit("stages run: \(dir.path) (\(ran) run, \(records.count - ran) skipped, \(plan.stages.count - records.count) not selected); no report (--stage): run without --stage, or `slmrec compare`")
                try reportJudgements(dir)
                return
            }
            try evaluateComparedInputs(plan, runDirectory: dir, evaluator: evaluator, coordination: coordination)
            emit("run complete: \(dir.path) (\(ran) stages run, \(records.count - ran) skipped)")
            // Under mpirun the other ranks wait (polling) while rank 0 writes the report: its
            // latency columns would time a contended machine, so they are left out there.
            if !noReport { writeRunReport(dir, skipTiming: skipReportTiming || world.isDistributed) }
            try reportJudgements(dir)
        }
    }
}

extension Run {
    /// One process: `.single`. Under mpirun: rank 0 writes, a barrier between the ranks.
    static func coordination(_ world: Communicator) -> RunCoordination {
        guard world.isDistributed else { return .single }
        return RunCoordination(writes: world.isLeader, synchronize: { try world.barrier() },
                               requireShared: { try world.requireSharedDirectory($0) })
    }
}

/// Gates and selections, after the run: one line each, and exit status 3 when a gate failed or
/// a selection found no variant (a script can tell "ran, but below the bar" from an error).
func reportJudgements(_ dir: URL) throws {
    let j = RecipeRunner.judgements(in: dir)
    for (name, g) in j.gates.sorted(by: { $0.key < $1.key }) { emit("gate \(name): \(g.summary)") }
    for s in j.selections { emit("select \(s.group): \(s.selected ?? "nothing") — \(s.reason)") }
    let failed = j.gates.filter { !$0.value.passed }.map(\.key).sorted() + j.selections.filter { $0.selected == nil }.map(\.group)
    if !failed.isEmpty {
        logLine("slmrec: below the bar: \(failed.joined(separator: ", ")) (exit status 3; see \(dir.path)/\(RecipeRunner.gatesFile))")
        throw ExitCode(3)
    }
}

/// Recipe inputs named in `compare` (typically the teacher a recipe starts from) are ranked
/// with the same evaluator as the stages, so the report has their numbers and percentages.
func evaluateComparedInputs(_ plan: Plan, runDirectory: URL, evaluator: RecipeEvaluator, coordination: RunCoordination = .single) throws {
    guard let spec = plan.recipe.evaluate else { return }
    for name in plan.recipe.compare {
        guard let input = plan.inputs[name], input.kind == .checkpoint else { continue }
        let out = ReportLoader.inputMetricsURL(run: runDirectory, input: name)
        try coordination.synchronize()   // every rank sees what rank 0 has written
        if FileManager.default.fileExists(atPath: out.path) { continue }
        logLine("evaluating input \(name) (\(input.url.path))")
        let metrics = try evaluator.evaluate(
            stage: StageOutput(name: name, checkpoint: input.url, adapter: nil, baseDirectory: plan.baseDirectory), spec: spec)
        if coordination.writes {
            try JSONText.write(.object(["evaluation": .object(metrics.mapValues { .number($0) }), "checkpoint": .string(input.url.path)]), to: out)
        }
    }
}

/// Left-aligned in a column of `width` characters (String(format:) does not pad %@ on Linux).
func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }
