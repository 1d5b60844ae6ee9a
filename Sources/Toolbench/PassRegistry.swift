import Foundation
import Common
import ModelFormat

/// A pass with its types erased, so the host can hold a list of different passes. Options
/// travel as `any PassOptions` and are cast back inside the closures that created them.
public struct AnyPass: Sendable {
    public let name: String
    public let summary: String
    public let fields: [OptionField]
    public let references: [ReferenceSpec]
    let _decode: @Sendable (JSONValue, String) throws -> any PassOptions
    let _check: @Sendable (ModelSummary, any PassOptions, [String: PlannedArtifact]) throws -> PlannedOutput
    let _apply: @Sendable (PassContext, any PassOptions) throws -> PassResult

    public init<P: CompressionPass>(_ type: P.Type) {
        name = P.name
        summary = P.summary
        fields = P.Options.fields
        references = P.references
        _decode = { value, path in
            let o = try StrictDecoding.decode(P.Options.self, from: value, path: path, documented: P.Options.fields.map(\.name),
                                             misplaced: P.Options.misplacedKeys)
            do { try o.validate() } catch let e as ToolbenchError { throw e.within(path) }
            return o
        }
        _check = { model, options, refs in
            guard let o = options as? P.Options else { throw AnyPass.wrongOptions(P.name) }
            return try P().check(model, options: o, references: refs)
        }
        _apply = { context, options in
            guard let o = options as? P.Options else { throw AnyPass.wrongOptions(P.name) }
            return try P().apply(context, options: o)
        }
    }

    static func wrongOptions(_ name: String) -> ToolbenchError {
        ToolbenchError(name, problem: "options of another pass were given to \(name)", fix: "this is a bug in the host")
    }

    /// Strictly decodes and validates options; `path` prefixes errors ("stages[1].options").
    public func decodeOptions(_ value: JSONValue, path: String) throws -> any PassOptions { try _decode(value, path) }
    public func check(_ model: ModelSummary, options: any PassOptions, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        try _check(model, options, references)
    }
    public func apply(_ context: PassContext, options: any PassOptions) throws -> PassResult { try _apply(context, options) }

    /// The options with defaults filled in, as JSON (for recipe.effective.json and the resume key).
    public static func effective(_ options: any PassOptions) throws -> JSONValue { try JSONValue.encoding(options) }
}

/// The registered passes, built as a value by the composition root (the CLI) from a literal
/// list of types. No global mutable registry, no discovery by reflection.
public struct PassRegistry: Sendable {
    public let passes: [AnyPass]

    /// Names must be unique: a duplicate is a programming error in the literal list.
    public init(_ types: [any CompressionPass.Type]) {
        var seen = Set<String>(), out: [AnyPass] = []
        for t in types {
            let p = AnyPass.make(t)
            precondition(!seen.contains(p.name), "PassRegistry: two passes are named \(p.name)")
            seen.insert(p.name)
            out.append(p)
        }
        passes = out
    }

    public var names: [String] { passes.map(\.name) }

    /// The pass, or an error listing the known ones (and the nearest name).
    public func pass(named name: String) throws -> AnyPass {
        if let p = passes.first(where: { $0.name == name }) { return p }
        throw ToolbenchError(problem: "unknown pass \"\(name)\"\(suggestion(name, names))",
                             fix: "known passes: \(names.joined(separator: ", ")) (see `slmrec passes`)")
    }
}

extension AnyPass {
    static func make(_ t: any CompressionPass.Type) -> AnyPass {
        func open<P: CompressionPass>(_ p: P.Type) -> AnyPass { AnyPass(p) }
        return open(t)
    }
}
