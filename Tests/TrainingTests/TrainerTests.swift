import XCTest
import Foundation
import Common
import Engine
import RecData
import TestKit
import ModelFormat
@testable import Training

final class TrainerTests: XCTestCase {
    /// A learnable synthetic dataset: users walk i → i+1 → i+2 … through the item ids.
    func patternDataset(users: Int = 60, items: Int = 20) -> PreparedDataset {
        var rng = SeededRNG(seed: 1)
        let seqs: [[Int32]] = (0..<users).map { _ in
            let start = rng.nextInt(below: items), len = 5 + rng.nextInt(below: 6)
            return (0..<len).map { Int32((start + $0) % items + 1) }
        }
        return PreparedDataset(directory: FileManager.default.temporaryDirectory, numItems: items, sequences: seqs)
    }

    func tinyModel(items: Int = 20, suffix: Int = 0) -> ELLMRecModel {
        let d = ModelDims(hidden: 16, intermediate: 32, layers: 2, heads: 2, numItems: items, itemDim: 8, promptLength: 2,
                          suffixLength: suffix, maxSeqLen: 8, maxPositions: 32)
        return ELLMRecModel.random(dims: d, seed: 3)
    }

    func options(_ f: (inout TrainerOptions) -> Void = { _ in }) -> TrainerOptions {
        var o = TrainerOptions()
        o.lr = 5e-3; o.batchSize = 16; o.epochs = 6; o.validUsers = 0; o.patience = 0; o.seed = 9
        f(&o)
        return o
    }

    func tmp() -> URL { FileManager.default.temporaryDirectory.appendingPathComponent("slmrec-train-\(UUID().uuidString)") }

    func testLossDecreasesAndTheModelLearnsThePattern() throws {
        let ds = patternDataset(), model = tinyModel()
        let task = try FineTuneTask(model: model, lora: nil, parts: TrainableParts(itemTable: true), seed: 1)
        let t = try Trainer(task: task, dataset: ds, options: options { $0.epochs = 25 }, stateDirectory: tmp())
        t.quiet = true
        let r = try t.run()
        let log = try String(contentsOf: t.stateDirectory.appendingPathComponent("log.jsonl"), encoding: .utf8)
        let losses = log.split(separator: "\n").compactMap { line -> Double? in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["loss"] as? Double
        }
        XCTAssertGreaterThan(losses.count, 20)
        XCTAssertLessThan(losses.suffix(5).reduce(0, +) / 5, 0.5 * losses.prefix(5).reduce(0, +) / 5, "loss should at least halve")
        XCTAssertGreaterThan(try XCTUnwrap(r.bestMetric), 0.5, "valid MRR on a deterministic pattern")
        // The run's mean of each loss term is the mean of what the log records per step.
        XCTAssertEqual(losses.count, r.steps)
        XCTAssertEqual(try XCTUnwrap(r.meanTerms["loss"]), losses.reduce(0, +) / Double(losses.count), accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(r.meanTerms["ce"]), try XCTUnwrap(r.meanTerms["loss"]), accuracy: 1e-12, "fine-tuning: loss = ce")
        XCTAssertEqual(r.seed, 9)
    }

    func testSameSeedSameWeights() throws {
        func train() throws -> [Float] {
            let task = try FineTuneTask(model: tinyModel(), lora: nil, parts: TrainableParts(), seed: 1)
            let t = try Trainer(task: task, dataset: patternDataset(), options: options { $0.epochs = 2 }, stateDirectory: tmp())
            t.quiet = true
            try t.run()
            return task.model.params.buffer.array
        }
        XCTAssertEqual(try train(), try train())
    }

    /// A fresh fine-tuning task on the tiny model: each run of a resume test gets new objects,
    /// as a new process would.
    func freshTask(lora: LoRAOptions? = nil) throws -> FineTuneTask {
        try FineTuneTask(model: tinyModel(), lora: lora, parts: TrainableParts(), seed: 1)
    }

