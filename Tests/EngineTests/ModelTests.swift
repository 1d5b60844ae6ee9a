import XCTest
import Common
import Engine
import TestKit

/// The whole E-LLMRec model on tiny synthetic configs (no files).
final class ModelTests: XCTestCase {
    func loss(_ m: ELLMRecModel, _ b: PackedBatch) -> Double { Double(m.forward(b).loss) }

    /// Every parameter's gradient against central differences of the full loss.
    func checkModelGradients(_ d: ModelDims, objective: Objective = .last) throws {
        let m = TinyModels.model(d)
        let batch = try PackedBatch(sequences: TinyModels.sequences, targets: TinyModels.targets, dims: d, objective: objective)
        let grads = ParamSet(layout: m.params.layout)
        let a = m.forward(batch, training: true)
        m.backward(a, BackwardRequest(grads: grads))
        var rng = SeededRNG(seed: 3)
        for e in m.params.layout.entries {
            // A sample of entries per tensor keeps the test fast; the item table gets all rows touched.
            let n = e.count
            let idx = n <= 40 ? Array(0..<n) : (0..<40).map { _ in rng.nextInt(below: n) }
            var x = m.params.values(e.name)
            let numeric = numericGradient(&x, eps: 5e-3, indices: idx) { v in
                m.params.set(e.name, v)
                return loss(m, batch)
            }
            m.params.set(e.name, x)
            let analytic = grads.values(e.name)
            let (ok, cmp) = closeToMax(idx.map { analytic[$0] }, idx.map { numeric[$0] }, atol: 2e-4, rtol: 3e-2)
            XCTAssertTrue(ok, "\(e.name): \(cmp)")
        }
    }

    func testFullGradientsGQAPromptSuffix() throws { try checkModelGradients(TinyModels.dims(suffix: 2)) }
    func testFullGradientsNoBiasNoSuffix() throws { try checkModelGradients(TinyModels.dims(suffix: 0, gqa: false, inputBias: false, outputBias: false)) }
    func testFullGradientsAllPositions() throws { try checkModelGradients(TinyModels.dims(suffix: 0), objective: .allPositions) }

    func testLoRAGradients() throws {
        let d = TinyModels.dims()
        let m = TinyModels.model(d)
        let lora = LoRAWeights(dims: d, rank: 2, alpha: 4, targets: LinearKind.allCases)
        var rng = SeededRNG(seed: 5)
        for i in 0..<lora.params.buffer.count { lora.params.buffer[i] = rng.nextNormal() * 0.3 }
        m.lora = lora
        let batch = try PackedBatch(sequences: TinyModels.sequences, targets: TinyModels.targets, dims: d)
        let lg = ParamSet(layout: lora.params.layout)
        m.backward(m.forward(batch, training: true), BackwardRequest(grads: nil, loraGrads: lg))
        for e in lora.params.layout.entries {
            var x = lora.params.values(e.name)
            let numeric = numericGradient(&x, eps: 5e-3) { v in lora.params.set(e.name, v); return loss(m, batch) }
            lora.params.set(e.name, x)
            let (ok, cmp) = closeToMax(lg.values(e.name), numeric, atol: 2e-4, rtol: 3e-2)
            XCTAssertTrue(ok, "\(e.name): \(cmp)")
        }
    }

    /// Packing must not couple sequences: a user's vector is the same alone or in any batch.
    func testBatchCompositionDoesNotChangeResults() throws {
        let d = TinyModels.dims()
        let m = TinyModels.model(d)
        let all = m.forward(try PackedBatch(sequences: TinyModels.sequences, targets: nil, dims: d))
        for (i, s) in TinyModels.sequences.enumerated() {
            let one = m.forward(try PackedBatch(sequences: [s], targets: nil, dims: d))
            for j in 0..<d.itemDim { XCTAssertEqual(one.user[j], all.user[i * d.itemDim + j], accuracy: 1e-5) }
        }
    }

    /// all-positions equals the mean loss over every prefix of the sequence trained as `last`.
    func testAllPositionsEqualsPrefixAugmentation() throws {
        let d = TinyModels.dims(suffix: 0)
        let m = TinyModels.model(d)
        let seqs = TinyModels.sequences, tg = TinyModels.targets
        let allPos = m.forward(try PackedBatch(sequences: seqs, targets: tg, dims: d, objective: .allPositions), training: true)
        var prefixes: [[Int32]] = [], ptg: [Int32] = []
        for (s, y) in zip(seqs, tg) {
            let full = s + [y]
            for n in 1..<full.count { prefixes.append(Array(full[..<n])); ptg.append(full[n]) }
        }
        let last = m.forward(try PackedBatch(sequences: prefixes, targets: ptg, dims: d, objective: .last))
        XCTAssertEqual(allPos.loss, last.loss, accuracy: 1e-5)
        XCTAssertEqual(allPos.batch.rows, prefixes.count)
    }

