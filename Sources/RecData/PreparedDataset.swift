import Common
import Foundation

/// The three parts of the leave-one-out protocol used by SASRec, S3-Rec and SLMRec.
public enum Split: String, CaseIterable, Sendable, Codable {
    case train, valid, test
}

/// One next-item prediction: the model sees `input` (chronological, most recent last)
/// and should rank `target` first.
public struct Example: Sendable, Equatable {
    public let user: Int
    public let input: [Int32]
    public let target: Int32

    public init(user: Int, input: [Int32], target: Int32) {
        self.user = user
        self.input = input
        self.target = target
    }
}

/// A directory written by `DataPrepare.run`, read back.
public struct PreparedDataset: Sendable {
    public let directory: URL
    public let numUsers: Int
    public let numItems: Int
    /// Chronological item ids of user `u` at index `u - 1`.
    public let sequences: [[Int32]]
    /// Negatives parsed once per split: a trainer validating every epoch with the sampled
    /// protocol would otherwise re-read ~1000 ids per user from disk each time.
    private let negativesCache = NegativesCache()
    /// `dataset.json`, when the directory has one (data prepared elsewhere may not): where the
    /// negatives are kept and the text files' checksums.
    public let record: DatasetRecord?

    public init(directory: URL, numItems: Int, sequences: [[Int32]], record: DatasetRecord? = nil) {
        self.directory = directory
        self.numUsers = sequences.count
        self.numItems = numItems
        self.sequences = sequences
        self.record = record
    }

    /// What `slmrec data prepare` writes (`DataPrepare.run`), for the output guard.
    public static let outputKind = OutputKind(
        name: "prepared dataset",
        files: ["dataset.json", "sequences.txt", "items.tsv", "users.tsv", "negatives-valid.txt", "negatives-test.txt"],
        required: ["dataset.json", "sequences.txt", "items.tsv"])

    /// Reads `sequences.txt` and the item count from `items.tsv`. Checks that users are
    /// numbered 1…N in order and every item id is in 1…numItems.
    public static func load(directory: URL) throws -> PreparedDataset {
        // The catalogue's rows, checked as `Catalogue` reads them (numbered 1…N in order): a
        // stray line must not silently change the number of items the model scores.
        let numItems = try Catalogue.rowCount(directory.appendingPathComponent("items.tsv"))
        let seqURL = directory.appendingPathComponent("sequences.txt")
        let rows = try readIntRows(seqURL)
        var sequences: [[Int32]] = []
        sequences.reserveCapacity(rows.count)
        for (k, row) in rows.enumerated() {
            guard row.values.first == Int32(k + 1) else {
                throw RecDataError.badDataset(file: seqURL.path, line: row.line, detail: "expected user \(k + 1) first on this line")
            }
            let items = Array(row.values.dropFirst())
            if let bad = items.first(where: { $0 < 1 || Int($0) > numItems }) {
                throw RecDataError.badDataset(file: seqURL.path, line: row.line, detail: "item id \(bad) outside 1…\(numItems) (items.tsv)")
            }
            sequences.append(items)
        }
        let recordURL = directory.appendingPathComponent("dataset.json")
        var record: DatasetRecord? = nil
        if FileManager.default.fileExists(atPath: recordURL.path) {
            let r = try DatasetRecord.read(recordURL)
            // An emptied or truncated sequences.txt would otherwise surface later, as a
            // mismatch of some other file (the negatives) with it.
            guard r.statistics.users == sequences.count else {
                throw RecDataError.badDataset(file: seqURL.path, line: 0,
                                              detail: "\(sequences.count) users, but dataset.json records \(r.statistics.users)")
            }
            guard r.statistics.items == numItems else {
                throw RecDataError.badDataset(file: directory.appendingPathComponent("items.tsv").path, line: 0,
                                              detail: "\(numItems) items, but dataset.json records \(r.statistics.items)")
            }
            record = r
        }
        return PreparedDataset(directory: directory, numItems: numItems, sequences: sequences, record: record)
    }

    /// Where this dataset's fixed negatives are: the record's `options.negatives_store`, text
    /// when the record predates it or there is none.
    public var negativesStore: NegativesStore { record?.options.negativesStore ?? .text }

    /// A split's fixed negatives, text or counter (Negatives.swift). A counter store whose
    /// directory also holds a negatives file, or a text file whose sha256 is not the record's,
    /// is refused: which lists the numbers came from must never be in doubt.
    public func negativeSource(_ split: Split) throws -> NegativeSource {
        guard split != .train else {
            throw RecDataError.badDataset(file: directory.path, line: 0, detail: "there are no fixed negatives for the train split (only valid and test)")
        }
        let url = directory.appendingPathComponent("negatives-\(split.rawValue).txt")
        switch negativesStore {
        case .text:
            return NegativeSource(kind: .table(try negatives(split)), split: split)
        case .counter:
            let recordPath = directory.appendingPathComponent("dataset.json").path
            if FileManager.default.fileExists(atPath: url.path) {
                throw RecDataError.badDataset(file: url.path, line: 0, detail: """
                    dataset.json says the negatives are drawn by \(CounterNegatives.algorithm) (options.negatives_store "counter"), \
                    yet this file exists; remove it, or set negatives_store to "text" in \(recordPath) if it is the one to use
                    """)
            }
            guard let o = record?.options, o.negatives >= 1 else {
                throw RecDataError.badDataset(file: recordPath, line: 0, detail: "options.negatives must be ≥ 1 for the counter store")
            }
            return NegativeSource(kind: .counter(CounterNegatives(seed: o.seed, count: o.negatives, numItems: numItems), sequences: sequences),
                                  split: split)
        }
    }

