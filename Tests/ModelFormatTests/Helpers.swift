import Foundation
import XCTest
import Common
@testable import ModelFormat

/// The shared fixtures: `$SLMREC_SHARED` or `<repo>/../shared`.
func sharedDir() throws -> URL {
    if let env = ProcessInfo.processInfo.environment["SLMREC_SHARED"] { return URL(fileURLWithPath: env) }
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return repo.deletingLastPathComponent().appendingPathComponent("shared")
}

func fixture(_ name: String) throws -> URL {
    let u = try sharedDir().appendingPathComponent("fixtures").appendingPathComponent(name)
    guard FileManager.default.fileExists(atPath: u.appendingPathComponent("checkpoint/config.json").path) else {
        throw XCTSkip("fixture \(name) not found at \(u.path); set SLMREC_SHARED to the shared directory holding fixtures/")
    }
    return u
}

func tempDir() throws -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("mf-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

/// A hand-made safetensors file: 8-byte length, the header text as given, then the data.
func rawSafetensors(header: String, data: [UInt8], lengthOverride: UInt64? = nil) -> Data {
    var d = Data()
    let h = Array(header.utf8)
    withUnsafeBytes(of: (lengthOverride ?? UInt64(h.count)).littleEndian) { d.append(contentsOf: $0) }
    d.append(contentsOf: h)
    d.append(contentsOf: data)
    return d
}

/// Asserts that `body` throws a ModelFormatError naming `file` whose problem contains every needle.
func assertFormatError(_ body: () throws -> Void, file: String, contains needles: [String],
                       _ f: StaticString = #filePath, line: UInt = #line) {
    do {
        try body()
        XCTFail("expected an error containing \(needles)", file: f, line: line)
    } catch let e as ModelFormatError {
        XCTAssertTrue(e.file.hasSuffix(file) || e.file.contains(file), "error names \(e.file), expected \(file)", file: f, line: line)
        for n in needles {
            XCTAssertTrue(e.problem.contains(n), "problem \"\(e.problem)\" lacks \"\(n)\"", file: f, line: line)
        }
        XCTAssertFalse(e.fix.isEmpty, file: f, line: line)
        XCTAssertTrue(e.description.contains(e.problem), file: f, line: line)
    } catch {
        XCTFail("unexpected error type \(error)", file: f, line: line)
    }
}

/// A tiny synthetic config (no files).
func tinyConfig(layers: Int = 2, prompt: Int = 2, suffix: Int = 0) -> ModelConfig {
    ModelConfig(hiddenSize: 8, intermediateSize: 12, numLayers: layers, numHeads: 2, numKVHeads: 1,
                ellmrec: ELLMRecConfig(numItems: 5, itemDim: 4, promptLength: prompt, suffixLength: suffix, maxSeqLen: 6))
}

func tinyCheckpoint(_ c: ModelConfig, bias: Bool = true) -> Checkpoint {
    var t: [String: Tensor] = [:]
    var k: Float = 0
    for (n, s) in TensorNames.expected(for: c, inputProjBias: bias, outputProjBias: bias) {
        let count = s.reduce(1, *)
        t[n] = Tensor(floats: (0..<count).map { _ in k += 0.01; return sin(k) }, shape: s)
    }
    return Checkpoint(config: c, tensors: t)
}
