import Common
import Foundation

/// Options of `slmrec data subsample`.
public struct SubsampleOptions: Sendable {
    /// A prepared dataset directory (`slmrec data prepare`'s output, or an earlier subsample).
    public var data: URL
    public var output: URL
    /// Users to keep: 1…the source's users (all of them copies the dataset).
    public var users: Int
    public var seed: UInt64

    public init(data: URL, output: URL, users: Int, seed: UInt64 = 42) {
        self.data = data
        self.output = output
        self.users = users
        self.seed = seed
    }
}

extension DatasetRecord {
    /// dataset.json's `subsample`: which users of which prepared dataset this one holds.
    /// A subsample of a subsample records its immediate source; that source's dataset.json
    /// (identified by its sha256) records the one before.
    public struct Subsample: Codable, Sendable, Equatable {
        /// The prepared dataset directory sampled from.
        public var source: String
        /// sha256 of the source's dataset.json.
        public var sourceDatasetSha256: String
        /// Users kept, of the source's users.
        public var users: Int, sourceUsers: Int
        /// `SeededRNG(seed:, stream: DataSubsample.stream)` drew the users.
        public var seed: UInt64
        /// Catalogue items that occur in the sample's sequences (the rest stay in items.tsv).
        public var itemsWithInteractions: Int
        enum CodingKeys: String, CodingKey {
            case source, sourceDatasetSha256 = "source_dataset_sha256", users, sourceUsers = "source_users", seed
            case itemsWithInteractions = "items_with_interactions"
        }
    }
}

/// `slmrec data subsample`: a uniform random sample of a prepared dataset's users, written as
/// a prepared dataset that every reader takes unchanged. Only users are sampled: items.tsv
/// is copied byte for byte, so item ids, the catalogue size (an item table, full ranking over
/// every item) and the fixed negatives mean what they meant in the source.
public enum DataSubsample {
    /// The random stream the users are drawn from (with `--seed`).
    public static let stream = "subsample-users"

    /// `count` distinct users of 1…`total`, ascending. Selection sampling (Knuth, TAOCP
    /// vol. 2, §3.4.2, Algorithm S): walking the users in order, each is taken with
    /// probability (users still needed) / (users still left), which makes every subset of
    /// `count` users equally likely and yields it in source order. `count == total` takes all.
    public static func sampleUsers(count: Int, of total: Int, seed: UInt64) -> [Int] {
        precondition(count >= 0 && count <= total, "sampleUsers: count \(count) outside 0…\(total)")
        var rng = SeededRNG(seed: seed, stream: stream)
        var out: [Int] = []
        out.reserveCapacity(count)
        var user = 1
        while out.count < count {
            if rng.nextInt(below: total - user + 1) < count - out.count { out.append(user) }
            user += 1
        }
        return out
    }

