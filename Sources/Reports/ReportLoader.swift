import Common
import Toolbench
import Evaluation
import Foundation
import ModelFormat

/// Turns the directories given to `slmrec compare` into report rows, from files only (no
/// tensor data, no timing). Accepted, in this order of recognition:
///   - a run directory (`recipe.effective.json`): its `compare` list (or every stage with a
///     checkpoint when the list is empty), each name a stage or a recipe input;
///   - a stage directory (`stage.json` or `checkpoint/config.json`); its run is the parent
///     directory when that holds `recipe.effective.json` (the evaluation context comes from it);
///   - a checkpoint directory (`config.json`): a row without metrics;
///   - a SASRec baseline (`metrics.json` with `"model": "sasrec"`), see `sasrecRow`.
public enum ReportLoader {
    public static let recipeFile = "recipe.effective.json"

    /// What a run directory says about its stages and how they were evaluated.
    struct RunInfo {
        var directory: URL
        var compare: [String]
        var stages: [(name: String, pass: String)]
        var inputs: [String: String]
        /// The recipe's `evaluate` block: data, split, candidates, users (nil: none).
        var evaluate: (data: String, split: String, candidates: String, datasetID: String)?
    }

    public static func rows(arguments: [URL], cwd: URL) throws -> [ReportRow] {
        var rows: [ReportRow] = []
        for url in arguments {
            rows += try modelRows(for: url, cwd: cwd)
        }
        if rows.isEmpty {
            throw ToolbenchError("compare", problem: "no models to compare", fix: "give a run directory (runs/<recipe>) or stage directories")
        }
        // The same name from two runs: qualify both with their run's directory name.
        let dup = Dictionary(grouping: rows.indices, by: { rows[$0].name }).filter { $0.value.count > 1 }
        for (_, idx) in dup {
            for i in idx { rows[i].name = rows[i].directory.deletingLastPathComponent().lastPathComponent + "/" + rows[i].name }
        }
        return rows
    }

