import Foundation

// LayerNorm (Ba et al. 2016), as torch.nn.LayerNorm computes it (biased variance):
//   μ = mean(x),  rstd = 1 / sqrt(mean((x − μ)²) + eps),  x̂ = (x − μ)·rstd,  y = w ⊙ x̂ + b.
// Backward, with g = w ⊙ dy:
//   dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)),  dw += dy ⊙ x̂,  db += dy.
// Used by SASRec (Kang & McAuley 2018), whose blocks normalise with LayerNorm, not RMSNorm.

/// out[M,C], mean[M], rstd[M] ← inp[M,C], weight[C], bias[C]
@inline(__always)
public func layernormForward(
    out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    m: Int, c: Int, eps: Float = 1e-8
) {
    for i in 0..<m {
        let x = inp + i * c
        var s: Float = 0
        for j in 0..<c { s += x[j] }
        let mu = s / Float(c)
        var v: Float = 0
        for j in 0..<c { let d = x[j] - mu; v += d * d }
        let r = 1 / (v / Float(c) + eps).squareRoot()
        mean[i] = mu
        rstd[i] = r
        let y = out + i * c
        for j in 0..<c { y[j] = (x[j] - mu) * r * weight[j] + bias[j] }
    }
}

/// dinp[M,C] += …, dweight[C] += …, dbias[C] += …  (any may be nil)
@inline(__always)
public func layernormBackward(
    dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, m: Int, c: Int
) {
    for i in 0..<m {
        let x = inp + i * c, dy = dout + i * c
        let mu = mean[i], r = rstd[i]
        if let dweight { for j in 0..<c { dweight[j] += dy[j] * (x[j] - mu) * r } }
        if let dbias { for j in 0..<c { dbias[j] += dy[j] } }
        guard let dinp else { continue }
        var gMean: Float = 0, gxMean: Float = 0
        for j in 0..<c {
            let g = weight[j] * dy[j]
            gMean += g
            gxMean += g * (x[j] - mu) * r
        }
        gMean /= Float(c)
        gxMean /= Float(c)
        let dx = dinp + i * c
        for j in 0..<c {
            let xh = (x[j] - mu) * r
            dx[j] += r * (weight[j] * dy[j] - gMean - xh * gxMean)
        }
    }
}
