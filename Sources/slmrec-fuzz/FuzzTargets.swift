import Foundation
import Common
import ModelFormat
import Engine
import GGUF
import Tokenizer
import RecData
import Toolbench
#if FUZZING
import CSystem
#endif

// Fuzz targets: one per parser entry point a user's file reaches (docs/reliability.md). Each
// writes the input where the real command would read it and calls the same entry point; an
// error thrown is the expected outcome for bad input, a crash (trap, sanitizer report, hang,
// runaway allocation) is a bug.
//
// Two builds of this one file:
// - `make fuzz`: `-sanitize=fuzzer,address -DFUZZING`: libFuzzer drives `fuzzOne`, the target
//   named by $FUZZ_TARGET (scripts/fuzz).
// - the normal build: a replay driver, `slmrec-fuzz TARGET FILE…`, which runs saved inputs
//   (the regression corpus the tests replay, and any crash libFuzzer saved).

enum FuzzTarget: String, CaseIterable {
    case safetensors, config, adapter, recipe, json, batch, gguf, tokenizer
    case sequences, movielensCSV = "movielens-csv", movielensDat = "movielens-dat", udata = "u-data"
    case amazonCSV = "amazon-csv", amazonJSON = "amazon-json", recboleInter = "recbole-inter"

    /// The prepare format a data target reads its input as.
    var format: InputFormat? { InputFormat(rawValue: rawValue) }
}

/// A scratch directory per process in memory-backed storage (inputs are written, not mmapped
/// from the fuzzer's buffer, exactly as a user's file would be).
let scratch: URL = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let u = URL(fileURLWithPath: base).appendingPathComponent("slmrec-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}()

/// A tokenizer for the `tokenizer` target: the vocabulary of $SLMREC_FUZZ_GGUF (SmolLM2's by
/// default via scripts/fuzz), loaded once.
let fuzzTokenizer: Tokenizer? = {
    guard let p = ProcessInfo.processInfo.environment["SLMREC_FUZZ_GGUF"] else { return nil }
    return try? GGUFFile(url: URL(fileURLWithPath: p)).tokenizer()
}()

func write(_ data: Data, _ name: String) -> URL {
    let u = scratch.appendingPathComponent(name)
    try? data.write(to: u)
    return u
}

/// Runs one input through `target`. Errors are the parsers' job; only their absence of
/// crashes is checked here.
func fuzzOne(_ target: FuzzTarget, _ data: Data) {
    switch target {
    case .safetensors:
        let url = write(data, "model.safetensors")
        if let f = try? SafetensorsFile(url: url) {
            for n in f.names.prefix(64) { _ = try? f.tensor(n) }
        }
    case .config:
        _ = try? ModelConfig.load(from: write(data, "config.json"))
    case .adapter:
        let dir = scratch.appendingPathComponent("adapter")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try? data.write(to: dir.appendingPathComponent(LoRAAdapter.configFile))
        _ = try? LoRAAdapter.load(directory: dir)
    case .recipe:
        // The first line, when it holds "=", is a `--set` override (the rest is the recipe).
        var body = data, overrides: [String] = []
        if let nl = data.firstIndex(of: 0x0A), let line = String(data: data[..<nl], encoding: .utf8), line.contains("=") {
            overrides = [line]; body = data[data.index(after: nl)...]
        }
        if let r = try? Recipe.parse(Data(body), path: "fuzz.json5", overrides: overrides) {
            _ = try? Planner.plan(r, registry: PassRegistry([]), baseDirectory: scratch)
        }
    case .json:
        _ = try? JSONValue.parse(data)
        _ = try? JSONText.parseJSON5(data, file: "fuzz.json5")
    case .batch:
        _ = try? BatchFile.load(write(data, "batch.json"))
    case .gguf:
        let url = write(data, "model.gguf")
        if let f = try? GGUFFile(url: url) {
            _ = try? f.tokenizerVocabulary()
            _ = try? LlamaGGUF(f)
        }
    case .tokenizer:
        if let t = fuzzTokenizer { _ = t.encode(String(decoding: data, as: UTF8.self)) }
    default:
        guard let format = target.format else { return }
        let input = write(data, "input.\(format == .amazonJSON ? "json" : format == .recboleInter ? "inter" : "txt")")
        let out = scratch.appendingPathComponent("prepared")
        try? FileManager.default.removeItem(at: out)
        // Both parsing modes on every input; the whole `data prepare` (grouping, k-core,
        // re-indexing, negatives, writing) only on inputs that parse strictly with at least one
        // interaction (a valid file), so that the common case — bytes that parsing rejects —
        // runs at parser speed instead of a prepared dataset's (≈ 60 inputs/s) while the later
        // steps still see every valid input.
        let options = PrepareOptions(input: input, output: out, format: format, kcore: 1, negatives: 3)
        var lenient = options
        lenient.skipBadLines = true
        let strict = try? DataPrepare.parseOnly(options)
        _ = try? DataPrepare.parseOnly(lenient)
        if let strict, strict.interactions > 0 {
            _ = try? DataPrepare.run(options, progress: false)
            try? FileManager.default.removeItem(at: out)
        }
    }
}

#if FUZZING
let selected: FuzzTarget = {
    guard let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"], let t = FuzzTarget(rawValue: name) else {
        logLine("slmrec-fuzz: set FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
        exit(2)
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    fuzzOne(selected, bytes.map { Data(bytes: $0, count: count) } ?? Data())
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver with our callback.
@_cdecl("slmrec_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in LLVMFuzzerTestOneInput(data, Int(size)) }
}
#else
@main
struct Replay {
    static func main() {
        let args = CommandLine.arguments.dropFirst()
        guard let name = args.first, let target = FuzzTarget(rawValue: name), args.count >= 2 else {
            logLine("usage: slmrec-fuzz TARGET FILE|DIR…  (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
            exit(64)
        }
        var files: [URL] = []
        for a in args.dropFirst() {
            let u = URL(fileURLWithPath: a)
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir), isDir.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: u.path)) ?? []
                files += names.sorted().filter { !$0.hasPrefix(".") }.map { u.appendingPathComponent($0) }
            } else {
                files.append(u)
            }
        }
        for f in files {
            guard let d = FileManager.default.contents(atPath: f.path) else { logLine("slmrec-fuzz: cannot read \(f.path)"); exit(66) }
            fuzzOne(target, d)
        }
        try? FileManager.default.removeItem(at: scratch)
        print("slmrec-fuzz \(target.rawValue): \(files.count) inputs, no crash")
    }
}
#endif
