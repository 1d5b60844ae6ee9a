import Foundation
import Common
import ModelFormat

/// The runner's bookkeeping for gates and selection (Gates.swift): validation metrics of the
/// judged stages and inputs (cached in `validation.json`, keyed by the stage key and the
/// evaluation it used), each gate's outcome, each group's pick, and which stages are blocked.
/// Outcomes are recomputed from the cached metrics on every run, so a changed threshold takes
/// effect on --resume without retraining anything.
struct Judge {
    let plan: Plan
    let runDirectory: URL
    let evaluator: (any StageEvaluator)?
    /// Under mpirun only rank 0 writes the judgements; every rank measures (RunCoordination).
    let coordination: RunCoordination
    let say: (String) -> Void
    /// Group → the variant its readers get.
    private(set) var selected: [String: String] = [:]
    /// Stage or group → why what reads it is not run.
    private var blocked: [String: String] = [:]
    private var gates: [String: GateOutcome] = [:]
    private var skipped: [String: String] = [:]
    private var selections: [SelectionRecord] = []
    private var validation: [String: [String: Double]] = [:]
    private var keys: [String: String] = [:]
    /// Plan.judged, computed once (it walks every stage).
    private let judged: Set<String>

    init(plan: Plan, runDirectory: URL, evaluator: (any StageEvaluator)?, coordination: RunCoordination = .single, say: @escaping (String) -> Void) {
        self.plan = plan; self.runDirectory = runDirectory; self.evaluator = evaluator; self.coordination = coordination; self.say = say
        judged = plan.judged
    }

    /// The evaluation gates and selection read: the recipe's data and users, validation split,
    /// both protocols.
    var spec: EvaluateSpec? {
        guard var e = plan.recipe.evaluate else { return nil }
        e.split = .valid; e.candidates = .both; e.stages = nil
        return e
    }

    func blockedReason(for s: PlannedStage) -> String? {
        var deps = [s.input] + s.references.values.sorted()
        if let of = s.gate?.of { deps.append(of) }
        for d in deps { if let r = blocked[d] { return "\(d) \(r)" } }
        return nil
    }

    /// `name` is not run because of `reason` (from blockedReason); what reads it is not either.
    mutating func skip(_ name: String, reason: String) {
        blocked[name] = "was skipped (\(reason))"
        skipped[name] = reason
        try? save()
    }

    /// After a stage is in place (run now or earlier): its validation metrics if anything
    /// judges it, and its gate.
    mutating func stageDone(_ s: PlannedStage, key: String) throws -> GateOutcome? {
        keys[s.name] = key
        guard judged.contains(s.name) else { return nil }
        let dir = runDirectory.appendingPathComponent(s.name)
        validation[s.name] = try metrics(of: s.name, checkpoint: dir.appendingPathComponent(ArtifactKind.checkpoint.rawValue),
                                         adapter: s.output.adapter ? dir.appendingPathComponent(ArtifactKind.adapter.rawValue) : nil,
                                         cache: dir.appendingPathComponent(RecipeRunner.validationFile), key: key)
        guard let g = s.gate else { return nil }
        let outcome = try judge(g, stage: s.name, at: "stage \(s.name).gate")
        gates[s.name] = outcome
        say("    gate: \(outcome.summary)")
        if !outcome.passed && g.onFail == .skip { blocked[s.name] = "failed its gate (\(outcome.summary))" }
        try recordGate(outcome, in: dir)
        try save()
        return outcome
    }

    /// After the last variant of a group: pick the variant its readers get.
    mutating func groupDone(_ s: PlannedStage, keys runKeys: inout [String: String]) {
        guard let name = s.group, let g = plan.groups[name], g.variants.last == s.name, let sel = g.select else { return }
        var candidates: [SelectionRecord.Candidate] = []
        var eligible: [(variant: String, value: Double)] = []
        for v in g.variants {
            var c = SelectionRecord.Candidate(variant: v, criterion: nil, gate: nil)
            defer { candidates.append(c) }
            if blocked[v] != nil { c.gate = gates[v]; continue }
            guard validation[v] != nil || sel.best == nil && sel.gate == nil else { continue }
            if let gate = sel.gate {
                guard let o = try? judge(gate, stage: v, at: "stage \(name).select.gate") else { continue }
                c.gate = o
                if !o.passed { continue }
            }
            if let best = sel.best, let m = try? ValidationMetric.parse(best, at: ""), let x = validation[v]?[m.key], x.isFinite {
                c.criterion = x
            } else if let size = sel.smallest {
                c.criterion = Self.size(of: runDirectory.appendingPathComponent(v).appendingPathComponent(ArtifactKind.checkpoint.rawValue), size)
            }
            if let x = c.criterion { eligible.append((v, x)) }
        }
        // best: the highest validation value; smallest: the fewest parameters / bytes. Ties go
        // to the earlier variant (grid order).
        let pick = sel.best != nil
            ? eligible.reduce(nil as (variant: String, value: Double)?) { a, b in a.map { $0.value >= b.value ? $0 : b } ?? b }
            : eligible.reduce(nil as (variant: String, value: Double)?) { a, b in a.map { $0.value <= b.value ? $0 : b } ?? b }
        let reason: String
        if let pick {
            selected[name] = pick.variant
            runKeys[name] = runKeys[pick.variant]
            reason = sel.best != nil
                ? "the highest \(sel.summary.dropFirst(5)) on the validation split: \(String(format: "%.4g", pick.value)) (of \(eligible.count) eligible)"
                : "the fewest \(sel.smallest?.rawValue ?? "") (\(Int(pick.value))) of the \(eligible.count) variants that passed\(sel.gate == nil ? "" : " the gate")"
            say("    \(name): selected \(pick.variant) — \(reason)")
        } else {
            reason = "no variant \(sel.gate != nil ? "passed the selection's gate" : "could be judged")"
            blocked[name] = "selected no variant (\(reason))"
            say("    \(name): \(reason); the stages that read \(name) are skipped")
        }
        selections.removeAll { $0.group == name }
        selections.append(SelectionRecord(group: name, rule: sel.summary, selected: pick?.variant, reason: reason, candidates: candidates))
        try? save()
    }

