import Foundation

// SiLU-gated MLP activation (Shazeer 2020, LLaMa's `down(silu(gate(x)) * up(x))`):
//   h = silu(g) ⊙ u,  silu(g) = g·σ(g)
// Backward: dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))),  du = dh ⊙ silu(g).

/// out[n] = silu(gate[n]) * up[n]
@inline(__always)
public func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n {
        let g = gate[i]
        out[i] = g / (1 + expf(-g)) * up[i]
    }
}

/// dgate[n], dup[n] are written (not accumulated): each has this kernel as its only source.
@inline(__always)
public func swigluBackward(
    dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count n: Int
) {
    for i in 0..<n {
        let g = gate[i]
        let s = 1 / (1 + expf(-g))
        dup[i] = dout[i] * g * s
        dgate[i] = dout[i] * up[i] * s * (1 + g * (1 - s))
    }
}

/// Residual add: out[n] = a[n] + b[n] (its backward is the identity to both inputs).
@inline(__always)
public func residualForward(out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n { out[i] = a[i] + b[i] }
}

// Embedding lookup and its backward (scatter-add), for the item table.

/// out[R, D] = table[ids[r], :]
@inline(__always)
public func embeddingForward(out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, ids: [Int32], dim: Int) {
    for (r, id) in ids.enumerated() { (out + r * dim).update(from: table + Int(id) * dim, count: dim) }
}

/// dtable[ids[r], :] += dout[r, :]
@inline(__always)
public func embeddingBackward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, ids: [Int32], dim: Int) {
    for (r, id) in ids.enumerated() { saxpy(dim, 1, dout + r * dim, dtable + Int(id) * dim) }
}

// Softmax cross-entropy over items 1…N (column 0 is the padding item: never a class).
//   loss_r = logsumexp(s_r[1…N]) − s_r[y_r];  dS_r = scale · (softmax(s_r[1…N]) − onehot(y_r)), dS_r[0] = 0.

/// losses[R], probs[R, N+1] ← scores[R, N+1], targets[R] ∈ 1…N
@inline(__always)
public func crossEntropyForward(
    losses: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
    scores: UnsafePointer<Float>, targets: [Int32], cols: Int
) {
    // Rows are independent; the softmax over N items is the vectorised C kernel.
    parallelFor(targets.count) { r in
        let y = Int(targets[r])
        let s = scores + r * cols, p = probs + r * cols
        p[0] = 0
        (p + 1).update(from: s + 1, count: cols - 1)
        let lse = Fast.softmaxLSE(p + 1, count: cols - 1)
        losses[r] = lse - s[y]
    }
}

/// dscores[R, N+1] += scale · (probs − onehot(targets))
@inline(__always)
public func crossEntropyBackward(
    dscores: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>, targets: [Int32], cols: Int, scale: Float
) {
    for (r, y) in targets.enumerated() {
        let d = dscores + r * cols, p = probs + r * cols
        for j in 1..<cols { d[j] += scale * p[j] }
        d[Int(y)] -= scale
    }
}
