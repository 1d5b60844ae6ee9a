import XCTest
import Foundation
import Common
import ModelFormat
import Engine
import Toolbench
import TestKit

/// Parses and plans every file in recipes/ with the real passes, through the built `slmrec`
/// binary (this target must not import the passes: the host never does). Each recipe's
/// inputs are pointed at a tiny 8-layer checkpoint, then at a 30-layer one (SmolLM2's depth)
/// when that fails (or a matching adapter when the input's name contains "adapter"), and
/// every var whose name contains "data" at a tiny dataset.
final class RecipesDirectoryTests: XCTestCase {
    func slmrecBinary() -> URL? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("slmrec"),
            SharedData.repoRoot.appendingPathComponent(".build/debug/slmrec"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    func testEveryRecipeParsesAndPlans() throws {
        guard let bin = slmrecBinary() else { throw XCTSkip("slmrec is not built (swift build --build-tests builds it)") }
        let dir = try tempDir("recipes")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Two input depths: our random-trunk recipes start from 8 layers, the pretrained-trunk
        // ones from SmolLM2-135M's 30. A recipe must plan with one of them.
        let depths = [8, 30]
        let data = dir.appendingPathComponent("data")
        var inputs: [Int: (ckpt: URL, adapter: URL)] = [:]
        for layers in depths {
            var d = TinyModels.dims(suffix: 0)   // recipes train with objective all-positions (no suffix)
            d.layers = layers
            let ck = TinyModels.model(d).checkpoint()
            let ckURL = dir.appendingPathComponent("ckpt\(layers)"), adURL = dir.appendingPathComponent("adapter\(layers)")
            try ck.save(to: ckURL)
            var w: [String: (a: Tensor, b: Tensor)] = [:]
            for l in 0..<d.layers {
                for m in ["q_proj", "v_proj"] {
                    let s = TensorNames.linearShape(m, ck.config)
                    w[TensorNames.linear(l, m)] = (Tensor(floats: [Float](repeating: 0.01, count: 2 * s[1]), shape: [2, s[1]]),
                                                   Tensor(floats: [Float](repeating: 0.01, count: s[0] * 2), shape: [s[0], 2]))
                }
            }
            try LoRAAdapter(r: 2, alpha: 4, targetModules: ["q_proj", "v_proj"], weights: w).save(to: adURL)
            inputs[layers] = (ckURL, adURL)
        }
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try (1...40).map { u in "\(u) " + (0..<8).map { String(1 + (u + $0 * 5) % 11) }.joined(separator: " ") }.joined(separator: "\n")
            .write(to: data.appendingPathComponent("sequences.txt"), atomically: true, encoding: .utf8)

        let recipes = SharedData.repoRoot.appendingPathComponent("recipes")
        let files = try FileManager.default.contentsOfDirectory(atPath: recipes.path).filter { $0.hasSuffix(".json5") }.sorted()
        XCTAssertFalse(files.isEmpty)
        for f in files {
            let url = recipes.appendingPathComponent(f)
            let tree = try JSONText.parseJSON5(Data(contentsOf: url), file: f)
            var failures: [String] = []
            for layers in depths {
                let (ckURL, adURL) = inputs[layers]!
                var args = ["run", "--dry-run", url.path]
                for name in (tree.objectValue?["inputs"]?.objectValue ?? [:]).keys.sorted() {
                    args += ["--set", "inputs.\(name)=\(name.contains("adapter") ? adURL.path : ckURL.path)"]
                }
                for name in (tree.objectValue?["vars"]?.objectValue ?? [:]).keys.sorted() where name.contains("data") {
                    args += ["--set", "vars.\(name)=\(data.path)"]
                }
                let p = Process()
                p.executableURL = bin
                p.arguments = args
                let out = Pipe(), err = Pipe()
                p.standardOutput = out
                p.standardError = err
                try p.run()
                let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                if p.terminationStatus == 0 && o.contains("plan OK") { failures = []; break }
                failures.append("\(layers)-layer inputs: exit \(p.terminationStatus): \(e)\(o)")
            }
            XCTAssertTrue(failures.isEmpty, "\(f) plans with none of the input depths \(depths): \(failures.joined(separator: " | "))")
        }
    }
}
