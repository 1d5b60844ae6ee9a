import Foundation
import CInt8
import ModelFormat

// Int8 inference (dynamic quantization, as PyTorch's quantize_dynamic and vLLM's
// compressed-tensors W8A8-int do): decoder linear weights are symmetric per-output-channel
// int8 (W ≈ q·s_w, s_w = max|W_row|/127), activations are quantized per token at run time
// (x ≈ q_x·s_x), and y = (q_x·q_wᵀ as exact int32)·s_x·s_w. The int8×int8 products run on
// the CPU's integer dot-product instructions (AVX-512 VNNI / AVX-VNNI / AVX2) in CInt8.

public enum Int8Quant {
    /// Symmetric per-row int8: scale = max|row|/127, q = round-half-even(w/scale) (torch.round).
    public static func quantizeRows(_ w: [Float], rows: Int, cols: Int) -> (q: [Int8], scale: [Float]) {
        w.withUnsafeBufferPointer { Int8Kernels.quantizeRows($0.baseAddress!, rows: rows, cols: cols) }
    }

    public static func dequantize(_ q: [Int8], scale: [Float], rows: Int, cols: Int) -> [Float] {
        var w = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows { for c in 0..<cols { w[r * cols + c] = Float(q[r * cols + c]) * scale[r] } }
        return w
    }

    public static var isaName: String { String(cString: cint8_isa_name()) }
}

/// Activations quantized per row for the int8 linears that read them: x[M, K] ≈ q·scale.
/// Handed to `Int8Linears.linear` as a value, in memory of the caller's `Workspace` (one per
/// inference), so that concurrent inferences on one model share nothing mutable and a forward
/// allocates nothing per layer. Valid until the workspace's "int8.q" buffers are reused.
public struct QuantizedActivations {
    /// Storage of the m·k int8 values (a Float buffer holds ⌈m·k/4⌉ of them per element).
    let values: FloatBuffer
    let scales: FloatBuffer
    public let m: Int
    public let k: Int
    var q: UnsafePointer<Int8> { UnsafeRawPointer(values.ptr).assumingMemoryBound(to: Int8.self) }
}

/// Packed int8 weights for the decoder linears of a model (nil where a module stays float).
/// Immutable after init: any number of inferences may run on it at once.
public final class Int8Linears: @unchecked Sendable {
    private let packed: [[OpaquePointer?]]   // [layer][LinearKind]

    /// Packs every (layer, kind) for which `weights` gives int8 values and per-row scales.
    public init(dims: ModelDims, weights: (Int, LinearKind) throws -> (q: [Int8], scale: [Float])?) rethrows {
        var packed: [[OpaquePointer?]] = Array(repeating: Array(repeating: nil, count: LinearKind.allCases.count), count: dims.layers)
        for l in 0..<dims.layers {
            for k in LinearKind.allCases {
                guard let (q, s) = try weights(l, k) else { continue }
                let sh = k.shape(dims)
                packed[l][k.rawValue] = q.withUnsafeBufferPointer { qp in
                    s.withUnsafeBufferPointer { sp in cint8_pack(Int32(sh[0]), Int32(sh[1]), qp.baseAddress, sp.baseAddress) }
                }
            }
        }
        self.packed = packed
    }

    deinit { for row in packed { for p in row where p != nil { cint8_packed_free(p) } } }

    public var count: Int { packed.reduce(0) { $0 + $1.compactMap { $0 }.count } }

    func has(_ l: Int, _ k: LinearKind) -> Bool { packed[l][k.rawValue] != nil }

    /// x[M, K] quantized per row (once per group of linears that read the same x), into the
    /// workspace's buffers (fresh ones without a workspace).
    func quantize(_ x: UnsafePointer<Float>, m: Int, k: Int, workspace: Workspace?) -> QuantizedActivations {
        let values = workspace.buffer("int8.q", (m * k + 3) / 4), scales = workspace.buffer("int8.qscale", m)
        let q = UnsafeMutableRawPointer(values.ptr).assumingMemoryBound(to: Int8.self)
        Int8Kernels.quantizeRows(x, rows: m, cols: k, into: q, scales: scales.ptr)
        return QuantizedActivations(values: values, scales: scales, m: m, k: k)
    }

