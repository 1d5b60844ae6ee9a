// Evaluation: ranking and ranking metrics (HR@K, NDCG@K, MRR) and the names they are
// reported under; pure math with no model (ranking a model's users is ModelEvaluation's).
// The definitions are written down in docs/evaluation.md.
//
//   Ranking.swift     rank of the target among sampled negatives or among all items
//   Metrics.swift     MetricAccumulator: sums of per-user metrics, mergeable across threads
//   Vocabulary.swift  Candidates (the protocols) and metric names ("full.NDCG@10")