    func testBadBatches() {
        let d = TinyModels.dims()
        XCTAssertThrowsError(try PackedBatch(sequences: [[]], targets: nil, dims: d)) { XCTAssertTrue("\($0)".contains("empty")) }
        XCTAssertThrowsError(try PackedBatch(sequences: [[12]], targets: nil, dims: d)) { XCTAssertTrue("\($0)".contains("outside 1…11")) }
        XCTAssertThrowsError(try PackedBatch(sequences: [[0]], targets: nil, dims: d))
        // Longer than max_seq_len: refused (the RoPE table covers prompt + max_seq_len + suffix).
        XCTAssertNoThrow(try PackedBatch(sequences: [[Int32](repeating: 3, count: d.maxSeqLen)], targets: nil, dims: d))
        XCTAssertThrowsError(try PackedBatch(sequences: [[Int32](repeating: 3, count: d.maxSeqLen + 1)], targets: nil, dims: d)) {
            XCTAssertTrue("\($0)".contains("max_seq_len"), "\($0)")
        }
        XCTAssertThrowsError(try PackedBatch(sequences: [[1]], targets: [0], dims: d))
        XCTAssertThrowsError(try PackedBatch(sequences: [[1]], targets: [2], dims: d, objective: .allPositions)) { XCTAssertTrue("\($0)".contains("suffix")) }
    }

    func testAdamWMatchesReferenceStep() {
        var layout = ParamLayout()
        layout.append("w", [3])
        let p = ParamSet(layout: layout), g = ParamSet(layout: layout)
        p.set("w", [1, -2, 0.5]); g.set("w", [0.1, -0.3, 0])
        let opt = AdamW(layout: layout, config: AdamWConfig(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1))
        opt.update(params: p, grads: g, lr: 0.01)
        // torch.optim.AdamW step 1: θ(1 − lr·wd) − lr·sign(g) (bias-corrected m/√v = g/|g|)
        XCTAssertEqual(p.values("w")[0], 1 * (1 - 0.001) - 0.01, accuracy: 1e-6)
        XCTAssertEqual(p.values("w")[1], -2 * (1 - 0.001) + 0.01, accuracy: 1e-6)
        XCTAssertEqual(p.values("w")[2], 0.5 * (1 - 0.001), accuracy: 1e-6)
    }
}

final class InferencePathTests: XCTestCase {
    /// Inference computes the last layer only at the scored rows; it must agree with the
    /// full (training) forward for both objectives.
    func testInferenceEqualsFullForward() throws {
        for (suffix, objective) in [(2, Objective.last), (0, .allPositions)] {
            let d = TinyModels.dims(suffix: suffix)
            let m = TinyModels.model(d)
            let b = try PackedBatch(sequences: TinyModels.sequences, targets: TinyModels.targets, dims: d, objective: objective)
            let full = m.forward(b, training: true), fast = m.infer(b, workspace: Workspace())
            XCTAssertTrue(allClose(fast.scores.array, full.scores.array, atol: 1e-5, rtol: 1e-5).ok, "\(objective)")
            XCTAssertEqual(fast.loss, full.loss, accuracy: 1e-5)
        }
    }

    /// int8 weights + per-token activations stay close to fp32 and rank the same items on top.
    func testInt8InferenceTracksFloat() throws {
        let d = ModelDims(hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, numItems: 200, itemDim: 16, promptLength: 3, maxSeqLen: 20, maxPositions: 64)
        let m = ELLMRecModel.random(dims: d, seed: 5)
        let q = m.quantizedCopyForInference()
        var rng = SeededRNG(seed: 8)
        let seqs = (0..<32).map { _ in (0..<(1 + rng.nextInt(below: 15))).map { _ in Int32(1 + rng.nextInt(below: 200)) } }
        let b = try PackedBatch(sequences: seqs, targets: nil, dims: d)
        let f = m.infer(b).user.array, g = q.infer(b).user.array
        let (_, cmp) = closeToMax(g, f, atol: 0, rtol: 1)
        XCTAssertLessThan(cmp.rel, 0.05, "int8 user vectors within 5% of fp32: \(cmp)")
        XCTAssertGreaterThan(cmp.maxAbs, 0, "int8 path actually ran")
    }

