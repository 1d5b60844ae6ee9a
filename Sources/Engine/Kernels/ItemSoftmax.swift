import Common
import Foundation

// The training loss over the item catalogue, in three forms (docs/training.md "Softmax over
// items"). With user vectors u_r (R, D), the item table E (N+1, D; row 0 padding, never a
// class) and scores s_rj = u_r·e_j:
//
// - full: CE_r = logsumexp_{j=1…N} s_rj − s_r,y with the (R, N+1) score and probability
//   matrices materialised (crossEntropyForward/Backward; what the logit-KL term reads).
// - streamed: the same CE_r, exact, with the items taken one block at a time and the
//   log-sum-exp accumulated online (Milakov & Gimelshein 2018, "Online normalizer calculation
//   for softmax"): per block b, lse ← logaddexp(lse, logsumexp_{j∈b} s_rj). The backward forms
//   each block's scores again and uses p_rj = exp(s_rj − lse_r):
//     ∂CE_r/∂s_rj = p_rj − [j = y_r],   du_r += Σ_j ∂s_rj·e_j,   de_j += Σ_r ∂s_rj·u_r.
//   Memory: a (rows ≤ 512, block) tile instead of (R, N+1) twice (9.6 GB at R = 3,200 and
//   Cloth's N = 377 k); cost: one more score product than full (four instead of three).
// - sampled: k negatives shared by the batch, drawn with replacement from q (uniform, or
//   proportional to training popularity + 1), with the log-Q correction of Bengio & Senécal
//   (2008) and Jean et al. (2015) as two-tower retrieval uses it (Yi et al. 2019, eq. 3):
//     o_r0 = s_r,y − log q_y,   o_rm = s_r,n_m − log q_n_m   (m = 1…k; −∞ where n_m = y_r,
//                                                              an accidental hit),
//     L_r  = logsumexp_m o_rm − o_r0   over {0} ∪ {1…k},
//   ∂L_r/∂o_r0 = p_r0 − 1, ∂L_r/∂o_rm = p_rm (p = softmax(o_r)); the correction makes the
//   sampled softmax an estimate of the full one (a uniform q only shifts every logit alike).
//   Cost: 2·R·(k+1)·D per product instead of 2·R·N·D.

/// How a training loss scores the catalogue. `full` is exact and keeps (R, N+1) matrices;
/// `streamed` is exact in O(rows × block) memory; `sampled` is the log-Q-corrected sampled
/// softmax over k shared negatives.
public enum ItemSoftmax: String, Sendable, Codable, CaseIterable, Equatable {
    case full, streamed, sampled
}

/// One batch's shared negatives: ids in 1…N (repeats allowed) and log q of each, plus the
/// log q of every item for the targets' correction.
public struct SampledItems: Sendable, Equatable {
    public let ids: [Int32]
    public let logQ: [Float]
    /// log q(j) for j = 0…N (entry 0 unused), shared by every batch of a run.
    public let logQAll: [Float]
    public init(ids: [Int32], logQ: [Float], logQAll: [Float]) { self.ids = ids; self.logQ = logQ; self.logQAll = logQAll }
}

/// Draws a batch's negatives: k ids with replacement from q, from the run's seed and the step
/// (nothing to save for a resume: step s draws the same ids resumed or not).
public struct ItemSampler: Sendable {
    public enum Distribution: String, Sendable, Codable, CaseIterable { case uniform, popularity }
    public let distribution: Distribution
    public let numItems: Int
    public let count: Int
    /// Cumulative q over items 1…N (popularity only).
    let cumulative: [Double]
    let logQAll: [Float]

