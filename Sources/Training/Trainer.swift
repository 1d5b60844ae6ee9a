import Foundation
import Common
import Engine
import Evaluation
import ModelEvaluation
import ModelFormat
import RecData
import Cluster

/// The shared trainer's options (every training pass embeds these; TrainingKit's option table
/// names them for recipes). Codable as Swift synthesizes it, for the resumable state only.
public struct TrainerOptions: Codable, Sendable, Equatable {
    public var lr: Float = 1e-3
    public var warmupSteps: Int = 0
    /// Warmup as a fraction of all steps (used when warmupSteps is 0).
    public var warmupFraction: Float = 0.05
    public var minLRRatio: Float = 0.1
    public var weightDecay: Float = 0.01
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-8
    /// Clip gradients to this global L2 norm (0: off).
    public var gradClip: Float = 1.0
    public var batchSize: Int = 64
    public var epochs: Double = 1
    /// A step budget that overrides `epochs` when > 0.
    public var maxSteps: Int = 0
    public var objective: Objective = .allPositions
    public var prefixAugmentation: Bool = false
    /// Validate every N steps (0: at the end of every epoch).
    public var validEvery: Int = 0
    /// Validate on a fixed subset of users (0: all).
    public var validUsers: Int = 2000
    public var validCandidates: Candidates = .full
    /// Selection metric (a key of the metrics: MRR, NDCG@10, HR@10, …).
    public var metric: String = "MRR"
    /// Stop after this many validations without improvement (0: never).
    public var patience: Int = 3
    /// Write a resumable checkpoint every N steps (0: only at validations and the end).
    public var checkpointEvery: Int = 0
    /// How the loss scores the catalogue (Engine/Kernels/ItemSoftmax.swift): full (exact,
    /// (R, N+1) matrices), streamed (exact, item blocks) or sampled (log-Q sampled softmax).
    /// Optional, as the two below, so that options written before they existed encode (and
    /// so key a recipe stage's resume) exactly as they did: nil is full.
    public var softmaxChoice: ItemSoftmax? = nil
    /// Shared negatives per step for softmax sampled (nil: 1,024).
    public var sampledNegativesChoice: Int? = nil
    /// Their distribution: uniform (nil), or proportional to training popularity + 1.
    public var samplerChoice: ItemSampler.Distribution? = nil
    public var softmax: ItemSoftmax { softmaxChoice ?? .full }
    public var sampledNegatives: Int { sampledNegativesChoice ?? 1024 }
    public var sampler: ItemSampler.Distribution { samplerChoice ?? .uniform }
    /// Data order, initialisation and dropout. Not an option of a pass: a pass trains with its
    /// stage's seed (`PassContext.seed`, derived once by the host).
    public var seed: UInt64 = 42

    public init() {}

    /// Problems that make the options unusable, each phrased as what to change; with `dims`,
    /// also those of these options on that model. The one rule check: a pass's plan-time
    /// `check` and `Trainer.init` both call it.
    public func problems(for dims: ModelDims? = nil) -> [String] {
        var p: [String] = []
        if let dims, objective == .allPositions && dims.suffixLength > 0 {
            p.append("objective all-positions needs a model without a prompt suffix (suffix_length \(dims.suffixLength)): set objective \"last\"")
        }
        if !(lr > 0) { p.append("lr must be positive (got \(lr))") }
        if batchSize < 1 { p.append("batch_size must be at least 1") }
        if epochs <= 0 && maxSteps <= 0 { p.append("give epochs > 0 or max_steps > 0") }
        if !MetricAccumulator.keys.contains(metric) { p.append("metric \"\(metric)\" is not one of \(MetricAccumulator.keys.joined(separator: ", "))") }
        if validCandidates == .both { p.append("valid_candidates must be sampled or full") }
        if gradClip < 0 { p.append("grad_clip must be >= 0") }
        if sampledNegatives < 1 { p.append("sampled_negatives must be at least 1 (e.g. 1024)") }
        if softmax != .sampled && (sampledNegativesChoice != nil || samplerChoice != nil) {
            p.append("sampled_negatives and sampler apply to softmax \"sampled\" (softmax is \(softmax.rawValue)): set softmax \"sampled\" or drop them")
        }
        if let dims, softmax == .sampled && sampledNegatives > dims.numItems {
            p.append("sampled_negatives \(sampledNegatives) exceeds the \(dims.numItems) items: use at most \(dims.numItems), or softmax \"full\"")
        }
        if prefixAugmentation && objective == .allPositions { p.append("prefix_augmentation applies to the last objective; all-positions already trains on every prefix") }
        return p
    }
}

