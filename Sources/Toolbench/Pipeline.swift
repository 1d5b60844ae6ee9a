import Foundation
import Common
import ModelFormat

// Planning (validate everything, no tensor data) and running (one stage directory at a time,
// each written under a temporary name and renamed when complete).

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

public struct PlannedStage: @unchecked Sendable {
    public var index: Int
    public var name: String
    public var pass: AnyPass
    public var options: any PassOptions
    public var effectiveOptions: JSONValue
    /// Name of the input checkpoint (a recipe input or an earlier stage).
    public var input: String
    public var references: [String: String]
    public var seed: UInt64
    public var evaluate: Bool
    public var inputModel: ModelSummary
    public var output: PlannedOutput
}

public struct Plan: Sendable {
    public var recipe: Recipe
    public var baseDirectory: URL
    /// Recipe inputs: name → (kind, directory).
    public var inputs: [String: (kind: ArtifactKind, url: URL)]
    public var stages: [PlannedStage]

    /// The recipe with every default filled in (saved as recipe.effective.json).
    public var effectiveRecipe: JSONValue {
        var top: [String: JSONValue] = [
            "inputs": .object(inputs.mapValues { .string($0.url.path) }),
            "seed": .int(Int(truncatingIfNeeded: recipe.seed)),
            "compare": .array(recipe.compare.map { .string($0) }),
            "stages": .array(stages.map { s in
                .object(["name": .string(s.name), "pass": .string(s.pass.name), "input": .string(s.input),
                         "references": .object(s.references.mapValues { .string($0) }),
                         "options": s.effectiveOptions, "seed": .int(Int(truncatingIfNeeded: s.seed)), "evaluate": .bool(s.evaluate)])
            }),
        ]
        if !recipe.vars.isEmpty { top["vars"] = .object(recipe.vars) }
        if let d = recipe.description { top["description"] = .string(d) }
        if let e = recipe.evaluate, let v = try? JSONValue.encoding(e) { top["evaluate"] = v }
        return .object(top)
    }
}

/// The one seed derivation of a recipe's stages (docs/recipes.md#seeds). A stage without its
/// own `seed` gets one drawn from the recipe's seed and its name, so two stages never share a
/// seed by accident (a pass that combined a recipe seed with a default of the same value once
/// trained every stage with seed 0), and renaming or adding a stage leaves the others' seeds.
public enum StageSeed {
    public static func derive(recipeSeed: UInt64, stage: String) -> UInt64 {
        var rng = SeededRNG(seed: recipeSeed, stream: "stage/\(stage)")
        return rng.next() >> 11   // 53 bits: exact in every JSON reader
    }

    /// The seed stage `s` runs with.
    public static func of(_ s: RecipeStage, in recipe: Recipe) -> UInt64 { s.seed ?? derive(recipeSeed: recipe.seed, stage: s.name) }
}

