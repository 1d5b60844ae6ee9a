import Foundation
import Common
import ModelFormat

/// One row of `slmrec bench`.
public struct BenchRow: Sendable {
    /// Stable key of the row ("full_step", "inference_int8", …): what `make bench-compare`
    /// matches against the PyTorch script's rows, so a renamed label cannot pair wrong rows.
    public let id: String
    public let name: String
    public let unit: String          // "seq/s", "users/s" or "MB/s"
    public let rate: Double
    /// Model FLOPs / time; nil for rows that are not model computation (file I/O).
    public let gflops: Double?
    public let msPerIter: Double
}

public enum EngineBenchmark {
    /// The ids of `run`'s rows, in order.
    public static let mainRows = ["full_step", "lora_step", "inference"]

    /// Times (a) a full fine-tuning step, (b) a LoRA step (the config's adapter, `cfg.lora`:
    /// r=8 on q,v for the first configs; projections and prompt trainable, item table frozen),
    /// (c) inference of user vectors + full-ranking scores. $SLMREC_BENCH_ROWS picks rows.
    public static func run(_ cfg: BenchConfig, seconds: Double = 3, log: (String) -> Void = { _ in }) throws -> [BenchRow] {
        let selected = benchRowsSelected(mainRows)
        if let bad = selected.subtracting(mainRows).sorted().first {
            throw EngineError("SLMREC_BENCH_ROWS names \"\(bad)\", which is not a row (rows: \(mainRows.joined(separator: ", ")))")
        }
        let d = cfg.dims
        let model = ELLMRecModel.random(dims: d, seed: 1)
        let (seqs, tg) = cfg.sequences(cfg.batch, seed: 2)
        let batch = try PackedBatch(sequences: seqs, targets: tg, dims: d)
        let flopsFwd = forwardFLOPs(d, seqLens: seqs.map(\.count), scoredRows: cfg.batch)
        var rows: [BenchRow] = []
        let ws = Workspace()

        // (a) full fine-tuning step
        if selected.contains("full_step") {
            let grads = ParamSet(layout: model.params.layout)
            let opt = AdamW(layout: model.params.layout)
            let full = time(seconds) {
                grads.zero()
                let a = model.forward(batch, training: true, workspace: ws)
                model.backward(a, BackwardRequest(grads: grads), workspace: ws)
                opt.update(params: model.params, grads: grads, lr: 1e-5)
            }
            rows.append(BenchRow(id: "full_step", name: "full fine-tuning step", unit: "seq/s", rate: Double(cfg.batch) / full,
                                 gflops: 3 * flopsFwd / full / 1e9, msPerIter: full * 1000))
            log("full step: \(String(format: "%.1f", full * 1000)) ms")
        }

        // (b) LoRA step. Gradients and AdamW moments for the trainable tensors only (as the
        // trainer holds them, and PyTorch, where frozen tensors get none).
        if selected.contains("lora_step") {
            let spec = cfg.lora
            let lora = LoRAWeights(dims: d, rank: spec.rank, alpha: spec.alpha, targets: spec.targets)
            lora.dropout = spec.dropout
            var rng = SeededRNG(seed: 3)
            lora.initialise(rng: &rng)
            model.lora = lora
            let trainable: Set<String> = [ParamName.inputProj, ParamName.inputProjBias, ParamName.outputProj, ParamName.outputProjBias, ParamName.prompt]
            let headGrads = ParamSet(layout: model.params.layout.subset(trainable))
            let headOpt = AdamW(layout: headGrads.layout)
            let loraGrads = ParamSet(layout: lora.params.layout)
            let loraOpt = AdamW(layout: lora.params.layout)
            var step: UInt64 = 0
            let loraStep = time(seconds) {
                headGrads.zero()
                loraGrads.zero()
                lora.dropoutSeed = step   // a new dropout mask every step, as in training
                step += 1
                let a = model.forward(batch, training: true, workspace: ws)
                model.backward(a, BackwardRequest(grads: headGrads, trainable: trainable, loraGrads: loraGrads), workspace: ws)
                headOpt.update(params: model.params, grads: headGrads, lr: 1e-5)
                loraOpt.update(params: lora.params, grads: loraGrads, lr: 1e-5)
            }
            // LoRA FLOPs: forward + dx everywhere, dW only for the small trainable tensors: ≈ 2× forward.
            rows.append(BenchRow(id: "lora_step", name: spec.rowName, unit: "seq/s", rate: Double(cfg.batch) / loraStep,
                                 gflops: 2 * flopsFwd / loraStep / 1e9, msPerIter: loraStep * 1000))
            model.lora = nil
            log("LoRA step: \(String(format: "%.1f", loraStep * 1000)) ms")
        }

        // (c) inference: 512 users, user vectors + full-ranking scores
        if selected.contains("inference") {
            let (iseqs, _) = cfg.sequences(cfg.inferenceUsers, seed: 4)
            let ibatch = try PackedBatch(sequences: iseqs, targets: nil, dims: d)
            let iflops = forwardFLOPs(d, seqLens: iseqs.map(\.count), scoredRows: iseqs.count)
            let inf = time(seconds) { _ = model.infer(ibatch, workspace: ws) }
            rows.append(BenchRow(id: "inference", name: "inference (\(cfg.inferenceUsers) users, full scores)", unit: "users/s",
                                 rate: Double(cfg.inferenceUsers) / inf, gflops: iflops / inf / 1e9, msPerIter: inf * 1000))
            log("inference: \(String(format: "%.1f", inf * 1000)) ms")
        }
        return rows
    }

