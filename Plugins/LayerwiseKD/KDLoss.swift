import Foundation
import Engine

// The distillation terms of SLMRec (Xu et al., ICLR 2025, §4, Eq. 5–8), as pure functions
// with their gradients. For teacher/student hidden states t, s ∈ R^C at aligned positions:
//   D_cos  = 1 − t·s / (‖t‖‖s‖)                 ∂/∂s = −( t/(‖t‖‖s‖) − cos·s/‖s‖² )
//   D_norm = ‖t − s‖²                            ∂/∂s = −2(t − s),  ∂/∂t = 2(t − s)
// Each function returns the mean over `rows` and ACCUMULATES scale·gradient (scale already
// includes λ and the 1/B block average) into ds (and dt, for the online teacher).

/// Mean over rows of 1 − cos(t_r, s_r). Rows are (rows, C) row-major.
public func cosineDistance(t: UnsafePointer<Float>, s: UnsafePointer<Float>, rows: Int, c: Int,
                           ds: UnsafeMutablePointer<Float>?, dt: UnsafeMutablePointer<Float>?, scale: Float) -> Double {
    var total = 0.0
    let eps = 1e-8
    for r in 0..<rows {
        let tr = t + r * c, sr = s + r * c
        var dot = 0.0, tt = 0.0, ss = 0.0
        for j in 0..<c { dot += Double(tr[j]) * Double(sr[j]); tt += Double(tr[j]) * Double(tr[j]); ss += Double(sr[j]) * Double(sr[j]) }
        let nt = max(tt.squareRoot(), eps), ns = max(ss.squareRoot(), eps)
        let cos = dot / (nt * ns)
        total += 1 - cos
        let g = Double(scale) / Double(rows)
        if let ds {
            let dr = ds + r * c
            for j in 0..<c { dr[j] += Float(-g * (Double(tr[j]) / (nt * ns) - cos * Double(sr[j]) / (ns * ns))) }
        }
        if let dt {
            let dr = dt + r * c
            for j in 0..<c { dr[j] += Float(-g * (Double(sr[j]) / (nt * ns) - cos * Double(tr[j]) / (nt * nt))) }
        }
    }
    return total / Double(max(rows, 1))
}

/// Mean over rows of ‖t_r − s_r‖².
public func squaredDistance(t: UnsafePointer<Float>, s: UnsafePointer<Float>, rows: Int, c: Int,
                            ds: UnsafeMutablePointer<Float>?, dt: UnsafeMutablePointer<Float>?, scale: Float) -> Double {
    var total = 0.0
    let g = 2 * scale / Float(max(rows, 1))
    for r in 0..<rows {
        let tr = t + r * c, sr = s + r * c
        for j in 0..<c {
            let diff = tr[j] - sr[j]
            total += Double(diff) * Double(diff)
            ds?[r * c + j] -= g * diff
            dt?[r * c + j] += g * diff
        }
    }
    return total / Double(max(rows, 1))
}

