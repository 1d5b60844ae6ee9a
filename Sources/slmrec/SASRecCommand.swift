import Foundation
import Cluster
import Common
import CommandKit
import Engine
import Evaluation
import ModelFormat
import RecData
import SASRec
import Toolbench

/// `slmrec sasrec` (the classic baseline and the item-embedding pre-training).
let sasrecCommands: [any ParsableCommand.Type] = [SASRecCommand.self]

extension PointwiseActivation: ExpressibleByArgument {}

extension ItemSoftmax: ExpressibleByArgument {}
extension ItemSampler.Distribution: ExpressibleByArgument {}

struct SASRecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sasrec",
        abstract: "Train SASRec with full cross-entropy over all items at every position; write its item table and metrics.",
        discussion: """
        SASRec (Kang & McAuley 2018) in the official code's arrangement, trained with softmax cross-entropy over all \
        items at every position (Klenitskiy & Vasilev 2023). Validates every epoch (full-ranking NDCG@10 on the valid \
        split), keeps the best epoch, stops after --patience epochs without improvement, then evaluates the test split \
        with the 999 sampled negatives and with full ranking (history masked, pessimistic ties), as `slmrec eval`. \
        Writes OUTPUT/item_embeddings.safetensors (item_embedding.weight [N+1, hidden], row 0 padding; for \
        `slmrec init --item-embeddings`), sasrec.safetensors, config.json, metrics.json, log.jsonl. See docs/sasrec.md.
        """)

    @Option(help: "Prepared dataset directory (slmrec data prepare).") var data: String
    @Option(help: "Output directory (written atomically).") var output: String
    @Option(help: "Hidden size = item embedding size.") var hidden: Int = 64
    @Option(help: "Self-attention blocks.") var layers: Int = 2
    @Option(help: "Attention heads.") var heads: Int = 2
    @Option(help: "Most recent items the model reads.") var maxLen: Int = 50
    @Option(help: "Dropout rate (0.5: the paper's choice for sparse Amazon data).") var dropout: Float = 0.5
    @Option(help: "Feed-forward activation (relu: the paper; gelu: RecBole).") var activation: PointwiseActivation = .relu
    @Option(help: "Adam learning rate.") var lr: Float = 1e-3
    @Option(help: "Sequences per batch.") var batchSize: Int = 128
    @Option(help: "Maximum epochs.") var epochs: Int = 200
    @Option(help: "Stop after this many epochs without a better validation NDCG@10.") var patience: Int = 10
    @Option(help: "Random seed (initialisation, batch order, dropout).") var seed: UInt64 = 42
    @Option(help: "Validate on a fixed, evenly spaced subset of N users (default: all).") var validUsers: Int?
    @Option(help: "Wall-time budget in minutes: stop after the epoch that exceeds it.") var maxMinutes: Double?
    @Option(help: "Loss over the items: full (exact, the default), streamed (exact, by item blocks) or sampled (log-Q sampled softmax).")
    var softmax: ItemSoftmax?
    @Option(help: "Shared negatives per step with --softmax sampled (default 1024).") var sampledNegatives: Int?
    @Option(help: "Their distribution with --softmax sampled: uniform (default) or popularity.") var sampler: ItemSampler.Distribution?
    @Option(help: "OpenBLAS threads (default: OpenBLAS's own choice).") var threads: Int?
    @Flag(help: "No progress bar.") var quiet = false
    @Flag(help: "Replace an existing SASRec output at --output (nothing else is ever replaced; docs/outputs.md).") var force = false
    @Flag(help: "Continue the training state an interrupted run of this command left in .OUTPUT.work.") var resume = false

    /// What this command writes, for the output guard.
    static let outputKind = OutputKind(name: "SASRec output directory",
                                       files: ["item_embeddings.safetensors", "sasrec.safetensors", "config.json", "metrics.json", "log.jsonl"],
                                       required: ["sasrec.safetensors", "metrics.json"])

    mutating func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        do {
            try config(numItems: 1).validate()
            try options.validate()
        } catch let e as SASRecError { throw ValidationError(e.description) }
    }

    func config(numItems: Int) -> SASRecConfig {
        SASRecConfig(numItems: numItems, hidden: hidden, layers: layers, heads: heads, maxLen: maxLen, dropout: dropout, activation: activation)
    }

    var options: SASRecTrainOptions {
        var o = SASRecTrainOptions()
        o.lr = lr; o.batchSize = batchSize; o.epochs = epochs; o.patience = patience; o.seed = seed; o.validUsers = validUsers
        o.maxSeconds = maxMinutes.map { $0 * 60 }
        o.softmax = softmax; o.sampledNegatives = sampledNegatives; o.sampler = sampler
        return o
    }

    func run() throws {
        // Under mpirun the other ranks train and evaluate with rank 0 and write nothing.
        if !Cluster.world.isLeader { return try train(leader: false) }
        try writingOutput(fileURL(output), kind: Self.outputKind, force: force, inputs: [("--data", fileURL(data))], keepsTrainingState: true) { try train() }
    }

    func train(leader: Bool = true) throws {
        if let t = threads { BLASThreads.set(t) }
        let dataset = try PreparedDataset.load(directory: fileURL(data))
        let cfg = config(numItems: dataset.numItems)
        let opts = options
        logLine("sasrec: \(dataset.numUsers) users, \(dataset.numItems) items; hidden \(hidden), \(layers) layers, \(heads) heads, max len \(maxLen), dropout \(dropout)")
        // The state is for this model, these options (a time budget aside) and this dataset.
        var keyOpts = opts
        keyOpts.maxSeconds = nil
        let keyParts: [String: JSONValue] = ["model": try JSONValue.encoding(cfg), "training": try JSONValue.encoding(keyOpts),
                                             "data": .string(try ContentHash.identity(of: fileURL(data)))]
        // Rank 0 owns the work directory; a follower reads its state from there on --resume.
        let work = leader ? try WorkDirectory(beside: fileURL(output), keyParts: keyParts, resume: resume, what: "slmrec sasrec") : nil
        let result: SASRecTrainResult
        do {
            result = try SASRecTrainer.train(dataset: dataset, config: cfg, options: opts, progress: !quiet,
                                             stateDirectory: work?.url ?? WorkDirectory.location(beside: fileURL(output)), resume: resume) { line in
                if let v = try? JSONValue.encoding(line) { logLine(JSONText.compact(v)) }
            }
        } catch let e as Interrupted {
            throw exitAfterInterrupt(e)
        } catch {
            work?.keepOrRemove(what: "slmrec sasrec")
            throw error
        }
        let model = result.model
        let test = try SASRecEvaluator.evaluate(model: model, dataset: dataset, split: .test, candidates: .both, progress: !quiet)
        let valid = try SASRecEvaluator.evaluate(model: model, dataset: dataset, split: .valid, candidates: .both, progress: false)
        let metrics = SASRecMetrics(dataset: dataset.directory.path, users: dataset.numUsers, items: dataset.numItems,
                                    parameters: model.parameterCount, bestEpoch: result.bestEpoch, epochsRun: result.epochsRun,
                                    trainWallSeconds: result.trainSeconds, trainStepSeconds: result.stepSeconds,
                                    test: test.record(split: .test, candidates: .both), valid: valid.record(split: .valid, candidates: .both),
                                    blasThreads: BLASThreads.current)
        guard let work else { return }
        var log = try result.log.map { JSONText.compact(try JSONValue.encoding($0)) }
        log.append(JSONText.compact(.object(["event": .string("test"), "test": try JSONValue.encoding(metrics.test), "best_epoch": .int(result.bestEpoch)])))
        try AtomicFile.writeDirectory(fileURL(output)) { dir in
            try Safetensors.write(SASRecTrainer.itemEmbeddingTensors(model), metadata: ["format": "pt", "source": "slmrec sasrec"],
                                  to: dir.appendingPathComponent("item_embeddings.safetensors"))
            try Safetensors.write(SASRecTrainer.allTensors(model), to: dir.appendingPathComponent("sasrec.safetensors"))
            try JSONText.write(encoding: SASRecOutputConfig(model: cfg, training: opts), to: dir.appendingPathComponent("config.json"))
            try JSONText.write(encoding: metrics, to: dir.appendingPathComponent("metrics.json"))
            try AtomicFile.write(Data(log.map { $0 + "\n" }.joined().utf8), to: dir.appendingPathComponent("log.jsonl"))
        }
        work.remove()
        func fmt(_ m: [String: Double]?) -> String {
            guard let m else { return "-" }
            return ["HR@10", "NDCG@10", "MRR"].map { String(format: "%@ %.4f", $0, m[$0] ?? 0) }.joined(separator: ", ")
        }
        emit("best epoch \(result.bestEpoch) of \(result.epochsRun), train \(String(format: "%.1f", result.trainSeconds)) s, \(model.parameterCount) parameters")
        emit("test full:    \(fmt(test.full))")
        emit("test sampled: \(fmt(test.sampled))")
        emit("wrote \(output)")
    }
}