    /// A gate's outcome for `stage`, with its reference's validation metrics measured if needed.
    private mutating func judge(_ g: GateSpec, stage: String, at path: String) throws -> GateOutcome {
        let m = try ValidationMetric.parse(g.metric, at: "\(path).metric")
        let value = validation[stage]?[m.key] ?? .nan
        var reference: Double?
        if let of = g.of {
            let name = selected[of] ?? of
            if validation[name] == nil, let input = plan.inputs[name], input.kind == .checkpoint {
                let cache = runDirectory.appendingPathComponent("inputs").appendingPathComponent(name).appendingPathComponent(RecipeRunner.validationFile)
                validation[name] = try metrics(of: name, checkpoint: input.url, adapter: nil, cache: cache, key: (try? ContentHash.of(path: input.url)) ?? "?")
            }
            reference = validation[name]?[m.key]
        }
        return g.judge(value: value, reference: reference)
    }

    /// Validation metrics from the cache when it was made for this key and evaluation, else
    /// measured now and cached.
    private func metrics(of name: String, checkpoint: URL, adapter: URL?, cache: URL, key: String) throws -> [String: Double] {
        guard let spec, let specJSON = try? JSONValue.encoding(spec) else {
            throw ToolbenchError("stage \(name)", problem: "gates and selection need the recipe's evaluate block", fix: "add evaluate: { data: … }")
        }
        try coordination.synchronize()   // every rank reads the cache as rank 0 left it
        if let d = FileManager.default.contents(atPath: cache.path), let v = try? JSONValue.parse(d),
           v["key"]?.stringValue == key, v["evaluation"] == specJSON, let m = v["metrics"]?.objectValue {
            return m.compactMapValues(\.doubleValue)
        }
        guard let evaluator else {
            throw ToolbenchError("stage \(name)", problem: "a gate or a selection needs validation metrics, and no evaluator is configured", fix: "run it with `slmrec run`")
        }
        say("    measuring \(name) on the validation split (for its gate or selection)")
        let m: [String: Double]
        do { m = try evaluator.evaluate(stage: StageOutput(name: name, checkpoint: checkpoint, adapter: adapter, baseDirectory: plan.baseDirectory), spec: spec) } catch let e as EvaluationUnavailable {
            throw ToolbenchError("stage \(name)", problem: "its validation metrics could not be measured: \(e.reason)", fix: "fix the evaluation, then rerun with --resume")
        }
        guard coordination.writes else { return m }
        try FileManager.default.createDirectory(at: cache.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONText.write(.object(["key": .string(key), "evaluation": specJSON, "metrics": .object(m.mapValues { .number($0) })]), to: cache)
        return m
    }

    /// metrics.json says whether the stage passed its gate (rewritten when the outcome changes).
    private func recordGate(_ o: GateOutcome, in dir: URL) throws {
        guard coordination.writes else { return }
        let url = dir.appendingPathComponent("metrics.json")
        guard let d = FileManager.default.contents(atPath: url.path), var m = (try? JSONValue.parse(d))?.objectValue else { return }
        let v = try JSONValue.encoding(o)
        if m["gate"] == v { return }
        m["gate"] = v
        try JSONText.write(.object(m), to: url)
    }

    private func save() throws {
        guard coordination.writes else { return }
        if !gates.isEmpty || !skipped.isEmpty {
            try JSONText.write(encoding: Judgements.Gates(gates: gates, skipped: skipped), to: runDirectory.appendingPathComponent(RecipeRunner.gatesFile))
        }
        if !selections.isEmpty { try JSONText.write(encoding: selections, to: runDirectory.appendingPathComponent(RecipeRunner.selectionsFile)) }
    }

    /// Stored parameters (elements of every tensor, from the safetensors header) or bytes on disk.
    static func size(of checkpoint: URL, _ what: SelectSpec.Size) -> Double? {
        guard let store = try? TensorStore.open(directory: checkpoint) else { return nil }
        switch what {
        case .bytes: return Double(store.bytesOnDisk)
        case .params: return Double(store.names.reduce(0) { $0 + (store.info($1)?.shape.reduce(1, *) ?? 0) })
        }
    }
}
