import XCTest
import Foundation
import Engine
import ModelFormat
import TestKit

/// Parity with PyTorch on the real shape of a pretrained trunk: an E-LLMRec over the first 2
/// decoder layers and the final norm of SmolLM2-135M-Instruct (hidden 576, intermediate 1536,
/// 9 heads, 3 KV heads, head_dim 64, RoPE θ 1e5, ε 1e-5), read by our own GGUF import, against
/// the goldens of Fixtures/smollm2-slice (scripts/make-smollm2-fixture.py: transformers' GGUF
/// loader + PEFT). Hidden states, user vectors, scores and loss without the adapter; with the
/// PEFT adapter (r 4 on gate/up/down, non-zero B) the outputs, every LoRA gradient and the
/// head's gradients. The tiny shared fixtures cannot catch what only a real trunk has: GQA 9/3,
/// θ 1e5, Q4_1/Q8_0 dequantization, a 15-token prompt and a 5-token suffix from real token
/// embeddings, residual activations in the hundreds.
final class SmolLM2ParityTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().appendingPathComponent("Fixtures/smollm2-slice")

    /// The GGUF scripts/fetch-smollm2 fetches.
    static func gguf() throws -> URL {
        guard let u = FetchedFiles.present(FetchedFiles.smollm2) else { throw XCTSkip(FetchedFiles.missing(FetchedFiles.smollm2)) }
        return u
    }

    struct Fixture {
        let model: ELLMRecModel
        let headNames: [String]
        let golden: [String: Tensor]
        let sequences: [[Int32]]
        let targets: [Int32]
        let tolerances: [String: (atol: Float, rtol: Float)]
    }

    func load() throws -> Fixture {
        let url = try Self.gguf()
        let dir = Self.fixture
        let meta = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("golden.json"))) as? [String: Any])
        let base = try XCTUnwrap(meta["base"] as? [String: Any])
        // The goldens belong to one file: a different GGUF fails here, not as a wall of diffs.
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int)
        XCTAssertEqual(size, 98_362_432, "\(url.path) is not the GGUF the fixture was made from (sha256 \(base["gguf_sha256"] ?? "?")); rerun scripts/fetch-smollm2")
        let cfg = try XCTUnwrap(meta["config"] as? [String: Any])
        let prompt = try XCTUnwrap((meta["prompt"] as? [String: Any])?["token_ids"] as? [Int])
        let suffix = try XCTUnwrap((meta["suffix"] as? [String: Any])?["token_ids"] as? [Int])

        var imp = TrunkImport(numItems: try XCTUnwrap(cfg["num_items"] as? Int))
        imp.keepLayers = try XCTUnwrap(cfg["num_hidden_layers"] as? Int)
        imp.itemDim = try XCTUnwrap(cfg["item_dim"] as? Int)
        imp.promptTokenIds = prompt
        imp.suffixTokenIds = suffix
        let model = try ELLMRecModel(checkpoint: try imp.wrap(base: url))
        let d = model.dims
        XCTAssertEqual([d.hidden, d.intermediate, d.layers, d.heads, d.kvHeads, d.headDim, d.promptLength, d.suffixLength],
                       [576, 1536, 2, 9, 3, 64, 15, 5])
        XCTAssertEqual(d.ropeTheta, 100000)
        XCTAssertEqual(d.rmsEps, Float(1e-5))

        // The prompt and suffix rows our import gathered from the Q8_0 token_embd are the ones
        // PyTorch used: d·q of an f16 scale and an int8 is exact in fp32, so they are equal.
        let head = try Safetensors.read(dir.appendingPathComponent("head.safetensors"))
        for name in [ParamName.prompt, ParamName.suffix] {
            let ref = try XCTUnwrap(head[name], "head.safetensors has no \(name)").floats()
            let got = model.params.values(name)
            XCTAssertEqual(got.count, ref.count, name)
            let diff = zip(got, ref).map { abs($0 - $1) }.max() ?? 0
            XCTAssertEqual(diff, 0, "\(name) from the GGUF's token_embd differs from transformers' dequantization: max|diff| \(diff)")
        }
        // The fixture's head replaces the import's fresh one (every ellmrec.* tensor of the layout).
        let headNames = model.params.layout.entries.map(\.name).filter { $0.hasPrefix("ellmrec.") }
        XCTAssertEqual(Set(headNames), Set(head.keys), "head.safetensors holds exactly the model's ellmrec.* tensors")
        for name in headNames {
            model.params.set(name, try XCTUnwrap(head[name], "head.safetensors has no \(name)").floats())
        }

        let batch = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("batch.json"))) as? [String: Any])
        let seqs = try XCTUnwrap(batch["sequences"] as? [[Int]]).map { $0.map(Int32.init) }
        let tg = try XCTUnwrap(batch["targets"] as? [Int]).map(Int32.init)
        var tol: [String: (atol: Float, rtol: Float)] = [:]
        let groups = try XCTUnwrap((meta["tolerances"] as? [String: Any])?["groups"] as? [String: [Double]])
        for (k, v) in groups { tol[k] = (Float(v[0]), Float(v[1])) }
        return Fixture(model: model, headNames: headNames, golden: try Safetensors.read(dir.appendingPathComponent("golden.safetensors")),
                       sequences: seqs, targets: tg, tolerances: tol)
    }

    /// Every comparison of one test, so a failure message shows max |diff| for all tensors, not
    /// just the first bad one ($SLMREC_PARITY_TABLE=1 prints it when all pass, too).
    final class Table {
        var rows: [String] = []
        var failed: [String] = []
        func add(_ name: String, _ ok: Bool, _ cmp: Comparison, _ rule: String) {
            rows.append((ok ? "  " : "✗ ") + name.padding(toLength: max(72, name.count), withPad: " ", startingAt: 0)
                        + String(format: " max|diff| %.3g  max|ref| %.3g  rel %.2g  (%@)", cmp.maxAbs, cmp.maxRef, cmp.rel, rule as NSString))
            if !ok { failed.append(name) }
        }
        func check(file: StaticString = #filePath, line: UInt = #line) {
            if ProcessInfo.processInfo.environment["SLMREC_PARITY_TABLE"] != nil { print(rows.joined(separator: "\n")) }
            XCTAssertTrue(failed.isEmpty, "\(failed.count) of \(rows.count) tensors outside tolerance (\(failed.joined(separator: ", "))):\n" + rows.joined(separator: "\n"),
                          file: file, line: line)
        }
    }

    func value(_ name: String, _ got: [Float], _ f: Fixture, _ t: Table) throws {
        let ref = try XCTUnwrap(f.golden[name], "golden has no \(name)").floats()
        XCTAssertEqual(got.count, ref.count, name)
        guard got.count == ref.count else { return }
        let tol = f.tolerances[name.hasSuffix("loss") ? "loss" : "value"]!
        let (ok, cmp) = allClose(got, ref, atol: tol.atol, rtol: tol.rtol)
        t.add(name, ok, cmp, "|a-b| <= \(tol.atol) + \(tol.rtol)·|ref|")
    }

    func grad(_ name: String, _ got: [Float], _ f: Fixture, _ t: Table) throws {
        let ref = try XCTUnwrap(f.golden[name], "golden has no \(name)").floats()
        XCTAssertEqual(got.count, ref.count, name)
        guard got.count == ref.count else { return }
        let tol = f.tolerances["grad"]!
        let (ok, cmp) = closeToMax(got, ref, atol: tol.atol, rtol: tol.rtol)
        t.add(name, ok && cmp.maxRef > 0, cmp, "max|a-b| <= \(tol.atol) + \(tol.rtol)·max|ref|" + (cmp.maxRef > 0 ? "" : "; all zero in the golden file"))
    }

    func testSmolLM2SliceForward() throws {
        let f = try load()
        let m = f.model, d = m.dims
        let t = Table()
        let a = m.forward(try PackedBatch(sequences: f.sequences, targets: f.targets, dims: d), training: true)
        for k in 0...d.layers { try value("hidden.\(k)", a.hiddenState(k, dims: d), f, t) }
        try value("last_hidden", a.lastHidden.array, f, t)
        try value("user", a.user.array, f, t)
        try value("scores", a.scores.array, f, t)
        try value("loss", [a.loss], f, t)
        // The inference path (no saved activations) gives the same users and scores.
        let inf = m.infer(try PackedBatch(sequences: f.sequences, targets: nil, dims: d))
        try value("user", inf.user.array, f, t)
        try value("scores", inf.scores.array, f, t)
        t.check()
    }

    func testSmolLM2SliceLoRA() throws {
        let f = try load()
        let m = f.model, d = m.dims
        let adapter = try LoRAAdapter.load(directory: Self.fixture.appendingPathComponent("adapter"))
        try adapter.validate(against: d.config(), source: "smollm2-slice")
        let lora = try LoRAWeights(adapter: adapter, dims: d)
        XCTAssertEqual(lora.scaling, 1)
        m.lora = lora
        let grads = ParamSet(layout: m.params.layout)
        let lg = ParamSet(layout: lora.params.layout)
        let a = m.forward(try PackedBatch(sequences: f.sequences, targets: f.targets, dims: d), training: true)
        m.backward(a, BackwardRequest(grads: grads, trainable: Set(f.headNames), loraGrads: lg))
        let t = Table()
        try value("lora.user", a.user.array, f, t)
        try value("lora.scores", a.scores.array, f, t)
        try value("lora.loss", [a.loss], f, t)
        var checked = 0
        for e in lora.params.layout.entries {
            // model.layers.0.mlp.gate_proj.lora_A → lora.grad.base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight
            try grad("lora.grad.base_model.model.\(e.name).weight", lg.values(e.name), f, t)
            checked += 1
        }
        XCTAssertEqual(checked, f.golden.keys.filter { $0.hasPrefix("lora.grad.") }.count, "every golden LoRA gradient is compared")
        // The head trains with the adapter: d lora.loss / d each ellmrec.* tensor.
        for name in f.headNames { try grad("grad.\(name)", grads.values(name), f, t) }
        XCTAssertEqual(f.headNames.count, f.golden.keys.filter { $0.hasPrefix("grad.") }.count, "every golden head gradient is compared")
        t.check()
    }
}
