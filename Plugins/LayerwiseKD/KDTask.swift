import Foundation
import Common
import Engine
import Training
import Toolbench
import TrainingKit

/// How the distillation is set up (the pass's settings; the trainer's and what trains are
/// TrainingKit's).
public struct KDSettings: TrainingSettings {
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

    public static let table = OptionTable<KDSettings>([
        .option("blocks", \.blocks, "B: teacher layer k·M/B pairs with student layer k·N/B, k = 1…B."),
        .option("lambda_cos", \.lambdaCos, "λ1, weight of D_cos (mean over blocks of 1 − cosine)."),
        .option("lambda_norm", \.lambdaNorm, "λ2, weight of D_norm (mean over blocks of ‖h_t − h_s‖²)."),
        .option("lambda_ms", \.lambdaMS, "λ3, weight of L_ms (mean CE of the B−1 intermediate heads)."),
        .option("align", \.align, "Align the last position (the paper) or every scored position."),
        .option("last_block", \.lastBlock, "Compare the last block before or after model.norm."),
        .option("teacher_mode", \.teacherMode, "Frozen teacher, or trained jointly (the paper's RQ4)."),
        // Written back as the effective value (true/false), so the resume key and the
        // effective recipe say what ran.
        .option("cache_teacher", \.cacheTeacher, defaultText: "true offline", encoded: { .some($0.cachesTeacher) },
                "Cache the frozen teacher's states per example after their first use (offline only)."),
    ])

    public func problems(with model: TrainableOptions) -> [String] {
        var p: [String] = []
        if blocks < 1 { p.append("blocks must be at least 1 (a divisor of both depths)") }
        for (n, v) in [("lambda_cos", lambdaCos), ("lambda_norm", lambdaNorm), ("lambda_ms", lambdaMS)] where v < 0 || !v.isFinite {
            p.append("\(n) must be a finite number >= 0 (got \(v)), e.g. 0.1")
        }
        if teacherMode == .online && cacheTeacher == true {
            p.append("cache_teacher is true but teacher_mode is online (a teacher that trains cannot be cached): drop cache_teacher, or use teacher_mode offline")
        }
        return p
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
        var g = try FineTuneTask.groups(model: student, lora: lora, parts: parts, seed: seed)
        studentTrainable = g[0].trainable
        g.append(ParamGroup(name: Self.headsGroup, params: heads, trainable: Set(layout.names), role: .auxiliary))
        if settings.teacherMode == .online {
            if let lora {
                // A LoRA teacher trains as the student does (SLMRec trains both with LoRA): its
                // own adapters (a seed of their own, so the shared first layers do not start
                // with identical A matrices), projections and prompt; its decoder stays frozen.
                let tg = try FineTuneTask.groups(model: teacher, lora: lora, parts: parts, seed: seed ^ Self.teacherSeedSalt)
                teacherTrainable = tg[0].trainable
                g.append(ParamGroup(name: Self.teacherGroup, params: teacher.params, trainable: tg[0].trainable, role: .teacher))
                g.append(ParamGroup(name: Self.teacherLoRAGroup, params: tg[1].params, trainable: tg[1].trainable, role: .teacher))
            } else {
                teacherTrainable = Set(teacher.params.layout.names)
                g.append(ParamGroup(name: Self.teacherGroup, params: teacher.params, trainable: teacherTrainable, role: .teacher))
            }
        } else {
            teacherTrainable = []
        }
        groups = g
    }

    /// Group names (also the tensors' prefix in the resumable state).
    public static let headsGroup = "kd-heads", teacherGroup = "teacher", teacherLoRAGroup = "teacher-lora"
    static let teacherSeedSalt: UInt64 = 0x7465_6163_6865_72   // "teacher"
    let teacherTrainable: Set<String>

    /// Rows of the scored rows that are aligned: every scored row, or the last of each sequence.
    static func alignedRows(_ b: PackedBatch, _ align: KDSettings.Align) -> [Int] {
        if align == .all { return Array(0..<b.rows) }
        return (0..<b.rows).filter { $0 == b.rows - 1 || b.rowSeq[$0 + 1] != b.rowSeq[$0] }
    }

