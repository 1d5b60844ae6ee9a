import Common
import Foundation

/// Options of `slmrec data prepare`.
public struct PrepareOptions: Sendable {
    public var input: URL
    public var output: URL
    public var format: InputFormat
    /// Keep ratings ≥ this. nil = the paper's "rating > 3" for explicit data, which is ≥ 4 on
    /// integer scales (ML-100K/1M, Amazon) and ≥ 3.5 on MovieLens' half-star scale; ignored
    /// for implicit data.
    public var minRating: Double?
    /// Iterative k-core on users and items (0 or 1 = off).
    public var kcore: Int
    /// Recorded in dataset.json: trainers keep each user's most recent N items as input.
    public var maxLength: Int
    public var negatives: Int
    /// Where the negatives go (nil: `NegativesStore.automatic`, text up to 10^8 ids per split).
    public var negativesStore: NegativesStore?
    public var seed: UInt64
    public var skipBadLines: Bool

    public init(input: URL, output: URL, format: InputFormat = .auto, minRating: Double? = nil, kcore: Int = 5,
                maxLength: Int = 50, negatives: Int = 999, negativesStore: NegativesStore? = nil, seed: UInt64 = 42,
                skipBadLines: Bool = false) {
        self.input = input
        self.output = output
        self.format = format
        self.minRating = minRating
        self.kcore = kcore
        self.maxLength = maxLength
        self.negatives = negatives
        self.negativesStore = negativesStore
        self.seed = seed
        self.skipBadLines = skipBadLines
    }
}

/// Statistics of a prepared dataset (also stored in dataset.json, as `statistics`).
public struct DatasetStats: Codable, Sendable, Equatable {
    public var users: Int
    public var items: Int
    public var interactions: Int
    public var averageLength: Double
    /// interactions / (users × items).
    public var density: Double
    public var badLinesSkipped: Int

    public init(users: Int, items: Int, interactions: Int, averageLength: Double, density: Double, badLinesSkipped: Int) {
        self.users = users
        self.items = items
        self.interactions = interactions
        self.averageLength = averageLength
        self.density = density
        self.badLinesSkipped = badLinesSkipped
    }

    /// The figures of `users` users (≥ 1) holding `interactions` over a catalogue of `items`:
    /// average length = interactions / users, density = interactions / (users × items).
    /// `data prepare` and `data subsample` both count this way.
    public init(users: Int, items: Int, interactions: Int, badLinesSkipped: Int) {
        self.init(users: users, items: items, interactions: interactions,
                  averageLength: Double(interactions) / Double(users),
                  density: Double(interactions) / (Double(users) * Double(items)),
                  badLinesSkipped: badLinesSkipped)
    }

    enum CodingKeys: String, CodingKey {
        case users, items, interactions, averageLength = "average_length", density, badLinesSkipped = "bad_lines_skipped"
    }

    /// One line for logs: `35,598 users, 18,357 items, 296,337 interactions, …`.
    public var summary: String {
        "\(Self.grouped(users)) users, \(Self.grouped(items)) items, \(Self.grouped(interactions)) interactions, "
            + String(format: "average length %.2f, density %.4f%%", averageLength, density * 100)
            + (badLinesSkipped > 0 ? ", \(Self.grouped(badLinesSkipped)) bad lines skipped" : "")
    }

    static func grouped(_ n: Int) -> String {
        let s = String(n.magnitude)
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}

public enum DataPrepare {
    public static let toolVersion = "0.1.0"

    /// Step 1 alone: how many interactions `run` would keep from `input` and how many bad
    /// lines it skipped (with `skipBadLines`), with `run`'s rating threshold. The fuzz harness's fast path: parsing is what
    /// bad bytes reach; the later steps only see parsed ids.
    public static func parseOnly(_ o: PrepareOptions) throws -> (interactions: Int, badLines: Int) {
        let log = try parser(o, format: o.format == .auto ? try InputFormat.detect(url: o.input) : o.format).parse(progress: nil)
        return (log.users.count, log.badLines)
    }

    /// The parser of step 1. The rating threshold applies only to explicit formats (for
    /// RecBole it depends on the header, so it is passed and ignored without a column); the
    /// default is "> 3" (SLMRec/S3-Rec "rating > 3"), an explicit --min-rating is "≥".
    static func parser(_ o: PrepareOptions, format: InputFormat) -> RecordParser {
        var p = RecordParser(url: o.input, format: format, minRating: format.isExplicit || format == .recboleInter ? (o.minRating ?? 3) : nil,
                             skipBadLines: o.skipBadLines)
        p.exclusiveMin = o.minRating == nil
        return p
    }

