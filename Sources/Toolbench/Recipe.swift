import Foundation
import Common
import ModelFormat
import RecData
import Evaluation

// A recipe: named starting checkpoints, an ordered list of stages (each one pass with its
// options and a named output), an `evaluate` block and a `compare` list. JSON5 so people can
// comment it. See docs/recipes.md.

extension Split: OptionChoice {}
extension Candidates: OptionChoice {}

/// What to measure after each stage (the evaluator itself is plugged in by the CLI).
public struct EvaluateSpec: Codable, Sendable, Equatable {
    /// A prepared dataset directory.
    public var data: String
    /// valid or test (the dataset's held-out parts).
    public var split: Split
    public var candidates: Candidates
    /// Evaluate on the first N users (nil: all).
    public var users: Int?
    /// Stages to evaluate (nil: every stage that produces a checkpoint).
    public var stages: [String]?

    enum CodingKeys: String, CodingKey { case data, split, candidates, users, stages }

    public init(data: String, split: Split = .valid, candidates: Candidates = .sampled, users: Int? = nil, stages: [String]? = nil) {
        self.data = data
        self.split = split
        self.candidates = candidates
        self.users = users
        self.stages = stages
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        data = try c.decode(String.self, forKey: .data)
        split = try c.decodeChoiceIfPresent(Split.self, forKey: .split, among: [.valid, .test]) ?? .valid
        candidates = try c.decodeChoiceIfPresent(Candidates.self, forKey: .candidates) ?? .sampled
        users = try c.decodeIfPresent(Int.self, forKey: .users)
        stages = try c.decodeIfPresent([String].self, forKey: .stages)
    }
}

public struct RecipeStage: Codable, Sendable {
    /// The output's name, used by later stages and `compare` (letters, digits, '-', '_').
    public var name: String
    public var pass: String
    /// The input checkpoint: a recipe input or an earlier stage. Default: the previous stage's
    /// checkpoint (the only recipe input for the first stage).
    public var input: String?
    /// Named references the pass declares (`teacher`, `adapter`) bound to inputs or earlier stages.
    public var references: [String: String]
    public var options: JSONValue
    public var seed: UInt64?
    /// Run the recipe's `evaluate` block after this stage (default true).
    public var evaluate: Bool?
    /// A quality bar on the validation split (Gates.swift).
    public var gate: GateSpec?
    /// Option values to sweep: the stage becomes one variant per combination (Gates.swift).
    public var grid: [String: JSONValue]?
    /// Which variant of the grid the stages that read it get.
    public var select: SelectSpec?
    /// Set on the variants a grid expands into: the grid stage's name (not read from recipes).
    public var group: String?

    enum CodingKeys: String, CodingKey { case name, pass, input, references, options, seed, evaluate, gate, grid, select }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        pass = try c.decode(String.self, forKey: .pass)
        input = try c.decodeIfPresent(String.self, forKey: .input)
        references = try c.decodeIfPresent([String: String].self, forKey: .references) ?? [:]
        options = try c.decodeIfPresent(JSONValue.self, forKey: .options) ?? .object([:])
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed)
        evaluate = try c.decodeIfPresent(Bool.self, forKey: .evaluate)
        gate = try c.decodeIfPresent(GateSpec.self, forKey: .gate)
        grid = try c.decodeIfPresent([String: JSONValue].self, forKey: .grid)
        select = try c.decodeIfPresent(SelectSpec.self, forKey: .select)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name); try c.encode(pass, forKey: .pass)
        try c.encodeIfPresent(input, forKey: .input); try c.encode(references, forKey: .references)
        try c.encode(options, forKey: .options); try c.encodeIfPresent(seed, forKey: .seed)
        try c.encodeIfPresent(evaluate, forKey: .evaluate); try c.encodeIfPresent(gate, forKey: .gate)
        try c.encodeIfPresent(grid, forKey: .grid); try c.encodeIfPresent(select, forKey: .select)
    }
}

public struct Recipe: Sendable {
    /// Where it was read from (errors name it).
    public var path: String
    public var description: String?
    public var vars: [String: JSONValue]
    /// Named starting points: checkpoint or adapter directories.
    public var inputs: [String: String]
    public var seed: UInt64
    public var evaluate: EvaluateSpec?
    public var stages: [RecipeStage]
    public var compare: [String]

