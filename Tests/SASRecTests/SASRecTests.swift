import XCTest
import Common
import Engine
import Evaluation
import ModelFormat
import RecData
import SASRec
import TestKit

final class SASRecTests: XCTestCase {
    let tiny = SASRecConfig(numItems: 9, hidden: 8, layers: 2, heads: 2, maxLen: 6, dropout: 0)

    func batch(_ c: SASRecConfig) -> SASRecBatch {
        let seqs: [[Int32]] = [[3, 7, 1, 9, 2], [5, 4], [2, 8, 4, 6]]
        return SASRecBatch(inputs: seqs.map { $0.dropLast() }, targets: seqs.map { $0.dropFirst() }, maxLen: c.maxLen)
    }

    /// Mean CE of the batch with dropout off (the function the gradient check differentiates).
    func loss(_ m: SASRecModel, _ b: SASRecBatch) -> Double {
        let g = ParamSet(layout: m.layout)
        var rng = SeededRNG(seed: 1)
        let (l, n) = m.trainStep(b, grads: g, workspace: Workspace(), rng: &rng)
        return l / Double(n)
    }

    func testWholeModelGradientMatchesFiniteDifferences() {
        // GELU: smooth, so central differences are exact to O(eps²). ReLU's kink makes
        // differences of a whole network unreliable; its kernel is checked on its own.
        for act in [PointwiseActivation.gelu] {
            var c = tiny
            c.activation = act
            let m = SASRecModel(config: c, seed: 3)
            // Non-trivial LayerNorm gains and biases so their gradients are exercised.
            var r = SeededRNG(seed: 9)
            for e in m.layout.entries where e.shape.count == 1 {
                m.params.set(e.name, (0..<e.count).map { _ in (e.name.hasSuffix(".weight") ? 1 : 0) + 0.2 * r.nextNormal() })
            }
            let b = batch(c)
            let g = ParamSet(layout: m.layout)
            var rng = SeededRNG(seed: 1)
            m.trainStep(b, grads: g, workspace: Workspace(), rng: &rng)
            var sampler = SeededRNG(seed: 4)
            for e in m.layout.entries {
                // A sample of each tensor; for the item table, rows that occur in the batch.
                var idx = (0..<4).map { _ in sampler.nextInt(below: e.count) }
                if e.name == SASRecNames.itemEmbedding { idx = [7 * c.hidden + 1, 4 * c.hidden + 3, 6 * c.hidden, 9 * c.hidden + 5] }
                for i in idx {
                    let p = m.params.buffer.ptr + e.offset + i
                    let orig = p.pointee, eps: Float = 1e-2
                    p.pointee = orig + eps; let lp = loss(m, b)
                    p.pointee = orig - eps; let lm = loss(m, b)
                    p.pointee = orig
                    let num = (lp - lm) / (2 * Double(eps))
                    let ana = Double(g.buffer.ptr[e.offset + i])
                    XCTAssertEqual(ana, num, accuracy: 2e-3 + 3e-2 * abs(num), "\(act) \(e.name)[\(i)]")
                }
            }
            // The padding row is never an input nor a class.
            XCTAssertTrue(g.values(SASRecNames.itemEmbedding).prefix(c.hidden).allSatisfy { $0 == 0 })
        }
    }

    func testDropoutOffIsDeterministicAndTrainingModeDiffers() {
        var c = tiny
        c.dropout = 0.3
        let m = SASRecModel(config: c, seed: 3)
        let b = batch(c)
        var r = SeededRNG(seed: 0)
        let ws = Workspace()
        let h1 = Array(UnsafeBufferPointer(start: m.forward(b, workspace: ws, training: false, rng: &r), count: b.tokens * c.hidden))
        let h2 = Array(UnsafeBufferPointer(start: m.forward(b, workspace: ws, training: false, rng: &r), count: b.tokens * c.hidden))
        XCTAssertEqual(h1, h2)
        let h3 = Array(UnsafeBufferPointer(start: m.forward(b, workspace: ws, training: true, rng: &r), count: b.tokens * c.hidden))
        XCTAssertNotEqual(h1, h3)
    }

