import XCTest
import Common
import Engine
import TestKit
import Training
import TrainingKit
@testable import LayerwiseKD

/// Each distillation term's value and gradient against finite differences.
final class KDLossTests: XCTestCase {
    var rng = SeededRNG(seed: 31)
    func check(_ name: String, _ a: [Float], _ n: [Float], file: StaticString = #filePath, line: UInt = #line) {
        if let f = gradientCheckFailure(name, analytic: a, numeric: n, minScale: 1e-5) { XCTFail(f, file: file, line: line) }
    }

    func testCosineDistanceValueAndGradients() {
        let rows = 3, c = 5
        var t = randomArray(rows * c, &rng), s = randomArray(rows * c, &rng)
        // Value: identical vectors → 0, opposite → 2.
        XCTAssertEqual(cosineDistance(t: t, s: t, rows: rows, c: c, ds: nil, dt: nil, scale: 1), 0, accuracy: 1e-6)
        XCTAssertEqual(cosineDistance(t: t, s: t.map { -2 * $0 }, rows: rows, c: c, ds: nil, dt: nil, scale: 1), 2, accuracy: 1e-6)
        var ds = [Float](repeating: 0, count: rows * c), dt = ds
        _ = cosineDistance(t: t, s: s, rows: rows, c: c, ds: &ds, dt: &dt, scale: 0.7)
        let (t0, s0) = (t, s)
        check("ds", ds, numericGradient(&s, eps: 1e-3) { 0.7 * cosineDistance(t: t0, s: $0, rows: rows, c: c, ds: nil, dt: nil, scale: 1) })
        check("dt", dt, numericGradient(&t, eps: 1e-3) { 0.7 * cosineDistance(t: $0, s: s0, rows: rows, c: c, ds: nil, dt: nil, scale: 1) })
    }

    func testSquaredDistanceValueAndGradients() {
        let rows = 2, c = 4
        var t = randomArray(rows * c, &rng), s = randomArray(rows * c, &rng)
        let manual = (0..<rows).map { r in (0..<c).reduce(0.0) { $0 + pow(Double(t[r * c + $1] - s[r * c + $1]), 2) } }.reduce(0, +) / Double(rows)
        XCTAssertEqual(squaredDistance(t: t, s: s, rows: rows, c: c, ds: nil, dt: nil, scale: 1), manual, accuracy: 1e-5)
        var ds = [Float](repeating: 0, count: rows * c), dt = ds
        _ = squaredDistance(t: t, s: s, rows: rows, c: c, ds: &ds, dt: &dt, scale: 0.3)
        let (t0, s0) = (t, s)
        check("ds", ds, numericGradient(&s, eps: 1e-3) { 0.3 * squaredDistance(t: t0, s: $0, rows: rows, c: c, ds: nil, dt: nil, scale: 1) })
        check("dt", dt, numericGradient(&t, eps: 1e-3) { 0.3 * squaredDistance(t: $0, s: s0, rows: rows, c: c, ds: nil, dt: nil, scale: 1) })
    }

