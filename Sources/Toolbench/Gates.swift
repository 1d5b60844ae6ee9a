import Foundation
import Common
import Evaluation

// Quality gates, sweeps and selection (docs/recipes.md#gates-sweeps-and-selection): the
// recipe, not the reader of a table, decides which student is good enough and which one to
// keep. Every decision reads the *validation* split (never the test split, which is reported
// once): a gate or a `select` makes the runner measure each stage it judges on validation,
// with the recipe's `evaluate` data, users and both protocols.

/// A metric a gate or a selection reads: `full.NDCG@10` or `sampled.MRR`, optionally written
/// `valid.full.NDCG@10`. Always the validation split.
public struct ValidationMetric: Sendable, Equatable, CustomStringConvertible {
    public var candidates: Candidates
    public var name: String
    /// The key in an evaluation's qualified metrics ("full.NDCG@10").
    public var key: String { MetricName.qualified(candidates, name) }
    public var description: String { "valid.\(key)" }

    /// How a metric written in a recipe is shown: "valid.full.NDCG@10" (as written when it
    /// does not parse; planning has refused those already).
    public static func display(_ text: String) -> String { (try? parse(text, at: ""))?.description ?? text }

    public static func parse(_ text: String, at path: String) throws -> ValidationMetric {
        var parts = text.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        if parts.first == "test" {
            throw ToolbenchError(path, problem: "\"\(text)\" reads the test split, but gates and selection read the validation split only (the test split is reported once, never tuned on)",
                                 fix: "write \"valid.\(parts.dropFirst().joined(separator: "."))\" or \"\(parts.dropFirst().joined(separator: "."))\"")
        }
        if parts.first == "valid" { parts.removeFirst() }
        let known = MetricName.reported + ["MRR@10"]
        guard parts.count == 2, let c = Candidates(rawValue: parts[0]), c != .both, known.contains(parts[1]) else {
            throw ToolbenchError(path, problem: "\"\(text)\" is not a metric\(suggestion(parts.last ?? text, known))",
                                 fix: "write PROTOCOL.METRIC with PROTOCOL full or sampled and METRIC one of \(known.joined(separator: ", ")) (e.g. \"full.NDCG@10\")")
        }
        return ValidationMetric(candidates: c, name: parts[1])
    }
}

/// `gate: { metric: "full.NDCG@10", min_ratio: 0.97, of: "teacher" }` (relative to another
/// stage or recipe input) or `{ metric: …, min: 0.025 }` (absolute). A stage that fails its
/// gate is marked; its dependants are skipped (`on_fail: "skip"`, the default) or still run
/// (`"continue"`).
public struct GateSpec: Codable, Sendable, Equatable {
    public enum OnFail: String, Codable, Sendable, OptionChoice { case skip, `continue` }
    public var metric: String
    public var min: Double?
    public var minRatio: Double?
    public var of: String?
    public var onFail: OnFail

    enum CodingKeys: String, CodingKey { case metric, min, minRatio = "min_ratio", of, onFail = "on_fail" }

    public init(metric: String, min: Double? = nil, minRatio: Double? = nil, of: String? = nil, onFail: OnFail = .skip) {
        self.metric = metric; self.min = min; self.minRatio = minRatio; self.of = of; self.onFail = onFail
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metric = try c.decode(String.self, forKey: .metric)
        min = try c.decodeIfPresent(Double.self, forKey: .min)
        minRatio = try c.decodeIfPresent(Double.self, forKey: .minRatio)
        of = try c.decodeIfPresent(String.self, forKey: .of)
        onFail = try c.decodeChoiceIfPresent(OnFail.self, forKey: .onFail) ?? .skip
    }

    /// The checks that need no other stage: a metric that exists, exactly one threshold, `of`
    /// with `min_ratio` only, finite positive numbers.
    public func validated(at path: String) throws -> ValidationMetric {
        let m = try ValidationMetric.parse(metric, at: "\(path).metric")
        switch (min, minRatio) {
        case (nil, nil): throw ToolbenchError(path, problem: "no threshold", fix: "give min: VALUE (absolute) or min_ratio: R with of: \"<stage or input>\"")
        case (.some, .some): throw ToolbenchError(path, problem: "both min and min_ratio", fix: "give one threshold")
        case (let v?, nil):
            if of != nil { throw ToolbenchError("\(path).of", problem: "of is the reference of min_ratio; min is absolute", fix: "drop of, or use min_ratio") }
            guard v.isFinite else { throw ToolbenchError("\(path).min", problem: "\(v) is not a finite number", fix: "give a number") }
        case (nil, let r?):
            guard of != nil else { throw ToolbenchError(path, problem: "min_ratio without of", fix: "name the stage or input it is a ratio of: of: \"teacher\"") }
            guard r.isFinite, r > 0 else { throw ToolbenchError("\(path).min_ratio", problem: "\(r) is not a positive number", fix: "give a ratio such as 0.97") }
        }
        return m
    }