/// A set of tensors the optimizer updates, named (its gradients are looked up by name, and
/// its tensors are saved under it in the resumable state).
public struct ParamGroup {
    /// What a group is to the pass's output.
    public enum Role: Sendable {
        /// The output model's base tensors.
        case model
        /// The output's LoRA adapter.
        case adapter
        /// Training aids that are not in the output (KD's L_ms heads).
        case auxiliary
        /// A teacher trained jointly (online distillation), not in the output.
        case teacher
    }
    public let name: String
    public let params: ParamSet
    public let trainable: Set<String>
    public let role: Role
    public init(name: String, params: ParamSet, trainable: Set<String>, role: Role) {
        self.name = name; self.params = params; self.trainable = trainable; self.role = role
    }

    public static let model = "model", lora = "lora"

    /// Trainable values in this group.
    public var trainableCount: Int { params.layout.entries.reduce(0) { $0 + (trainable.contains($1.name) ? $1.count : 0) } }
}

/// One step's gradient buffers, one per group, by the group's name. Each holds the group's
/// trainable tensors only: a frozen base (LoRA training of a 30-layer trunk) costs no
/// gradient memory (`BackwardRequest` skips names a gradient set does not hold).
public struct Gradients {
    public let sets: [ParamSet]
    let index: [String: Int]
    public init(groups: [ParamGroup]) {
        sets = groups.map { ParamSet(layout: $0.params.layout.subset($0.trainable)) }
        var ix: [String: Int] = [:]
        for (i, g) in groups.enumerated() { ix[g.name] = i }
        index = ix
    }
    /// The gradients of the group named `name` (nil: no such group, e.g. no LoRA).
    public subscript(_ name: String) -> ParamSet? { index[name].map { sets[$0] } }
    public func zero() { for g in sets { g.zero() } }
}

/// What a training pass plugs into the trainer: its parameters, one step's loss and
/// gradients, and the model that validation scores.
public protocol TrainingTask: AnyObject {
    var groups: [ParamGroup] { get }
    /// Forward + backward on `batch`, accumulating into `grads` (one per group, by name, zeroed
    /// by the trainer). Returns the named loss terms; "loss" is the total being minimised.
    /// `step` (0-based, counted across resumes) seeds anything random in the step (LoRA dropout).
    func step(_ batch: PackedBatch, step: Int, sampleIndices: [Int], grads: Gradients, workspace: Workspace) -> [String: Double]
    var evalModel: ELLMRecModel { get }
    var dims: ModelDims { get }
}

public struct TrainingError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Result of a training run.
public struct TrainingResult {
    public var steps: Int
    public var epochsCompleted: Double
    public var bestStep: Int
    public var bestMetric: Double?
    public var lastLoss: Double
    public var seconds: Double
    public var samplesPerSecond: Double
    public var tokensPerSecond: Double
    public var stoppedEarly: Bool
    /// The validation records (`step`, `valid_MRR`, …), in order.
    public var history: [JSONValue]
    /// The mean of each loss term the task returned ("loss", "ce", "d_cos", …) over every step
    /// of the run, resumed parts included.
    public var meanTerms: [String: Double]
    /// The seed the run used.
    public var seed: UInt64
    /// The training loss at every step (of the global batch under mpirun), resumed parts
    /// included: the curve to plot, and what the data-parallel equivalence test compares.
    public var lossPerStep: [Double] = []
    /// Under mpirun: the ranks, the floats all-reduced per step, and this run's seconds in
    /// the all-reduce (nil: a single process).
    public var dataParallel: DataParallelStats? = nil

