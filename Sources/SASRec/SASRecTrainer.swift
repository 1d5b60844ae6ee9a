import Foundation
import Cluster
import Common
import Engine
import Evaluation
import ModelEvaluation
import ModelFormat
import RecData

/// Training options (what `config.json` records under "training").
public struct SASRecTrainOptions: Codable, Sendable, Equatable {
    public var lr: Float = 1e-3
    /// Sequences (windows) per batch.
    public var batchSize: Int = 128
    public var epochs: Int = 200
    /// Stop after this many epochs without a better validation score.
    public var patience: Int = 10
    public var seed: UInt64 = 42
    /// Validate on a fixed, evenly spaced subset of this many users (nil: all).
    public var validUsers: Int?
    /// Adam β2: 0.98 as in the official SASRec code. Weight decay 0 (plain Adam).
    public var beta2: Float = 0.98
    public var weightDecay: Float = 0
    /// Rows of the score matrix formed at once in the tied cross-entropy.
    public var ceChunk: Int = 512
    /// Stop after the epoch during which this many seconds of wall time were exceeded (nil: no budget).
    public var maxSeconds: Double?
    /// The loss over the items (Engine/Kernels/ItemSoftmax.swift); nil: full, the tied CE.
    /// Optional, as the two below, so options recorded before they existed read the same.
    public var softmax: ItemSoftmax?
    /// Shared negatives per step with softmax sampled (nil: 1,024).
    public var sampledNegatives: Int?
    public var sampler: ItemSampler.Distribution?
    public init() {}

    enum CodingKeys: String, CodingKey {
        case lr, batchSize = "batch_size", epochs, patience, seed, validUsers = "valid_users", beta2 = "adam_beta2"
        case weightDecay = "weight_decay", ceChunk = "ce_chunk", maxSeconds = "max_seconds"
        case softmax, sampledNegatives = "sampled_negatives", sampler
    }

    public func validate() throws {
        if !(lr > 0) { throw SASRecError("--lr must be positive") }
        if batchSize < 1 { throw SASRecError("--batch-size must be at least 1") }
        if epochs < 1 { throw SASRecError("--epochs must be at least 1") }
        if patience < 1 { throw SASRecError("--patience must be at least 1") }
        if let v = validUsers, v < 1 { throw SASRecError("--valid-users must be at least 1") }
        if let m = maxSeconds, !(m > 0) { throw SASRecError("--max-minutes must be positive (got \(m / 60))") }
        if let k = sampledNegatives, k < 1 { throw SASRecError("--sampled-negatives must be at least 1 (e.g. 1024)") }
        if (softmax ?? .full) != .sampled && (sampledNegatives != nil || sampler != nil) {
            throw SASRecError("--sampled-negatives and --sampler apply to --softmax sampled")
        }
    }
}

/// One training window: `input` predicts `target` position by position (target[t] = the item after input[t]).
public struct SASRecWindow: Sendable, Equatable {
    public let input: ArraySlice<Int32>
    public let target: ArraySlice<Int32>
}

public struct SASRecTrainResult {
    public var model: SASRecModel
    public var bestEpoch: Int
    public var epochsRun: Int
    public var bestValid: Double
    /// Wall time of the whole loop (training and the per-epoch validation).
    public var trainSeconds: Double
    /// Wall time of the training steps alone (validation excluded).
    public var stepSeconds: Double
    /// One JSON object per epoch (and the final test evaluation), as written to log.jsonl.
    public var log: [SASRecEpochRecord]
}

public enum SASRecTrainer {
    /// Training windows of every user: the training sequence (all but the valid and test
    /// items) cut from the end into windows of at most maxLen + 1 items that overlap by one,
    /// so every training item after the first is a target exactly once. Original SASRec
    /// keeps only the most recent window; splitting long histories uses the rest too
    /// (few Amazon users exceed 51 items, so this changes little there).
    public static func windows(dataset: PreparedDataset, maxLen: Int) -> [SASRecWindow] {
        var out: [SASRecWindow] = []
        out.reserveCapacity(dataset.numUsers)
        for u in 1...max(dataset.numUsers, 1) where u <= dataset.numUsers {
            let s = dataset.trainingSequence(user: u)
            var end = s.endIndex
            while end - s.startIndex >= 2 {
                let start = max(s.startIndex, end - (maxLen + 1))
                out.append(SASRecWindow(input: s[start..<(end - 1)], target: s[(start + 1)..<end]))
                end = start + 1
            }
        }
        return out
    }

