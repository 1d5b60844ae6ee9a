import Foundation
import Common
import Engine
import Training
import Toolbench

/// How the distillation is set up (the pass options minus the trainer's).
public struct KDSettings: Codable, Sendable, Equatable {
    public enum Align: String, OptionEnum { case last, all }
    public enum LastBlock: String, OptionEnum { case preNorm = "pre-norm", postNorm = "post-norm" }
    public enum TeacherMode: String, OptionEnum { case offline, online }

    public var blocks = 4
    public var lambdaCos: Float = 1
    public var lambdaNorm: Float = 0.01
    public var lambdaMS: Float = 0.1
    public var align: Align = .last
    public var lastBlock: LastBlock = .preNorm
    public var teacherMode: TeacherMode = .offline
    /// Cache the frozen teacher's hidden states per training example. nil: yes when the
    /// teacher is offline (an online teacher changes every step, so it cannot be cached).
    public var cacheTeacher: Bool? = nil
    var cachesTeacher: Bool { teacherMode == .offline && (cacheTeacher ?? true) }
    public init() {}

    enum CodingKeys: String, CodingKey {
        case blocks, lambdaCos = "lambda_cos", lambdaNorm = "lambda_norm", lambdaMS = "lambda_ms", align
        case lastBlock = "last_block", teacherMode = "teacher_mode", cacheTeacher = "cache_teacher"
    }

    /// Decoded flat from the pass options (the keys above), defaults where absent.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = KDSettings()
        blocks = try c.decodeIfPresent(Int.self, forKey: .blocks) ?? d.blocks
        lambdaCos = try c.decodeIfPresent(Float.self, forKey: .lambdaCos) ?? d.lambdaCos
        lambdaNorm = try c.decodeIfPresent(Float.self, forKey: .lambdaNorm) ?? d.lambdaNorm
        lambdaMS = try c.decodeIfPresent(Float.self, forKey: .lambdaMS) ?? d.lambdaMS
        align = try c.decodeIfPresent(Align.self, forKey: .align) ?? d.align
        lastBlock = try c.decodeIfPresent(LastBlock.self, forKey: .lastBlock) ?? d.lastBlock
        teacherMode = try c.decodeIfPresent(TeacherMode.self, forKey: .teacherMode) ?? d.teacherMode
        cacheTeacher = try c.decodeIfPresent(Bool.self, forKey: .cacheTeacher)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(blocks, forKey: .blocks); try c.encode(lambdaCos, forKey: .lambdaCos)
        try c.encode(lambdaNorm, forKey: .lambdaNorm); try c.encode(lambdaMS, forKey: .lambdaMS)
        try c.encode(align, forKey: .align); try c.encode(lastBlock, forKey: .lastBlock)
        try c.encode(teacherMode, forKey: .teacherMode); try c.encode(cachesTeacher, forKey: .cacheTeacher)   // the effective value
    }
}

/// SLMRec layer-wise distillation (Xu et al., ICLR 2025, §4): a student with N layers learns
/// from a teacher with M layers (same hidden size) over B blocks; teacher layer k·M/B pairs
/// with student layer k·N/B, k = 1…B.
///   L = CE + λ1·D_cos + λ2·D_norm + λ3·L_ms
/// with D_cos and D_norm averaged over the B block boundaries and L_ms the mean CE of B−1
/// extra heads on the intermediate student blocks (training aids, not in the output).
public final class LayerwiseKDTask: TrainingTask {
    public let student: ELLMRecModel
    public let teacher: ELLMRecModel
    public let settings: KDSettings
    public let heads: ParamSet          // "head.k" [D0, C] for k = 1…B−1
    public let groups: [ParamGroup]
    public var evalModel: ELLMRecModel { student }
    public var dims: ModelDims { student.dims }
    let studentTrainable: Set<String>
    let seed: UInt64
    private var cache: [Int: [Float]] = [:]   // sample index → (B, rows, C) teacher states
    private let teacherWorkspace = Workspace()
    private let headWorkspace = Workspace()

    /// Teacher layer and student layer of block k (1…B): hidden.(k·M/B) ↔ hidden.(k·N/B).
    public static func pairs(teacherLayers m: Int, studentLayers n: Int, blocks b: Int) -> [(teacher: Int, student: Int)] {
        (1...b).map { k in (k * m / b, k * n / b) }
    }

    public static func problems(teacher t: ModelDims, student s: ModelDims, settings: KDSettings) -> [String] {
        var p: [String] = []
        if t.hidden != s.hidden { p.append("teacher hidden size \(t.hidden) differs from the student's \(s.hidden): layer-wise alignment needs the same d1") }
        if s.layers > t.layers { p.append("the student (\(s.layers) layers) is deeper than the teacher (\(t.layers))") }
        if settings.blocks < 1 { p.append("blocks must be at least 1") }
        else if t.layers % settings.blocks != 0 || s.layers % settings.blocks != 0 {
            p.append("blocks \(settings.blocks) must divide both depths (teacher \(t.layers), student \(s.layers))")
        }
        if t.numItems != s.numItems || t.itemDim != s.itemDim { p.append("teacher and student have different item tables (\(t.numItems)×\(t.itemDim) vs \(s.numItems)×\(s.itemDim))") }
        if t.promptLength != s.promptLength || t.suffixLength != s.suffixLength { p.append("teacher and student must share the prompt layout (prompt/suffix lengths)") }
        return p
    }

