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
        guard FileManager.default.fileExists(atPath: url.path) else {
            if !required { return nil }
            throw RecDataError.badDataset(file: url.path, line: 0, detail: "missing; is \(url.deletingLastPathComponent().path) a prepared dataset directory?")
        }
        var rows: [[String]] = []
        var failure: RecDataError?
        try LineReader(url: url).forEachLine { bytes, n in
            guard n > 1, !bytes.isEmpty else { return true }
            var line = String(decoding: bytes, as: UTF8.self)
            if line.hasSuffix("\r") { line.removeLast() }
            let f = line.split(separator: "\t", maxSplits: columns - 1, omittingEmptySubsequences: false).map(String.init)
            guard Int(f[0]) == rows.count + 1, f.count >= 2 else {
                failure = .badDataset(file: url.path, line: n, detail: "expected \"\(rows.count + 1)<TAB>original id…\" (ids 1…N in order)")
                return false
            }
            rows.append(Array(f.dropFirst()))
            return true
        }
        if let failure { throw failure }
        return rows
    }
}