public enum Planner {
    static func validName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && s.first != "." && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }

    /// Validates the whole recipe before any work: every pass known, every option valid,
    /// every reference resolvable and earlier, every `check` passing on the planned shapes.
    public static func plan(_ recipe: Recipe, registry: PassRegistry, baseDirectory: URL? = nil) throws -> Plan {
        let base = baseDirectory ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let file = recipe.path
        func resolve(_ p: String) -> URL { resolvePath(p, relativeTo: base) }
        // What each name refers to: kind, planned model (checkpoints), existing path (inputs).
        var known: [String: PlannedArtifact] = [:], adapters: Set<String> = []
        var inputs: [String: (kind: ArtifactKind, url: URL)] = [:]
        if recipe.inputs.isEmpty {
            throw ToolbenchError("\(file): inputs", problem: "no inputs", fix: "name the starting checkpoint, e.g. inputs: { base: \"runs/base\" }")
        }
        for (name, path) in recipe.inputs.sorted(by: { $0.key < $1.key }) {
            let at = "\(file): inputs.\(name)"
            guard validName(name) else { throw ToolbenchError(at, problem: "\"\(name)\" is not a valid name", fix: "use letters, digits, '-', '_'") }
            let url = resolve(path)
            let fm = FileManager.default
            if fm.fileExists(atPath: url.appendingPathComponent(Checkpoint.configFile).path) {
                let m: ModelSummary
                do { m = try ModelSummary.load(directory: url) } catch { throw ToolbenchError(at, problem: "\(error)", fix: "point it to a valid checkpoint") }
                known[name] = PlannedArtifact(kind: .checkpoint, model: m, existingPath: url)
                inputs[name] = (.checkpoint, url)
            } else if fm.fileExists(atPath: url.appendingPathComponent(LoRAAdapter.configFile).path) {
                known[name] = PlannedArtifact(kind: .adapter, model: nil, existingPath: url)
                adapters.insert(name)
                inputs[name] = (.adapter, url)
            } else {
                throw ToolbenchError(at, problem: "\(url.path) is neither a checkpoint (config.json) nor an adapter (adapter_config.json)",
                                     fix: "check the path (relative paths are relative to the current directory)")
            }
        }
        var stages: [PlannedStage] = []
        var lastCheckpoint: String? = recipe.inputs.count == 1 && inputs.first?.value.kind == .checkpoint ? inputs.first?.key : nil
        let allStageNames = recipe.stages.map(\.name)
        if recipe.stages.isEmpty { throw ToolbenchError("\(file): stages", problem: "no stages", fix: "add at least one stage") }
        for (i, s) in recipe.stages.enumerated() {
            let at = "\(file): stage \"\(s.name)\" (stages[\(i)])"
            guard validName(s.name) else { throw ToolbenchError(at, problem: "\"\(s.name)\" is not a valid stage name", fix: "use letters, digits, '-', '_' (it becomes a directory name)") }
            if known[s.name] != nil || recipe.inputs[s.name] != nil {
                throw ToolbenchError(at, problem: "the name \"\(s.name)\" is already used by an input or an earlier stage", fix: "give every stage a unique name")
            }
            func lookup(_ ref: String, role: String) throws -> PlannedArtifact {
                if let a = known[ref] { return a }
                if let later = allStageNames.firstIndex(of: ref), later >= i {
                    throw ToolbenchError(at, problem: "\(role) \"\(ref)\" refers to a stage that comes later (stages[\(later)])",
                                         fix: "a stage can read only recipe inputs and earlier stages; reorder the stages")
                }
                let names = Array(known.keys).sorted()
                throw ToolbenchError(at, problem: "\(role) \"\(ref)\" is not a recipe input or an earlier stage\(suggestion(ref, names))",
                                     fix: "known names here: \(names.joined(separator: ", "))")
            }
            let pass: AnyPass
            do { pass = try registry.pass(named: s.pass) } catch let e as ToolbenchError { throw e.within(at) }
            guard let inputName = s.input ?? lastCheckpoint else {
                throw ToolbenchError(at, problem: "no input", fix: "set input: \"<recipe input or earlier stage>\"")
            }
            let inArt = try lookup(inputName, role: "input")
            guard inArt.kind == .checkpoint, let inModel = inArt.model else {
                throw ToolbenchError(at, problem: "input \"\(inputName)\" is an adapter, not a checkpoint", fix: "bind adapters with references: { adapter: \"\(inputName)\" }")
            }
            var refs: [String: PlannedArtifact] = [:]
            for (rname, target) in s.references.sorted(by: { $0.key < $1.key }) {
                guard let spec = pass.references.first(where: { $0.name == rname }) else {
                    let names = pass.references.map(\.name)
                    throw ToolbenchError(at, problem: "pass \(pass.name) takes no reference \"\(rname)\"\(suggestion(rname, names))",
                                         fix: names.isEmpty ? "remove references" : "its references: \(names.joined(separator: ", "))")
                }
                let a = try lookup(target, role: "reference \(rname)")
                if a.kind != spec.kind && !(spec.kind == .adapter && adapters.contains(target)) {
                    throw ToolbenchError(at, problem: "reference \(rname) needs \(spec.kind == .adapter ? "an adapter" : "a checkpoint"), but \"\(target)\" \(spec.kind == .adapter ? "produces none" : "is an adapter")",
                                         fix: "bind it to a name that produces \(spec.kind == .adapter ? "an adapter" : "a checkpoint")")
                }
                refs[rname] = spec.kind == .adapter ? PlannedArtifact(kind: .adapter, model: nil, existingPath: a.existingPath) : a
            }
            for spec in pass.references where spec.required && refs[spec.name] == nil {
                throw ToolbenchError(at, problem: "pass \(pass.name) needs reference \"\(spec.name)\" (\(spec.help))", fix: "add references: { \(spec.name): \"<name>\" }")
            }
            let options: any PassOptions
            let effective: JSONValue
            do {
                options = try pass.decodeOptions(s.options, path: "stages[\(i)].options")
                effective = try AnyPass.effective(options)
            } catch let e as ToolbenchError { throw e.within("\(file): stage \"\(s.name)\"") }
            let out: PlannedOutput
            do { out = try pass.check(inModel, options: options, references: refs) } catch let e as ToolbenchError {
                throw e.within(at)
            } catch { throw ToolbenchError(at, problem: "\(error)", fix: "fix the stage or its input") }
            if out.checkpoint == nil && !out.adapter {
                throw ToolbenchError(at, problem: "pass \(pass.name) plans no output", fix: "this is a bug in the pass")
            }
            known[s.name] = PlannedArtifact(kind: out.checkpoint != nil ? .checkpoint : .adapter, model: out.checkpoint, existingPath: nil)
            if out.adapter { adapters.insert(s.name) }
            if out.checkpoint != nil { lastCheckpoint = s.name }
            stages.append(PlannedStage(index: i, name: s.name, pass: pass, options: options, effectiveOptions: effective,
                                       input: inputName, references: s.references, seed: StageSeed.of(s, in: recipe),
                                       evaluate: s.evaluate ?? true, inputModel: inModel, output: out))
        }
        // evaluate.stages and compare name outputs that exist and are checkpoints.
        func checkNames(_ names: [String], _ what: String) throws {
            for n in names {
                guard let a = known[n] else {
                    throw ToolbenchError("\(file): \(what)", problem: "\"\(n)\" is not a recipe input or stage\(suggestion(n, Array(known.keys)))",
                                         fix: "names: \(known.keys.sorted().joined(separator: ", "))")
                }
                if a.kind != .checkpoint {
                    throw ToolbenchError("\(file): \(what)", problem: "\"\(n)\" produces no checkpoint", fix: "list checkpoints only")
                }
            }
        }
        try checkNames(recipe.compare, "compare")
        if let e = recipe.evaluate {
            if let u = e.users, u <= 0 { throw ToolbenchError("\(file): evaluate.users", problem: "users is \(u)", fix: "give a positive number, or omit it for all users") }
            if e.data.isEmpty { throw ToolbenchError("\(file): evaluate.data", problem: "empty data path", fix: "name a prepared dataset directory") }
            if let st = e.stages {
                try checkNames(st, "evaluate.stages")
                for n in st where recipe.inputs[n] != nil {
                    throw ToolbenchError("\(file): evaluate.stages", problem: "\"\(n)\" is a recipe input; only stages are evaluated", fix: "evaluate the input with a stage, or list stages only")
                }
            }
        }
        return Plan(recipe: recipe, baseDirectory: base, inputs: inputs, stages: stages)
    }
}

