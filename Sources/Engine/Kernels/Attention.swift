import Foundation

// Causal grouped-query attention over packed variable-length sequences with a shared prefix.
//
// Left padding (the checkpoint contract's layout) only exists so PyTorch can batch
// sequences of different lengths; the padded slots are masked out and never influence a
// real slot. We never materialise them: the tokens of sequence b occupy rows
// [start[b], start[b+1]) of every activation, and attention runs per sequence — what HF
// computes on the valid slots, with no work spent on padding.
//
// The prompt is the same P rows at positions 0…P−1 for every user, and causal attention
// means its states never depend on what follows; so the prompt is computed ONCE per batch
// (rows [0, P)) and every sequence attends to those shared keys/values plus its own:
// query i of sequence b sees prefix keys 0…P−1 and its own keys 0…i. The result is
// identical to running each sequence with its own copy of the prompt.
//
// For each segment (n queries, `pre` shared keys) and head hh (KV head g = hh / (NH/NKV),
// HF's repeat_kv):
//   S = Q·[K_pre; K]ᵀ / √HD,  P = softmax(S + causal mask),  O = P·[V_pre; V]
// Backward:
//   dV += Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(P ⊙ dP)),
//   dQ += dS·K / √HD,  dK += dSᵀ·Q / √HD      (shared-prefix dK, dV summed over sequences)

/// One attention segment: `n` query rows from `start`, attending to `pre` shared prefix rows
/// (rows 0…pre−1) and causally to themselves; `probOffset` locates its (NH, n, pre+n) probs.
public struct AttentionSegment: Sendable, Equatable {
    public let start: Int
    public let n: Int
    public let pre: Int
    public let probOffset: Int
}

/// Segments for a packed batch: the shared prefix [0, prefix) (if any), then each sequence.
public func attentionSegments(seqStart: [Int], prefix: Int, nHeads: Int) -> (segments: [AttentionSegment], probCount: Int) {
    var segs: [AttentionSegment] = []
    var acc = 0
    if prefix > 0 {
        segs.append(AttentionSegment(start: 0, n: prefix, pre: 0, probOffset: 0))
        acc = nHeads * prefix * prefix
    }
    for b in 0..<max(seqStart.count - 1, 0) {
        let n = seqStart[b + 1] - seqStart[b]
        segs.append(AttentionSegment(start: seqStart[b], n: n, pre: prefix, probOffset: acc))
        acc += nHeads * n * (prefix + n)
    }
    return (segs, acc)
}

/// out[Ntok, NH·HD], probs ← q[Ntok, NH·HD], k, v[Ntok, NKV·HD] (q, k already rotated)
public func attentionForward(
    out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
    segments: [AttentionSegment], nHeads: Int, nKVHeads: Int, headDim hd: Int
) {
    let ldq = nHeads * hd, ldk = nKVHeads * hd
    let group = nHeads / nKVHeads
    let scale = 1 / Float(hd).squareRoot()
    // Segments are independent: spread them over the cores. Each sgemm here is small, so
    // OpenBLAS runs it on the calling thread.
    parallelFor(segments.count) { si in
        let sg = segments[si], s0 = sg.start, n = sg.n, pre = sg.pre, w = pre + n
        if n == 0 { return }
        for hh in 0..<nHeads {
            let g = hh / group
            let qh = q + s0 * ldq + hh * hd
            let p = probs + sg.probOffset + hh * n * w
            if pre > 0 {
                sgemm(.none, .transpose, m: n, n: pre, k: hd, alpha: scale, a: qh, lda: ldq, b: k + g * hd, ldb: ldk, c: p, ldc: w)
            }
            sgemm(.none, .transpose, m: n, n: n, k: hd, alpha: scale, a: qh, lda: ldq, b: k + s0 * ldk + g * hd, ldb: ldk, c: p + pre, ldc: w)
            for i in 0..<n {
                let row = p + i * w
                Fast.softmaxInPlace(row, count: pre + i + 1)   // causal: prefix keys and own keys 0…i
                for j in (pre + i + 1)..<max(w, pre + i + 1) { row[j] = 0 }
            }
            let oh = out + s0 * ldq + hh * hd
            if pre > 0 {
                sgemm(.none, .none, m: n, n: hd, k: pre, a: p, lda: w, b: v + g * hd, ldb: ldk, c: oh, ldc: ldq)
            }
            sgemm(.none, .none, m: n, n: hd, k: n, a: p + pre, lda: w, b: v + s0 * ldk + g * hd, ldb: ldk,
                  beta: pre > 0 ? 1 : 0, c: oh, ldc: ldq)
        }
    }
}

