import ModelFormat

// ggml's tensor types and their dequantization to fp32, block by block, exactly as ggml
// defines them (ggml/src/ggml-quants.c `dequantize_row_*`; the numpy port in gguf-py
// `gguf/quants.py`, which transformers' GGUF loader uses, computes the same expressions in the
// same order, so the results are bit-identical and the tests compare them with ==).
//
// Every quantized type stores a row as consecutive blocks: `blockSize` weights in `typeSize`
// bytes. Little-endian throughout; fp16 scales are IEEE binary16.

/// A ggml tensor type, by its number in `enum ggml_type` (ggml.h).
public struct GGMLType: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let f32 = GGMLType(rawValue: 0), f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2), q4_1 = GGMLType(rawValue: 3)
    public static let q5_0 = GGMLType(rawValue: 6), q5_1 = GGMLType(rawValue: 7)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q2_K = GGMLType(rawValue: 10), q3_K = GGMLType(rawValue: 11), q4_K = GGMLType(rawValue: 12)
    public static let q5_K = GGMLType(rawValue: 13), q6_K = GGMLType(rawValue: 14)
    public static let bf16 = GGMLType(rawValue: 30)

    /// Names of every type ggml defines (so an unsupported one is named, not just numbered).
    static let names: [UInt32: String] = [
        0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K",
        12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
        20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
        29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
    ]

    public var name: String { GGMLType.names[rawValue] ?? "unknown type \(rawValue)" }
    public var description: String { name }

    /// The types this reader dequantizes, in ggml's order.
    public static let supported: [GGMLType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
    public var isSupported: Bool { GGMLType.supported.contains(self) }

    /// Weights per block (ggml `blck_size`): 1 for plain floats, QK = 32, QK_K = 256.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return 32
        default: return 256
        }
    }

    /// Bytes per block (ggml `type_size`, i.e. sizeof(block_*)).
    public var typeSize: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18    // fp16 d, 16 bytes of nibbles
        case .q4_1: return 20    // fp16 d, fp16 m, 16 bytes
        case .q5_0: return 22    // fp16 d, 4 bytes of high bits, 16 bytes
        case .q5_1: return 24    // fp16 d, fp16 m, 4 + 16 bytes
        case .q8_0: return 34    // fp16 d, 32 int8
        case .q2_K: return 84    // 16 scales, 64 bytes of 2-bit q, fp16 d, fp16 dmin
        case .q3_K: return 110   // 32 bytes hmask, 64 bytes q, 12 scales, fp16 d
        case .q4_K: return 144   // fp16 d, fp16 dmin, 12 scales, 128 bytes q
        case .q5_K: return 176   // fp16 d, fp16 dmin, 12 scales, 32 bytes qh, 128 bytes q
        case .q6_K: return 210   // 128 bytes ql, 64 bytes qh, 16 int8 scales, fp16 d
        default: return 0
        }
    }

    /// Bytes of `count` weights (count a multiple of blockSize).
    public func byteCount(elements count: Int) -> Int { count / blockSize * typeSize }
}

