import Foundation
import Common
import XCTest
@testable import ModelFormat

final class ConfigTests: XCTestCase {
    func testFixtureConfigTypedView() throws {
        let c = try ModelConfig.load(from: try fixture("tiny-suffix").appendingPathComponent("checkpoint/config.json"))
        XCTAssertEqual(c.hiddenSize, 64)
        XCTAssertEqual(c.intermediateSize, 172)
        XCTAssertEqual(c.numLayers, 2)
        XCTAssertEqual(c.numHeads, 4)
        XCTAssertEqual(c.numKVHeads, 4)
        XCTAssertEqual(c.headDim, 16)
        XCTAssertEqual(c.rmsNormEps, 1e-6)
        XCTAssertEqual(c.ropeTheta, 10000)
        XCTAssertEqual(c.maxPositionEmbeddings, 128)
        XCTAssertEqual(c.torchDtype, "float32")
        XCTAssertEqual(c.ellmrec, ELLMRecConfig(numItems: 50, itemDim: 16, promptLength: 2, suffixLength: 3, maxSeqLen: 6))
        XCTAssertNil(c.quantization)
    }

    func testUnknownKeysAndNumberKindsSurviveRoundTrip() throws {
        let src = try fixture("tiny-public").appendingPathComponent("checkpoint/config.json")
        let c = try ModelConfig.load(from: src)
        let dir = try tempDir()
        let out = dir.appendingPathComponent("config.json")
        try c.write(to: out)
        let again = try ModelConfig.load(from: out)
        XCTAssertEqual(again, c)
        let original = try JSONValue.parse(try Data(contentsOf: src))
        let written = try JSONValue.parse(try Data(contentsOf: out))
        XCTAssertEqual(written, original)  // includes transformers_version, vocab_size, rope_theta 10000.0 as a float
        XCTAssertEqual(written["rope_theta"], .double(10000))
        XCTAssertEqual(written["hidden_size"], .int(64))
        let text = String(decoding: try Data(contentsOf: out), as: UTF8.self)
        XCTAssertTrue(text.contains("\"rope_theta\": 10000.0"))
        XCTAssertTrue(text.contains("\"rms_norm_eps\": 1e-06"))
        XCTAssertTrue(text.contains("\"hidden_size\": 64,"))
        // An integer-valued rope_theta stays an integer after a typed edit.
        var o = original.objectValue!
        o["rope_theta"] = .int(500000)
        o.removeValue(forKey: "rope_parameters")
        var c2 = try ModelConfig.parse(o, file: "x")
        c2.numLayers = 1
        let m = c2.mergedJSON
        XCTAssertEqual(m["rope_theta"], .int(500000))
        XCTAssertEqual(m["num_hidden_layers"], .int(1))
    }

    func testSyntheticConfigRoundTrip() throws {
        var c = tinyConfig(suffix: 2)
        c.quantization = .int8Channel(ignore: ["ellmrec.input_proj", "ellmrec.output_proj"])
        let dir = try tempDir()
        try c.write(to: dir.appendingPathComponent("config.json"))
        let back = try ModelConfig.load(from: dir.appendingPathComponent("config.json"))
        XCTAssertEqual(back.headDim, 4)
        XCTAssertEqual(back.numKVHeads, 1)
        XCTAssertEqual(back.ellmrec, c.ellmrec)
        XCTAssertEqual(back.quantization?.ignore, ["ellmrec.input_proj", "ellmrec.output_proj"])
        XCTAssertEqual(back.quantization?.weightBits, 8)
        XCTAssertEqual(back.raw["model_type"], .string("llama"))
        XCTAssertEqual(back.raw["architectures"], .array([.string("LlamaModel")]))
        let q = back.quantization!.raw
        XCTAssertEqual(q["config_groups"]?["group_0"]?["weights"]?["strategy"], .string("channel"))
        XCTAssertEqual(q["config_groups"]?["group_0"]?["input_activations"]?["dynamic"], .bool(true))
        XCTAssertEqual(q["format"], .string("int-quantized"))
    }

