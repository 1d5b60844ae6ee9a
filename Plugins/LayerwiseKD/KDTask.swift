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
    public enum LayerMap: String, OptionEnum { case uniform, last }

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
    /// Explicit (teacher layer, student layer) pairs; 0 = the embeddings' output (hidden.0).
    /// Replaces `layer_map` and `blocks`. Optional options stay out of the effective options
    /// when unset, so recipes written before them keep their resume keys.
    public var pairs: [[Int]]? = nil
    /// uniform (nil): `blocks` pairs k·M/B ↔ k·N/B; last: only the two last layers.
    public var layerMap: LayerMap? = nil
    /// λ_kl of the logit term τ²·KL(softmax(t/τ) ‖ softmax(s/τ)); nil or 0: off.
    public var lambdaKL: Float? = nil
    /// τ of the logit term (nil: 1).
    public var temperature: Float? = nil
    public init() {}

    /// The (teacher, student) layer pairs these settings align, for depths M and N.
    public func layerPairs(teacherLayers m: Int, studentLayers n: Int) -> [(teacher: Int, student: Int)] {
        if let p = pairs { return p.map { ($0.first ?? 0, $0.last ?? 0) } }
        if layerMap == .last { return [(m, n)] }
        return LayerwiseKDTask.pairs(teacherLayers: m, studentLayers: n, blocks: max(blocks, 1))
    }

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
        .option("pairs", \.pairs, "Explicit [[teacher_layer, student_layer], …] (0 = embeddings output), strictly increasing; replaces layer_map and blocks."),
        .option("layer_map", \.layerMap, defaultText: "uniform", "uniform: blocks pairs k·M/B ↔ k·N/B; last: only [M, N]."),
        .option("lambda_kl", \.lambdaKL, defaultText: "0 (off)", "λ_kl of τ²·KL(softmax(teacher scores/τ) ‖ softmax(student scores/τ)) at the aligned rows."),
        .option("temperature", \.temperature, defaultText: "1", "τ of the logit term."),
    ])

    public func problems(with model: TrainableOptions) -> [String] {
        var p: [String] = []
        if blocks < 1 { p.append("blocks must be at least 1 (a divisor of both depths)") }
        for (n, v) in [("lambda_cos", lambdaCos), ("lambda_norm", lambdaNorm), ("lambda_ms", lambdaMS)] where v < 0 || !v.isFinite {
            p.append("\(n) must be a finite number >= 0 (got \(v)), e.g. 0.1")
        }
        if let pl = pairs {
            if pl.isEmpty { p.append("pairs is empty: give at least one [teacher_layer, student_layer], or drop it for layer_map / blocks") }
            if let bad = pl.first(where: { $0.count != 2 || $0.contains { $0 < 0 } }) {
                p.append("pairs entry \(bad) is not [teacher_layer, student_layer] with layers >= 0 (0 = the embeddings' output)")
            }
            for (a, b) in zip(pl, pl.dropFirst()) where a.count == 2 && b.count == 2 && !(b[0] > a[0] && b[1] > a[1]) {
                p.append("pairs must increase strictly in both columns: \(a) then \(b)"); break
            }
            if layerMap != nil { p.append("pairs and layer_map both choose the layer pairing: give one of them") }
        }
        if let l = lambdaKL, l < 0 || !l.isFinite { p.append("lambda_kl must be a finite number >= 0 (got \(l)), e.g. 0.5") }
        if let t = temperature, t <= 0 || !t.isFinite { p.append("temperature must be a finite number > 0 (got \(t)), e.g. 2") }
        if (lambdaKL ?? 0) > 0 && teacherMode == .online {
            p.append("lambda_kl with teacher_mode online is not supported (the teacher side of the KL has no backward): use the offline teacher, or lambda_kl 0")
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
        if let pairs = settings.pairs {
            // Explicit pairs: within both depths (0 = the embeddings' output, hidden.0).
            if let bad = pairs.first(where: { $0.count == 2 && ($0[0] > t.layers || $0[1] > s.layers) }) {
                p.append("pairs entry \(bad) is out of range: the teacher has layers 0…\(t.layers), the student 0…\(s.layers)")
            }
            if settings.lastBlock == .postNorm, let last = pairs.last, last != [t.layers, s.layers] {
                p.append("last_block post-norm compares the states after model.norm, so the last pair must be [\(t.layers), \(s.layers)] (got \(last)): use last_block pre-norm, or end the pairs there")
            }
        } else if settings.layerMap != .last {
            if settings.blocks < 1 { p.append("blocks must be at least 1") }
            else if t.layers % settings.blocks != 0 || s.layers % settings.blocks != 0 {
                p.append("blocks \(settings.blocks) must divide both depths (teacher \(t.layers), student \(s.layers)); or give explicit pairs")
            }
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
        layerPairs = settings.layerPairs(teacherLayers: teacher.dims.layers, studentLayers: student.dims.layers)
        var layout = ParamLayout()
        // One L_ms head per paired student layer but the last (the final head is the model's).
        for k in 1..<max(layerPairs.count, 1) { layout.append("head.\(k)", [student.dims.itemDim, student.dims.hidden]) }
        heads = ParamSet(layout: layout)
        // Each extra head starts as the student's output projection (a sensible map d1 → d0).
        for k in 1..<max(layerPairs.count, 1) { heads.set("head.\(k)", student.params.values(ParamName.outputProj)) }
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
    /// The aligned (teacher layer, student layer) pairs; their number is B below.
    public let layerPairs: [(teacher: Int, student: Int)]

    /// Rows of the scored rows that are aligned: every scored row, or the last of each sequence.
    static func alignedRows(_ b: PackedBatch, _ align: KDSettings.Align) -> [Int] {
        if align == .all { return Array(0..<b.rows) }
        return (0..<b.rows).filter { $0 == b.rows - 1 || b.rowSeq[$0 + 1] != b.rowSeq[$0] }
    }

    public func step(_ batch: PackedBatch, step: Int, sampleIndices: [Int], grads: Gradients, workspace: Workspace) -> [String: Double] {
        student.lora?.dropoutSeed = FineTuneTask.stepSeed(seed, step)
        teacher.lora?.dropoutSeed = FineTuneTask.stepSeed(seed ^ Self.teacherSeedSalt, step)
        let s = settings, C = dims.hidden, pairs = layerPairs, B = pairs.count
        let D0 = dims.itemDim, cols = dims.numItems + 1
        let lambdaKL = s.lambdaKL ?? 0, tau = s.temperature ?? 1, kl = lambdaKL > 0
        let rows = Self.alignedRows(batch, s.align)
        let nr = rows.count, R = batch.rows
        let online = s.teacherMode == .online
        let postNormLast = s.lastBlock == .postNorm

        // Teacher states at the aligned rows, (B, nr, C): cached per example when frozen.
        let tStates = headWorkspace.get("kd.tStates", B * nr * C).ptr
        // The teacher's user vectors at the aligned rows (the logit term's teacher scores are
        // recomputed from them and the teacher's item table: exact, and D0 floats per row to cache).
        let tUser = headWorkspace.get("kd.tUser", max(nr * D0, 1)).ptr
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
                if kl { for r in 0..<n { for j in 0..<D0 { tUser[(off + r) * D0 + j] = v[B * n * C + r * D0 + j] } } }
                off += n
            }
        } else {
            let ta = teacher.forward(batch, training: online, workspace: teacherWorkspace)
            tActs = ta
            for (k, p) in pairs.enumerated() {
                let src = (k == B - 1 && postNormLast) ? UnsafePointer(ta.lastHidden.ptr) : ta.hiddenStatePointer(p.teacher, dims: teacher.dims)
                for (i, r) in rows.enumerated() { for j in 0..<C { tStates[(k * nr + i) * C + j] = src[r * C + j] } }
            }
            if kl { for (i, r) in rows.enumerated() { for j in 0..<D0 { tUser[i * D0 + j] = ta.user.ptr[r * D0 + j] } } }
            if cacheable {
                var off = 0
                for (b, idx) in sampleIndices.enumerated() {
                    let n = perSampleRows[b]
                    var v = [Float](repeating: 0, count: B * n * C + (kl ? n * D0 : 0))
                    for k in 0..<B { for r in 0..<n { for j in 0..<C { v[(k * n + r) * C + j] = tStates[(k * nr + off + r) * C + j] } } }
                    if kl { for r in 0..<n { for j in 0..<D0 { v[B * n * C + r * D0 + j] = tUser[(off + r) * D0 + j] } } }
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
        // The logit term (Hinton et al. 2015; DLLM2Rec and SLMRec's online variant for
        // recommenders): λ_kl·τ²·KL(softmax(t/τ) ‖ softmax(s/τ)) over items 1…N at the aligned
        // rows, back through the student's user vector (and its item table when that trains).
        var klValue = 0.0
        if kl {
            let tScores = headWorkspace.get("kd.tScores", nr * cols).ptr, sScores = headWorkspace.get("kd.sScores", nr * cols).ptr
            let sUser = headWorkspace.get("kd.sUser", nr * D0).ptr
            linearForward(out: tScores, inp: tUser, weight: teacher.params.req(ParamName.itemEmbedding), bias: nil, m: nr, n: cols, k: D0)
            for (i, r) in rows.enumerated() {
                (sScores + i * cols).update(from: sa.scores.ptr + r * cols, count: cols)
                (sUser + i * D0).update(from: sa.user.ptr + r * D0, count: D0)
            }
            let dS = headWorkspace.get("kd.dS", nr * cols).ptr
            dS.update(repeating: 0, count: nr * cols)
            klValue = logitKL(teacher: tScores, student: sScores, rows: nr, cols: cols, tau: tau, ds: dS, scale: lambdaKL)
            let dU = headWorkspace.get("kd.dU", nr * D0).ptr
            dU.update(repeating: 0, count: nr * D0)
            let dTable = studentTrainable.contains(ParamName.itemEmbedding) ? studentGrads.ptr(ParamName.itemEmbedding) : nil
            linearBackward(dinp: dU, dweight: dTable, dbias: nil, dout: dS, inp: sUser, weight: student.params.req(ParamName.itemEmbedding), m: nr, n: cols, k: D0)
            var du = req.dUser ?? [Float](repeating: 0, count: R * D0)
            for (i, r) in rows.enumerated() { for j in 0..<D0 { du[r * D0 + j] += dU[i * D0 + j] } }
            req.dUser = du
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
            + Double(lambdaKL) * klValue
        var out: [String: Double] = ["loss": total, "ce": ce, "d_cos": dCos / Double(B), "d_norm": dNorm / Double(B), "l_ms": lms]
        if kl { out["kl"] = klValue }
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
