import Foundation
import Common
import ModelFormat

/// Reading recipes: JSON5 (the writer is Common's JSONText).
extension JSONText {
    /// Parses JSON5 text (comments, unquoted keys, single quotes, trailing commas, +/− and
    /// leading/trailing-dot numbers, Infinity, NaN) with our own parser (`JSON5Parser`), which
    /// reports the line and column of the first error. Foundation's `JSONDecoder.allowsJSON5`
    /// was used before and traps — a fatal error, not a thrown one — on invalid UTF-8, on
    /// some hexadecimal literals (`0x1e-3`, `-0x8000000000000001`) and on integers beyond
    /// Int64 (`9999999999999999999`): three finds of the `json` and `recipe` fuzz targets.
    public static func parseJSON5(_ data: Data, file: String) throws -> JSONValue {
        if let bad = firstInvalidUTF8(data) {
            throw ToolbenchError(file, problem: "byte \(bad) is not valid UTF-8 (0x\(String(data[data.startIndex + bad], radix: 16)))",
                                 fix: "save the file as UTF-8")
        }
        do {
            return try JSON5Locator.parse(String(decoding: data, as: UTF8.self))
        } catch let f as JSON5Locator.Located {
            throw ToolbenchError("\(file):\(f.line):\(f.column)", problem: "JSON5 syntax error: \(f.what)",
                                 fix: "fix the syntax at line \(f.line), column \(f.column)")
        }
    }
}

/// The offset of the first byte that does not belong to a valid UTF-8 sequence (nil: valid).
public func firstInvalidUTF8(_ data: Data) -> Int? {
    var parser = Unicode.UTF8.ForwardParser()
    var it = data.makeIterator()
    var offset = 0
    while true {
        switch parser.parseScalar(from: &it) {
        case .valid(let s): offset += s.count
        case .emptyInput: return nil
        case .error: return offset
        }
    }
}

/// The JSON5 parser: objects, arrays, strings ('…' and "…", JSON5's escapes), numbers
/// (hex, leading/trailing dot, Infinity, NaN, +/−; integers that fit in Int are `.int`), true,
/// false, null, identifier keys, // and /* */ comments, trailing commas. Errors carry the
/// 1-based line and column. Duplicate keys are refused (a recipe that sets an option twice is
/// a mistake), nesting is limited to 256 levels (a stack overflow is not an error message),
/// and a number outside Double's range is refused.
public enum JSON5Locator {
    struct Fail: Error { let pos: Int; let what: String }
    public struct Located: Error { public let line: Int, column: Int, what: String }
    static let maxDepth = 256

    /// The document's value, or `Located` at the first error.
    public static func parse(_ text: String) throws -> JSONValue {
        let s = Array(text.unicodeScalars)
        var i = 0
        do {
            try skip(s, &i)
            let v = try value(s, &i, depth: 0)
            try skip(s, &i)
            if i < s.count { throw Fail(pos: i, what: "unexpected \(show(s, i)) after the end of the document") }
            return v
        } catch let f as Fail {
            var line = 1, col = 1
            for k in 0..<min(f.pos, s.count) {
                if s[k] == "\n" { line += 1; col = 1 } else { col += 1 }
            }
            throw Located(line: line, column: col, what: f.what)
        }
    }

    static func show(_ s: [Unicode.Scalar], _ i: Int) -> String { i < s.count ? "'\(Character(s[i]))'" : "end of file" }
    /// A word quoted in an error: its first 60 characters (a 10 MB one is not a message: bug 14).
    static func clip(_ w: String) -> String { w.count > 60 ? w.prefix(60) + "…" : w }

    static func skip(_ s: [Unicode.Scalar], _ i: inout Int) throws {
        while i < s.count {
            let c = s[i]
            if c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{FEFF}" || c == "\u{A0}" { i += 1; continue }
            if c == "/" && i + 1 < s.count && s[i + 1] == "/" {
                while i < s.count && s[i] != "\n" { i += 1 }
                continue
            }
            if c == "/" && i + 1 < s.count && s[i + 1] == "*" {
                let start = i
                i += 2
                while i + 1 < s.count && !(s[i] == "*" && s[i + 1] == "/") { i += 1 }
                if i + 1 >= s.count { throw Fail(pos: start, what: "unterminated /* comment") }
                i += 2
                continue
            }
            return
        }
    }