    /// LoRA as SLMRec trains it (gate/up/down, base frozen): the frozen decoder holds no
    /// gradient and no AdamW moments; only the adapter, projections and prompt do. And the
    /// trained result is what training with full-size buffers gave (frozen tensors unchanged).
    func testFrozenTensorsHoldNoGradientOrOptimizerBuffers() throws {
        let task = try freshTask(lora: LoRAOptions(rank: 4, alpha: 4, targets: ["gate_proj", "up_proj", "down_proj"], dropout: 0.05))
        let grads = Gradients(groups: task.groups)
        let model = try XCTUnwrap(task.groups.first { $0.name == ParamGroup.model })
        let modelGrads = try XCTUnwrap(grads[ParamGroup.model])
        XCTAssertEqual(Set(modelGrads.layout.names), model.trainable)
        XCTAssertEqual(modelGrads.buffer.count, model.params.layout.subset(model.trainable).totalCount)
        XCTAssertLessThan(modelGrads.layout.totalCount, model.params.layout.totalCount / 2, "the frozen decoder is most of the model")
        XCTAssertFalse(modelGrads.layout.names.contains { $0.contains("mlp") || $0.contains("self_attn") })
        let frozen = model.params.layout.names.filter { !model.trainable.contains($0) }
        let before = frozen.map { model.params.values($0) }
        var o = TrainerOptions()
        o.epochs = 1; o.batchSize = 8; o.validUsers = 0; o.patience = 0
        let dir = tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try quietTrainer(task, o, dir).run()
        XCTAssertGreaterThan(r.steps, 0)
        XCTAssertEqual(frozen.map { model.params.values($0) }, before, "frozen tensors never change")
        // The saved state holds moments for the trainable tensors only.
        let state = try Safetensors.read(dir.appendingPathComponent("state/tensors.safetensors"))
        XCTAssertEqual(Set(state.keys.filter { $0.hasPrefix("model/m/") }.map { String($0.dropFirst(8)) }), model.trainable)
    }

    func quietTrainer(_ task: TrainingTask, _ o: TrainerOptions, _ dir: URL) throws -> Trainer {
        let t = try Trainer(task: task, dataset: patternDataset(), options: o, stateDirectory: dir)
        t.quiet = true
        return t
    }

    /// kill -9 after step k, resume: the same final weights as an uninterrupted run.
    func testResumeAfterInterruptGivesTheSameWeights() throws {
        for lora in [false, true] {
            let o = options { $0.epochs = 3; $0.checkpointEvery = 4; $0.validEvery = 5 }
            let loraOpts = lora ? LoRAOptions(rank: 2, alpha: 4, targets: ["q_proj", "v_proj", "down_proj"], dropout: 0.1) : nil
            let full = try freshTask(lora: loraOpts)
            let t1 = try quietTrainer(full, o, tmp())
            let r1 = try t1.run()

            let dir = tmp()
            let t2 = try quietTrainer(try freshTask(lora: loraOpts), o, dir)
            t2.simulateKillAfter = 11   // state was saved at step 10: step 11 is lost and redone
            XCTAssertThrowsError(try t2.run())
            // A fresh process: new model objects, state from disk.
            let b = try freshTask(lora: loraOpts)
            let r = try quietTrainer(b, o, dir).run(resume: true)
            XCTAssertEqual(r.steps, t1.totalSteps)
            XCTAssertEqual(b.model.params.buffer.array, full.model.params.buffer.array, "lora=\(lora)")
            if lora { XCTAssertEqual(b.model.lora!.params.buffer.array, full.model.lora!.params.buffer.array) }
            // The mean loss terms cover every step once, the redone one included once.
            XCTAssertEqual(r.meanTerms, r1.meanTerms, "lora=\(lora)")
        }
    }

    /// A task that delivers SIGINT to the process during one step (as Ctrl-C would).
    final class SignalDuringStep: TrainingTask {
        let inner: FineTuneTask
        let at: Int
        init(_ inner: FineTuneTask, at: Int) { self.inner = inner; self.at = at }
        var groups: [ParamGroup] { inner.groups }
        var evalModel: ELLMRecModel { inner.evalModel }
        var dims: ModelDims { inner.dims }
        func step(_ batch: PackedBatch, step: Int, sampleIndices: [Int], grads: Gradients, workspace: Workspace) -> [String: Double] {
            if step == at { raise(SIGINT) }
            return inner.step(batch, step: step, sampleIndices: sampleIndices, grads: grads, workspace: workspace)
        }
    }