    /// τ²·KL(softmax(t/τ) ‖ softmax(s/τ)) over items 1…N: 0 at s = t (and for a shift of all
    /// scores), positive otherwise, padding column ignored, gradient against finite differences.
    func testLogitKLValueAndGradient() {
        let rows = 3, cols = 7
        for tau: Float in [1, 2.5] {
            let t = randomArray(rows * cols, &rng)
            var s = randomArray(rows * cols, &rng)
            XCTAssertEqual(logitKL(teacher: t, student: t, rows: rows, cols: cols, tau: tau, ds: nil, scale: 1), 0, accuracy: 1e-9)
            XCTAssertEqual(logitKL(teacher: t, student: t.map { $0 + 3 }, rows: rows, cols: cols, tau: tau, ds: nil, scale: 1), 0, accuracy: 1e-6)
            var padded = t
            for r in 0..<rows { padded[r * cols] = 99 }
            XCTAssertEqual(logitKL(teacher: padded, student: t, rows: rows, cols: cols, tau: tau, ds: nil, scale: 1), 0, accuracy: 1e-9, "column 0 is padding")
            XCTAssertGreaterThan(logitKL(teacher: t, student: s, rows: rows, cols: cols, tau: tau, ds: nil, scale: 1), 0)
            var ds = [Float](repeating: 0, count: rows * cols), dt = ds
            _ = logitKL(teacher: t, student: s, rows: rows, cols: cols, tau: tau, ds: &ds, dt: &dt, scale: 0.6)
            let (t0, s0) = (t, s)
            var tv = t
            check("kl ds τ \(tau)", ds, numericGradient(&s, eps: 1e-3) { 0.6 * logitKL(teacher: t0, student: $0, rows: rows, cols: cols, tau: tau, ds: nil, scale: 1) })
            check("kl dt τ \(tau)", dt, numericGradient(&tv, eps: 1e-3) { 0.6 * logitKL(teacher: $0, student: s0, rows: rows, cols: cols, tau: tau, ds: nil, scale: 1) })
            XCTAssertEqual((0..<rows).map { ds[$0 * cols] }, [0, 0, 0], "no gradient to padding")
            XCTAssertEqual((0..<rows).map { dt[$0 * cols] }, [0, 0, 0], "no gradient to padding")
            // τ² scaling: at a large τ the term tends to ½·mean_j((z_t − z_s) − mean(z_t − z_s))²
            // over the N items (Hinton et al. 2015, §2.1), independent of τ.
            let big: Float = 300, n = Double(cols - 1)
            let limit = (0..<rows).map { r -> Double in
                let d = (1..<cols).map { Double(t0[r * cols + $0] - s0[r * cols + $0]) }
                let m = d.reduce(0, +) / n
                return d.reduce(0) { $0 + ($1 - m) * ($1 - m) } / (2 * n)
            }.reduce(0, +) / Double(rows)
            XCTAssertEqual(logitKL(teacher: t0, student: s0, rows: rows, cols: cols, tau: big, ds: nil, scale: 1), limit, accuracy: 1e-2 * limit)
        }
    }

    /// Layer maps: explicit pairs, `last`, `uniform`, and every contradiction refused.
    func testLayerPairsAndTheirErrors() {
        var s = KDSettings()
        XCTAssertEqual(s.layerPairs(teacherLayers: 8, studentLayers: 4).map { [$0.teacher, $0.student] }, [[2, 1], [4, 2], [6, 3], [8, 4]], "uniform, B = 4")
        s.layerMap = .last
        XCTAssertEqual(s.layerPairs(teacherLayers: 8, studentLayers: 4).map { [$0.teacher, $0.student] }, [[8, 4]])
        s.layerMap = nil
        s.pairs = [[0, 0], [3, 1], [8, 4]]
        XCTAssertEqual(s.layerPairs(teacherLayers: 8, studentLayers: 4).map { [$0.teacher, $0.student] }, [[0, 0], [3, 1], [8, 4]])
        XCTAssertTrue(LayerwiseKDTask.problems(teacher: dims(8), student: dims(4), settings: s).isEmpty, "3 pairs need no divisor")
        func settingsProblems(_ change: (inout KDSettings) -> Void) -> String {
            var x = KDSettings(); change(&x)
            return (x.problems(with: TrainableOptions()) + LayerwiseKDTask.problems(teacher: dims(8), student: dims(4), settings: x)).joined(separator: "; ")
        }
        XCTAssertTrue(settingsProblems { $0.pairs = [] }.contains("pairs is empty"))
        XCTAssertTrue(settingsProblems { $0.pairs = [[2, 1], [2, 2]] }.contains("increase strictly in both columns: [2, 1] then [2, 2]"))
        XCTAssertTrue(settingsProblems { $0.pairs = [[2, 1, 0]] }.contains("is not [teacher_layer, student_layer]"))
        XCTAssertTrue(settingsProblems { $0.pairs = [[-1, 0]] }.contains("is not [teacher_layer, student_layer]"))
        XCTAssertTrue(settingsProblems { $0.pairs = [[9, 1]] }.contains("pairs entry [9, 1] is out of range: the teacher has layers 0…8, the student 0…4"))
        XCTAssertTrue(settingsProblems { $0.pairs = [[4, 2]]; $0.layerMap = .last }.contains("pairs and layer_map both"))
        XCTAssertTrue(settingsProblems { $0.pairs = [[4, 2]]; $0.lastBlock = .postNorm }.contains("the last pair must be [8, 4]"))
        XCTAssertTrue(settingsProblems { $0.lambdaKL = -1 }.contains("lambda_kl must be a finite number >= 0"))
        XCTAssertTrue(settingsProblems { $0.temperature = 0 }.contains("temperature must be a finite number > 0"))
        XCTAssertTrue(settingsProblems { $0.lambdaKL = .nan }.contains("lambda_kl must be a finite number >= 0 (got nan)"))
        XCTAssertTrue(settingsProblems { $0.lambdaKL = 1; $0.temperature = .infinity }.contains("temperature must be a finite number > 0 (got inf)"))
        XCTAssertTrue(settingsProblems { $0.temperature = 2 }.contains("temperature 2.0 does nothing without lambda_kl"))
        XCTAssertTrue(settingsProblems { $0.lambdaKL = 0; $0.temperature = 2 }.isEmpty, "an explicit lambda_kl 0 (a grid's point) keeps its temperature")
        XCTAssertTrue(settingsProblems { $0.lambdaKL = 0.5; $0.temperature = 2; $0.teacherMode = .online }.isEmpty, "the online teacher has the KL's backward too")
        // blocks is read by the uniform map only: with pairs or layer_map last it is an error.
        XCTAssertTrue(settingsProblems { $0.layerMap = .last; $0.blocks = 3 }.contains("blocks 3 does nothing with layer_map \"last\""))
        XCTAssertTrue(settingsProblems { $0.pairs = [[4, 2], [8, 4]]; $0.blocks = 2 }.contains("blocks 2 and pairs both choose the layer pairing"))
        XCTAssertTrue(settingsProblems { $0.layerMap = .uniform; $0.blocks = 2 }.isEmpty)
        XCTAssertTrue(settingsProblems { $0.blocks = 0 }.contains("blocks must be at least 1 (got 0)"))
        XCTAssertTrue(settingsProblems { $0.pairs = [[8, 4], [6, 3]] }.contains("increase strictly in both columns: [8, 4] then [6, 3]"))
        XCTAssertTrue(settingsProblems { $0.pairs = [[2, 5]] }.contains("pairs entry [2, 5] is out of range"))
        // A last pair below the student's last layer is allowed (pre-norm) and gets its own head.
        XCTAssertTrue(settingsProblems { $0.pairs = [[2, 1], [4, 2]] }.isEmpty)
    }

