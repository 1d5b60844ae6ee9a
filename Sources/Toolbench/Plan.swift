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
    /// The stage's quality bar on the validation split (Gates.swift).
    public var gate: GateSpec? = nil
    /// The grid stage this stage is a variant of.
    public var group: String? = nil
}

public struct Plan: Sendable {
    public var recipe: Recipe
    public var baseDirectory: URL
    /// Recipe inputs: name → (kind, directory).
    public var inputs: [String: (kind: ArtifactKind, url: URL)]
    public var stages: [PlannedStage]
    /// Grid stages by name: their variants (stages of their own) and selection.
    public var groups: [String: StageGroup] = [:]
    /// `compare` with each group named there replaced by its variants.
    public var compare: [String] = []

    /// A name as stages list it: a group stands for its variants.
    public func expand(_ names: [String]) -> [String] { names.flatMap { groups[$0]?.variants ?? [$0] } }

    /// Stages and recipe inputs whose validation metrics a gate or a selection reads.
    public var judged: Set<String> {
        var out = Set<String>()
        for s in stages {
            if let g = s.gate { out.insert(s.name); if let of = g.of { out.formUnion(expand([of])) } }
            if let grp = s.group, let sel = groups[grp]?.select {
                if sel.best != nil || sel.gate != nil { out.insert(s.name) }
                if let of = sel.gate?.of { out.formUnion(expand([of])) }
            }
        }
        return out
    }

