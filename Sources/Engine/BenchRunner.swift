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
