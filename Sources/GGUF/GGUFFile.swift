import Foundation
import ModelFormat

// GGUF, the file format llama.cpp keeps models in (ggml/docs/gguf.md; ggml/src/gguf.cpp is the
// reference reader, gguf-py's GGUFReader the second one). Layout, little-endian:
//   magic "GGUF" · u32 version (2 or 3) · u64 tensor_count · u64 metadata_kv_count
//   metadata_kv_count × (string key · u32 value_type · value)
//   tensor_count × (string name · u32 n_dims · n_dims × u64 ne · u32 ggml_type · u64 offset)
//   padding to general.alignment (default 32) · tensor data (offsets relative to its start)
// A string is u64 length + UTF-8 bytes (no terminator); an array is u32 element type + u64
// count + elements. ne[0] is the fastest-moving dimension, so PyTorch's shape is ne reversed.
//
// Every length and count is checked against the bytes left before anything is allocated, so
// a corrupt or hostile file gives an error naming the key or tensor, never a huge allocation
// or a read past the mapping.

/// A metadata value (the thirteen GGUF value types).
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])

    /// Any integer type as Int (nil when it does not fit or is not an integer).
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }
    /// Floats and integers as Double.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return intValue.map(Double.init)
        }
    }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var arrayValue: [GGUFValue]? { if case .array(let a) = self { return a } else { return nil } }

    /// The GGUF type name, for messages ("uint32", "array of string"…).
    public var typeName: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float32: return "float32"
        case .float64: return "float64"
        case .bool: return "bool"
        case .string: return "string"
        case .array(let a): return "array of \(a.first?.typeName ?? "nothing")"
        }
    }

    /// A short rendering for `inspect`-style listings (arrays abbreviated).
    public var summary: String {
        switch self {
        case .string(let s): return s.count > 60 ? "\"\(s.prefix(57))…\"" : "\"\(s)\""
        case .array(let a): return "[\(a.count) × \(a.first?.typeName ?? "?")]"
        case .bool(let b): return b ? "true" : "false"
        case .float32(let f): return "\(f)"
        case .float64(let f): return "\(f)"
        default: return intValue.map { "\($0)" } ?? "\(self)"
        }
    }
}

/// One tensor's entry in the tensor table.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml's ne: ne[0] is the fastest-moving (the row length).
    public let ne: [Int]
    public let type: GGMLType
    /// Offset from the start of the data section.
    public let offset: Int
    public let byteCount: Int
    /// The PyTorch / safetensors shape (ne reversed).
    public var shape: [Int] { ne.reversed() }
    public var count: Int { ne.reduce(1, *) }
}

/// A memory-mapped GGUF file whose header, metadata and tensor table have been validated.
public final class GGUFFile: @unchecked Sendable {  // immutable after init
    public let url: URL
    public let version: UInt32
    public let alignment: Int
    /// Metadata in file order (keys are unique).
    public let keys: [String]
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    private let byName: [String: Int]
    private let file: MappedFile
    public let dataStart: Int

    public static let defaultAlignment = 32
    /// ggml's GGML_MAX_DIMS.
    public static let maxDims = 4

    public static func open(_ url: URL) throws -> GGUFFile { try GGUFFile(url: url) }