    /// Runs the whole pipeline and writes `o.output` atomically (nothing is left behind on error).
    ///
    /// Steps, in this order:
    /// 1. parse, dropping low ratings (explicit formats only; default "rating > 3");
    /// 2. group by user and sort each user chronologically, ties kept in file order;
    /// 3. drop repeated user–item pairs, keeping the earliest (= first in that order);
    /// 4. iterative k-core on users and items (the unique maximal sub-log in which every
    ///    user and every item has at least k interactions);
    /// 5. re-index users and items 1…N by first appearance in the surviving interactions in
    ///    file order — except for the `sequences` format when its ids already are exactly
    ///    1…N, which are kept so that our ids equal the published ones;
    /// 6. write sequences, id maps, fixed negatives and dataset.json.
    @discardableResult
    public static func run(_ o: PrepareOptions, progress: Bool = true) throws -> DatasetStats {
        let file = o.input.path
        guard FileManager.default.isReadableFile(atPath: file) else {
            throw RecDataError.io(file: file, detail: "input file does not exist or is not readable; check --input")
        }
        guard o.negatives >= 0 else { throw RecDataError.io(file: file, detail: "--negatives must be ≥ 0, got \(o.negatives)") }
        guard o.kcore >= 0 else { throw RecDataError.io(file: file, detail: "--kcore must be ≥ 0, got \(o.kcore)") }
        let format = o.format == .auto ? try InputFormat.detect(url: o.input) : o.format
        let started = Date()
        if progress { logLine("data prepare: reading \(file) as \(format.rawValue)") }

        // 1. Parse (the rating threshold: `parser(_:format:)`).
        let parser = Self.parser(o, format: format)
        let threshold = parser.minRating, exclusive = parser.exclusiveMin
        let filterText = threshold.map { exclusive ? "> \($0)" : "≥ \($0)" } ?? "none"
        if progress && o.minRating != nil && format == .sequences {
            logLine("data prepare: --min-rating ignored: the sequences format is implicit feedback")
        }
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        let reporter = progress ? ProgressReporter(label: "parse", total: max(1, fileSize / 32), unit: "lines") : nil
        var log = try parser.parse(progress: reporter.map { r in { r.update(min($0, r.total - 1)) } })
        reporter?.finish()
        if progress && log.badLines > 0 { logLine("data prepare: skipped \(log.badLines) malformed line(s)") }
        let explicit = log.explicit
        if log.users.isEmpty {
            throw RecDataError.emptyResult(file: file, detail: log.droppedByRating > 0
                ? "no interactions left after the rating filter (rating \(filterText)); \(log.droppedByRating) dropped"
                : log.linesRead == 0 ? "the file is empty" : "no interactions found")
        }

        // 2–4. Group, sort, dedupe, k-core.
        let n = log.users.count
        let nu = log.userKeys.count, ni = log.itemKeys.count
        var userStart = [Int](repeating: 0, count: nu + 1)
        for u in log.users { userStart[Int(u) + 1] += 1 }
        for u in 0..<nu { userStart[u + 1] += userStart[u] }
        var order = [Int32](repeating: 0, count: n)   // record indices grouped by user, file order
        do {
            var fill = userStart
            for r in 0..<n { let u = Int(log.users[r]); order[fill[u]] = Int32(r); fill[u] += 1 }
        }
        if log.hasTime {
            let times = log.times
            order.withUnsafeMutableBufferPointer { ord in
                for u in 0..<nu where userStart[u + 1] - userStart[u] > 1 {
                    // (time, file position) is a total order, so the result is stable by construction.
                    ord[userStart[u]..<userStart[u + 1]].sort { a, b in
                        let ta = times[Int(a)], tb = times[Int(b)]
                        return ta < tb || (ta == tb && a < b)
                    }
                }
            }
        }
        log.times = []  // no longer needed; give the memory back before the next arrays
        var alive = [Bool](repeating: true, count: n)
        var duplicates = 0
        do {
            var lastUser = [Int32](repeating: -1, count: ni)
            for u in 0..<nu {
                for k in userStart[u]..<userStart[u + 1] {
                    let r = Int(order[k]), it = Int(log.items[r])
                    if lastUser[it] == Int32(u) { alive[r] = false; duplicates += 1 } else { lastUser[it] = Int32(u) }
                }
            }
        }
        var userDeg = [Int32](repeating: 0, count: nu), itemDeg = [Int32](repeating: 0, count: ni)
        for r in 0..<n where alive[r] { userDeg[Int(log.users[r])] += 1; itemDeg[Int(log.items[r])] += 1 }
        var kcoreRounds = 0
        if o.kcore > 1 {
            let k = Int32(o.kcore)
            var changed = true
            while changed {
                changed = false
                kcoreRounds += 1
                for r in 0..<n where alive[r] {
                    let u = Int(log.users[r]), it = Int(log.items[r])
                    if userDeg[u] < k || itemDeg[it] < k {
                        alive[r] = false
                        userDeg[u] -= 1
                        itemDeg[it] -= 1
                        changed = true
                    }
                }
            }
        }

        // 5. Re-index.
        var newUser = [Int32](repeating: 0, count: nu), newItem = [Int32](repeating: 0, count: ni)
        var userOrig: [Int32] = [], itemOrig: [Int32] = []    // new id - 1 → interned code
        for r in 0..<n where alive[r] {
            let u = Int(log.users[r]), it = Int(log.items[r])
            if newUser[u] == 0 { userOrig.append(Int32(u)); newUser[u] = Int32(userOrig.count) }
            if newItem[it] == 0 { itemOrig.append(Int32(it)); newItem[it] = Int32(itemOrig.count) }
        }
        let numUsers = userOrig.count, numItems = itemOrig.count
        let interactions = alive.reduce(0) { $0 + ($1 ? 1 : 0) }
        if numUsers == 0 {
            throw RecDataError.emptyResult(file: file, detail: "no interactions left after the \(o.kcore)-core filter (\(n - duplicates) unique interactions before it)")
        }
        var keptPublishedIds = false
        if format == .sequences {
            // S3-Rec/ICLRec files are already numbered 1…N; if so, keep those numbers exactly.
            func denseIds(_ orig: [Int32], _ keys: KeyInterner) -> [Int32]? {
                var seen = [Bool](repeating: false, count: orig.count + 1)
                var map = [Int32](repeating: 0, count: orig.count)
                for (i, code) in orig.enumerated() {
                    guard let v = keys.intValue(Int(code)), v >= 1, v <= orig.count, !seen[v] else { return nil }
                    seen[v] = true
                    map[i] = Int32(v)
                }
                return map
            }
            if let um = denseIds(userOrig, log.userKeys), let im = denseIds(itemOrig, log.itemKeys) {
                keptPublishedIds = true
                var uo = userOrig, io = itemOrig
                for i in 0..<numUsers { newUser[Int(userOrig[i])] = um[i]; uo[Int(um[i]) - 1] = userOrig[i] }
                for i in 0..<numItems { newItem[Int(itemOrig[i])] = im[i]; io[Int(im[i]) - 1] = itemOrig[i] }
                userOrig = uo
                itemOrig = io
            }
        }

        // Flat sequences in new-user order.
        var seqStart = [Int](repeating: 0, count: numUsers + 1)
        var seqItems = [Int32]()
        seqItems.reserveCapacity(interactions)
        for nuid in 0..<numUsers {
            let u = Int(userOrig[nuid])
            for k in userStart[u]..<userStart[u + 1] {
                let r = Int(order[k])
                if alive[r] { seqItems.append(newItem[Int(log.items[r])]) }
            }
            seqStart[nuid + 1] = seqItems.count
        }
        order = []
        alive = []

        let stats = DatasetStats(users: numUsers, items: numItems, interactions: interactions, badLinesSkipped: log.badLines)
        if progress { logLine("data prepare: \(stats.summary)") }

        // 6. Write everything into a temporary directory renamed into place at the end.
        let titles = TitleLookup.load(near: o.input, format: format)
        let sha = try SHA256.hex(ofFile: o.input)
        var shortNegativeUsers = 0
        let store = o.negativesStore ?? .automatic(users: numUsers, count: o.negatives)
        if progress && store == .counter {
            logLine("data prepare: negatives: counter store (\(CounterNegatives.algorithm), drawn per user when evaluated; docs/data.md)")
        }
        try AtomicFile.writeDirectory(o.output) { dir in
            var w = try BufferedWriter(dir.appendingPathComponent("sequences.txt"))
            for u in 0..<numUsers { w.idRow(u + 1, seqItems[seqStart[u]..<seqStart[u + 1]]) }
            try w.close()

            w = try BufferedWriter(dir.appendingPathComponent("items.tsv"))
            w.text("item_id\toriginal_id\ttitle\n")
            for i in 0..<numItems {
                let key = log.itemKeys.key(Int(itemOrig[i]))
                w.int(i + 1); w.byte(0x09); w.text(TSV.clean(key)); w.byte(0x09)
                w.text(TSV.clean(titles[key] ?? "")); w.byte(0x0A)
            }
            try w.close()

            w = try BufferedWriter(dir.appendingPathComponent("users.tsv"))
            w.text("user_id\toriginal_id\n")
            for u in 0..<numUsers {
                w.int(u + 1); w.byte(0x09); w.text(TSV.clean(log.userKeys.key(Int(userOrig[u])))); w.byte(0x0A)
            }
            try w.close()

            var negativesSha: [String: String]? = nil
            switch store {
            case .text:
                negativesSha = [:]
                for split in ["valid", "test"] {
                    let path = dir.appendingPathComponent("negatives-\(split).txt")
                    shortNegativeUsers = try NegativeSampler.writeText(
                        to: path, seqStart: seqStart, seqItems: seqItems, numItems: numItems,
                        count: o.negatives, rng: SeededRNG(seed: o.seed, stream: "negatives-\(split)"))
                    negativesSha?[split] = try SHA256.hex(ofFile: path)
                }
            case .counter:
                // Nothing to write: PreparedDataset.negativeSource draws each user's list (Negatives.swift).
                shortNegativeUsers = NegativeSampler.shortUsers(seqStart: seqStart, seqItems: seqItems, numItems: numItems, count: o.negatives)
            }

            let record = DatasetRecord(
                toolVersion: toolVersion,
                source: .init(path: o.input.path, fileName: o.input.lastPathComponent, sha256: sha, format: format.rawValue, linesRead: log.linesRead),
                options: .init(minRating: o.minRating, ratingFilter: explicit ? "rating \(filterText)" : "none (implicit feedback)",
                               kcore: o.kcore, maxLength: o.maxLength, negatives: o.negatives, negativesStore: store,
                               seed: o.seed, skipBadLines: o.skipBadLines),
                statistics: stats,
                processing: .init(explicitRatings: explicit, timestamps: log.hasTime, droppedByRating: log.droppedByRating,
                                  duplicatesDropped: duplicates, kcoreRounds: kcoreRounds, keptPublishedIds: keptPublishedIds,
                                  usersWithFewerNegatives: shortNegativeUsers, negativesSha256: negativesSha,
                                  idOrder: keptPublishedIds ? "source ids (already dense 1..N)" : "first appearance in file order"))
            try JSONText.write(encoding: record, to: dir.appendingPathComponent("dataset.json"))
        }
        if progress {
            if shortNegativeUsers > 0 {
                logLine("data prepare: \(shortNegativeUsers) user(s) have fewer than \(o.negatives) unseen items; their negative lists hold every unseen item")
            }
            logLine(String(format: "data prepare: wrote %@ in %.1f s", o.output.path, Date().timeIntervalSince(started)))
        }
        return stats
    }
}

/// Titles for MovieLens items from a sibling `movies.csv` (`movieId,title,…`) or
/// `movies.dat` (`MovieID::Title::Genres`). Missing or unreadable files just mean no titles.
enum TitleLookup {
    static func load(near input: URL, format: InputFormat) -> [String: String] {
        let dir = input.deletingLastPathComponent()
        var out: [String: String] = [:]
        switch format {
        case .movielensCSV:
            let url = dir.appendingPathComponent("movies.csv")
            guard let lines = try? allLines(url) else { return [:] }
            for (i, line) in lines.enumerated() {
                let f = Bytes.csvFields(line)
                if i == 0 && f.first.map({ Int($0) == nil }) == true { continue }   // header
                if f.count >= 2 { out[f[0]] = f[1] }
            }
        case .movielensDat:
            let url = dir.appendingPathComponent("movies.dat")
            guard let lines = try? allLines(url) else { return [:] }
            for line in lines {
                let f = line.components(separatedBy: "::")
                if f.count >= 2 { out[f[0]] = f[1] }
            }
        default:
            break
        }
        return out
    }

