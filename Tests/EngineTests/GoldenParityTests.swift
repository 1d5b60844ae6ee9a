import XCTest
import Foundation
import Engine
import ModelFormat
import TestKit

/// Parity with the Hugging Face golden fixtures in ../shared/fixtures: hidden states, user
/// vectors, scores, loss and every gradient (full fine-tuning and LoRA), within the
/// tolerances the fixtures specify (golden.json "tolerances").
final class GoldenParityTests: XCTestCase {
    struct Fixture {
        let model: ELLMRecModel
        let adapter: LoRAAdapter
        let golden: [String: Tensor]
        let sequences: [[Int32]]
        let targets: [Int32]
    }

    func load(_ name: String) throws -> Fixture {
        guard let shared = SharedData.directory() else {
            throw XCTSkip("../shared (or $SLMREC_SHARED) is not present: the Hugging Face golden fixtures cannot be checked")
        }
        let dir = shared.appendingPathComponent("fixtures/\(name)")
        let model = try ELLMRecModel.load(directory: dir.appendingPathComponent("checkpoint"))
        let adapter = try LoRAAdapter.load(directory: dir.appendingPathComponent("adapter"))
        let golden = try Safetensors.read(dir.appendingPathComponent("golden.safetensors"))
        let batch = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("batch.json"))) as! [String: Any]
        let seqs = (batch["sequences"] as! [[Int]]).map { $0.map(Int32.init) }
        let tg = (batch["targets"] as! [Int]).map(Int32.init)
        return Fixture(model: model, adapter: adapter, golden: golden, sequences: seqs, targets: tg)
    }

    func value(_ name: String, _ got: [Float], _ f: Fixture, file: StaticString = #filePath, line: UInt = #line) throws {
        let ref = try XCTUnwrap(f.golden[name], "golden has no \(name)").floats()
        let (ok, cmp) = allClose(got, ref, atol: 1e-4, rtol: 1e-4)
        XCTAssertTrue(ok, "\(name): \(cmp)", file: file, line: line)
    }

    func grad(_ name: String, _ got: [Float], _ f: Fixture, file: StaticString = #filePath, line: UInt = #line) throws {
        let ref = try XCTUnwrap(f.golden[name], "golden has no \(name)").floats()
        let (ok, cmp) = closeToMax(got, ref, atol: 1e-6, rtol: 1e-3)
        XCTAssertTrue(ok, "\(name): \(cmp)", file: file, line: line)
        XCTAssertGreaterThan(cmp.maxRef, 0, "\(name) is all zero in the golden file")
    }

    func loss(_ name: String, _ got: Float, _ f: Fixture) throws {
        let ref = try XCTUnwrap(f.golden[name]).floats()[0]
        XCTAssertEqual(got, ref, accuracy: 1e-5 + 1e-5 * abs(ref), name)
    }

    func checkFull(_ name: String) throws {
        let f = try load(name)
        let m = f.model, d = m.dims
        let batch = try PackedBatch(sequences: f.sequences, targets: f.targets, dims: d)
        let grads = ParamSet(layout: m.params.layout)
        let a = m.forward(batch, training: true)
        m.backward(a, BackwardRequest(grads: grads))
        for k in 0...d.layers { try value("hidden.\(k)", a.hiddenState(k, dims: d), f) }
        try value("last_hidden", a.lastHidden.array, f)
        try value("user", a.user.array, f)
        try value("scores", a.scores.array, f)
        try loss("loss", a.loss, f)
        var checked = 0
        for e in m.params.layout.entries {
            try grad("grad.\(e.name)", grads.values(e.name), f)
            checked += 1
        }
        XCTAssertEqual(checked, f.golden.keys.filter { $0.hasPrefix("grad.") }.count, "every golden gradient is compared")
        // Inference path (no saved activations) gives the same user vectors.
        try value("user", m.infer(try PackedBatch(sequences: f.sequences, targets: nil, dims: d)).user.array, f)
    }

    func checkLoRA(_ name: String) throws {
        let f = try load(name)
        let m = f.model, d = m.dims
        try f.adapter.validate(against: d.config(), source: name)
        let lora = try LoRAWeights(adapter: f.adapter, dims: d)
        m.lora = lora
        let batch = try PackedBatch(sequences: f.sequences, targets: f.targets, dims: d)
        let lg = ParamSet(layout: lora.params.layout)
        let a = m.forward(batch, training: true)
        m.backward(a, BackwardRequest(grads: nil, loraGrads: lg))
        try value("lora.user", a.user.array, f)
        try value("lora.scores", a.scores.array, f)
        try loss("lora.loss", a.loss, f)
        var checked = 0
        for e in lora.params.layout.entries {
            // model.layers.0.self_attn.q_proj.lora_A → lora.grad.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
            try grad("lora.grad.base_model.model.\(e.name).weight", lg.values(e.name), f)
            checked += 1
        }
        XCTAssertEqual(checked, f.golden.keys.filter { $0.hasPrefix("lora.grad.") }.count)
    }

    func testTinyPublicFullFineTuning() throws { try checkFull("tiny-public") }
    func testTinySuffixFullFineTuning() throws { try checkFull("tiny-suffix") }
    func testTinyPublicLoRA() throws { try checkLoRA("tiny-public") }
    func testTinySuffixLoRA() throws { try checkLoRA("tiny-suffix") }
}
