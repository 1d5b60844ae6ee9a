import Toolbench
import Foundation
import Common
import ModelFormat
import Engine
import RecData

/// How `ComparisonBuilder` measures inference cost. Every model runs the SAME input
/// sequences: the evaluation dataset's test inputs when it is available and every model
/// scores its items, else seeded random sequences of max_seq_len items.
public struct TimingOptions: Sendable {
    /// Users per batch for the throughput row.
    public var batch = 512
    /// Seconds of timed batches per model (at least one batch is always timed).
    public var throughputSeconds = 2.0
    /// Batch-1 calls behind the latency percentiles.
    public var latencyCalls = 200
    public var seed: UInt64 = 7
    public init(batch: Int = 512, throughputSeconds: Double = 2.0, latencyCalls: Int = 200) {
        self.batch = batch; self.throughputSeconds = throughputSeconds; self.latencyCalls = latencyCalls
    }
}

/// The sequences every model is timed on, and where they came from.
public struct TimingInputs: Sendable {
    public var sequences: [[Int32]]
    public var description: String

    /// Test inputs of `dataset` when it loads and every model scores exactly its items; else
    /// `count` seeded random sequences of the shortest max_seq_len, ids within every model's items.
    public static func make(dataset: URL?, dims: [ModelDims], count: Int, seed: UInt64) -> TimingInputs {
        let maxLen = dims.map(\.maxSeqLen).min() ?? 50
        if let dataset, let ds = try? PreparedDataset.load(directory: dataset), dims.allSatisfy({ $0.numItems == ds.numItems }),
           let ex = try? ds.examples(split: .test, maxLength: maxLen), !ex.isEmpty {
            return TimingInputs(sequences: ex.map(\.input),
                                description: "the \(ex.count) test-split input sequences of \(dataset.path) (at most \(maxLen) items each)")
        }
        let items = dims.map(\.numItems).min() ?? 1
        var rng = SeededRNG(seed: seed, stream: "compare-timing")
        let seqs = (0..<max(count, 1)).map { _ in (0..<maxLen).map { _ in Int32(1 + rng.nextInt(below: max(items, 1))) } }
        return TimingInputs(sequences: seqs, description: "\(seqs.count) seeded random sequences of \(maxLen) items (no dataset every model scores was available)")
    }

    /// `n` sequences starting at `offset`, cycling, each cut to the model's last max_seq_len items.
    func take(_ n: Int, from offset: Int = 0, maxLen: Int) -> [[Int32]] {
        (0..<n).map { i in
            let s = sequences[(offset + i) % sequences.count]
            return s.count > maxLen ? Array(s.suffix(maxLen)) : s
        }
    }
}

public enum ReportTiming {
    /// Loads a row's model as it runs: float or int8 checkpoint, plus the stage's adapter.
    public static func loadModel(_ row: ReportRow) throws -> ELLMRecModel {
        guard let ck = row.checkpoint else {
            throw ToolbenchError(row.directory.path, problem: "no checkpoint", fix: "compare stages that produce a checkpoint")
        }
        return try RunnableModel.load(checkpoint: ck, adapter: row.adapter)
    }

    /// (all parameters the model runs with, the item table's) — adapter included; an int8
    /// model counts its weights once (scales are not parameters).
    public static func parameterCounts(_ model: ELLMRecModel) -> (total: Int, itemTable: Int) {
        var total = model.params.layout.entries.reduce(0) { $0 + $1.count }
        if let l = model.lora { total += l.params.layout.entries.reduce(0) { $0 + $1.count } }
        return (total, model.params.layout.entry(ParamName.itemEmbedding)?.count ?? 0)
    }

    /// Throughput at `options.batch` (one warm-up batch, then batches until the time budget is
    /// spent) and batch-1 latency (a few warm-up calls, then `latencyCalls` timed calls on
    /// consecutive users). Full-ranking scores over every item are part of each call.
    public static func measure(_ model: ELLMRecModel, inputs: TimingInputs, options o: TimingOptions) throws -> InferenceTiming {
        let d = model.dims
        let big = try PackedBatch(sequences: inputs.take(o.batch, maxLen: d.maxSeqLen), targets: nil, dims: d)
        let ws = Workspace()
        _ = model.infer(big, workspace: ws)
        var batches = 0
        let t0 = nowSeconds()
        var elapsed = 0.0
        repeat {
            _ = model.infer(big, workspace: ws)
            batches += 1
            elapsed = nowSeconds() - t0
        } while elapsed < o.throughputSeconds
        let usersPerSecond = Double(batches * o.batch) / elapsed

        let calls = max(o.latencyCalls, 1)
        let singles = try inputs.take(calls, maxLen: d.maxSeqLen).map { try PackedBatch(sequences: [$0], targets: nil, dims: d) }
        let ws1 = Workspace()
        for b in singles.prefix(3) { _ = model.infer(b, workspace: ws1) }
        var ms: [Double] = []
        ms.reserveCapacity(calls)
        for b in singles {
            let s = nowSeconds()
            _ = model.infer(b, workspace: ws1)
            ms.append((nowSeconds() - s) * 1000)
        }
        ms.sort()
        return InferenceTiming(usersPerSecond: usersPerSecond, batch: o.batch, batches: batches,
                               latencyP50Ms: percentile(ms, 0.50), latencyP99Ms: percentile(ms, 0.99), latencyCalls: calls)
    }

    /// Nearest-rank percentile of sorted values.
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let k = Int((p * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(k, 0), sorted.count - 1)]
    }
}

