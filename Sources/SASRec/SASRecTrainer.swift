import Foundation
import Common
import Engine
import Evaluation
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
    public init() {}

    enum CodingKeys: String, CodingKey {
        case lr, batchSize = "batch_size", epochs, patience, seed, validUsers = "valid_users", beta2 = "adam_beta2"
        case weightDecay = "weight_decay", ceChunk = "ce_chunk", maxSeconds = "max_seconds"
    }

    public func validate() throws {
        if !(lr > 0) { throw SASRecError("--lr must be positive") }
        if batchSize < 1 { throw SASRecError("--batch-size must be at least 1") }
        if epochs < 1 { throw SASRecError("--epochs must be at least 1") }
        if patience < 1 { throw SASRecError("--patience must be at least 1") }
        if let v = validUsers, v < 1 { throw SASRecError("--valid-users must be at least 1") }
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
    public var log: [[String: Any]]
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
    public static func train(dataset: PreparedDataset, config: SASRecConfig, options o: SASRecTrainOptions,
                             progress: Bool = true, log: (([String: Any]) -> Void)? = nil) throws -> SASRecTrainResult {
        try config.validate()
        try o.validate()
        guard config.numItems == dataset.numItems else { throw SASRecError("config has \(config.numItems) items, dataset \(dataset.numItems)") }
        let model = SASRecModel(config: config, seed: o.seed)
        let grads = ParamSet(layout: model.layout)
        let adam = AdamW(layout: model.layout, config: AdamWConfig(beta1: 0.9, beta2: o.beta2, eps: 1e-8, weightDecay: o.weightDecay))
        let wins = windows(dataset: dataset, maxLen: config.maxLen)
        guard !wins.isEmpty else { throw SASRecError("no training sequence has 2 or more items; nothing to train on") }
        var dataRNG = SeededRNG(seed: o.seed, stream: "sasrec-batches")
        var dropRNG = SeededRNG(seed: o.seed, stream: "sasrec-dropout")
        let ws = Workspace(), evalWS = Workspace()
        var lines: [[String: Any]] = []
        func emit(_ j: [String: Any]) { lines.append(j); log?(j) }
        let bestParams = model.params.copy()
        var best = -Double.infinity, bestEpoch = 0, bad = 0, epochsRun = 0
        var trainSeconds = 0.0
        let t0 = nowSeconds()
        for epoch in 1...o.epochs {
            let te = nowSeconds()
            let batches = lengthGroupedBatches(lengths: wins.map { $0.input.count }, batchSize: o.batchSize, shuffle: true, rng: &dataRNG)
            let bar = ProgressReporter(label: "sasrec epoch \(epoch)", total: batches.count, unit: "steps", quiet: !progress)
            var lossSum = 0.0, count = 0, seqs = 0
            for (step, idx) in batches.enumerated() {
                let b = SASRecBatch(inputs: idx.map { wins[$0].input }, targets: idx.map { wins[$0].target }, maxLen: config.maxLen)
                grads.zero()
                let (l, n) = model.trainStep(b, grads: grads, workspace: ws, rng: &dropRNG, ceChunk: o.ceChunk)
                guard l.isFinite else {
                    throw SASRecError("non-finite loss at epoch \(epoch) step \(step + 1); lower --lr")
                }
                adam.update(params: model.params, grads: grads, lr: o.lr)
                lossSum += l; count += n; seqs += idx.count
                let el = nowSeconds() - te
                bar.update(step + 1, String(format: "loss=%.4f seq/s=%.0f", lossSum / Double(max(count, 1)), Double(seqs) / max(el, 1e-9)))
            }
            let epochTime = nowSeconds() - te
            trainSeconds += epochTime
            epochsRun = epoch
            let v = try SASRecEvaluator.evaluate(model: model, dataset: dataset, split: .valid, candidates: .full,
                                                 users: o.validUsers, workspace: evalWS)
            let score = v.full?[selectionMetric] ?? 0
            let improved = score > best
            if improved { best = score; bestEpoch = epoch; bestParams.buffer.copy(from: model.params.buffer); bad = 0 } else { bad += 1 }
            let line: [String: Any] = [
                "event": "epoch", "epoch": epoch, "steps": batches.count, "loss": lossSum / Double(max(count, 1)),
                "targets": count, "train_seconds": epochTime, "seq_per_s": Double(seqs) / max(epochTime, 1e-9),
                "tokens_per_s": Double(count) / max(epochTime, 1e-9), "valid_seconds": v.seconds,
                "valid_full": v.full ?? [:], "valid_users": v.users, "best_epoch": bestEpoch, "elapsed_seconds": nowSeconds() - t0,
            ]
            emit(line)
            if progress {
                bar.finish(String(format: "loss=%.4f", lossSum / Double(max(count, 1))))
                logLine(String(format: "epoch %d: loss %.4f, %.1f s (%.0f targets/s), valid %@ %.4f%@", epoch, lossSum / Double(max(count, 1)),
                               epochTime, Double(count) / max(epochTime, 1e-9), selectionMetric, score, improved ? " (best)" : ""))
            }
            if bad >= o.patience { break }
            if let m = o.maxSeconds, nowSeconds() - t0 > m {
                if progress { logLine("sasrec: time budget of \(Int(m)) s reached after epoch \(epoch)") }
                break
            }
        }
        model.params.buffer.copy(from: bestParams.buffer)
        return SASRecTrainResult(model: model, bestEpoch: bestEpoch, epochsRun: epochsRun, bestValid: best,
                                 trainSeconds: nowSeconds() - t0, stepSeconds: trainSeconds, log: lines)
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
        let cfgData = try Data(contentsOf: directory.appendingPathComponent("config.json"))
        guard let obj = try JSONSerialization.jsonObject(with: cfgData) as? [String: Any], let m = obj["model"] else {
            throw SASRecError("\(directory.path)/config.json: no \"model\" object")
        }
        let config = try JSONDecoder().decode(SASRecConfig.self, from: JSONSerialization.data(withJSONObject: m))
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