    /// L_ms heads sit on the paired student layers below N: B−1 for the presets, one per pair
    /// when the pairs stop below N.
    func testHeadsOnPairedLayersBelowTheLast() throws {
        func heads(_ change: (inout KDSettings) -> Void) throws -> [String] {
            var s = KDSettings(); change(&s)
            return try LayerwiseKDTask(student: TinyModels.model(dims(2), seed: 2), teacher: TinyModels.model(dims(4), seed: 1), settings: s,
                                       lora: nil, parts: TrainableParts(), seed: 1).heads.layout.names
        }
        XCTAssertEqual(try heads { $0.blocks = 2 }, ["head.1"])
        XCTAssertEqual(try heads { $0.layerMap = .last }, [])
        XCTAssertEqual(try heads { $0.pairs = [[0, 0], [2, 1]] }, ["head.1", "head.2"])
        XCTAssertEqual(try heads { $0.pairs = [[1, 1], [4, 2]] }, ["head.1"])
    }

    /// lambda_kl 0 (or unset) is today's objective exactly: same loss, same gradients in every
    /// group, no `kl` term; a temperature changes nothing while the term is off.
    func testLambdaKLZeroIsTodaysObjective() throws {
        let batch = try PackedBatch(sequences: TinyModels.sequences.map { $0.map { min($0, 11) } }, targets: TinyModels.targets,
                                    dims: dims(2), objective: .allPositions)
        func run(_ change: (inout KDSettings) -> Void) throws -> ([String: Double], [[Float]]) {
            var s = KDSettings()
            s.blocks = 2; s.lambdaMS = 0.7; s.align = .all
            change(&s)
            let t = try LayerwiseKDTask(student: TinyModels.model(dims(2), seed: 2), teacher: TinyModels.model(dims(4), seed: 1), settings: s,
                                        lora: nil, parts: TrainableParts(itemTable: true), seed: 1)
            let g = Gradients(groups: t.groups)
            let terms = t.step(batch, step: 0, sampleIndices: Array(0..<batch.count), grads: g, workspace: Workspace())
            return (terms, t.groups.map { grp in grp.params.layout.names.flatMap { g[grp.name]?.values($0) ?? [] } })
        }
        let (base, baseGrads) = try run { _ in }
        let changes: [(inout KDSettings) -> Void] = [{ $0.lambdaKL = 0 }, { $0.lambdaKL = 0; $0.temperature = 3 }]
        for change in changes {
            let (same, sameGrads) = try run(change)
            XCTAssertEqual(same, base, "λ_kl 0: the same terms, bit for bit")
            XCTAssertEqual(sameGrads, baseGrads, "λ_kl 0: the same gradients, bit for bit")
            XCTAssertNil(same["kl"])
        }
        XCTAssertGreaterThan(baseGrads.joined().map(abs).max() ?? 0, 0, "the compared gradients are not all zero")
    }

