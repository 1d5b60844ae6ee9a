import Foundation

// The one JSON stack: JSONValue, a strict parser (JSONValue.parse) and one writer (JSONText).
// Every file the toolbench writes as JSON goes through JSONText: sorted keys, 2-space indent,
// numbers in their shortest round-trip form (`1e-06`, `10000.0`), so files diff cleanly and
// a float written back is the float that was read. Results are Codable records, encoded to a
// JSONValue (`JSONValue.encoding`) and written by JSONText.

/// A decoder reading from a `JSONValue` tree (the strict option decoder): `JSONValue` takes
/// its subtree as is, and the decoder notes that every key below is accepted.
public protocol JSONTreeDecoder: Decoder {
    func wholeValue() -> JSONValue
}

/// Any JSON value. config.json and adapter_config.json are read into this so that every key,
/// including ones we do not know, is written back unchanged; numbers keep their kind
/// (`10000` stays an integer, `10000.0` stays a float) because Foundation's JSONSerialization
/// cannot tell them apart.
public enum JSONValue: Sendable, Equatable, Codable {
    case null, bool(Bool), int(Int), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        // A decoder that already holds the tree hands the subtree over whole: probing it type by
        // type below costs a failed attempt (and its error message) per level, quadratic in the
        // depth (a 1,500-level `--set` key took 2.9 s: docs/reliability.md, bug 13).
        if let tree = decoder as? JSONTreeDecoder { self = tree.wholeValue(); return }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        if let o = try? c.decode([String: JSONValue].self) { self = .object(o); return }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value")
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    // Accessors used by the loaders.
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var isNull: Bool { self == .null }
    /// An integer, also from an integral float (Python writes `64.0` when a value went through float).
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public subscript(key: String) -> JSONValue? { objectValue?[key] }
}

// MARK: - Parsing

public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public let message: String
    /// Byte offset of the problem.
    public let offset: Int
    public var description: String { "\(message) at byte \(offset)" }
}

/// A small strict JSON parser (RFC 8259, plus Python's `NaN`/`Infinity`, which `json.dumps`
/// writes) over raw bytes. Depth is bounded so a hostile header cannot overflow the stack.
extension JSONValue {
    /// Parses strict JSON (RFC 8259, plus Python's NaN/Infinity); throws `JSONParseError`.
    public static func parse(_ data: Data) throws -> JSONValue { try JSONParser<JSONValue>.parse(data) }
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONValue { try JSONParser<JSONValue>.parse(bytes) }
}

/// What the one JSON reader builds. `JSONValue` keeps objects as dictionaries (every config and
/// record file); a tree that keeps each object's keys in file order, exactly as written, serves
/// files whose keys must not be merged: Swift's `String` equality is canonical equivalence, and a
/// tokenizer.json vocabulary holds distinct keys that are canonically equivalent.
public protocol JSONTree {
    static var jsonNull: Self { get }
    static func json(bool: Bool) -> Self
    static func json(string: String) -> Self
    /// An integer literal (no '.', 'e' or 'E') that fits in Int.
    static func json(int: Int) -> Self
    static func json(double: Double) -> Self
    static func json(array: [Self]) -> Self
    /// Keys in file order; a repeated key appears twice.
    static func json(object: [(key: String, value: Self)]) -> Self
}

extension JSONValue: JSONTree {
    public static var jsonNull: JSONValue { .null }
    public static func json(bool: Bool) -> JSONValue { .bool(bool) }
    public static func json(string: String) -> JSONValue { .string(string) }
    public static func json(int: Int) -> JSONValue { .int(int) }
    public static func json(double: Double) -> JSONValue { .double(double) }
    public static func json(array: [JSONValue]) -> JSONValue { .array(array) }
    /// A repeated key keeps the last value, as Python's json does.
    public static func json(object: [(key: String, value: JSONValue)]) -> JSONValue {
        var out: [String: JSONValue] = [:]
        for (k, v) in object { out[k] = v }
        return .object(out)
    }
}

