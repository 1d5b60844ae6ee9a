import Foundation
import Common
import XCTest
@testable import ModelFormat

final class LoRATests: XCTestCase {
    /// W + scaling · B · A computed naively must equal PEFT's merged weights: this proves the
    /// prefix / name mapping and the scaling.
    func testFixtureAdaptersMatchPEFTMerge() throws {
        for name in ["tiny-public", "tiny-suffix"] {
            let fx = try fixture(name)
            let ck = try Checkpoint.load(directory: fx.appendingPathComponent("checkpoint"))
            let ad = try LoRAAdapter.load(directory: fx.appendingPathComponent("adapter"))
            XCTAssertEqual(ad.r, 4)
            XCTAssertEqual(ad.alpha, 8)
            XCTAssertEqual(ad.scaling, 2)
            XCTAssertEqual(ad.targetModules, TensorNames.linearModules)
            XCTAssertEqual(ad.weights.count, 14)
            try ad.validate(against: ck.config, source: name)
            let golden = try SafetensorsFile(url: fx.appendingPathComponent("golden.safetensors"))
            var checked = 0
            for (module, w) in ad.weights {
                let W = try ck.tensors[module + ".weight"]!.floats()
                let A = try w.a.floats(), B = try w.b.floats()
                let out = w.b.shape[0], r = w.a.shape[0], inn = w.a.shape[1]
                let merged = try golden.floats("merged." + module + ".weight")
                var maxErr: Float = 0
                for o in 0..<out {
                    for i in 0..<inn {
                        var s: Float = 0
                        for k in 0..<r { s += B[o * r + k] * A[k * inn + i] }
                        maxErr = max(maxErr, abs(W[o * inn + i] + ad.scaling * s - merged[o * inn + i]))
                    }
                }
                XCTAssertLessThan(maxErr, 1e-5, "\(name) \(module)")
                checked += 1
            }
            XCTAssertEqual(checked, 14)
        }
    }

