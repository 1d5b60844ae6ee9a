// The only file that imports CBLAS. Everything else calls `sgemm` below, which takes Swift
// `Int`s, checks the shapes it is given against the leading dimensions, and forwards to
// OpenBLAS. `sgemmNaive` is the oracle the tests compare against (and the fallback the
// reference path can use), as llm.c keeps its naive matmul in the tree.
import CBLAS

public enum Transpose: Sendable { case none, transpose }

/// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, all row-major.
/// `lda`, `ldb`, `ldc` are row strides (elements), so sub-blocks of larger buffers can be
/// multiplied in place (attention uses this for per-head slices).
@inline(__always)
public func sgemm(
    _ transA: Transpose, _ transB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative dimension")
    precondition(lda >= max(1, transA == .none ? k : m), "sgemm: lda \(lda) too small")
    precondition(ldb >= max(1, transB == .none ? n : k), "sgemm: ldb \(ldb) too small")
    precondition(ldc >= max(1, n), "sgemm: ldc \(ldc) too small")
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
        return
    }
    cblas_sgemm(
        CblasRowMajor,
        transA == .none ? CblasNoTrans : CblasTrans,
        transB == .none ? CblasNoTrans : CblasTrans,
        Int32(m), Int32(n), Int32(k), alpha,
        a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// The reference: the same contract as `sgemm`, in plain loops with a Double accumulator.
public func sgemmNaive(
    _ transA: Transpose, _ transB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0,
    c: UnsafeMutablePointer<Float>, ldc: Int
) {
    for i in 0..<m {
        for j in 0..<n {
            var acc = 0.0
            for p in 0..<k {
                let av = transA == .none ? a[i * lda + p] : a[p * lda + i]
                let bv = transB == .none ? b[p * ldb + j] : b[j * ldb + p]
                acc += Double(av) * Double(bv)
            }
            let prev = beta == 0 ? 0 : beta * c[i * ldc + j]
            c[i * ldc + j] = alpha * Float(acc) + prev
        }
    }
}

/// y += alpha · x (length n).
@inline(__always)
public func saxpy(_ n: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
    cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
}

/// Dot product of length n with stride 1.
@inline(__always)
public func sdot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
    cblas_sdot(Int32(n), x, 1, y, 1)
}

/// OpenBLAS worker threads (the machine has 2 cores; benchmarks report the setting used).
public enum BLASThreads {
    public static func set(_ n: Int) { openblas_set_num_threads(Int32(n)) }
    public static var current: Int { Int(openblas_get_num_threads()) }
}