    /// A student that is the teacher: the KL is 0 and adds no gradient (∂/∂z_s = τ·(p_s − p_t) = 0).
    func testLogitTermIsZeroWhenStudentIsTeacher() throws {
        let batch = try PackedBatch(sequences: TinyModels.sequences.map { $0.map { min($0, 11) } }, targets: TinyModels.targets,
                                    dims: dims(4), objective: .allPositions)
        func run(_ lambdaKL: Float?) throws -> ([String: Double], [Float]) {
            var s = KDSettings()
            s.blocks = 2; s.lambdaKL = lambdaKL
            if lambdaKL != nil { s.temperature = 2 }
            let t = try LayerwiseKDTask(student: TinyModels.model(dims(4), seed: 1), teacher: TinyModels.model(dims(4), seed: 1), settings: s,
                                        lora: nil, parts: TrainableParts(itemTable: true), seed: 1)
            let g = Gradients(groups: t.groups)
            let terms = t.step(batch, step: 0, sampleIndices: Array(0..<batch.count), grads: g, workspace: Workspace())
            return (terms, [ParamName.itemEmbedding, ParamName.outputProj, ParamName.weight(0, .q)].flatMap { g[ParamGroup.model]!.values($0) })
        }
        let (on, onGrads) = try run(0.9), (off, offGrads) = try run(nil)
        XCTAssertEqual(try XCTUnwrap(on["kl"]), 0, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(on["loss"]), try XCTUnwrap(off["loss"]), accuracy: 1e-9)
        let (ok, cmp) = closeToMax(onGrads, offGrads, atol: 1e-7, rtol: 1e-5)
        XCTAssertTrue(ok, "the KL at student = teacher adds no gradient: \(cmp)")
    }

    /// The logit term is computed on the rows the CE scores (every position with all-positions),
    /// not only the aligned ones: with align last it still equals τ²·KL over all the score rows.
    func testLogitTermRowsAreTheCERows() throws {
        let teacher = TinyModels.model(dims(4), seed: 1), student = TinyModels.model(dims(2), seed: 2)
        let batch = try PackedBatch(sequences: TinyModels.sequences.map { $0.map { min($0, 11) } }, targets: TinyModels.targets,
                                    dims: dims(2), objective: .allPositions)
        XCTAssertLessThan(LayerwiseKDTask.alignedRows(batch, .last).count, batch.rows, "the test needs rows that are scored but not aligned")
        let ta = teacher.forward(batch, training: false, workspace: Workspace())
        let sa = student.forward(batch, training: false, workspace: Workspace())
        let cols = dims(2).numItems + 1
        let expected = logitKL(teacher: ta.scores.ptr, student: sa.scores.ptr, rows: batch.rows, cols: cols, tau: 1.5, ds: nil, scale: 1)
        var s = KDSettings()
        s.blocks = 2; s.align = .last; s.lambdaKL = 0.4; s.temperature = 1.5
        let t = try LayerwiseKDTask(student: student, teacher: teacher, settings: s, lora: nil, parts: TrainableParts(), seed: 1)
        let terms = t.step(batch, step: 0, sampleIndices: Array(0..<batch.count), grads: Gradients(groups: t.groups), workspace: Workspace())
        XCTAssertEqual(try XCTUnwrap(terms["kl"]), expected, accuracy: 1e-6 * max(expected, 1))
        XCTAssertGreaterThan(expected, 0)
    }