    private static func allLines(_ url: URL) throws -> [String] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        var lines: [String] = []
        try LineReader(url: url).forEachLine { line, _ in
            // MovieLens .dat files are Latin-1; decode invalid UTF-8 as Latin-1 rather than lose titles.
            if let s = String(validating: line, as: UTF8.self) { lines.append(s) } else {
                lines.append(String(line.map { Character(Unicode.Scalar($0)) }))
            }
            return true
        }
        return lines
    }
}

extension DatasetRecord {
    /// Reads a dataset.json; every failure names the file and says what is wrong in words
    /// (it cannot be read, it is not JSON — where —, or which key is missing or mistyped).
    static func read(_ url: URL) throws -> DatasetRecord {
        func bad(_ what: String) -> RecDataError { .badDataset(file: url.path, line: 0, detail: what) }
        let data: Data
        do { data = try readFileData(url) } catch let e as FileReadError { throw bad(e.reason) }
        do { return try JSONDecoder().decode(DatasetRecord.self, from: data) } catch let e as DecodingError {
            // Foundation says only "not valid JSON"; our parser says what and where.
            do { _ = try JSONValue.parse(data) } catch let p as JSONParseError {
                throw bad("not valid JSON (\(p.message) at byte \(p.offset))")
            }
            func at(_ path: [CodingKey]) -> String { path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
            switch e {
            case .keyNotFound(let k, let c): throw bad("not the record `slmrec data prepare` writes: \(at(c.codingPath + [k])) is missing")
            case .typeMismatch(_, let c), .valueNotFound(_, let c): throw bad("not the record `slmrec data prepare` writes: \(at(c.codingPath)) has the wrong type")
            case .dataCorrupted(let c): throw bad("not the record `slmrec data prepare` writes: \(at(c.codingPath)): \(c.debugDescription)")
            @unknown default: throw bad("not the record `slmrec data prepare` writes (\(e))")
            }
        }
    }
}

/// dataset.json (docs/data.md): where the data came from, how it was prepared, what it holds.
public struct DatasetRecord: Codable, Sendable, Equatable {
    public var tool = "slmrec"
    public var toolVersion: String
    public var source: Source
    public var options: Options
    public var statistics: Statistics
    public var processing: Processing
    /// Present only in a `data subsample` output (Subsample.swift): which users of which
    /// prepared dataset it holds. Absent from `data prepare`'s output.
    public var subsample: Subsample?

