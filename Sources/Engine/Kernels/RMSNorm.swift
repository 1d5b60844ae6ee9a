// RMSNorm (Zhang & Sennrich 2019), as Hugging Face's LlamaRMSNorm computes it in fp32:
//   rstd = 1 / sqrt(mean(x²) + eps),  y = w ⊙ (x · rstd).
// Backward, with g = w ⊙ dy:
//   dx = rstd · g − rstd³ · x · (g·x) / C,   dw += dy ⊙ x · rstd.

/// out[M,C], rstd[M] ← inp[M,C], weight[C]
@inline(__always)
public func rmsnormForward(
    out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    m: Int, c: Int, eps: Float
) {
    for i in 0..<m {
        let x = inp + i * c
        var ss: Float = 0
        for j in 0..<c { ss += x[j] * x[j] }
        let r = 1 / (ss / Float(c) + eps).squareRoot()
        rstd[i] = r
        let y = out + i * c
        for j in 0..<c { y[j] = weight[j] * (x[j] * r) }
    }
}

/// dinp[M,C] += …, dweight[C] += …  (either may be nil when not needed)
@inline(__always)
public func rmsnormBackward(
    dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rstd: UnsafePointer<Float>, m: Int, c: Int
) {
    for i in 0..<m {
        let x = inp + i * c, dy = dout + i * c
        let r = rstd[i]
        if let dweight { for j in 0..<c { dweight[j] += dy[j] * x[j] * r } }
        guard let dinp else { continue }
        var gx: Float = 0
        for j in 0..<c { gx += weight[j] * dy[j] * x[j] }
        let k = r * r * r * gx / Float(c)
        let dx = dinp + i * c
        for j in 0..<c { dx[j] += r * weight[j] * dy[j] - k * x[j] }
    }
}