    public init(url: URL) throws {
        self.url = url
        let path = url.path
        file = try MappedFile(url: url)
        var r = ByteReader(bytes: file.bytes, path: path)
        func bad(_ problem: String, _ fix: String) -> ModelFormatError { ModelFormatError(file: path, problem: problem, fix: fix) }

        guard file.bytes.count >= 4 else {
            throw bad("is \(file.bytes.count) bytes long, too short for a GGUF header", "the file is truncated or not GGUF; download it again")
        }
        let magic = try r.u32("the magic number")
        guard magic == 0x4655_4747 else {  // "GGUF" read as little-endian u32
            let shown = Array(file.bytes[0..<4]).map { $0 >= 0x20 && $0 < 0x7F ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
            throw bad("the magic is \"\(shown)\", not \"GGUF\"", "point to a .gguf file (llama.cpp's format); safetensors checkpoints are directories for --base")
        }
        let v = try r.u32("the version")
        if v == 1 {
            throw bad("GGUF version 1 (32-bit lengths, 2023) is not supported", "re-convert the model with a current llama.cpp (convert_hf_to_gguf.py writes version 3)")
        }
        if v != 2 && v != 3 {
            if v.byteSwapped == 2 || v.byteSwapped == 3 {
                throw bad("this is a big-endian GGUF file (version \(v.byteSwapped) byte-swapped)",
                          "use the little-endian file (gguf-py's gguf_convert_endian.py converts it)")
            }
            throw bad("GGUF version \(v) is not supported (versions 2 and 3 are)", "re-convert the model with llama.cpp's convert_hf_to_gguf.py")
        }
        version = v
        let tensorCount = try r.u64("the tensor count")
        let kvCount = try r.u64("the metadata count")
        // Each metadata entry takes at least 12 bytes (empty key + type) and each tensor entry
        // at least 24: a count larger than the file can hold is a lie, refused before allocating.
        guard kvCount <= UInt64(r.remaining / 12) else {
            throw bad("the header says \(kvCount) metadata entries, more than the \(file.bytes.count)-byte file can hold",
                      "the file is corrupt or truncated; download it again")
        }
        var keys: [String] = [], meta: [String: GGUFValue] = [:]
        keys.reserveCapacity(Int(kvCount))
        for i in 0..<Int(kvCount) {
            let key = try r.string("the key of metadata entry #\(i)")
            let what = "metadata \"\(key)\""
            if meta[key] != nil { throw bad("\(what) appears twice", "the file is corrupt; re-convert it") }
            let type = try r.u32("the value type of \(what)")
            meta[key] = try r.value(type: type, what: what)
            keys.append(key)
        }
        self.keys = keys
        metadata = meta

        var align = GGUFFile.defaultAlignment
        if let a = meta["general.alignment"] {
            guard case .uint32(let av) = a else {
                throw bad("metadata \"general.alignment\" is a \(a.typeName), not a uint32", "re-convert the model (gguf writers store it as uint32)")
            }
            guard av > 0, av & (av - 1) == 0 else {
                throw bad("metadata \"general.alignment\" is \(av), not a power of two", "re-convert the model; the alignment must be a power of two")
            }
            align = Int(av)
        }
        alignment = align

        guard tensorCount <= UInt64(r.remaining / 24) else {
            throw bad("the header says \(tensorCount) tensors, more than the rest of the file can describe",
                      "the tensor count is wrong: the file is corrupt or truncated; download it again")
        }
        var infos: [GGUFTensorInfo] = [], byName: [String: Int] = [:]
        for i in 0..<Int(tensorCount) {
            let name = try r.string("the name of tensor #\(i)")
            let what = "tensor \"\(name)\""
            if byName[name] != nil { throw bad("\(what) appears twice in the tensor table", "the file is corrupt; re-convert it") }
            let nd = try r.u32("the dimension count of \(what)")
            guard nd >= 1, nd <= UInt32(GGUFFile.maxDims) else {
                throw bad("\(what) has \(nd) dimensions (ggml allows 1 to \(GGUFFile.maxDims))", "the file is corrupt; re-convert it")
            }
            var ne: [Int] = []
            var total = 1
            for d in 0..<Int(nd) {
                let x = try r.u64("dimension \(d) of \(what)")
                guard x >= 1, x < (1 << 40), case let (p, o) = total.multipliedReportingOverflow(by: Int(x)), !o, p < (1 << 48) else {
                    throw bad("\(what) has dimension \(d) = \(x), an impossible size", "the file is corrupt; re-convert it")
                }
                ne.append(Int(x))
                total = p
            }
            let type = GGMLType(rawValue: try r.u32("the type of \(what)"))
            let offset = try r.u64("the data offset of \(what)")
            guard type.isSupported else {
                throw bad("\(what) has ggml type \(type.name) (\(type.rawValue)), which this reader cannot dequantize; supported: "
                          + GGMLType.supported.map(\.name).joined(separator: ", "),
                          "re-quantize the model to one of those (llama-quantize … Q8_0 / Q4_K_M), or convert it from the Hugging Face original")
            }
            guard ne[0] % type.blockSize == 0 else {
                throw bad("\(what) has rows of \(ne[0]) elements, not a multiple of \(type.name)'s block of \(type.blockSize)",
                          "the file is corrupt; re-convert it")
            }
            guard offset % UInt64(align) == 0 else {
                throw bad("\(what) starts at data offset \(offset), not a multiple of the alignment \(align)",
                          "the file is corrupt (misaligned tensor data); re-convert it")
            }
            guard offset < (1 << 50) else { throw bad("\(what) has data offset \(offset), past any possible file", "the file is corrupt; re-convert it") }
            byName[name] = infos.count
            infos.append(GGUFTensorInfo(name: name, ne: ne, type: type, offset: Int(offset), byteCount: type.byteCount(elements: total)))
        }
        // The data section starts at the next multiple of the alignment.
        let start = (r.offset + align - 1) / align * align
        dataStart = start
        let size = file.bytes.count
        for t in infos where start + t.offset + t.byteCount > size {
            throw bad("the data of tensor \"\(t.name)\" (\(t.byteCount) bytes at file offset \(start + t.offset)) runs past the end of the \(size)-byte file",
                      "the file is truncated; download it again")
        }
        // Tensors must not overlap (gguf.cpp lays them out back to back).
        let sorted = infos.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw bad("the data of tensors \"\(a.name)\" and \"\(b.name)\" overlap", "the file is corrupt; re-convert it")
        }
        tensors = infos
        self.byName = byName
    }

