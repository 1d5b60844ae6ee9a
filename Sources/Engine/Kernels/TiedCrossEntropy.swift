import Foundation

// Softmax cross-entropy over all items with the output layer tied to the item table
// (SASRec's "shared item embedding"; Kang & McAuley 2018 eq. 6, trained with full CE as in
// Klenitskiy & Vasilev 2023):
//   S = H·Eᵀ  [R, N+1],  loss_r = logsumexp(S_r[1…N]) − S_r[y_r]   (column 0, padding, excluded)
//   dS = scale · (softmax(S) − onehot(y)),  dH += dS·E,  dE += dSᵀ·H.
// This is the dominant cost of SASRec training (N ≈ 18k items × every position), so it is
// fused and tiled: rows are processed in chunks of `chunk` so the score block stays small
// (a 6,400-token batch × 18k items would be 470 MB), each chunk is three BLAS calls plus a
// vectorised softmax (CKernels) spread over the cores. `crossEntropyForward/Backward` +
// `sgemm` (Elementwise.swift) is the reference the tests compare against.

/// Returns Σ_r loss_r (Double). dh[R,D] += …, dtable[N+1,D] += … (either may be nil: then
/// only the loss is formed). `targets[r]` ∈ 1…N.
public func tiedCrossEntropyForwardBackward(
    dh: UnsafeMutablePointer<Float>?, dtable: UnsafeMutablePointer<Float>?,
    h: UnsafePointer<Float>, table: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
    rows: Int, cols: Int, dim: Int, scale: Float, chunk: Int = 512, workspace: Workspace? = nil
) -> Double {
    precondition(cols >= 2, "need at least one item besides padding")
    let ch = max(1, min(chunk, rows))
    let ws = workspace ?? Workspace()
    let s = ws.get("tiedce.scores", ch * cols).ptr
    let losses = ws.get("tiedce.losses", ch).ptr
    var total = 0.0
    var r0 = 0
    while r0 < rows {
        let rc = min(ch, rows - r0)
        let hc = h + r0 * dim
        sgemm(.none, .transpose, m: rc, n: cols, k: dim, a: hc, lda: dim, b: table, ldb: dim, c: s, ldc: cols)
        let tg = targets + r0
        parallelFor(rc) { r in
            let row = s + r * cols
            let y = Int(tg[r])
            Fast.softmaxInPlace(row + 1, count: cols - 1)
            row[0] = 0
            // −log p_y; p_y is clamped at the smallest normal float so a hopeless row gives a
            // large finite loss (≈ 87) instead of inf. The gradient is exact either way.
            losses[r] = -logf(max(row[y], Float.leastNormalMagnitude))
            row[y] -= 1
        }
        for r in 0..<rc { total += Double(losses[r]) }
        if let dh {
            sgemm(.none, .none, m: rc, n: dim, k: cols, alpha: scale, a: s, lda: cols, b: table, ldb: dim, beta: 1, c: dh + r0 * dim, ldc: dim)
        }
        if let dtable {
            sgemm(.transpose, .none, m: cols, n: dim, k: rc, alpha: scale, a: s, lda: cols, b: hc, ldb: dim, beta: 1, c: dtable, ldc: dim)
        }
        r0 += rc
    }
    return total
}