    /// What a training pass's `metrics.json` records of the run.
    public var metrics: [String: JSONValue] {
        ["steps": .int(steps), "epochs": .number(epochsCompleted), "best_step": .int(bestStep),
         "best_valid_metric": bestMetric.map { .number($0) } ?? .null, "last_loss": .number(lastLoss),
         "train_seconds": .number(seconds), "samples_per_second": .number(samplesPerSecond),
         "tokens_per_second": .number(tokensPerSecond), "stopped_early": .bool(stoppedEarly),
         "history": .array(history), "loss_terms": .object(meanTerms.mapValues { .number($0) }),
         "seed": .int(Int(truncatingIfNeeded: seed)), "loss_per_step": .array(lossPerStep.map { .number($0) })]
            .merging(dataParallel.map { ["data_parallel": $0.json] } ?? [:]) { a, _ in a }
    }
}

/// What the gradient all-reduce cost a data-parallel run (this process's view; rank 0's is
/// what metrics.json records). docs/scale-out.md.
public struct DataParallelStats: Sendable {
    public var ranks: Int
    /// Steps this process ran (a resumed run: since the resume).
    public var steps: Int
    public var floatsPerStep: Int
    /// Seconds in the all-reduces; with `waitSeconds` measured apart (benchmarks), the
    /// transfer alone, else the waiting for the slowest rank included.
    public var allreduceSeconds: Double
    public var waitSeconds: Double?
    public var json: JSONValue {
        var o: [String: JSONValue] = ["ranks": .int(ranks), "steps": .int(steps), "floats_per_step": .int(floatsPerStep),
                                      "bytes_per_step": .int(floatsPerStep * 4), "allreduce_seconds": .number(allreduceSeconds)]
        if let waitSeconds { o["wait_seconds"] = .number(waitSeconds) }
        return .object(o)
    }
}

/// The trainer used by every training pass: AdamW, warmup + cosine, global-norm clipping,
/// length-grouped shuffled batches, validation with best-checkpoint selection and early
/// stopping, atomic resumable checkpoints, a NaN/Inf guard, progress and a JSON-lines log.
public final class Trainer {
    public let options: TrainerOptions
    public let dataset: PreparedDataset
    public let samples: [TrainSample]
    public let task: TrainingTask
    /// Where resumable state, the log and the best weights live.
    public let stateDirectory: URL
    public var label = "train"
    public var quiet = false
    /// Test hook: return after this many steps as if the process had been killed.
    public var simulateKillAfter: Int? = nil
    /// Benchmarks: no validation (and so no best-checkpoint selection).
    public var skipValidation = false
    /// Benchmarks under mpirun: time the wait for the slowest rank apart from the all-reduce.
    public var separateAllreduceWait = false

    public init(task: TrainingTask, dataset: PreparedDataset, options: TrainerOptions, stateDirectory: URL) throws {
        let p = options.problems(for: task.dims)
        if !p.isEmpty { throw TrainingError(message: "trainer options: " + p.joined(separator: "; ")) }
        if dataset.numItems != task.dims.numItems {
            throw TrainingError(message: "\(dataset.directory.path): the dataset has \(dataset.numItems) items but the model scores \(task.dims.numItems) (ellmrec.num_items); train on the dataset the checkpoint was built for")
        }
        self.task = task
        self.dataset = dataset
        self.options = options
        self.stateDirectory = stateDirectory
        samples = TrainingSamples.build(dataset, objective: options.objective, maxLen: task.dims.maxSeqLen,
                                        prefixAugmentation: options.prefixAugmentation)
        if samples.isEmpty { throw TrainingError(message: "\(dataset.directory.path): no training examples (every user has fewer than 4 interactions?)") }
        if options.softmax == .sampled {
            do {
                sampler = try ItemSampler(distribution: options.sampler, numItems: dataset.numItems, count: options.sampledNegatives,
                                          counts: options.sampler == .popularity ? dataset.trainingItemCounts() : nil)
            } catch { throw TrainingError(message: "\(error)") }
        } else {
            sampler = nil
        }
    }