    public init(student: ELLMRecModel, teacher: ELLMRecModel, settings: KDSettings, lora: LoRAOptions?, parts: TrainableParts, seed: UInt64) throws {
        let p = Self.problems(teacher: teacher.dims, student: student.dims, settings: settings)
        if !p.isEmpty { throw TrainingError(message: p.joined(separator: "; ")) }
        self.student = student
        self.teacher = teacher
        self.seed = seed
        self.settings = settings
        var layout = ParamLayout()
        for k in 1..<max(settings.blocks, 1) { layout.append("head.\(k)", [student.dims.itemDim, student.dims.hidden]) }
        heads = ParamSet(layout: layout)
        // Each extra head starts as the student's output projection (a sensible map d1 → d0).
        for k in 1..<max(settings.blocks, 1) { heads.set("head.\(k)", student.params.values(ParamName.outputProj)) }
        let ft = try FineTuneTask(model: student, lora: lora, parts: parts, seed: seed)
        studentTrainable = ft.groups[0].trainable
        var g = ft.groups
        g.append(ParamGroup(name: "kd-heads", params: heads, trainable: Set(layout.names)))
        if settings.teacherMode == .online {
            g.append(ParamGroup(name: "teacher", params: teacher.params, trainable: Set(teacher.params.layout.names)))
        }
        groups = g
    }

    /// Rows of the scored rows that are aligned: every scored row, or the last of each sequence.
    static func alignedRows(_ b: PackedBatch, _ align: KDSettings.Align) -> [Int] {
        if align == .all { return Array(0..<b.rows) }
        return (0..<b.rows).filter { $0 == b.rows - 1 || b.rowSeq[$0 + 1] != b.rowSeq[$0] }
    }

