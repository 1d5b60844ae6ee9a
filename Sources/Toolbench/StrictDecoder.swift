import Foundation
import Common
import ModelFormat

// Strict decoding of pass options (and any Decodable) from a JSON tree. Swift's synthesized
// `init(from:)` silently ignores keys it does not know; llm-compressor's fault of "options
// that are accepted but do nothing" follows from that. So options are decoded through this
// Decoder, which records, per JSON object, every key the type asked for (present or not).
// Afterwards any key of an opened object that nobody asked for is an error naming its path
// and the nearest known key.

public enum StrictDecoding {
    /// Decodes `T` from `value`; `path` prefixes every error (e.g. "stages[2].options").
    /// `documented` joins the top-level keys the type asked for when suggesting a name (a
    /// decode that stops early has not asked for every key yet).
    /// `misplaced` says where keys that belong elsewhere go (top level only).
    public static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, path: String, documented: [String] = [],
                                            misplaced: [String: String] = [:]) throws -> T {
        let log = KeyLog()
        log.documented = Set(documented)
        log.misplaced = misplaced
        let result: T
        do {
            result = try T(from: TreeDecoder(value: value, codingPath: [], log: log))
        } catch let e as DecodingError {
            // An unknown key is usually the cause of a "missing" one (a misspelling): report it first.
            try log.rejectUnknown(in: value, path: path)
            throw describe(e, path: path)
        } catch let e as ToolbenchError {
            throw e.within(path)
        }
        try log.rejectUnknown(in: value, path: path)
        return result
    }

    /// Keys asked for at the top level when decoding `value` (used by the conformance kit to
    /// check that documented option names are the decoded ones).
    public static func askedKeys<T: Decodable>(_ type: T.Type, decoding value: JSONValue) -> Set<String> {
        let log = KeyLog()
        _ = try? T(from: TreeDecoder(value: value, codingPath: [], log: log))
        return log.asked[""] ?? []
    }

    static func describe(_ e: DecodingError, path: String) -> ToolbenchError {
        func join(_ p: [CodingKey]) -> String { pathString(path, p) }
        switch e {
        case .keyNotFound(let k, let ctx):
            return ToolbenchError(join(ctx.codingPath), problem: "missing required option \"\(k.stringValue)\"",
                                  fix: "add \"\(k.stringValue)\" (see `slmrec passes` for every option)")
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .dataCorrupted(let ctx):
            return ToolbenchError(join(ctx.codingPath), problem: ctx.debugDescription, fix: "fix the value (see `slmrec passes` and docs/passes.md)")
        @unknown default:
            return ToolbenchError(path, problem: "\(e)", fix: "see `slmrec passes`")
        }
    }
}

/// "stages[2].options.keep", "a.b[3]".
func pathString(_ base: String, _ keys: [CodingKey]) -> String {
    var s = base
    for k in keys {
        if let i = k.intValue, k.stringValue == "Index \(i)" || k.stringValue == "\(i)" { s += "[\(i)]" }
        else { s += s.isEmpty ? k.stringValue : ".\(k.stringValue)" }
    }
    return s
}

final class KeyLog: @unchecked Sendable {
    /// Object path (relative, "" = root) → keys asked for.
    var asked: [String: Set<String>] = [:]
    /// Objects decoded as dictionaries (every key accepted).
    var open: Set<String> = []
    /// Subtrees decoded as a `JSONValue` (every key at any depth below accepted).
    var whole: Set<String> = []
    var documented: Set<String> = []
    var misplaced: [String: String] = [:]

    func note(_ path: [CodingKey], _ key: String) { asked[pathString("", path), default: []].insert(key) }

    func rejectUnknown(in value: JSONValue, path: String) throws {
        try walk(value, rel: [], base: path)
    }

    private func walk(_ v: JSONValue, rel: [CodingKey], base: String) throws {
        let here = pathString("", rel)
        if whole.contains(here) { return }
        switch v {
        case .object(let o):
            if var known = asked[here], !open.contains(here) {
                if here.isEmpty { known.formUnion(documented) }
                for k in o.keys.sorted() where !known.contains(k) {
                    let full = pathString(base, rel + [AnyKey(k)])
                    if here.isEmpty, let whereTo = misplaced[k] {
                        throw ToolbenchError(full, problem: "\"\(k)\" is not an option here: \(whereTo)", fix: "move it there")
                    }
                    throw ToolbenchError(full, problem: "unknown option \"\(k)\"\(suggestion(k, Array(known)))",
                                         fix: "known options here: \(known.sorted().joined(separator: ", "))")
                }
            }
            for (k, child) in o { try walk(child, rel: rel + [AnyKey(k)], base: base) }
        case .array(let a):
            for (i, child) in a.enumerated() { try walk(child, rel: rel + [AnyKey(index: i)], base: base) }
        default: break
        }
    }
}

