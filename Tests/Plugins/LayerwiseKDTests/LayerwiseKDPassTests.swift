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
}