    public func info(_ name: String) -> GGUFTensorInfo? { byName[name].map { tensors[$0] } }

    /// Size of the file in bytes.
    public var fileSize: Int { file.bytes.count }

    /// The raw bytes of a tensor, inside the mapping.
    public func rawBytes(_ t: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + t.offset)..<(dataStart + t.offset + t.byteCount)])
    }

    private func lookup(_ name: String) throws -> GGUFTensorInfo {
        guard let t = info(name) else {
            throw ModelFormatError(file: url.path, problem: "no tensor named \"\(name)\"", fix: "the file holds \(tensors.count) tensors; check the name")
        }
        return t
    }

    /// The whole tensor dequantized to fp32, in row-major PyTorch order.
    public func floats(_ name: String) throws -> [Float] {
        let t = try lookup(name)
        return [Float](unsafeUninitializedCapacity: t.count) { buf, n in
            if let base = buf.baseAddress { dequantize(t.type, rawBytes(t), count: t.count, into: base) }
            n = t.count
        }
    }

    /// Selected rows (indices along the slowest dimension of a 2-D tensor) dequantized to fp32:
    /// a few token embeddings without decoding the whole (vocab × hidden) table.
    public func rows(_ name: String, _ indices: [Int]) throws -> [Float] {
        let t = try lookup(name)
        guard t.ne.count == 2 else {
            throw ModelFormatError(file: url.path, problem: "tensor \"\(name)\" has \(t.ne.count) dimensions, rows need 2", fix: "pass a matrix")
        }
        let width = t.ne[0], rowBytes = t.type.byteCount(elements: width), raw = rawBytes(t)
        var out = [Float](repeating: 0, count: indices.count * width)
        for (k, i) in indices.enumerated() {
            guard i >= 0 && i < t.ne[1] else {
                throw ModelFormatError(file: url.path, problem: "row \(i) of tensor \"\(name)\" does not exist (it has \(t.ne[1]) rows)",
                                       fix: "use an index below \(t.ne[1])")
            }
            out.withUnsafeMutableBufferPointer { o in
                dequantize(t.type, UnsafeRawBufferPointer(rebasing: raw[(i * rowBytes)..<((i + 1) * rowBytes)]), count: width,
                           into: o.baseAddress! + k * width)
            }
        }
        return out
    }
}