    /// Validation score used for best-epoch selection: full-ranking NDCG@10 on the valid split.
    public static let selectionMetric = "NDCG@10"

    /// Trains a model from scratch. Deterministic for a seed (initialisation, batch order and
    /// dropout masks each draw from their own SeededRNG stream). `log` receives each JSON line.
    ///
    /// With a `stateDirectory`, the resumable state (weights, Adam moments, the best epoch's
    /// weights, the generators, the log) is saved there after every epoch, and SIGINT/SIGTERM
    /// stop training at the next step with the state saved mid-epoch, throwing `Interrupted`;
    /// `resume` continues from that state and ends with the same weights as an uninterrupted run.
    ///
    /// Under mpirun (docs/scale-out.md) every rank forms the same global batches, trains on a
    /// token-balanced share of each, and the gradients are summed over the ranks before the
    /// one Adam step every rank applies; validation is sharded (the same scores as one
    /// process). Rank 0 alone writes the state: it must have created `stateDirectory` (a
    /// directory every rank sees) before the others reach this point.
    public static func train(dataset: PreparedDataset, config: SASRecConfig, options o: SASRecTrainOptions,
                             progress: Bool = true, stateDirectory: URL? = nil, resume: Bool = false,
                             log: ((SASRecEpochRecord) -> Void)? = nil) throws -> SASRecTrainResult {
        try config.validate()
        try o.validate()
        guard config.numItems == dataset.numItems else { throw SASRecError("config has \(config.numItems) items, dataset \(dataset.numItems)") }
        guard let stateDirectory else { return try loop(dataset: dataset, config: config, options: o, progress: progress, state: nil, resume: false, log: log) }
        if Cluster.world.isLeader { try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true) }
        return try StopSignals.catching {
            try loop(dataset: dataset, config: config, options: o, progress: progress, state: stateDirectory, resume: resume, log: log)
        }
    }

    /// Where an interrupted training stands (saved as state/trainer.json beside the tensors).
    struct State: Codable {
        var config: SASRecConfig
        var options: SASRecTrainOptions
        /// The epoch in progress (1-based) and the steps of it already taken.
        var epoch = 1
        var stepInEpoch = 0
        /// The batch-order generator as it was before this epoch's shuffle, and the dropout
        /// generator as it is now.
        var dataRNG: SeededRNG
        var dropRNG: SeededRNG
        var adamStep = 0
        var lossSum = 0.0, count = 0, seqs = 0, epochSeconds = 0.0
        var best = -Double.infinity, bestEpoch = 0, bad = 0, epochsRun = 0
        var trainSeconds = 0.0, elapsedSeconds = 0.0
        var finished = false
    }

    static func loop(dataset: PreparedDataset, config: SASRecConfig, options o: SASRecTrainOptions, progress: Bool,
                     state: URL?, resume: Bool, log: ((SASRecEpochRecord) -> Void)?) throws -> SASRecTrainResult {
        let model = SASRecModel(config: config, seed: o.seed)
        let grads = ParamSet(layout: model.layout)
        let adam = AdamW(layout: model.layout, config: AdamWConfig(beta1: 0.9, beta2: o.beta2, eps: 1e-8, weightDecay: o.weightDecay))
        let wins = windows(dataset: dataset, maxLen: config.maxLen)
        guard !wins.isEmpty else { throw SASRecError("no training sequence has 2 or more items; nothing to train on") }
        let world = Cluster.world, leader = world.isLeader
        if world.isDistributed {
            try world.barrier()   // rank 0 has set up the state directory
            if o.batchSize < world.size {
                throw SASRecError("--batch-size \(o.batchSize) is smaller than the \(world.size) ranks: each rank takes a share of every batch. Use --batch-size ≥ \(world.size) or fewer ranks (mpirun -np)")
            }
            if let state { try world.requireSharedDirectory(state) }
            var f = Fingerprint()
            f.add(try JSONText.compact(JSONValue.encoding(o)))
            f.add(try JSONText.compact(JSONValue.encoding(config)))
            for w in wins { w.target.withUnsafeBytes { f.add($0) } }
            try world.requireAgreement("the options and the training windows (--data \(dataset.directory.path))", f.value)
        }
        let reducer = world.isDistributed ? GradientReducer(world: world, buffers: [(grads.buffer.ptr, grads.buffer.count)]) : nil
        var p = State(config: config, options: o, dataRNG: SeededRNG(seed: o.seed, stream: "sasrec-batches"),
                         dropRNG: SeededRNG(seed: o.seed, stream: "sasrec-dropout"))
        let bestParams = model.params.copy()
        var lines: [SASRecEpochRecord] = []
        if resume, let state, let saved = try loadState(state, model: model, adam: adam, best: bestParams, config: config, options: o) {
            (p, lines) = saved
            if progress { logLine("sasrec: resuming at epoch \(p.epoch), step \(p.stepInEpoch) (\(state.path))") }
        }
        for l in lines { log?(l) }
        func emit(_ j: SASRecEpochRecord) { lines.append(j); log?(j) }
        let ws = Workspace(), evalWS = Workspace()
        var sampler: ItemSampler? = nil
        if o.softmax == .sampled {
            do {
                sampler = try ItemSampler(distribution: o.sampler ?? .uniform, numItems: dataset.numItems, count: o.sampledNegatives ?? 1024,
                                          counts: o.sampler == .popularity ? dataset.trainingItemCounts() : nil)
            } catch { throw SASRecError("\(error)") }
        }
        if world.isDistributed {
            var w = Fingerprint()
            w.add(floats: model.params.buffer.ptr, count: model.params.buffer.count)
            try world.requireAgreement("the weights at the start (epoch \(p.epoch), step \(p.stepInEpoch))", w.value)
        }
        var stopAgreed: Int32? = nil   // data-parallel: a stop signal some rank received
        let t0 = nowSeconds() - p.elapsedSeconds
        func save() throws {
            guard let state, leader else { return }
            p.adamStep = adam.step
            p.elapsedSeconds = nowSeconds() - t0
            try saveState(state, p, lines: lines, model: model, adam: adam, best: bestParams)
        }
        while !p.finished && p.epoch <= o.epochs {
            let epoch = p.epoch
            let te = nowSeconds() - p.epochSeconds
            var dataRNG = p.dataRNG
            let batches = lengthGroupedBatches(lengths: wins.map { $0.input.count }, batchSize: o.batchSize, shuffle: true, rng: &dataRNG)
            let bar = ProgressReporter(label: "sasrec epoch \(epoch)", total: batches.count, unit: "steps", quiet: !progress)
            for step in p.stepInEpoch..<batches.count {
                if let sig = reducer == nil ? StopSignals.received : stopAgreed {
                    p.epochSeconds = nowSeconds() - te
                    try save()
                    bar.stop(at: step, "interrupted")
                    throw Interrupted(signal: sig, step: adam.step, stateDirectory: state)
                }
                let idx = batches[step]
                // This rank's share of the global batch (all of it in a single process); its
                // loss and gradients are means over its targets, weighted by its share of them.
                var mine = idx, fraction = 1.0, rows = 0
                if reducer != nil {
                    let shares = Communicator.balancedShares(lengths: idx.map { wins[$0].input.count }, ranks: world.size)
                    let perRank = shares.map { s in s.reduce(0) { $0 + wins[idx[$1]].input.count } }
                    rows = perRank.reduce(0, +)
                    mine = shares[world.rank].map { idx[$0] }
                    fraction = Double(perRank[world.rank]) / Double(max(rows, 1))
                }
                grads.zero()
                var (l, n) = (0.0, 0)
                if !mine.isEmpty {
                    let b = SASRecBatch(inputs: mine.map { wins[$0].input }, targets: mine.map { wins[$0].target }, maxLen: config.maxLen)
                    let sample = sampler?.draw(seed: o.seed, step: adam.step)
                    func step(_ rng: inout SeededRNG) -> (Double, Int) {
                        model.trainStep(b, grads: grads, workspace: ws, rng: &rng, ceChunk: o.ceChunk, softmax: o.softmax ?? .full, sample: sample)
                    }
                    if world.rank == 0 {
                        (l, n) = step(&p.dropRNG)
                    } else {
                        // Another rank's rows get their own masks, drawn per step (resume-safe).
                        var r = SeededRNG(seed: o.seed ^ (UInt64(adam.step) &* 0x9E37_79B9_7F4A_7C15), stream: "sasrec-dropout-rank-\(world.rank)")
                        (l, n) = step(&r)
                    }
                }
                if let reducer {
                    var terms = ["loss": n > 0 ? l / Double(n) : 0]
                    if let stop = try reducer.reduce(fraction: fraction, terms: &terms, stopSignal: StopSignals.received) { stopAgreed = stop }
                    (l, n) = ((terms["loss"] ?? .nan) * Double(rows), rows)
                }
                guard l.isFinite else {
                    throw SASRecError("non-finite loss at epoch \(epoch) step \(step + 1); lower --lr")
                }
                adam.update(params: model.params, grads: grads, lr: o.lr)
                p.lossSum += l; p.count += n; p.seqs += idx.count; p.stepInEpoch = step + 1
                let el = nowSeconds() - te
                bar.update(step + 1, String(format: "loss=%.4f seq/s=%.0f", p.lossSum / Double(max(p.count, 1)), Double(p.seqs) / max(el, 1e-9)))
            }
            let epochTime = nowSeconds() - te
            p.trainSeconds += epochTime
            p.epochsRun = epoch
            let v = try SASRecEvaluator.evaluate(model: model, dataset: dataset, split: .valid, candidates: .full,
                                                 users: o.validUsers, workspace: evalWS)
            let score = v.full?[selectionMetric] ?? 0
            let improved = score > p.best
            if improved { p.best = score; p.bestEpoch = epoch; bestParams.buffer.copy(from: model.params.buffer); p.bad = 0 } else { p.bad += 1 }
            let loss = p.lossSum / Double(max(p.count, 1))
            emit(SASRecEpochRecord(epoch: epoch, steps: batches.count, loss: loss, targets: p.count, trainSeconds: epochTime,
                                   seqPerS: Double(p.seqs) / max(epochTime, 1e-9), tokensPerS: Double(p.count) / max(epochTime, 1e-9),
                                   validSeconds: v.seconds, validFull: v.full ?? [:], validUsers: v.users, bestEpoch: p.bestEpoch,
                                   elapsedSeconds: nowSeconds() - t0))
            if progress {
                bar.finish(String(format: "loss=%.4f", loss))
                logLine(String(format: "epoch %d: loss %.4f, %.1f s (%.0f targets/s), valid %@ %.4f%@", epoch, loss,
                               epochTime, Double(p.count) / max(epochTime, 1e-9), selectionMetric, score, improved ? " (best)" : ""))
            }
            // The next epoch starts here: its shuffle continues the batch-order generator.
            p.epoch = epoch + 1; p.stepInEpoch = 0; p.dataRNG = dataRNG
            p.lossSum = 0; p.count = 0; p.seqs = 0; p.epochSeconds = 0
            if p.bad >= o.patience { p.finished = true }
            // Every rank must take the same decision, and each measures its own clock.
            let overBudget = o.maxSeconds.map { nowSeconds() - t0 > $0 } ?? false
            if try reducer?.any(overBudget) ?? overBudget, let m = o.maxSeconds {
                if progress { logLine("sasrec: time budget of \(Int(m)) s reached after epoch \(epoch)") }
                p.finished = true
            }
            try save()
        }
        model.params.buffer.copy(from: bestParams.buffer)
        return SASRecTrainResult(model: model, bestEpoch: p.bestEpoch, epochsRun: p.epochsRun, bestValid: p.best,
                                 trainSeconds: nowSeconds() - t0, stepSeconds: p.trainSeconds, log: lines)
    }

    static func saveState(_ dir: URL, _ p: State, lines: [SASRecEpochRecord], model: SASRecModel, adam: AdamW, best: ParamSet) throws {
        try AtomicFile.writeDirectory(dir.appendingPathComponent("state")) { tmp in
            var t: [String: Tensor] = [:]
            for e in model.layout.entries {
                t["param/" + e.name] = Tensor(floats: model.params.values(e.name), shape: e.shape)
                t["m/" + e.name] = Tensor(floats: adam.m.values(e.name), shape: e.shape)
                t["v/" + e.name] = Tensor(floats: adam.v.values(e.name), shape: e.shape)
                t["best/" + e.name] = Tensor(floats: best.values(e.name), shape: e.shape)
            }
            try Safetensors.write(t, to: tmp.appendingPathComponent("tensors.safetensors"))
            let enc = JSONEncoder()
            enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            try enc.encode(p).write(to: tmp.appendingPathComponent("trainer.json"))
            try JSONText.pretty(encoding: lines).write(to: tmp.appendingPathComponent("log.json"))
        }
    }

    static func loadState(_ dir: URL, model: SASRecModel, adam: AdamW, best: ParamSet, config: SASRecConfig,
                          options o: SASRecTrainOptions) throws -> (State, [SASRecEpochRecord])? {
        let state = dir.appendingPathComponent("state")
        guard let data = FileManager.default.contents(atPath: state.appendingPathComponent("trainer.json").path) else { return nil }
        let dec = JSONDecoder()
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let p: State
        do { p = try dec.decode(State.self, from: data) } catch {
            throw SASRecError("\(state.path)/trainer.json: not a SASRec training state (\(error)); remove \(dir.path) to start over")
        }
        var budgetless = o, savedBudgetless = p.options
        budgetless.maxSeconds = nil; savedBudgetless.maxSeconds = nil   // a new time budget may be given on resume
        guard p.config == config, savedBudgetless == budgetless else {
            throw SASRecError("\(state.path): this state was written with other model or training options; resume with the same options, or remove \(dir.path) to start over")
        }
        let t = try Safetensors.read(state.appendingPathComponent("tensors.safetensors"))
        for e in model.layout.entries {
            for (prefix, set) in [("param/", model.params), ("m/", adam.m), ("v/", adam.v), ("best/", best)] {
                guard let x = t[prefix + e.name] else { throw SASRecError("\(state.path): no saved tensor \(prefix)\(e.name); remove \(dir.path) to start over") }
                set.set(e.name, try x.floats())
            }
        }
        adam.setStep(p.adamStep)
        let lines = (try? JSONDecoder().decode([SASRecEpochRecord].self, from: readFileData(state.appendingPathComponent("log.json")))) ?? []
        return (p, lines)
    }

    // MARK: outputs

    /// `item_embeddings.safetensors`: one tensor `item_embedding.weight` [N+1, C], row 0 the
    /// (zero) padding row — the raw table E, not E·√C (the √C only scales SASRec's input).
    public static func itemEmbeddingTensors(_ m: SASRecModel) -> [String: Tensor] {
        [SASRecNames.exportedItemEmbedding: Tensor(floats: m.params.values(SASRecNames.itemEmbedding), shape: [m.config.numItems + 1, m.config.hidden])]
    }

    public static func allTensors(_ m: SASRecModel) -> [String: Tensor] {
        var t: [String: Tensor] = [:]
        for e in m.layout.entries { t[e.name] = Tensor(floats: m.params.values(e.name), shape: e.shape) }
        return t
    }

    /// Reads a `sasrec.safetensors` + `config.json` directory back (fails on any missing,
    /// extra or mis-shaped tensor).
    public static func load(directory: URL) throws -> SASRecModel {
        let url = directory.appendingPathComponent("config.json")
        guard let m = try JSONValue.parse(readFileData(url))["model"] else {
            throw SASRecError("\(url.path): no \"model\" object")
        }
        let config = try m.decoded(as: SASRecConfig.self)
        let tensors = try Safetensors.read(directory.appendingPathComponent("sasrec.safetensors"))
        let layout = SASRecModel.layout(config)
        let extra = Set(tensors.keys).subtracting(layout.names)
        if !extra.isEmpty { throw SASRecError("sasrec.safetensors: unexpected tensors \(extra.sorted())") }
        let params = ParamSet(layout: layout)
        for e in layout.entries {
            guard let t = tensors[e.name] else { throw SASRecError("sasrec.safetensors: missing \(e.name)") }
            guard t.shape == e.shape else { throw SASRecError("sasrec.safetensors: \(e.name) has shape \(t.shape), expected \(e.shape)") }
            params.set(e.name, try t.floats())
        }
        return SASRecModel(config: config, params: params)
    }
}