    func testSaveReloadRoundTrip() throws {
        let fx = try fixture("tiny-public")
        let ad = try LoRAAdapter.load(directory: fx.appendingPathComponent("adapter"))
        let dir = try tempDir().appendingPathComponent("adapter")
        try ad.save(to: dir)
        let back = try LoRAAdapter.load(directory: dir)
        XCTAssertEqual(back.r, ad.r)
        XCTAssertEqual(back.alpha, ad.alpha)
        XCTAssertEqual(back.targetModules, ad.targetModules)
        XCTAssertEqual(back.raw, ad.raw)  // every key of adapter_config.json kept
        XCTAssertEqual(Set(back.weights.keys), Set(ad.weights.keys))
        for (k, w) in ad.weights {
            XCTAssertEqual(back.weights[k]?.a, w.a)
            XCTAssertEqual(back.weights[k]?.b, w.b)
        }
        // Same tensor bytes as the PEFT-written file.
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("adapter_model.safetensors")),
                       try Data(contentsOf: fx.appendingPathComponent("adapter/adapter_model.safetensors")))
    }

    func testSyntheticAdapterAndBarePrefix() throws {
        let c = tinyConfig(layers: 1)
        var w: [String: (a: Tensor, b: Tensor)] = [:]
        for m in ["q_proj", "v_proj"] {
            let s = TensorNames.linearShape(m, c)
            w[TensorNames.linear(0, m)] = (Tensor(floats: [Float](repeating: 0.1, count: 2 * s[1]), shape: [2, s[1]]),
                                           Tensor(floats: [Float](repeating: 0.2, count: s[0] * 2), shape: [s[0], 2]))
        }
        let ad = LoRAAdapter(r: 2, alpha: 3, targetModules: ["q_proj", "v_proj"], weights: w)
        try ad.validate(against: c, source: "mem")
        XCTAssertEqual(ad.scaling, 1.5)
        let dir = try tempDir().appendingPathComponent("a")
        try ad.save(to: dir)
        let cfg = try JSONValue.parse(try Data(contentsOf: dir.appendingPathComponent("adapter_config.json")))
        XCTAssertEqual(cfg["peft_type"], .string("LORA"))
        XCTAssertEqual(cfg["lora_alpha"], .int(3))
        XCTAssertEqual(cfg["r"], .int(2))
        XCTAssertEqual(try SafetensorsFile(url: dir.appendingPathComponent("adapter_model.safetensors")).names.first,
                       "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        // Re-key the file with the bare-LlamaModel prefix; it must load to the same modules.
        let st = try Safetensors.read(dir.appendingPathComponent("adapter_model.safetensors"))
        var bare: [String: Tensor] = [:]
        for (k, v) in st { bare[k.replacingOccurrences(of: "base_model.model.model.layers.", with: "base_model.model.layers.")] = v }
        try Safetensors.write(bare, to: dir.appendingPathComponent("adapter_model.safetensors"))
        let back = try LoRAAdapter.load(directory: dir)
        XCTAssertEqual(Set(back.weights.keys), ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"])

        var wrongShape = ad
        wrongShape.weights["model.layers.0.self_attn.q_proj"]?.b = Tensor(floats: [Float](repeating: 0, count: 6), shape: [3, 2])
        assertFormatError({ try wrongShape.validate(against: c, source: "adp") }, file: "adp", contains: ["q_proj.lora_B", "[3, 2]", "expected [8, 2]"])
        var missing = ad
        missing.weights.removeValue(forKey: "model.layers.0.self_attn.v_proj")
        assertFormatError({ try missing.validate(against: c, source: "adp") }, file: "adp", contains: ["missing", "v_proj"])
        var extra = ad
        extra.weights["model.layers.0.mlp.up_proj"] = w["model.layers.0.self_attn.q_proj"]
        assertFormatError({ try extra.validate(against: c, source: "adp") }, file: "adp", contains: ["unexpected", "up_proj"])
    }

    /// Copies the fixture adapter, edits its config, and expects a named rejection.
    private func rejects(_ edit: (inout [String: JSONValue]) -> Void, _ needles: [String], line: UInt = #line) throws {
        let fx = try fixture("tiny-public")
        let dir = try tempDir()
        try FileManager.default.copyItem(at: fx.appendingPathComponent("adapter/adapter_model.safetensors"), to: dir.appendingPathComponent("adapter_model.safetensors"))
        var o = try JSONValue.parse(try Data(contentsOf: fx.appendingPathComponent("adapter/adapter_config.json"))).objectValue ?? [:]
        edit(&o)
        try Data(JSONText.prettyString(.object(o)).utf8).write(to: dir.appendingPathComponent("adapter_config.json"))
        assertFormatError({ _ = try LoRAAdapter.load(directory: dir) }, file: "adapter_config.json", contains: needles, line: line)
    }

    func testRejectsUnsupportedOptions() throws {
        try rejects({ $0["use_rslora"] = .bool(true) }, ["use_rslora"])
        try rejects({ $0["use_dora"] = .bool(true) }, ["use_dora"])
        try rejects({ $0["fan_in_fan_out"] = .bool(true) }, ["fan_in_fan_out"])
        try rejects({ $0["target_modules"] = .string(".*proj") }, ["target_modules", ".*proj"])
        try rejects({ $0["peft_type"] = .string("IA3") }, ["IA3"])
        try rejects({ $0["layers_to_transform"] = .array([.int(0)]) }, ["layers_to_transform"])
        try rejects({ $0["rank_pattern"] = .object(["q_proj": .int(2)]) }, ["rank_pattern"])
        try rejects({ $0["bias"] = .string("all") }, ["bias"])
        try rejects({ $0["target_modules"] = .array([.string("embed_tokens")]) }, ["embed_tokens"])
    }

    func testRejectsMissingLoraB() throws {
        let fx = try fixture("tiny-public")
        let dir = try tempDir()
        try FileManager.default.copyItem(at: fx.appendingPathComponent("adapter/adapter_config.json"), to: dir.appendingPathComponent("adapter_config.json"))
        var st = try Safetensors.read(fx.appendingPathComponent("adapter/adapter_model.safetensors"))
        st.removeValue(forKey: "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight")
        try Safetensors.write(st, to: dir.appendingPathComponent("adapter_model.safetensors"))
        assertFormatError({ _ = try LoRAAdapter.load(directory: dir) }, file: "adapter_model.safetensors",
                          contains: ["model.layers.1.mlp.up_proj", "no lora_B"])
        st["base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"] = Tensor(floats: [0], shape: [1])
        st["base_model.model.model.layers.0.mlp.q_proj.lora_A.weight"] = Tensor(floats: [0], shape: [1])
        try Safetensors.write(st, to: dir.appendingPathComponent("adapter_model.safetensors"))
        assertFormatError({ _ = try LoRAAdapter.load(directory: dir) }, file: "adapter_model.safetensors",
                          contains: ["unexpected tensor", "mlp.q_proj"])
    }
}
