import Foundation
import Common

/// One row of `slmrec bench`.
public struct BenchRow: Sendable {
    public let name: String
    public let unit: String          // "seq/s" or "users/s"
    public let rate: Double
    public let gflops: Double
    public let msPerIter: Double
}

public enum EngineBenchmark {
    /// Times (a) a full fine-tuning step, (b) a LoRA step (r=8 on q,v; projections and prompt
    /// trainable, item table frozen), (c) inference of user vectors + full-ranking scores.
    public static func run(_ cfg: BenchConfig, seconds: Double = 3, log: (String) -> Void = { _ in }) throws -> [BenchRow] {
        let d = cfg.dims
        let model = ELLMRecModel.random(dims: d, seed: 1)
        let (seqs, tg) = cfg.sequences(cfg.batch, seed: 2)
        let batch = try PackedBatch(sequences: seqs, targets: tg, dims: d)
        let flopsFwd = forwardFLOPs(d, seqLens: seqs.map(\.count), scoredRows: cfg.batch)
        var rows: [BenchRow] = []
        let ws = Workspace()

        // (a) full fine-tuning step
        let grads = ParamSet(layout: model.params.layout)
        let opt = AdamW(layout: model.params.layout)
        let full = time(seconds) {
            grads.zero()
            let a = model.forward(batch, training: true, workspace: ws)
            model.backward(a, BackwardRequest(grads: grads), workspace: ws)
            opt.update(params: model.params, grads: grads, lr: 1e-5)
        }
        rows.append(BenchRow(name: "full fine-tuning step", unit: "seq/s", rate: Double(cfg.batch) / full,
                             gflops: 3 * flopsFwd / full / 1e9, msPerIter: full * 1000))
        log("full step: \(String(format: "%.1f", full * 1000)) ms")

        // (b) LoRA step
        let lora = LoRAWeights(dims: d, rank: 8, alpha: 16, targets: [.q, .v])
        var rng = SeededRNG(seed: 3)
        lora.initialise(rng: &rng)
        model.lora = lora
        let trainable: Set<String> = [ParamName.inputProj, ParamName.inputProjBias, ParamName.outputProj, ParamName.outputProjBias, ParamName.prompt]
        let loraGrads = ParamSet(layout: lora.params.layout)
        let loraOpt = AdamW(layout: lora.params.layout)
        let loraStep = time(seconds) {
            grads.zero()
            loraGrads.zero()
            let a = model.forward(batch, training: true, workspace: ws)
            model.backward(a, BackwardRequest(grads: grads, trainable: trainable, loraGrads: loraGrads), workspace: ws)
            opt.update(params: model.params, grads: grads, lr: 1e-5, names: trainable)
            loraOpt.update(params: lora.params, grads: loraGrads, lr: 1e-5)
        }
        // LoRA FLOPs: forward + dx everywhere, dW only for the small trainable tensors: ≈ 2× forward.
        rows.append(BenchRow(name: "LoRA step (r=8, q,v)", unit: "seq/s", rate: Double(cfg.batch) / loraStep,
                             gflops: 2 * flopsFwd / loraStep / 1e9, msPerIter: loraStep * 1000))
        model.lora = nil
        log("LoRA step: \(String(format: "%.1f", loraStep * 1000)) ms")

        // (c) inference: 512 users, user vectors + full-ranking scores
        let (iseqs, _) = cfg.sequences(cfg.inferenceUsers, seed: 4)
        let ibatch = try PackedBatch(sequences: iseqs, targets: nil, dims: d)
        let iflops = forwardFLOPs(d, seqLens: iseqs.map(\.count), scoredRows: iseqs.count)
        let inf = time(seconds) { _ = model.infer(ibatch, workspace: ws) }
        rows.append(BenchRow(name: "inference (\(cfg.inferenceUsers) users, full scores)", unit: "users/s",
                             rate: Double(cfg.inferenceUsers) / inf, gflops: iflops / inf / 1e9, msPerIter: inf * 1000))
        log("inference: \(String(format: "%.1f", inf * 1000)) ms")
        return rows
    }

    /// Median seconds per call over at least 3 calls and `seconds` of wall time, after one warm-up.
    public static func time(_ seconds: Double, _ body: () -> Void) -> Double {
        body()
        var samples: [Double] = []
        let start = nowSeconds()
        while samples.count < 3 || (nowSeconds() - start < seconds && samples.count < 50) {
            let t0 = nowSeconds()
            body()
            samples.append(nowSeconds() - t0)
        }
        samples.sort()
        return samples[samples.count / 2]
    }
}

extension EngineBenchmark {
    public struct Int8Result: Sendable {
        public let fp32: BenchRow
        public let int8: BenchRow
        /// Mean |top-10(int8) ∩ top-10(fp32)| / 10 over the inference users (random inputs).
        public let top10Overlap: Double
        public let weightBytesFP32: Int
        public let weightBytesInt8: Int
        public let isa: String
    }

    /// fp32 vs int8 inference on the same random model and users.
    public static func runInt8(_ cfg: BenchConfig, seconds: Double = 3, log: (String) -> Void = { _ in }) throws -> Int8Result {
        let d = cfg.dims
        let model = ELLMRecModel.random(dims: d, seed: 1)
        let q = model.quantizedCopyForInference()
        let (seqs, _) = cfg.sequences(cfg.inferenceUsers, seed: 4)
        let batch = try PackedBatch(sequences: seqs, targets: nil, dims: d)
        let flops = forwardFLOPs(d, seqLens: seqs.map(\.count), scoredRows: seqs.count)
        let ws = Workspace()
        let tf = time(seconds) { _ = model.infer(batch, workspace: ws) }
        log("fp32 inference: \(String(format: "%.1f", tf * 1000)) ms")
        let ws8 = Workspace()
        let t8 = time(seconds) { _ = q.infer(batch, workspace: ws8) }
        log("int8 inference: \(String(format: "%.1f", t8 * 1000)) ms")
        let s32 = model.infer(batch).scores.array, s8 = q.infer(batch).scores.array
        let cols = d.numItems + 1
        var overlap = 0.0
        for u in 0..<seqs.count {
            let a = topK(Array(s32[(u * cols + 1)..<((u + 1) * cols)]), 10), b = topK(Array(s8[(u * cols + 1)..<((u + 1) * cols)]), 10)
            overlap += Double(Set(a).intersection(b).count) / 10
        }
        var linearParams = 0
        for _ in 0..<d.layers { for k in LinearKind.allCases { linearParams += k.shape(d).reduce(1, *) } }
        let rowsPerLayer = LinearKind.allCases.reduce(0) { $0 + $1.shape(d)[0] }
        return Int8Result(
            fp32: BenchRow(name: "inference fp32", unit: "users/s", rate: Double(seqs.count) / tf, gflops: flops / tf / 1e9, msPerIter: tf * 1000),
            int8: BenchRow(name: "inference int8 (W8A8 dynamic)", unit: "users/s", rate: Double(seqs.count) / t8, gflops: flops / t8 / 1e9, msPerIter: t8 * 1000),
            top10Overlap: overlap / Double(seqs.count),
            weightBytesFP32: linearParams * 4, weightBytesInt8: linearParams + d.layers * rowsPerLayer * 4,
            isa: Int8Quant.isaName)
    }

    static func topK(_ v: [Float], _ k: Int) -> [Int] {
        Array(v.indices.sorted { v[$0] > v[$1] || (v[$0] == v[$1] && $0 < $1) }.prefix(k))
    }
}