    static func value(_ s: [Unicode.Scalar], _ i: inout Int, depth: Int) throws -> JSONValue {
        guard i < s.count else { throw Fail(pos: i, what: "expected a value, found end of file") }
        if depth > maxDepth { throw Fail(pos: i, what: "nested deeper than \(maxDepth) levels") }
        let c = s[i]
        switch c {
        case "{":
            i += 1
            try skip(s, &i)
            var o: [String: JSONValue] = [:]
            while i < s.count && s[i] != "}" {
                let at = i
                let k = try key(s, &i)
                try skip(s, &i)
                guard i < s.count, s[i] == ":" else { throw Fail(pos: i, what: "expected ':' after a key, found \(show(s, i))") }
                i += 1
                try skip(s, &i)
                let v = try value(s, &i, depth: depth + 1)
                if o[k] != nil { throw Fail(pos: at, what: "the key \"\(k)\" appears twice in this object") }
                o[k] = v
                try skip(s, &i)
                if i < s.count && s[i] == "," { i += 1; try skip(s, &i); continue }
                guard i < s.count, s[i] == "}" else { throw Fail(pos: i, what: "expected ',' or '}' in an object, found \(show(s, i))") }
            }
            guard i < s.count else { throw Fail(pos: i, what: "unterminated object (missing '}')") }
            i += 1
            return .object(o)
        case "[":
            i += 1
            try skip(s, &i)
            var a: [JSONValue] = []
            while i < s.count && s[i] != "]" {
                a.append(try value(s, &i, depth: depth + 1))
                try skip(s, &i)
                if i < s.count && s[i] == "," { i += 1; try skip(s, &i); continue }
                guard i < s.count, s[i] == "]" else { throw Fail(pos: i, what: "expected ',' or ']' in a list, found \(show(s, i))") }
            }
            guard i < s.count else { throw Fail(pos: i, what: "unterminated list (missing ']')") }
            i += 1
            return .array(a)
        case "\"", "'":
            return .string(try string(s, &i))
        default:
            if c == "-" || c == "+" || c == "." || (c >= "0" && c <= "9") {
                let start = i
                i += 1
                while i < s.count, isNumberChar(s[i]) { i += 1 }
                let word = String(String.UnicodeScalarView(s[start..<i]))
                let negative = word.hasPrefix("-")
                let body = word.hasPrefix("-") || word.hasPrefix("+") ? String(word.dropFirst()) : word
                if body == "Infinity" { return .double(negative ? -.infinity : .infinity) }
                if body == "NaN" { return .double(.nan) }
                if body.hasPrefix("0x") || body.hasPrefix("0X") {
                    let digits = body.dropFirst(2)
                    guard !digits.isEmpty, digits.unicodeScalars.allSatisfy({ $0.properties.isASCIIHexDigit }), let u = UInt64(digits, radix: 16) else {
                        throw Fail(pos: start, what: "invalid number \"\(word)\"")
                    }
                    guard u <= UInt64(Int.max) else { throw Fail(pos: start, what: "the number \(clip(word)) is out of range") }
                    return .int(negative ? -Int(u) : Int(u))
                }
                if !body.isEmpty, body.unicodeScalars.allSatisfy({ $0 >= "0" && $0 <= "9" }) {
                    if let n = Int(body) { return .int(negative ? -n : n) }
                }
                // Swift's Double() takes "inf", "nan" and hex floats, which JSON5 spells otherwise.
                let plain = body.unicodeScalars.allSatisfy { ($0 >= "0" && $0 <= "9") || $0 == "." || $0 == "e" || $0 == "E" || $0 == "+" || $0 == "-" }
                let text = body.hasSuffix(".") ? String(body.dropLast()) : body
                guard plain, body.unicodeScalars.first != "+", body.unicodeScalars.first != "-", let d = Double(text.hasPrefix(".") ? "0" + text : text) else {
                    throw Fail(pos: start, what: "invalid number \"\(word)\"")
                }
                guard d.isFinite else { throw Fail(pos: start, what: "the number \(clip(word)) is out of range") }
                return .double(negative ? -d : d)
            }
            let start = i
            while i < s.count, isIdent(s[i]) { i += 1 }
            let word = String(String.UnicodeScalarView(s[start..<i]))
            switch word {
            case "true": return .bool(true)
            case "false": return .bool(false)
            case "null": return .null
            case "Infinity": return .double(.infinity)
            case "NaN": return .double(.nan)
            default: throw Fail(pos: start, what: word.isEmpty ? "unexpected \(show(s, start))" : "unexpected word \"\(clip(word))\" (strings need quotes)")
            }
        }
    }