    /// Reads the prepared dataset `o.data`, draws `o.users` of its users and writes them to
    /// `o.output` atomically (nothing is left behind on error):
    /// - sequences.txt: the sampled users' sequences, users renumbered 1…N in source order;
    /// - items.tsv: copied byte for byte;
    /// - users.tsv: new id → the source's `original_id` (the raw id, also after a second
    ///   subsample); negatives-valid/test.txt: the sampled users' lines, renumbered, negatives
    ///   unchanged. Each is skipped when the source has none (PreparedDataset needs neither);
    /// - dataset.json: the source's record with `statistics` recomputed for the sample,
    ///   `processing.users_with_fewer_negatives` counted over the sample, and `subsample`.
    @discardableResult
    public static func run(_ o: SubsampleOptions, progress: Bool = true) throws -> DatasetStats {
        let started = Date()
        let fm = FileManager.default
        let recordURL = o.data.appendingPathComponent("dataset.json")
        guard fm.fileExists(atPath: recordURL.path) else {
            throw RecDataError.badDataset(file: recordURL.path, line: 0, detail: "missing; is \(o.data.path) a prepared dataset directory (--data)?")
        }
        let source = try PreparedDataset.load(directory: o.data)
        let total = source.numUsers
        guard o.users >= 1 && o.users <= total else {
            throw RecDataError.badOption(option: "--users", detail: total == 0
                ? "\(o.data.path) has no users (sequences.txt is empty); there is nothing to sample"
                : "\(o.users) is outside 1…\(total) (\(o.data.path) has \(total) users); pass a number in that range (\(total) copies the dataset)")
        }
        // The record and the files must describe the same dataset, or the copied record would
        // lie (users and items: checked by `load`).
        guard var record = source.record else { throw RecDataError.badDataset(file: recordURL.path, line: 0, detail: "missing") }

        let sampled = sampleUsers(count: o.users, of: total, seed: o.seed)
        var newId = [Int](repeating: 0, count: total + 1)   // source user → sample user; 0: not sampled
        for (k, u) in sampled.enumerated() { newId[u] = k + 1 }
        let sequences = sampled.map { source.sequences[$0 - 1] }
        var seen = [Bool](repeating: false, count: source.numItems + 1)
        var interactions = 0, shortNegativeUsers = 0
        for seq in sequences {
            interactions += seq.count
            // NegativeSampler's count: fewer unseen items than --negatives.
            if source.numItems - Set(seq).count < record.options.negatives { shortNegativeUsers += 1 }
            for i in seq { seen[Int(i)] = true }
        }
        let stats = DatasetStats(users: o.users, items: source.numItems, interactions: interactions,
                                 badLinesSkipped: record.statistics.badLinesSkipped)
        let sha = try SHA256.hex(ofFile: recordURL)
        record.statistics = stats
        record.processing.usersWithFewerNegatives = shortNegativeUsers
        record.subsample = .init(source: o.data.path, sourceDatasetSha256: sha, users: o.users, sourceUsers: total,
                                 seed: o.seed, itemsWithInteractions: seen.reduce(0) { $0 + ($1 ? 1 : 0) })
        if progress { logLine("data subsample: \(o.users) of \(total) users of \(o.data.path) (seed \(o.seed))") }

        try AtomicFile.writeDirectory(o.output) { dir in
            var w = try BufferedWriter(dir.appendingPathComponent("sequences.txt"))
            for (k, seq) in sequences.enumerated() { w.idRow(k + 1, seq) }
            try w.close()
            do {
                try fm.copyItem(at: o.data.appendingPathComponent("items.tsv"), to: dir.appendingPathComponent("items.tsv"))
            } catch {
                throw RecDataError.io(file: o.data.appendingPathComponent("items.tsv").path, detail: "cannot copy: \(error.localizedDescription)")
            }
            for (name, header) in [("users.tsv", true), ("negatives-valid.txt", false), ("negatives-test.txt", false)] {
                let from = o.data.appendingPathComponent(name)
                guard fm.fileExists(atPath: from.path), header || source.negativesStore == .text else { continue }
                try copyRows(from: from, to: dir.appendingPathComponent(name), header: header, users: total, newId: newId)
            }
            if source.negativesStore == .counter {
                // The counter lists are keyed by the source's user ids, which the sample renumbers:
                // the sample keeps the same lists as text (a few thousand users, not 1.2 M).
                for split in [Split.valid, .test] {
                    var w = try BufferedWriter(dir.appendingPathComponent("negatives-\(split.rawValue).txt"))
                    for (k, list) in try source.negativeSource(split).lists(users: sampled).enumerated() { w.idRow(k + 1, list) }
                    try w.close()
                }
                record.options.negativesStore = .text
            }
            var sha: [String: String] = [:]
            for split in ["valid", "test"] {
                let f = dir.appendingPathComponent("negatives-\(split).txt")
                if fm.fileExists(atPath: f.path) { sha[split] = try SHA256.hex(ofFile: f) }
            }
            record.processing.negativesSha256 = sha.isEmpty ? nil : sha
            try JSONText.write(encoding: record, to: dir.appendingPathComponent("dataset.json"))
        }
        if progress {
            logLine("data subsample: \(stats.summary)")
            logLine(String(format: "data subsample: wrote %@ in %.1f s", o.output.path, Date().timeIntervalSince(started)))
        }
        return stats
    }

    /// Copies the sampled users' rows of a per-user file (`USER rest…`, users 1…`users` in
    /// order, blank lines skipped; after a header line when `header`), writing the new user id
    /// and the rest of the row as it is: the same negatives, the same original ids.
    static func copyRows(from: URL, to: URL, header: Bool, users: Int, newId: [Int]) throws {
        var w = try BufferedWriter(to)
        var rows = 0
        try LineReader(url: from).forEachLine { line, n in
            if header && n == 1 {
                w.bytes(line)
                w.byte(0x0A)
                return true
            }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }
            var end = 0   // the user id: up to the first space or tab
            while end < line.count && line[end] != 0x20 && line[end] != 0x09 { end += 1 }
            rows += 1
            guard Bytes.parseInt(line, FieldRange(start: 0, count: end)) == rows else {
                throw RecDataError.badDataset(file: from.path, line: n,
                                              detail: "expected user \(rows) first on this line, found \"\(Bytes.string(line, FieldRange(start: 0, count: end)))\"")
            }
            guard rows <= users else {
                throw RecDataError.badDataset(file: from.path, line: n, detail: "more lines than the \(users) users of sequences.txt")
            }
            if newId[rows] > 0 {
                w.int(newId[rows])
                w.bytes(UnsafeBufferPointer(rebasing: line[end...]))
                w.byte(0x0A)
            }
            return true
        }
        guard rows == users else {
            throw RecDataError.badDataset(file: from.path, line: 0, detail: "\(rows) lines for the \(users) users of sequences.txt")
        }
        try w.close()
    }
}