    /// The step's negatives for the sampled softmax (nil otherwise).
    let sampler: ItemSampler?


    public var stepsPerEpoch: Int { (samples.count + options.batchSize - 1) / options.batchSize }
    public var totalSteps: Int { options.maxSteps > 0 ? options.maxSteps : max(1, Int((Double(stepsPerEpoch) * options.epochs).rounded(.up))) }

    /// The batches of an epoch: shuffled length buckets from a generator seeded by (seed, epoch),
    /// so a resumed run sees exactly the same order.
    public func batches(epoch: Int) -> [[Int]] {
        var rng = SeededRNG(seed: options.seed, stream: "batches-\(epoch)")
        return lengthGroupedBatches(lengths: samples.map { $0.input.count }, batchSize: options.batchSize, shuffle: true, rng: &rng)
    }

    /// Everything a resumed run needs besides the tensors, so that resuming a finished or
    /// early-stopped state trains nothing and reports what the uninterrupted run reported.
    struct State: Codable {
        var step = 0
        var bestMetric: Double?
        var bestStep = 0
        var badValidations = 0
        var stoppedEarly = false
        var lastLoss = 0.0
        /// The validation records so far (metrics.json's `history`).
        var history: [JSONValue] = []
        /// Sums of each loss term over the `step` steps so far (for their means).
        var termSums: [String: Double] = [:]
        /// The (global batch's) loss of every step so far: metrics.json's `loss_per_step`.
        var losses: [Double] = []
        // No decoding of older states: their options.json no longer matches (loadState refuses
        // them before this is read), so every state read here was written by this version.
    }

    /// Runs to the budget (or early stop). With `resume`, continues from the state directory.
    /// On return the task's parameters hold the best validated weights (or the last ones
    /// when validation never ran).
    ///
    /// SIGINT/SIGTERM are caught while it runs: the step in progress completes, the state is
    /// saved, and `Interrupted` is thrown (resumable exactly like a kill after a checkpoint).
    @discardableResult
    public func run(resume: Bool = false) throws -> TrainingResult {
        try StopSignals.catching { try runCatchingSignals(resume: resume) }
    }

