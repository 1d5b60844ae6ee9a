import XCTest
import Foundation
import ModelFormat
import TestKit

final class Int8AndSASRecCLITests: XCTestCase {
    /// apply quantize-int8, then embed and eval run on the int8 checkpoint (VNNI path).
    func testInt8CheckpointThroughEmbed() throws {
        let dir = try CLI.tmp("int8")
        let ck = dir.appendingPathComponent("ck").path, q = dir.appendingPathComponent("q").path
        XCTAssertEqual(try CLI.run(["init", "--output", ck, "--items", "30", "--layers", "2", "--hidden", "64", "--intermediate", "96",
                                    "--heads", "4", "--item-dim", "16", "--prompt-length", "2"]).status, 0)
        var r = try CLI.run(["apply", "quantize-int8", "--input", ck, "--output", q])
        XCTAssertEqual(r.status, 0, r.all)
        r = try CLI.run(["inspect", q, "--json"])
        XCTAssertTrue(r.stdout.contains("int8"), r.stdout)
        let batch = dir.appendingPathComponent("b.json")
        try Data(#"{"sequences": [[1, 2, 3], [30, 4]]}"#.utf8).write(to: batch)
        let o1 = dir.appendingPathComponent("f.safetensors"), o2 = dir.appendingPathComponent("q.safetensors")
        XCTAssertEqual(try CLI.run(["embed", "--checkpoint", ck, "--sequences", batch.path, "--output", o1.path]).status, 0)
        r = try CLI.run(["embed", "--checkpoint", q, "--sequences", batch.path, "--output", o2.path])
        XCTAssertEqual(r.status, 0, r.all)
        let a = try Safetensors.read(o1)["user"]!.floats(), b = try Safetensors.read(o2)["user"]!.floats()
        let (_, cmp) = closeToMax(b, a, atol: 0, rtol: 1)
        XCTAssertLessThan(cmp.rel, 0.05, "int8 close to fp32: \(cmp)")
        XCTAssertGreaterThan(cmp.maxAbs, 0, "the int8 path ran")
    }

    /// slmrec sasrec writes the item table slmrec init reads.
    func testSASRecThenInit() throws {
        let dir = try CLI.tmp("sasrec")
        let data = try TinyModels.preparePatternDataset(in: dir)
        let out = dir.appendingPathComponent("sas").path
        var r = try CLI.run(["sasrec", "--data", data.path, "--output", out, "--hidden", "16", "--heads", "2", "--epochs", "3", "--quiet"])
        XCTAssertEqual(r.status, 0, r.all)
        let t = try Safetensors.read(URL(fileURLWithPath: out + "/item_embeddings.safetensors"))
        XCTAssertEqual(t["item_embedding.weight"]?.shape, [12, 16])
        let m = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/metrics.json"))) as? [String: Any])
        XCTAssertEqual(m["model"] as? String, "sasrec")
        let ck = dir.appendingPathComponent("ck").path
        r = try CLI.run(["init", "--output", ck, "--data", data.path, "--item-embeddings", out + "/item_embeddings.safetensors",
                         "--layers", "1", "--hidden", "16", "--intermediate", "24", "--heads", "2"])
        XCTAssertEqual(r.status, 0, r.all)
        XCTAssertEqual(try Checkpoint.load(directory: URL(fileURLWithPath: ck)).tensors["ellmrec.item_embedding.weight"], t["item_embedding.weight"])
    }
}