    /// `counts[j]`, j = 0…N: training interactions of item j (popularity; entry 0 ignored).
    /// q_j ∝ counts[j] + 1, so an item never seen in training can still be drawn and its log q
    /// is finite when it is a target.
    public init(distribution: Distribution, numItems: Int, count: Int, counts: [Int]? = nil) throws {
        guard numItems >= 1 else { throw EngineError("sampled softmax needs at least one item") }
        guard count >= 1, count <= numItems else {
            throw EngineError("sampled_negatives is \(count) but the catalogue has \(numItems) items: use 1…\(numItems) (or softmax \"full\" / \"streamed\" for every item)")
        }
        self.distribution = distribution
        self.numItems = numItems
        self.count = count
        switch distribution {
        case .uniform:
            cumulative = []
            logQAll = [Float](repeating: Float(-log(Double(numItems))), count: numItems + 1)
        case .popularity:
            guard let counts, counts.count == numItems + 1 else {
                throw EngineError("popularity sampling needs one count per item (\(numItems + 1) with padding), got \(counts?.count ?? 0)")
            }
            var c = [Double](repeating: 0, count: numItems)
            var total = 0.0
            for j in 1...numItems { total += Double(max(0, counts[j]) + 1); c[j - 1] = total }
            cumulative = c
            var lq = [Float](repeating: 0, count: numItems + 1)
            for j in 1...numItems { lq[j] = Float(log(Double(max(0, counts[j]) + 1) / total)) }
            logQAll = lq
        }
    }

    public func draw(seed: UInt64, step: Int) -> SampledItems {
        var rng = SeededRNG(seed: seed ^ (UInt64(truncatingIfNeeded: step) &* 0x9E37_79B9_7F4A_7C15), stream: "sampled-softmax")
        var ids = [Int32](repeating: 0, count: count)
        for m in 0..<count {
            if cumulative.isEmpty {
                ids[m] = Int32(1 + rng.nextInt(below: numItems))
            } else {
                // Inverse CDF by binary search: the first item whose cumulative weight exceeds u.
                let u = rng.nextDouble() * cumulative[numItems - 1]
                var lo = 0, hi = numItems - 1
                while lo < hi { let mid = (lo + hi) / 2; if cumulative[mid] > u { hi = mid } else { lo = mid + 1 } }
                ids[m] = Int32(lo + 1)
            }
        }
        return SampledItems(ids: ids, logQ: ids.map { logQAll[Int($0)] }, logQAll: logQAll)
    }
}

public enum ItemSoftmaxLoss {
    public static let block = 8192
    static let rowChunk = 512

    /// The streamed loss's walk: for each chunk of ≤ 512 rows (r0, m) and each block of items
    /// [j0, j0 + cnt) of 1…N, the scores tile (m, cnt) = U[r0…]·E[j0…]ᵀ, handed to `body`.
    static func forEachScoreTile(u: UnsafePointer<Float>, table: UnsafePointer<Float>, numItems n: Int, dim: Int, rows: Int,
                                 block: Int, workspace ws: Workspace?,
                                 _ body: (_ r0: Int, _ m: Int, _ j0: Int, _ cnt: Int, _ tile: UnsafeMutablePointer<Float>) -> Void) {
        let nb = max(1, min(block, n)), rc = max(1, min(rowChunk, rows))
        let tileBuf = ws.buffer("ism.tile", rc * nb)
        var r0 = 0
        while r0 < rows {
            let m = min(rc, rows - r0)
            var j0 = 1
            while j0 <= n {
                let cnt = min(nb, n + 1 - j0)
                sgemm(.none, .transpose, m: m, n: cnt, k: dim, a: u + r0 * dim, lda: dim, b: table + j0 * dim, ldb: dim, c: tileBuf.ptr, ldc: cnt)
                body(r0, m, j0, cnt, tileBuf.ptr)
                j0 += cnt
            }
            r0 += m
        }
        withExtendedLifetime(tileBuf) {}
    }

