import Foundation

/// The raw layouts `data prepare` reads. `.gz` compression is orthogonal (detected by magic).
public enum InputFormat: String, CaseIterable, Sendable, Codable {
    case auto
    /// `USER ITEM ITEM …` per line, already chronological (S3-Rec / ICLRec / E4SRec). Implicit.
    case sequences
    /// MovieLens `ratings.csv`: `userId,movieId,rating,timestamp`, optional header.
    case movielensCSV = "movielens-csv"
    /// MovieLens `ratings.dat`: `UserID::MovieID::Rating::Timestamp`.
    case movielensDat = "movielens-dat"
    /// MovieLens 100K `u.data`: `user<TAB>item<TAB>rating<TAB>timestamp`.
    case udata = "u-data"
    /// Amazon 2018 ratings-only CSV: `item,user,rating,timestamp`, no header.
    case amazonCSV = "amazon-csv"
    /// Amazon review JSON lines with `reviewerID`, `asin`, `overall`, `unixReviewTime`.
    case amazonJSON = "amazon-json"
    /// RecBole atomic `.inter`: tab-separated with a typed header (`user_id:token …`).
    case recboleInter = "recbole-inter"

    /// Whether the format carries ratings that `--min-rating` applies to. RecBole files
    /// without a rating column are implicit too; that is decided from the header.
    public var isExplicit: Bool {
        switch self {
        case .auto, .sequences, .recboleInter: return false
        default: return true
        }
    }

    /// Chooses a format from the file name and, failing that, the first lines.
    /// Name rules first because content can be ambiguous (a headerless ratings.csv and an
    /// Amazon CSV of numeric ids look the same).
    public static func detect(url: URL) throws -> InputFormat {
        var name = url.lastPathComponent.lowercased()
        if name.hasSuffix(".gz") { name = String(name.dropLast(3)) }
        if name.hasSuffix(".inter") { return .recboleInter }
        if name.hasSuffix(".dat") { return .movielensDat }
        if name == "u.data" || name.hasSuffix(".data") { return .udata }
        if name.hasSuffix(".json") || name.hasSuffix(".jsonl") || name.hasSuffix(".ndjson") { return .amazonJSON }
        let lines = try LineReader(url: url).firstLines(20).filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard let first = lines.first else {
            throw RecDataError.unknownFormat(file: url.path, detail: "the file is empty, so its format cannot be detected")
        }
        if first.hasPrefix("{") { return .amazonJSON }
        if first.contains("\t") && (first.contains(":token") || first.contains(":float")) { return .recboleInter }
        if first.contains("::") { return .movielensDat }
        if first.lowercased().hasPrefix("userid,") || first.lowercased().hasPrefix("\"userid\",") { return .movielensCSV }
        if first.contains(",") {
            let f = first.split(separator: ",", omittingEmptySubsequences: false)
            if f.count == 4 {
                let numericIds = f[0].allSatisfy(\.isNumber) && f[1].allSatisfy(\.isNumber)
                return numericIds && !name.contains("amazon") ? .movielensCSV : .amazonCSV
            }
        }
        let tabFields = first.split(separator: "\t", omittingEmptySubsequences: false)
        if tabFields.count == 4 && tabFields.allSatisfy({ Double($0) != nil }) { return .udata }
        if lines.allSatisfy({ $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).allSatisfy { $0.allSatisfy(\.isNumber) } }) {
            return .sequences
        }
        throw RecDataError.unknownFormat(file: url.path, detail: "cannot tell the format from the name or the first line \"\(RecDataError.clip(first))\"")
    }
}

/// Parsed interactions in file order, in compact columns. Users and items are interned
/// codes (0-based, order of first sight in the whole file, before any filtering).
struct RawLog {
    var users: [Int32] = []
    var items: [Int32] = []
    var times: [Double] = []        // empty when the format has no timestamps
    var userKeys = KeyInterner()
    var itemKeys = KeyInterner()
    var badLines = 0
    var linesRead = 0
    var droppedByRating = 0
    var explicit = false
    var hasTime = false
}

/// Reads one file of a known format into a RawLog, applying the rating filter on the fly
/// so filtered rows never take memory.
struct RecordParser {
    let url: URL
    let format: InputFormat
    /// Ratings below this are dropped; with `exclusiveMin` ratings equal to it are dropped too.
    let minRating: Double?
    var exclusiveMin = false