    func testSIGINTFinishesTheStepSavesTheStateAndResumesExactly() throws {
        let o = options { $0.epochs = 3; $0.checkpointEvery = 0; $0.validEvery = 5 }
        let full = try freshTask()
        let t1 = try quietTrainer(full, o, tmp())
        try t1.run()

        let dir = tmp()
        let t2 = try quietTrainer(SignalDuringStep(try freshTask(), at: 7), o, dir)
        XCTAssertThrowsError(try t2.run()) { e in
            let i = e as? Interrupted
            XCTAssertEqual(i?.signal, SIGINT)
            XCTAssertEqual(i?.step, 8, "the step in progress completes, then the trainer stops")
            XCTAssertEqual(i?.stateDirectory, dir)
        }
        XCTAssertNil(StopSignals.received, "default signal handling is back after the trainer returns")
        let b = try freshTask()
        let r = try quietTrainer(b, o, dir).run(resume: true)
        XCTAssertEqual(r.steps, t1.totalSteps)
        XCTAssertEqual(b.model.params.buffer.array, full.model.params.buffer.array, "checkpoint_every 0: the stop itself saved the state")
    }

    /// Resuming the state of a run that stopped early (or finished) trains nothing and reports
    /// what the run reported: the same steps, history, last loss and weights.
    func testResumingAFinishedOrEarlyStoppedRunTrainsNothing() throws {
        for patience in [1, 0] {
            let o = options { $0.epochs = 20; $0.validEvery = 2; $0.patience = patience; $0.lr = 0.05 }
            let dir = tmp()
            let a = try freshTask()
            let t1 = try quietTrainer(a, o, dir)
            let r1 = try t1.run()
            if patience == 1 { XCTAssertTrue(r1.stoppedEarly, "the setting must stop early (steps \(r1.steps) of \(t1.totalSteps))") }
            let b = try freshTask()
            let r2 = try quietTrainer(b, o, dir).run(resume: true)
            XCTAssertEqual(r2.steps, r1.steps)
            XCTAssertEqual(r2.stoppedEarly, r1.stoppedEarly)
            XCTAssertEqual(r2.lastLoss, r1.lastLoss)
            XCTAssertEqual(r2.history.count, r1.history.count)
            XCTAssertEqual(r2.bestStep, r1.bestStep)
            XCTAssertEqual(b.model.params.buffer.array, a.model.params.buffer.array, "patience \(patience)")
        }
    }

    func testResumeWithDifferentOptionsIsRefused() throws {
        let dir = tmp()
        let task = try FineTuneTask(model: tinyModel(), lora: nil, parts: TrainableParts(), seed: 1)
        let t = try Trainer(task: task, dataset: patternDataset(), options: options { $0.epochs = 1; $0.checkpointEvery = 1 }, stateDirectory: dir)
        t.quiet = true
        try t.run()
        let t2 = try Trainer(task: task, dataset: patternDataset(), options: options { $0.epochs = 1; $0.lr = 1 }, stateDirectory: dir)
        XCTAssertThrowsError(try t2.run(resume: true)) { XCTAssertTrue("\($0)".contains("different trainer options")) }
    }

    func testNonFiniteLossStopsAndNamesTheStep() throws {
        let model = tinyModel()
        model.params.req(ParamName.outputProj)[0] = .nan
        let task = try FineTuneTask(model: model, lora: nil, parts: TrainableParts(), seed: 1)
        let t = try Trainer(task: task, dataset: patternDataset(), options: options(), stateDirectory: tmp())
        t.quiet = true
        XCTAssertThrowsError(try t.run()) { XCTAssertTrue("\($0)".contains("step 1"), "\($0)") }
    }

    func testBadOptionsAreRejectedUpFront() throws {
        let task = try FineTuneTask(model: tinyModel(suffix: 1), lora: nil, parts: TrainableParts(), seed: 1)
        XCTAssertThrowsError(try Trainer(task: task, dataset: patternDataset(), options: options(), stateDirectory: tmp())) {
            XCTAssertTrue("\($0)".contains("suffix"))
        }
        let t2 = try FineTuneTask(model: tinyModel(items: 30), lora: nil, parts: TrainableParts(), seed: 1)
        XCTAssertThrowsError(try Trainer(task: t2, dataset: patternDataset(), options: options(), stateDirectory: tmp())) {
            XCTAssertTrue("\($0)".contains("30"))
        }
        XCTAssertThrowsError(try Trainer(task: t2, dataset: patternDataset(items: 30), options: options { $0.metric = "MAP" }, stateDirectory: tmp()))
    }