/// One epoch of SASRec training, as log.jsonl records it.
public struct SASRecEpochRecord: Codable, Sendable, Equatable {
    public var event = "epoch"
    public var epoch: Int
    public var steps: Int
    public var loss: Double
    public var targets: Int
    public var trainSeconds: Double
    public var seqPerS: Double
    public var tokensPerS: Double
    public var validSeconds: Double
    public var validFull: [String: Double]
    public var validUsers: Int
    public var bestEpoch: Int
    public var elapsedSeconds: Double

    enum CodingKeys: String, CodingKey {
        case event, epoch, steps, loss, targets, trainSeconds = "train_seconds", seqPerS = "seq_per_s", tokensPerS = "tokens_per_s"
        case validSeconds = "valid_seconds", validFull = "valid_full", validUsers = "valid_users", bestEpoch = "best_epoch"
        case elapsedSeconds = "elapsed_seconds"
    }
}

/// The files of `slmrec sasrec`'s output besides the tensors (docs/sasrec.md).
public struct SASRecOutputConfig: Codable, Sendable {
    public var model: SASRecConfig
    public var training: SASRecTrainOptions
    public var architecture = "sasrec-pre-ln-query (pmixer/SASRec.pytorch arrangement), tied output, full CE at every position"
    public init(model: SASRecConfig, training: SASRecTrainOptions) { self.model = model; self.training = training }
}

