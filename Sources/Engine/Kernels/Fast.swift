import CKernels

// The vectorised CKernels, wrapped with the engine's conventions: outputs first, sizes as Int,
// labelled arguments. The plain-Swift kernels beside them (RMSNorm.swift, Activations.swift)
// are the reference the tests compare these with; the model runs these.
enum Fast {
    /// out[M,C], rstd[M] ← inp[M,C], weight[C]  (RMSNorm)
    @inline(__always)
    static func rmsnormForward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, m: Int, c: Int, eps: Float) {
        ck_rmsnorm_forward(m, c, inp, weight, eps, out, rstd)
    }

    /// dinp[M,C] += …, dweight[C] += …  (either may be nil)
    @inline(__always)
    static func rmsnormBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, m: Int, c: Int) {
        ck_rmsnorm_backward(m, c, dout, inp, weight, rstd, dinp, dweight)
    }

    /// out[n] = silu(gate) ⊙ up
    @inline(__always)
    static func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
        ck_swiglu_forward(n, gate, up, out)
    }

    /// dgate[n], dup[n] written (not accumulated)
    @inline(__always)
    static func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                               gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
        ck_swiglu_backward(n, dout, gate, up, dgate, dup)
    }

    /// x[0..<n] = softmax(x[0..<n]), n ≥ 1
    @inline(__always)
    static func softmaxInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int) { ck_softmax_inplace(n, x) }

    /// x = softmax(x); returns the log-sum-exp of the input
    @inline(__always)
    static func softmaxLSE(_ x: UnsafeMutablePointer<Float>, count n: Int) -> Float { ck_softmax_lse(n, x) }

    /// x[0..<n] = exp(x[0..<n]) in place (≈ 1 ulp; arguments clamped to [−87.3, 88.4])
    @inline(__always)
    static func exp(_ x: UnsafeMutablePointer<Float>, count n: Int) { ck_exp(n, x, x) }
}