/// Parses JSON into any `JSONTree` (the one reader: strict RFC 8259 plus NaN/Infinity, depth-bounded).
public func parseJSON<Tree: JSONTree>(_ data: Data, as: Tree.Type) throws -> Tree { try JSONParser<Tree>.parse(data) }

struct JSONParser<Tree: JSONTree> {
    private let bytes: UnsafeRawBufferPointer
    private var i = 0
    private var depth = 0
    private var maxDepth: Int { 256 }

    static func parse(_ data: Data) throws -> Tree {
        try data.withUnsafeBytes { try parse($0) }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> Tree {
        var p = JSONParser(bytes: bytes)
        p.skipWhitespace()
        let v = try p.value()
        p.skipWhitespace()
        if p.i != bytes.count { throw JSONParseError(message: "unexpected data after the JSON value", offset: p.i) }
        return v
    }

    private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func fail(_ m: String) -> JSONParseError { JSONParseError(message: m, offset: i) }

    private mutating func skipWhitespace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func literal(_ word: String, _ v: Tree) throws -> Tree {
        for b in word.utf8 {
            guard i < bytes.count, bytes[i] == b else { throw fail("invalid literal, expected \(word)") }
            i += 1
        }
        return v
    }

    private mutating func value() throws -> Tree {
        guard i < bytes.count else { throw fail("unexpected end of JSON") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .json(string: try string())
        case UInt8(ascii: "t"): return try literal("true", .json(bool: true))
        case UInt8(ascii: "f"): return try literal("false", .json(bool: false))
        case UInt8(ascii: "n"): return try literal("null", .jsonNull)
        case UInt8(ascii: "N"): return try literal("NaN", .json(double: .nan))
        case UInt8(ascii: "I"): return try literal("Infinity", .json(double: .infinity))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[i])))'")
        }
    }

    private mutating func object() throws -> Tree {
        depth += 1
        defer { depth -= 1 }
        if depth > maxDepth { throw fail("JSON nested too deeply") }
        i += 1
        var out: [(key: String, value: Tree)] = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .json(object: out) }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let k = try string()
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            skipWhitespace()
            out.append((k, try value()))
            skipWhitespace()
            guard i < bytes.count else { throw fail("unterminated object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .json(object: out) }
            throw fail("expected ',' or '}'")
        }
    }

    private mutating func array() throws -> Tree {
        depth += 1
        defer { depth -= 1 }
        if depth > maxDepth { throw fail("JSON nested too deeply") }
        i += 1
        var out: [Tree] = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .json(array: out) }
        while true {
            skipWhitespace()
            out.append(try value())
            skipWhitespace()
            guard i < bytes.count else { throw fail("unterminated array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .json(array: out) }
            throw fail("expected ',' or ']'")
        }
    }

    private mutating func number() throws -> Tree {
        let start = i
        var isFloat = false
        if bytes[i] == UInt8(ascii: "-") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "I") { _ = try literal("Infinity", .jsonNull); return .json(double: -.infinity) }
        }
        while i < bytes.count {
            let b = bytes[i]
            if b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") || b == UInt8(ascii: "-") || b == UInt8(ascii: "+") {
                i += 1
            } else if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                isFloat = true
                i += 1
            } else {
                break
            }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if !isFloat, let v = Int(text) { return .json(int: v) }
        guard let d = Double(text) else { throw JSONParseError(message: "invalid number '\(text)'", offset: start) }
        return .json(double: d)
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    private mutating func string() throws -> String {
        i += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let b = bytes[i]
            i += 1
            if b == UInt8(ascii: "\"") { break }
            if b < 0x20 { throw fail("control character in string") }
            if b != UInt8(ascii: "\\") { out.append(b); continue }
            guard i < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00, i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                    let save = i
                    i += 2
                    let low = try hex4()
                    if low >= 0xDC00 && low < 0xE000 {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        i = save
                    }
                }
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw fail("invalid escape")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

// MARK: - Writing