/// FNV-1a 64 over a file's or a directory's bytes: a content hash for provenance and resume.
/// It detects change, not tampering (nobody forges a checkpoint to collide with a resume key),
/// and costs a third of what Common's SHA-256 does per byte.
public enum ContentHash {
    static let offset: UInt64 = 0xCBF2_9CE4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01B3

    public static func fnv1a(_ bytes: UnsafeRawBufferPointer, into h: inout UInt64) {
        for b in bytes { h = (h ^ UInt64(b)) &* prime }
    }

    public static func of(string s: String) -> String {
        var h = offset
        Array(s.utf8).withUnsafeBytes { fnv1a($0, into: &h) }
        return hex(h)
    }

    /// Files in sorted relative-path order, each as its path then its bytes. Hidden files
    /// (temporaries) are skipped.
    public static func of(path url: URL) throws -> String {
        var h = offset
        for (rel, f) in try files(url) {
            Array(rel.utf8).withUnsafeBytes { fnv1a($0, into: &h) }
            let d = try Data(contentsOf: f, options: .alwaysMapped)
            d.withUnsafeBytes { fnv1a($0, into: &h) }
        }
        return hex(h)
    }

    /// What a resume key of `slmrec apply`/`sasrec` needs of an input: its identity, not its
    /// content. Each file's relative path, size, inode and modification time (ns), all of
    /// which change when a file is rewritten, in place or atomically, without reading it
    /// (hashing the content runs at ~680 MB/s here: 0.6 s for a 400 MB checkpoint, paid by
    /// every `apply`, training or not). The run's provenance keeps the content hash above.
    public static func identity(of url: URL) throws -> String {
        var h = offset
        for (rel, f) in try files(url) {
            var st = stat()
            guard stat(f.path, &st) == 0 else { throw ToolbenchError(f.path, problem: "cannot be read", fix: "check the path") }
            let text = "\(rel)\u{0}\(st.st_size)\u{0}\(st.st_ino)\u{0}\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)\u{0}"
            Array(text.utf8).withUnsafeBytes { fnv1a($0, into: &h) }
        }
        return hex(h)
    }

