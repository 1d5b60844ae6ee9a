import Foundation
import Common
import CommandKit
import Engine

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

    func run() throws {
        guard let cfg = BenchConfig.named(config.rawValue) else { throw ValidationError("unknown config \(config.rawValue)") }
        #if DEBUG
        logLine("warning: this is a debug build; time a release build (make build, .build/release/slmrec bench)")
        #endif
        let sg = measureSgemmGFLOPs()
        OpProfiler.enabled = profile
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
        emit(String(format: "%-40@ %12@ %12@ %7@ %9@", "row" as NSString, "slmrec" as NSString, "PyTorch" as NSString, "ratio" as NSString, "GFLOP/s" as NSString))
        for (i, r) in rows.enumerated() {
            let b = base.map { String(format: "%.1f", $0[i]) } ?? "-"
            let ratio = base.map { String(format: "%.2fx", r.rate / $0[i]) } ?? "-"
            emit(String(format: "%-40@ %8.1f %@ %12@ %7@ %9.1f", r.name as NSString, r.rate, r.unit as NSString, b as NSString, ratio as NSString, r.gflops))
        }
        emit(String(format: "peak RSS %.0f MiB", Double(rss) / 1048576))
        if profile { emit("time by op (all rows):\n" + OpProfiler.report()) }
    }
}