    /// Online distillation with the logit term: the whole objective's gradient against finite
    /// differences of both models, the teacher's item table and output projection included
    /// (the KL's teacher side, ∂/∂z_t), with pairs that stop below the student's last layer.
    func testOnlineLogitTermObjectiveGradient() throws {
        var s = KDSettings()
        s.pairs = [[0, 0], [2, 1]]; s.lambdaCos = 0.5; s.lambdaNorm = 0.05; s.lambdaMS = 0.7
        s.lambdaKL = 0.8; s.temperature = 2; s.teacherMode = .online
        let task = try LayerwiseKDTask(student: TinyModels.model(dims(2), seed: 2), teacher: TinyModels.model(dims(4), seed: 1), settings: s,
                                       lora: nil, parts: TrainableParts(itemTable: true), seed: 1)
        let batch = try PackedBatch(sequences: TinyModels.sequences.map { $0.map { min($0, 11) } }, targets: TinyModels.targets,
                                    dims: dims(2), objective: .allPositions)
        let terms = try checkGradients(task, batch, [(ParamGroup.model, ParamName.outputProj), (ParamGroup.model, ParamName.itemEmbedding),
                                                     (ParamGroup.model, ParamName.weight(1, .q)), (LayerwiseKDTask.headsGroup, "head.2"),
                                                     (LayerwiseKDTask.teacherGroup, ParamName.outputProj), (LayerwiseKDTask.teacherGroup, ParamName.itemEmbedding),
                                                     (LayerwiseKDTask.teacherGroup, ParamName.weight(3, .down))],
                                       samples: 12, label: "online kl", requireNonZero: true)
        XCTAssertGreaterThan(terms["kl"]!, 0)
        XCTAssertGreaterThan(terms["teacher_ce"]!, 0)
    }

    /// The objective with explicit pairs (the embeddings' output included) and the logit term,
    /// against finite differences; pairs equal to the uniform ones and λ_kl = 0 give exactly
    /// today's loss and gradients.
    func testPairsAndLogitTermObjective() throws {
        let batch = try PackedBatch(sequences: TinyModels.sequences.map { $0.map { min($0, 11) } }, targets: TinyModels.targets,
                                    dims: dims(2), objective: .allPositions)
        func task(_ change: (inout KDSettings) -> Void) throws -> LayerwiseKDTask {
            var s = KDSettings()
            s.blocks = 2; s.lambdaCos = 0.5; s.lambdaNorm = 0.05; s.lambdaMS = 0.7
            change(&s)
            return try LayerwiseKDTask(student: TinyModels.model(dims(2), seed: 2), teacher: TinyModels.model(dims(4), seed: 1), settings: s,
                                       lora: nil, parts: TrainableParts(itemTable: true), seed: 1)
        }
        func run(_ t: LayerwiseKDTask) -> ([String: Double], [Float]) {
            let g = Gradients(groups: t.groups)
            let terms = t.step(batch, step: 0, sampleIndices: Array(0..<batch.count), grads: g, workspace: Workspace())
            return (terms, g[ParamGroup.model]!.values(ParamName.weight(0, .q)) + g[LayerwiseKDTask.headsGroup]!.values("head.1"))
        }
        let (base, baseGrads) = run(try task { _ in })
        let (same, sameGrads) = run(try task { $0.pairs = [[2, 1], [4, 2]]; $0.blocks = nil; $0.lambdaKL = 0 })
        XCTAssertEqual(base["loss"], same["loss"])
        XCTAssertEqual(baseGrads, sameGrads, "explicit uniform pairs and λ_kl 0 are today's objective, bit for bit")
        XCTAssertNil(same["kl"])

        let t = try task { $0.pairs = [[0, 0], [3, 1], [4, 2]]; $0.blocks = nil; $0.lambdaKL = 0.8; $0.temperature = 2 }
        XCTAssertEqual(t.heads.layout.names, ["head.1", "head.2"], "an L_ms head on each paired student layer but the last")
        let terms = try checkGradients(t, batch, [(ParamGroup.model, ParamName.weight(0, .q)), (ParamGroup.model, ParamName.outputProj),
                                                  (ParamGroup.model, ParamName.itemEmbedding), (LayerwiseKDTask.headsGroup, "head.1"),
                                                  (LayerwiseKDTask.headsGroup, "head.2")], samples: 12, label: "pairs + kl", requireNonZero: true)
        XCTAssertGreaterThan(terms["kl"]!, 0)
        // The offline cache keeps what the logit term needs: a second step from the cache is the same.
        let g2 = Gradients(groups: t.groups), ws = Workspace()
        let first = t.step(batch, step: 0, sampleIndices: Array(0..<batch.count), grads: g2, workspace: ws)
        let second = t.step(batch, step: 0, sampleIndices: Array(0..<batch.count), grads: Gradients(groups: t.groups), workspace: ws)
        XCTAssertEqual(first["kl"]!, second["kl"]!, accuracy: 1e-12)
    }