    public func step(_ batch: PackedBatch, step: Int, sampleIndices: [Int], grads: [ParamSet], workspace: Workspace) -> [String: Double] {
        student.lora?.dropoutSeed = FineTuneTask.stepSeed(seed, step)
        let s = settings, C = dims.hidden, B = s.blocks
        let pairs = Self.pairs(teacherLayers: teacher.dims.layers, studentLayers: student.dims.layers, blocks: B)
        let rows = Self.alignedRows(batch, s.align)
        let nr = rows.count
        let online = s.teacherMode == .online
        let postNormLast = s.lastBlock == .postNorm

        // Teacher states at the aligned rows, (B, nr, C): cached per example when frozen.
        var tStates = [Float](repeating: 0, count: B * nr * C)
        var tActs: Activations? = nil
        let cacheable = s.cachesTeacher
        var perSampleRows: [Int] = []
        if cacheable {
            // Rows of each sequence, in order (aligned rows are grouped by sequence).
            var counts = [Int](repeating: 0, count: batch.count)
            for r in rows { counts[batch.rowSeq[r]] += 1 }
            perSampleRows = counts
        }
        if cacheable && sampleIndices.allSatisfy({ cache[$0] != nil }) {
            var off = 0
            for (b, idx) in sampleIndices.enumerated() {
                let cached = cache[idx]!, n = perSampleRows[b]
                for k in 0..<B { for r in 0..<n { for j in 0..<C { tStates[(k * nr + off + r) * C + j] = cached[(k * n + r) * C + j] } } }
                off += n
            }
        } else {
            let ta = teacher.forward(batch, training: online, workspace: teacherWorkspace)
            tActs = ta
            for (k, p) in pairs.enumerated() {
                let src = (k == B - 1 && postNormLast) ? Array(UnsafeBufferPointer(start: ta.lastHidden.ptr, count: batch.rows * C))
                                                       : ta.hiddenState(p.teacher, dims: teacher.dims)
                for (i, r) in rows.enumerated() { for j in 0..<C { tStates[(k * nr + i) * C + j] = src[r * C + j] } }
            }
            if cacheable {
                var off = 0
                for (b, idx) in sampleIndices.enumerated() {
                    let n = perSampleRows[b]
                    var v = [Float](repeating: 0, count: B * n * C)
                    for k in 0..<B { for r in 0..<n { for j in 0..<C { v[(k * n + r) * C + j] = tStates[(k * nr + off + r) * C + j] } } }
                    cache[idx] = v
                    off += n
                }
            }
        }

        // Student forward, then the distillation terms at each block boundary.
        let sa = student.forward(batch, training: true, workspace: workspace)
        var req = BackwardRequest(grads: grads[0], trainable: studentTrainable)
        if student.lora != nil { req.loraGrads = grads[1] }
        let headGrads = grads[student.lora != nil ? 2 : 1]
        let teacherGrads = online ? grads.last : nil
        var dTeacher: [Int: [Float]] = [:], dTeacherLast: [Float]? = nil
        var dCos = 0.0, dNorm = 0.0, lms = 0.0
        for (k, p) in pairs.enumerated() {
            let lastPost = k == B - 1 && postNormLast
            let full = lastPost ? Array(UnsafeBufferPointer(start: sa.lastHidden.ptr, count: batch.rows * C)) : sa.hiddenState(p.student, dims: student.dims)
            var sRows = [Float](repeating: 0, count: nr * C)
            for (i, r) in rows.enumerated() { for j in 0..<C { sRows[i * C + j] = full[r * C + j] } }
            var ds = [Float](repeating: 0, count: nr * C)
            var dt: [Float]? = online ? [Float](repeating: 0, count: nr * C) : nil
            tStates.withUnsafeBufferPointer { tb in
                let t = tb.baseAddress! + k * nr * C
                dCos += cosineDistance(t: t, s: sRows, rows: nr, c: C, ds: &ds, dt: nil, scale: s.lambdaCos / Float(B))
                dNorm += squaredDistance(t: t, s: sRows, rows: nr, c: C, ds: &ds, dt: nil, scale: s.lambdaNorm / Float(B))
                if dt != nil {
                    dt!.withUnsafeMutableBufferPointer { dtb in
                        var scratch = [Float](repeating: 0, count: nr * C)
                        _ = cosineDistance(t: t, s: sRows, rows: nr, c: C, ds: &scratch, dt: dtb.baseAddress, scale: s.lambdaCos / Float(B))
                        _ = squaredDistance(t: t, s: sRows, rows: nr, c: C, ds: &scratch, dt: dtb.baseAddress, scale: s.lambdaNorm / Float(B))
                    }
                }
            }
            // Scatter the aligned-row gradients back to all scored rows.
            var dFull = [Float](repeating: 0, count: batch.rows * C)
            for (i, r) in rows.enumerated() { for j in 0..<C { dFull[r * C + j] += ds[i * C + j] } }
            if lastPost { req.dLastHidden = add(req.dLastHidden, dFull) } else { req.dHidden[p.student] = add(req.dHidden[p.student], dFull) }
            if let dt {
                var tFull = [Float](repeating: 0, count: batch.rows * C)
                for (i, r) in rows.enumerated() { for j in 0..<C { tFull[r * C + j] += dt[i * C + j] } }
                if lastPost { dTeacherLast = add(dTeacherLast, tFull) } else { dTeacher[p.teacher] = add(dTeacher[p.teacher], tFull) }
            }
            // L_ms on the intermediate blocks (k < B), over every scored row with its target.
            if k < B - 1 && s.lambdaMS > 0 && !batch.targets.isEmpty {
                let scale = s.lambdaMS / Float(B - 1)
                var dh = [Float](repeating: 0, count: batch.rows * C)
                let dTable = grads[0].ptr(ParamName.itemEmbedding).flatMap { studentTrainable.contains(ParamName.itemEmbedding) ? $0 : nil }
                lms += full.withUnsafeBufferPointer { hb in
                    supervisionHeadLoss(h: hb.baseAddress!, rows: batch.rows, c: C, a: heads.req("head.\(k + 1)"), d0: dims.itemDim,
                                        table: student.params.req(ParamName.itemEmbedding), numItems: dims.numItems, targets: batch.targets,
                                        dh: &dh, da: headGrads.req("head.\(k + 1)"), dTable: dTable, scale: scale, workspace: headWorkspace)
                } / Double(B - 1)
                req.dHidden[p.student] = add(req.dHidden[p.student], dh)
            }
        }
        student.backward(sa, req, workspace: workspace)
        var teacherCE = 0.0
        if online, let ta = tActs, let tg = teacherGrads {
            var treq = BackwardRequest(grads: tg)
            treq.dHidden = dTeacher
            treq.dLastHidden = dTeacherLast
            teacher.backward(ta, treq, workspace: teacherWorkspace)
            teacherCE = Double(ta.loss)
        }
        let ce = Double(sa.loss)
        let total = ce + Double(s.lambdaCos) * dCos / Double(B) + Double(s.lambdaNorm) * dNorm / Double(B) + Double(s.lambdaMS) * lms + teacherCE
        var out: [String: Double] = ["loss": total, "ce": ce, "d_cos": dCos / Double(B), "d_norm": dNorm / Double(B), "l_ms": lms]
        if online { out["teacher_ce"] = teacherCE }
        return out
    }

    private func add(_ a: [Float]?, _ b: [Float]) -> [Float] {
        guard var a else { return b }
        for i in 0..<a.count { a[i] += b[i] }
        return a
    }
}