    private func runCatchingSignals(resume: Bool) throws -> TrainingResult {
        let fm = FileManager.default
        let world = Cluster.world, leader = world.isLeader
        let o = options
        let groups = task.groups
        // Data-parallel under mpirun (docs/scale-out.md): every rank forms the same global
        // batches, takes its share of each, and the gradients are summed over the ranks
        // before the one AdamW step every rank applies; rank 0 alone writes.
        if world.isDistributed {
            // Rank 0 has set up the output and work directories before it gets here; no other
            // rank touches the filesystem before this point.
            try world.barrier()
            if samples.count < world.size {
                throw TrainingError(message: "\(samples.count) training example\(samples.count == 1 ? "" : "s") for \(world.size) ranks: each rank takes a share of every batch. Use mpirun -np \(max(samples.count, 1)) or fewer")
            }
            if o.batchSize < world.size {
                throw TrainingError(message: "batch_size \(o.batchSize) is smaller than the \(world.size) ranks: each rank takes a share of every batch. Use batch_size ≥ \(world.size) or fewer ranks (mpirun -np)")
            }
            if leader { try fm.createDirectory(at: stateDirectory, withIntermediateDirectories: true) }
            try world.requireSharedDirectory(stateDirectory)
            var f = Fingerprint()
            f.add(try JSONText.compact(JSONValue.encoding(o)))
            for x in samples { x.input.withUnsafeBytes { f.add($0) }; f.add("\(x.target)") }
            try world.requireAgreement("the trainer's options and training examples", f.value)
            try world.requireAgreement("the initial weights", Self.fingerprint(groups))
        } else {
            try fm.createDirectory(at: stateDirectory, withIntermediateDirectories: true)
        }
        let gradients = Gradients(groups: groups)
        let grads = gradients.sets
        let adam = AdamWConfig(beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay)
        // Moments for the trainable tensors only (frozen ones hold no optimizer state).
        let opts = groups.map { AdamW(layout: $0.params.layout.subset($0.trainable), config: adam) }
        var state = State()
        var best: [ParamSet]? = nil
        let logURL = stateDirectory.appendingPathComponent("log.jsonl")
        if resume, let s = try loadState(groups: groups, opts: opts) {
            state = s
            best = try loadBest(groups: groups)
            logLine("\(label): resuming at step \(state.step) of \(totalSteps)")
        } else if leader {
            try? fm.removeItem(at: logURL)
        }
        if world.isDistributed {
            try world.requireAgreement("the resumed training state (its step)", UInt64(state.step))
            try world.requireAgreement("the resumed weights", Self.fingerprint(groups))
        }
        let total = totalSteps
        let warmup = o.warmupSteps > 0 ? o.warmupSteps : Int(Float(total) * o.warmupFraction)
        let schedule = LRSchedule(peak: o.lr, warmupSteps: warmup, totalSteps: total, minRatio: o.minLRRatio)
        let validEvery = o.validEvery > 0 ? o.validEvery : stepsPerEpoch
        let noDecay: (String) -> Bool = { $0.hasSuffix("norm.weight") || $0.hasSuffix(".bias") }
        let log = leader ? try JSONLines(url: logURL, append: resume) : nil
        let progress = ProgressReporter(label: label, total: total, unit: "step", quiet: quiet || !leader)
        let reducer = world.isDistributed ? GradientReducer(world: world, buffers: grads.map { ($0.buffer.ptr, $0.buffer.count) }) : nil
        reducer?.separateWait = separateAllreduceWait
        let ws = Workspace()
        let start = nowSeconds()
        var seen = 0, tokens = 0
        var epochBatches: (epoch: Int, batches: [[Int]])? = nil
        var savedStep = -1
        func save() throws {
            if leader { try saveState(state, groups: groups, opts: opts) }
            savedStep = state.step
        }
        var stopAgreed: Int32? = nil   // data-parallel: a stop signal some rank received

        while state.step < total && !state.stoppedEarly {
            if let sig = reducer == nil ? StopSignals.received : stopAgreed {
                try save()
                progress.stop(at: state.step, "interrupted")
                throw Interrupted(signal: sig, step: state.step, stateDirectory: stateDirectory)
            }
            let epoch = state.step / stepsPerEpoch, inEpoch = state.step % stepsPerEpoch
            if epochBatches?.epoch != epoch { epochBatches = (epoch, batches(epoch: epoch)) }
            let globalIdx = epochBatches!.batches[inEpoch]
            let ex = globalIdx.map { samples[$0] }
            // This rank's share of the global batch (all of it in a single process).
            var idx = globalIdx, fraction = 1.0
            if reducer != nil {
                let shares = Communicator.balancedShares(lengths: ex.map { $0.input.count }, ranks: world.size)
                let rows = shares.map { s in TrainingSamples.targetCount(s.map { ex[$0] }, objective: o.objective) }
                idx = shares[world.rank].map { globalIdx[$0] }
                fraction = Double(rows[world.rank]) / Double(max(rows.reduce(0, +), 1))
            }
            let mine = idx.map { samples[$0] }
            gradients.zero()
            let t0 = nowSeconds()
            var terms: [String: Double] = [:]
            if !mine.isEmpty {
                var batch = try PackedBatch(sequences: mine.map(\.input), targets: mine.map(\.target), dims: task.dims, objective: o.objective)
                batch.softmax = o.softmax
                batch.sample = sampler?.draw(seed: o.seed, step: state.step)
                if reducer != nil && fraction > 0 { batch.sequenceWeight = (Double(mine.count) / Double(ex.count)) / fraction }
                terms = task.step(batch, step: state.step, sampleIndices: idx, grads: gradients, workspace: ws)
            }
            if let reducer {
                // Each rank's loss is a mean over its rows; weighted by its share of the
                // global batch's rows and summed, it is the global batch's mean, and so are
                // the gradients (one all-reduce of every gradient buffer).
                let stop = try reducer.reduce(fraction: fraction, terms: &terms, stopSignal: StopSignals.received)
                if let stop { stopAgreed = stop }
            }
            // Global-norm clipping over every trainable tensor of every group (a group's
            // gradients hold its trainable tensors only).
            var sq = 0.0
            for g in grads {
                for e in g.layout.entries {
                    let p = g.buffer.ptr + e.offset
                    for i in 0..<e.count { sq += Double(p[i]) * Double(p[i]) }
                }
            }
            let norm = sq.squareRoot()
            let loss = terms["loss"] ?? .nan
            if !loss.isFinite || !norm.isFinite {
                try log?.write(["step": .int(state.step), "event": .string("non-finite"), "loss": .number(loss), "grad_norm": .number(norm)])
                // Nothing of this step was applied: the state as it stands is the last good one.
                try save()
                throw TrainingError(message: "step \(state.step + 1): the \(loss.isFinite ? "gradient norm" : "loss") is not finite; training stopped without applying it. The state before it (step \(state.step)) is saved in \(stateDirectory.path). Lower lr (now \(o.lr)) or grad_clip and train again: that state resumes only with the same options, so with new ones training starts afresh (a recipe stage whose options changed does so by itself; `slmrec apply` once that directory is removed).")
            }
            let scale: Float = o.gradClip > 0 && norm > Double(o.gradClip) ? Float(Double(o.gradClip) / norm) : 1
            if scale != 1 { for g in grads { for i in 0..<g.buffer.count { g.buffer[i] *= scale } } }
            let lr = schedule.lr(state.step)
            for (k, grp) in groups.enumerated() {
                opts[k].update(params: grp.params, grads: grads[k], lr: lr, names: grp.trainable, noDecay: noDecay)
            }
            state.step += 1
            for (k, v) in terms { state.termSums[k, default: 0] += v }
            seen += ex.count
            tokens += ex.reduce(0) { $0 + $1.input.count }
            state.lastLoss = loss
            state.losses.append(loss)
            let dt = nowSeconds() - t0
            terms["lr"] = Double(lr)
            terms["grad_norm"] = norm
            terms["seq_per_s"] = Double(ex.count) / max(dt, 1e-9)
            var rec: [String: JSONValue] = ["step": .int(state.step), "epoch": .number(Double(state.step) / Double(stepsPerEpoch))]
            for (k, v) in terms { rec[k] = .number(v) }
            try log?.write(rec)
            progress.update(state.step, String(format: "loss %.4f lr %.2e %.0f seq/s", loss, lr, Double(seen) / max(nowSeconds() - start, 1e-9)))

            if let k = simulateKillAfter, state.step >= k {
                if o.checkpointEvery > 0 && state.step % o.checkpointEvery == 0 { try save() }
                throw TrainingError(message: "simulated kill at step \(state.step)")
            }
            let atEnd = state.step == total
            if !skipValidation && (state.step % validEvery == 0 || atEnd) {
                let v = try ModelEvaluator.evaluate(model: task.evalModel, dataset: dataset, options: EvalOptions(
                    split: .valid, candidates: o.validCandidates, users: o.validUsers > 0 ? o.validUsers : nil, progress: false))
                let m = (o.validCandidates == .full ? v.full : v.sampled) ?? [:]
                let value = m[o.metric] ?? 0
                var vrec: [String: JSONValue] = ["step": .int(state.step), "event": .string("valid"),
                                                 "candidates": .string(o.validCandidates.rawValue), "users": .int(v.users)]
                for (k, x) in m { vrec["valid_" + k] = .number(x) }
                try log?.write(vrec)
                state.history.append(.object(vrec))
                if state.bestMetric == nil || value > state.bestMetric! {
                    state.bestMetric = value
                    state.bestStep = state.step
                    state.badValidations = 0
                    best = groups.map { $0.params.copy($0.trainable) }
                    if leader { try saveBest(best!, groups: groups) }
                } else {
                    state.badValidations += 1
                }
                if world.isDistributed { try world.requireAgreement("the weights after step \(state.step) (the ranks drifted apart)", Self.fingerprint(groups)) }
                if !quiet && leader { logLine(String(format: "\(label): step %d valid %@ %.4f (best %.4f at step %d)", state.step, o.metric, value, state.bestMetric ?? 0, state.bestStep)) }
                if o.patience > 0 && state.badValidations >= o.patience && !atEnd {
                    state.stoppedEarly = true
                    try save()
                    logLine("\(label): early stop after \(state.badValidations) validations without improvement")
                    break
                }
                try save()
            } else if o.checkpointEvery > 0 && state.step % o.checkpointEvery == 0 {
                try save()
            }
        }
        if let sig = reducer == nil ? StopSignals.received : stopAgreed {   // arrived during the last step: the state says "done"
            try save()
            throw Interrupted(signal: sig, step: state.step, stateDirectory: stateDirectory)
        }
        let secs = nowSeconds() - start
        // The finished state too (not timed), so that a kill between here and the caller's
        // output (its evaluation, its writing) costs no training: --resume then trains nothing.
        if savedStep != state.step { try save() }
        progress.finish(String(format: "loss %.4f", state.lastLoss))
        if let best {
            for (g, b) in zip(groups, best) { g.params.update(from: b) }
        }
        return TrainingResult(steps: state.step, epochsCompleted: Double(state.step) / Double(stepsPerEpoch), bestStep: state.bestStep,
                              bestMetric: state.bestMetric, lastLoss: state.lastLoss, seconds: secs,
                              samplesPerSecond: Double(seen) / max(secs, 1e-9), tokensPerSecond: Double(tokens) / max(secs, 1e-9),
                              stoppedEarly: state.stoppedEarly, history: state.history,
                              meanTerms: state.termSums.mapValues { $0 / Double(max(state.step, 1)) }, seed: o.seed,
                              lossPerStep: state.losses,
                              dataParallel: reducer.map { DataParallelStats(ranks: world.size, steps: $0.steps, floatsPerStep: $0.floatsPerStep,
                                                                             allreduceSeconds: $0.seconds, waitSeconds: $0.separateWait ? $0.waitSeconds : nil) })
    }