    /// One int8 model, many inferences at once (a server, the report's timing beside an
    /// evaluation): each gets exactly what it gets alone. The quantized activations were once
    /// kept inside the shared model, so concurrent calls read each other's.
    func testConcurrentInt8InferenceOnOneModelEqualsSequential() throws {
        let d = ModelDims(hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, numItems: 200, itemDim: 16, promptLength: 3, maxSeqLen: 20, maxPositions: 64)
        let q = ELLMRecModel.random(dims: d, seed: 5).quantizedCopyForInference()
        var rng = SeededRNG(seed: 9)
        let batches = try (0..<8).map { i in
            try PackedBatch(sequences: (0..<(4 + i)).map { _ in (0..<(1 + rng.nextInt(below: 19))).map { _ in Int32(1 + rng.nextInt(below: 200)) } },
                            targets: nil, dims: d)
        }
        let alone = batches.map { q.infer($0, workspace: Workspace()).scores.array }
        for _ in 0..<3 {
            let results = ConcurrentResults(count: batches.count)
            DispatchQueue.concurrentPerform(iterations: batches.count) { i in
                results.set(i, q.infer(batches[i], workspace: Workspace()).scores.array)
            }
            for i in batches.indices { XCTAssertEqual(results.get(i), alone[i], "batch \(i): concurrent and sequential differ") }
        }
    }
}

/// Results written by concurrent workers, one slot each.
final class ConcurrentResults: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [[Float]]
    init(count: Int) { slots = Array(repeating: [], count: count) }
    func set(_ i: Int, _ v: [Float]) { lock.lock(); slots[i] = v; lock.unlock() }
    func get(_ i: Int) -> [Float] { lock.lock(); defer { lock.unlock() }; return slots[i] }
}

final class LoRADropoutTests: XCTestCase {
    /// With lora_dropout the adapter sees x ⊙ m/(1−p) (mask regenerated in the backward from
    /// the step's seed): LoRA and base-input gradients still match finite differences.
    func testGradientsWithLoRADropout() throws {
        let d = TinyModels.dims()
        let m = TinyModels.model(d)
        let lora = LoRAWeights(dims: d, rank: 2, alpha: 4, targets: [.q, .v, .down])
        var rng = SeededRNG(seed: 5)
        for i in 0..<lora.params.buffer.count { lora.params.buffer[i] = rng.nextNormal() * 0.3 }
        lora.dropout = 0.3
        lora.dropoutSeed = 1234
        m.lora = lora
        let batch = try PackedBatch(sequences: TinyModels.sequences, targets: TinyModels.targets, dims: d)
        func loss() -> Double { Double(m.forward(batch, training: true).loss) }
        let lg = ParamSet(layout: lora.params.layout), g = ParamSet(layout: m.params.layout)
        m.backward(m.forward(batch, training: true), BackwardRequest(grads: g, loraGrads: lg))
        for name in [ParamName.loraA(0, .q), ParamName.loraB(1, .down), ParamName.loraA(1, .v)] {
            var x = lora.params.values(name)
            let numeric = numericGradient(&x, eps: 5e-3) { v in lora.params.set(name, v); return loss() }
            lora.params.set(name, x)
            let (ok, cmp) = closeToMax(lg.values(name), numeric, atol: 2e-4, rtol: 3e-2)
            XCTAssertTrue(ok, "\(name): \(cmp)")
        }
        // The dx path through the dropped adapter input reaches the layer norms and the prompt.
        for name in [ParamName.inputNorm(0), ParamName.postNorm(0), ParamName.prompt] {
            var x = m.params.values(name)
            let numeric = numericGradient(&x, eps: 5e-3) { v in m.params.set(name, v); return loss() }
            m.params.set(name, x)
            let (ok, cmp) = closeToMax(g.values(name), numeric, atol: 2e-4, rtol: 3e-2)
            XCTAssertTrue(ok, "\(name): \(cmp)")
        }
        // Dropout is on: a different seed gives a different loss; inference ignores it.
        let l1 = loss()
        lora.dropoutSeed = 99
        XCTAssertNotEqual(l1, loss())
        let inf1 = m.infer(batch).scores.array
        lora.dropout = 0
        XCTAssertEqual(inf1, m.infer(batch).scores.array)
    }
}