    static func isNumberChar(_ c: Unicode.Scalar) -> Bool {
        (c >= "0" && c <= "9") || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "." || c == "+" || c == "-"
    }

    static func isIdent(_ c: Unicode.Scalar) -> Bool {
        (c >= "0" && c <= "9") || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" || c == "$" || c.value > 127
    }

    static func key(_ s: [Unicode.Scalar], _ i: inout Int) throws -> String {
        guard i < s.count else { throw Fail(pos: i, what: "expected a key, found end of file") }
        if s[i] == "\"" || s[i] == "'" { return try string(s, &i) }
        let start = i
        while i < s.count, isIdent(s[i]) { i += 1 }
        if i == start { throw Fail(pos: i, what: "expected a key, found \(show(s, i))") }
        if s[start] >= "0" && s[start] <= "9" { throw Fail(pos: start, what: "a key cannot start with a digit (quote it)") }
        return String(String.UnicodeScalarView(s[start..<i]))
    }

    /// A quoted string, its escapes decoded as JSON5 does (\n \t \r \b \f \v \0, \xHH,
    /// \uHHHH with surrogate pairs, a backslash before a line break continues the line, any
    /// other escaped character stands for itself).
    static func string(_ s: [Unicode.Scalar], _ i: inout Int) throws -> String {
        let q = s[i], start = i
        i += 1
        var out = String.UnicodeScalarView()
        func hex(_ n: Int) throws -> UInt32 {
            guard i + n <= s.count, let v = UInt32(String(String.UnicodeScalarView(s[i..<(i + n)])), radix: 16) else {
                throw Fail(pos: i, what: "expected \(n) hexadecimal digits in an escape")
            }
            i += n
            return v
        }
        while i < s.count && s[i] != q {
            let c = s[i]
            if c == "\n" || c == "\r" { throw Fail(pos: start, what: "unterminated string (a line break inside quotes)") }
            guard c == "\\" else { out.append(c); i += 1; continue }
            i += 1
            guard i < s.count else { break }
            let e = s[i]
            i += 1
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "b": out.append("\u{8}")
            case "f": out.append("\u{C}")
            case "v": out.append("\u{B}")
            case "0": out.append("\u{0}")
            case "x": out.append(Unicode.Scalar(UInt8(try hex(2))))
            case "u":
                var v = try hex(4)
                if v >= 0xD800 && v < 0xDC00, i + 1 < s.count, s[i] == "\\", s[i + 1] == "u" {
                    i += 2
                    let lo = try hex(4)
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw Fail(pos: i - 6, what: "a \\u surrogate pair is incomplete") }
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                }
                guard let u = Unicode.Scalar(v) else { throw Fail(pos: i - 4, what: "\\u\(String(v, radix: 16)) is not a character (a lone surrogate)") }
                out.append(u)
            case "\n": break   // a line continuation
            case "\r": if i < s.count && s[i] == "\n" { i += 1 }
            default: out.append(e)
            }
        }
        if i >= s.count { throw Fail(pos: start, what: "unterminated string") }
        i += 1
        return String(out)
    }
}
