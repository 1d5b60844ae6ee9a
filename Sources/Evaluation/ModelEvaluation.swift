import Foundation
import Common
import Engine
import RecData

/// Which candidate set ranks the held-out item (see docs/evaluation.md).
public enum Candidates: String, CaseIterable, Sendable, Codable {
    /// Against the dataset's fixed 999 sampled negatives (the SLMRec / E4SRec protocol).
    case sampled
    /// Against every item except padding and the user's history (Krichene & Rendle 2020).
    case full
    case both
}

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

    /// The METRICS.json object.
    public func json(split: Split, candidates: Candidates, extra: [String: Any] = [:]) -> [String: Any] {
        var o: [String: Any] = ["split": split.rawValue, "candidates": candidates.rawValue, "users": users,
                                "seconds": seconds, "users_per_second": usersPerSecond, "tie_rule": "pessimistic"]
        if let sampled { o["sampled"] = sampled }
        if let full { o["full"] = full }
        for (k, v) in extra { o[k] = v }
        return o
    }
}

public enum ModelEvaluator {
    /// The users evaluated with `users: n`: n evenly spaced users (deterministic).
    public static func userSubset(count: Int, of total: Int) -> [Int] {
        guard count < total else { return Array(1...max(total, 1)).filter { $0 <= total } }
        return (0..<count).map { 1 + Int(Double($0) * Double(total) / Double(count)) }
    }

    /// Ranks each user's held-out item for `split`, in batches grouped by input length so
    /// short sequences do not pay for long ones.
    public static func evaluate(model: ELLMRecModel, dataset: PreparedDataset, options o: EvalOptions) throws -> EvalResult {
        let d = model.dims
        guard dataset.numItems == d.numItems else {
            throw EngineError("\(dataset.directory.path): the dataset has \(dataset.numItems) items but the checkpoint scores \(d.numItems) (ellmrec.num_items); evaluate a checkpoint trained on this dataset")
        }
        guard o.split != .train else { throw EngineError("evaluation needs the valid or test split") }
        var examples = try dataset.examples(split: o.split, maxLength: d.maxSeqLen)
        if let n = o.users {
            let keep = Set(userSubset(count: n, of: dataset.numUsers))
            examples = examples.filter { keep.contains($0.user) }
        }
        let doSampled = o.candidates != .full, doFull = o.candidates != .sampled
        let negatives = doSampled ? try dataset.negatives(o.split) : []
        var rng = SeededRNG(seed: 0)
        let batches = lengthGroupedBatches(lengths: examples.map { $0.input.count }, batchSize: o.batchSize, shuffle: false, rng: &rng)
        let start = nowSeconds()
        let progress = ProgressReporter(label: "eval \(o.split.rawValue)", total: examples.count, unit: "users", quiet: !o.progress)
        var accS = MetricAccumulator(), accF = MetricAccumulator()
        var ranks: [(user: Int, sampled: Int?, full: Int?)] = []
        ranks.reserveCapacity(examples.count)
        let ws = Workspace()
        let cols = d.numItems + 1
        var done = 0
        for idx in batches {
            let ex = idx.map { examples[$0] }
            let batch = try PackedBatch(sequences: ex.map(\.input), targets: nil, dims: d)
            let a = model.infer(batch, workspace: ws)
            for (r, e) in ex.enumerated() {
                let scores = UnsafeBufferPointer(start: a.scores.ptr + r * cols, count: cols)
                var rs: Int?, rf: Int?
                if doSampled {
                    let neg = negatives[e.user - 1]
                    rs = neg.withUnsafeBufferPointer { Ranking.rank(scores: scores, target: Int(e.target), candidates: $0) }
                    accS.add(rank: rs!)
                }
                if doFull {
                    // History: everything the user interacted with before the target (not truncated).
                    let seq = dataset.sequences[e.user - 1]
                    let end = o.split == .test ? seq.count - 1 : seq.count - 2
                    rf = Ranking.rankFull(scores: scores, target: Int(e.target), exclude: seq[0..<end])
                    accF.add(rank: rf!)
                }
                ranks.append((e.user, rs, rf))
            }
            done += ex.count
            progress.update(done)
        }
        progress.finish()
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