    /// The regular files of a file or directory (relative path, URL), sorted, hidden skipped.
    static func files(_ url: URL) throws -> [(String, URL)] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ToolbenchError(url.path, problem: "does not exist", fix: "check the path")
        }
        guard isDir.boolValue else { return [("", url)] }
        var files: [(String, URL)] = []
        let e = fm.enumerator(at: url, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
        while let f = e?.nextObject() as? URL {
            if (try? f.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                files.append((String(f.path.dropFirst(url.path.count)), f))
            }
        }
        return files.sorted { $0.0 < $1.0 }
    }

    static func hex(_ h: UInt64) -> String {
        let s = String(h, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - s.count) + s
    }
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
}

public struct RecipeRunner: Sendable {
    public var evaluator: (any StageEvaluator)?
    public var quiet: Bool

    public init(evaluator: (any StageEvaluator)?, quiet: Bool = false) {
        self.evaluator = evaluator
        self.quiet = quiet
    }

    public static let stageFile = "stage.json"

    /// A run ends with its comparison report in `report/` (written by the CLI's `Reports`);
    /// the run directory's layout, and so what the report directory holds, is the host's.
    public static let reportDirectory = "report"
    public static let reportFiles = ["report.md", "report.csv", "report.json", "report.svg"]
    public static let reportKind = OutputKind(name: "report", files: reportFiles, required: [])