    /// Sizes a file claims are refused before anything is allocated, with the limit named.
    func testAbsurdSizesAreRefusedWithTheLimit() throws {
        func config(_ hidden: Int, layers: Int = 1, inter: Int = 4, items: Int = 3) -> [String: JSONValue] {
            ["hidden_size": .int(hidden), "intermediate_size": .int(inter), "num_hidden_layers": .int(layers), "num_attention_heads": .int(2),
             "ellmrec": .object(["num_items": .int(items), "item_dim": .int(2)])]
        }
        XCTAssertThrowsError(try ModelConfig.parse(config(1_000_000_000), file: "c.json")) {
            XCTAssertTrue("\($0)".contains("\"hidden_size\" is 1000000000, above this toolbench's limit of 131072"), "\($0)")
        }
        XCTAssertThrowsError(try ModelConfig.parse(config(8, items: 1 << 40), file: "c.json")) {
            XCTAssertTrue("\($0)".contains("\"ellmrec.num_items\""), "\($0)")
        }
        // Each size allowed, the product not: 4,096 layers × 3 × 131,072 × 131,072.
        XCTAssertThrowsError(try ModelConfig.parse(config(1 << 17, layers: 1 << 12, inter: 1 << 17), file: "c.json")) {
            XCTAssertTrue("\($0)".contains("parameters, above this toolbench's limit of \(1 << 36)"), "\($0)")
        }
        XCTAssertNoThrow(try ModelConfig.parse(config(8), file: "c.json"))
    }

    func testDefaultsAndAlternateSpellings() throws {
        let o: [String: JSONValue] = [
            "hidden_size": .int(8), "intermediate_size": .int(4), "num_hidden_layers": .int(1), "num_attention_heads": .int(2),
            "rope_theta": .int(1000), "rope_parameters": .object(["rope_type": .string("default"), "rope_theta": .double(2000)]),
            "dtype": .string("bfloat16"), "ellmrec": .object(["num_items": .int(3), "item_dim": .int(2)]),
        ]
        let c = try ModelConfig.parse(o, file: "c.json")
        XCTAssertEqual(c.ropeTheta, 2000)
        XCTAssertEqual(c.torchDtype, "bfloat16")
        XCTAssertEqual(c.numKVHeads, 2)
        XCTAssertEqual(c.headDim, 4)
        XCTAssertEqual(c.ellmrec.maxSeqLen, 50)
        XCTAssertEqual(c.ellmrec.promptLength, 0)
        XCTAssertEqual(c.ellmrec.suffixLength, 0)
    }

    /// The prompt's origin (`ellmrec.prompt_text` + `prompt_token_ids`, `trunk`): read, written
    /// back, dropped when a pass changed the prompt's length, refused when the pair disagrees.
    func testPromptTextKeys() throws {
        var o = base()
        o["ellmrec"] = .object(["num_items": .int(3), "item_dim": .int(2), "prompt_length": .int(2), "prompt_text": .string("Hi you"),
                                "prompt_token_ids": .array([.int(5), .int(9)]), "trunk": .string("SmolLM2.gguf")])
        var c = try ModelConfig.parse(o, file: "config.json")
        XCTAssertEqual(c.ellmrec.prompt, .init(text: "Hi you", tokenIds: [5, 9]))
        XCTAssertEqual(c.ellmrec.trunk, "SmolLM2.gguf")
        XCTAssertEqual(try ModelConfig.parse(c.mergedJSON, file: "again").ellmrec.prompt?.tokenIds, [5, 9])
        c.ellmrec.promptLength = 3
        let e = try XCTUnwrap(c.mergedJSON["ellmrec"]?.objectValue)
        XCTAssertNil(e["prompt_text"], "a prompt of another length no longer is that text")
        XCTAssertNil(e["prompt_token_ids"])
        XCTAssertEqual(e["trunk"], .string("SmolLM2.gguf"))
        try rejects({ $0["ellmrec"] = .object(["num_items": .int(3), "item_dim": .int(2), "prompt_length": .int(2),
                                              "prompt_text": .string("Hi"), "prompt_token_ids": .array([.int(5)])]) },
                    ["ellmrec.prompt_token_ids", "2 token ids"])
        try rejects({ $0["ellmrec"] = .object(["num_items": .int(3), "item_dim": .int(2), "trunk": .int(1)]) }, ["ellmrec.trunk", "not a string"])
    }