/// A key by name (option tables) or by index (paths into lists).
public struct AnyKey: CodingKey, Sendable {
    public var stringValue: String
    public var intValue: Int?
    public init(_ s: String) { stringValue = s; intValue = nil }
    public init(index: Int) { stringValue = "\(index)"; intValue = index }
    public init?(stringValue: String) { self.init(stringValue) }
    public init?(intValue: Int) { self.init(index: intValue) }
}

struct TreeDecoder: JSONTreeDecoder, SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [CodingKey]
    let log: KeyLog
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let o) = value else { throw mismatch("an object") }
        log.asked[pathString("", codingPath), default: []].formUnion([])
        return KeyedDecodingContainer(Keyed<Key>(object: o, codingPath: codingPath, log: log))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .array(let a) = value else { throw mismatch("a list") }
        return Unkeyed(array: a, codingPath: codingPath, log: log)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { self }

    func mismatch(_ expected: String) -> DecodingError {
        DecodingError.typeMismatch(Any.self, .init(codingPath: codingPath,
            debugDescription: "expected \(expected), found \(JSONText.preview(value))"))
    }

    func decodeNil() -> Bool { value.isNull }
    func decode(_ type: Bool.Type) throws -> Bool {
        guard let b = value.boolValue else { throw mismatch("true or false") }
        return b
    }
    func decode(_ type: String.Type) throws -> String {
        guard let s = value.stringValue else { throw mismatch("a string") }
        return s
    }
    func decode(_ type: Double.Type) throws -> Double {
        guard let d = value.doubleValue else { throw mismatch("a number") }
        return d
    }
    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func integer<T: FixedWidthInteger>(_ t: T.Type) throws -> T {
        guard let i = value.intValue, let v = T(exactly: i) else { throw mismatch("an integer in \(T.min)…\(T.max)") }
        return v
    }
    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: self) }

    /// A `JSONValue` field takes its subtree whole: every key below it is accepted.
    /// Integral floats become integers, as the type-by-type probe made them (`Int` is tried
    /// before `Double`), so a decoded tree — and the fingerprints of runs taken from it — is
    /// the same as before this short cut.
    func wholeValue() -> JSONValue {
        log.whole.insert(pathString("", codingPath))
        func normalised(_ v: JSONValue) -> JSONValue {
            switch v {
            case .double: return v.intValue.map(JSONValue.int) ?? v
            case .array(let a): return .array(a.map(normalised))
            case .object(let o): return .object(o.mapValues(normalised))
            default: return v
            }
        }
        return normalised(value)
    }
}

struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: [String: JSONValue]
    let codingPath: [CodingKey]
    let log: KeyLog

    var allKeys: [Key] {
        // A type that enumerates keys (a dictionary) accepts every key.
        log.open.insert(pathString("", codingPath))
        return object.keys.compactMap { Key(stringValue: $0) }
    }

    func contains(_ key: Key) -> Bool {
        log.note(codingPath, key.stringValue)
        return object[key.stringValue] != nil
    }

    func child(_ key: Key) throws -> TreeDecoder {
        log.note(codingPath, key.stringValue)
        guard let v = object[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
        }
        return TreeDecoder(value: v, codingPath: codingPath + [key], log: log)
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        log.note(codingPath, key.stringValue)
        return object[key.stringValue]?.isNull ?? true
    }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try T(from: child(key)) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        log.note(codingPath, key.stringValue)
        guard let v = object[key.stringValue], !v.isNull else { return nil }
        return try T(from: TreeDecoder(value: v, codingPath: codingPath + [key], log: log))
    }
    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
    func superDecoder() throws -> Decoder { TreeDecoder(value: .object(object), codingPath: codingPath, log: log) }
    func superDecoder(forKey key: Key) throws -> Decoder { try child(key) }
}

struct Unkeyed: UnkeyedDecodingContainer {
    let array: [JSONValue]
    let codingPath: [CodingKey]
    let log: KeyLog
    var currentIndex = 0

    init(array: [JSONValue], codingPath: [CodingKey], log: KeyLog) {
        self.array = array
        self.codingPath = codingPath
        self.log = log
    }

    var count: Int? { array.count }
    var isAtEnd: Bool { currentIndex >= array.count }

    mutating func next() throws -> TreeDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "list too short"))
        }
        defer { currentIndex += 1 }
        return TreeDecoder(value: array[currentIndex], codingPath: codingPath + [AnyKey(index: currentIndex)], log: log)
    }

    mutating func decodeNil() throws -> Bool {
        if !isAtEnd && array[currentIndex].isNull { currentIndex += 1; return true }
        return false
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: next()) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> Decoder { try next() }
}

/// A string-valued option with a fixed set of values, declared in an options type: decoding an
/// unknown value lists the valid ones and suggests the nearest, whoever decodes it.
public protocol OptionEnum: OptionChoice {}

extension OptionEnum {
    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let v = Self(rawValue: s) else {
            let all = Self.allCases.map(\.rawValue)
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "\"\(s)\" is not one of \(all.joined(separator: ", "))\(suggestion(s, all))"))
        }
        self = v
    }
}
