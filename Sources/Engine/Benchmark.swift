import Foundation
import Common

// `slmrec bench`: the engine's throughput on the fixed shapes, with the machine's
// sgemm rate measured in the same run so the numbers can be read against the hardware.

/// The adapter a bench config's LoRA row trains (scripts/bench-pytorch.py mirrors it with PEFT).
public struct BenchLoRA: Sendable, Equatable {
    public var rank: Int
    public var alpha: Float
    public var targets: [LinearKind]
    /// PEFT's lora_dropout (training forward only).
    public var dropout: Float = 0

    /// The first configs' adapter: r 8, alpha 16 on q and v, no dropout.
    public static let qv = BenchLoRA(rank: 8, alpha: 16, targets: [.q, .v])

    /// "LoRA step (r=8, q,v)": the row's name, as the PyTorch script names it.
    public var rowName: String {
        let mods = targets.map { $0.module.replacingOccurrences(of: "_proj", with: "") }.joined(separator: ",")
        return "LoRA step (r=\(rank), \(mods)" + (dropout > 0 ? ", dropout \(dropout)" : "") + ")"
    }
}

public struct BenchConfig: Sendable {
    public let name: String
    public let dims: ModelDims
    public let batch: Int
    public let seqLen: Int
    public let inferenceUsers: Int
    public var lora: BenchLoRA = .qv

    /// Every name `named` knows, smallest first.
    public static let names = ["tiny", "small", "medium", "smollm2-8"]

    public static func named(_ name: String) -> BenchConfig? {
        switch name {
        case "smollm2-8":
            // The shape of the pretrained trunk scripts/fetch-smollm2 fetches (SmolLM2-135M-Instruct:
            // hidden 576, intermediate 1536, 9 heads, 3 KV heads, head_dim 64, RoPE theta 1e5, RMSNorm
            // eps 1e-5), 8 of its 30 layers; Amazon Sports' 18,357 items (SLMRec's dataset); SLMRec's
            // prompt and suffix. promptLength 15 and suffixLength 5 are the token counts of
            // "Given the user's purchase history, predict next possible item to be purchased." and
            // "\n### Response:\n" under SmolLM2's tokenizer (no BOS: add_bos_token is false), obtained
            // with transformers 5.23: AutoTokenizer.from_pretrained(dir, gguf_file=
            // "SmolLM2-135M-Instruct.Q4_1.gguf")(text).input_ids; the same ids are in
            // Tests/EngineTests/Fixtures/smollm2-slice/golden.json. LoRA as SLMRec trains it: r 16,
            // alpha 16 on the MLP (gate, up, down), lora_dropout 0.05.
            return BenchConfig(name: name, dims: ModelDims(hidden: 576, intermediate: 1536, layers: 8, heads: 9, kvHeads: 3, headDim: 64,
                                                           numItems: 18357, itemDim: 64, promptLength: 15, suffixLength: 5, maxSeqLen: 50,
                                                           rmsNormEps: 1e-5, ropeTheta: 100000),
                               batch: 64, seqLen: 50, inferenceUsers: 512,
                               lora: BenchLoRA(rank: 16, alpha: 16, targets: [.gate, .up, .down], dropout: 0.05))
        case "small":
            return BenchConfig(name: name, dims: ModelDims(hidden: 256, intermediate: 688, layers: 8, heads: 4, numItems: 3000, itemDim: 64,
                                                           promptLength: 4, maxSeqLen: 50), batch: 64, seqLen: 50, inferenceUsers: 512)
        case "medium":
            return BenchConfig(name: name, dims: ModelDims(hidden: 512, intermediate: 1376, layers: 8, heads: 8, numItems: 10000, itemDim: 64,
                                                           promptLength: 4, maxSeqLen: 50), batch: 64, seqLen: 50, inferenceUsers: 512)
        case "tiny":
            return BenchConfig(name: name, dims: ModelDims(hidden: 64, intermediate: 172, layers: 2, heads: 4, numItems: 500, itemDim: 16,
                                                           promptLength: 4, maxSeqLen: 20), batch: 16, seqLen: 20, inferenceUsers: 64)
        default: return nil
        }
    }

    /// Random sequences of exactly `seqLen` items (the "50 items per sequence").
    public func sequences(_ n: Int, seed: UInt64) -> (seqs: [[Int32]], targets: [Int32]) {
        var rng = SeededRNG(seed: seed, stream: "bench-data")
        let seqs = (0..<n).map { _ in (0..<seqLen).map { _ in Int32(1 + rng.nextInt(below: dims.numItems)) } }
        let tg = (0..<n).map { _ in Int32(1 + rng.nextInt(below: dims.numItems)) }
        return (seqs, tg)
    }
}