/// Dequantizes `count` weights (a whole number of blocks) from `src` into `dst`.
/// Preconditions (checked by the reader before calling): the type is supported, `count` is a
/// multiple of blockSize and `src` holds `type.byteCount(elements: count)` bytes.
func dequantize(_ type: GGMLType, _ src: UnsafeRawBufferPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
    @inline(__always) func u8(_ o: Int) -> UInt8 { src.load(fromByteOffset: o, as: UInt8.self) }
    @inline(__always) func i8(_ o: Int) -> Int8 { Int8(bitPattern: u8(o)) }
    @inline(__always) func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: src.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
    @inline(__always) func h(_ o: Int) -> Float { Half.toFloat(u16(o)) }
    @inline(__always) func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: src.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
    let bs = type.blockSize, ts = type.typeSize
    let blocks = count / bs
    switch type {
    case .f32:
        for i in 0..<count { dst[i] = Float(bitPattern: u32(4 * i)) }
    case .f16:
        for i in 0..<count { dst[i] = h(2 * i) }
    case .bf16:
        for i in 0..<count { dst[i] = BFloat.toFloat(u16(2 * i)) }
    case .q4_0:
        // w = d·(q − 8); element j < 16 is the low nibble of qs[j], element j + 16 its high nibble.
        for b in 0..<blocks {
            let o = b * ts, y = dst + b * bs, d = h(o)
            for j in 0..<16 {
                let q = u8(o + 2 + j)
                y[j] = d * Float(Int(q & 0xF) - 8)
                y[j + 16] = d * Float(Int(q >> 4) - 8)
            }
        }
    case .q4_1:
        // w = d·q + m (the example; ggml's `x0*d + m`).
        for b in 0..<blocks {
            let o = b * ts, y = dst + b * bs, d = h(o), m = h(o + 2)
            for j in 0..<16 {
                let q = u8(o + 4 + j)
                y[j] = d * Float(q & 0xF) + m
                y[j + 16] = d * Float(q >> 4) + m
            }
        }
    case .q5_0:
        // The fifth bit of element j is bit j of the 32-bit qh; w = d·(q − 16).
        for b in 0..<blocks {
            let o = b * ts, y = dst + b * bs, d = h(o), qh = u32(o + 2)
            for j in 0..<16 {
                let q = u8(o + 6 + j)
                let lo = Int(q & 0xF) | Int((qh >> UInt32(j)) & 1) << 4
                let hi = Int(q >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = d * Float(lo - 16)
                y[j + 16] = d * Float(hi - 16)
            }
        }
    case .q5_1:
        for b in 0..<blocks {
            let o = b * ts, y = dst + b * bs, d = h(o), m = h(o + 2), qh = u32(o + 4)
            for j in 0..<16 {
                let q = u8(o + 8 + j)
                let lo = Int(q & 0xF) | Int((qh >> UInt32(j)) & 1) << 4
                let hi = Int(q >> 4) | Int((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = d * Float(lo) + m
                y[j + 16] = d * Float(hi) + m
            }
        }
    case .q8_0:
        for b in 0..<blocks {
            let o = b * ts, y = dst + b * bs, d = h(o)
            for j in 0..<32 { y[j] = Float(i8(o + 2 + j)) * d }
        }
    case .q2_K:
        // 16 sub-blocks of 16; scale byte: low nibble scales d, high nibble scales dmin.
        // Element e: q byte qs[(e/128)·32 + e%32], bits 2·((e%128)/32).
        for b in 0..<blocks {
            let o = b * ts, y = dst + b * bs
            let d = h(o + 80), dmin = h(o + 82)
            for sub in 0..<16 {
                let sc = u8(o + sub)
                let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                for e in (sub * 16)..<(sub * 16 + 16) {
                    let q = (u8(o + 16 + (e / 128) * 32 + e % 32) >> UInt8(2 * ((e % 128) / 32))) & 3
                    y[e] = dl * Float(q) - ml
                }
            }
        }
    case .q3_K:
        // 16 six-bit signed scales (offset 32) packed in 12 bytes; a 2-bit q from qs plus a high
        // bit from hmask whose *absence* subtracts 4 (ggml: `(hm & m) ? 0 : 4`).
        for b in 0..<blocks {
            let o = b * ts, y = dst + b * bs, d = h(o + 108)
            for sub in 0..<16 {
                let low = (u8(o + 96 + sub % 8) >> UInt8(4 * (sub / 8))) & 0xF
                let high = (u8(o + 96 + 8 + sub % 4) >> UInt8(2 * (sub / 4))) & 3
                let dl = d * Float(Int(low | high << 4) - 32)
                for e in (sub * 16)..<(sub * 16 + 16) {
                    let g = e / 32, l = e % 32
                    let ql = Int((u8(o + 32 + (g / 4) * 32 + l) >> UInt8(2 * (g % 4))) & 3)
                    let hbit = (u8(o + l) >> UInt8(g)) & 1
                    y[e] = dl * Float(ql - (hbit == 0 ? 4 : 0))
                }
            }
        }
    case .q4_K, .q5_K:
        // 8 sub-blocks of 32 with 6-bit scale and min (get_scale_min_k4); w = (d·sc)·q − (dmin·m).
        let five = type == .q5_K
        let qsOff = five ? 48 : 16
        for b in 0..<blocks {
            let o = b * ts, y = dst + b * bs, d = h(o), dmin = h(o + 2)
            for j in 0..<8 {
                let sc: UInt8, m: UInt8
                if j < 4 {
                    sc = u8(o + 4 + j) & 63
                    m = u8(o + 4 + j + 4) & 63
                } else {
                    sc = (u8(o + 4 + j + 4) & 0xF) | ((u8(o + 4 + j - 4) >> 6) << 4)
                    m = (u8(o + 4 + j + 4) >> 4) | ((u8(o + 4 + j) >> 6) << 4)
                }
                let d1 = d * Float(sc), m1 = dmin * Float(m)
                let chunk = j / 2, high = j % 2 == 1
                for l in 0..<32 {
                    let byte = u8(o + qsOff + chunk * 32 + l)
                    var q = Int(high ? byte >> 4 : byte & 0xF)
                    if five && (u8(o + 16 + l) >> UInt8(j)) & 1 == 1 { q += 16 }
                    y[j * 32 + l] = d1 * Float(q) - m1
                }
            }
        }
    case .q6_K:
        // Element e of a 128 half: quarter k = (e%128)/32, l = e%32; low 4 bits from
        // ql[(e/128)·64 + (k%2)·32 + l] (high nibble when k ≥ 2), 2 bits from qh[(e/128)·32 + l]
        // at 2k; int8 scale sc[(e/128)·8 + 2k + l/16]; w = (d·sc)·(q − 32).
        for b in 0..<blocks {
            let o = b * ts, y = dst + b * bs, d = h(o + 208)
            for e in 0..<256 {
                let n = e / 128, k = (e % 128) / 32, l = e % 32
                let qlb = u8(o + n * 64 + (k % 2) * 32 + l)
                let lo = k >= 2 ? qlb >> 4 : qlb & 0xF
                let hi = (u8(o + 128 + n * 32 + l) >> UInt8(2 * k)) & 3
                let q = Int(lo | hi << 4) - 32
                let sc = Float(i8(o + 192 + n * 8 + 2 * k + l / 16))
                y[e] = (d * sc) * Float(q)
            }
        }
    default:
        break  // unsupported types are refused before this is called
    }
}