    /// Streamed forward: lse[r] = logsumexp_{j=1…N} u_r·e_j; returns Σ_r (lse_r − s_r,y).
    public static func streamedForward(u: UnsafePointer<Float>, table: UnsafePointer<Float>, numItems n: Int, dim: Int,
                                       targets: UnsafePointer<Int32>, rows: Int, lse: UnsafeMutablePointer<Float>,
                                       block: Int = block, workspace ws: Workspace? = nil) -> Double {
        let ty = ws.buffer("ism.target", rows)
        for r in 0..<rows { lse[r] = -.infinity }
        forEachScoreTile(u: u, table: table, numItems: n, dim: dim, rows: rows, block: block, workspace: ws) { r0, m, j0, cnt, tile in
            parallelFor(m) { r in
                let row = tile + r * cnt
                let y = Int(targets[r0 + r])
                if y >= j0 && y < j0 + cnt { ty.ptr[r0 + r] = row[y - j0] }
                let b = Fast.softmaxLSE(row, count: cnt)
                let a = lse[r0 + r]
                // logaddexp(a, b), exact at −∞.
                let hi = max(a, b), lo = min(a, b)
                lse[r0 + r] = hi == -.infinity ? hi : hi + log1pf(expf(lo - hi))
            }
        }
        var total = 0.0
        for r in 0..<rows { total += Double(lse[r]) - Double(ty.ptr[r]) }
        return total
    }

    /// Streamed backward with the forward's lse: du (R, D) += scale·∂, dtable (N+1, D) += scale·∂
    /// (either may be nil).
    public static func streamedBackward(du: UnsafeMutablePointer<Float>?, dtable: UnsafeMutablePointer<Float>?,
                                        u: UnsafePointer<Float>, table: UnsafePointer<Float>, numItems n: Int, dim: Int,
                                        targets: UnsafePointer<Int32>, rows: Int, lse: UnsafePointer<Float>, scale: Float,
                                        block: Int = block, workspace ws: Workspace? = nil) {
        guard du != nil || dtable != nil else { return }
        forEachScoreTile(u: u, table: table, numItems: n, dim: dim, rows: rows, block: block, workspace: ws) { r0, m, j0, cnt, tile in
            parallelFor(m) { r in
                let row = tile + r * cnt
                let l = lse[r0 + r]
                for j in 0..<cnt { row[j] -= l }
                Fast.exp(row, count: cnt)
                let y = Int(targets[r0 + r])
                if y >= j0 && y < j0 + cnt { row[y - j0] -= 1 }
            }
            if let du {
                sgemm(.none, .none, m: m, n: dim, k: cnt, alpha: scale, a: tile, lda: cnt, b: table + j0 * dim, ldb: dim,
                      beta: 1, c: du + r0 * dim, ldc: dim)
            }
            if let dtable {
                sgemm(.transpose, .none, m: cnt, n: dim, k: m, alpha: scale, a: tile, lda: cnt, b: u + r0 * dim, ldb: dim,
                      beta: 1, c: dtable + j0 * dim, ldc: dim)
            }
        }
    }