    /// What a run directory holds (docs/recipes.md), for the output guard: `--force`
    /// replaces a directory like this and nothing else.
    public static let runDirectoryKind: OutputKind = {
        let stage = OutputKind(name: "stage directory", files: ["metrics.json", "log.txt", stageFile], required: [],
                               directories: [ArtifactKind.checkpoint.rawValue: Checkpoint.outputKind,
                                             ArtifactKind.adapter.rawValue: LoRAAdapter.outputKind])
        let evaluatedInput = OutputKind(name: "evaluated input", files: ["metrics.json"], required: ["metrics.json"])
        return OutputKind(name: "run directory", files: ["recipe.effective.json", "inputs.json"], required: ["recipe.effective.json"],
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
    public func run(_ plan: Plan, runDirectory: URL, resume: Bool, force: Bool = false) throws -> [StageRecord] {
        let fm = FileManager.default
        if resume && force {
            throw ToolbenchError(runDirectory.path, problem: "--resume continues the run directory and --force replaces it", fix: "give one of them")
        }
        AtomicFile.recover(runDirectory)
        let existing = try Self.checkRunDirectory(runDirectory, plan: plan, resume: resume, force: force)
        if existing == .previousOutput && force {
            try AtomicFile.replaceWithEmptyDirectory(runDirectory)
            if !quiet { logLine("replaced the previous run directory \(runDirectory.path) (--force)") }
        }
        try fm.createDirectory(at: runDirectory, withIntermediateDirectories: true)
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
                let url = resolve(p, plan.baseDirectory)
                if pathHashes[url.path] == nil { pathHashes[url.path] = try ContentHash.of(path: url) }
            }
        }
        if !pathHashes.isEmpty { hashes["option_paths"] = .object(pathHashes.mapValues { .string($0) }) }
        try AtomicFile.write(JSONText.pretty(plan.effectiveRecipe), to: runDirectory.appendingPathComponent("recipe.effective.json"))
        try AtomicFile.write(JSONText.pretty(.object(hashes)), to: runDirectory.appendingPathComponent("inputs.json"))

        var records: [StageRecord] = []
        var dirs: [String: URL] = [:]
        for (n, a) in plan.inputs { dirs[n] = a.url }
        for s in plan.stages {
            let stageDir = runDirectory.appendingPathComponent(s.name)
            var keyObj: [String: JSONValue] = [
                "pass": .string(s.pass.name), "options": s.effectiveOptions, "seed": .int(Int(truncatingIfNeeded: s.seed)),
                "input": .string(keys[s.input] ?? "?"),
                "references": .object(s.references.mapValues { .string(keys[$0] ?? "?") }),
            ]
            let paths = s.options.inputPaths.map { resolve($0, plan.baseDirectory).path }
            keyObj["option_paths"] = .array(paths.map { .string(pathHashes[$0] ?? "?") })
            let key = ContentHash.of(string: JSONText.compact(.object(keyObj)))
            keys[s.name] = key
            let refDir: (String, ArtifactKind) -> URL = { name, kind in
                if let d = dirs[name], plan.inputs[name] != nil { return d }
                return runDirectory.appendingPathComponent(name).appendingPathComponent(kind.rawValue)
            }
            if resume, let data = fm.contents(atPath: stageDir.appendingPathComponent(Self.stageFile).path),
               let rec = try? JSONDecoder().decode(JSONValue.self, from: data), rec.objectValue?["key"]?.stringValue == key {
                say("[\(s.index + 1)/\(plan.stages.count)] \(s.name): unchanged, skipped (--resume)")
                records.append(StageRecord(name: s.name, skipped: true, seconds: 0, directory: stageDir))
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
            where old != work.lastPathComponent && old.hasPrefix("\(s.name)-")
                && old.dropFirst(s.name.count + 1).count == 16 && old.dropFirst(s.name.count + 1).hasPrefix("fnv1a64:") {
                try? fm.removeItem(at: work.deletingLastPathComponent().appendingPathComponent(old))
                say("    removed the training state of an earlier version of \(s.name) (.work/\(old)): its options or inputs changed")
            }
            do {
                if !resume { try? fm.removeItem(at: work) }
                try AtomicFile.writeDirectory(stageDir) { tmp in
                    try fm.createDirectory(at: work, withIntermediateDirectories: true)
                    var refs: [String: URL] = [:]
                    for (r, target) in s.references {
                        let kind = s.pass.references.first { $0.name == r }?.kind ?? .checkpoint
                        refs[r] = refDir(target, kind)
                    }
                    let ctx = PassContext(input: refDir(s.input, .checkpoint), references: refs, workDirectory: work,
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
            } catch let e as ToolbenchError {
                throw e.within("\(plan.recipe.path): stage \"\(s.name)\"")
            } catch let e as Interrupted {
                throw e   // the CLI prints how to resume and exits 128 + signal
            } catch {
                throw ToolbenchError("\(plan.recipe.path): stage \"\(s.name)\"", problem: "\(error)", fix: "the stage's output was not written; fix the cause and rerun with --resume")
            }
            // The training state goes only once the stage directory is in place: a kill during
            // the stage's evaluation or while writing it must not cost the training.
            try? fm.removeItem(at: work)
            // Drop the run's .work directory once no stage has state in it.
            if (try? fm.contentsOfDirectory(atPath: work.deletingLastPathComponent().path))?.isEmpty ?? false {
                try? fm.removeItem(at: work.deletingLastPathComponent())
            }
            let secs = Date().timeIntervalSince(start)
            say(String(format: "    done in %.2f s → %@", secs, stageDir.path))
            records.append(StageRecord(name: s.name, skipped: false, seconds: secs, directory: stageDir))
        }
        return records
    }

    func resolve(_ p: String, _ base: URL) -> URL { resolvePath(p, relativeTo: base) }
}
