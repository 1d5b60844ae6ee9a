import Foundation
import Common
import Engine
import RecData

/// One recommended item: its dense id and the model's score (the dot product of the user
/// vector with the item's output embedding, as ranked by `slmrec eval`).
public struct ScoredItem: Sendable, Equatable {
    public var item: Int32
    public var score: Float
    public init(item: Int32, score: Float) { self.item = item; self.score = score }
}

/// Top-K recommendation: what a compressed model is for. The scores are those the full-ranking
/// protocol ranks (docs/evaluation.md); the items a user already has are never recommended.
public enum Recommender {
    /// Orders by score, highest first; equal scores by item id, lowest first (deterministic).
    /// A NaN or infinite score (a broken model) is never recommended.
    @inline(__always) static func before(_ a: ScoredItem, _ b: ScoredItem) -> Bool {
        a.score > b.score || (a.score == b.score && a.item < b.item)
    }

    /// The `k` best of items 1…N (`scores` has N + 1 entries; 0 is padding) except those in
    /// `exclude`, best first. O(N log k): a k-entry min-heap, and the exclusion set is only
    /// consulted for an item that would enter the heap.
    public static func topK(scores: UnsafeBufferPointer<Float>, k: Int, exclude: Set<Int32>) -> [ScoredItem] {
        let n = scores.count - 1
        guard k > 0, n >= 1 else { return [] }
        var heap: [ScoredItem] = []   // heap[0] is the worst kept item
        heap.reserveCapacity(k)
        func siftDown(_ start: Int) {
            var i = start
            while true {
                let l = 2 * i + 1, r = l + 1
                var worst = i
                if l < heap.count && before(heap[worst], heap[l]) { worst = l }
                if r < heap.count && before(heap[worst], heap[r]) { worst = r }
                if worst == i { return }
                heap.swapAt(i, worst)
                i = worst
            }
        }
        // Once the heap is full, almost every item loses to its worst entry: one float
        // comparison rejects it (NaN fails `<` and goes on to the finiteness test).
        var floor = -Float.infinity
        for i in 1...n {
            let s = scores[i]
            if s < floor { continue }
            if !s.isFinite { continue }
            let c = ScoredItem(item: Int32(i), score: s)
            if heap.count == k && !before(c, heap[0]) { continue }
            if exclude.contains(c.item) { continue }
            if heap.count < k {
                heap.append(c)
                var j = heap.count - 1
                while j > 0 {
                    let p = (j - 1) / 2
                    guard before(heap[p], heap[j]) else { break }
                    heap.swapAt(p, j)
                    j = p
                }
            } else {
                heap[0] = c
                siftDown(0)
            }
            if heap.count == k { floor = heap[0].score }
        }
        return heap.sorted(by: before)
    }

    /// The top `k` items for each history (dense item ids, oldest first): the model reads the
    /// `max_seq_len` most recent items, and every item of the whole history is excluded.
    /// Histories are batched by length (as evaluation does) and returned in the given order.
    public static func recommend(model: ELLMRecModel, histories: [[Int32]], k: Int, batchSize: Int = 256,
                                 progress: Bool = true) throws -> [[ScoredItem]] {
        let d = model.dims
        if let bad = histories.firstIndex(where: { $0.isEmpty }) {
            throw EngineError("history \(bad + 1) is empty: a recommendation needs at least one item the user has")
        }
        if let bad = histories.firstIndex(where: { $0.contains { $0 < 1 || Int($0) > d.numItems } }) {
            throw EngineError("history \(bad + 1) holds an item id outside 1…\(d.numItems) (ellmrec.num_items)")
        }
        let ws = Workspace()
        var rng = SeededRNG(seed: 0)
        let batches = lengthGroupedBatches(lengths: histories.map { min($0.count, d.maxSeqLen) }, batchSize: batchSize, shuffle: false, rng: &rng)
        var out = [[ScoredItem]](repeating: [], count: histories.count)
        let reporter = ProgressReporter(label: "recommend", total: histories.count, unit: "users", quiet: !progress)
        let cols = d.numItems + 1
        var done = 0
        for idx in batches {
            let inputs = idx.map { Array(histories[$0].suffix(d.maxSeqLen)) }
            let batch = try PackedBatch(sequences: inputs, targets: nil, dims: d)
            let scores = UnsafePointer(model.infer(batch, workspace: ws).scores.ptr)
            var lists = [[ScoredItem]](repeating: [], count: idx.count)
            lists.withUnsafeMutableBufferPointer { lp in
                nonisolated(unsafe) let lp = lp
                parallelFor(idx.count) { r in
                    let s = UnsafeBufferPointer(start: scores + r * cols, count: cols)
                    lp[r] = topK(scores: s, k: k, exclude: Set(histories[idx[r]]))
                }
            }
            for (r, i) in idx.enumerated() { out[i] = lists[r] }
            done += idx.count
            reporter.update(done)
        }
        reporter.finish()
        return out
    }
}

