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

    /// B of the uniform map; nil: 4. Optional so that a `blocks` the pairing does not read
    /// (explicit `pairs`, `layer_map: "last"`) is an error rather than ignored.
    public var blocks: Int? = nil
    public static let defaultBlocks = 4
    var blockCount: Int { blocks ?? Self.defaultBlocks }
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

    /// True when the pairing is the uniform map, the only one that reads `blocks`.
    var usesBlocks: Bool { pairs == nil && layerMap != .last }

    /// The (teacher, student) layer pairs these settings align, for depths M and N.
    public func layerPairs(teacherLayers m: Int, studentLayers n: Int) -> [(teacher: Int, student: Int)] {
        if let p = pairs { return p.map { ($0.first ?? 0, $0.last ?? 0) } }
        if layerMap == .last { return [(m, n)] }
        return LayerwiseKDTask.pairs(teacherLayers: m, studentLayers: n, blocks: max(blockCount, 1))
    }

    public static let table = OptionTable<KDSettings>([
        // Written back as the effective value where the uniform map reads it (so a recipe
        // without `blocks` keeps the resume key it had when blocks was a plain 4), and left
        // out where explicit pairs or layer_map "last" make it meaningless.
        .option("blocks", \.blocks, defaultText: "4", encoded: { $0.usesBlocks ? .some($0.blockCount) : $0.blocks },
                "B of layer_map uniform: teacher layer k·M/B pairs with student layer k·N/B, k = 1…B."),
        .option("lambda_cos", \.lambdaCos, "λ1, weight of D_cos (mean over the B layer pairs of 1 − cosine)."),
        .option("lambda_norm", \.lambdaNorm, "λ2, weight of D_norm (mean over the B layer pairs of ‖h_t − h_s‖²)."),
        .option("lambda_ms", \.lambdaMS, "λ3, weight of L_ms (mean CE of the heads on the paired student layers below N: B−1 for the presets)."),
        .option("align", \.align, "Align the last position (the paper) or every scored position."),
        .option("last_block", \.lastBlock, "Compare the last block before or after model.norm."),
        .option("teacher_mode", \.teacherMode, "Frozen teacher, or trained jointly (the paper's RQ4)."),
        // Written back as the effective value (true/false), so the resume key and the
        // effective recipe say what ran.
        .option("cache_teacher", \.cacheTeacher, defaultText: "true offline", encoded: { .some($0.cachesTeacher) },
                "Cache the frozen teacher's states per example after their first use (offline only)."),
        .option("pairs", \.pairs, defaultText: "from layer_map",
                "Explicit [[teacher_layer, student_layer], …] (layer l = output of decoder layer l, 0 = embeddings), strictly increasing; B = their number; replaces layer_map and blocks."),
        .option("layer_map", \.layerMap, defaultText: "uniform", "uniform: blocks pairs k·M/B ↔ k·N/B; last: only [M, N] (B = 1, no L_ms heads)."),
        .option("lambda_kl", \.lambdaKL, defaultText: "0 (off)",
                "λ_kl of τ²·KL(softmax(teacher scores/τ) ‖ softmax(student scores/τ)) over items 1…N at the rows the CE scores."),
        .option("temperature", \.temperature, defaultText: "1", "τ of the logit term (> 0; needs lambda_kl)."),
    ])

    public var readsEveryScore: Bool { (lambdaKL ?? 0) > 0 }

    public func problems(with model: TrainableOptions) -> [String] {
        var p: [String] = []
        if let b = blocks, b < 1 { p.append("blocks must be at least 1 (got \(b)): a divisor of both depths, e.g. 2") }
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
            if let b = blocks {
                p.append("blocks \(b) and pairs both choose the layer pairing (with pairs, B is their number, \(pl.count)): drop blocks")
            }
        } else if layerMap == .last, let b = blocks {
            p.append("blocks \(b) does nothing with layer_map \"last\" (it pairs only the last layers, B = 1): drop blocks, or use layer_map \"uniform\"")
        }
        if let l = lambdaKL, l < 0 || !l.isFinite { p.append("lambda_kl must be a finite number >= 0 (got \(l)), e.g. 0.5") }
        if let t = temperature, t <= 0 || !t.isFinite { p.append("temperature must be a finite number > 0 (got \(t)), e.g. 2") }
        // An explicit lambda_kl 0 with a temperature is accepted: a grid over lambda_kl that
        // includes 0 keeps one temperature for all its values.
        if let t = temperature, lambdaKL == nil {
            p.append("temperature \(t) does nothing without lambda_kl (the logit term is off by default): set lambda_kl > 0, e.g. 0.5, or drop temperature")
        }
        if teacherMode == .online && cacheTeacher == true {
            p.append("cache_teacher is true but teacher_mode is online (a teacher that trains cannot be cached): drop cache_teacher, or use teacher_mode offline")
        }
        return p
    }
}