    /// out[M, N] (+)= dequant(q_x · q_wᵀ) for linear `kind` of layer l.
    func linear(_ l: Int, _ kind: LinearKind, x: QuantizedActivations, out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        guard let w = packed[l][kind.rawValue] else { return }
        Int8Kernels.linear(x, packed: w, out: out, accumulate: accumulate)
    }
}

/// Swift wrappers of CInt8 with the engine's argument order (outputs first, sizes as Int).
enum Int8Kernels {
    /// q[rows·cols], scales[rows] ← x[rows, cols], symmetric per row.
    static func quantizeRows(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into q: UnsafeMutablePointer<Int8>,
                             scales: UnsafeMutablePointer<Float>) {
        cint8_quantize_rows(Int32(rows), Int32(cols), x, q, scales)
    }

    /// (q[rows·cols], scale[rows]) ← x[rows, cols], as arrays (weights, once).
    static func quantizeRows(_ x: UnsafePointer<Float>, rows: Int, cols: Int) -> (q: [Int8], scale: [Float]) {
        var q = [Int8](repeating: 0, count: rows * cols), s = [Float](repeating: 0, count: rows)
        q.withUnsafeMutableBufferPointer { qp in
            s.withUnsafeMutableBufferPointer { sp in quantizeRows(x, rows: rows, cols: cols, into: qp.baseAddress!, scales: sp.baseAddress!) }
        }
        return (q, s)
    }

    /// out[M, N] (+)= dequant(x · wᵀ) for packed int8 weights w.
    static func linear(_ x: QuantizedActivations, packed w: OpaquePointer, out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        cint8_linear(Int32(x.m), x.q, x.scales.ptr, w, nil, out, accumulate ? 1 : 0)
    }
}

extension ELLMRecModel {
    /// Loads an int8 checkpoint (compressed-tensors layout): the packed int8 weights drive
    /// inference; the float parameter buffer holds the dequantized weights (q·scale), so every
    /// float code path (and a comparison against the original) still works.
    public static func loadQuantized(checkpoint ck: Checkpoint) throws -> ELLMRecModel {
        var floatTensors = ck.tensors
        var quantized: [String: (q: [Int8], scale: [Float])] = [:]
        for (name, t) in ck.tensors where t.dtype == .i8 {
            let base = String(name.dropLast(".weight".count))
            guard let st = ck.tensors[base + ".weight_scale"] else { throw EngineError("\(name): int8 weight without \(base).weight_scale") }
            let q = try t.int8s(), s = try st.floats()
            quantized[name] = (q, s)
            floatTensors[name] = Tensor(floats: Int8Quant.dequantize(q, scale: s, rows: t.shape[0], cols: t.shape[1]), shape: t.shape)
            floatTensors[base + ".weight_scale"] = nil
        }
        var cfg = ck.config
        cfg.quantization = nil
        let model = try ELLMRecModel(checkpoint: Checkpoint(config: cfg, tensors: floatTensors))
        model.int8 = Int8Linears(dims: model.dims) { l, k in quantized[ParamName.weight(l, k)] }
        return model
    }

    /// Quantizes this model's decoder linears in memory (for `bench --int8` and tests).
    public func quantizedCopyForInference() -> ELLMRecModel {
        let m = ELLMRecModel(dims: dims, params: params.copy())
        m.int8 = Int8Linears(dims: dims) { l, k in
            let sh = k.shape(dims)
            return Int8Quant.quantizeRows(params.values(ParamName.weight(l, k)), rows: sh[0], cols: sh[1])
        }
        return m
    }
}
