import Foundation
import Common

/// A host tensor with owned little-endian bytes, row-major, in safetensors' dtype vocabulary.
public struct Tensor: Sendable, Equatable {
    public var dtype: DType
    public var shape: [Int]
    public var data: [UInt8]

    /// Wraps bytes as they are. Only the byte count is checked (a programming error if wrong);
    /// bytes from files go through the validated loading paths (`SafetensorsFile`).
    public init(dtype: DType, shape: [Int], data: [UInt8]) {
        precondition(data.count == Tensor.elementCount(shape) * dtype.byteSize,
                     "Tensor: \(data.count) bytes do not fit \(dtype.rawValue) \(shape)")
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    /// Stores floats as `dtype`; F16/BF16 round to nearest even, as torch's `.half()` and
    /// `.to(torch.bfloat16)` do, so a checkpoint converted here equals one converted in PyTorch.
    public init(floats: [Float], shape: [Int], dtype: DType = .f32) {
        precondition(dtype.isFloat, "Tensor(floats:) needs a float dtype, got \(dtype.rawValue)")
        precondition(floats.count == Tensor.elementCount(shape), "Tensor: \(floats.count) floats do not fit \(shape)")
        self.dtype = dtype
        self.shape = shape
        switch dtype {
        case .f16: data = Tensor.pack(floats.map(Half.fromFloat))
        case .bf16: data = Tensor.pack(floats.map(BFloat.fromFloat))
        default: data = Tensor.pack(floats)
        }
    }

    public init(int8: [Int8], shape: [Int]) {
        precondition(int8.count == Tensor.elementCount(shape))
        self.dtype = .i8
        self.shape = shape
        self.data = int8.map { UInt8(bitPattern: $0) }
    }

    public init(int32: [Int32], shape: [Int]) {
        precondition(int32.count == Tensor.elementCount(shape))
        self.dtype = .i32
        self.shape = shape
        self.data = Tensor.pack(int32)
    }

    public init(int64: [Int64], shape: [Int]) {
        precondition(int64.count == Tensor.elementCount(shape))
        self.dtype = .i64
        self.shape = shape
        self.data = Tensor.pack(int64)
    }

    /// Product of the shape; 1 for a scalar (shape []).
    public var count: Int { Tensor.elementCount(shape) }

    static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// The values as Float; F16/BF16 upcast exactly.
    public func floats() throws -> [Float] {
        try data.withUnsafeBytes { try Tensor.decodeFloats($0, dtype: dtype, count: count, what: "tensor") }
    }

    /// The flat index of the first NaN or ±Inf of a float tensor (nil: all finite, or not a
    /// float tensor). A bit test on the stored bytes (exponent all ones), no conversion.
    public func firstNonFinite() -> Int? {
        data.withUnsafeBytes { raw -> Int? in
            switch dtype {
            case .f32:
                for i in 0..<count where raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self) & 0x7F80_0000 == 0x7F80_0000 { return i }
            case .f16:
                for i in 0..<count where raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self) & 0x7C00 == 0x7C00 { return i }
            case .bf16:
                for i in 0..<count where raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self) & 0x7F80 == 0x7F80 { return i }
            default: return nil
            }
            return nil
        }
    }

    /// A flat index as a subscript of `shape`: 13 in [4, 5] → [2, 3].
    public func position(ofFlatIndex i: Int) -> [Int] {
        var rest = i
        var out = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 { out[d] = rest % shape[d]; rest /= shape[d] }
        return out
    }

    public func int8s() throws -> [Int8] {
        guard dtype == .i8 else { throw Tensor.kindError("int8s()", dtype) }
        return data.map { Int8(bitPattern: $0) }
    }

    /// I8, I32 or I64 values widened to Int64.
    public func int64s() throws -> [Int64] {
        switch dtype {
        case .i8: return data.map { Int64(Int8(bitPattern: $0)) }
        case .i32: return data.withUnsafeBytes { raw in (0..<count).map { Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) } }
        case .i64: return data.withUnsafeBytes { raw in (0..<count).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } }
        default: throw Tensor.kindError("int64s()", dtype)
        }
    }

    /// Float-to-float conversion (round to nearest even when narrowing).
    public func converted(to target: DType) throws -> Tensor {
        if target == dtype { return self }
        guard dtype.isFloat, target.isFloat else {
            throw ModelFormatError(file: "tensor", problem: "cannot convert \(dtype.rawValue) to \(target.rawValue)",
                                   fix: "only F32, F16 and BF16 convert into each other; quantized weights need dequantizing first")
        }
        return Tensor(floats: try floats(), shape: shape, dtype: target)
    }

    static func kindError(_ call: String, _ dtype: DType) -> ModelFormatError {
        ModelFormatError(file: "tensor", problem: "\(call) called on a \(dtype.rawValue) tensor",
                         fix: "check the tensor's dtype before reading it")
    }

    /// Little-endian bytes of a trivial value array (this module targets little-endian hosts,
    /// as PyTorch does; safetensors is little-endian by definition).
    static func pack<T>(_ values: [T]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }

    /// Decodes `count` floats of `dtype` from raw little-endian bytes: the single copy on the
    /// read path (mapped file -> [Float]).
    static func decodeFloats(_ raw: UnsafeRawBufferPointer, dtype: DType, count: Int, what: String) throws -> [Float] {
        switch dtype {
        case .f32:
            return [Float](unsafeUninitializedCapacity: count) { buf, n in
                if count > 0, let base = raw.baseAddress {
                    UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: base, byteCount: count * 4)
                }
                n = count
            }
        case .f16:
            return [Float](unsafeUninitializedCapacity: count) { buf, n in
                for i in 0..<count { buf[i] = Half.toFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                n = count
            }
        case .bf16:
            return [Float](unsafeUninitializedCapacity: count) { buf, n in
                for i in 0..<count { buf[i] = BFloat.toFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                n = count
            }
        default:
            throw ModelFormatError(file: what, problem: "is \(dtype.rawValue), not a float tensor",
                                   fix: "read integer tensors with int8s()/int64s(); dequantize int8 weights with their weight_scale")
        }
    }
}

