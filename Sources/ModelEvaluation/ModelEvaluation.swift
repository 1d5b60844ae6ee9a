import Foundation
import Common
import Engine
import RecData
import ModelFormat
import Evaluation
import Cluster

public struct EvalOptions: Sendable {
    public var split: Split = .test
    public var candidates: Candidates = .both
    /// Evaluate a fixed, evenly spaced subset of this many users (nil: all).
    public var users: Int?
    public var batchSize: Int = 256
    public var progress: Bool = true
    public init(split: Split = .test, candidates: Candidates = .both, users: Int? = nil, batchSize: Int = 256, progress: Bool = true) {
        self.split = split; self.candidates = candidates; self.users = users; self.batchSize = batchSize; self.progress = progress
    }
}

public struct EvalResult: Sendable {
    public var sampled: [String: Double]?
    public var full: [String: Double]?
    public var users: Int
    public var seconds: Double
    /// (user, sampled rank, full rank), 1-based ranks; nil where that protocol was not run.
    public var ranks: [(user: Int, sampled: Int?, full: Int?)]
    public var usersPerSecond: Double { Double(users) / max(seconds, 1e-9) }

    /// What `slmrec eval --output` writes (the object below), for the output guard.
    public static let outputKind = OutputKind.jsonFile("metrics file (slmrec eval)", keys: ["split", "candidates", "tie_rule"])

    /// What `slmrec eval --ranks` writes (`ModelEvaluator.ranksTSV`): lines of 2 or 3
    /// tab-separated integers.
    public static let ranksKind = OutputKind(file: "ranks file (slmrec eval --ranks)") { url in
        guard let d = FileManager.default.contents(atPath: url.path), let text = String(data: d, encoding: .utf8) else { return false }
        return text.split(separator: "\n").prefix(1000).allSatisfy { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            return (2...3).contains(f.count) && f.allSatisfy { Int($0) != nil }
        }
    }

    /// What the METRICS.json of `slmrec eval` (and SASRec's metrics) records of this result.
    public func record(split: Split, candidates: Candidates) -> EvalRecord {
        EvalRecord(split: split, candidates: candidates, users: users, seconds: seconds, usersPerSecond: usersPerSecond,
                   sampled: sampled, full: full)
    }
}

/// An evaluation's metrics file (docs/evaluation.md). What was evaluated is recorded by
/// `slmrec eval` (checkpoint, adapter, data, num_items, int8); other writers leave it out.
public struct EvalRecord: Codable, Sendable, Equatable {
    public var split: Split
    public var candidates: Candidates
    public var users: Int
    public var seconds: Double
    public var usersPerSecond: Double
    /// Ties are counted against the target (a constant model gets rank N, not 1).
    public var tieRule = "pessimistic"
    public var sampled: [String: Double]?
    public var full: [String: Double]?
    public var checkpoint: String?
    public var adapter: String?
    public var data: String?
    public var numItems: Int?
    public var int8: Bool?

    public init(split: Split, candidates: Candidates, users: Int, seconds: Double, usersPerSecond: Double,
                sampled: [String: Double]?, full: [String: Double]?) {
        self.split = split; self.candidates = candidates; self.users = users; self.seconds = seconds
        self.usersPerSecond = usersPerSecond; self.sampled = sampled; self.full = full
    }

    enum CodingKeys: String, CodingKey {
        case split, candidates, users, seconds, usersPerSecond = "users_per_second", tieRule = "tie_rule", sampled, full
        case checkpoint, adapter, data, numItems = "num_items", int8
    }
}

public enum ModelEvaluator {
    /// The users evaluated with `users: n`: n evenly spaced users (deterministic).
    public static func userSubset(count: Int, of total: Int) -> [Int] {
        guard count < total else { return Array(1...max(total, 1)).filter { $0 <= total } }
        return (0..<count).map { 1 + Int(Double($0) * Double(total) / Double(count)) }
    }

    /// Ranks each user's held-out item for `split` with an E-LLMRec model (float or int8).
    public static func evaluate(model: ELLMRecModel, dataset: PreparedDataset, options o: EvalOptions) throws -> EvalResult {
        let d = model.dims
        let ws = Workspace()
        return try rankHeldOut(dataset: dataset, numItems: d.numItems, maxLength: d.maxSeqLen, options: o,
                               table: UnsafePointer(model.params.req(ParamName.itemEmbedding)), dim: d.itemDim) { ex in
            let batch = try PackedBatch(sequences: ex.map(\.input), targets: nil, dims: d)
            return UnsafePointer(model.inferUsers(batch, workspace: ws).user.ptr)
        }
    }

