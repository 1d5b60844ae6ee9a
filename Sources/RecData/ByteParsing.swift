import Foundation

// Parsing on raw bytes. A 10-million-line ratings file is parsed without creating a single
// String per line: fields are (offset, length) pairs into the line buffer.

/// A field inside a line: byte offset and length.
struct FieldRange {
    var start: Int
    var count: Int
}

enum Bytes {
    static let comma = UInt8(ascii: ","), tab = UInt8(ascii: "\t"), space = UInt8(ascii: " ")
    static let colon = UInt8(ascii: ":"), quote = UInt8(ascii: "\""), pipe = UInt8(ascii: "|")

    /// Splits on a single-byte separator into `out` (reused to avoid allocation).
    @inline(__always)
    static func split(_ line: UnsafeBufferPointer<UInt8>, by sep: UInt8, into out: inout [FieldRange]) {
        out.removeAll(keepingCapacity: true)
        var s = 0
        for i in 0..<line.count where line[i] == sep {
            out.append(FieldRange(start: s, count: i - s))
            s = i + 1
        }
        out.append(FieldRange(start: s, count: line.count - s))
    }

    /// Splits on the two-byte separator `::` (MovieLens .dat files).
    static func splitDoubleColon(_ line: UnsafeBufferPointer<UInt8>, into out: inout [FieldRange]) {
        out.removeAll(keepingCapacity: true)
        var s = 0
        var i = 0
        while i + 1 < line.count {
            if line[i] == colon && line[i + 1] == colon {
                out.append(FieldRange(start: s, count: i - s))
                i += 2
                s = i
            } else {
                i += 1
            }
        }
        out.append(FieldRange(start: s, count: line.count - s))
    }

    /// Splits on runs of spaces/tabs, ignoring leading and trailing blanks (sequence files).
    static func splitWhitespace(_ line: UnsafeBufferPointer<UInt8>, into out: inout [FieldRange]) {
        out.removeAll(keepingCapacity: true)
        var i = 0
        let n = line.count
        while i < n {
            while i < n && (line[i] == space || line[i] == tab) { i += 1 }
            if i >= n { break }
            let s = i
            while i < n && line[i] != space && line[i] != tab { i += 1 }
            out.append(FieldRange(start: s, count: i - s))
        }
    }

    /// Trims blanks around a field.
    @inline(__always)
    static func trim(_ line: UnsafeBufferPointer<UInt8>, _ f: FieldRange) -> FieldRange {
        var s = f.start, e = f.start + f.count
        while s < e && (line[s] == space || line[s] == tab) { s += 1 }
        while e > s && (line[e - 1] == space || line[e - 1] == tab) { e -= 1 }
        return FieldRange(start: s, count: e - s)
    }

    /// True when the field is a non-empty run of ASCII digits (a MovieLens-style integer id).
    @inline(__always)
    static func isDigits(_ line: UnsafeBufferPointer<UInt8>, _ f: FieldRange) -> Bool {
        if f.count == 0 { return false }
        for i in f.start..<(f.start + f.count) where line[i] < 0x30 || line[i] > 0x39 { return false }
        return true
    }

    /// Parses a non-negative decimal integer; nil when empty, non-numeric or overflowing.
    @inline(__always)
    static func parseInt(_ line: UnsafeBufferPointer<UInt8>, _ f: FieldRange) -> Int? {
        if f.count == 0 || f.count > 18 { return nil }
        var v = 0
        for i in f.start..<(f.start + f.count) {
            let d = Int(line[i]) - 48
            if d < 0 || d > 9 { return nil }
            v = v * 10 + d
        }
        return v
    }

    /// Parses a decimal number such as `4`, `3.5`, `-1`, `978300760.0` or `1e9`.
    /// Fast path by hand; anything unusual (hex, inf, long mantissas) goes to strtod.
    static func parseDouble(_ line: UnsafeBufferPointer<UInt8>, _ f: FieldRange) -> Double? {
        var i = f.start
        let e = f.start + f.count
        if i >= e { return nil }
        var neg = false
        if line[i] == UInt8(ascii: "-") || line[i] == UInt8(ascii: "+") { neg = line[i] == UInt8(ascii: "-"); i += 1 }
        var mant: UInt64 = 0
        var digits = 0
        var frac = 0
        var seenDot = false
        while i < e {
            let c = line[i]
            if c >= 0x30 && c <= 0x39 {
                if digits >= 18 { return slowDouble(line, f) }
                mant = mant * 10 + UInt64(c - 0x30)
                digits += 1
                if seenDot { frac += 1 }
            } else if c == UInt8(ascii: ".") && !seenDot {
                seenDot = true
            } else {
                return slowDouble(line, f)
            }
            i += 1
        }
        if digits == 0 { return nil }
        var v = Double(mant)
        if frac > 0 { v /= pow10[frac] }
        return neg ? -v : v
    }

    private static let pow10: [Double] = (0...18).map { Double(sign: .plus, exponent: 0, significand: 1) * pow(10, Double($0)) }

    private static func slowDouble(_ line: UnsafeBufferPointer<UInt8>, _ f: FieldRange) -> Double? {
        let s = string(line, f)
        guard let v = Double(s), v.isFinite else { return nil }
        return v
    }

    /// A field as text for an error message: its first 200 bytes, "…" after a longer one (a
    /// 10 MB id quoted whole made a 10 MB message: docs/reliability.md, bug 14).
    static func string(_ line: UnsafeBufferPointer<UInt8>, _ f: FieldRange) -> String {
        let n = min(f.count, 200)
        let s = String(decoding: UnsafeBufferPointer(rebasing: line[f.start..<(f.start + n)]), as: UTF8.self)
        return n < f.count ? s + "…" : s
    }

    /// Splits one CSV line honouring double quotes (RFC 4180 style, `""` inside quotes is a quote).
    /// Used only for small side files such as movies.csv, so it returns Strings.
    static func csvFields(_ line: String) -> [String] {
        var out: [String] = []
        var cur: [UInt8] = []
        var inQuotes = false
        let b = Array(line.utf8)
        var i = 0
        while i < b.count {
            let c = b[i]
            if inQuotes {
                if c == quote {
                    if i + 1 < b.count && b[i + 1] == quote { cur.append(quote); i += 1 } else { inQuotes = false }
                } else { cur.append(c) }
            } else if c == quote {
                inQuotes = true
            } else if c == comma {
                out.append(String(decoding: cur, as: UTF8.self)); cur.removeAll()
            } else { cur.append(c) }
            i += 1
        }
        out.append(String(decoding: cur, as: UTF8.self))
        return out
    }
}
