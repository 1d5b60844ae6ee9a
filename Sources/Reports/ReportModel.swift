import Common
import Toolbench
import Evaluation
import Foundation
import ModelFormat

// The comparison report (`slmrec compare`, and the end of `slmrec run`): one row per model a
// recipe run derived, with its size, its cost and its quality, each quality number also as a
// percentage of the teacher's. Every number comes from the run's files (metrics.json,
// config.json, the checkpoint's bytes) or from the timing the report makes itself
// (ReportTiming.swift); nothing is typed in.
//
//   ReportModel.swift    the rows, the evaluation context (what makes two rows comparable)
//   ReportLoader.swift   run / stage / checkpoint / SASRec directories → rows
//   ReportTiming.swift   users/s at batch 512 and ms per user at batch 1, same inputs for all
//   ReportWriters.swift  report.md, report.csv, report.json
//   ReportChart.swift    report.svg: quality against cost, the Pareto front
//   ReportDepthChart.swift  report-depth.svg: quality against decoder layers, per pass

/// Where a model's quality numbers were measured. Two rows are comparable only when the
/// dataset (by content hash when known), the split and the number of users agree; the
/// candidate protocol is per column (a missing protocol shows "-").
public struct EvalContext: Sendable, Equatable {
    /// The dataset as the run named it (a path).
    public var dataset: String
    /// Its identity: the content hash recorded in the run's inputs.json, else one computed
    /// now, else the resolved path.
    public var datasetID: String
    public var split: String
    /// full | sampled | both.
    public var candidates: String
    /// Users evaluated.
    public var users: Int

    public init(dataset: String, datasetID: String, split: String, candidates: String, users: Int) {
        self.dataset = dataset; self.datasetID = datasetID; self.split = split; self.candidates = candidates; self.users = users
    }

    public func comparable(to o: EvalContext) -> Bool {
        datasetID == o.datasetID && split == o.split && users == o.users
    }

    public var summary: String { "\(split) split of \(dataset) (\(datasetID)), \(users) users, candidates \(candidates)" }
}

/// Inference cost measured by the report on the same input sequences for every model.
public struct InferenceTiming: Sendable, Equatable {
    /// Users per second at batch `batch` (full ranking scores for every item included).
    public var usersPerSecond: Double
    public var batch: Int
    /// Timed batches behind `usersPerSecond`.
    public var batches: Int
    /// Per-call latency at batch 1, milliseconds.
    public var latencyP50Ms: Double
    public var latencyP99Ms: Double
    public var latencyCalls: Int

    public init(usersPerSecond: Double, batch: Int, batches: Int, latencyP50Ms: Double, latencyP99Ms: Double, latencyCalls: Int) {
        self.usersPerSecond = usersPerSecond; self.batch = batch; self.batches = batches
        self.latencyP50Ms = latencyP50Ms; self.latencyP99Ms = latencyP99Ms; self.latencyCalls = latencyCalls
    }

    /// Milliseconds per user at batch `batch` (the chart's cost axis).
    public var msPerUser: Double { 1000 / max(usersPerSecond, 1e-12) }
}

/// One model of the comparison.
public struct ReportRow: Sendable {
    public enum Kind: String, Sendable {
        /// A stage of a recipe run (`<run>/<stage>/`).
        case stage
        /// A recipe input or a bare checkpoint directory: no metrics of its own.
        case checkpoint
        /// A SASRec baseline directory (`slmrec sasrec --output DIR`).
        case sasrec
    }

    public var name: String
    public var kind: Kind
    /// The pass that produced it ("finetune", …), "input", "checkpoint" or "sasrec".
    public var pass: String
    public var directory: URL
    /// E-LLMRec models: the checkpoint directory, and the stage's adapter when it has one.
    public var checkpoint: URL?
    public var adapter: URL?
    public var quantized: Bool = false