/// SLMRec's multiple-supervision head on an intermediate block (L_ms): the block's hidden
/// state, RMS-normalised without a weight (the residual stream grows with depth), projected
/// d1 → d0 by its own adapter A [D0, C], scored against the item table E [N+1, D0], and
/// trained with the same cross-entropy as the final head.
/// Returns the mean CE; accumulates scale·gradients into dh [R, C], dA [D0, C] and dE (if non-nil).
public func supervisionHeadLoss(h: UnsafePointer<Float>, rows: Int, c: Int, a: UnsafePointer<Float>, d0: Int,
                                table: UnsafePointer<Float>, numItems: Int, targets: [Int32],
                                dh: UnsafeMutablePointer<Float>?, da: UnsafeMutablePointer<Float>?, dTable: UnsafeMutablePointer<Float>?,
                                scale: Float, softmax: ItemSoftmax = .full, sample: SampledItems? = nil,
                                workspace: Workspace? = nil) -> Double {
    let cols = numItems + 1
    // Buffers from the caller's workspace when given: the (R, N+1) score matrices are large
    // (R·18k floats on Amazon) and this runs every step for B−1 heads.
    func buf(_ k: String, _ n: Int, zero: Bool = false) -> FloatBuffer {
        let b = workspace.map { $0.get("ms." + k, n) } ?? FloatBuffer(count: n)
        if zero && workspace != nil { b.ptr.update(repeating: 0, count: n) }
        return b
    }
    let ones = buf("ones", c)
    for j in 0..<c { ones.ptr[j] = 1 }
    let normed = buf("normed", rows * c), rstd = buf("rstd", rows)
    rmsnormForward(out: normed.ptr, rstd: rstd.ptr, inp: h, weight: ones.ptr, m: rows, c: c, eps: 1e-6)
    let u = buf("u", rows * d0)
    linearForward(out: u.ptr, inp: normed.ptr, weight: a, bias: nil, m: rows, n: d0, k: c)
    if softmax != .full {
        // The final head's streamed or sampled loss (ItemSoftmax.swift), forward and backward at once.
        let du = buf("du", rows * d0, zero: true)
        let grads = dh != nil || da != nil || dTable != nil
        let total = targets.withUnsafeBufferPointer { tg in
            ItemSoftmaxLoss.lossAndGradients(softmax, sample: sample, du: grads ? du.ptr : nil, dtable: dTable, u: u.ptr, table: table,
                                             numItems: numItems, dim: d0, targets: tg.baseAddress!, rows: rows,
                                             scale: scale / Float(max(rows, 1)), workspace: workspace)
        }
        if grads {
            let dn = buf("dn", rows * c, zero: true)
            linearBackward(dinp: dn.ptr, dweight: da, dbias: nil, dout: du.ptr, inp: normed.ptr, weight: a, m: rows, n: d0, k: c)
            if let dh { rmsnormBackward(dinp: dh, dweight: nil, dout: dn.ptr, inp: h, weight: ones.ptr, rstd: rstd.ptr, m: rows, c: c) }
        }
        return total / Double(max(rows, 1))
    }
    let scores = buf("scores", rows * cols), probs = buf("probs", rows * cols), losses = buf("losses", rows)
    linearForward(out: scores.ptr, inp: u.ptr, weight: table, bias: nil, m: rows, n: cols, k: d0)
    crossEntropyForward(losses: losses.ptr, probs: probs.ptr, scores: scores.ptr, targets: targets, cols: cols)
    var loss = 0.0
    for r in 0..<rows { loss += Double(losses.ptr[r]) }
    loss /= Double(max(rows, 1))
    if dh == nil && da == nil && dTable == nil { return loss }
    let dScores = buf("dScores", rows * cols, zero: true)
    crossEntropyBackward(dscores: dScores.ptr, probs: probs.ptr, targets: targets, cols: cols, scale: scale / Float(max(rows, 1)))
    let du = buf("du", rows * d0, zero: true)
    linearBackward(dinp: du.ptr, dweight: dTable, dbias: nil, dout: dScores.ptr, inp: u.ptr, weight: table, m: rows, n: cols, k: d0)
    let dn = buf("dn", rows * c, zero: true)
    linearBackward(dinp: dn.ptr, dweight: da, dbias: nil, dout: du.ptr, inp: normed.ptr, weight: a, m: rows, n: d0, k: c)
    if let dh { rmsnormBackward(dinp: dh, dweight: nil, dout: dn.ptr, inp: h, weight: ones.ptr, rstd: rstd.ptr, m: rows, c: c) }
    return loss
}

/// Logit distillation (Hinton, Vinyals & Dean 2015, "Distilling the knowledge in a neural
/// network", §2): per row, τ²·KL(p_t ‖ p_s) with p = softmax(z/τ) over items 1…N (column 0 is
/// padding, excluded as the cross-entropy excludes it). With log p = z/τ − logsumexp(z/τ):
///   KL_r               = Σ_j p_t,j (log p_t,j − log p_s,j)
///   ∂(τ²·KL_r)/∂z_s,j  = τ·(p_s,j − p_t,j)
///   ∂(τ²·KL_r)/∂z_t,j  = τ·p_t,j·(log p_t,j − log p_s,j − KL_r)   (an online teacher's side)
/// The τ² keeps the gradient's scale independent of τ (Hinton et al.: the soft targets'
/// gradients scale as 1/τ²). Rows are independent and run in parallel; sums are in Double.
/// Returns the mean over rows; accumulates scale·∂/∂z (of the mean) into ds and dt.
public func logitKL(teacher t: UnsafePointer<Float>, student s: UnsafePointer<Float>, rows: Int, cols: Int, tau: Float,
                    ds: UnsafeMutablePointer<Float>?, dt: UnsafeMutablePointer<Float>? = nil, scale: Float) -> Double {
    guard cols > 1, rows > 0 else { return 0 }
    let T = Double(tau), g = Double(scale) / Double(rows)
    var perRow = [Double](repeating: 0, count: rows)
    perRow.withUnsafeMutableBufferPointer { out in
        guard let out = out.baseAddress else { return }
        parallelFor(rows) { r in
            let tr = t + r * cols, sr = s + r * cols
            var mt = -Double.infinity, ms = -Double.infinity
            for j in 1..<cols { mt = max(mt, Double(tr[j]) / T); ms = max(ms, Double(sr[j]) / T) }
            var zt = 0.0, zs = 0.0
            for j in 1..<cols { zt += exp(Double(tr[j]) / T - mt); zs += exp(Double(sr[j]) / T - ms) }
            let lzt = mt + log(zt), lzs = ms + log(zs)
            var klr = 0.0
            for j in 1..<cols {
                let lpt = Double(tr[j]) / T - lzt, lps = Double(sr[j]) / T - lzs
                let pt = exp(lpt)
                klr += pt * (lpt - lps)
                if let ds { ds[r * cols + j] += Float(g * T * (exp(lps) - pt)) }
            }
            if let dt {
                for j in 1..<cols {
                    let lpt = Double(tr[j]) / T - lzt, lps = Double(sr[j]) / T - lzs
                    dt[r * cols + j] += Float(g * T * exp(lpt) * (lpt - lps - klr))
                }
            }
            out[r] = T * T * klr
        }
    }
    return perRow.reduce(0, +) / Double(rows)
}