/// dq[Ntok, NH·HD] +=, dk, dv[Ntok, NKV·HD] += (gradients w.r.t. the rotated q, k).
public func attentionBackward(
    dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
    probs: UnsafePointer<Float>, segments: [AttentionSegment],
    nHeads: Int, nKVHeads: Int, headDim hd: Int
) {
    let ldq = nHeads * hd, ldk = nKVHeads * hd
    let group = nHeads / nKVHeads
    let scale = 1 / Float(hd).squareRoot()
    var maxW = 0, prefix = 0
    for s in segments { maxW = max(maxW, s.n * (s.pre + s.n)); prefix = max(prefix, s.pre) }
    let workers = ParallelConfig.workers
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, maxW * workers))
    // Per-worker accumulators for the shared prefix's dK, dV (many sequences write them).
    let preAcc = UnsafeMutablePointer<Float>.allocate(capacity: max(1, 2 * prefix * ldk * workers))
    preAcc.initialize(repeating: 0, count: max(1, 2 * prefix * ldk * workers))
    defer { scratch.deallocate(); preAcc.deallocate() }
    // A segment's own dk/dv rows are touched only by that segment, so segments run in
    // parallel; heads of a group write the same dk/dv slice and run sequentially.
    parallelFor(segments.count, withWorker: true) { si, wk in
        let sg = segments[si], s0 = sg.start, n = sg.n, pre = sg.pre, w = pre + n
        if n == 0 { return }
        let dp = scratch + wk * maxW
        let dkPre = preAcc + wk * 2 * prefix * ldk, dvPre = dkPre + prefix * ldk
        for hh in 0..<nHeads {
            let g = hh / group
            let qh = q + s0 * ldq + hh * hd
            let doh = dout + s0 * ldq + hh * hd
            let p = probs + sg.probOffset + hh * n * w
            // dV += Pᵀ·dO
            if pre > 0 {
                sgemm(.transpose, .none, m: pre, n: hd, k: n, a: p, lda: w, b: doh, ldb: ldq, beta: 1, c: dvPre + g * hd, ldc: ldk)
            }
            sgemm(.transpose, .none, m: n, n: hd, k: n, a: p + pre, lda: w, b: doh, ldb: ldq, beta: 1, c: dv + s0 * ldk + g * hd, ldc: ldk)
            // dP = dO·Vᵀ
            if pre > 0 {
                sgemm(.none, .transpose, m: n, n: pre, k: hd, a: doh, lda: ldq, b: v + g * hd, ldb: ldk, c: dp, ldc: w)
            }
            sgemm(.none, .transpose, m: n, n: n, k: hd, a: doh, lda: ldq, b: v + s0 * ldk + g * hd, ldb: ldk, c: dp + pre, ldc: w)
            // dS = P ⊙ (dP − rowsum(P ⊙ dP)), zero past the causal limit
            for i in 0..<n {
                let pr = p + i * w, dr = dp + i * w
                let lim = pre + i
                var dot: Float = 0
                for j in 0...lim { dot += pr[j] * dr[j] }
                for j in 0...lim { dr[j] = pr[j] * (dr[j] - dot) }
                for j in (lim + 1)..<max(w, lim + 1) { dr[j] = 0 }
            }
            let dqh = dq + s0 * ldq + hh * hd
            if pre > 0 {
                sgemm(.none, .none, m: n, n: hd, k: pre, alpha: scale, a: dp, lda: w, b: k + g * hd, ldb: ldk, beta: 1, c: dqh, ldc: ldq)
                sgemm(.transpose, .none, m: pre, n: hd, k: n, alpha: scale, a: dp, lda: w, b: qh, ldb: ldq, beta: 1, c: dkPre + g * hd, ldc: ldk)
            }
            sgemm(.none, .none, m: n, n: hd, k: n, alpha: scale, a: dp + pre, lda: w, b: k + s0 * ldk + g * hd, ldb: ldk, beta: 1, c: dqh, ldc: ldq)
            sgemm(.transpose, .none, m: n, n: hd, k: n, alpha: scale, a: dp + pre, lda: w, b: qh, ldb: ldq, beta: 1, c: dk + s0 * ldk + g * hd, ldc: ldk)
        }
    }
    // Reduce the shared prefix's dK, dV into rows [0, prefix).
    for wk in 0..<workers {
        let dkPre = preAcc + wk * 2 * prefix * ldk, dvPre = dkPre + prefix * ldk
        for i in 0..<(prefix * ldk) { dk[i] += dkPre[i]; dv[i] += dvPre[i] }
    }
}

/// Attention of chosen query rows only (fast inference computes the last layer at the scored
/// positions): row r is token `tokens[r]` of segment `rowSegments[r]`, and attends to that
/// segment's shared prefix (rows 0…pre−1) and causally to its own keys, exactly as
/// `attentionForward` computes that token's row (no probabilities are kept: no backward).
/// out[R, NH·HD] ← q[R, NH·HD] (rotated), k, v[Ntok, NKV·HD] (k rotated)
public func attentionRowsForward(
    out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
    tokens: [Int], rowSegments: [AttentionSegment], nHeads: Int, nKVHeads: Int, headDim hd: Int
) {
    precondition(tokens.count == rowSegments.count, "attentionRowsForward: one segment per row")
    let ldq = nHeads * hd, ldk = nKVHeads * hd
    let group = nHeads / nKVHeads, scale = 1 / Float(hd).squareRoot()
    nonisolated(unsafe) let out = out, q = q, k = k, v = v
    parallelFor(tokens.count) { r in
        let t = tokens[r], seg = rowSegments[r]
        let keys = seg.pre + (t - seg.start) + 1
        func keyRow(_ j: Int) -> Int { j < seg.pre ? j : seg.start + (j - seg.pre) }
        var p = [Float](repeating: 0, count: keys)
        for hh in 0..<nHeads {
            let g = hh / group, qv = q + r * ldq + hh * hd, o = out + r * ldq + hh * hd
            for j in 0..<keys { p[j] = scale * sdot(hd, qv, k + keyRow(j) * ldk + g * hd) }
            p.withUnsafeMutableBufferPointer { Fast.softmaxInPlace($0.baseAddress!, count: keys) }
            o.update(repeating: 0, count: hd)
            for j in 0..<keys { saxpy(hd, p[j], v + keyRow(j) * ldk + g * hd, o) }
        }
    }
}