    // MARK: data parallelism (docs/scale-out.md)

    /// Every group's tensors, as bytes: equal on every rank that holds the same weights.
    static func fingerprint(_ groups: [ParamGroup]) -> UInt64 {
        var f = Fingerprint()
        for g in groups { f.add(floats: g.params.buffer.ptr, count: g.params.buffer.count) }
        return f.value
    }

    // MARK: resumable state (atomic: everything is written to a temp dir, then renamed)

    var stateURL: URL { stateDirectory.appendingPathComponent("state") }
    var bestURL: URL { stateDirectory.appendingPathComponent("best.safetensors") }

    func saveState(_ s: State, groups: [ParamGroup], opts: [AdamW]) throws {
        try AtomicFile.writeDirectory(stateURL) { dir in
            var t: [String: Tensor] = [:]
            for (g, opt) in zip(groups, opts) {
                for e in g.params.layout.entries {
                    t["\(g.name)/param/\(e.name)"] = Tensor(floats: g.params.values(e.name), shape: e.shape)
                    if g.trainable.contains(e.name) {
                        t["\(g.name)/m/\(e.name)"] = Tensor(floats: opt.m.values(e.name), shape: e.shape)
                        t["\(g.name)/v/\(e.name)"] = Tensor(floats: opt.v.values(e.name), shape: e.shape)
                    }
                }
            }
            try Safetensors.write(t, to: dir.appendingPathComponent("tensors.safetensors"))
            try JSONText.pretty(encoding: s).write(to: dir.appendingPathComponent("trainer.json"))
            try JSONText.pretty(encoding: options).write(to: dir.appendingPathComponent("options.json"))
        }
    }

