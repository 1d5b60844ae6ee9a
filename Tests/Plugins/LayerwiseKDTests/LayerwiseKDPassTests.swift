import XCTest
import Foundation
import Common
import Engine
import ModelFormat
import RecData
import TestKit
import Toolbench
@testable import LayerwiseKD

final class LayerwiseKDPassTests: XCTestCase {
    var tmp: URL!
    var data: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("kd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        data = try TinyModels.preparePatternDataset(in: tmp)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    func testConformanceAndDistillation() throws {
        let teacher = PassConformance.tinyCheckpoint(layers: 4, seed: 1)
        let teacherDir = tmp.appendingPathComponent("teacher")
        try teacher.save(to: teacherDir)
        let student = PassConformance.tinyCheckpoint(layers: 2, seed: 2)
        let opts = "{data: '\(data.path)', blocks: 2, objective: 'last', epochs: 3, valid_users: 0, lambda_norm: 0.05}"
        XCTAssertEqual(try PassConformance.check(LayerwiseKD.self, options: opts, checkpoint: student, references: ["teacher": teacherDir]), [])

        // Distillation pulls the student's block states toward the teacher's: D_cos falls.
        let input = tmp.appendingPathComponent("student")
        try student.save(to: input)
        let o = try StrictDecoding.decode(LayerwiseKD.Options.self, from: JSONText.parseJSON5(Data(
            "{data: '\(data.path)', blocks: 2, objective: 'last', prefix_augmentation: true, epochs: 8, lr: 0.003, batch_size: 16, valid_users: 0, lambda_norm: 0.05}".utf8), file: "t"), path: "options")
        let ctx = PassContext(input: input, references: ["teacher": teacherDir], workDirectory: tmp.appendingPathComponent("work"), stage: "kd", quiet: true)
        let r = try LayerwiseKD().apply(ctx, options: o)
        XCTAssertEqual(r.checkpoint?.config.numLayers, 2)
        XCTAssertNil(r.checkpoint?.tensors["head.1"], "the L_ms heads are training aids, not output tensors")
        let log = try String(contentsOf: tmp.appendingPathComponent("work/trainer/log.jsonl"), encoding: .utf8)
        let cos = log.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["d_cos"] as? Double }
        XCTAssertGreaterThan(cos.count, 10)
        XCTAssertLessThan(cos.suffix(3).reduce(0, +) / 3, cos.prefix(3).reduce(0, +) / 3)
        let terms = try XCTUnwrap(r.metrics["loss_terms"]?.objectValue)
        for k in ["ce", "d_cos", "d_norm", "l_ms", "loss"] { XCTAssertNotNil(terms[k], k) }
    }

    func testPlanTimeErrors() throws {
        let student = ModelSummary(PassConformance.tinyCheckpoint(layers: 2))
        let o = try StrictDecoding.decode(LayerwiseKD.Options.self, from: JSONText.parseJSON5(Data("{data: 'x', blocks: 3, objective: 'last'}".utf8), file: "t"), path: "options")
        let teacher = PlannedArtifact(kind: .checkpoint, model: ModelSummary(PassConformance.tinyCheckpoint(layers: 4)), existingPath: nil)
        XCTAssertThrowsError(try LayerwiseKD().check(student, options: o, references: ["teacher": teacher])) { XCTAssertTrue("\($0)".contains("divide")) }
        XCTAssertThrowsError(try LayerwiseKD().check(student, options: o, references: [:])) { XCTAssertTrue("\($0)".contains("teacher")) }
        let shallow = PlannedArtifact(kind: .checkpoint, model: ModelSummary(PassConformance.tinyCheckpoint(layers: 1)), existingPath: nil)
        var o2 = o
        o2.settings.blocks = 1
        XCTAssertThrowsError(try LayerwiseKD().check(student, options: o2, references: ["teacher": shallow])) { XCTAssertTrue("\($0)".contains("deeper")) }
        // cache_teacher cannot apply to a teacher that trains: an error, not ignored.
        let online = try StrictDecoding.decode(LayerwiseKD.Options.self, from: JSONText.parseJSON5(Data(
            "{data: 'x', teacher_mode: 'online', cache_teacher: true}".utf8), file: "t"), path: "options")
        XCTAssertThrowsError(try online.validate()) { XCTAssertTrue("\($0)".contains("cache_teacher")) }
        XCTAssertFalse(online.settings.cachesTeacher)
    }

    func decode(_ options: String) throws -> LayerwiseKD.Options {
        try StrictDecoding.decode(LayerwiseKD.Options.self, from: JSONText.parseJSON5(Data(options.utf8), file: "t"), path: "options")
    }

    /// The layer-map and logit options through the option table: their errors name the option,
    /// the value and the fix; the effective options keep today's resume key.
    func testLayerMapAndLogitOptions() throws {
        func problem(_ options: String) throws -> String {
            let o = try decode("{data: 'x', \(options)}")
            do { try o.validate() } catch { return "\(error)" }
            return ""
        }
        XCTAssertTrue(try problem("pairs: [[2, 1], [4, 2]], blocks: 2").contains("blocks 2 and pairs both choose the layer pairing"))
        XCTAssertTrue(try problem("layer_map: 'last', blocks: 2").contains("blocks 2 does nothing with layer_map \"last\""))
        XCTAssertTrue(try problem("pairs: [[2, 1]], layer_map: 'uniform'").contains("pairs and layer_map both"))
        XCTAssertTrue(try problem("pairs: []").contains("pairs is empty"))
        XCTAssertTrue(try problem("pairs: [[3, 2], [3, 3]]").contains("pairs must increase strictly in both columns: [3, 2] then [3, 3]"))
        XCTAssertTrue(try problem("pairs: [[1, -1]]").contains("pairs entry [1, -1] is not [teacher_layer, student_layer] with layers >= 0"))
        XCTAssertTrue(try problem("temperature: 2").contains("temperature 2.0 does nothing without lambda_kl"))
        XCTAssertTrue(try problem("lambda_kl: 0.5, temperature: 0").contains("temperature must be a finite number > 0 (got 0.0)"))
        XCTAssertTrue(try problem("lambda_kl: -0.5").contains("lambda_kl must be a finite number >= 0 (got -0.5)"))
        XCTAssertEqual(try problem("lambda_kl: 0.5, temperature: 2, teacher_mode: 'online', pairs: [[0, 0], [4, 2]]"), "")
        XCTAssertThrowsError(try decode("{data: 'x', layer_map: 'uniformm'}")) { XCTAssertTrue("\($0)".contains("uniform"), "\($0)") }
        XCTAssertThrowsError(try decode("{data: 'x', lamda_kl: 1}")) { XCTAssertTrue("\($0)".contains("lambda_kl"), "\($0)") }

        // Out of range and post-norm need the depths: plan time.
        let student = ModelSummary(PassConformance.tinyCheckpoint(layers: 2))
        let teacher = PlannedArtifact(kind: .checkpoint, model: ModelSummary(PassConformance.tinyCheckpoint(layers: 4)), existingPath: nil)
        XCTAssertThrowsError(try LayerwiseKD().check(student, options: decode("{data: 'x', objective: 'last', pairs: [[2, 1], [5, 2]]}"), references: ["teacher": teacher])) {
            XCTAssertTrue("\($0)".contains("pairs entry [5, 2] is out of range: the teacher has layers 0…4, the student 0…2"), "\($0)")
        }
        XCTAssertThrowsError(try LayerwiseKD().check(student, options: decode("{data: 'x', objective: 'last', pairs: [[2, 1]], last_block: 'post-norm'}"), references: ["teacher": teacher])) {
            XCTAssertTrue("\($0)".contains("the last pair must be [4, 2]"), "\($0)")
        }
        XCTAssertNoThrow(try LayerwiseKD().check(student, options: decode("{data: 'x', objective: 'last', pairs: [[0, 0], [3, 1], [4, 2]]}"), references: ["teacher": teacher]))

        // Effective options: blocks written where the uniform map reads it (a recipe without it
        // keeps its resume key), absent with pairs or layer_map last; unset new options absent.
        func effective(_ options: String) throws -> [String: JSONValue] {
            try XCTUnwrap(AnyPass.effective(decode("{data: 'x', \(options)}")).objectValue)
        }
        let plain = try effective("objective: 'last'")
        XCTAssertEqual(plain["blocks"], .int(4))
        for k in ["pairs", "layer_map", "lambda_kl", "temperature"] { XCTAssertNil(plain[k], k) }
        XCTAssertEqual(try effective("objective: 'last', blocks: 4"), plain)
        XCTAssertNil(try effective("pairs: [[4, 2]]")["blocks"])
        XCTAssertNil(try effective("layer_map: 'last'")["blocks"])
        XCTAssertEqual(try effective("layer_map: 'uniform', blocks: 2")["blocks"], .int(2))
    }
}