    /// Packed sequences are independent: a sequence's states do not depend on its batch-mates.
    func testPackingMatchesOneSequenceAtATime() {
        let m = SASRecModel(config: tiny, seed: 5)
        let seqs: [[Int32]] = [[3, 7, 1], [5], [2, 8, 4, 6]]
        let ws = Workspace()
        let all = m.scoreLast(SASRecBatch(inputs: seqs.map { $0[...] }, targets: nil, maxLen: tiny.maxLen), workspace: ws)
        let cols = tiny.numItems + 1
        let packed = Array(UnsafeBufferPointer(start: all, count: seqs.count * cols))
        for (i, s) in seqs.enumerated() {
            let ws1 = Workspace()   // the scores live in the workspace: keep it alive while reading
            let one = m.scoreLast(SASRecBatch(inputs: [s[...]], targets: nil, maxLen: tiny.maxLen), workspace: ws1)
            let ref = Array(UnsafeBufferPointer(start: one, count: cols))
            let cmp = allClose(Array(packed[(i * cols)..<((i + 1) * cols)]), ref, atol: 1e-5, rtol: 1e-5)
            XCTAssertTrue(cmp.ok, "sequence \(i): \(cmp.cmp) \(Array(packed[(i * cols)..<((i + 1) * cols)])) \(ref)")
        }
    }

    func testWindowsCoverEveryTargetOnce() {
        let ds = PreparedDataset(directory: URL(fileURLWithPath: "/tmp"), numItems: 20,
                                 sequences: [Array(1...14).map(Int32.init), [1, 2, 3], [4, 5, 6, 7]])
        let w = SASRecTrainer.windows(dataset: ds, maxLen: 4)
        // User 1 trains on 1…12 (13, 14 held out): windows [8…12], [4…8], [1…4]; user 2 has
        // one training item (no window); user 3 trains on [4, 5].
        XCTAssertEqual(w.map { Array($0.input) }, [[8, 9, 10, 11], [4, 5, 6, 7], [1, 2, 3], [4]])
        XCTAssertEqual(w.map { Array($0.target) }, [[9, 10, 11, 12], [5, 6, 7, 8], [2, 3, 4], [5]])
    }

    /// A deterministic pattern (item i is followed by i+1) is learned: loss falls and the
    /// model ranks the next item first on the test split.
    func synthetic() -> PreparedDataset {
        let n = 30
        var seqs: [[Int32]] = []
        for u in 0..<120 {
            let start = 1 + (u * 7) % (n - 8), len = 5 + u % 4
            seqs.append((0..<len).map { Int32(start + $0) })
        }
        return PreparedDataset(directory: URL(fileURLWithPath: "/tmp"), numItems: n, sequences: seqs)
    }

    func trainTiny(seed: UInt64) throws -> SASRecTrainResult {
        var o = SASRecTrainOptions()
        o.epochs = 12; o.batchSize = 16; o.lr = 1e-2; o.seed = seed; o.patience = 100
        let c = SASRecConfig(numItems: 30, hidden: 16, layers: 1, heads: 2, maxLen: 8, dropout: 0.1)
        return try SASRecTrainer.train(dataset: synthetic(), config: c, options: o, progress: false)
    }

    func testLearnsNextItemPatternAndIsDeterministic() throws {
        let r = try trainTiny(seed: 7)
        let losses = r.log.map(\.loss)
        XCTAssertLessThan(losses.last!, 0.5 * losses.first!, "loss \(losses)")
        let ds = synthetic()
        var ev = try SASRecEvaluator.evaluate(model: r.model, dataset: ds, split: .test, candidates: .full)
        XCTAssertGreaterThan(ev.full!["HR@1"]!, 0.9, "\(ev.full!)")
        ev = try SASRecEvaluator.evaluate(model: r.model, dataset: ds, split: .valid, candidates: .full)
        XCTAssertGreaterThan(ev.full!["HR@1"]!, 0.9)
        let again = try trainTiny(seed: 7)
        XCTAssertEqual(again.model.params.buffer.array, r.model.params.buffer.array, "same seed, same weights")
        let other = try trainTiny(seed: 8)
        XCTAssertNotEqual(other.model.params.buffer.array, r.model.params.buffer.array)
    }