    struct Body: Decodable {
        var description: String?
        var vars: [String: JSONValue]?
        var inputs: [String: String]
        var seed: UInt64?
        var evaluate: EvaluateSpec?
        var stages: [RecipeStage]
        var compare: [String]?
    }

    /// Reads a JSON5 recipe, applies `--set key=value` overrides, substitutes `${var}`s and
    /// decodes it strictly. Plan it with `Planner` before running anything.
    public static func load(path: String, overrides: [String] = []) throws -> Recipe {
        let url = URL(fileURLWithPath: path)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ToolbenchError(path, problem: "cannot read the recipe", fix: "check the path")
        }
        return try parse(data, path: path, overrides: overrides)
    }

    public static func parse(_ data: Data, path: String, overrides: [String] = []) throws -> Recipe {
        var tree = try JSONText.parseJSON5(data, file: path)
        for o in overrides { tree = try applyOverride(o, to: tree, file: path) }
        tree = try substituteVars(tree, file: path)
        let body: Body
        do { body = try StrictDecoding.decode(Body.self, from: tree, path: "", documented: ["description", "vars", "inputs", "seed", "evaluate", "stages", "compare"]) } catch let e as ToolbenchError {
            throw e.within(path)
        }
        let r = Recipe(path: path, description: body.description, vars: body.vars ?? [:], inputs: body.inputs,
                       seed: body.seed ?? 0, evaluate: body.evaluate, stages: body.stages, compare: body.compare ?? [])
        return r
    }

    // MARK: --set

    /// `key.path=value`: dotted path into the recipe; a segment after `stages` may be a stage
    /// name or an index (`stages.pruned.options.keep=4`, `stages[1].seed=3`, `vars.data=…`).
    /// The value is read as JSON5 when it parses (numbers, true, lists), else as a string.
    static func applyOverride(_ spec: String, to tree: JSONValue, file: String) throws -> JSONValue {
        guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
            throw ToolbenchError("--set \(spec)", problem: "expected key.path=value", fix: "e.g. --set vars.data=data/ml-100k")
        }
        let key = String(spec[..<eq]), text = String(spec[spec.index(after: eq)...])
        // Our JSON5 parser, not Foundation's (which traps on some numbers: docs/reliability.md).
        let value = (try? JSON5Locator.parse(text)) ?? .string(text)
        // The nesting a key can create is the recipe parser's limit too (each segment is one
        // level; counted before splitting, which is quadratic in the number of `[…]`).
        let levels = key.reduce(1) { $0 + ($1 == "." || $1 == "[" ? 1 : 0) }
        if levels > JSON5Locator.maxDepth {
            throw ToolbenchError("\(file): --set \(key.prefix(60))…", problem: "the key path has \(levels) segments, more than the \(JSON5Locator.maxDepth) levels a recipe may nest",
                                 fix: "write the path of an existing option, e.g. --set stages.kd.options.lr=1e-4")
        }
        var segments: [String] = []
        for part in key.split(separator: ".", omittingEmptySubsequences: false) {
            var p = String(part)
            while let open = p.firstIndex(of: "["), p.hasSuffix("]") {
                let head = String(p[..<open])
                let rest = String(p[p.index(after: open)...])
                if !head.isEmpty { segments.append(head) }
                let idx = String(rest.prefix(while: { $0 != "]" }))
                segments.append(idx)
                p = String(rest.dropFirst(idx.count + 1))
            }
            if !p.isEmpty { segments.append(p) }
        }
        if segments.isEmpty || segments.contains(where: \.isEmpty) {
            throw ToolbenchError("--set \(spec)", problem: "empty key segment", fix: "write key.path=value")
        }
        // `--set data=PATH` is short for `--set vars.data=PATH` when the recipe has that variable.
        let topVars = tree.objectValue?["vars"]?.objectValue ?? [:]
        if segments.count == 1, tree.objectValue?[segments[0]] == nil, topVars[segments[0]] != nil {
            segments.insert("vars", at: 0)
        }
        func set(_ node: JSONValue, _ rest: ArraySlice<String>, _ trail: String) throws -> JSONValue {
            guard let seg = rest.first else { return value }
            let here = trail.isEmpty ? seg : "\(trail).\(seg)"
            switch node {
            case .array(var a):
                var idx = Int(seg)
                if idx == nil { idx = a.firstIndex { $0.objectValue?["name"]?.stringValue == seg } }
                guard let i = idx, a.indices.contains(i) else {
                    let names = a.compactMap { $0.objectValue?["name"]?.stringValue }
                    throw ToolbenchError("\(file): --set \(key)", problem: "\"\(seg)\" is neither an index nor a stage name in \(trail)\(suggestion(seg, names))",
                                         fix: names.isEmpty ? "use an index 0…\(max(a.count - 1, 0))" : "names: \(names.joined(separator: ", "))")
                }
                a[i] = try set(a[i], rest.dropFirst(), here)
                return .array(a)
            case .object(var o):
                // Variables and inputs must exist: an override of a name the recipe never
                // declares would silently change nothing. (Unknown pass options are caught by
                // strict decoding, with a suggestion.)
                if o[seg] == nil, rest.count == 1, trail == "vars" || trail == "inputs" {
                    let known = o.keys.sorted()
                    throw ToolbenchError("\(file): --set \(key)", problem: "the recipe declares no \(trail).\(seg)\(suggestion(seg, known))",
                                         fix: known.isEmpty ? "declare it in the recipe first" : "\(trail): \(known.joined(separator: ", "))")
                }
                o[seg] = try set(o[seg] ?? .object([:]), rest.dropFirst(), here)
                return .object(o)
            default:
                throw ToolbenchError("\(file): --set \(key)", problem: "\(trail) is not an object or list", fix: "check the key path")
            }
        }
        return try set(tree, segments[...], "")
    }

    // MARK: ${vars}

    /// Replaces `${name}` in every string outside `vars` by the value of `vars.name`. A string
    /// that is exactly `${name}` takes the variable's type (a number stays a number).
    static func substituteVars(_ tree: JSONValue, file: String) throws -> JSONValue {
        guard case .object(var top) = tree else {
            throw ToolbenchError(file, problem: "the recipe is not an object", fix: "a recipe is { inputs: {…}, stages: […] }")
        }
        var vars: [String: JSONValue] = [:]
        if let v = top["vars"] {
            guard let o = v.objectValue else { throw ToolbenchError("\(file): vars", problem: "vars is not an object", fix: "write vars: { name: value }") }
            vars = o
        }
        func sub(_ v: JSONValue, _ path: String) throws -> JSONValue {
            switch v {
            case .string(let s):
                guard s.contains("${") else { return v }
                if s.hasPrefix("${"), s.hasSuffix("}"), s.dropFirst(2).dropLast().allSatisfy({ $0 != "}" && $0 != "$" }) {
                    return try lookup(String(s.dropFirst(2).dropLast()), path)
                }
                var out = "", rest = Substring(s)
                while let r = rest.range(of: "${") {
                    out += rest[..<r.lowerBound]
                    guard let close = rest[r.upperBound...].firstIndex(of: "}") else {
                        throw ToolbenchError("\(file): \(path)", problem: "unterminated ${ in \"\(s)\"", fix: "write ${name}")
                    }
                    let value = try lookup(String(rest[r.upperBound..<close]), path)
                    switch value {
                    case .string(let t): out += t
                    case .int(let i): out += String(i)
                    case .double(let d): out += String(d)
                    case .bool(let b): out += String(b)
                    default: throw ToolbenchError("\(file): \(path)", problem: "variable inside \"\(s)\" is not a string or number", fix: "use it as the whole value")
                    }
                    rest = rest[rest.index(after: close)...]
                }
                return .string(out + rest)
            case .array(let a): return .array(try a.enumerated().map { try sub($1, "\(path)[\($0)]") })
            case .object(let o):
                var r: [String: JSONValue] = [:]
                for (k, x) in o { r[k] = try sub(x, path.isEmpty ? k : "\(path).\(k)") }
                return .object(r)
            default: return v
            }
        }
        func lookup(_ name: String, _ path: String) throws -> JSONValue {
            guard let v = vars[name] else {
                throw ToolbenchError("\(file): \(path)", problem: "unknown variable ${\(name)}\(suggestion(name, Array(vars.keys)))",
                                     fix: vars.isEmpty ? "define it in vars: { \(name): … } or pass --set vars.\(name)=…" : "defined: \(vars.keys.sorted().joined(separator: ", "))")
            }
            return v
        }
        for (k, v) in top where k != "vars" { top[k] = try sub(v, k) }
        return .object(top)
    }
}