/// Whose recommendations: a dataset user (dense id and raw id) or a history given as raw ids.
public struct RecommendationRequest: Sendable, Equatable {
    /// The dataset's user id, or the 1-based line of a `--sequences` file.
    public var user: Int
    /// users.tsv's original id, or the label the `--sequences` line starts with.
    public var label: String
    /// Dense item ids, oldest first.
    public var history: [Int32]
    public init(user: Int, label: String, history: [Int32]) { self.user = user; self.label = label; self.history = history }
}

/// `slmrec recommend`'s output (docs/evaluation.md#recommendations): TSV with one row per
/// (user, rank), or JSON lines with one object per user; item ids in both the dataset's
/// numbering and the original one, titles from items.tsv, scores as the model gives them.
public enum RecommendationFile {
    public enum Format: String, CaseIterable, Sendable { case tsv, jsonl }

    public static let tsvHeader = "user\toriginal_user\trank\titem\toriginal_item\tscore\ttitle"

    /// Recognised by the TSV header or a first JSON line with a "recommendations" array.
    public static let outputKind = OutputKind(file: "recommendations file (slmrec recommend)") { url in
        guard let h = FileHandle(forReadingAtPath: url.path) else { return false }
        defer { try? h.close() }
        let head = (try? h.read(upToCount: 1 << 16)) ?? Data()
        guard let first = String(decoding: head, as: UTF8.self).split(separator: "\n", maxSplits: 1).first.map(String.init) else { return false }
        if first == tsvHeader { return true }
        return (try? JSONValue.parse(Data(first.utf8)))?.objectValue?["recommendations"]?.arrayValue != nil
    }

    /// The format a file name asks for: .jsonl / .json → JSON lines, anything else TSV.
    public static func format(forPath path: String) -> Format {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        return ext == "jsonl" || ext == "json" ? .jsonl : .tsv
    }

    /// Streams the file to a temporary sibling and renames it onto `url` when complete.
    public static func write(_ requests: [RecommendationRequest], _ lists: [[ScoredItem]], catalogue: Catalogue,
                             format: Format, to url: URL) throws {
        precondition(requests.count == lists.count, "one list per request")
        try AtomicFile.writeFile(url) { tmp in
            var w = try BufferedWriter(tmp)
            if format == .tsv { w.text(tsvHeader + "\n") }
            for (q, list) in zip(requests, lists) {
                switch format {
                case .tsv:
                    let user = "\(q.user)\t\(TSV.clean(q.label))\t"
                    for (r, x) in list.enumerated() {
                        let i = Int(x.item) - 1
                        w.text(user); w.int(r + 1); w.byte(0x09); w.int(Int(x.item)); w.byte(0x09)
                        w.text(TSV.clean(catalogue.originalItems[i])); w.byte(0x09); w.text(String(x.score)); w.byte(0x09)
                        w.text(TSV.clean(catalogue.titles[i])); w.byte(0x0A)
                    }
                case .jsonl:
                    let items: [JSONValue] = list.enumerated().map { r, x in
                        let i = Int(x.item) - 1
                        return .object(["rank": .int(r + 1), "item": .int(Int(x.item)), "original_item": .string(catalogue.originalItems[i]),
                                        "score": .double(Double(String(x.score)) ?? Double(x.score)), "title": .string(catalogue.titles[i])])
                    }
                    w.text(JSONText.compact(.object(["user": .int(q.user), "original_user": .string(q.label), "recommendations": .array(items)])))
                    w.byte(0x0A)
                }
            }
            try w.close()
        }
    }
}
