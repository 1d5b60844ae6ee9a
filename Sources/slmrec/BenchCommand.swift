import Foundation
import Common
import CommandKit
import Engine
import RecData
import Training

enum BenchSize: String, CaseIterable, ExpressibleByArgument { case tiny, small, medium }

/// PyTorch 2.15 on this machine class (2 threads, fp32, MKL-DNN), from the foundation issue:
/// full step seq/s, LoRA step seq/s, inference users/s.
let pytorchBaseline: [String: [Double]] = ["small": [63, 79, 151], "medium": [19.2, 26.6, 43.2]]

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a full fine-tuning step, a LoRA step and full-ranking inference (release builds only).",
        discussion: "small: hidden 256, intermediate 688, 8 layers, 4 heads, 3,000 items, item dim 64, prompt 4, 50 items per sequence, batch 64; medium: hidden 512, intermediate 1376, 8 heads, 10,000 items. Prints rates next to PyTorch's on this machine class, achieved GFLOP/s, peak RSS and the machine's sgemm GFLOP/s measured in the same run.")

    @Option(help: "Model shape.") var config: BenchSize = .small
    @Option(help: "Seconds of timing per row (median of repeated runs).") var seconds: Double = 4
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print where the time goes (per op).") var profile = false
    @Flag(help: "Compare fp32 and int8 (W8A8 dynamic) inference instead.") var int8 = false
    @Option(help: "Instead: time one all-positions training epoch of the config's 8-layer model on this prepared dataset.") var epoch: String?
    @Option(help: "With --epoch: the objective (all-positions or last).") var objective: String = "all-positions"

    func run() throws {
        guard let cfg = BenchConfig.named(config.rawValue) else { throw ValidationError("unknown config \(config.rawValue)") }
        #if DEBUG
        logLine("warning: this is a debug build; time a release build (make build, .build/release/slmrec bench)")
        #endif
        let sg = measureSgemmGFLOPs()
        OpProfiler.enabled = profile
        if int8 { try runInt8(cfg, sgemm: sg); return }
        if let epoch { try runEpoch(cfg, data: epoch, sgemm: sg); return }
        let rows = try EngineBenchmark.run(cfg, seconds: seconds, log: { logLine($0) })
        let base = pytorchBaseline[config.rawValue]
        let rss = peakRSSBytes()
        if json {
            let obj: [String: Any] = [
                "config": config.rawValue, "sgemm_gflops": sg, "peak_rss_bytes": rss, "threads": BLASThreads.current,
                "rows": rows.enumerated().map { i, r in
                    var o: [String: Any] = ["name": r.name, "unit": r.unit, "rate": r.rate, "gflops": r.gflops, "ms": r.msPerIter]
                    if let base { o["pytorch"] = base[i]; o["ratio"] = r.rate / base[i] }
                    return o
                },
            ]
            emit(String(decoding: try JSONOut.data(obj), as: UTF8.self))
            return
        }
        emit("slmrec bench --config \(config.rawValue)   (sgemm \(String(format: "%.0f", sg)) GFLOP/s on this machine, \(BLASThreads.current) BLAS threads)")
        var table = [["row", "slmrec", "PyTorch", "ratio", "model GFLOP/s"]]
        for (i, r) in rows.enumerated() {
            table.append([r.name, String(format: "%.1f %@", r.rate, r.unit),
                          base.map { String(format: "%.1f %@", $0[i], r.unit) } ?? "-",
                          base.map { String(format: "%.2fx", r.rate / $0[i]) } ?? "-",
                          String(format: "%.1f", r.gflops)])
        }
        emit(textTable(table))
        emit(String(format: "peak RSS %.0f MiB", Double(rss) / 1048576))
        emit("model GFLOP/s = the FLOPs of the model's full computation (PyTorch's) / time; inference computes the prompt once per batch and the last layer only at the scored position, so its rate is an effective one.")
        if profile { emit("time by op (all rows):\n" + OpProfiler.report()) }
    }

    /// One training epoch on real data (the training issue's throughput row).
    func runEpoch(_ cfg: BenchConfig, data: String, sgemm sg: Double) throws {
        guard let obj = Objective(rawValue: objective) else { throw ValidationError("--objective must be all-positions or last") }
        let ds = try PreparedDataset.load(directory: fileURL(data))
        var d = cfg.dims
        d.numItems = ds.numItems
        let model = ELLMRecModel.random(dims: d, seed: 1)
        let task = try FineTuneTask(model: model, lora: nil, parts: TrainableParts(), seed: 1)
        var o = TrainerOptions()
        o.epochs = 1; o.objective = obj; o.validEvery = 1_000_000; o.batchSize = cfg.batch; o.lr = 1e-4
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("slmrec-bench-epoch-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let trainer = try Trainer(task: task, dataset: ds, options: o, stateDirectory: dir)
        trainer.skipValidation = true
        let samples = trainer.samples
        let targets = TrainingSamples.targetCount(samples, objective: obj)
        let r = try trainer.run()
        let flops = 3 * forwardFLOPs(d, seqLens: samples.map { $0.input.count }, scoredRows: targets)
        emit("one \(obj.rawValue) epoch of the \(d.layers)-layer model (hidden \(d.hidden)) on \(data)")
        emit(textTable([
            ["examples", "targets", "wall time", "tokens/s", "targets/s", "GFLOP/s", "sgemm GFLOP/s"],
            ["\(samples.count)", "\(targets)", String(format: "%.1f s", r.seconds), String(format: "%.0f", r.tokensPerSecond),
             String(format: "%.0f", Double(targets) / r.seconds), String(format: "%.1f", flops / r.seconds / 1e9), String(format: "%.0f", sg)],
        ]))
    }

    /// PyTorch 2.15 quantize_dynamic (qint8 Linear) inference on this machine class, users/s.
    static let pytorchInt8: [String: Double] = ["small": 214, "medium": 83]

    func runInt8(_ cfg: BenchConfig, sgemm sg: Double) throws {
        let r = try EngineBenchmark.runInt8(cfg, seconds: seconds, log: { logLine($0) })
        let pt = Self.pytorchInt8[config.rawValue]
        if json {
            var obj: [String: Any] = [
                "config": config.rawValue, "sgemm_gflops": sg, "isa": r.isa, "fp32_users_per_s": r.fp32.rate,
                "int8_users_per_s": r.int8.rate, "int8_vs_fp32": r.int8.rate / r.fp32.rate, "top10_overlap": r.top10Overlap,
                "decoder_linear_bytes_fp32": r.weightBytesFP32, "decoder_linear_bytes_int8": r.weightBytesInt8,
                "peak_rss_bytes": peakRSSBytes(),
            ]
            if let pt { obj["pytorch_int8_users_per_s"] = pt; obj["int8_vs_pytorch_int8"] = r.int8.rate / pt }
            emit(String(decoding: try JSONOut.data(obj), as: UTF8.self))
            return
        }
        emit("slmrec bench --config \(config.rawValue) --int8   (int8 kernels: \(r.isa); sgemm \(String(format: "%.0f", sg)) GFLOP/s)")
        emit(textTable([
            ["row", "users/s", "vs our fp32", "vs PyTorch int8"],
            [r.fp32.name, String(format: "%.1f", r.fp32.rate), "1.00x", "-"],
            [r.int8.name, String(format: "%.1f", r.int8.rate), String(format: "%.2fx", r.int8.rate / r.fp32.rate),
             pt.map { String(format: "%.2fx (%.0f)", r.int8.rate / $0, $0) } ?? "-"],
        ]))
        emit(String(format: "top-10 overlap int8 vs fp32: %.3f (PyTorch quantize_dynamic: 0.84-0.86)", r.top10Overlap))
        emit(String(format: "decoder linear weights: %@ fp32 -> %@ int8 (%.2fx smaller)", fmtBytes(r.weightBytesFP32) as NSString, fmtBytes(r.weightBytesInt8) as NSString, Double(r.weightBytesFP32) / Double(r.weightBytesInt8)))
        emit(String(format: "peak RSS %.0f MiB", Double(peakRSSBytes()) / 1048576))
        if profile { emit("time by op:\n" + OpProfiler.report()) }
    }
}
