import Foundation

// Rotary position embedding (Su et al. 2021) in Hugging Face's rotate-half convention
// (`apply_rotary_pos_emb` in modeling_llama.py): with h = HD/2 and f_i = pos · θ^(−2i/HD),
//   y[i]   = x[i]·cos f_i − x[i+h]·sin f_i
//   y[i+h] = x[i+h]·cos f_i + x[i]·sin f_i
// The backward is the transposed rotation (rotation by −f_i).

/// cos/sin tables [maxPos, HD/2], computed as HF does: inv_freq in fp32, freqs = pos·inv_freq in fp32.
public struct RopeTable: Sendable {
    public let headDim: Int
    public let maxPositions: Int
    public let cos: [Float]
    public let sin: [Float]

    public init(headDim: Int, theta: Double, maxPositions: Int) {
        self.headDim = headDim
        self.maxPositions = maxPositions
        let h = headDim / 2
        var invFreq = [Float](repeating: 0, count: h)
        for i in 0..<h {
            let p = Float(pow(theta, Double(Float(2 * i) / Float(headDim))))
            invFreq[i] = 1 / p
        }
        var c = [Float](repeating: 0, count: maxPositions * h)
        var s = c
        for p in 0..<maxPositions {
            for i in 0..<h {
                let f = Float(p) * invFreq[i]
                c[p * h + i] = Float(Foundation.cos(Double(f)))
                s[p * h + i] = Float(Foundation.sin(Double(f)))
            }
        }
        cos = c
        sin = s
    }
}

/// In place on x[Ntok, NH·HD] (row stride `ld`), token t at position pos[t].
@inline(__always)
public func ropeForward(
    x: UnsafeMutablePointer<Float>, pos: UnsafePointer<Int32>, nTok: Int, nHeads: Int, ld: Int, table: RopeTable
) {
    let hd = table.headDim, h = hd / 2
    table.cos.withUnsafeBufferPointer { cb in
        table.sin.withUnsafeBufferPointer { sb in
            for t in 0..<nTok {
                let c = cb.baseAddress! + Int(pos[t]) * h, s = sb.baseAddress! + Int(pos[t]) * h
                for hh in 0..<nHeads {
                    let v = x + t * ld + hh * hd
                    for i in 0..<h {
                        let a = v[i], b = v[i + h]
                        v[i] = a * c[i] - b * s[i]
                        v[i + h] = b * c[i] + a * s[i]
                    }
                }
            }
        }
    }
}

/// In place on dx: the gradient through y = R(f)·x is dx = R(−f)·dy.
@inline(__always)
public func ropeBackward(
    dx: UnsafeMutablePointer<Float>, pos: UnsafePointer<Int32>, nTok: Int, nHeads: Int, ld: Int, table: RopeTable
) {
    let hd = table.headDim, h = hd / 2
    table.cos.withUnsafeBufferPointer { cb in
        table.sin.withUnsafeBufferPointer { sb in
            for t in 0..<nTok {
                let c = cb.baseAddress! + Int(pos[t]) * h, s = sb.baseAddress! + Int(pos[t]) * h
                for hh in 0..<nHeads {
                    let v = dx + t * ld + hh * hd
                    for i in 0..<h {
                        let a = v[i], b = v[i + h]
                        v[i] = a * c[i] + b * s[i]
                        v[i + h] = b * c[i] - a * s[i]
                    }
                }
            }
        }
    }
}