/// Bounds-checked little-endian reads; every failure names what was being read.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0
    var remaining: Int { bytes.count - offset }

    /// Largest element count a single array may claim (gguf.cpp has no lower limit than the
    /// file; this only bounds the allocation together with the remaining-bytes check).
    static let maxArray = 1 << 31

    func truncated(_ what: String, need: Int) -> ModelFormatError {
        ModelFormatError(file: path, problem: "\(what) (\(need) bytes at offset \(offset)) runs past the end of the \(bytes.count)-byte file",
                         fix: "the file is truncated or corrupt; download it again")
    }

    mutating func take(_ n: Int, _ what: String) throws -> Int {
        guard n >= 0, n <= remaining else { throw truncated(what, need: n) }
        defer { offset += n }
        return offset
    }
    mutating func u8(_ what: String) throws -> UInt8 { bytes[try take(1, what)] }
    mutating func u16(_ what: String) throws -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(2, what), as: UInt16.self)) }
    mutating func u32(_ what: String) throws -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4, what), as: UInt32.self)) }
    mutating func u64(_ what: String) throws -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8, what), as: UInt64.self)) }
    mutating func string(_ what: String) throws -> String {
        let n = try u64("the length of \(what)")
        guard n <= UInt64(remaining) else {
            throw ModelFormatError(file: path, problem: "\(what) claims \(n) bytes but only \(remaining) remain in the file",
                                   fix: "the file is truncated or corrupt; download it again")
        }
        let o = try take(Int(n), what)
        guard let s = String(validating: UnsafeRawBufferPointer(rebasing: bytes[o..<(o + Int(n))]), as: UTF8.self) else {
            throw ModelFormatError(file: path, problem: "\(what) is not valid UTF-8", fix: "the file is corrupt; re-convert it")
        }
        return s
    }

    /// Minimum bytes of one value of a type (to bound array counts before allocating).
    static func minSize(_ type: UInt32) -> Int {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 8, 10, 11, 12: return 8
        case 9: return 12
        default: return 1
        }
    }

    mutating func value(type: UInt32, what: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try u8(what))
        case 1: return .int8(Int8(bitPattern: try u8(what)))
        case 2: return .uint16(try u16(what))
        case 3: return .int16(Int16(bitPattern: try u16(what)))
        case 4: return .uint32(try u32(what))
        case 5: return .int32(Int32(bitPattern: try u32(what)))
        case 6: return .float32(Float(bitPattern: try u32(what)))
        case 7:
            let b = try u8(what)
            guard b <= 1 else {
                throw ModelFormatError(file: path, problem: "\(what) is a bool with byte value \(b) (must be 0 or 1)", fix: "the file is corrupt; re-convert it")
            }
            return .bool(b == 1)
        case 8: return .string(try string(what))
        case 9:
            guard depth < 4 else {
                throw ModelFormatError(file: path, problem: "\(what) nests arrays more than 4 deep", fix: "the file is corrupt; re-convert it")
            }
            let et = try u32("the element type of \(what)")
            guard et <= 12 else {
                throw ModelFormatError(file: path, problem: "\(what) is an array of unknown value type \(et)", fix: "the file is corrupt; re-convert it")
            }
            let n = try u64("the element count of \(what)")
            guard n <= UInt64(remaining / ByteReader.minSize(et)), n <= UInt64(ByteReader.maxArray) else {
                throw ModelFormatError(file: path, problem: "\(what) claims \(n) elements, more than the \(remaining) bytes left in the file can hold",
                                       fix: "the file is truncated or corrupt; download it again")
            }
            var out: [GGUFValue] = []
            out.reserveCapacity(Int(n))
            for i in 0..<Int(n) { out.append(try value(type: et, what: "\(what)[\(i)]", depth: depth + 1)) }
            return .array(out)
        case 10: return .uint64(try u64(what))
        case 11: return .int64(Int64(bitPattern: try u64(what)))
        case 12: return .float64(Double(bitPattern: try u64(what)))
        default:
            throw ModelFormatError(file: path, problem: "\(what) has unknown value type \(type) (GGUF defines 0–12)", fix: "the file is corrupt or from a newer GGUF; re-convert it")
        }
    }
}