    @inline(__always) func drops(_ r: Double) -> Bool {
        guard let m = minRating else { return false }
        return exclusiveMin ? r <= m : r < m
    }
    let skipBadLines: Bool

    func parse(progress: ProgressSink?) throws -> RawLog {
        var log = RawLog()
        log.explicit = format.isExplicit
        log.hasTime = format != .sequences
        var fields: [FieldRange] = []
        fields.reserveCapacity(64)
        let file = url.path
        var header: RecboleHeader?
        var firstDataLineSeen = false

        try LineReader(url: url).forEachLine { line, lineNo in
            log.linesRead = lineNo
            if lineNo & 0xFFFF == 0 { progress?(lineNo) }
            // Blank lines are tolerated everywhere (trailing newlines, hand-edited samples).
            if line.allSatisfy({ $0 == Bytes.space || $0 == Bytes.tab }) { return true }
            func bad(_ reason: String) throws {
                if skipBadLines { log.badLines += 1; return }
                throw RecDataError.malformedLine(file: file, line: lineNo, text: String(decoding: line, as: UTF8.self), reason: reason)
            }
            switch format {
            case .auto:
                preconditionFailure("format resolved before parsing")

            case .sequences:
                Bytes.splitWhitespace(line, into: &fields)
                for f in fields where !Bytes.isDigits(line, f) {
                    try bad("non-numeric id \"\(Bytes.string(line, f))\" (the sequences format is `USER ITEM ITEM …` with integer ids)")
                    return true
                }
                let u = log.userKeys.intern(UnsafeBufferPointer(rebasing: line[fields[0].start..<(fields[0].start + fields[0].count)]))
                for f in fields.dropFirst() {
                    log.users.append(u)
                    log.items.append(log.itemKeys.intern(UnsafeBufferPointer(rebasing: line[f.start..<(f.start + f.count)])))
                }

            case .movielensCSV, .movielensDat, .udata, .amazonCSV:
                switch format {
                case .movielensCSV, .amazonCSV: Bytes.split(line, by: Bytes.comma, into: &fields)
                case .movielensDat: Bytes.splitDoubleColon(line, into: &fields)
                default: Bytes.split(line, by: Bytes.tab, into: &fields)
                }
                // A header line (MovieLens ratings.csv has `userId,movieId,rating,timestamp`).
                if !firstDataLineSeen {
                    firstDataLineSeen = true
                    if format == .movielensCSV && fields.count == 4 && !Bytes.isDigits(line, Bytes.trim(line, fields[0])) {
                        return true
                    }
                }
                guard fields.count == 4 else {
                    try bad("expected 4 fields (\(Self.layout(format))), found \(fields.count)")
                    return true
                }
                let (ui, ii) = format == .amazonCSV ? (1, 0) : (0, 1)
                let uf = Bytes.trim(line, fields[ui]), itf = Bytes.trim(line, fields[ii])
                if format != .amazonCSV {
                    guard Bytes.isDigits(line, uf), Bytes.isDigits(line, itf) else {
                        try bad("non-numeric user or item id (\(Self.layout(format)))")
                        return true
                    }
                } else if uf.count == 0 || itf.count == 0 {
                    try bad("empty user or item id (\(Self.layout(format)))")
                    return true
                }
                guard let rating = Bytes.parseDouble(line, Bytes.trim(line, fields[2])) else {
                    try bad("non-numeric rating \"\(Bytes.string(line, fields[2]))\"")
                    return true
                }
                guard let ts = Bytes.parseDouble(line, Bytes.trim(line, fields[3])) else {
                    try bad("non-numeric timestamp \"\(Bytes.string(line, fields[3]))\"")
                    return true
                }
                if drops(rating) { log.droppedByRating += 1; return true }
                log.users.append(log.userKeys.intern(UnsafeBufferPointer(rebasing: line[uf.start..<(uf.start + uf.count)])))
                log.items.append(log.itemKeys.intern(UnsafeBufferPointer(rebasing: line[itf.start..<(itf.start + itf.count)])))
                log.times.append(ts)

            case .amazonJSON:
                var obj = JSONLineScanner.Result()
                if let err = JSONLineScanner.scan(line, keys: ["reviewerID", "asin", "overall", "unixReviewTime"], into: &obj) {
                    try bad("bad JSON: \(err)")
                    return true
                }
                guard let u = obj.strings["reviewerID"], let it = obj.strings["asin"] else {
                    try bad("bad JSON: missing \"reviewerID\" or \"asin\"")
                    return true
                }
                guard let rating = obj.numbers["overall"] else { try bad("bad JSON: missing numeric \"overall\""); return true }
                guard let ts = obj.numbers["unixReviewTime"] else { try bad("bad JSON: missing numeric \"unixReviewTime\""); return true }
                if drops(rating) { log.droppedByRating += 1; return true }
                log.users.append(u.withUnsafeBufferPointer { log.userKeys.intern($0) })
                log.items.append(it.withUnsafeBufferPointer { log.itemKeys.intern($0) })
                log.times.append(ts)

            case .recboleInter:
                Bytes.split(line, by: Bytes.tab, into: &fields)
                guard let h = header else {
                    let hh = try RecboleHeader(line: String(decoding: line, as: UTF8.self), file: file, lineNo: lineNo)
                    header = hh
                    log.explicit = hh.rating != nil
                    log.hasTime = hh.timestamp != nil
                    return true
                }
                guard fields.count == h.columns else {
                    try bad("expected \(h.columns) tab-separated fields as in the header, found \(fields.count)")
                    return true
                }
                var rating: Double?
                if let r = h.rating {
                    guard let v = Bytes.parseDouble(line, Bytes.trim(line, fields[r])) else {
                        try bad("non-numeric rating \"\(Bytes.string(line, fields[r]))\""); return true
                    }
                    rating = v
                }
                var ts = 0.0
                if let t = h.timestamp {
                    guard let v = Bytes.parseDouble(line, Bytes.trim(line, fields[t])) else {
                        try bad("non-numeric timestamp \"\(Bytes.string(line, fields[t]))\""); return true
                    }
                    ts = v
                }
                let uf = fields[h.user], itf = fields[h.item]
                if uf.count == 0 || itf.count == 0 { try bad("empty user or item id"); return true }
                if let r = rating, drops(r) { log.droppedByRating += 1; return true }
                log.users.append(log.userKeys.intern(UnsafeBufferPointer(rebasing: line[uf.start..<(uf.start + uf.count)])))
                log.items.append(log.itemKeys.intern(UnsafeBufferPointer(rebasing: line[itf.start..<(itf.start + itf.count)])))
                if h.timestamp != nil { log.times.append(ts) }
            }
            return true
        }
        if format == .recboleInter && header == nil {
            throw RecDataError.unknownFormat(file: file, detail: "a RecBole .inter file needs a typed header line such as `user_id:token\titem_id:token\trating:float\ttimestamp:float`; the file is empty")
        }
        return log
    }

