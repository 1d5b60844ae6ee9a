import Foundation

// Point-wise activations of SASRec's feed-forward block: ReLU (the original paper and its
// official code) and GELU (BERT4Rec / RecBole's default), the exact erf form
//   gelu(x) = x · Φ(x) = ½x(1 + erf(x/√2)),  gelu'(x) = Φ(x) + x·φ(x).
// Backward accumulates into dinp, like every other kernel.

public enum PointwiseActivation: String, Sendable, Codable, CaseIterable {
    case relu, gelu
}

/// out[n] = act(inp[n])
@inline(__always)
public func activationForward(_ act: PointwiseActivation, out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int) {
    switch act {
    case .relu:
        for i in 0..<n { out[i] = max(inp[i], 0) }
    case .gelu:
        for i in 0..<n { let x = inp[i]; out[i] = 0.5 * x * (1 + erff(x * 0.70710678118654752)) }
    }
}

/// dinp[n] += act'(inp[n]) · dout[n]
@inline(__always)
public func activationBackward(_ act: PointwiseActivation, dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, count n: Int) {
    switch act {
    case .relu:
        for i in 0..<n where inp[i] > 0 { dinp[i] += dout[i] }
    case .gelu:
        for i in 0..<n {
            let x = inp[i]
            let cdf = 0.5 * (1 + erff(x * 0.70710678118654752))
            let pdf = expf(-0.5 * x * x) * 0.39894228040143268
            dinp[i] += dout[i] * (cdf + x * pdf)
        }
    }
}
