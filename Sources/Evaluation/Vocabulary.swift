import RecData

// The words every result is written in, defined once: which candidate set ranks the held-out
// item, and the names of the metrics (`NDCG@10`, and `full.NDCG@10` once the protocol is part
// of the name). Recipes, reports, validation and `slmrec eval` all use these.

/// Which candidate set ranks the held-out item (see docs/evaluation.md).
public enum Candidates: String, CaseIterable, Sendable, Codable {
    /// Against the dataset's fixed 999 sampled negatives (the SLMRec / E4SRec protocol).
    case sampled
    /// Against every item except padding and the user's history (Krichene & Rendle 2020).
    case full
    case both
}

/// Metric names.
public enum MetricName {
    /// "full.NDCG@10": a metric with the protocol that measured it.
    public static func qualified(_ protocol: Candidates, _ key: String) -> String { "\(`protocol`.rawValue).\(key)" }

    /// The metrics tables print (MRR@10 stays in the files).
    public static let reported = ["HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"]
    /// The protocols in report order: full ranking first (the one that is not inflated by
    /// sampling, Krichene & Rendle 2020), then the paper's sampled one.
    public static let reportOrder: [Candidates] = [.full, .sampled]
    /// Every reported metric of both protocols, qualified, in report order ("full.HR@1", …).
    public static var reportedQualified: [String] { reportOrder.flatMap { p in reported.map { qualified(p, $0) } } }

    /// Both protocols' metrics under qualified names.
    public static func qualifiedMetrics(sampled: [String: Double]?, full: [String: Double]?) -> [String: Double] {
        var out: [String: Double] = [:]
        for (k, v) in sampled ?? [:] { out[qualified(.sampled, k)] = v }
        for (k, v) in full ?? [:] { out[qualified(.full, k)] = v }
        return out
    }
}
