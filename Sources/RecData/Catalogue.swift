import Foundation

/// What a prepared dataset calls its ids outside the toolbench: `items.tsv` (item id → the raw
/// id it came from and a title) and `users.tsv` (user id → raw id), docs/data.md. Models and
/// metrics use the dense ids 1…N; whatever a person or another system reads (recommendations)
/// needs these names back.
public struct Catalogue: Sendable {
    /// `originalItems[i - 1]`, `titles[i - 1]`: item i's raw id and title ("" when none).
    public let originalItems: [String]
    public let titles: [String]
    /// `originalUsers[u - 1]`: user u's raw id; nil when the dataset has no users.tsv.
    public let originalUsers: [String]?
    private let itemByOriginal: [String: Int32]

    public var numItems: Int { originalItems.count }

    public init(originalItems: [String], titles: [String], originalUsers: [String]?) {
        self.originalItems = originalItems
        self.titles = titles
        self.originalUsers = originalUsers
        var map: [String: Int32] = [:]
        map.reserveCapacity(originalItems.count)
        for (k, o) in originalItems.enumerated() where map[o] == nil { map[o] = Int32(k + 1) }
        itemByOriginal = map
    }

    /// The dense id of a raw item id (nil: not in the catalogue).
    public func item(original: String) -> Int32? { itemByOriginal[original] }

    /// Reads `items.tsv` (required) and `users.tsv` (optional). Rows must be numbered 1…N in
    /// order, as prepare writes them; a row out of order names the file and line.
    public static func load(directory: URL) throws -> Catalogue {
        let items = try readTable(directory.appendingPathComponent("items.tsv"), columns: 3, required: true) ?? []
        let users = try readTable(directory.appendingPathComponent("users.tsv"), columns: 2, required: false)
        return Catalogue(originalItems: items.map { $0[0] }, titles: items.map { $0.count > 1 ? $0[1] : "" },
                         originalUsers: users?.map { $0[0] })
    }

    /// Rows after the header: the fields after the id column (at most `columns - 1`; a title
    /// column left empty may be missing altogether).
    static func readTable(_ url: URL, columns: Int, required: Bool) throws -> [[String]]? {
        var rows: [[String]] = []
        let n = try forEachRow(url, required: required) { rest, _ in
            rows.append(String(decoding: rest, as: UTF8.self)
                .split(separator: "\t", maxSplits: columns - 2, omittingEmptySubsequences: false).map(String.init))
        }
        return n == nil ? nil : rows
    }

    /// The number of rows after the header, checked as `readTable` checks them, without
    /// building their strings (`PreparedDataset.load` needs only the count).
    static func rowCount(_ url: URL) throws -> Int {
        try forEachRow(url, required: true) { _, _ in } ?? 0
    }

    /// Calls `row` with each row after the header — the bytes after its id and tab — and its
    /// line number, checking that the rows are numbered 1…N in order as prepare writes them (a
    /// row out of order names the file and line). Returns the number of rows, nil for an absent
    /// file that is not `required`.
    static func forEachRow(_ url: URL, required: Bool, _ row: (UnsafeBufferPointer<UInt8>, Int) -> Void) throws -> Int? {
        guard FileManager.default.fileExists(atPath: url.path) else {
            if !required { return nil }
            throw RecDataError.badDataset(file: url.path, line: 0, detail: "missing; is \(url.deletingLastPathComponent().path) a prepared dataset directory?")
        }
        var count = 0
        var failure: RecDataError?
        try LineReader(url: url).forEachLine { bytes, n in
            guard n > 1, !bytes.isEmpty else { return true }
            guard let tab = bytes.firstIndex(of: Bytes.tab), Bytes.parseInt(bytes, FieldRange(start: 0, count: tab)) == count + 1 else {
                failure = .badDataset(file: url.path, line: n, detail: "expected \"\(count + 1)<TAB>original id…\" (ids 1…N in order)")
                return false
            }
            count += 1
            row(UnsafeBufferPointer(rebasing: bytes[(tab + 1)...]), n)
            return true
        }
        if let failure { throw failure }
        return count
    }
}