    static func layout(_ f: InputFormat) -> String {
        switch f {
        case .movielensCSV: return "userId,movieId,rating,timestamp"
        case .movielensDat: return "UserID::MovieID::Rating::Timestamp"
        case .udata: return "user<TAB>item<TAB>rating<TAB>timestamp"
        case .amazonCSV: return "item,user,rating,timestamp"
        default: return f.rawValue
        }
    }
}

typealias ProgressSink = (Int) -> Void

/// Column positions from a RecBole typed header such as
/// `user_id:token	item_id:token	rating:float	timestamp:float`.
struct RecboleHeader {
    var columns: Int
    var user: Int
    var item: Int
    var rating: Int?
    var timestamp: Int?

    init(line: String, file: String, lineNo: Int) throws {
        let names = line.split(separator: "\t", omittingEmptySubsequences: false).map {
            String($0.split(separator: ":", maxSplits: 1).first ?? "").trimmingCharacters(in: .whitespaces)
        }
        columns = names.count
        guard let u = names.firstIndex(of: "user_id"), let i = names.firstIndex(of: "item_id") else {
            throw RecDataError.malformedLine(file: file, line: lineNo, text: line,
                reason: "RecBole header without user_id and item_id columns (expected e.g. `user_id:token<TAB>item_id:token<TAB>rating:float<TAB>timestamp:float`)")
        }
        user = u
        item = i
        rating = names.firstIndex(of: "rating")
        timestamp = names.firstIndex(of: "timestamp")
    }
}