    func loadState(groups: [ParamGroup], opts: [AdamW]) throws -> State? {
        let j = stateURL.appendingPathComponent("trainer.json")
        guard let data = FileManager.default.contents(atPath: j.path) else { return nil }
        // The options are compared as JSON trees: a state whose options.json is missing, does not
        // parse or was written by another version counts as written with other options.
        let saved = FileManager.default.contents(atPath: stateURL.appendingPathComponent("options.json").path).flatMap { try? JSONValue.parse($0) }
        if saved != (try JSONValue.encoding(options)) {
            throw TrainingError(message: "\(stateURL.path): this state was written with different trainer options; resume with the same options or start a new run directory")
        }
        let s = try JSONDecoder().decode(State.self, from: data)
        let t = try Safetensors.read(stateURL.appendingPathComponent("tensors.safetensors"))
        for (g, opt) in zip(groups, opts) {
            for e in g.params.layout.entries {
                guard let p = t["\(g.name)/param/\(e.name)"] else {
                    throw TrainingError(message: "\(stateURL.path): no saved \(g.name) tensor \(e.name): the state belongs to a different model")
                }
                g.params.set(e.name, try p.floats())
                if g.trainable.contains(e.name), let m = t["\(g.name)/m/\(e.name)"], let v = t["\(g.name)/v/\(e.name)"] {
                    opt.m.set(e.name, try m.floats())
                    opt.v.set(e.name, try v.floats())
                }
            }
            opt.setStep(s.step)   // one AdamW update per trainer step: bias correction resumes exactly
        }
        return s
    }