    public func step(_ batch: PackedBatch, step: Int, sampleIndices: [Int], grads: Gradients, workspace: Workspace) -> [String: Double] {
        student.lora?.dropoutSeed = FineTuneTask.stepSeed(seed, step)
        teacher.lora?.dropoutSeed = FineTuneTask.stepSeed(seed ^ Self.teacherSeedSalt, step)
        let s = settings, C = dims.hidden, B = s.blocks
        let pairs = Self.pairs(teacherLayers: teacher.dims.layers, studentLayers: student.dims.layers, blocks: B)
        let rows = Self.alignedRows(batch, s.align)
        let nr = rows.count, R = batch.rows
        let online = s.teacherMode == .online
        let postNormLast = s.lastBlock == .postNorm

        // Teacher states at the aligned rows, (B, nr, C): cached per example when frozen.
        let tStates = headWorkspace.get("kd.tStates", B * nr * C).ptr
        var tActs: Activations? = nil
        let cacheable = s.cachesTeacher
        var perSampleRows: [Int] = []
        if cacheable {
            // Rows of each sequence, in order (aligned rows are grouped by sequence).
            var counts = [Int](repeating: 0, count: batch.count)
            for r in rows { counts[batch.rowSeq[r]] += 1 }
            perSampleRows = counts
        }
        let cached = cacheable ? sampleIndices.compactMap { cache[$0] } : []
        if cacheable && cached.count == sampleIndices.count {
            var off = 0
            for (b, v) in cached.enumerated() {
                let n = perSampleRows[b]
                for k in 0..<B { for r in 0..<n { for j in 0..<C { tStates[(k * nr + off + r) * C + j] = v[(k * n + r) * C + j] } } }
                off += n
            }
        } else {
            let ta = teacher.forward(batch, training: online, workspace: teacherWorkspace)
            tActs = ta
            for (k, p) in pairs.enumerated() {
                let src = (k == B - 1 && postNormLast) ? UnsafePointer(ta.lastHidden.ptr) : ta.hiddenStatePointer(p.teacher, dims: teacher.dims)
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

        // Student forward, then the distillation terms at each block boundary. The per-block
        // scratch (aligned rows, their gradients) is the workspace's, reused every step.
        let sa = student.forward(batch, training: true, workspace: workspace)
        guard let studentGrads = grads[ParamGroup.model], let headGrads = grads[Self.headsGroup] else {
            preconditionFailure("LayerwiseKDTask.step: the trainer passed gradients without the model or kd-heads group")
        }
        var req = BackwardRequest(grads: studentGrads, trainable: studentTrainable)
        req.loraGrads = grads[ParamGroup.lora]
        let teacherGrads = online ? grads[Self.teacherGroup] : nil
        let sRows = headWorkspace.get("kd.sRows", nr * C).ptr
        let ds = headWorkspace.get("kd.ds", nr * C).ptr
        let dt = headWorkspace.get("kd.dt", nr * C).ptr
        let dh = headWorkspace.get("kd.dh", R * C).ptr
        var dTeacher: [Int: [Float]] = [:], dTeacherLast: [Float]? = nil
        var dCos = 0.0, dNorm = 0.0, lms = 0.0
        for (k, p) in pairs.enumerated() {
            let lastPost = k == B - 1 && postNormLast
            let full = lastPost ? UnsafePointer(sa.lastHidden.ptr) : sa.hiddenStatePointer(p.student, dims: student.dims)
            for (i, r) in rows.enumerated() { for j in 0..<C { sRows[i * C + j] = full[r * C + j] } }
            ds.update(repeating: 0, count: nr * C)
            let t = UnsafePointer(tStates + k * nr * C)
            dCos += cosineDistance(t: t, s: sRows, rows: nr, c: C, ds: ds, dt: nil, scale: s.lambdaCos / Float(B))
            dNorm += squaredDistance(t: t, s: sRows, rows: nr, c: C, ds: ds, dt: nil, scale: s.lambdaNorm / Float(B))
            // Scatter the aligned-row gradients back to all scored rows.
            func scatter(_ g: UnsafeMutablePointer<Float>, into acc: [Float]?) -> [Float] {
                var out = acc ?? [Float](repeating: 0, count: R * C)
                for (i, r) in rows.enumerated() { for j in 0..<C { out[r * C + j] += g[i * C + j] } }
                return out
            }
            if lastPost { req.dLastHidden = scatter(ds, into: req.dLastHidden) } else { req.dHidden[p.student] = scatter(ds, into: req.dHidden[p.student]) }
            if online {
                dt.update(repeating: 0, count: nr * C)
                _ = cosineDistance(t: t, s: sRows, rows: nr, c: C, ds: nil, dt: dt, scale: s.lambdaCos / Float(B))
                _ = squaredDistance(t: t, s: sRows, rows: nr, c: C, ds: nil, dt: dt, scale: s.lambdaNorm / Float(B))
                if lastPost { dTeacherLast = scatter(dt, into: dTeacherLast) } else { dTeacher[p.teacher] = scatter(dt, into: dTeacher[p.teacher]) }
            }
            // L_ms on the intermediate blocks (k < B), over every scored row with its target.
            if k < B - 1 && s.lambdaMS > 0 && !batch.targets.isEmpty {
                let scale = s.lambdaMS / Float(B - 1)
                dh.update(repeating: 0, count: R * C)
                let dTable = studentTrainable.contains(ParamName.itemEmbedding) ? studentGrads.ptr(ParamName.itemEmbedding) : nil
                lms += supervisionHeadLoss(h: full, rows: R, c: C, a: heads.req("head.\(k + 1)"), d0: dims.itemDim,
                                           table: student.params.req(ParamName.itemEmbedding), numItems: dims.numItems, targets: batch.targets,
                                           dh: dh, da: headGrads.req("head.\(k + 1)"), dTable: dTable, scale: scale, workspace: headWorkspace) / Double(B - 1)
                req.dHidden[p.student] = scatterAll(dh, count: R * C, into: req.dHidden[p.student])
            }
        }
        student.backward(sa, req, workspace: workspace)
        var teacherCE = 0.0
        if online, let ta = tActs, let tg = teacherGrads {
            var treq = BackwardRequest(grads: tg, trainable: teacherTrainable)
            treq.loraGrads = grads[Self.teacherLoRAGroup]
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

    /// acc + g over all R·C values (acc nil: a copy of g).
    private func scatterAll(_ g: UnsafeMutablePointer<Float>, count: Int, into acc: [Float]?) -> [Float] {
        guard var a = acc else { return Array(UnsafeBufferPointer(start: g, count: count)) }
        for i in 0..<count { a[i] += g[i] }
        return a
    }
}
