import Toolbench
import Evaluation
import Foundation
import Common
import ModelFormat

// report.md (two quality tables and a cost table, for pasting), report.csv and report.json
// (every number at full precision, for plotting and checking). "-" means "does not apply or
// was not measured"; "†" marks quality numbers that are not comparable with the teacher's.

extension ComparisonReport {
    public static let files = RecipeRunner.reportFiles
    /// A report directory, for the output guard (a run's `report/`).
    public static let outputKind = RecipeRunner.reportKind

    /// The files `write(to:)` writes for this report: the four, and report-depth.svg when
    /// the models differ in depth (`hasDepthChart`).
    public var outputFiles: [String] {
        ["report.md", "report.csv", "report.json", "report.svg"] + (hasDepthChart ? [Self.depthChartFile] : [])
    }

    /// Writes the report files (`outputFiles`) into `directory` (created when missing); a
    /// report-depth.svg left there by an earlier report is removed when this one has none.
    public func write(to directory: URL) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        try AtomicFile.write(Data(markdown().utf8), to: directory.appendingPathComponent("report.md"))
        try AtomicFile.write(Data(csv().utf8), to: directory.appendingPathComponent("report.csv"))
        try JSONText.write(json(), to: directory.appendingPathComponent("report.json"))
        try AtomicFile.write(Data(svg().utf8), to: directory.appendingPathComponent("report.svg"))
        let depth = directory.appendingPathComponent(Self.depthChartFile)
        if hasDepthChart {
            try AtomicFile.write(Data(depthSVG().utf8), to: depth)
        } else if fm.fileExists(atPath: depth.path) {
            try fm.removeItem(at: depth)
        }
    }

    // MARK: - Markdown

    public func markdown() -> String {
        var s = "# Model comparison: \(title)\n\n"
        for w in warnings { s += "> **Warning:** \(w)\n>\n" }
        if !warnings.isEmpty { s.removeLast(2); s += "\n\n" }
        let t = teacherRow
        for proto in MetricName.reportOrder {
            s += "## Quality: \(proto == .full ? "full ranking (every item except the user's history)" : "sampled (the dataset's 999 fixed negatives per user)")\n\n"
            s += "| Model | " + MetricName.reported.joined(separator: " | ") + " |\n"
            s += "|---|" + String(repeating: "---:|", count: MetricName.reported.count) + "\n"
            for r in rows {
                let cells = MetricName.reported.map { m -> String in
                    let key = MetricName.qualified(proto, m)
                    guard let v = r.quality[key] else { return "-" }
                    if !comparable(r) { return fmtMetric(v) + " †" }
                    return fmtMetric(v) + (percentOfTeacher(r, key).map { " (" + fmtPercent($0) + ")" } ?? "")
                }
                s += "| \(md(r.name)) | " + cells.joined(separator: " | ") + " |\n"
            }
            s += "\n"
        }
        if let c = referenceRow?.context {
            s += "Quality from the run's evaluation: \(c.split) split of `\(c.dataset)` (\(c.datasetID)), \(c.users) users, "
                + "one held-out item per user, pessimistic ties. "
        }
        s += t?.context != nil ? "In parentheses: % of the teacher `\(md(teacher))`.\n" : "The teacher `\(md(teacher))` has no evaluation: no percentages.\n"
        if rows.contains(where: { !$0.quality.isEmpty && !comparable($0) }) {
            s += "† not comparable with `\(md(referenceRow?.name ?? teacher))` (evaluated on another dataset, split or number of users; see the warnings).\n"
        }
        s += "\n## Cost\n\n"
        // A gate column when any model has a quality gate (judged on the validation split).
        let gated = rows.contains { $0.gate != nil }
        s += "| Model | Pass | Layers | Params | Non-emb. params | Trainable | Disk | Train time | Users/s (batch \(rows.compactMap { $0.timing?.batch }.first ?? 512)) | ms/user p50 (batch 1) | ms/user p99 (batch 1) |"
            + (gated ? " Gate (valid) |" : "") + "\n"
        s += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + (gated ? "---|" : "") + "\n"
        var stageTime = false
        for r in rows {
            var time = "-"
            if let ts = r.trainSeconds {
                time = String(format: "%.1f s", ts)
                if r.trainSecondsField == "seconds" { time += "\\*"; stageTime = true }
            }
            let cells: [String] = [
                md(r.name), r.pass + (r.quantized ? " (int8)" : ""), r.layers.map(String.init) ?? "-",
                r.parameters.map(fmtCount) ?? "-", r.nonEmbeddingParameters.map(fmtCount) ?? "-",
                r.trainableParameters.map(fmtCount) ?? "-", r.diskBytes.map(fmtBytes) ?? "-", time,
                r.timing.map { String(format: "%.0f", $0.usersPerSecond) } ?? "-",
                r.timing.map { String(format: "%.2f", $0.latencyP50Ms) } ?? "-",
                r.timing.map { String(format: "%.2f", $0.latencyP99Ms) } ?? "-",
            ]
            var all = cells
            if gated { all.append(r.gate.map { (g: GateOutcome) -> String in g.passed ? "passed" : "**failed** ✗" } ?? "-") }
            s += "| " + all.joined(separator: " | ") + " |\n"
        }
        s += "\n"
        s += "Params: every parameter the model runs with (adapter included); non-emb.: without the item table; "
            + "trainable: trained during the model's stage (\"-\": the stage does not train). Disk: the checkpoint (and adapter) files. "
            + "Train time: the stage's training wall time"
            + (stageTime ? "; \\* the whole stage's wall time (the pass does not train)" : "") + ".\n\n"
        s += timingSetup + "\n"
        let notes = rows.flatMap { r in r.notes.map { "- `\(md(r.name))`: \($0)" } }
        if !notes.isEmpty { s += "\nNotes:\n" + notes.joined(separator: "\n") + "\n" }
        let front = paretoFront
        if !front.isEmpty {
            s += "\nPareto front (\(ComparisonReport.chartKey) ↑ against ms per user at batch \(rows.compactMap { $0.timing?.batch }.first ?? 512) ↓; report.svg): "
                + front.map { "`\(md($0))`" }.joined(separator: ", ") + ".\n"
        }
        s += judgementsMarkdown()
        if hasDepthChart {
            s += "\nDepth chart (\(ComparisonReport.chartKey) against decoder layers, one line per pass, SASRec as dashed lines): report-depth.svg.\n"
        }
        s += "\nGenerated by `slmrec compare` at \(created).\n"
        return s
    }

    /// "Gates and selection": each gate's outcome, the stages a gate kept from running, and
    /// each group's pick with every candidate (all on the validation split).
    func judgementsMarkdown() -> String {
        guard !judgements.isEmpty else { return "" }
        var s = "\n## Gates and selection (validation split)\n\n"
        for (run, j) in judgements {
            if judgements.count > 1 { s += "Run `\(md(run))`:\n\n" }
            if !j.gates.isEmpty {
                s += "| Stage | Metric | Value | Threshold | Outcome |\n|---|---|---:|---:|---|\n"
                for (name, g) in j.gates.sorted(by: { $0.key < $1.key }) {
                    let th = fmtMetric(g.threshold) + (g.of.map { " (\(fmtMetric(g.threshold / max(g.referenceValue ?? 1, 1e-300))) × `\(md($0))`)" } ?? "")
                    s += "| \(md(name)) | \(g.metric) | \(fmtMetric(g.value)) | \(th) | \(g.passed ? "passed" : "**failed** ✗") |\n"
                }
                s += "\n"
            }
            for (name, why) in j.skipped.sorted(by: { $0.key < $1.key }) { s += "- `\(md(name))` was not run: \(why).\n" }
            if !j.skipped.isEmpty { s += "\n" }
            for sel in j.selections {
                s += "**\(md(sel.group))** (\(sel.rule)): " + (sel.selected.map { "selected `\(md($0))` — \(sel.reason)." } ?? "nothing selected — \(sel.reason).") + "\n\n"
                s += "| Variant | Criterion | Gate |\n|---|---:|---|\n"
                for c in sel.candidates {
                    let gate = c.gate.map { "\(fmtMetric($0.value)) \($0.passed ? "≥" : "<") \(fmtMetric($0.threshold))" } ?? "-"
                    s += "| \(md(c.variant))\(c.variant == sel.selected ? " ←" : "") | \(c.criterion.map { $0 >= 1000 && $0 == $0.rounded() ? String(Int($0)) : fmtMetric($0) } ?? "-") | \(gate) |\n"
                }
                s += "\n"
            }
        }
        return s
    }

    // MARK: - CSV

    public static var csvColumns: [String] {
        var c = ["model", "kind", "pass", "quantized", "layers", "parameters", "non_embedding_parameters", "trainable_parameters",
                 "disk_bytes", "train_seconds", "train_seconds_field", "users_per_second", "throughput_batch",
                 "latency_p50_ms", "latency_p99_ms", "latency_calls", "comparable", "eval_dataset", "eval_dataset_id", "eval_split", "eval_users"]
        for k in MetricName.reportedQualified { c += [k, "\(k) % teacher"] }
        return c
    }

    public func csv() -> String {
        func num(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
        func int(_ v: Int?) -> String { v.map(String.init) ?? "" }
        var lines = [Self.csvColumns.map(csvField).joined(separator: ",")]
        for r in rows {
            var f: [String] = [r.name, r.kind.rawValue, r.pass, r.quantized ? "true" : "false", int(r.layers), int(r.parameters),
                               int(r.nonEmbeddingParameters), int(r.trainableParameters), int(r.diskBytes), num(r.trainSeconds),
                               r.trainSecondsField ?? "", num(r.timing?.usersPerSecond), int(r.timing?.batch),
                               num(r.timing?.latencyP50Ms), num(r.timing?.latencyP99Ms), int(r.timing?.latencyCalls),
                               r.context == nil ? "" : (comparable(r) ? "true" : "false"),
                               r.context?.dataset ?? "", r.context?.datasetID ?? "", r.context?.split ?? "", int(r.context?.users)]
            for k in MetricName.reportedQualified { f += [num(r.quality[k]), num(percentOfTeacher(r, k))] }
            lines.append(f.map(csvField).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: - JSON

    public func json() -> JSONValue {
        func num(_ v: Double?) -> JSONValue { v.map { $0.isFinite ? .double($0) : .null } ?? .null }
        func int(_ v: Int?) -> JSONValue { v.map { .int($0) } ?? .null }
        let models: [JSONValue] = rows.map { r in
            var o: [String: JSONValue] = [
                "name": .string(r.name), "kind": .string(r.kind.rawValue), "pass": .string(r.pass), "quantized": .bool(r.quantized),
                "directory": .string(r.directory.path), "layers": int(r.layers), "parameters": int(r.parameters),
                "non_embedding_parameters": int(r.nonEmbeddingParameters), "trainable_parameters": int(r.trainableParameters),
                "disk_bytes": int(r.diskBytes), "train_seconds": num(r.trainSeconds),
                "train_seconds_field": r.trainSecondsField.map { .string($0) } ?? .null,
                "quality": .object(r.quality.mapValues { .double($0) }),
                "percent_of_teacher": .object(Dictionary(uniqueKeysWithValues: MetricName.reportedQualified.compactMap { k in percentOfTeacher(r, k).map { (k, JSONValue.double($0)) } })),
                "comparable": .bool(comparable(r)),
                "notes": .array(r.notes.map { .string($0) }),
            ]
            if let c = r.context {
                o["evaluation"] = .object(["dataset": .string(c.dataset), "dataset_id": .string(c.datasetID), "split": .string(c.split),
                                           "candidates": .string(c.candidates), "users": .int(c.users)])
            }
            if let t = r.timing {
                o["timing"] = .object(["users_per_second": num(t.usersPerSecond), "batch": .int(t.batch), "batches": .int(t.batches),
                                       "ms_per_user": num(t.msPerUser), "latency_p50_ms": num(t.latencyP50Ms),
                                       "latency_p99_ms": num(t.latencyP99Ms), "latency_calls": .int(t.latencyCalls)])
            }
            return .object(o)
        }
        return .object(["title": .string(title), "teacher": .string(teacher), "created": .string(created),
                        "timing_setup": .string(timingSetup), "warnings": .array(warnings.map { .string($0) }),
                        "pareto_front": .array(paretoFront.map { .string($0) }), "chart_metric": .string(ComparisonReport.chartKey),
                        "models": .array(models)])
    }
}

// MARK: - Formatting

func fmtMetric(_ v: Double) -> String { String(format: "%.4f", v) }
func fmtPercent(_ v: Double) -> String { String(format: "%.1f%%", v) }

/// 962304 → "962.3K", 1234567 → "1.23M".
func fmtCount(_ n: Int) -> String {
    let x = Double(n)
    if x >= 1e9 { return String(format: "%.2fB", x / 1e9) }
    if x >= 1e6 { return String(format: "%.2fM", x / 1e6) }
    if x >= 1e3 { return String(format: "%.1fK", x / 1e3) }
    return "\(n)"
}

func fmtBytes(_ n: Int) -> String {
    let x = Double(n)
    if n >= 1 << 30 { return String(format: "%.2f GiB", x / Double(1 << 30)) }
    if n >= 1 << 20 { return String(format: "%.2f MiB", x / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", x / Double(1 << 10)) }
    return "\(n) B"
}

/// A Markdown table cell: pipes escaped.
func md(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }

func csvField(_ s: String) -> String {
    s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}