    func testSupervisionHeadGradients() {
        let rows = 3, c = 6, d0 = 4, n = 7
        var h = randomArray(rows * c, &rng), a = randomArray(d0 * c, &rng, scale: 0.5), e = randomArray((n + 1) * d0, &rng)
        let targets: [Int32] = [1, 7, 3]
        func loss(_ h: [Float], _ a: [Float], _ e: [Float]) -> Double {
            supervisionHeadLoss(h: h, rows: rows, c: c, a: a, d0: d0, table: e, numItems: n, targets: targets, dh: nil, da: nil, dTable: nil, scale: 1)
        }
        var dh = [Float](repeating: 0, count: h.count), da = [Float](repeating: 0, count: a.count), de = [Float](repeating: 0, count: e.count)
        _ = supervisionHeadLoss(h: h, rows: rows, c: c, a: a, d0: d0, table: e, numItems: n, targets: targets, dh: &dh, da: &da, dTable: &de, scale: 1)
        let (h0, a0, e0) = (h, a, e)
        check("dh", dh, numericGradient(&h, eps: 1e-3) { loss($0, a0, e0) })
        check("dA", da, numericGradient(&a, eps: 1e-3) { loss(h0, $0, e0) })
        check("dE", de, numericGradient(&e, eps: 1e-3) { loss(h0, a0, $0) })
    }

    /// The L_ms head with the streamed softmax is the full head (values and gradients); with the
    /// sampled one its gradients match finite differences of its own loss.
    func testSupervisionHeadStreamedAndSampled() throws {
        let rows = 3, c = 6, d0 = 4, n = 9
        var h = randomArray(rows * c, &rng), a = randomArray(d0 * c, &rng, scale: 0.5), e = randomArray((n + 1) * d0, &rng)
        let targets: [Int32] = [1, 9, 3]
        let sample = try ItemSampler(distribution: .uniform, numItems: n, count: 5).draw(seed: 3, step: 1)
        func run(_ mode: ItemSoftmax, _ h: [Float], _ a: [Float], _ e: [Float], grads: Bool) -> (Double, [Float], [Float], [Float]) {
            var dh = [Float](repeating: 0, count: h.count), da = [Float](repeating: 0, count: a.count), de = [Float](repeating: 0, count: e.count)
            let l = grads ? supervisionHeadLoss(h: h, rows: rows, c: c, a: a, d0: d0, table: e, numItems: n, targets: targets, dh: &dh, da: &da,
                                                dTable: &de, scale: 1, softmax: mode, sample: sample)
                : supervisionHeadLoss(h: h, rows: rows, c: c, a: a, d0: d0, table: e, numItems: n, targets: targets, dh: nil, da: nil,
                                      dTable: nil, scale: 1, softmax: mode, sample: sample)
            return (l, dh, da, de)
        }
        let f = run(.full, h, a, e, grads: true), s = run(.streamed, h, a, e, grads: true)
        XCTAssertEqual(s.0, f.0, accuracy: 1e-5)
        for (x, y) in [(s.1, f.1), (s.2, f.2), (s.3, f.3)] { XCTAssertTrue(allClose(x, y, atol: 1e-6, rtol: 1e-4).ok) }
        let sm = run(.sampled, h, a, e, grads: true)
        let (h0, a0, e0) = (h, a, e)
        check("sampled dh", sm.1, numericGradient(&h, eps: 1e-3) { run(.sampled, $0, a0, e0, grads: false).0 })
        check("sampled dA", sm.2, numericGradient(&a, eps: 1e-3) { run(.sampled, h0, $0, e0, grads: false).0 })
        check("sampled dE", sm.3, numericGradient(&e, eps: 1e-3) { run(.sampled, h0, a0, $0, grads: false).0 })
    }