    public struct Source: Codable, Sendable, Equatable {
        public var path: String, fileName: String, sha256: String, format: String, linesRead: Int
        enum CodingKeys: String, CodingKey { case path, fileName = "file_name", sha256, format, linesRead = "lines_read" }
    }
    public struct Options: Codable, Sendable, Equatable {
        public var minRating: Double?
        public var ratingFilter: String
        public var kcore: Int, maxLength: Int, negatives: Int
        /// Absent from records written before the counter store: text.
        public var negativesStore: NegativesStore?
        public var seed: UInt64
        public var skipBadLines: Bool
        enum CodingKeys: String, CodingKey {
            case minRating = "min_rating", ratingFilter = "rating_filter", kcore, maxLength = "max_length", negatives
            case negativesStore = "negatives_store", seed
            case skipBadLines = "skip_bad_lines"
        }
        /// `min_rating` is written as null when unset (the key is always there).
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(minRating, forKey: .minRating); try c.encode(ratingFilter, forKey: .ratingFilter)
            try c.encode(kcore, forKey: .kcore); try c.encode(maxLength, forKey: .maxLength); try c.encode(negatives, forKey: .negatives)
            try c.encodeIfPresent(negativesStore, forKey: .negativesStore)
            try c.encode(seed, forKey: .seed); try c.encode(skipBadLines, forKey: .skipBadLines)
        }
    }
    /// The same figures `data prepare` prints (one type, one set of keys).
    public typealias Statistics = DatasetStats
    public struct Processing: Codable, Sendable, Equatable {
        public var explicitRatings: Bool, timestamps: Bool
        public var droppedByRating: Int, duplicatesDropped: Int, kcoreRounds: Int
        public var keptPublishedIds: Bool
        public var usersWithFewerNegatives: Int
        /// sha256 of each text negatives file ("valid", "test"), checked when they are read.
        public var negativesSha256: [String: String]?
        public var idOrder: String
        enum CodingKeys: String, CodingKey {
            case explicitRatings = "explicit_ratings", timestamps, droppedByRating = "dropped_by_rating", duplicatesDropped = "duplicates_dropped"
            case kcoreRounds = "kcore_rounds", keptPublishedIds = "kept_published_ids", usersWithFewerNegatives = "users_with_fewer_negatives"
            case negativesSha256 = "negatives_sha256"
            case idOrder = "id_order"
        }
    }
    enum CodingKeys: String, CodingKey { case tool, toolVersion = "tool_version", source, options, statistics, processing, subsample }
}