    /// The fixed negatives of a split (index user - 1), from `negatives-<split>.txt` (checked
    /// against the record's sha256), or every user's counter list (small datasets only:
    /// evaluation reads `negativeSource`).
    public func negatives(_ split: Split) throws -> [[Int32]] {
        guard split != .train else {
            throw RecDataError.badDataset(file: directory.path, line: 0, detail: "there are no fixed negatives for the train split (only valid and test)")
        }
        if let cached = negativesCache.get(split) { return cached }
        let url = directory.appendingPathComponent("negatives-\(split.rawValue).txt")
        if negativesStore == .counter {
            return try negativeSource(split).lists(users: Array(stride(from: 1, through: numUsers, by: 1)))
        }
        if let expected = record?.processing.negativesSha256?[split.rawValue], FileManager.default.fileExists(atPath: url.path) {
            let actual: String
            do { actual = try SHA256.hex(ofFile: url) } catch let e as FileReadError {
                throw RecDataError.badDataset(file: url.path, line: 0, detail: e.reason)
            }
            guard actual == expected else {
                throw RecDataError.badDataset(file: url.path, line: 0, detail: """
                    sha256 \(actual) is not the \(expected) that dataset.json recorded when the negatives were drawn \
                    (processing.negatives_sha256.\(split.rawValue)): the file changed since; restore it or re-run data prepare
                    """)
            }
        }
        let rows = try Self.readIntRows(url)
        guard rows.count == numUsers else {
            throw RecDataError.badDataset(file: url.path, line: 0, detail: "\(rows.count) lines for \(numUsers) users")
        }
        let negatives = try rows.enumerated().map { k, row in
            guard row.values.first == Int32(k + 1) else {
                throw RecDataError.badDataset(file: url.path, line: row.line, detail: "expected user \(k + 1) first on this line")
            }
            let neg = Array(row.values.dropFirst())
            if let bad = neg.first(where: { $0 < 1 || Int($0) > numItems }) {
                throw RecDataError.badDataset(file: url.path, line: row.line, detail: "item id \(bad) outside 1…\(numItems)")
            }
            return neg
        }
        negativesCache.set(split, negatives)
        return negatives
    }

    /// Leave-one-out examples, one per user:
    /// - test: input = sequence without its last item, target = last item;
    /// - valid: input = sequence without its last two items, target = second to last;
    /// - train: input = sequence without its last three items, target = third to last (the
    ///   last training item). Trainers that predict at every position use `trainingSequence`.
    /// Inputs keep only the `maxLength` most recent items. Users with fewer than 3
    /// interactions are an error for valid/test (naming the user); for train, users whose
    /// input would be empty are skipped.
    public func examples(split: Split, maxLength: Int) throws -> [Example] {
        var out: [Example] = []
        out.reserveCapacity(numUsers)
        for (k, seq) in sequences.enumerated() {
            let user = k + 1
            if seq.count < 3 {
                if split == .train { continue }
                throw RecDataError.sequenceTooShort(user: user, length: seq.count, split: split.rawValue)
            }
            let end: Int
            switch split {
            case .test: end = seq.count - 1
            case .valid: end = seq.count - 2
            case .train: end = seq.count - 3
            }
            if split == .train && end == 0 { continue }
            let start = max(0, end - max(0, maxLength))
            out.append(Example(user: user, input: Array(seq[start..<end]), target: seq[end]))
        }
        return out
    }

    /// Interactions per item (index 0 padding, always 0) in what models train on: every user's
    /// `trainingSequence` (the popularity a sampled softmax draws negatives by).
    public func trainingItemCounts() -> [Int] {
        var c = [Int](repeating: 0, count: numItems + 1)
        for u in stride(from: 1, through: numUsers, by: 1) { for i in trainingSequence(user: u) { c[Int(i)] += 1 } }
        return c
    }

    /// Items a model may train on for `user` (1-based): everything but the valid and test targets.
    public func trainingSequence(user: Int) -> ArraySlice<Int32> {
        let seq = sequences[user - 1]
        return seq.prefix(max(0, seq.count - 2))
    }

    struct IntRow {
        var line: Int
        var values: [Int32]
    }

    /// Whitespace-separated integer rows, blank lines skipped.
    static func readIntRows(_ url: URL) throws -> [IntRow] {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw RecDataError.badDataset(file: url.path, line: 0, detail: "missing")
        }
        var rows: [IntRow] = []
        var fields: [FieldRange] = []
        try LineReader(url: url).forEachLine { line, n in
            Bytes.splitWhitespace(line, into: &fields)
            if fields.isEmpty { return true }
            var vals = [Int32]()
            vals.reserveCapacity(fields.count)
            for f in fields {
                guard let v = Bytes.parseInt(line, f), v <= Int(Int32.max) else {
                    throw RecDataError.badDataset(file: url.path, line: n, detail: "non-integer value \"\(Bytes.string(line, f))\"")
                }
                vals.append(Int32(v))
            }
            rows.append(IntRow(line: n, values: vals))
            return true
        }
        return rows
    }
}

/// Per-split negatives of one loaded dataset (shared by copies of the struct).
final class NegativesCache: @unchecked Sendable {
    private let lock = NSLock()
    private var bySplit: [Split: [[Int32]]] = [:]
    func get(_ s: Split) -> [[Int32]]? { lock.lock(); defer { lock.unlock() }; return bySplit[s] }
    func set(_ s: Split, _ v: [[Int32]]) { lock.lock(); bySplit[s] = v; lock.unlock() }
}
