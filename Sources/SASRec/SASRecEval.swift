import Foundation
import Common
import Engine
import Evaluation
import RecData

/// Ranks each user's held-out item exactly as `ModelEvaluator.evaluate` does for E-LLMRec
/// checkpoints, so SASRec rows are comparable: input = the sequence before the target,
/// truncated to the `maxLen` most recent items; sampled = against the dataset's fixed
/// negatives; full = against all items 1…N except the user's whole history before the
/// target (not truncated); pessimistic ties (`Ranking`).
/// Metrics of one split (keys as `MetricAccumulator.keys`), per protocol.
public struct SASRecEvalResult: Sendable {
    public var sampled: [String: Double]?
    public var full: [String: Double]?
    public var users: Int
    public var seconds: Double
    /// (user, sampled rank, full rank), 1-based; nil where that protocol was not run.
    public var ranks: [(user: Int, sampled: Int?, full: Int?)]

    public func json(split: Split) -> [String: Any] {
        var o: [String: Any] = ["split": split.rawValue, "users": users, "seconds": seconds, "tie_rule": "pessimistic"]
        if let sampled { o["sampled"] = sampled }
        if let full { o["full"] = full }
        return o
    }
}

public enum SASRecEvaluator {
    public static func evaluate(model: SASRecModel, dataset: PreparedDataset, split: Split, candidates: Candidates,
                                users: Int? = nil, batchSize: Int = 256, progress: Bool = false,
                                workspace: Workspace = Workspace()) throws -> SASRecEvalResult {
        guard dataset.numItems == model.config.numItems else {
            throw SASRecError("\(dataset.directory.path): \(dataset.numItems) items but the model scores \(model.config.numItems)")
        }
        guard split != .train else { throw SASRecError("evaluation needs the valid or test split") }
        var examples = try dataset.examples(split: split, maxLength: model.config.maxLen)
        if let n = users {
            let keep = Set(ModelEvaluator.userSubset(count: n, of: dataset.numUsers))
            examples = examples.filter { keep.contains($0.user) }
        }
        let doSampled = candidates != .full, doFull = candidates != .sampled
        let negatives = doSampled ? try dataset.negatives(split) : []
        var rng = SeededRNG(seed: 0)
        let batches = lengthGroupedBatches(lengths: examples.map { $0.input.count }, batchSize: batchSize, shuffle: false, rng: &rng)
        let start = nowSeconds()
        let bar = ProgressReporter(label: "eval \(split.rawValue)", total: examples.count, unit: "users", quiet: !progress)
        var accS = MetricAccumulator(), accF = MetricAccumulator()
        var ranks: [(user: Int, sampled: Int?, full: Int?)] = []
        ranks.reserveCapacity(examples.count)
        let cols = model.config.numItems + 1
        var done = 0
        for idx in batches {
            let ex = idx.map { examples[$0] }
            let batch = SASRecBatch(inputs: ex.map { $0.input[...] }, targets: nil, maxLen: model.config.maxLen)
            let scores = model.scoreLast(batch, workspace: workspace)
            // Ranking one user is an O(N) scan: spread users over the cores, then add the
            // ranks in user order so the metric sums are deterministic.
            var rs = [Int](repeating: 0, count: ex.count), rf = rs
            rs.withUnsafeMutableBufferPointer { rsp in
                rf.withUnsafeMutableBufferPointer { rfp in
                    nonisolated(unsafe) let rsp = rsp, rfp = rfp
                    parallelFor(ex.count) { r in
                        let e = ex[r]
                        let s = UnsafeBufferPointer(start: scores + r * cols, count: cols)
                        if doSampled {
                            rsp[r] = negatives[e.user - 1].withUnsafeBufferPointer { Ranking.rank(scores: s, target: Int(e.target), candidates: $0) }
                        }
                        if doFull {
                            let seq = dataset.sequences[e.user - 1]
                            let end = split == .test ? seq.count - 1 : seq.count - 2
                            rfp[r] = Ranking.rankFull(scores: s, target: Int(e.target), exclude: seq[0..<end])
                        }
                    }
                }
            }
            for (r, e) in ex.enumerated() {
                if doSampled { accS.add(rank: rs[r]) }
                if doFull { accF.add(rank: rf[r]) }
                ranks.append((e.user, doSampled ? rs[r] : nil, doFull ? rf[r] : nil))
            }
            done += ex.count
            bar.update(done)
        }
        if progress { bar.finish() }
        ranks.sort { $0.user < $1.user }
        return SASRecEvalResult(sampled: doSampled ? accS.metrics() : nil, full: doFull ? accF.metrics() : nil,
                          users: examples.count, seconds: nowSeconds() - start, ranks: ranks)
    }
}