    public var layers: Int?
    /// Every parameter of the model as it runs (adapter included).
    public var parameters: Int?
    /// `parameters` minus the item table (ellmrec.item_embedding.weight).
    public var nonEmbeddingParameters: Int?
    /// Trained during its stage (metrics.json `trainable_parameters`); nil: the stage did not train.
    public var trainableParameters: Int?
    /// Bytes of the files that make the model (checkpoint/ and adapter/).
    public var diskBytes: Int?
    /// Wall time of the stage's training, or of the whole stage when it does not train.
    public var trainSeconds: Double?
    /// Which metrics.json field `trainSeconds` came from.
    public var trainSecondsField: String?

    /// "full.NDCG@10" → value, as the run's evaluation recorded it.
    public var quality: [String: Double] = [:]
    public var context: EvalContext?
    public var timing: InferenceTiming?
    /// Why something shows "-" (not evaluated, not timed, …).
    public var notes: [String] = []
    /// The stage's quality gate (metrics.json `gate`), judged on the validation split.
    public var gate: GateOutcome?

    public init(name: String, kind: Kind, pass: String, directory: URL) {
        self.name = name; self.kind = kind; self.pass = pass; self.directory = directory
    }
}

/// The whole comparison: rows in the order asked for, the teacher, and what the reader must know.
public struct ComparisonReport: Sendable {
    /// The chart's quality axis.
    public static let chartKey = MetricName.qualified(.full, "NDCG@10")

    public var title: String
    public var rows: [ReportRow]
    /// The row every percentage is relative to (`--baseline`, else the first row).
    public var teacher: String
    /// Shown at the top of report.md: not comparable rows, missing evaluations, …
    public var warnings: [String] = []
    /// How the timing was done (inputs, batch sizes, threads), or why it was skipped.
    public var timingSetup: String
    /// ISO 8601 time of the report.
    public var created: String
    /// Gates, stages not run and selections of the runs compared (gates.json, selections.json).
    public var judgements: [(run: String, Judgements)] = []

    public init(title: String, rows: [ReportRow], teacher: String, warnings: [String] = [], timingSetup: String, created: String) {
        self.title = title; self.rows = rows; self.teacher = teacher; self.warnings = warnings
        self.timingSetup = timingSetup; self.created = created
    }

    public var teacherRow: ReportRow? { rows.first { $0.name == teacher } }

    /// The row whose evaluation the others are checked against: the teacher, or the first
    /// evaluated row when the teacher has no evaluation (a recipe input, say).
    public var referenceRow: ReportRow? {
        teacherRow?.context != nil ? teacherRow : rows.first { $0.context != nil }
    }

    /// Whether a row's quality numbers can stand next to the reference row's (the teacher's).
    public func comparable(_ row: ReportRow) -> Bool {
        guard let t = referenceRow?.context, let c = row.context else { return false }
        return c.comparable(to: t)
    }

    /// value / teacher's value × 100, when both exist, the teacher's is not 0 and the row is comparable.
    public func percentOfTeacher(_ row: ReportRow, _ key: String) -> Double? {
        guard comparable(row), let v = row.quality[key], let t = teacherRow?.quality[key], t != 0 else { return nil }
        return v / t * 100
    }

    /// The names of the rows on the Pareto front of (chart quality ↑, ms per user ↓): no other
    /// comparable row is at least as good on both and strictly better on one.
    public var paretoFront: [String] {
        let pts = chartPoints
        return pts.filter { p in
            !pts.contains { q in
                q.name != p.name && q.quality >= p.quality && q.cost <= p.cost && (q.quality > p.quality || q.cost < p.cost)
            }
        }.sorted { $0.cost < $1.cost }.map(\.name)
    }

    /// Rows that can be placed on the chart: comparable, with the chart metric and a timing.
    public var chartPoints: [(name: String, quality: Double, cost: Double)] {
        rows.compactMap { r in
            guard comparable(r), let q = r.quality[ComparisonReport.chartKey], let t = r.timing else { return nil }
            return (r.name, q, t.msPerUser)
        }
    }
}