/// IEEE 754 binary16 bit conversions, written out so that results do not depend on the
/// platform's Float16 support (absent on some targets) and so rounding is visibly RNE.
public enum Half {
    public static func fromFloat(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xFF)
        let mant = x & 0x7F_FFFF
        if exp == 0xFF {
            // Inf stays Inf; NaN stays a (quiet) NaN with the top payload bits kept.
            return mant == 0 ? sign | 0x7C00 : sign | 0x7E00 | UInt16(truncatingIfNeeded: mant >> 13)
        }
        let e = exp - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }  // overflow to Inf, as torch does
        if e <= 0 {
            // Subnormal half: value = m * 2^-24. With the implicit bit, the f32 value is
            // M * 2^(exp-150) = M * 2^(e-14) * 2^-24, so shift M right by 14 - e.
            if e < -10 { return sign }  // below half the smallest subnormal: rounds to ±0
            let m = mant | 0x80_0000
            let s = UInt32(14 - e)
            var h = m >> s
            let rem = m & ((1 << s) - 1)
            let halfway = UInt32(1) << (s - 1)
            if rem > halfway || (rem == halfway && (h & 1) == 1) { h += 1 }
            return sign | UInt16(truncatingIfNeeded: h)
        }
        var h = (UInt32(e) << 10) | (mant >> 13)
        let rem = mant & 0x1FFF
        // A carry out of the mantissa correctly bumps the exponent (up to Inf).
        if rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1) { h += 1 }
        return sign | UInt16(truncatingIfNeeded: h)
    }

    public static func toFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            let v = Float(mant) * 0x1p-24  // exact: at most 11 significant bits
            return sign != 0 ? -v : v
        }
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }
}

/// bfloat16: the top 16 bits of a float32.
public enum BFloat {
    public static func fromFloat(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        // torch (c10::round_to_nearest_even) maps every NaN to the canonical 0x7FC0.
        if f.isNaN { return 0x7FC0 }
        let rounded = x &+ 0x7FFF &+ ((x >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    public static func toFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }
}