    func saveBest(_ best: [ParamSet], groups: [ParamGroup]) throws {
        var t: [String: Tensor] = [:]
        for (g, b) in zip(groups, best) {
            for e in b.layout.entries { t["\(g.name)/\(e.name)"] = Tensor(floats: b.values(e.name), shape: e.shape) }   // trainable only
        }
        try Safetensors.write(t, to: bestURL)
    }

    func loadBest(groups: [ParamGroup]) throws -> [ParamSet]? {
        guard FileManager.default.fileExists(atPath: bestURL.path) else { return nil }
        let t = try Safetensors.read(bestURL)
        return try groups.map { g in
            let c = g.params.copy(g.trainable)
            for e in c.layout.entries { if let v = t["\(g.name)/\(e.name)"] { c.set(e.name, try v.floats()) } }
            return c
        }
    }
}

/// An append-only JSON-lines log (one object per line, flushed per write).
final class JSONLines {
    let handle: FileHandle
    init(url: URL, append: Bool) throws {
        if !append || !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        handle = try FileHandle(forWritingTo: url)
        if append { handle.seekToEndOfFile() }
    }
    deinit { try? handle.close() }
    /// One record: a step (`step`, `epoch`, the loss terms, `lr`, `grad_norm`, `seq_per_s`),
    /// a validation (`event: "valid"`, `valid_<metric>`) or a non-finite step. A non-finite
    /// number is written as null (JSON has none).
    func write(_ record: [String: JSONValue]) throws {
        handle.write(Data((JSONText.compact(.object(record)) + "\n").utf8))
    }
}