    private func base() -> [String: JSONValue] {
        ["hidden_size": .int(8), "intermediate_size": .int(4), "num_hidden_layers": .int(1), "num_attention_heads": .int(2),
         "ellmrec": .object(["num_items": .int(3), "item_dim": .int(2)])]
    }

    private func rejects(_ edit: (inout [String: JSONValue]) -> Void, _ needles: [String], line: UInt = #line) throws {
        var o = base()
        edit(&o)
        let dir = try tempDir()
        let u = dir.appendingPathComponent("config.json")
        try Data(JSONText.prettyString(.object(o)).utf8).write(to: u)
        assertFormatError({ _ = try ModelConfig.load(from: u) }, file: "config.json", contains: needles, line: line)
    }

    func testRejections() throws {
        for key in ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"] {
            try rejects({ $0.removeValue(forKey: key) }, ["missing required key \"\(key)\""])
        }
        try rejects({ $0["ellmrec"] = .object(["item_dim": .int(2)]) }, ["ellmrec.num_items"])
        try rejects({ $0["ellmrec"] = .object(["num_items": .int(2)]) }, ["ellmrec.item_dim"])
        try rejects({ $0.removeValue(forKey: "ellmrec") }, ["ellmrec"])
        try rejects({ $0["hidden_act"] = .string("gelu") }, ["hidden_act", "gelu"])
        try rejects({ $0["rope_scaling"] = .object(["type": .string("linear"), "factor": .double(2)]) }, ["rope_scaling", "unsupported RoPE scaling"])
        try rejects({ $0["rope_parameters"] = .object(["rope_type": .string("llama3"), "rope_theta": .int(10)]) }, ["rope_type", "llama3"])
        try rejects({ $0["num_key_value_heads"] = .int(3) }, ["not divisible by num_key_value_heads 3"])
        try rejects({ $0["num_attention_heads"] = .int(3); $0["num_key_value_heads"] = .int(3) }, ["hidden_size 8 is not divisible by num_attention_heads 3"])
        try rejects({ $0["hidden_size"] = .int(0) }, ["hidden_size", "positive"])
        try rejects({ $0["intermediate_size"] = .int(-4) }, ["intermediate_size", "positive"])
        try rejects({ $0["hidden_size"] = .string("8") }, ["not an integer"])
        try rejects({ $0["torch_dtype"] = .string("int4") }, ["int4"])
        try rejects({ $0["quantization_config"] = .object(["quant_method": .string("gptq")]) }, ["quantization_config", "gptq"])
        let dir = try tempDir()
        let u = dir.appendingPathComponent("config.json")
        try Data("{\"hidden_size\": 8,".utf8).write(to: u)
        assertFormatError({ _ = try ModelConfig.load(from: u) }, file: "config.json", contains: ["not valid JSON"])
    }

    func testJSONValueCodableAndParser() throws {
        let text = #"{"a": [1, 2.5, -3e2, true, null, "x\n\u00e9\ud83d\ude00"], "b": {"c": NaN}}"#
        let v = try JSONValue.parse(Data(text.utf8))
        XCTAssertEqual(v["a"]?.arrayValue?[0], .int(1))
        XCTAssertEqual(v["a"]?.arrayValue?[2], .double(-300))
        XCTAssertEqual(v["a"]?.arrayValue?[5], .string("x\né😀"))
        XCTAssertTrue(v["b"]?["c"]?.doubleValue?.isNaN ?? false)
        let plain = try JSONValue.parse(Data(#"{"k": [1, "s", {"z": false}]}"#.utf8))
        let round = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(plain))
        XCTAssertEqual(round, plain)
        XCTAssertThrowsError(try JSONValue.parse(Data("[1, 2".utf8)))
        XCTAssertThrowsError(try JSONValue.parse(Data(String(repeating: "[", count: 1000).utf8)))
    }
}