    func testBlockPairing() {
        let p = LayerwiseKDTask.pairs(teacherLayers: 8, studentLayers: 4, blocks: 4)
        XCTAssertEqual(p.map(\.teacher), [2, 4, 6, 8])
        XCTAssertEqual(p.map(\.student), [1, 2, 3, 4])
        let q = LayerwiseKDTask.pairs(teacherLayers: 8, studentLayers: 2, blocks: 2)
        XCTAssertEqual(q.map(\.teacher), [4, 8]); XCTAssertEqual(q.map(\.student), [1, 2])
    }

    func dims(_ layers: Int, hidden: Int = 16) -> ModelDims {
        ModelDims(hidden: hidden, intermediate: 24, layers: layers, heads: 2, numItems: 11, itemDim: 6, promptLength: 2, maxSeqLen: 8, maxPositions: 32)
    }

    func testPreconditions() {
        var s = KDSettings()
        s.blocks = 3
        XCTAssertTrue(LayerwiseKDTask.problems(teacher: dims(4), student: dims(2), settings: s).joined().contains("divide"))
        s.blocks = 2
        XCTAssertTrue(LayerwiseKDTask.problems(teacher: dims(2), student: dims(4), settings: s).joined().contains("deeper"))
        XCTAssertTrue(LayerwiseKDTask.problems(teacher: dims(4, hidden: 32), student: dims(2), settings: s).joined().contains("hidden"))
        XCTAssertTrue(LayerwiseKDTask.problems(teacher: dims(4), student: dims(2), settings: s).isEmpty)
    }

    /// The whole KD objective (CE + λ1·D_cos + λ2·D_norm + λ3·L_ms) against finite differences
    /// of the student's parameters and the extra heads, for each alignment choice; with an
    /// online teacher (the paper's RQ4) also of the teacher's parameters (its CE plus the
    /// distillation terms, which pull it towards the student).
    func testWholeObjectiveGradient() throws {
        for (align, last, online) in [(KDSettings.Align.last, KDSettings.LastBlock.preNorm, false), (.all, .postNorm, false),
                                      (.last, .postNorm, true)] {
            let teacher = TinyModels.model(dims(4), seed: 1), student = TinyModels.model(dims(2), seed: 2)
            var s = KDSettings()
            s.blocks = 2; s.lambdaCos = 0.5; s.lambdaNorm = 0.05; s.lambdaMS = 0.7; s.align = align; s.lastBlock = last
            if online { s.teacherMode = .online }
            let task = try LayerwiseKDTask(student: student, teacher: teacher, settings: s, lora: nil,
                                           parts: TrainableParts(itemTable: true), seed: 1)
            let batch = try PackedBatch(sequences: TinyModels.sequences.map { $0.map { min($0, 11) } }, targets: TinyModels.targets,
                                        dims: student.dims, objective: .allPositions)
            var checked = [(ParamGroup.model, ParamName.weight(0, .q)), (ParamGroup.model, ParamName.weight(1, .down)),
                           (ParamGroup.model, ParamName.itemEmbedding), (ParamGroup.model, ParamName.finalNorm),
                           (LayerwiseKDTask.headsGroup, "head.1")]
            if online {
                checked += [(LayerwiseKDTask.teacherGroup, ParamName.weight(1, .q)), (LayerwiseKDTask.teacherGroup, ParamName.weight(3, .down)),
                            (LayerwiseKDTask.teacherGroup, ParamName.finalNorm)]
            }
            let terms = try checkGradients(task, batch, checked, samples: 12, label: "\(align) \(last)")
            XCTAssertGreaterThan(terms["d_cos"]!, 0); XCTAssertGreaterThan(terms["d_norm"]!, 0); XCTAssertGreaterThan(terms["l_ms"]!, 0)
        }
    }

