import Common

// Linear layers, Hugging Face convention: weights are stored (out, in) and the forward is
// y = x·Wᵀ + b. Backward accumulates (+=) into dinp, dweight and dbias, as llm.c does:
// gradients are zeroed once per step, never inside a kernel.

/// out[M,N] = inp[M,K] · weight[N,K]ᵀ + bias[N]
@inline(__always)
public func linearForward(
    out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    m: Int, n: Int, k: Int, accumulate: Bool = false
) {
    if let bias, !accumulate {
        for i in 0..<m { (out + i * n).update(from: bias, count: n) }
        sgemm(.none, .transpose, m: m, n: n, k: k, a: inp, lda: k, b: weight, ldb: k, beta: 1, c: out, ldc: n)
    } else {
        sgemm(.none, .transpose, m: m, n: n, k: k, a: inp, lda: k, b: weight, ldb: k,
              beta: accumulate ? 1 : 0, c: out, ldc: n)
        if let bias, accumulate { for i in 0..<m { saxpy(n, 1, bias, out + i * n) } }
    }
}

/// dinp[M,K] += dout[M,N]·W[N,K];  dweight[N,K] += doutᵀ·inp;  dbias[N] += Σ_rows dout.
@inline(__always)
public func linearBackward(
    dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    m: Int, n: Int, k: Int
) {
    if let dinp {
        sgemm(.none, .none, m: m, n: k, k: n, a: dout, lda: n, b: weight, ldb: k, beta: 1, c: dinp, ldc: k)
    }
    if let dweight {
        sgemm(.transpose, .none, m: n, n: k, k: m, a: dout, lda: n, b: inp, ldb: k, beta: 1, c: dweight, ldc: k)
    }
    if let dbias {
        for i in 0..<m { saxpy(n, 1, dout + i * n, dbias) }
    }
}

// LoRA linear (Hu et al. 2021; PEFT's `lora.Linear`): y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ with
// A [r, in], B [out, r], s = lora_alpha / r. The forward keeps xa = x·Aᵀ [M, r] for the
// backward. The base weight W is frozen in LoRA training, so only dA, dB and dx are formed.

/// out[M,N] += s · (inp[M,K]·A[R,K]ᵀ)·B[N,R]ᵀ; writes xa[M,R] = inp·Aᵀ.
@inline(__always)
public func loraForward(
    out: UnsafeMutablePointer<Float>, xa: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
    a: UnsafePointer<Float>, b: UnsafePointer<Float>, scaling: Float,
    m: Int, n: Int, k: Int, r: Int
) {
    sgemm(.none, .transpose, m: m, n: r, k: k, a: inp, lda: k, b: a, ldb: k, c: xa, ldc: r)
    sgemm(.none, .transpose, m: m, n: n, k: r, alpha: scaling, a: xa, lda: r, b: b, ldb: r, beta: 1, c: out, ldc: n)
}

/// dB[N,R] += s·doutᵀ·xa;  t = dout·B [M,R];  dA[R,K] += s·tᵀ·inp;  dinp[M,K] += s·t·A.
/// `scratch` holds t and must have room for M·R floats.
@inline(__always)
public func loraBackward(
    dinp: UnsafeMutablePointer<Float>?, da: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
    scratch: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, xa: UnsafePointer<Float>,
    a: UnsafePointer<Float>, b: UnsafePointer<Float>, scaling: Float,
    m: Int, n: Int, k: Int, r: Int
) {
    if let db {
        sgemm(.transpose, .none, m: n, n: r, k: m, alpha: scaling, a: dout, lda: n, b: xa, ldb: r, beta: 1, c: db, ldc: r)
    }
    if da == nil && dinp == nil { return }
    sgemm(.none, .none, m: m, n: r, k: n, a: dout, lda: n, b: b, ldb: r, c: scratch, ldc: r)
    if let da {
        sgemm(.transpose, .none, m: r, n: k, k: m, alpha: scaling, a: scratch, lda: r, b: inp, ldb: k, beta: 1, c: da, ldc: k)
    }
    if let dinp {
        sgemm(.none, .none, m: m, n: k, k: r, alpha: scaling, a: scratch, lda: r, b: a, ldb: k, beta: 1, c: dinp, ldc: k)
    }
}

// Dropout on the LoRA input (PEFT applies `lora_dropout` to x before A): the mask is drawn
// from a seeded stream, so the backward regenerates it instead of storing it.
//   forward:  xd = x ⊙ m / (1−p),  m_i ~ Bernoulli(1−p)
//   backward: dx += dxd ⊙ m / (1−p)

/// out[n] = inp[n]·m[n]/(1−p); the mask comes from `rng`.
@inline(__always)
public func dropoutMaskForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int, p: Float, rng: inout SeededRNG) {
    let scale = 1 / (1 - p)
    for i in 0..<n { out[i] = rng.nextFloat() >= p ? inp[i] * scale : 0 }
}

/// dinp[n] += dout[n]·m[n]/(1−p) with the same mask stream as the forward.
@inline(__always)
public func dropoutMaskBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, count n: Int, p: Float, rng: inout SeededRNG) {
    let scale = 1 / (1 - p)
    for i in 0..<n { if rng.nextFloat() >= p { dinp[i] += dout[i] * scale } }
}