/// SLMRec layer-wise distillation (Xu et al., ICLR 2025, §4): a student with N layers learns
/// from a teacher with M layers (same hidden size) at B aligned layer pairs; by default
/// (layer_map uniform) teacher layer k·M/B pairs with student layer k·N/B, k = 1…B.
///   L = CE + λ1·D_cos + λ2·D_norm + λ3·L_ms + λ_kl·τ²·KL
/// with D_cos and D_norm averaged over the B pairs, L_ms the mean CE of the H extra heads on
/// the paired student layers below N (H = B−1 when the last pair is layer N; training aids,
/// not in the output) and KL the optional logit term (Hinton et al. 2015) at the CE's rows.
public final class LayerwiseKDTask: TrainingTask {
    public let student: ELLMRecModel
    public let teacher: ELLMRecModel
    public let settings: KDSettings
    public let heads: ParamSet          // "head.k" [D0, C] for k = 1…H
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
                p.append("pairs entry \(bad) is out of range: the teacher has layers 0…\(t.layers), the student 0…\(s.layers); keep every pair within them")
            }
            // A last pair below the student's last layer is allowed (pre-norm): the final CE
            // supervises layer N anyway, and that pair gets an L_ms head like the others.
            if settings.lastBlock == .postNorm, let last = pairs.last, last != [t.layers, s.layers] {
                p.append("last_block post-norm compares the states after model.norm, so the last pair must be [\(t.layers), \(s.layers)] (got \(last)): use last_block pre-norm, or end the pairs there")
            }
        } else if settings.layerMap != .last {
            let b = settings.blockCount
            if b < 1 { p.append("blocks must be at least 1") }
            else if t.layers % b != 0 || s.layers % b != 0 {
                p.append("blocks \(b) must divide both depths (teacher \(t.layers), student \(s.layers)); or give explicit pairs")
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
        // One L_ms head per paired student layer below N (layer N's head is the model's own).
        // The pairs increase strictly, so these are the first H pairs: all but the last when
        // it is layer N (the uniform and last maps, H = B−1 as in the paper), all otherwise.
        headCount = layerPairs.filter { $0.student < student.dims.layers }.count
        var layout = ParamLayout()
        for k in 0..<headCount { layout.append("head.\(k + 1)", [student.dims.itemDim, student.dims.hidden]) }
        heads = ParamSet(layout: layout)
        // Each extra head starts as the student's output projection (a sensible map d1 → d0).
        for name in layout.names { heads.set(name, student.params.values(ParamName.outputProj)) }
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
    /// H, the number of L_ms heads: on the first H pairs (those with a student layer below N).
    public let headCount: Int

    /// Rows of the scored rows that are aligned: every scored row, or the last of each sequence.
    static func alignedRows(_ b: PackedBatch, _ align: KDSettings.Align) -> [Int] {
        if align == .all { return Array(0..<b.rows) }
        return (0..<b.rows).filter { $0 == b.rows - 1 || b.rowSeq[$0 + 1] != b.rowSeq[$0] }
    }

    public func step(_ batch: PackedBatch, step: Int, sampleIndices: [Int], grads: Gradients, workspace: Workspace) -> [String: Double] {
        student.lora?.dropoutSeed = FineTuneTask.stepSeed(seed, step)
        teacher.lora?.dropoutSeed = FineTuneTask.stepSeed(seed ^ Self.teacherSeedSalt, step)
        let s = settings, C = dims.hidden, pairs = layerPairs, B = pairs.count, H = headCount
        let D0 = dims.itemDim, cols = dims.numItems + 1
        let lambdaKL = s.lambdaKL ?? 0, tau = s.temperature ?? 1, kl = lambdaKL > 0
        let rows = Self.alignedRows(batch, s.align)
        let nr = rows.count, R = batch.rows
        let online = s.teacherMode == .online
        let postNormLast = s.lastBlock == .postNorm

        // Teacher states at the aligned rows, (B, nr, C): cached per example when frozen.
        let tStates = headWorkspace.get("kd.tStates", B * nr * C).ptr
        // The logit term's teacher side: its user vectors at every scored row, (R, D0). Its
        // scores are recomputed from them and its item table (exact, and D0 floats per row to
        // cache where the score rows would be N+1).
        let tUser = kl ? headWorkspace.get("kd.tUser", R * D0).ptr : nil
        var tActs: Activations? = nil
        let cacheable = s.cachesTeacher
        // Per example: its aligned rows and its scored rows (both grouped by sequence, in order),
        // and so the length of its cache entry, (B, n, C) states then (m, D0) user vectors.
        var alignedPer = [Int](repeating: 0, count: batch.count), scoredPer = alignedPer
        if cacheable {
            for r in rows { alignedPer[batch.rowSeq[r]] += 1 }
            for r in 0..<R { scoredPer[batch.rowSeq[r]] += 1 }
        }
        func entryCount(_ b: Int) -> Int { B * alignedPer[b] * C + (kl ? scoredPer[b] * D0 : 0) }
        let cached = cacheable ? sampleIndices.compactMap { cache[$0] } : []
        if cacheable && cached.count == sampleIndices.count && cached.indices.allSatisfy({ cached[$0].count == entryCount($0) }) {
            var off = 0, uoff = 0
            for (b, v) in cached.enumerated() {
                let n = alignedPer[b], m = scoredPer[b]
                for k in 0..<B { for r in 0..<n { for j in 0..<C { tStates[(k * nr + off + r) * C + j] = v[(k * n + r) * C + j] } } }
                if let tUser { for r in 0..<m { for j in 0..<D0 { tUser[(uoff + r) * D0 + j] = v[B * n * C + r * D0 + j] } } }
                off += n; uoff += m
            }
        } else {
            let ta = teacher.forward(batch, training: online, workspace: teacherWorkspace)
            tActs = ta
            for (k, p) in pairs.enumerated() {
                let src = (k == B - 1 && postNormLast) ? UnsafePointer(ta.lastHidden.ptr) : ta.hiddenStatePointer(p.teacher, dims: teacher.dims)
                for (i, r) in rows.enumerated() { for j in 0..<C { tStates[(k * nr + i) * C + j] = src[r * C + j] } }
            }
            if let tUser { tUser.update(from: ta.user.ptr, count: R * D0) }
            if cacheable {
                var off = 0, uoff = 0
                for (b, idx) in sampleIndices.enumerated() {
                    let n = alignedPer[b], m = scoredPer[b]
                    var v = [Float](repeating: 0, count: entryCount(b))
                    for k in 0..<B { for r in 0..<n { for j in 0..<C { v[(k * n + r) * C + j] = tStates[(k * nr + off + r) * C + j] } } }
                    if let tUser { for r in 0..<m { for j in 0..<D0 { v[B * n * C + r * D0 + j] = tUser[(uoff + r) * D0 + j] } } }
                    cache[idx] = v
                    off += n; uoff += m
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
        var dTeacher: [Int: [Float]] = [:], dTeacherLast: [Float]? = nil, dTeacherUser: [Float]? = nil
        var dCos = 0.0, dNorm = 0.0, lms = 0.0
        // D_cos and D_norm are means over the aligned rows: one per sequence with the paper's
        // last-position alignment, whose share of a data-parallel rank is not its row share
        // (PackedBatch.sequenceWeight); with every position aligned they are per-row means.
        let perSequence = s.align == .last ? Float(batch.sequenceWeight) : 1
        for (k, p) in pairs.enumerated() {
            let lastPost = k == B - 1 && postNormLast
            let full = lastPost ? UnsafePointer(sa.lastHidden.ptr) : sa.hiddenStatePointer(p.student, dims: student.dims)
            for (i, r) in rows.enumerated() { for j in 0..<C { sRows[i * C + j] = full[r * C + j] } }
            ds.update(repeating: 0, count: nr * C)
            let t = UnsafePointer(tStates + k * nr * C)
            dCos += cosineDistance(t: t, s: sRows, rows: nr, c: C, ds: ds, dt: nil, scale: s.lambdaCos * perSequence / Float(B)) * Double(perSequence)
            dNorm += squaredDistance(t: t, s: sRows, rows: nr, c: C, ds: ds, dt: nil, scale: s.lambdaNorm * perSequence / Float(B)) * Double(perSequence)
            // Scatter the aligned-row gradients back to all scored rows.
            func scatter(_ g: UnsafeMutablePointer<Float>, into acc: [Float]?) -> [Float] {
                var out = acc ?? [Float](repeating: 0, count: R * C)
                for (i, r) in rows.enumerated() { for j in 0..<C { out[r * C + j] += g[i * C + j] } }
                return out
            }
            if lastPost { req.dLastHidden = scatter(ds, into: req.dLastHidden) } else { req.dHidden[p.student] = scatter(ds, into: req.dHidden[p.student]) }
            if online {
                dt.update(repeating: 0, count: nr * C)
                _ = cosineDistance(t: t, s: sRows, rows: nr, c: C, ds: nil, dt: dt, scale: s.lambdaCos * perSequence / Float(B))
                _ = squaredDistance(t: t, s: sRows, rows: nr, c: C, ds: nil, dt: dt, scale: s.lambdaNorm * perSequence / Float(B))
                if lastPost { dTeacherLast = scatter(dt, into: dTeacherLast) } else { dTeacher[p.teacher] = scatter(dt, into: dTeacher[p.teacher]) }
            }
            // L_ms on the paired layers below N (k < H), over every scored row with its target.
            if k < H && s.lambdaMS > 0 && !batch.targets.isEmpty {
                let scale = s.lambdaMS / Float(H)
                dh.update(repeating: 0, count: R * C)
                let dTable = studentTrainable.contains(ParamName.itemEmbedding) ? studentGrads.ptr(ParamName.itemEmbedding) : nil
                lms += supervisionHeadLoss(h: full, rows: R, c: C, a: heads.req("head.\(k + 1)"), d0: dims.itemDim,
                                           table: student.params.req(ParamName.itemEmbedding), numItems: dims.numItems, targets: batch.targets,
                                           dh: dh, da: headGrads.req("head.\(k + 1)"), dTable: dTable, scale: scale,
                                           softmax: batch.softmax, sample: batch.sample, workspace: headWorkspace) / Double(H)
                req.dHidden[p.student] = scatterAll(dh, count: R * C, into: req.dHidden[p.student])
            }
        }
        // The logit term (Hinton et al. 2015; docs/passes.md for DLLM2Rec's ranking variant):
        // λ_kl·τ²·KL(softmax(z_t/τ) ‖ softmax(z_s/τ)) over items 1…N at every
        // row the CE scores, z = user · item tableᵀ as the CE's. Forward here, backward right
        // after: ∂/∂z_s into the student's user vector and item table (when it trains), and,
        // with an online teacher, ∂/∂z_t into the teacher's (the KL pulls both, as D_cos and
        // D_norm do).
        var klValue = 0.0
        if let tUser {
            let tTable = teacher.params.req(ParamName.itemEmbedding), sTable = student.params.req(ParamName.itemEmbedding)
            let tScores = headWorkspace.get("kd.tScores", R * cols).ptr          // (R, N+1)
            linearForward(out: tScores, inp: tUser, weight: tTable, bias: nil, m: R, n: cols, k: D0)
            let dS = headWorkspace.get("kd.dS", R * cols).ptr                    // (R, N+1) ∂/∂z_s
            dS.update(repeating: 0, count: R * cols)
            let dZt = online ? headWorkspace.get("kd.dZt", R * cols).ptr : nil   // (R, N+1) ∂/∂z_t
            dZt?.update(repeating: 0, count: R * cols)
            klValue = logitKL(teacher: tScores, student: sa.scores.ptr, rows: R, cols: cols, tau: tau, ds: dS, dt: dZt, scale: lambdaKL)
            // z = u·Eᵀ: du = dz·E, dE += dzᵀ·u (linearBackward accumulates).
            var dU = [Float](repeating: 0, count: R * D0)
            let dSTable = studentTrainable.contains(ParamName.itemEmbedding) ? studentGrads.ptr(ParamName.itemEmbedding) : nil
            dU.withUnsafeMutableBufferPointer {
                linearBackward(dinp: $0.baseAddress, dweight: dSTable, dbias: nil, dout: dS, inp: sa.user.ptr, weight: sTable, m: R, n: cols, k: D0)
            }
            req.dUser = dU
            if let dZt, let tg = teacherGrads {
                var dUt = [Float](repeating: 0, count: R * D0)
                let dTTable = teacherTrainable.contains(ParamName.itemEmbedding) ? tg.ptr(ParamName.itemEmbedding) : nil
                dUt.withUnsafeMutableBufferPointer {
                    linearBackward(dinp: $0.baseAddress, dweight: dTTable, dbias: nil, dout: dZt, inp: tUser, weight: tTable, m: R, n: cols, k: D0)
                }
                dTeacherUser = dUt
            }
        }
        student.backward(sa, req, workspace: workspace)
        var teacherCE = 0.0
        if online, let ta = tActs, let tg = teacherGrads {
            var treq = BackwardRequest(grads: tg, trainable: teacherTrainable)
            treq.loraGrads = grads[Self.teacherLoRAGroup]
            treq.dHidden = dTeacher
            treq.dLastHidden = dTeacherLast
            treq.dUser = dTeacherUser
            teacher.backward(ta, treq, workspace: teacherWorkspace)
            teacherCE = Double(ta.loss)
        }
        let ce = Double(sa.loss)
        var total = ce + Double(s.lambdaCos) * dCos / Double(B) + Double(s.lambdaNorm) * dNorm / Double(B) + Double(s.lambdaMS) * lms + teacherCE
        if kl { total += Double(lambdaKL) * klValue }
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