    /// Median seconds per call over at least 3 calls and `seconds` of wall time, after one warm-up.
    public static func time(_ seconds: Double, _ body: () throws -> Void) rethrows -> Double {
        try body()
        var samples: [Double] = []
        let start = nowSeconds()
        while samples.count < 3 || (nowSeconds() - start < seconds && samples.count < 50) {
            let t0 = nowSeconds()
            try body()
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
            fp32: BenchRow(id: "inference_fp32", name: "inference fp32", unit: "users/s", rate: Double(seqs.count) / tf, gflops: flops / tf / 1e9, msPerIter: tf * 1000),
            int8: BenchRow(id: "inference_int8", name: "inference int8 (W8A8 dynamic)", unit: "users/s", rate: Double(seqs.count) / t8, gflops: flops / t8 / 1e9, msPerIter: t8 * 1000),
            top10Overlap: overlap / Double(seqs.count),
            weightBytesFP32: linearParams * 4, weightBytesInt8: linearParams + d.layers * rowsPerLayer * 4,
            isa: Int8Quant.isaName)
    }

    static func topK(_ v: [Float], _ k: Int) -> [Int] {
        Array(v.indices.sorted { v[$0] > v[$1] || (v[$0] == v[$1] && $0 < $1) }.prefix(k))
    }
}

extension EngineBenchmark {
    /// Writes and reads back one f32 tensor of `megabytes` MiB as safetensors in `directory`
    /// (the size a unit test once asserted a wall-clock limit on; a time is a benchmark's
    /// figure, not a pass/fail condition on a shared machine). Write = encode + atomic
    /// temp-file write + rename; read = open, validate the header, copy out the floats. The
    /// read is of a file just written, so it measures the page cache, not the disk.
    public static func runIO(megabytes: Int = 50, seconds: Double = 3, directory: URL) throws -> [BenchRow] {
        let n = megabytes * 1024 * 1024 / 4
        let t = Tensor(floats: (0..<n).map { Float($0 % 1000) * 0.001 }, shape: [n / 1024, 1024])
        let url = directory.appendingPathComponent("bench-io.safetensors")
        let mb = Double(n * 4) / 1e6
        let tw = try time(seconds) { try Safetensors.write(["w": t], to: url) }
        var readCount = 0
        let tr = try time(seconds) { readCount = try SafetensorsFile(url: url).floats("w").count }
        // A short read would make the rate meaningless: the row is only printed for a full one.
        guard readCount == n else { throw EngineError("safetensors read back \(readCount) of \(n) floats from \(url.path)") }
        let label = "\(megabytes) MiB f32 tensor"
        return [
            BenchRow(id: "safetensors_write", name: "safetensors write (\(label))", unit: "MB/s", rate: mb / tw, gflops: nil, msPerIter: tw * 1000),
            BenchRow(id: "safetensors_read", name: "safetensors read (\(label))", unit: "MB/s", rate: mb / tr, gflops: nil, msPerIter: tr * 1000),
        ]
    }
}