/// FLOPs of one forward pass of the decoder + head on a packed batch (2 per multiply-add).
public func forwardFLOPs(_ d: ModelDims, seqLens: [Int], scoredRows: Int) -> Double {
    var f = 0.0
    let C = Double(d.hidden), I = Double(d.intermediate), q = Double(d.qDim), kv = Double(d.kvDim), hd = Double(d.headDim)
    for n0 in seqLens {
        let n = Double(n0 + d.promptLength + d.suffixLength)
        let perTok = 2 * C * (q + 2 * kv) + 2 * q * C + 3 * 2 * C * I
        f += Double(d.layers) * (n * perTok + 2 * 2 * Double(d.heads) * n * n * hd)
        f += Double(n0) * 2 * Double(d.itemDim) * C
    }
    f += Double(scoredRows) * (2 * C * Double(d.itemDim) + 2 * Double(d.itemDim) * Double(d.numItems + 1))
    return f
}

/// Measures the sgemm rate on a square-ish fp32 problem representative of the engine's shapes.
public func measureSgemmGFLOPs(size: Int = 1024, seconds: Double = 0.5) -> Double {
    let a = FloatBuffer(count: size * size), b = FloatBuffer(count: size * size), c = FloatBuffer(count: size * size)
    for i in 0..<(size * size) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
    sgemm(.none, .transpose, m: size, n: size, k: size, a: a.ptr, lda: size, b: b.ptr, ldb: size, c: c.ptr, ldc: size)
    var iters = 0
    let t0 = DispatchTime.now().uptimeNanoseconds
    var elapsed = 0.0
    repeat {
        sgemm(.none, .transpose, m: size, n: size, k: size, a: a.ptr, lda: size, b: b.ptr, ldb: size, c: c.ptr, ldc: size)
        iters += 1
        elapsed = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    } while elapsed < seconds
    return Double(iters) * 2 * pow(Double(size), 3) / elapsed / 1e9
}

/// The machine a benchmark runs on. A rate means something only next to another measured
/// on the same CPU in the same run (an AVX-512 VNNI machine and an AVX2 one differ by far
/// more than any engine change), so every bench output names the CPU and its vector ISA.
public struct MachineInfo: Sendable {
    public let cpuModel: String
    public let logicalCPUs: Int
    public let avx2: Bool
    public let avx512f: Bool
    public let avx512vnni: Bool

    /// The widest vector ISA the benchmarks' kernels can use, as the docs name it.
    public var isa: String {
        if avx512vnni { return "AVX-512 VNNI" }
        if avx512f { return "AVX-512" }
        if avx2 { return "AVX2" }
        return cpuModel == "unknown" ? "unknown" : "no AVX2"
    }

    /// One line for a bench header: "AMD EPYC, AVX2 (no AVX-512), 2 logical CPUs".
    public var summary: String {
        let isaText = avx512f ? isa : isa == "AVX2" ? "AVX2 (no AVX-512)" : isa
        return "\(cpuModel), \(isaText), \(logicalCPUs) logical CPUs"
    }

    /// Read from /proc/cpuinfo (Linux); elsewhere the model and flags are "unknown", not guessed.
    public static func current() -> MachineInfo {
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        guard let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else {
            return MachineInfo(cpuModel: "unknown", logicalCPUs: cpus, avx2: false, avx512f: false, avx512vnni: false)
        }
        var model = "unknown"
        var flags: Set<Substring> = []
        // The first processor's entries stand for all: the kernels pick one ISA per process.
        for line in s.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if key == "model name" && model == "unknown" && !value.isEmpty { model = value }
            if key == "flags" && flags.isEmpty { flags = Set(value.split(separator: " ")) }
        }
        return MachineInfo(cpuModel: model, logicalCPUs: cpus, avx2: flags.contains("avx2"),
                           avx512f: flags.contains("avx512f"), avx512vnni: flags.contains("avx512_vnni"))
    }
}

/// Which rows `EngineBenchmark.run` times: the ids in $SLMREC_BENCH_ROWS (comma-separated,
/// e.g. "lora_step"), else all. Lets `/usr/bin/time -v` or the peak RSS a bench prints
/// measure one row alone (the full step's gradients and AdamW moments are the largest buffers).
public func benchRowsSelected(_ all: [String]) -> Set<String> {
    guard let v = ProcessInfo.processInfo.environment["SLMREC_BENCH_ROWS"], !v.isEmpty else { return Set(all) }
    return Set(v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
}

/// Peak resident set size of this process, in bytes (Linux: VmHWM).
public func peakRSSBytes() -> Int {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return 0
}

@inline(__always) public func nowSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
