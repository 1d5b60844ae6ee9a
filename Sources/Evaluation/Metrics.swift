import Foundation

/// Accumulates per-user ranks into averaged metrics. Keep one per worker and `merge`.
///
/// With r the 1-based rank of the target:
///   HR@K   = 1 if r ≤ K else 0
///   NDCG@K = 1 / log2(r + 1) if r ≤ K else 0   (one relevant item, so IDCG = 1)
///   MRR    = 1 / r                             (untruncated, as SLMRec reports it)
///   MRR@10 = 1 / r if r ≤ 10 else 0
/// each averaged over users.
public struct MetricAccumulator: Sendable, Equatable {
    public static let hitCutoffs = [1, 5, 10, 20]
    public static let ndcgCutoffs = [5, 10, 20]
    /// Every key `metrics()` returns, in report order.
    public static let keys = hitCutoffs.map { "HR@\($0)" } + ndcgCutoffs.map { "NDCG@\($0)" } + ["MRR", "MRR@10"]

    public private(set) var count: Int = 0
    private var hits = [Double](repeating: 0, count: 4)
    private var ndcg = [Double](repeating: 0, count: 3)
    private var mrr = 0.0
    private var mrr10 = 0.0

    public init() {}

    public mutating func add(rank: Int) {
        let r = max(1, rank)
        count += 1
        for (k, cut) in Self.hitCutoffs.enumerated() where r <= cut { hits[k] += 1 }
        let gain = 1 / log2(Double(r) + 1)
        for (k, cut) in Self.ndcgCutoffs.enumerated() where r <= cut { ndcg[k] += gain }
        mrr += 1 / Double(r)
        if r <= 10 { mrr10 += 1 / Double(r) }
    }

    public mutating func merge(_ other: MetricAccumulator) {
        count += other.count
        for k in hits.indices { hits[k] += other.hits[k] }
        for k in ndcg.indices { ndcg[k] += other.ndcg[k] }
        mrr += other.mrr
        mrr10 += other.mrr10
    }

    /// Means over the added ranks; all zeros when nothing was added.
    public func metrics() -> [String: Double] {
        let d = Double(max(count, 1))
        var out: [String: Double] = [:]
        for (k, cut) in Self.hitCutoffs.enumerated() { out["HR@\(cut)"] = hits[k] / d }
        for (k, cut) in Self.ndcgCutoffs.enumerated() { out["NDCG@\(cut)"] = ndcg[k] / d }
        out["MRR"] = mrr / d
        out["MRR@10"] = mrr10 / d
        return out
    }
}