    /// Online distillation with LoRA (SLMRec trains teacher and student with LoRA): the whole
    /// objective's gradient against finite differences of both models' adapters (B and A,
    /// made non-zero first: B starts at zero, which would make A's gradient vanish), the
    /// student's output projection and the teacher's; the decoders stay frozen on both sides.
    func testOnlineLoRAObjectiveGradient() throws {
        let teacher = TinyModels.model(dims(4), seed: 1), student = TinyModels.model(dims(2), seed: 2)
        var s = KDSettings()
        s.blocks = 2; s.lambdaCos = 0.5; s.lambdaNorm = 0.05; s.lambdaMS = 0.7; s.teacherMode = .online
        let lora = LoRAOptions(rank: 2, alpha: 4, targets: ["q_proj", "down_proj"], dropout: 0)
        let task = try LayerwiseKDTask(student: student, teacher: teacher, settings: s, lora: lora, parts: TrainableParts(), seed: 1)
        let names = task.groups.map(\.name)
        XCTAssertEqual(names, [ParamGroup.model, ParamGroup.lora, LayerwiseKDTask.headsGroup, LayerwiseKDTask.teacherGroup, LayerwiseKDTask.teacherLoRAGroup])
        let teacherGroup = try XCTUnwrap(task.groups.first { $0.name == LayerwiseKDTask.teacherGroup })
        XCTAssertFalse(teacherGroup.trainable.contains(ParamName.weight(0, .q)), "the teacher's decoder is frozen under LoRA")
        XCTAssertTrue(teacherGroup.trainable.contains(ParamName.outputProj))
        for g in task.groups where g.name == ParamGroup.lora || g.name == LayerwiseKDTask.teacherLoRAGroup {
            for e in g.params.layout.entries { g.params.set(e.name, (0..<e.count).map { _ in Float.random(in: -0.3...0.3, using: &rng) }) }
        }
        let batch = try PackedBatch(sequences: TinyModels.sequences.map { $0.map { min($0, 11) } }, targets: TinyModels.targets,
                                    dims: student.dims, objective: .allPositions)
        var checked: [(String, String)] = [(ParamGroup.model, ParamName.outputProj), (LayerwiseKDTask.teacherGroup, ParamName.outputProj)]
        for g in [ParamGroup.lora, LayerwiseKDTask.teacherLoRAGroup] {
            let layout = try XCTUnwrap(task.groups.first { $0.name == g }).params.layout
            checked += [layout.names.first!, layout.names.last!].map { (g, $0) }
        }
        let terms = try checkGradients(task, batch, checked, samples: 10, label: "online LoRA", requireNonZero: true)
        XCTAssertGreaterThan(terms["teacher_ce"]!, 0)
    }

    /// One KD step's analytic gradients of `checked` (group, tensor) against central finite
    /// differences of the total loss at `samples` spread indices; returns the step's terms.
    func checkGradients(_ task: LayerwiseKDTask, _ batch: PackedBatch, _ checked: [(String, String)], samples: Int, label: String,
                        requireNonZero: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Double] {
        let idx = Array(0..<batch.count)
        let grads = Gradients(groups: task.groups)
        let ws = Workspace()
        let terms = task.step(batch, step: 0, sampleIndices: idx, grads: grads, workspace: ws)
        func total() -> Double {
            let scratch = Gradients(groups: task.groups)
            return task.step(batch, step: 0, sampleIndices: idx, grads: scratch, workspace: ws)["loss"]!
        }
        for (group, name) in checked {
            let ps = try XCTUnwrap(task.groups.first { $0.name == group }).params
            var x = ps.values(name)
            let sample = (0..<samples).map { ($0 * 7919) % x.count }
            let numeric = numericGradient(&x, eps: 3e-3, indices: sample) { v in ps.set(name, v); return total() }
            ps.set(name, x)
            let analytic = try XCTUnwrap(grads[group]).values(name)
            let (ok, cmp) = closeToMax(sample.map { analytic[$0] }, sample.map { numeric[$0] }, atol: 3e-4, rtol: 3e-2)
            XCTAssertTrue(ok, "\(label) \(group) \(name): \(cmp)", file: file, line: line)
            if requireNonZero {
                XCTAssertGreaterThan(sample.map { abs(numeric[$0]) }.max()!, 1e-5, "\(label) \(group) \(name): a gradient that is zero checks nothing", file: file, line: line)
            }
        }
        return terms
    }
}