    /// The outcome for a stage whose metric is `value` (and whose reference scored `reference`).
    public func judge(value: Double, reference: Double?) -> GateOutcome {
        let threshold = min ?? (minRatio ?? 0) * (reference ?? .nan)
        return GateOutcome(metric: ValidationMetric.display(metric), value: value,
                           threshold: threshold, of: of, referenceValue: reference, passed: value.isFinite && threshold.isFinite && value >= threshold)
    }
}

/// What a gate measured and decided (metrics.json `gate`, the report's gate column).
public struct GateOutcome: Codable, Sendable, Equatable {
    public var metric: String
    public var value: Double
    public var threshold: Double
    public var of: String?
    public var referenceValue: Double?
    public var passed: Bool

    enum CodingKeys: String, CodingKey { case metric, value, threshold, of, referenceValue = "reference_value", passed }

    public init(metric: String, value: Double, threshold: Double, of: String?, referenceValue: Double?, passed: Bool) {
        self.metric = metric; self.value = value; self.threshold = threshold; self.of = of; self.referenceValue = referenceValue; self.passed = passed
    }

    // A metric that was not measured is NaN here and null in JSON (which has no NaN).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metric = try c.decode(String.self, forKey: .metric)
        value = try c.decodeIfPresent(Double.self, forKey: .value) ?? .nan
        threshold = try c.decodeIfPresent(Double.self, forKey: .threshold) ?? .nan
        of = try c.decodeIfPresent(String.self, forKey: .of)
        referenceValue = try c.decodeIfPresent(Double.self, forKey: .referenceValue)
        passed = try c.decode(Bool.self, forKey: .passed)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(metric, forKey: .metric)
        try c.encode(value.isFinite ? value : nil, forKey: .value)
        try c.encode(threshold.isFinite ? threshold : nil, forKey: .threshold)
        try c.encodeIfPresent(of, forKey: .of)
        try c.encodeIfPresent(referenceValue.flatMap { $0.isFinite ? $0 : nil }, forKey: .referenceValue)
        try c.encode(passed, forKey: .passed)
    }

    public var summary: String {
        let rel = of.map { " (\(fmt(threshold / max(referenceValue ?? 1, 1e-300))) × \($0)'s \(fmt(referenceValue ?? .nan)))" } ?? ""
        return "\(metric) \(fmt(value)) \(passed ? "≥" : "<") \(fmt(threshold))\(rel): \(passed ? "passed" : "FAILED")"
    }
    private func fmt(_ v: Double) -> String { String(format: "%.4g", v) }
}

/// `select: { best: "valid.full.MRR" }` or `{ smallest: "params", gate: {…} }` on a grid stage:
/// which variant the stages that read the group get.
public struct SelectSpec: Codable, Sendable, Equatable {
    public enum Size: String, Codable, Sendable, OptionChoice { case params, bytes }
    public var best: String?
    public var smallest: Size?
    public var gate: GateSpec?

    enum CodingKeys: String, CodingKey { case best, smallest, gate }

    public init(best: String? = nil, smallest: Size? = nil, gate: GateSpec? = nil) { self.best = best; self.smallest = smallest; self.gate = gate }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        best = try c.decodeIfPresent(String.self, forKey: .best)
        smallest = try c.decodeChoiceIfPresent(Size.self, forKey: .smallest)
        gate = try c.decodeIfPresent(GateSpec.self, forKey: .gate)
    }

    public func validate(at path: String) throws {
        switch (best, smallest) {
        case (nil, nil): throw ToolbenchError(path, problem: "no criterion", fix: "give best: \"valid.full.MRR\" or smallest: \"params\" (with a gate)")
        case (.some, .some): throw ToolbenchError(path, problem: "both best and smallest", fix: "give one criterion (a gate may go with either)")
        case (let b?, nil): _ = try ValidationMetric.parse(b, at: "\(path).best")
        case (nil, .some): break
        }
        if let gate { _ = try gate.validated(at: "\(path).gate") }
    }

    public var summary: String {
        var s = best.map { "best \(ValidationMetric.display($0))" } ?? "smallest \(smallest?.rawValue ?? "")"
        if let g = gate { s += " among the variants with \(ValidationMetric.display(g.metric)) ≥ " + (g.min.map { "\($0)" } ?? "\(g.minRatio ?? 0) × \(g.of ?? "?")") }
        return s
    }
}

/// The variants of one grid stage, and how dependants get one of them.
public struct StageGroup: Sendable {
    public var name: String
    public var variants: [String]
    /// The option values of each variant (key path → value), in variant order.
    public var values: [[String: JSONValue]]
    public var select: SelectSpec?
}