    /// Sampled softmax with the log-Q correction: returns Σ_r L_r; with du / dtable,
    /// accumulates scale·∂ into them.
    public static func sampled(du: UnsafeMutablePointer<Float>?, dtable: UnsafeMutablePointer<Float>?,
                               u: UnsafePointer<Float>, table: UnsafePointer<Float>, dim: Int,
                               targets: UnsafePointer<Int32>, rows: Int, sample: SampledItems, scale: Float,
                               workspace ws: Workspace? = nil) -> Double {
        let k = sample.ids.count, cols = k + 1
        // Candidate rows: column 0 is each row's own target (not shared), columns 1…k the negatives.
        let en = ws.buffer("ssm.negRows", k * dim), o = ws.buffer("ssm.logits", rows * cols), losses = ws.buffer("ssm.losses", rows)
        for (m, id) in sample.ids.enumerated() { (en.ptr + m * dim).update(from: table + Int(id) * dim, count: dim) }
        // o[:, 1…k] = U·E_Sᵀ (ldc = cols, starting at column 1).
        sgemm(.none, .transpose, m: rows, n: k, k: dim, a: u, lda: dim, b: en.ptr, ldb: dim, c: o.ptr + 1, ldc: cols)
        let ids = sample.ids, lq = sample.logQ, lqAll = sample.logQAll
        parallelFor(rows) { r in
            let y = Int(targets[r])
            let row = o.ptr + r * cols
            var sy: Float = 0
            for d in 0..<dim { sy += u[r * dim + d] * table[y * dim + d] }
            row[0] = sy - lqAll[y]
            for m in 0..<k { row[m + 1] = Int(ids[m]) == y ? -.infinity : row[m + 1] - lq[m] }
            let l = Fast.softmaxLSE(row, count: cols)   // row ← p
            // exp is clamped at −87.3, so a masked column holds ≈ 1e-38·p_max: make it exactly 0.
            for m in 0..<k where Int(ids[m]) == y { row[m + 1] = 0 }
            losses.ptr[r] = l - (sy - lqAll[y])
            row[0] -= 1                                  // ∂L/∂o
        }
        var total = 0.0
        for r in 0..<rows { total += Double(losses.ptr[r]) }
        if du == nil && dtable == nil { return total }
        // s = o + const, so ∂L/∂s = ∂L/∂o (a masked column's p is 0).
        if let du {
            sgemm(.none, .none, m: rows, n: dim, k: k, alpha: scale, a: o.ptr + 1, lda: cols, b: en.ptr, ldb: dim, beta: 1, c: du, ldc: dim)
            for r in 0..<rows { saxpy(dim, scale * o.ptr[r * cols], table + Int(targets[r]) * dim, du + r * dim) }
        }
        if let dtable {
            let dEn = ws.buffer("ssm.dNegRows", k * dim)
            sgemm(.transpose, .none, m: k, n: dim, k: rows, alpha: scale, a: o.ptr + 1, lda: cols, b: u, ldb: dim, c: dEn.ptr, ldc: dim)
            for m in 0..<k { saxpy(dim, 1, dEn.ptr + m * dim, dtable + Int(ids[m]) * dim) }
            for r in 0..<rows { saxpy(dim, scale * o.ptr[r * cols], u + r * dim, dtable + Int(targets[r]) * dim) }
        }
        return total
    }

    /// The one entry point for a head that does its forward and backward together (KD's L_ms
    /// heads, SASRec): Σ_r CE_r by `mode`, accumulating scale·∂ into du / dtable when given.
    /// `full` here is the tiled exact kernel (tiedCrossEntropyForwardBackward).
    public static func lossAndGradients(_ mode: ItemSoftmax, sample: SampledItems?, du: UnsafeMutablePointer<Float>?,
                                        dtable: UnsafeMutablePointer<Float>?, u: UnsafePointer<Float>, table: UnsafePointer<Float>,
                                        numItems: Int, dim: Int, targets: UnsafePointer<Int32>, rows: Int, scale: Float,
                                        workspace ws: Workspace? = nil) -> Double {
        switch mode {
        case .full:
            return tiedCrossEntropyForwardBackward(dh: du, dtable: dtable, h: u, table: table, targets: targets, rows: rows,
                                                   cols: numItems + 1, dim: dim, scale: scale, workspace: ws)
        case .streamed:
            let lse = ws.buffer("ism.lse", rows)
            let total = streamedForward(u: u, table: table, numItems: numItems, dim: dim, targets: targets, rows: rows, lse: lse.ptr, workspace: ws)
            streamedBackward(du: du, dtable: dtable, u: u, table: table, numItems: numItems, dim: dim, targets: targets, rows: rows,
                             lse: lse.ptr, scale: scale, workspace: ws)
            return total
        case .sampled:
            guard let sample else { preconditionFailure("sampled softmax without a batch sample") }
            return sampled(du: du, dtable: dtable, u: u, table: table, dim: dim, targets: targets, rows: rows, sample: sample,
                           scale: scale, workspace: ws)
        }
    }
}
