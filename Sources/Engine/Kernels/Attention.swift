import Foundation
import CKernels

// Causal grouped-query attention over packed variable-length sequences.
//
// Left padding (the checkpoint contract's layout) only exists so PyTorch can batch
// sequences of different lengths; the padded slots are masked out and never influence a
// real slot. We therefore never materialise them: the tokens of sequence b occupy rows
// [start[b], start[b+1]) of every activation, positions restart at 0 for each sequence,
// and attention runs per sequence — exactly what HF computes on the valid slots, with no
// work spent on padding.
//
// For each sequence (n tokens) and head hh (KV head g = hh / (NH/NKV), as HF's repeat_kv):
//   S = Q·Kᵀ / √HD,  P = softmax(S + causal mask),  O = P·V
// Backward:
//   dV += Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ⊙ (dP − rowsum(P ⊙ dP)),
//   dQ += dS·K / √HD,  dK += dSᵀ·Q / √HD

/// Offsets of each sequence's (NH, n, n) probability block inside the flat probs buffer.
public func attentionProbOffsets(seqStart: [Int], nHeads: Int) -> (offsets: [Int], total: Int) {
    var offs = [Int](repeating: 0, count: max(seqStart.count - 1, 0))
    var acc = 0
    for b in 0..<offs.count {
        offs[b] = acc
        let n = seqStart[b + 1] - seqStart[b]
        acc += nHeads * n * n
    }
    return (offs, acc)
}

/// out[Ntok, NH·HD], probs[Σ NH·n²] ← q[Ntok, NH·HD], k, v[Ntok, NKV·HD] (q, k already rotated)
public func attentionForward(
    out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
    seqStart: [Int], probOffsets: [Int], nHeads: Int, nKVHeads: Int, headDim hd: Int
) {
    let ldq = nHeads * hd, ldk = nKVHeads * hd
    let group = nHeads / nKVHeads
    let scale = 1 / Float(hd).squareRoot()
    let nSeq = seqStart.count - 1
    // Sequences are independent: spread them over the cores. Each sgemm here is tiny, so
    // OpenBLAS runs it on the calling thread.
    parallelFor(nSeq) { b in
        let s0 = seqStart[b], n = seqStart[b + 1] - s0
        if n == 0 { return }
        for hh in 0..<nHeads {
            let g = hh / group
            let qh = q + s0 * ldq + hh * hd, kh = k + s0 * ldk + g * hd, vh = v + s0 * ldk + g * hd
            let p = probs + probOffsets[b] + hh * n * n
            sgemm(.none, .transpose, m: n, n: n, k: hd, alpha: scale, a: qh, lda: ldq, b: kh, ldb: ldk, c: p, ldc: n)
            for i in 0..<n {
                let row = p + i * n
                ck_softmax_inplace(i + 1, row)   // causal: keys 0…i
                for j in (i + 1)..<max(n, i + 1) { row[j] = 0 }
            }
            sgemm(.none, .none, m: n, n: hd, k: n, a: p, lda: n, b: vh, ldb: ldk, c: out + s0 * ldq + hh * hd, ldc: ldq)
        }
    }
}

/// dq[Ntok, NH·HD] +=, dk, dv[Ntok, NKV·HD] += (gradients w.r.t. the rotated q, k).
public func attentionBackward(
    dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
    probs: UnsafePointer<Float>, seqStart: [Int], probOffsets: [Int],
    nHeads: Int, nKVHeads: Int, headDim hd: Int
) {
    let ldq = nHeads * hd, ldk = nKVHeads * hd
    let group = nHeads / nKVHeads
    let scale = 1 / Float(hd).squareRoot()
    let nSeq = seqStart.count - 1
    var maxN = 0
    for b in 0..<nSeq { maxN = max(maxN, seqStart[b + 1] - seqStart[b]) }
    let scratchPerWorker = maxN * maxN
    let workers = ParallelConfig.workers
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, scratchPerWorker * workers))
    defer { scratch.deallocate() }
    // dk/dv of one sequence are only touched by that sequence, so sequences can run in
    // parallel; heads of a group write the same dk/dv slice and run sequentially.
    parallelFor(nSeq, withWorker: true) { b, w in
        let s0 = seqStart[b], n = seqStart[b + 1] - s0
        if n == 0 { return }
        let dp = scratch + w * scratchPerWorker
        for hh in 0..<nHeads {
            let g = hh / group
            let qh = q + s0 * ldq + hh * hd, kh = k + s0 * ldk + g * hd, vh = v + s0 * ldk + g * hd
            let doh = dout + s0 * ldq + hh * hd
            let p = probs + probOffsets[b] + hh * n * n
            // dV += Pᵀ·dO
            sgemm(.transpose, .none, m: n, n: hd, k: n, a: p, lda: n, b: doh, ldb: ldq, beta: 1, c: dv + s0 * ldk + g * hd, ldc: ldk)
            // dP = dO·Vᵀ
            sgemm(.none, .transpose, m: n, n: n, k: hd, a: doh, lda: ldq, b: vh, ldb: ldk, c: dp, ldc: n)
            // dS = P ⊙ (dP − rowsum(P ⊙ dP)), zero above the diagonal
            for i in 0..<n {
                let pr = p + i * n, dr = dp + i * n
                var dot: Float = 0
                for j in 0...i { dot += pr[j] * dr[j] }
                for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) }
                for j in (i + 1)..<max(n, i + 1) { dr[j] = 0 }
            }
            sgemm(.none, .none, m: n, n: hd, k: n, alpha: scale, a: dp, lda: n, b: kh, ldb: ldk, beta: 1, c: dq + s0 * ldq + hh * hd, ldc: ldq)
            sgemm(.transpose, .none, m: n, n: hd, k: n, alpha: scale, a: dp, lda: n, b: qh, ldb: ldq, beta: 1, c: dk + s0 * ldk + g * hd, ldc: ldk)
        }
    }
}