public struct SASRecMetrics: Codable, Sendable {
    public var model = "sasrec"
    public var dataset: String
    public var users: Int, items: Int, parameters: Int
    public var bestEpoch: Int, epochsRun: Int
    public var trainWallSeconds: Double, trainStepSeconds: Double
    public var selectionMetric = "valid full \(SASRecTrainer.selectionMetric)"
    public var test: EvalRecord, valid: EvalRecord
    public var testSampled: [String: Double]?, testFull: [String: Double]?
    public var blasThreads: Int

    public init(dataset: String, users: Int, items: Int, parameters: Int, bestEpoch: Int, epochsRun: Int, trainWallSeconds: Double,
                trainStepSeconds: Double, test: EvalRecord, valid: EvalRecord, blasThreads: Int) {
        self.dataset = dataset; self.users = users; self.items = items; self.parameters = parameters; self.bestEpoch = bestEpoch
        self.epochsRun = epochsRun; self.trainWallSeconds = trainWallSeconds; self.trainStepSeconds = trainStepSeconds
        self.test = test; self.valid = valid; self.testSampled = test.sampled; self.testFull = test.full; self.blasThreads = blasThreads
    }

    enum CodingKeys: String, CodingKey {
        case model, dataset, users, items, parameters, bestEpoch = "best_epoch", epochsRun = "epochs_run"
        case trainWallSeconds = "train_wall_seconds", trainStepSeconds = "train_step_seconds", selectionMetric = "selection_metric"
        case test, valid, testSampled = "test_sampled", testFull = "test_full", blasThreads = "blas_threads"
    }
}