/// Options of one comparison.
public struct CompareOptions: Sendable {
    /// The row percentages are relative to (nil: the first row).
    public var baseline: String?
    public var timing = TimingOptions()
    public var skipTiming = false
    /// Resolves relative paths the run recorded.
    public var cwd: URL
    public var log: @Sendable (String) -> Void = { _ in }
    public init(baseline: String? = nil, timing: TimingOptions = TimingOptions(), skipTiming: Bool = false,
                cwd: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)) {
        self.baseline = baseline; self.timing = timing; self.skipTiming = skipTiming; self.cwd = cwd
    }
}

public enum ComparisonBuilder {
    /// Reads every directory, loads each E-LLMRec model once (parameter counts, timing) and
    /// checks that the quality numbers can stand side by side.
    public static func build(_ paths: [URL], options o: CompareOptions) throws -> ComparisonReport {
        var rows = try ReportLoader.rows(arguments: paths, cwd: o.cwd)
        let teacher = o.baseline ?? rows[0].name
        guard rows.contains(where: { $0.name == teacher }) else {
            throw ToolbenchError("compare --baseline", problem: "\"\(teacher)\" is not one of the models (\(rows.map(\.name).joined(separator: ", ")))",
                                 fix: "name one of them\(nearest(teacher, in: rows.map(\.name)).map { " — did you mean \"\($0)\"?" } ?? "")")
        }
        // Timing inputs: the teacher's (else any row's) evaluation dataset.
        let ctxs = ([rows.first { $0.name == teacher }?.context] + rows.map(\.context)).compactMap { $0 }
        let datasetURL = ctxs.lazy.compactMap { c in ReportLoader.resolveExisting(c.dataset, cwd: o.cwd, run: rows.first { $0.context == c }?.directory) }.first
        var inputs: TimingInputs?
        var dimsSeen: [ModelDims] = []
        // First pass: dims only (config.json), to pick inputs every model can run.
        for r in rows where r.checkpoint != nil {
            if let c = try? ModelConfig.load(from: r.checkpoint!.appendingPathComponent(Checkpoint.configFile)) {
                dimsSeen.append(ModelDims(config: c, inputProjBias: false, outputProjBias: false))
            }
        }
        if !o.skipTiming && !dimsSeen.isEmpty {
            inputs = TimingInputs.make(dataset: datasetURL, dims: dimsSeen, count: max(o.timing.batch, o.timing.latencyCalls), seed: o.timing.seed)
        }
        for i in rows.indices where rows[i].checkpoint != nil {
            let model = try ReportTiming.loadModel(rows[i])
            let (total, items) = ReportTiming.parameterCounts(model)
            rows[i].parameters = total
            rows[i].nonEmbeddingParameters = total - items
            if let inputs {
                o.log("compare: timing \(rows[i].name)")
                rows[i].timing = try ReportTiming.measure(model, inputs: inputs, options: o.timing)
            }
        }
        let setup: String
        if let inputs {
            setup = "Timing measured by `slmrec compare` on this machine (\(BLASThreads.current) BLAS threads), every model on the same inputs: \(inputs.description). "
                + "Throughput: users/s at batch \(o.timing.batch) over ≥ \(formatSeconds(o.timing.throughputSeconds)) after one warm-up batch; "
                + "latency: ms per user at batch 1, p50 and p99 of \(o.timing.latencyCalls) calls. Each call computes full-ranking scores over every item."
        } else {
            setup = o.skipTiming ? "Timing skipped (--skip-timing)." : "No E-LLMRec model to time."
        }
        var report = ComparisonReport(title: paths.map(\.lastPathComponent).joined(separator: ", "), rows: rows, teacher: teacher,
                                      timingSetup: setup, created: ISO8601DateFormatter().string(from: Date()))
        report.warnings = comparabilityWarnings(report)
        report.judgements = paths.map { ($0.lastPathComponent, RecipeRunner.judgements(in: $0)) }.filter { !$0.1.isEmpty }
        return report
    }

    /// Explicit warnings for every row whose numbers cannot stand next to the teacher's.
    public static func comparabilityWarnings(_ r: ComparisonReport) -> [String] {
        var w: [String] = []
        guard let t = r.teacherRow else { return w }
        if t.context == nil {
            w.append("The teacher `\(t.name)` has no evaluation: no percentages of the teacher can be given"
                     + (r.referenceRow.map { "; comparability is checked against `\($0.name)`, the first evaluated model." } ?? "."))
        }
        let ref = r.referenceRow
        for row in r.rows where row.name != ref?.name {
            guard let c = row.context else {
                if !row.quality.isEmpty {
                    w.append("`\(row.name)`: its evaluation context (dataset, split, users) is unknown — its quality numbers are marked † and NOT comparable.")
                }
                continue
            }
            guard let ref, let tc = ref.context, !c.comparable(to: tc) else { continue }
            var diffs: [String] = []
            if c.datasetID != tc.datasetID { diffs.append("dataset \(c.dataset) (\(c.datasetID)) vs \(tc.dataset) (\(tc.datasetID))") }
            if c.split != tc.split { diffs.append("split \(c.split) vs \(tc.split)") }
            if c.users != tc.users { diffs.append("\(c.users) users vs \(tc.users)") }
            w.append("`\(row.name)` was evaluated differently from `\(ref.name)` (\(diffs.joined(separator: "; "))): its quality numbers are marked † and NOT comparable; no percentages are given for it.")
        }
        for row in r.rows where row.quality.isEmpty {
            w.append("`\(row.name)` has no evaluation: its quality columns show \"-\" (\(row.notes.first ?? "no metrics")).")
        }
        return w
    }

    static func formatSeconds(_ s: Double) -> String { s >= 1 ? String(format: "%.0f s", s) : String(format: "%.2f s", s) }
}
