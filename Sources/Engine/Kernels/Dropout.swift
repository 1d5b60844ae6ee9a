import Common

// Inverted dropout (Srivastava et al. 2014, as torch.nn.Dropout): in training each element
// is kept with probability 1 − p and scaled by 1/(1 − p), so evaluation is the identity.
// The mask (0 or 1/(1−p) per element) is what the backward needs: dx += dy ⊙ mask.
// Masks are drawn from SeededRNG in element order, so a seed fixes every mask.

/// out[n] = inp[n] · mask[n], mask drawn here; with p = 0 (or evaluation) mask = 1.
@inline(__always)
public func dropoutForward(
    out: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>, count n: Int, p: Float, rng: inout SeededRNG
) {
    if p <= 0 {
        mask.update(repeating: 1, count: n)
        if UnsafePointer(out) != inp { out.update(from: inp, count: n) }
        return
    }
    let keep = 1 / (1 - p)
    // 24-bit uniforms: keep iff u ≥ p. Two draws per 64-bit word would be faster, but one
    // per element keeps the stream simple to reason about.
    for i in 0..<n {
        let m: Float = rng.nextFloat() >= p ? keep : 0
        mask[i] = m
        out[i] = inp[i] * m
    }
}

/// dinp[n] += dout[n] · mask[n]
@inline(__always)
public func dropoutBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, mask: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n { dinp[i] += dout[i] * mask[i] }
}
