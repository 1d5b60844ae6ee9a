// Evaluation: ranking and ranking metrics (HR@K, NDCG@K, MRR), pure math with no model.
// The definitions are written down in docs/evaluation.md.
//
//   Ranking.swift  rank of the target among sampled negatives or among all items
//   Metrics.swift  MetricAccumulator: sums of per-user metrics, mergeable across threads
