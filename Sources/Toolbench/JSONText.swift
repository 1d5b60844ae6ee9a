import Foundation
import Common
import ModelFormat

/// Reading recipes: JSON5 (the writer is Common's JSONText).
extension JSONText {
    /// Parses JSON5 text (comments, unquoted keys, trailing commas) with Foundation's
    /// `JSONDecoder.allowsJSON5`. Foundation reports no position on Linux, so on failure a
    /// small scanner (`JSON5Locator`) finds the line and column of the first error.
    public static func parseJSON5(_ data: Data, file: String) throws -> JSONValue {
        // Foundation's JSON5 scanner traps (a fatal error, not a thrown one) on bytes that
        // are not UTF-8 — found by the `json` and `recipe` fuzz targets — so they are refused here.
        if let bad = firstInvalidUTF8(data) {
            throw ToolbenchError(file, problem: "byte \(bad) is not valid UTF-8 (0x\(String(data[data.startIndex + bad], radix: 16)))",
                                 fix: "save the file as UTF-8")
        }
        // Its number parser traps, too, on some hexadecimal literals (`0x1e-3`,
        // `-0x8000000000000001`; found by the same targets), so recipes take decimal numbers
        // only: a hexadecimal one is refused with its position before Foundation sees it.
        if let (line, col) = JSON5Locator.firstHexadecimalNumber(in: data) {
            throw ToolbenchError("\(file):\(line):\(col)", problem: "a hexadecimal number (JSON5 allows them; a recipe does not)",
                                 fix: "write the number in decimal")
        }
        let d = JSONDecoder()
        d.allowsJSON5 = true
        do {
            return try d.decode(JSONValue.self, from: data)
        } catch {
            let text = String(decoding: data, as: UTF8.self)
            if let (line, col, what) = JSON5Locator.firstError(in: text) {
                throw ToolbenchError("\(file):\(line):\(col)", problem: "JSON5 syntax error: \(what)",
                                     fix: "fix the syntax at line \(line), column \(col)")
            }
            throw ToolbenchError(file, problem: "not valid JSON5 (\(error))", fix: "check the file's syntax")
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

/// A JSON5 scanner that only locates the first syntax error (1-based line and column).
/// Deliberately small: it accepts what JSON5 accepts for objects, arrays, strings ('…' and
/// "…"), numbers (incl. hex, leading/trailing dot, Infinity, NaN, +/−), true/false/null,
/// identifier keys, // and /* */ comments, trailing commas.
public enum JSON5Locator {
    struct Fail: Error { let pos: Int; let what: String }

    /// The line and column (1-based) of the first `0x`/`0X` that starts a number outside
    /// strings and comments (nil: none).
    public static func firstHexadecimalNumber(in data: Data) -> (line: Int, column: Int)? {
        let b = [UInt8](data)
        var i = 0, line = 1, lineStart = 0
        func isWord(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || c == 0x5F || c == 0x24 || c == 0x2E || c >= 0x80 }
        while i < b.count {
            let c = b[i]
            if c == 0x0A { line += 1; lineStart = i + 1; i += 1; continue }
            if c == 0x22 || c == 0x27 {   // a string: to its closing quote, escapes skipped
                i += 1
                while i < b.count && b[i] != c {
                    if b[i] == 0x5C { i += 1 }
                    if i < b.count && b[i] == 0x0A { line += 1; lineStart = i + 1 }
                    i += 1
                }
                i += 1; continue
            }
            if c == 0x2F && i + 1 < b.count && b[i + 1] == 0x2F {   // // comment
                while i < b.count && b[i] != 0x0A { i += 1 }
                continue
            }
            if c == 0x2F && i + 1 < b.count && b[i + 1] == 0x2A {   // /* comment */
                i += 2
                while i + 1 < b.count && !(b[i] == 0x2A && b[i + 1] == 0x2F) {
                    if b[i] == 0x0A { line += 1; lineStart = i + 1 }
                    i += 1
                }
                i += 2; continue
            }
            if c == 0x30 && i + 1 < b.count && (b[i + 1] | 0x20) == 0x78 && (i == 0 || !isWord(b[i - 1])) {
                return (line, String(decoding: b[lineStart..<i], as: UTF8.self).count + 1)
            }
            if isWord(c) {   // a word (identifier, number): its inner 0x are not number starts
                while i < b.count && isWord(b[i]) { i += 1 }
                continue
            }
            i += 1
        }
        return nil
    }

    public static func firstError(in text: String) -> (line: Int, column: Int, what: String)? {
        let s = Array(text.unicodeScalars)
        var i = 0
        do {
            try skip(s, &i)
            try value(s, &i)
            try skip(s, &i)
            if i < s.count { throw Fail(pos: i, what: "unexpected \(show(s, i)) after the end of the document") }
            return nil
        } catch let f as Fail {
            var line = 1, col = 1
            for k in 0..<min(f.pos, s.count) {
                if s[k] == "\n" { line += 1; col = 1 } else { col += 1 }
            }
            return (line, col, f.what)
        } catch { return nil }
    }

    static func show(_ s: [Unicode.Scalar], _ i: Int) -> String { i < s.count ? "'\(Character(s[i]))'" : "end of file" }

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

    static func value(_ s: [Unicode.Scalar], _ i: inout Int) throws {
        guard i < s.count else { throw Fail(pos: i, what: "expected a value, found end of file") }
        let c = s[i]
        switch c {
        case "{":
            i += 1
            try skip(s, &i)
            while i < s.count && s[i] != "}" {
                try key(s, &i)
                try skip(s, &i)
                guard i < s.count, s[i] == ":" else { throw Fail(pos: i, what: "expected ':' after a key, found \(show(s, i))") }
                i += 1
                try skip(s, &i)
                try value(s, &i)
                try skip(s, &i)
                if i < s.count && s[i] == "," { i += 1; try skip(s, &i); continue }
                guard i < s.count, s[i] == "}" else { throw Fail(pos: i, what: "expected ',' or '}' in an object, found \(show(s, i))") }
            }
            guard i < s.count else { throw Fail(pos: i, what: "unterminated object (missing '}')") }
            i += 1
        case "[":
            i += 1
            try skip(s, &i)
            while i < s.count && s[i] != "]" {
                try value(s, &i)
                try skip(s, &i)
                if i < s.count && s[i] == "," { i += 1; try skip(s, &i); continue }
                guard i < s.count, s[i] == "]" else { throw Fail(pos: i, what: "expected ',' or ']' in a list, found \(show(s, i))") }
            }
            guard i < s.count else { throw Fail(pos: i, what: "unterminated list (missing ']')") }
            i += 1
        case "\"", "'":
            try string(s, &i)
        default:
            if c == "-" || c == "+" || c == "." || (c >= "0" && c <= "9") {
                let start = i
                i += 1
                while i < s.count, isNumberChar(s[i]) { i += 1 }
                let word = String(String.UnicodeScalarView(s[start..<i]))
                let body = word.trimmingCharacters(in: CharacterSet(charactersIn: "+-"))
                if body == "Infinity" || body == "NaN" { return }
                if body.lowercased().hasPrefix("0x"), UInt64(body.dropFirst(2), radix: 16) != nil { return }
                if Double(body) == nil && !(body.hasSuffix(".") && Double(body.dropLast()) != nil) {
                    throw Fail(pos: start, what: "invalid number \"\(word)\"")
                }
                return
            }
            let start = i
            while i < s.count, isIdent(s[i]) { i += 1 }
            let word = String(String.UnicodeScalarView(s[start..<i]))
            if ["true", "false", "null", "Infinity", "NaN"].contains(word) { return }
            throw Fail(pos: start, what: word.isEmpty ? "unexpected \(show(s, start))" : "unexpected word \"\(word)\" (strings need quotes)")
        }
    }

    static func isNumberChar(_ c: Unicode.Scalar) -> Bool {
        (c >= "0" && c <= "9") || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "." || c == "+" || c == "-"
    }

    static func isIdent(_ c: Unicode.Scalar) -> Bool {
        (c >= "0" && c <= "9") || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" || c == "$" || c.value > 127
    }

    static func key(_ s: [Unicode.Scalar], _ i: inout Int) throws {
        guard i < s.count else { throw Fail(pos: i, what: "expected a key, found end of file") }
        if s[i] == "\"" || s[i] == "'" { try string(s, &i); return }
        let start = i
        while i < s.count, isIdent(s[i]) { i += 1 }
        if i == start { throw Fail(pos: i, what: "expected a key, found \(show(s, i))") }
        if s[start] >= "0" && s[start] <= "9" { throw Fail(pos: start, what: "a key cannot start with a digit (quote it)") }
    }

    static func string(_ s: [Unicode.Scalar], _ i: inout Int) throws {
        let q = s[i], start = i
        i += 1
        while i < s.count && s[i] != q {
            if s[i] == "\\" { i += 2; continue }
            if s[i] == "\n" { throw Fail(pos: start, what: "unterminated string (a line break inside quotes)") }
            i += 1
        }
        if i >= s.count { throw Fail(pos: start, what: "unterminated string") }
        i += 1
    }
}