/// What a selection decided (selections.json, the report's "Selection" section).
public struct SelectionRecord: Codable, Sendable, Equatable {
    public struct Candidate: Codable, Sendable, Equatable {
        public var variant: String
        public var criterion: Double?
        public var gate: GateOutcome?
        public init(variant: String, criterion: Double?, gate: GateOutcome?) { self.variant = variant; self.criterion = criterion; self.gate = gate }
    }
    public var group: String
    public var rule: String
    public var selected: String?
    public var reason: String
    public var candidates: [Candidate]

    public init(group: String, rule: String, selected: String?, reason: String, candidates: [Candidate]) {
        self.group = group; self.rule = rule; self.selected = selected; self.reason = reason; self.candidates = candidates
    }
}

/// What a run's gates.json and selections.json hold.
public struct Judgements: Sendable, Equatable {
    /// gates.json: each judged stage's gate, and each stage not run with the reason.
    public struct Gates: Codable, Sendable, Equatable {
        public var gates: [String: GateOutcome]
        public var skipped: [String: String]
        public init(gates: [String: GateOutcome], skipped: [String: String]) { self.gates = gates; self.skipped = skipped }
    }
    public var gates: [String: GateOutcome]
    public var skipped: [String: String]
    public var selections: [SelectionRecord]
    public var isEmpty: Bool { gates.isEmpty && skipped.isEmpty && selections.isEmpty }
}

/// Grid expansion: `grid: { keep: [1, 2, 4], lambda_norm: [0.0005, 0.01] }` → one stage per
/// combination (the cartesian product, keys in sorted order), named from the values.
public enum GridExpansion {
    /// `keep` → "keep", `lambda_norm` → "ln" (initials of multi-word keys), `inner.lambda` →
    /// "lambda" (the last path segment); keys that would collide keep their full last segment.
    public static func labels(_ keys: [String]) -> [String: String] {
        func short(_ k: String) -> String {
            let last = String(k.split(separator: ".").last ?? Substring(k))
            let words = last.split(separator: "_")
            return words.count > 1 ? String(words.compactMap(\.first)) : last
        }
        var out: [String: String] = [:]
        let shorts = keys.map(short)
        for (k, s) in zip(keys, shorts) {
            let full = String(k.split(separator: ".").last ?? Substring(k)).replacingOccurrences(of: "_", with: "")
            out[k] = shorts.filter { $0 == s }.count > 1 ? full : s
        }
        return out
    }

    /// A value as it appears in a variant name: 2, 0.01, 1e-05, true, cos, 0_2_5_7.
    public static func text(_ v: JSONValue) -> String {
        switch v {
        case .int(let i): return String(i)
        case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : "\(d)"
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .array(let a): return a.map(text).joined(separator: "_")
        case .null: return "null"
        case .object: return "obj"
        }
    }

    /// The combinations, first key slowest, each with its variant name `<stage>-<label><value>…`.
    public static func expand(stage: String, grid: [String: JSONValue], at path: String) throws -> [(name: String, values: [String: JSONValue])] {
        if grid.isEmpty { throw ToolbenchError(path, problem: "empty grid", fix: "give at least one option with a list of values, e.g. grid: { keep: [2, 4] }") }
        let keys = grid.keys.sorted()
        var lists: [[JSONValue]] = []
        for k in keys {
            guard let vs = grid[k]?.arrayValue else {
                throw ToolbenchError("\(path).\(k)", problem: "not a list of values", fix: "write \(k): [v1, v2, …]")
            }
            if vs.isEmpty { throw ToolbenchError("\(path).\(k)", problem: "no values", fix: "give at least one value") }
            if Set(vs.map(text)).count != vs.count { throw ToolbenchError("\(path).\(k)", problem: "repeated values \(vs.map(text))", fix: "give each value once") }
            lists.append(vs)
        }
        let label = labels(keys)
        var combos: [[JSONValue]] = [[]]
        for vs in lists { combos = combos.flatMap { c in vs.map { c + [$0] } } }
        return combos.map { c in
            let name = ([stage] + zip(keys, c).map { "\(label[$0] ?? $0)\(text($1))" }).joined(separator: "-")
            return (name, Dictionary(uniqueKeysWithValues: zip(keys, c).map { ($0, $1) }))
        }
    }

    /// The value at `path` (dotted) in `options`, if any.
    public static func value(_ options: JSONValue, path: String) -> JSONValue? {
        var node: JSONValue? = options
        for k in path.split(separator: ".") { node = node?.objectValue?[String(k)] }
        return node
    }

    /// `options` with `path` (dotted: `inner.lambda`) set to `value`.
    public static func setting(_ options: JSONValue, path: String, to value: JSONValue) -> JSONValue {
        let parts = path.split(separator: ".").map(String.init)
        func set(_ node: JSONValue, _ rest: ArraySlice<String>) -> JSONValue {
            guard let k = rest.first else { return value }
            var o = node.objectValue ?? [:]
            o[k] = set(o[k] ?? .object([:]), rest.dropFirst())
            return .object(o)
        }
        return set(options, parts[...])
    }
}