/// A minimal JSON-object scanner for one line: validates the syntax and extracts the
/// top-level string and number values of the requested keys; nested values are skipped.
/// A full JSONSerialization per line would be several times slower on multi-GB review dumps.
enum JSONLineScanner {
    struct Result {
        var strings: [String: [UInt8]] = [:]
        var numbers: [String: Double] = [:]
    }

    /// Returns nil on success or a short description of the syntax error.
    static func scan(_ s: UnsafeBufferPointer<UInt8>, keys: Set<String>, into out: inout Result) -> String? {
        var i = 0
        let n = s.count
        func ws() { while i < n && (s[i] == 0x20 || s[i] == 0x09 || s[i] == 0x0D || s[i] == 0x0A) { i += 1 } }
        func parseString() -> [UInt8]? {
            guard i < n, s[i] == Bytes.quote else { return nil }
            i += 1
            var out: [UInt8] = []
            while i < n {
                let c = s[i]
                if c == Bytes.quote { i += 1; return out }
                if c == UInt8(ascii: "\\") {
                    guard i + 1 < n else { return nil }
                    let e = s[i + 1]
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        guard i + 5 < n else { return nil }
                        // Keep \uXXXX escapes verbatim: ids are ASCII; titles are not read here.
                        out.append(contentsOf: s[i..<(i + 6)])
                        i += 6
                        continue
                    default: out.append(e)
                    }
                    i += 2
                    continue
                }
                out.append(c)
                i += 1
            }
            return nil
        }
        func skipValue(depth: Int) -> Bool {
            ws()
            guard i < n, depth < 64 else { return false }
            let c = s[i]
            if c == Bytes.quote { return parseString() != nil }
            if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") {
                let close = c == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                i += 1; ws()
                if i < n && s[i] == close { i += 1; return true }
                while true {
                    if c == UInt8(ascii: "{") {
                        ws(); guard parseString() != nil else { return false }
                        ws(); guard i < n, s[i] == Bytes.colon else { return false }
                        i += 1
                    }
                    guard skipValue(depth: depth + 1) else { return false }
                    ws()
                    guard i < n else { return false }
                    if s[i] == Bytes.comma { i += 1; continue }
                    if s[i] == close { i += 1; return true }
                    return false
                }
            }
            let start = i
            while i < n, !(s[i] == Bytes.comma || s[i] == UInt8(ascii: "}") || s[i] == UInt8(ascii: "]") || s[i] == 0x20) { i += 1 }
            let tok = String(decoding: UnsafeBufferPointer(rebasing: s[start..<i]), as: UTF8.self)
            return tok == "true" || tok == "false" || tok == "null" || Double(tok) != nil
        }
        ws()
        guard i < n, s[i] == UInt8(ascii: "{") else { return "a line must be one JSON object starting with {" }
        i += 1
        ws()
        if i < n && s[i] == UInt8(ascii: "}") { i += 1 } else {
            while true {
                ws()
                guard let keyBytes = parseString() else { return "expected a quoted key at byte \(i + 1)" }
                ws()
                guard i < n, s[i] == Bytes.colon else { return "expected ':' at byte \(i + 1)" }
                i += 1
                ws()
                let key = String(decoding: keyBytes, as: UTF8.self)
                let vstart = i
                if keys.contains(key) && i < n && s[i] == Bytes.quote {
                    guard let v = parseString() else { return "unterminated string at byte \(vstart + 1)" }
                    out.strings[key] = v
                    // Amazon dumps sometimes quote numbers ("overall": "5.0").
                    if let d = Double(String(decoding: v, as: UTF8.self)) { out.numbers[key] = d }
                } else {
                    guard skipValue(depth: 0) else { return "invalid value at byte \(vstart + 1)" }
                    if keys.contains(key), let d = Double(String(decoding: UnsafeBufferPointer(rebasing: s[vstart..<i]), as: UTF8.self)) {
                        out.numbers[key] = d
                    }
                }
                ws()
                guard i < n else { return "unterminated object" }
                if s[i] == Bytes.comma { i += 1; continue }
                if s[i] == UInt8(ascii: "}") { i += 1; break }
                return "expected ',' or '}' at byte \(i + 1)"
            }
        }
        ws()
        return i == n ? nil : "trailing text after the object at byte \(i + 1)"
    }
}