    /// The protocol shared by every model the toolbench evaluates (E-LLMRec, SASRec): the
    /// split's examples (input truncated to `maxLength`), an evenly spaced user subset when
    /// asked, batches grouped by input length so short sequences do not pay for long ones,
    /// and each user's target ranked against the fixed negatives (sampled) and/or all items
    /// but the history (full), pessimistic ties. `users` returns the (B, dim) user vectors of
    /// a batch of examples, valid until its next call; the scores are their dot products with
    /// `table` (numItems + 1, dim), formed and counted one item block at a time
    /// (StreamedRanking: no (B, numItems) matrix, the same ranks as materialising it).
    public static func rankHeldOut(dataset: PreparedDataset, numItems: Int, maxLength: Int, options o: EvalOptions,
                                   table: UnsafePointer<Float>, dim: Int,
                                   users: ([Example]) throws -> UnsafePointer<Float>) throws -> EvalResult {
        guard dataset.numItems == numItems else {
            throw EngineError("\(dataset.directory.path): the dataset has \(dataset.numItems) items but the model scores \(numItems) (ellmrec.num_items); evaluate a model trained on this dataset")
        }
        guard o.split != .train else { throw EngineError("evaluation needs the valid or test split") }
        var examples = try dataset.examples(split: o.split, maxLength: maxLength)
        if let n = o.users {
            let keep = Set(userSubset(count: n, of: dataset.numUsers))
            examples = examples.filter { keep.contains($0.user) }
        }
        let doSampled = o.candidates != .full, doFull = o.candidates != .sampled
        let negatives = doSampled ? try dataset.negativeSource(o.split) : nil
        var rng = SeededRNG(seed: 0)
        let batches = lengthGroupedBatches(lengths: examples.map { $0.input.count }, batchSize: o.batchSize, shuffle: false, rng: &rng)
        let start = nowSeconds()
        // Under mpirun each rank ranks every size-th batch of the same batch list (so each
        // user's vector comes from the very batch a single process would form: the same
        // floats), the integer ranks are summed over ranks, and every rank accumulates the
        // metrics in the single process's order: the metrics are identical, not close.
        let world = Cluster.world
        if world.size > examples.count {
            throw EngineError("\(dataset.directory.path): \(examples.count) user\(examples.count == 1 ? "" : "s") to evaluate on the \(o.split.rawValue) split for \(world.size) ranks: each rank ranks a share of the users. Use mpirun -np \(max(examples.count, 1)) or fewer")
        }
        let mine = batches.indices.filter { $0 % world.size == world.rank }
        let progress = ProgressReporter(label: "eval \(o.split.rawValue)", total: mine.reduce(0) { $0 + batches[$1].count }, unit: "users",
                                        quiet: !o.progress || !world.isLeader)
        var rankS = [Int32](repeating: 0, count: doSampled ? examples.count : 0)
        var rankF = [Int32](repeating: 0, count: doFull ? examples.count : 0)
        let split = o.split
        let ws = Workspace()
        var done = 0
        for b in mine {
            let idx = batches[b]
            let ex = idx.map { examples[$0] }
            let u = try users(ex)
            let lists = negatives?.lists(users: ex.map(\.user))
            let queries = ex.enumerated().map { r, e in
                // History: everything the user interacted with before the target (not truncated).
                let seq = dataset.sequences[e.user - 1]
                let end = split == .test ? seq.count - 1 : seq.count - 2
                return StreamedRanking.Query(target: e.target, history: doFull ? Array(seq[0..<end]) : [], candidates: lists?[r])
            }
            let (rs, rf) = StreamedRanking.ranks(users: u, dim: dim, table: table, numItems: numItems, queries: queries,
                                                 full: doFull, workspace: ws)
            for (r, i) in idx.enumerated() {
                if let rs { rankS[i] = Int32(rs[r]) }
                if let rf { rankF[i] = Int32(rf[r]) }
            }
            done += ex.count
            progress.update(done)
        }
        try world.allreduceSum(&rankS)
        try world.allreduceSum(&rankF)
        progress.finish()
        var accS = MetricAccumulator(), accF = MetricAccumulator()
        var ranks: [(user: Int, sampled: Int?, full: Int?)] = []
        ranks.reserveCapacity(examples.count)
        for idx in batches {
            for i in idx {
                let rs = doSampled ? Int(rankS[i]) : nil, rf = doFull ? Int(rankF[i]) : nil
                if let rs { accS.add(rank: rs) }
                if let rf { accF.add(rank: rf) }
                ranks.append((examples[i].user, rs, rf))
            }
        }
        ranks.sort { $0.user < $1.user }
        return EvalResult(sampled: doSampled ? accS.metrics() : nil, full: doFull ? accF.metrics() : nil,
                          users: examples.count, seconds: nowSeconds() - start, ranks: ranks)
    }

    /// RANKS.tsv: `USER<TAB>RANK` (one protocol) or `USER<TAB>SAMPLED<TAB>FULL` (both).
    public static func ranksTSV(_ r: EvalResult) -> String {
        var s = ""
        for x in r.ranks {
            s += "\(x.user)"
            if let v = x.sampled { s += "\t\(v)" }
            if let v = x.full { s += "\t\(v)" }
            s += "\n"
        }
        return s
    }
}