    /// The streamed softmax trains as the full one (to fp32 reduction order); the sampled one
    /// learns the pattern too and is seeded.
    func testStreamedAndSampledSoftmax() throws {
        func train(_ f: (inout SASRecTrainOptions) -> Void) throws -> SASRecTrainResult {
            var o = SASRecTrainOptions()
            o.epochs = 6; o.batchSize = 16; o.lr = 1e-2; o.seed = 7; o.patience = 100
            f(&o)
            let c = SASRecConfig(numItems: 30, hidden: 16, layers: 1, heads: 2, maxLen: 8, dropout: 0.1)
            return try SASRecTrainer.train(dataset: synthetic(), config: c, options: o, progress: false)
        }
        // One step's loss and gradients (training for epochs with Adam amplifies fp32 noise).
        let model = try train { $0.epochs = 1 }.model
        let w = SASRecTrainer.windows(dataset: synthetic(), maxLen: 8)
        let b = SASRecBatch(inputs: w.prefix(16).map(\.input), targets: w.prefix(16).map(\.target), maxLen: 8)
        func step(_ mode: ItemSoftmax) -> (Double, [Float]) {
            let g = ParamSet(layout: model.params.layout)
            var r = SeededRNG(seed: 1)
            let l = model.trainStep(b, grads: g, workspace: Workspace(), rng: &r, softmax: mode)
            return (l.lossSum, g.buffer.array)
        }
        let (lf, gf) = step(.full), (ls, gs) = step(.streamed)
        XCTAssertEqual(ls, lf, accuracy: 1e-5 * lf)
        let cmp = allClose(gs, gf, atol: 1e-6, rtol: 1e-4)
        XCTAssertTrue(cmp.ok, "\(cmp.cmp)")
        let s = try train { $0.softmax = .sampled; $0.sampledNegatives = 10; $0.epochs = 12 }
        let ev = try SASRecEvaluator.evaluate(model: s.model, dataset: synthetic(), split: .test, candidates: .full)
        XCTAssertGreaterThan(ev.full!["HR@1"]!, 0.8, "\(ev.full!)")
        XCTAssertEqual(try train { $0.softmax = .sampled; $0.sampledNegatives = 10; $0.epochs = 12 }.model.params.buffer.array, s.model.params.buffer.array)
        XCTAssertThrowsError(try train { $0.softmax = .sampled; $0.sampledNegatives = 31 }) { XCTAssertTrue("\($0)".contains("30 items"), "\($0)") }
    }

    /// SIGINT (raised when epoch 3's log line is written) stops training with the state saved;
    /// resuming in a fresh trainer ends with the uninterrupted run's weights and log.
    func testInterruptAndResumeGiveTheUninterruptedWeights() throws {
        var o = SASRecTrainOptions()
        o.epochs = 6; o.batchSize = 16; o.lr = 1e-2; o.seed = 5; o.patience = 100
        let c = SASRecConfig(numItems: 30, hidden: 16, layers: 1, heads: 2, maxLen: 8, dropout: 0.1)
        let ref = try SASRecTrainer.train(dataset: synthetic(), config: c, options: o, progress: false)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sasrec-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try SASRecTrainer.train(dataset: synthetic(), config: c, options: o, progress: false, stateDirectory: dir) { line in
            if line.epoch == 3 { raise(SIGINT) }
        }) { e in XCTAssertEqual((e as? Interrupted)?.signal, SIGINT, "\(e)") }
        var other = o
        other.lr = 2e-2
        XCTAssertThrowsError(try SASRecTrainer.train(dataset: synthetic(), config: c, options: other, progress: false, stateDirectory: dir, resume: true)) {
            XCTAssertTrue("\($0)".contains("other model or training options"), "\($0)")
        }
        let r = try SASRecTrainer.train(dataset: synthetic(), config: c, options: o, progress: false, stateDirectory: dir, resume: true)
        XCTAssertEqual(r.model.params.buffer.array, ref.model.params.buffer.array)
        XCTAssertEqual(r.bestEpoch, ref.bestEpoch)
        XCTAssertEqual(r.log.map(\.loss), ref.log.map(\.loss))
    }

    func testItemEmbeddingExportLayoutAndRoundTrip() throws {
        let m = SASRecModel(config: tiny, seed: 2)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sasrec-test-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("item_embeddings.safetensors")
        try Safetensors.write(SASRecTrainer.itemEmbeddingTensors(m), to: url)
        let f = try SafetensorsFile(url: url)
        XCTAssertEqual(f.names, ["item_embedding.weight"])
        XCTAssertEqual(f.info("item_embedding.weight")?.shape, [tiny.numItems + 1, tiny.hidden])
        XCTAssertEqual(f.info("item_embedding.weight")?.dtype, .f32)
        let v = try f.floats("item_embedding.weight")
        XCTAssertEqual(Array(v.prefix(tiny.hidden)), [Float](repeating: 0, count: tiny.hidden), "row 0 is padding")
        XCTAssertEqual(v, m.params.values(SASRecNames.itemEmbedding))
        // Full checkpoint round trip.
        try Safetensors.write(SASRecTrainer.allTensors(m), to: dir.appendingPathComponent("sasrec.safetensors"))
        let cfg = try JSONSerialization.jsonObject(with: JSONEncoder().encode(tiny))
        try JSONSerialization.data(withJSONObject: ["model": cfg]).write(to: dir.appendingPathComponent("config.json"))
        let back = try SASRecTrainer.load(directory: dir)
        XCTAssertEqual(back.config, tiny)
        XCTAssertEqual(back.params.buffer.array, m.params.buffer.array)
    }

    func testBadConfigsAreRejected() {
        XCTAssertThrowsError(try SASRecConfig(numItems: 5, hidden: 10, heads: 3).validate())
        XCTAssertThrowsError(try SASRecConfig(numItems: 5, dropout: 1).validate())
    }
}