/// The one JSON writer.
public enum JSONText {
    /// Pretty JSON with sorted keys and 2-space indent (what Hugging Face's `to_json_string`
    /// writes), so diffs of config files stay small and stable.
    public static func prettyString(_ v: JSONValue) -> String {
        var s = ""
        write(v, into: &s, indent: 0, pretty: true)
        return s
    }

    /// A file's bytes: the pretty text and a final newline.
    public static func pretty(_ v: JSONValue) -> Data { Data((prettyString(v) + "\n").utf8) }

    /// An Encodable record as a file's bytes.
    public static func pretty<T: Encodable>(encoding record: T) throws -> Data { pretty(try JSONValue.encoding(record)) }

    /// Writes `v` to `url` atomically (temporary file, then rename).
    public static func write(_ v: JSONValue, to url: URL) throws { try AtomicFile.write(pretty(v), to: url) }

    /// Writes an Encodable record to `url` atomically.
    public static func write<T: Encodable>(encoding record: T, to url: URL) throws { try AtomicFile.write(pretty(encoding: record), to: url) }

    /// One line, sorted keys (logs, keys hashed for resume).
    public static func compact(_ v: JSONValue) -> String {
        var s = ""
        write(v, into: &s, indent: 0, pretty: false)
        return s
    }

    /// `compact`, cut to `limit` characters with "…" (error messages quoting a value the user
    /// wrote: a whole large subtree is no help).
    public static func preview(_ v: JSONValue, limit: Int = 80) -> String {
        let s = compact(v)
        return s.count > limit ? String(s.prefix(limit)) + "…" : s
    }

    private static func write(_ v: JSONValue, into s: inout String, indent: Int, pretty: Bool) {
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let closePad = pretty ? String(repeating: "  ", count: indent) : ""
        let nl = pretty ? "\n" : ""
        switch v {
        case .null: s += "null"
        case .bool(let b): s += b ? "true" : "false"
        case .int(let i): s += String(i)
        case .double(let d): s += number(d)
        case .string(let str): s += quote(str)
        case .array(let a):
            if a.isEmpty { s += "[]"; return }
            s += "[" + nl
            for (k, e) in a.enumerated() {
                s += pad
                write(e, into: &s, indent: indent + 1, pretty: pretty)
                s += (k + 1 < a.count ? "," : "") + nl
            }
            s += closePad + "]"
        case .object(let o):
            if o.isEmpty { s += "{}"; return }
            s += "{" + nl
            let keys = o.keys.sorted()
            for (k, key) in keys.enumerated() {
                s += pad + quote(key) + (pretty ? ": " : ":")
                write(o[key] ?? .null, into: &s, indent: indent + 1, pretty: pretty)
                s += (k + 1 < keys.count ? "," : "") + nl
            }
            s += closePad + "}"
        }
    }

    /// Shortest round-trip form, as Python's repr: `10000.0`, `1e-06`, `0.02`.
    static func number(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        return d.description
    }

    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

/// Numbers for results: a non-finite value (no JSON number) is written as null.
extension JSONValue {
    public static func number(_ d: Double) -> JSONValue { d.isFinite ? .double(d) : .null }
    public static func numbers(_ a: [Double]) -> JSONValue { .array(a.map { .number($0) }) }
    public static func ints(_ a: [Int]) -> JSONValue { .array(a.map { .int($0) }) }
}

extension JSONValue {
    /// Any Encodable as a JSON tree (a record to write, options with defaults filled in).
    public static func encoding<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONParser.parse(try JSONEncoder().encode(value))
    }

    /// Any Decodable from a JSON tree.
    public func decoded<T: Decodable>(as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(JSONText.compact(self).utf8))
    }
}

extension Double {
    /// The Double a person means by this Float: its shortest decimal form (0.05, not the
    /// binary value 0.05000000074505806), so that a value read as fp32 is written back as read.
    public init(decimal f: Float) { self = Double(f.description) ?? Double(f) }
}
