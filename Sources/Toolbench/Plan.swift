import Foundation
import Common
import ModelFormat

// Planning: validate a whole recipe before any work (every pass known, every option valid,
// every reference resolvable and earlier, every `check` passing on the planned shapes), with
// no tensor data read. The runner (Runner.swift) then executes the plan.

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

    /// The stages a run of `names` needs: those stages and, transitively, every earlier stage
    /// they read (their input and their references). `slmrec run --stage` runs only these, so a
    /// lab notebook of 30 stages can be run a part at a time (docs/recipes.md#running-a-part).
    public func stagesNeeded(for names: [String]) throws -> Set<String> {
        let byName = Dictionary(stages.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var needed = Set<String>()
        var todo: [String] = []
        for n in names {
            guard byName[n] != nil else {
                throw ToolbenchError("\(recipe.path): --stage \(n)", problem: "the recipe has no stage \"\(n)\"",
                                     fix: "give one of: \(stages.map(\.name).joined(separator: ", "))")
            }
            todo.append(n)
        }
        while let n = todo.popLast() {
            guard let s = byName[n], needed.insert(n).inserted else { continue }
            // Recipe inputs are files, not stages: only stage names are followed.
            for dep in [s.input] + s.references.values.sorted() where byName[dep] != nil { todo.append(dep) }
        }
        return needed
    }

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

    /// The largest seed a recipe or stage may give: every seed is recorded as a JSON integer
    /// that any reader holds as a signed 64-bit value.
    public static let limit = UInt64(Int64.max)

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
        if recipe.seed > StageSeed.limit {
            throw ToolbenchError("\(file): seed", problem: "seed \(recipe.seed) is above \(StageSeed.limit)", fix: "give a seed that fits a signed 64-bit integer")
        }
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
            if let seed = s.seed, seed > StageSeed.limit {
                throw ToolbenchError(at, problem: "seed \(seed) is above \(StageSeed.limit)", fix: "give a seed that fits a signed 64-bit integer")
            }
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