    /// The streamed softmax is the full one computed by item blocks: the same training, to fp32
    /// reduction order; the sampled one trains (a different, estimated loss) and is seeded.
    func testStreamedSoftmaxTrainsAsFullAndSampledLearns() throws {
        func train(_ f: (inout TrainerOptions) -> Void) throws -> (weights: [Float], metric: Double) {
            let task = try FineTuneTask(model: tinyModel(), lora: nil, parts: TrainableParts(itemTable: true), seed: 1)
            let t = try Trainer(task: task, dataset: patternDataset(), options: options { $0.epochs = 4; f(&$0) }, stateDirectory: tmp())
            t.quiet = true
            let r = try t.run()
            return (task.model.params.buffer.array, r.bestMetric ?? 0)
        }
        let full = try train { _ in }, streamed = try train { $0.softmaxChoice = .streamed }
        let c = allClose(streamed.weights, full.weights, atol: 1e-4, rtol: 1e-3)
        XCTAssertTrue(c.ok, "streamed vs full after 4 epochs: \(c.cmp)")
        let s1 = try train { $0.softmaxChoice = .sampled; $0.sampledNegativesChoice = 8; $0.samplerChoice = .popularity }
        let s2 = try train { $0.softmaxChoice = .sampled; $0.sampledNegativesChoice = 8; $0.samplerChoice = .popularity }
        XCTAssertEqual(s1.weights, s2.weights, "same seed, same negatives, same weights")
        XCTAssertNotEqual(s1.weights, full.weights)
        XCTAssertGreaterThan(s1.metric, 0.3, "valid MRR on the pattern with 8 sampled negatives of 20 items")
    }

    /// Options written before softmax existed encode as they did (a recipe stage's resume key
    /// is their hash), and the new ones are checked.
    func testSoftmaxOptionsKeepOldKeysAndAreChecked() throws {
        let enc = String(decoding: try JSONEncoder().encode(TrainerOptions()), as: UTF8.self)
        XCTAssertFalse(enc.contains("softmax") || enc.contains("sampled") || enc.contains("sampler"), enc)
        XCTAssertTrue(options { $0.sampledNegativesChoice = 5 }.problems().contains { $0.contains("apply to softmax \"sampled\"") })
        let t = try FineTuneTask(model: tinyModel(), lora: nil, parts: TrainableParts(), seed: 1)
        XCTAssertThrowsError(try Trainer(task: t, dataset: patternDataset(), options: options { $0.softmaxChoice = .sampled; $0.sampledNegativesChoice = 21 },
                                         stateDirectory: tmp())) { XCTAssertTrue("\($0)".contains("sampled_negatives 21 exceeds the 20 items"), "\($0)") }
    }

    func testAllPositionsWindowsCoverEveryTargetOnce() {
        let ds = patternDataset(users: 10, items: 20)
        for maxLen in [3, 8, 50] {
            let all = TrainingSamples.build(ds, objective: .allPositions, maxLen: maxLen)
            let prefixes = TrainingSamples.build(ds, objective: .last, maxLen: maxLen, prefixAugmentation: true)
            XCTAssertEqual(TrainingSamples.targetCount(all, objective: .allPositions), prefixes.count, "maxLen \(maxLen)")
            XCTAssertTrue(all.allSatisfy { $0.input.count <= maxLen })
        }
    }

    func testSchedule() {
        let s = LRSchedule(peak: 1, warmupSteps: 10, totalSteps: 110, minRatio: 0.1)
        XCTAssertEqual(s.lr(0), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.lr(9), 1, accuracy: 1e-6)
        XCTAssertEqual(s.lr(10), 1, accuracy: 1e-6)
        XCTAssertEqual(s.lr(60), 0.55, accuracy: 1e-5)
        XCTAssertEqual(s.lr(110), 0.1, accuracy: 1e-6)
    }
}
