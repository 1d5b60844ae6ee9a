import XCTest
import Foundation
import ModelFormat
import TestKit

/// Bad input: each case exits non-zero with a message naming the file and the problem, never
/// crashes, and never leaves a partial output behind.
final class BadInputTests: XCTestCase {
    var dir: URL!
    var ck: String { dir.appendingPathComponent("ck").path }

    override func setUpWithError() throws {
        dir = try CLI.tmp("bad")
        let r = try CLI.run(["init", "--output", ck, "--items", "20", "--layers", "1", "--hidden", "16", "--intermediate", "24",
                             "--heads", "2", "--item-dim", "4", "--prompt-length", "1"])
        XCTAssertEqual(r.status, 0, r.all)
    }

    func copyCheckpoint(_ name: String, mutate: (URL) throws -> Void) throws -> String {
        let dst = dir.appendingPathComponent(name)
        try FileManager.default.copyItem(atPath: ck, toPath: dst.path)
        try mutate(dst)
        return dst.path
    }

    func expectFailure(_ args: [String], mentions: [String], noOutput: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try CLI.run(args)
        XCTAssertNotEqual(r.status, 0, "expected a failure: \(args)", file: file, line: line)
        XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr, file: file, line: line)
        for m in mentions { XCTAssertTrue(r.stderr.contains(m), "stderr should mention \(m): \(r.stderr)", file: file, line: line) }
        if let noOutput { XCTAssertFalse(FileManager.default.fileExists(atPath: noOutput), "partial output left at \(noOutput)", file: file, line: line) }
    }

    func testTruncatedSafetensors() throws {
        let bad = try copyCheckpoint("trunc") { d in
            let f = d.appendingPathComponent("model.safetensors")
            let data = try Data(contentsOf: f)
            try data.prefix(data.count - 100).write(to: f)
        }
        let out = dir.appendingPathComponent("o.safetensors").path
        try expectFailure(["inspect", bad], mentions: ["model.safetensors"])
        let batch = dir.appendingPathComponent("b.json")
        try Data(#"{"sequences": [[1]]}"#.utf8).write(to: batch)
        try expectFailure(["embed", "--checkpoint", bad, "--sequences", batch.path, "--output", out], mentions: ["model.safetensors"], noOutput: out)
    }

    func testHeaderThatLiesAboutOffsets() throws {
        let bad = try copyCheckpoint("lies") { d in
            let f = d.appendingPathComponent("model.safetensors")
            var data = try Data(contentsOf: f)
            // Rewrite the header so one tensor claims more bytes than its dtype × shape (the
            // offsets now overlap the next tensor).
            let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            var header = try XCTUnwrap(JSONSerialization.jsonObject(with: data[8..<(8 + n)]) as? [String: Any])
            let name = try XCTUnwrap(header.keys.filter { $0 != "__metadata__" }.sorted().first)
            var entry = try XCTUnwrap(header[name] as? [String: Any])
            let offs = try XCTUnwrap(entry["data_offsets"] as? [Int])
            entry["data_offsets"] = [offs[0], offs[1] + 8]
            header[name] = entry
            var h = try JSONSerialization.data(withJSONObject: header)
            while h.count % 8 != 0 { h.append(0x20) }
            var len = UInt64(h.count)
            data = Data(bytes: &len, count: 8) + h + data[(8 + n)...]
            try data.write(to: f)
        }
        try expectFailure(["inspect", bad], mentions: ["model.safetensors"])
    }

    func testMissingAndMisShapedTensor() throws {
        let missing = try copyCheckpoint("missing") { d in
            let f = d.appendingPathComponent("model.safetensors")
            var t = try Safetensors.read(f)
            t["model.norm.weight"] = nil
            try Safetensors.write(t, to: f)
        }
        try expectFailure(["inspect", missing], mentions: ["model.norm.weight"])
        let shaped = try copyCheckpoint("shaped") { d in
            let f = d.appendingPathComponent("model.safetensors")
            var t = try Safetensors.read(f)
            t["model.norm.weight"] = Tensor(floats: [1, 2, 3], shape: [3])
            try Safetensors.write(t, to: f)
        }
        try expectFailure(["inspect", shaped], mentions: ["model.norm.weight", "[3]"])
    }

    func testUnsupportedConfig() throws {
        for (key, value, mention) in [("hidden_act", "\"gelu\"", "hidden_act"), ("rope_scaling", #"{"type": "linear", "factor": 2.0}"#, "rope")] {
            let bad = try copyCheckpoint("cfg-\(key)") { d in
                let f = d.appendingPathComponent("config.json")
                var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: f)) as! [String: Any]
                obj[key] = try JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
                try JSONSerialization.data(withJSONObject: obj).write(to: f)
            }
            try expectFailure(["inspect", bad], mentions: ["config.json", mention])
        }
    }

    func testUnsupportedLoRAOptions() throws {
        guard let shared = SharedData.directory() else { throw XCTSkip("../shared is not present") }
        let src = shared.appendingPathComponent("fixtures/tiny-public")
        for option in ["use_dora", "use_rslora", "fan_in_fan_out"] {
            let ad = dir.appendingPathComponent("adapter-\(option)")
            try FileManager.default.copyItem(at: src.appendingPathComponent("adapter"), to: ad)
            let f = ad.appendingPathComponent("adapter_config.json")
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: f.path)
            var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: f)) as! [String: Any]
            obj[option] = true
            try JSONSerialization.data(withJSONObject: obj).write(to: f)
            let out = dir.appendingPathComponent("g-\(option).safetensors").path
            try expectFailure(["grads", "--checkpoint", src.appendingPathComponent("checkpoint").path, "--adapter", ad.path,
                               "--batch", src.appendingPathComponent("batch.json").path, "--output", out],
                              mentions: [option], noOutput: out)
        }
    }

    func testBadSequences() throws {
        let out = dir.appendingPathComponent("o.safetensors").path
        for (json, mention) in [(#"{"sequences": [[1, 21]]}"#, "outside 1…20"), (#"{"sequences": [[]]}"#, "empty"),
                                (#"{"sequences": [[1, "x"]]}"#, "sequences[0][1]"), (#"{"seq": []}"#, "sequences"),
                                ("{not json", "JSON")] {
            let b = dir.appendingPathComponent("b.json")
            try Data(json.utf8).write(to: b)
            try expectFailure(["embed", "--checkpoint", ck, "--sequences", b.path, "--output", out], mentions: [mention], noOutput: out)
        }
    }
}
