import Foundation
import Cluster
import Common
import CommandKit
import Engine
import RecData
import Training

enum BenchSize: String, CaseIterable, ExpressibleByArgument { case tiny, small, medium, smollm2_8 = "smollm2-8" }

// No row here is divided by a figure this process did not measure: PyTorch's rates from
// another machine read 0.68x on an AVX2 machine where the same-run ratio is 1.15x.
// `make bench-compare` runs this command and scripts/bench-pytorch.py on one machine, one
// after the other, and prints the ratios (scripts/bench-ratios.py).

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a full fine-tuning step, a LoRA step and full-ranking inference (release builds only).",
        discussion: "small: hidden 256, intermediate 688, 8 layers, 4 heads, 3,000 items, item dim 64, prompt 4, 50 items per sequence, batch 64; medium: hidden 512, intermediate 1376, 8 heads, 10,000 items; smollm2-8: 8 layers of SmolLM2-135M's shape (hidden 576, intermediate 1536, 9 heads, 3 KV heads), 18,357 items, prompt 15 + suffix 5 tokens, LoRA r 16 on gate/up/down with dropout 0.05. SLMREC_BENCH_ROWS=lora_step (comma-separated row ids) times only those rows. Prints the machine's CPU model and vector ISA, the BLAS threads, each row's rate and achieved GFLOP/s, peak RSS and the machine's sgemm GFLOP/s measured in the same run. It prints no ratio against PyTorch: `make bench-compare` measures both on this machine in one run and prints those.")

    @Option(help: "Model shape.") var config: BenchSize = .small
    @Option(help: "Seconds of timing per row (median of repeated runs).") var seconds: Double = 4
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print where the time goes (per op).") var profile = false
    @Flag(help: "Compare fp32 and int8 (W8A8 dynamic) inference instead.") var int8 = false
    @Flag(help: "Instead: time writing and reading a 50 MiB safetensors file (in the system's temporary directory).") var io = false
    @Option(help: "Instead: time one all-positions training epoch of the config's 8-layer model on this prepared dataset.") var epoch: String?
    @Option(help: "With --epoch: the objective (all-positions or last).") var objective: String = "all-positions"
    @Option(help: "With --epoch: the loss over the items (full, streamed or sampled).") var softmax: ItemSoftmax?
    @Option(help: "With --epoch and --softmax sampled, or with --head: shared negatives per step.") var sampledNegatives: Int = 1024
    @Flag(help: "With --epoch: train the config's LoRA adapter (and the projections and prompt) instead of every weight.") var lora = false
    @Option(help: "With --epoch: time only the first N steps of the epoch.") var maxSteps: Int?
    @Option(help: """
        Instead: time the item head alone (loss forward + backward at the config's all-positions batch, item dim 64) \
        for these catalogue sizes (comma-separated, e.g. 10000,100000,376858): full (tiled exact), streamed and sampled \
        softmax, and its share of a training step of the config's trunk.
        """) var head: String?

    func validate() throws {
        let modes = [int8 ? "--int8" : nil, io ? "--io" : nil, epoch != nil ? "--epoch" : nil, head != nil ? "--head" : nil].compactMap { $0 }
        if softmax != nil && epoch == nil { throw ValidationError("--softmax applies to --epoch") }
        if (lora || maxSteps != nil) && epoch == nil { throw ValidationError("--lora and --max-steps apply to --epoch") }
        if let n = maxSteps, n < 1 { throw ValidationError("--max-steps must be at least 1 (got \(n))") }
        if sampledNegatives < 1 { throw ValidationError("--sampled-negatives must be at least 1 (got \(sampledNegatives))") }
        if modes.count > 1 { throw ValidationError("\(modes.joined(separator: " and ")) are separate benchmarks; run one at a time") }
        if !(seconds > 0) { throw ValidationError("--seconds must be positive (got \(seconds))") }
    }

    func run() throws {
        guard let cfg = BenchConfig.named(config.rawValue) else { throw ValidationError("unknown config \(config.rawValue)") }
        #if DEBUG
        logLine("warning: this is a debug build; time a release build (make build, .build/release/slmrec bench)")
        #endif
        let machine = MachineInfo.current()
        if io { try runIO(machine); return }
        let sg = measureSgemmGFLOPs()
        OpProfiler.enabled = profile
        if int8 { try runInt8(cfg, machine: machine, sgemm: sg); return }
        if let epoch { try runEpoch(cfg, data: epoch, machine: machine, sgemm: sg); return }
        if let head { try runHead(cfg, sizes: head, machine: machine, sgemm: sg); return }
        let rows = try EngineBenchmark.run(cfg, seconds: seconds, log: { logLine($0) })
        let rss = peakRSSBytes()
        if json {
            var obj = header(machine, sgemm: sg)
            obj["peak_rss_bytes"] = .int(Int(rss))
            obj["rows"] = .array(rows.map(rowJSON))
            emit(JSONText.prettyString(.object(obj)))
            return
        }
        emit("slmrec bench --config \(config.rawValue)")
        emit(machineLine(machine, sgemm: sg))
        var table = [["row", "rate", "ms/iter", "model GFLOP/s"]]
        for r in rows { table.append(textRow(r)) }
        emit(textTable(table))
        emit(String(format: "peak RSS %.0f MiB", Double(rss) / 1048576))
        emit("model GFLOP/s = the FLOPs of the model's full computation (PyTorch's) / time; inference computes the prompt once per batch and the last layer only at the scored position, so its rate is an effective one.")
        emit("ratios against PyTorch: make bench-compare (both measured here, in one run)")
        if profile { emit("time by op (all rows):\n" + OpProfiler.report()) }
    }

    /// What every JSON output starts with: the config, the machine and the threads, so that a
    /// reader can refuse to compare figures from different machines.
    private func header(_ m: MachineInfo, sgemm: Double?) -> [String: JSONValue] {
        var o: [String: JSONValue] = [
            "tool": .string("slmrec"), "version": .string(toolVersion), "config": .string(config.rawValue), "seconds_per_row": .number(seconds),
            "machine": .object(["cpu_model": .string(m.cpuModel), "isa": .string(m.isa), "avx2": .bool(m.avx2), "avx512f": .bool(m.avx512f),
                                "avx512_vnni": .bool(m.avx512vnni), "logical_cpus": .int(m.logicalCPUs)]),
            "threads": .int(BLASThreads.current),
        ]
        if let sgemm { o["sgemm_gflops"] = .number(sgemm) }
        return o
    }

    private func machineLine(_ m: MachineInfo, sgemm: Double?) -> String {
        let sg = sgemm.map { String(format: "; sgemm %.0f GFLOP/s", $0) } ?? ""
        return "machine: \(m.summary); \(BLASThreads.current) BLAS threads\(sg)"
    }

    private func rowJSON(_ r: BenchRow) -> JSONValue {
        var o: [String: JSONValue] = ["id": .string(r.id), "name": .string(r.name), "unit": .string(r.unit), "rate": .number(r.rate), "ms": .number(r.msPerIter)]
        if let g = r.gflops { o["gflops"] = .number(g) }
        return .object(o)
    }

    private func textRow(_ r: BenchRow) -> [String] {
        [r.name, String(format: "%.1f %@", r.rate, r.unit), String(format: "%.1f", r.msPerIter), r.gflops.map { String(format: "%.1f", $0) } ?? "-"]
    }

    /// safetensors write and read of one 50 MiB tensor: a benchmark row, where a unit test
    /// asserting a time limit would fail or pass with the machine's load.
    func runIO(_ machine: MachineInfo) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("slmrec-bench-io-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let rows = try EngineBenchmark.runIO(seconds: seconds, directory: dir)
        let rss = peakRSSBytes()
        if json {
            var obj = header(machine, sgemm: nil)
            obj["config"] = nil
            obj["peak_rss_bytes"] = .int(Int(rss))
            obj["rows"] = .array(rows.map(rowJSON))
            emit(JSONText.prettyString(.object(obj)))
            return
        }
        emit("slmrec bench --io   (file in \(dir.path); read back from the page cache)")
        emit("machine: \(machine.summary)")
        var table = [["row", "rate", "ms/iter"]]
        for r in rows { table.append(Array(textRow(r).prefix(3))) }
        emit(textTable(table))
        emit(String(format: "peak RSS %.0f MiB", Double(rss) / 1048576))
    }

    /// One training epoch on real data (the training issue's throughput row). Under mpirun
    /// (docs/scale-out.md) the epoch is data-parallel and the step splits into compute, the
    /// wait for the slowest rank (a barrier, timed apart) and the gradient all-reduce.
    func runEpoch(_ cfg: BenchConfig, data: String, machine: MachineInfo, sgemm sg: Double) throws {
        guard let obj = Objective(rawValue: objective) else { throw ValidationError("--objective must be all-positions or last") }
        let world = Cluster.world
        let ds = try PreparedDataset.load(directory: fileURL(data))
        var d = cfg.dims
        d.numItems = ds.numItems
        let model = ELLMRecModel.random(dims: d, seed: 1)
        let adapter = lora ? LoRAOptions(rank: cfg.lora.rank, alpha: cfg.lora.alpha, targets: cfg.lora.targets.map(\.module), dropout: cfg.lora.dropout) : nil
        let task = try FineTuneTask(model: model, lora: adapter, parts: TrainableParts(), seed: 1)
        var o = TrainerOptions()
        o.epochs = 1; o.objective = obj; o.validEvery = 1_000_000; o.batchSize = cfg.batch; o.lr = 1e-4
        if let n = maxSteps { o.maxSteps = n }
        o.softmaxChoice = softmax
        if softmax == .sampled { o.sampledNegativesChoice = sampledNegatives }
        // One directory for every rank: rank 0's name (a shared temporary directory on one
        // machine; on several, TMPDIR must be shared).
        var name = Array("slmrec-bench-epoch-\(getpid())".utf8)
        try world.broadcast(&name)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(String(decoding: name, as: UTF8.self))
        defer { if world.isLeader { try? FileManager.default.removeItem(at: dir) } }
        let trainer = try Trainer(task: task, dataset: ds, options: o, stateDirectory: dir)
        trainer.skipValidation = true
        trainer.separateAllreduceWait = true
        let samples = trainer.samples
        let steps = trainer.totalSteps
        let timed = maxSteps.map { _ in trainer.batches(epoch: 0).prefix(steps).flatMap { $0 }.map { samples[$0] } } ?? samples
        let targets = TrainingSamples.targetCount(timed, objective: obj)
        let r = try trainer.run()
        guard world.isLeader else { return }
        let flops = 3 * forwardFLOPs(d, seqLens: timed.map { $0.input.count }, scoredRows: targets)
        let sm = softmax ?? .full
        let floats = task.groups.reduce(0) { n, g in n + g.trainable.reduce(0) { $0 + (g.params.layout.entry($1)?.count ?? 0) } }
        emit("\(maxSteps.map { _ in "the first \(steps) steps of " } ?? "")one \(obj.rawValue) epoch of the \(d.layers)-layer model (hidden \(d.hidden)) on \(data), \(ds.numItems) items, softmax \(sm.rawValue)"
             + (sm == .sampled ? " (\(sampledNegatives) uniform negatives)" : "")
             + (lora ? ", LoRA r \(cfg.lora.rank) on \(cfg.lora.targets.map(\.module).joined(separator: "/"))" : ", full fine-tuning")
             + String(format: ", %d trainable floats (%.1f MB of gradient per step)", floats, Double(floats) * 4 / 1e6))
        emit(machineLine(machine, sgemm: sg) + (world.isDistributed ? ", \(world.size) ranks (mpirun)" : ", one process"))
        emit(textTable([
            ["examples", "targets", "wall time", "tokens/s", "targets/s", "GFLOP/s (full-softmax FLOPs)", "peak RSS", "sgemm GFLOP/s"],
            ["\(timed.count)", "\(targets)", String(format: "%.1f s", r.seconds), String(format: "%.0f", r.tokensPerSecond),
             String(format: "%.0f", Double(targets) / r.seconds), String(format: "%.1f", flops / r.seconds / 1e9),
             String(format: "%.0f MiB (rank 0)", Double(peakRSSBytes()) / 1048576), String(format: "%.0f", sg)],
        ]))
        if let dp = r.dataParallel {
            let per = { (x: Double) in String(format: "%.1f ms", 1000 * x / Double(max(dp.steps, 1))) }
            let wait = dp.waitSeconds ?? 0
            emit(textTable([
                ["per step (rank 0)", "total", "compute", "wait for slowest rank", "all-reduce", "bytes all-reduced", "all-reduce rate"],
                ["\(dp.steps) steps", per(r.seconds), per(r.seconds - dp.allreduceSeconds - wait), per(wait), per(dp.allreduceSeconds),
                 String(format: "%.2f MB", Double(dp.floatsPerStep) * 4 / 1e6),
                 String(format: "%.2f GB/s", Double(dp.floatsPerStep * 4 * dp.steps) / max(dp.allreduceSeconds, 1e-9) / 1e9)],
            ]))
        }
    }

    /// The item head alone: one training step's loss and gradients (user vectors and item table)
    /// for R = batch × sequence length rows, by softmax, against a catalogue of N items.
    func runHead(_ cfg: BenchConfig, sizes: String, machine: MachineInfo, sgemm sg: Double) throws {
        let ns = try sizes.split(separator: ",").map { f -> Int in
            guard let n = Int(f.trimmingCharacters(in: .whitespaces)), n >= 2 else {
                throw ValidationError("--head: \"\(f)\" is not a catalogue size ≥ 2 (e.g. 10000,100000,376858)")
            }
            return n
        }
        let rows = cfg.batch * cfg.seqLen, dim = cfg.dims.itemDim
        // The trunk's share: the config's full fine-tuning step at its own (small) catalogue,
        // less that catalogue's head, measured here.
        let trunkRows = try EngineBenchmark.run(cfg, seconds: seconds, log: { _ in }).filter { $0.id == "full_step" }
        var rng = SeededRNG(seed: 1)
        let u = (0..<(rows * dim)).map { _ in rng.nextNormal() * 0.1 }
        func headSeconds(_ mode: ItemSoftmax, n: Int) throws -> Double {
            var trng = SeededRNG(seed: 2)
            let table = (0..<((n + 1) * dim)).map { _ in trng.nextNormal() * 0.1 }
            let targets = (0..<rows).map { _ in Int32(1 + trng.nextInt(below: n)) }
            var du = [Float](repeating: 0, count: rows * dim), dt = [Float](repeating: 0, count: (n + 1) * dim)
            let sampler = try ItemSampler(distribution: .uniform, numItems: n, count: min(sampledNegatives, n))
            let ws = Workspace()
            var step = 0
            return EngineBenchmark.time(seconds) {
                let sample = mode == .sampled ? sampler.draw(seed: 1, step: step) : nil
                step += 1
                _ = targets.withUnsafeBufferPointer { tg in
                    ItemSoftmaxLoss.lossAndGradients(mode, sample: sample, du: &du, dtable: &dt, u: u, table: table, numItems: n, dim: dim,
                                                     targets: tg.baseAddress!, rows: rows, scale: 1 / Float(rows), workspace: ws)
                }
            }
        }
        let own = try headSeconds(.full, n: cfg.dims.numItems)
        let trunk = trunkRows.first.map { max(0, $0.msPerIter / 1000 - own) }
        emit("the item head of one training step: \(rows) rows (batch \(cfg.batch) × \(cfg.seqLen) positions), item dim \(dim); "
             + "sampled: \(sampledNegatives) uniform shared negatives")
        emit(machineLine(machine, sgemm: sg))
        if let trunk { emit(String(format: "trunk of the %@ config's full fine-tuning step (its %d-item head removed): %.1f ms", cfg.name, cfg.dims.numItems, trunk * 1000)) }
        var table = [["items N", "full (tiled exact) ms", "streamed ms", "sampled ms", "full share of a step", "sampled share"]]
        for n in ns {
            let f = try headSeconds(.full, n: n), st = try headSeconds(.streamed, n: n), sa = try headSeconds(.sampled, n: n)
            func share(_ h: Double) -> String { trunk.map { String(format: "%.0f%%", 100 * h / ($0 + h)) } ?? "-" }
            table.append(["\(n)", String(format: "%.1f", f * 1000), String(format: "%.1f", st * 1000), String(format: "%.1f", sa * 1000), share(f), share(sa)])
        }
        emit(textTable(table))
        emit(String(format: "peak RSS %.0f MiB", Double(peakRSSBytes()) / 1048576))
    }

    func runInt8(_ cfg: BenchConfig, machine: MachineInfo, sgemm sg: Double) throws {
        let r = try EngineBenchmark.runInt8(cfg, seconds: seconds, log: { logLine($0) })
        let rss = peakRSSBytes()
        if json {
            var obj = header(machine, sgemm: sg)
            obj["int8_kernels"] = .string(r.isa)
            obj["rows"] = .array([rowJSON(r.fp32), rowJSON(r.int8)])
            obj["fp32_users_per_s"] = .number(r.fp32.rate)
            obj["int8_users_per_s"] = .number(r.int8.rate)
            obj["int8_vs_fp32"] = .number(r.int8.rate / r.fp32.rate)
            obj["top10_overlap"] = .number(r.top10Overlap)
            obj["decoder_linear_bytes_fp32"] = .int(r.weightBytesFP32)
            obj["decoder_linear_bytes_int8"] = .int(r.weightBytesInt8)
            obj["peak_rss_bytes"] = .int(Int(rss))
            emit(JSONText.prettyString(.object(obj)))
            return
        }
        emit("slmrec bench --config \(config.rawValue) --int8   (int8 kernels: \(r.isa))")
        emit(machineLine(machine, sgemm: sg))
        emit(textTable([
            ["row", "users/s", "ms/iter", "vs our fp32"],
            [r.fp32.name, String(format: "%.1f", r.fp32.rate), String(format: "%.1f", r.fp32.msPerIter), "1.00x"],
            [r.int8.name, String(format: "%.1f", r.int8.rate), String(format: "%.1f", r.int8.msPerIter), String(format: "%.2fx", r.int8.rate / r.fp32.rate)],
        ]))
        emit(String(format: "top-10 overlap int8 vs fp32: %.3f", r.top10Overlap))
        emit(String(format: "decoder linear weights: %@ fp32 -> %@ int8 (%.2fx smaller)", fmtBytes(r.weightBytesFP32) as NSString, fmtBytes(r.weightBytesInt8) as NSString, Double(r.weightBytesFP32) / Double(r.weightBytesInt8)))
        emit(String(format: "peak RSS %.0f MiB", Double(rss) / 1048576))
        emit("against PyTorch's quantize_dynamic: make bench-compare (both measured here, in one run)")
        if profile { emit("time by op:\n" + OpProfiler.report()) }
    }
}