    /// The stages a run of `names` needs: those stages and, transitively, every earlier stage
    /// they read (their input and their references). `slmrec run --stage` runs only these, so a
    /// lab notebook of 30 stages can be run a part at a time (docs/recipes.md#running-a-part).
    public func stagesNeeded(for names: [String]) throws -> Set<String> {
        let byName = Dictionary(stages.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var needed = Set<String>()
        var todo: [String] = []
        for n in expand(names) {
            guard byName[n] != nil else {
                throw ToolbenchError("\(recipe.path): --stage \(n)", problem: "the recipe has no stage \"\(n)\"",
                                     fix: "give one of: \((stages.map(\.name) + groups.keys.sorted()).joined(separator: ", "))")
            }
            todo.append(n)
        }
        while let n = todo.popLast() {
            guard let s = byName[n], needed.insert(n).inserted else { continue }
            // Recipe inputs are files, not stages: only stage names are followed. A group is
            // all of its variants (the selection needs every one); a gate needs its reference.
            var deps = [s.input] + s.references.values.sorted()
            if let of = s.gate?.of { deps.append(of) }
            if let grp = s.group, let of = groups[grp]?.select?.gate?.of { deps.append(of) }
            for dep in expand(deps) where byName[dep] != nil { todo.append(dep) }
        }
        return needed
    }

    /// The recipe with every default filled in (saved as recipe.effective.json).
    public var effectiveRecipe: JSONValue {
        var top: [String: JSONValue] = [
            "inputs": .object(inputs.mapValues { .string($0.url.path) }),
            "seed": .int(Int(truncatingIfNeeded: recipe.seed)),
            "compare": .array(compare.map { .string($0) }),
            "stages": .array(stages.map { s in
                .object(["name": .string(s.name), "pass": .string(s.pass.name), "input": .string(s.input),
                         "references": .object(s.references.mapValues { .string($0) }),
                         "options": s.effectiveOptions, "seed": .int(Int(truncatingIfNeeded: s.seed)), "evaluate": .bool(s.evaluate)]
                    .merging(s.gate.flatMap { try? JSONValue.encoding($0) }.map { ["gate": $0] } ?? [:]) { a, _ in a }
                    .merging(s.group.map { ["group": .string($0)] } ?? [:]) { a, _ in a })
            }),
        ]
        if !groups.isEmpty {
            top["groups"] = .object(groups.mapValues { g in
                .object(["variants": .array(g.variants.map { .string($0) }),
                         "select": g.select.flatMap { try? JSONValue.encoding($0) } ?? .null])
            })
        }
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
        if recipe.stages.isEmpty { throw ToolbenchError("\(file): stages", problem: "no stages", fix: "add at least one stage") }
        // Grids first: each grid stage becomes its variants, in place, with the grid stage's
        // seed (a sweep compares option values, not seeds) and its name as their group.
        var groups: [String: StageGroup] = [:]
        var expanded: [(stage: RecipeStage, index: Int)] = []
        for (i, s) in recipe.stages.enumerated() {
            let at = "\(file): stage \"\(s.name)\" (stages[\(i)])"
            // A stage whose input is a group without a selection runs once per variant: it
            // becomes a group of its own, variant for variant (pruned-keep2 → ft-keep2), so a
            // sweep carries down a chain of stages.
            let mapped = (s.input ?? (i > 0 ? recipe.stages[i - 1].name : nil)).flatMap { n in groups[n].flatMap { $0.select == nil ? $0 : nil } }
            if let over = mapped {
                if s.grid != nil {
                    throw ToolbenchError("\(at).grid", problem: "the stage already runs once per variant of \(over.name)", fix: "put the grid on \(over.name), or read one variant of it by name")
                }
                guard validName(s.name) else { throw ToolbenchError(at, problem: "\"\(s.name)\" is not a valid stage name", fix: "use letters, digits, '-', '_' (it becomes a directory name)") }
                if groups[s.name] != nil { throw ToolbenchError(at, problem: "the name \"\(s.name)\" is already used by an earlier grid", fix: "give every stage a unique name") }
                try s.select?.validate(at: "\(at).select")
                var names: [String] = []
                for v in over.variants {
                    var m = s
                    m.name = s.name + v.dropFirst(over.name.count)
                    m.input = v; m.select = nil; m.group = s.name
                    m.seed = StageSeed.of(s, in: recipe)
                    expanded.append((m, i)); names.append(m.name)
                }
                groups[s.name] = StageGroup(name: s.name, variants: names, values: over.values, select: s.select)
                continue
            }
            guard let grid = s.grid else {
                if s.select != nil { throw ToolbenchError("\(at).select", problem: "select without grid", fix: "select picks one variant of a grid (or of a stage that reads a grid): add grid: { option: [v1, v2] }, or remove select") }
                expanded.append((s, i)); continue
            }
            guard validName(s.name) else { throw ToolbenchError(at, problem: "\"\(s.name)\" is not a valid stage name", fix: "use letters, digits, '-', '_' (it becomes a directory name)") }
            if groups[s.name] != nil { throw ToolbenchError(at, problem: "the name \"\(s.name)\" is already used by an earlier grid", fix: "give every stage a unique name") }
            try s.select?.validate(at: "\(at).select")
            let combos = try GridExpansion.expand(stage: s.name, grid: grid, at: "\(at).grid")
            for c in combos {
                var v = s
                v.name = c.name; v.grid = nil; v.select = nil; v.group = s.name
                v.seed = StageSeed.of(s, in: recipe)
                for (k, value) in c.values.sorted(by: { $0.key < $1.key }) {
                    if GridExpansion.value(s.options, path: k) != nil {
                        throw ToolbenchError("\(at).grid.\(k)", problem: "\(k) is also set in options", fix: "give it in one place: the grid's values or options.\(k)")
                    }
                    v.options = GridExpansion.setting(v.options, path: k, to: value)
                }
                guard validName(v.name) else {
                    throw ToolbenchError("\(at).grid", problem: "the variant name \"\(v.name)\" is not a valid stage name (letters, digits, '-', '_', '.', at most 64)",
                                         fix: "use a shorter stage name or simpler values")
                }
                expanded.append((v, i))
            }
            groups[s.name] = StageGroup(name: s.name, variants: combos.map(\.name), values: combos.map(\.values), select: s.select)
        }
        let allStageNames = expanded.map(\.stage.name)
        // The models a name may stand for: one, or one per variant of a group read through its
        // selection (a stage reading a group must plan with every variant it may get).
        var alternatives: [String: [ModelSummary]] = [:]
        var groupInput: [String: String] = [:]
        for (i, (s, origin)) in expanded.enumerated() {
            let at = "\(file): stage \"\(s.name)\" (stages[\(origin)])"
            guard validName(s.name) else { throw ToolbenchError(at, problem: "\"\(s.name)\" is not a valid stage name", fix: "use letters, digits, '-', '_' (it becomes a directory name)") }
            if let seed = s.seed, seed > StageSeed.limit {
                throw ToolbenchError(at, problem: "seed \(seed) is above \(StageSeed.limit)", fix: "give a seed that fits a signed 64-bit integer")
            }
            if known[s.name] != nil || recipe.inputs[s.name] != nil {
                throw ToolbenchError(at, problem: "the name \"\(s.name)\" is already used by an input or an earlier stage", fix: "give every stage a unique name")
            }
            func lookup(_ ref: String, role: String) throws -> PlannedArtifact {
                if let a = known[ref] { return a }
                if let g = groups[ref] {
                    guard g.select != nil else {
                        throw ToolbenchError(at, problem: "\(role) \"\(ref)\" is a grid of \(g.variants.count) variants with no select",
                                             fix: "add select: { best: \"valid.full.MRR\" } (or smallest: \"params\" with a gate) to \(ref), or read one variant: \(g.variants.joined(separator: ", "))")
                    }
                    if let first = g.variants.first, let a = known[first] { return a }
                }
                if let later = allStageNames.firstIndex(of: groups[ref]?.variants.first ?? ref), later >= i {
                    throw ToolbenchError(at, problem: "\(role) \"\(ref)\" refers to a stage that comes later (stages[\(expanded[later].index)])",
                                         fix: "a stage can read only recipe inputs and earlier stages; reorder the stages")
                }
                let names = (Array(known.keys) + groups.keys.filter { groups[$0]?.select != nil }).sorted()
                throw ToolbenchError(at, problem: "\(role) \"\(ref)\" is not a recipe input or an earlier stage\(suggestion(ref, names))",
                                     fix: "known names here: \(names.joined(separator: ", "))")
            }
            let pass: AnyPass
            do { pass = try registry.pass(named: s.pass) } catch let e as ToolbenchError { throw e.within(at) }
            // The variants of a grid share the grid stage's input (not each the one before).
            guard let inputName = s.input ?? s.group.flatMap({ groupInput[$0] }) ?? lastCheckpoint else {
                throw ToolbenchError(at, problem: "no input", fix: "set input: \"<recipe input or earlier stage>\"")
            }
            if let g = s.group, groupInput[g] == nil { groupInput[g] = inputName }
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
            // Every model the input and the checkpoint references may be (one each, unless a
            // name is a group read through its selection): the stage must plan with all.
            func models(_ name: String) -> [ModelSummary] {
                alternatives[name] ?? groups[name].map { $0.variants.flatMap { alternatives[$0] ?? [] } } ?? []
            }
            var combos: [(ModelSummary, [String: PlannedArtifact])] = [(inModel, refs)]
            let inAlternatives = models(inputName)
            if inAlternatives.count > 1 { combos = inAlternatives.map { ($0, refs) } }
            for (rname, target) in s.references.sorted(by: { $0.key < $1.key }) where refs[rname]?.kind == .checkpoint {
                let alts = models(target)
                guard alts.count > 1 else { continue }
                combos = combos.flatMap { c in alts.map { m in (c.0, c.1.merging([rname: PlannedArtifact(kind: .checkpoint, model: m, existingPath: nil)]) { $1 }) } }
            }
            var outs: [PlannedOutput] = []
            for (m, r) in combos {
                do { outs.append(try pass.check(m, options: options, references: r)) } catch let e as ToolbenchError {
                    throw e.within(combos.count > 1 ? "\(at), with one of the variants it may read (\(m.numLayers) layers)" : at)
                } catch { throw ToolbenchError(at, problem: "\(error)", fix: "fix the stage or its input") }
            }
            let out = outs[0]
            if let g = s.gate {
                _ = try g.validated(at: "\(at).gate")
                if recipe.evaluate == nil {
                    throw ToolbenchError("\(at).gate", problem: "a gate measures the validation split with the recipe's evaluate block, and the recipe has none",
                                         fix: "add evaluate: { data: \"<prepared dataset>\" }")
                }
                if let of = g.of { _ = try lookup(of, role: "gate.of") }
            }
            if let grp = s.group, let sel = groups[grp]?.select, sel.best != nil || sel.gate != nil, recipe.evaluate == nil {
                throw ToolbenchError("\(file): stage \"\(grp)\".select", problem: "selection measures the validation split with the recipe's evaluate block, and the recipe has none",
                                     fix: "add evaluate: { data: \"<prepared dataset>\" }")
            }
            if let grp = s.group, let of = groups[grp]?.select?.gate?.of, groups[grp]?.variants.first == s.name { _ = try lookup(of, role: "select.gate.of") }
            if out.checkpoint == nil && !out.adapter {
                throw ToolbenchError(at, problem: "pass \(pass.name) plans no output", fix: "this is a bug in the pass")
            }
            known[s.name] = PlannedArtifact(kind: out.checkpoint != nil ? .checkpoint : .adapter, model: out.checkpoint, existingPath: nil)
            var distinct: [ModelSummary] = []
            for o in outs { if let m = o.checkpoint, !distinct.contains(m) { distinct.append(m) } }
            alternatives[s.name] = distinct
            if out.adapter { adapters.insert(s.name) }
            // After a grid, the next stage's default input is the group's selection (none
            // without a select: it must name a variant).
            if out.checkpoint != nil { lastCheckpoint = s.group.map { groups[$0]?.select != nil ? $0 : nil } ?? s.name }
            if let grp = s.group, groups[grp]?.variants.last == s.name, groups[grp]?.select != nil, out.adapter { adapters.insert(grp) }
            stages.append(PlannedStage(index: i, name: s.name, pass: pass, options: options, effectiveOptions: effective,
                                       input: inputName, references: s.references, seed: StageSeed.of(s, in: recipe),
                                       evaluate: s.evaluate ?? true, inputModel: inModel, output: out, gate: s.gate, group: s.group))
        }
        for (g, grp) in groups where grp.select != nil {
            // A group read through its selection is a checkpoint like its variants.
            if let first = grp.variants.first, let a = known[first] { known[g] = a }
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
        func expandGroups(_ names: [String]) -> [String] { names.flatMap { groups[$0]?.variants ?? [$0] } }
        let compare = expandGroups(recipe.compare)
        try checkNames(compare, "compare")
        if let e = recipe.evaluate {
            if let u = e.users, u <= 0 { throw ToolbenchError("\(file): evaluate.users", problem: "users is \(u)", fix: "give a positive number, or omit it for all users") }
            if e.data.isEmpty { throw ToolbenchError("\(file): evaluate.data", problem: "empty data path", fix: "name a prepared dataset directory") }
            if let st = e.stages.map(expandGroups) {
                try checkNames(st, "evaluate.stages")
                for n in st where recipe.inputs[n] != nil {
                    throw ToolbenchError("\(file): evaluate.stages", problem: "\"\(n)\" is a recipe input; only stages are evaluated", fix: "evaluate the input with a stage, or list stages only")
                }
            }
        }
        var plan = Plan(recipe: recipe, baseDirectory: base, inputs: inputs, stages: stages)
        plan.groups = groups
        plan.compare = compare
        if var e = recipe.evaluate, let st = e.stages { e.stages = expandGroups(st); plan.recipe.evaluate = e }
        return plan
    }
}