    static func modelRows(for url: URL, cwd: URL) throws -> [ReportRow] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ToolbenchError(url.path, problem: "does not exist", fix: "give a run directory written by `slmrec run` (runs/<recipe>) or one of its stage directories")
        }
        guard isDir.boolValue else {
            throw ToolbenchError(url.path, problem: "is a file, not a run or stage directory", fix: "give the directory `slmrec run` wrote (runs/<recipe>) or one of its stage directories")
        }
        func has(_ rel: String) -> Bool { fm.fileExists(atPath: url.appendingPathComponent(rel).path) }
        if has(recipeFile) {
            let run = try runInfo(url, cwd: cwd)
            // A stage a gate kept from running has no directory: the report's "Gates and
            // selection" section says why, instead of the run counting as unfinished.
            let notRun = RecipeRunner.judgements(in: url).skipped
            let names = (run.compare.isEmpty
                ? run.stages.map(\.name).filter { fm.fileExists(atPath: url.appendingPathComponent($0).appendingPathComponent("checkpoint").path) }
                : run.compare).filter { notRun[$0] == nil }
            return try names.map { name in
                if run.stages.contains(where: { $0.name == name }) {
                    let dir = url.appendingPathComponent(name)
                    guard fm.fileExists(atPath: dir.path) else {
                        throw ToolbenchError(url.path, problem: "stage \"\(name)\" has no directory (the run did not finish)", fix: "finish the run with `slmrec run RECIPE --resume`")
                    }
                    return try stageRow(dir, name: name, run: run)
                }
                if let p = run.inputs[name] {
                    var r = try checkpointRow(resolve(p, cwd: cwd, run: url), name: name)
                    r.pass = "input"
                    if let m = try? readObject(inputMetricsURL(run: url, input: name)) {
                        applyEvaluation(m, to: &r, run: run)
                    } else {
                        r.notes.append("a recipe input: not evaluated")
                    }
                    return r
                }
                throw ToolbenchError("\(url.path)/\(recipeFile): compare", problem: "\"\(name)\" is neither a stage nor an input of the run", fix: "list stage or input names in compare")
            }
        }
        if has(RecipeRunner.stageFile) || has("checkpoint/\(Checkpoint.configFile)") {
            let parent = url.deletingLastPathComponent()
            let run = fm.fileExists(atPath: parent.appendingPathComponent(recipeFile).path) ? try runInfo(parent, cwd: cwd) : nil
            return [try stageRow(url, name: url.lastPathComponent, run: run)]
        }
        // Before the bare-checkpoint case: a SASRec directory has a config.json of its own.
        if has("metrics.json"), let m = try? readObject(url.appendingPathComponent("metrics.json")), m["model"]?.stringValue == "sasrec" {
            return [try sasrecRow(url, metrics: m, cwd: cwd)]
        }
        if has(Checkpoint.configFile) {
            var r = try checkpointRow(url, name: url.lastPathComponent)
            r.notes.append("a bare checkpoint: no metrics")
            return [r]
        }
        throw ToolbenchError(url.path, problem: "is not a run directory (\(recipeFile)), a stage directory (stage.json, checkpoint/), a checkpoint (config.json) or a SASRec baseline (metrics.json with \"model\": \"sasrec\")",
                             fix: "give the directory `slmrec run` wrote (runs/<recipe>) or one of its stage directories")
    }

    // MARK: - Run directories

    static func runInfo(_ dir: URL, cwd: URL) throws -> RunInfo {
        let file = dir.appendingPathComponent(recipeFile)
        let r = try readObject(file)
        let stages: [(String, String)] = (r["stages"]?.arrayValue ?? []).compactMap { s in
            guard let o = s.objectValue, let n = o["name"]?.stringValue else { return nil }
            return (n, o["pass"]?.stringValue ?? "?")
        }
        var info = RunInfo(directory: dir, compare: (r["compare"]?.arrayValue ?? []).compactMap(\.stringValue), stages: stages,
                           inputs: (r["inputs"]?.objectValue ?? [:]).compactMapValues(\.stringValue), evaluate: nil)
        if let e = r["evaluate"]?.objectValue, let data = e["data"]?.stringValue {
            info.evaluate = (data, e["split"]?.stringValue ?? "valid", e["candidates"]?.stringValue ?? "sampled",
                             datasetIdentity(data, run: dir, cwd: cwd).id)
        }
        return info
    }

    static func stageRow(_ dir: URL, name: String, run: RunInfo?) throws -> ReportRow {
        let fm = FileManager.default
        let ck = dir.appendingPathComponent("checkpoint")
        guard fm.fileExists(atPath: ck.appendingPathComponent(Checkpoint.configFile).path) else {
            throw ToolbenchError(dir.path, problem: "the stage has no checkpoint/ (it produced only an adapter, or did not finish)", fix: "compare stages that produce a checkpoint (merge adapters with lora-merge)")
        }
        var r = try checkpointRow(ck, name: name)
        r.kind = .stage
        r.directory = dir
        let stage = try? readObject(dir.appendingPathComponent(RecipeRunner.stageFile))
        r.pass = stage?["pass"]?.stringValue ?? run?.stages.first { $0.name == name }?.pass ?? "?"
        let adapter = dir.appendingPathComponent("adapter")
        if fm.fileExists(atPath: adapter.appendingPathComponent(LoRAAdapter.configFile).path) {
            r.adapter = adapter
            r.diskBytes = (r.diskBytes ?? 0) + directoryBytes(adapter)
        }
        guard let m = try? readObject(dir.appendingPathComponent("metrics.json")) else {
            r.notes.append("no metrics.json: not evaluated, no training time")
            return r
        }
        r.trainableParameters = m["trainable_parameters"]?.intValue
        r.gate = m["gate"].flatMap { try? $0.decoded(as: GateOutcome.self) }
        if let t = m["train_seconds"]?.doubleValue {
            r.trainSeconds = t; r.trainSecondsField = "train_seconds"
        } else if let t = m["seconds"]?.doubleValue {
            r.trainSeconds = t; r.trainSecondsField = "seconds"
        }
        applyEvaluation(m, to: &r, run: run)
        return r
    }

    /// Quality metrics and their evaluation context from a metrics.json's "evaluation".
    static func applyEvaluation(_ m: [String: JSONValue], to r: inout ReportRow, run: RunInfo?) {
        switch m["evaluation"] {
        case .object(let e)?:
            for k in MetricName.reportedQualified { if let v = e[k]?.doubleValue { r.quality[k] = v } }
            if let ev = run?.evaluate, let users = e["users"]?.intValue {
                r.context = EvalContext(dataset: ev.data, datasetID: ev.datasetID, split: ev.split, candidates: ev.candidates, users: users)
            } else {
                r.notes.append("evaluated, but the run's evaluate block is unknown (no \(recipeFile) next to the stage): not comparable")
            }
        case .string(let reason)?:
            r.notes.append("not evaluated: \(reason)")
        default:
            r.notes.append("not evaluated (the recipe has no evaluate block, or the stage is excluded from it)")
        }
    }

    /// Where `slmrec run` records the evaluation of a compared recipe input.
    public static func inputMetricsURL(run: URL, input: String) -> URL {
        run.appendingPathComponent("inputs").appendingPathComponent(input).appendingPathComponent("metrics.json")
    }

    /// A checkpoint directory's row: layers, quantization and bytes (parameters are counted
    /// when the model is loaded, see `ComparisonBuilder`).
    static func checkpointRow(_ ck: URL, name: String) throws -> ReportRow {
        let cfg: ModelConfig
        do { cfg = try ModelConfig.load(from: ck.appendingPathComponent(Checkpoint.configFile)) } catch {
            throw ToolbenchError(ck.path, problem: "not a readable checkpoint: \(error)", fix: "point to a checkpoint directory (config.json + model.safetensors)")
        }
        var r = ReportRow(name: name, kind: .checkpoint, pass: "checkpoint", directory: ck)
        r.checkpoint = ck
        r.layers = cfg.numLayers
        r.quantized = cfg.quantization != nil
        r.diskBytes = directoryBytes(ck)
        return r
    }

    // MARK: - SASRec baseline

    /// A SASRec baseline (`slmrec sasrec --output DIR`). The adapter reads only these fields
    /// of DIR/metrics.json (fix them here if the SASRec command renames one):
    ///   "model": "sasrec"; "test": {"full": {"HR@10": …, …}, "sampled": {…}, "users": …};
    ///   "dataset": the prepared dataset's path; "test": {"users": …} (else top-level "users");
    ///   "parameters"; "train_wall_seconds". Bytes on disk: DIR/sasrec.safetensors.
    /// It is not an E-LLMRec model: layers and timing show "-".
    static func sasrecRow(_ dir: URL, metrics m: [String: JSONValue], cwd: URL) throws -> ReportRow {
        var r = ReportRow(name: dir.lastPathComponent, kind: .sasrec, pass: "sasrec", directory: dir)
        let test = m["test"]?.objectValue ?? [:]
        for proto in MetricName.reportOrder {
            for (k, v) in test[proto.rawValue]?.objectValue ?? [:] where MetricName.reported.contains(k) { r.quality[MetricName.qualified(proto, k)] = v.doubleValue }
        }
        r.parameters = m["parameters"]?.intValue
        r.trainableParameters = r.parameters
        r.trainSeconds = m["train_wall_seconds"]?.doubleValue
        r.trainSecondsField = r.trainSeconds == nil ? nil : "train_wall_seconds"
        if let a = try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("sasrec.safetensors").path),
           let n = a[.size] as? NSNumber { r.diskBytes = n.intValue }
        let users = m["test"]?.objectValue?["users"]?.intValue ?? m["users"]?.intValue
        let hasFull = test["full"] != nil, hasSampled = test["sampled"] != nil
        if let ds = m["dataset"]?.stringValue, let users, hasFull || hasSampled {
            r.context = EvalContext(dataset: ds, datasetID: datasetIdentity(ds, run: nil, cwd: cwd).id, split: "test",
                                    candidates: hasFull && hasSampled ? "both" : hasFull ? "full" : "sampled", users: users)
        } else {
            r.notes.append("metrics.json lacks dataset/users/test metrics: not comparable")
        }
        r.notes.append("SASRec baseline: not an E-LLMRec model, so not timed by the report")
        return r
    }

    // MARK: - Helpers

    /// The dataset's identity: the hash the run recorded in inputs.json (`option_paths`), else
    /// a content hash computed now, else the path. Relative paths are tried against the
    /// current directory and then against each ancestor of the run directory (a run records
    /// paths relative to where `slmrec run` was started).
    static func datasetIdentity(_ data: String, run: URL?, cwd: URL) -> (id: String, url: URL?) {
        let trimmed = data.hasPrefix("./") ? String(data.dropFirst(2)) : data
        if let run, let inputs = try? readObject(run.appendingPathComponent("inputs.json")),
           let paths = inputs["option_paths"]?.objectValue,
           let hit = paths.first(where: { $0.key == data || $0.key.hasSuffix("/" + trimmed) }), let h = hit.value.stringValue {
            return (h, resolveExisting(data, cwd: cwd, run: run))
        }
        if let url = resolveExisting(data, cwd: cwd, run: run), let h = try? ContentHash.of(path: url) {
            return (h, url)
        }
        return (data, nil)
    }

    /// The first existing directory `path` can mean (see `datasetIdentity`).
    public static func resolveExisting(_ path: String, cwd: URL, run: URL?) -> URL? {
        var bases = [cwd]
        if var d = run?.standardizedFileURL {
            while d.path != "/" { bases.append(d); d = d.deletingLastPathComponent() }
        }
        // An absolute path resolves to itself whatever the base.
        return bases.map { resolvePath(path, relativeTo: $0) }.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    static func resolve(_ path: String, cwd: URL, run: URL) -> URL {
        resolveExisting(path, cwd: cwd, run: run) ?? resolvePath(path, relativeTo: cwd)
    }

    static func readObject(_ url: URL) throws -> [String: JSONValue] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ToolbenchError(url.path, problem: "cannot read", fix: "check the run directory")
        }
        guard let v = try? JSONDecoder().decode(JSONValue.self, from: data), let o = v.objectValue else {
            throw ToolbenchError(url.path, problem: "not a JSON object", fix: "the file is damaged; rerun the stage")
        }
        return o
    }

    static func directoryBytes(_ dir: URL) -> Int {
        let fm = FileManager.default
        var total = 0
        for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where !name.hasPrefix(".") {
            if let a = try? fm.attributesOfItem(atPath: dir.appendingPathComponent(name).path),
               (a[.type] as? FileAttributeType) == .typeRegular, let n = a[.size] as? NSNumber { total += n.intValue }
        }
        return total
    }
}
