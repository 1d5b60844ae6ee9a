import Foundation
import Common

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let byteCount: Int

    public init(name: String, dtype: DType, shape: [Int], byteCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteCount = byteCount
    }
}

/// The read-only POSIX mapping of a whole file; unmapped when the last reference goes.
public final class MappedFile: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer  // immutable after init; PROT_READ mapping
    private let mapping: UnsafeMutableRawPointer?
    private let length: Int

    public init(url: URL) throws {
        let path = url.path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ModelFormatError(file: path, problem: "cannot open: \(String(cString: strerror(errno)))",
                                   fix: "check that the file exists and is readable")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw ModelFormatError(file: path, problem: "cannot stat: \(String(cString: strerror(errno)))", fix: "check the file")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ModelFormatError(file: path, problem: "is not a regular file", fix: "point to a file, not a directory or device")
        }
        length = Int(st.st_size)
        if length == 0 {
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        // MAP_PRIVATE + PROT_READ: pages come from the page cache, nothing is copied until a
        // tensor is decoded into an owned array.
        guard let p = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw ModelFormatError(file: path, problem: "cannot memory-map: \(String(cString: strerror(errno)))",
                                   fix: "check free address space and that the file is on a local file system")
        }
        mapping = p
        bytes = UnsafeRawBufferPointer(start: p, count: length)
    }

    deinit {
        if let m = mapping { munmap(m, length) }
    }
}

/// A memory-mapped safetensors file whose header has been fully validated.
public final class SafetensorsFile: @unchecked Sendable {  // immutable after init
    public let url: URL
    public let metadata: [String: String]
    private let infos: [String: TensorInfo]
    private let offsets: [String: Int]  // byte offset of each tensor inside the data section
    private let sortedNames: [String]
    private let file: MappedFile
    private let dataStart: Int

    /// Header length cap: safetensors-rs refuses headers above 100 MB (a corrupt length
    /// field would otherwise make us allocate gigabytes).
    public static let maxHeaderBytes = 100_000_000

    public init(url: URL) throws {
        self.url = url
        let file = try MappedFile(url: url)
        self.file = file
        let parsed = try SafetensorsFile.parseHeader(file.bytes, path: url.path)
        metadata = parsed.metadata
        infos = parsed.infos
        offsets = parsed.offsets
        sortedNames = parsed.infos.keys.sorted()
        dataStart = parsed.dataStart
    }

    public var names: [String] { sortedNames }

    public func info(_ name: String) -> TensorInfo? { infos[name] }

    /// Size of the file in bytes.
    public var fileSize: Int { file.bytes.count }

    private func bytes(of info: TensorInfo) -> UnsafeRawBufferPointer {
        let start = dataStart + (offsets[info.name] ?? 0)
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + info.byteCount)])
    }

    private func lookup(_ name: String) throws -> TensorInfo {
        guard let i = infos[name] else {
            throw ModelFormatError(file: url.path, problem: "no tensor named \"\(name)\"",
                                   fix: "the file holds \(infos.count) tensors; check the name (see `names`)")
        }
        return i
    }

    /// The tensor with its bytes copied out of the mapping.
    public func tensor(_ name: String) throws -> Tensor {
        let i = try lookup(name)
        return Tensor(dtype: i.dtype, shape: i.shape, data: Array(bytes(of: i)))
    }

    /// The tensor decoded straight from the mapping into Float (one copy).
    public func floats(_ name: String) throws -> [Float] {
        let i = try lookup(name)
        return try Tensor.decodeFloats(bytes(of: i), dtype: i.dtype, count: Tensor.elementCount(i.shape), what: "\(url.path): tensor \(name)")
    }

    struct Header {
        var metadata: [String: String]
        var infos: [String: TensorInfo]
        var offsets: [String: Int]
        var dataStart: Int
    }

    /// Validates everything safetensors-rs validates, so that a file we accept also loads in
    /// PyTorch, and a corrupt file fails here with the tensor's name instead of later.
    static func parseHeader(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Header {
        func bad(_ problem: String, _ fix: String = "the file is corrupt or not a safetensors file; re-export it with safetensors.torch.save_file") -> ModelFormatError {
            ModelFormatError(file: path, problem: problem, fix: fix)
        }
        guard bytes.count >= 8 else { throw bad("file is \(bytes.count) bytes, shorter than the 8-byte header length") }
        let n = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard n <= UInt64(maxHeaderBytes) else { throw bad("header length \(n) exceeds the 100 MB cap") }
        let headerLen = Int(n)
        guard 8 + headerLen <= bytes.count else {
            throw bad("header length \(headerLen) runs past the end of the file (\(bytes.count) bytes)")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLen)])
        let json: JSONValue
        do {
            json = try JSONValue.parse(headerBytes)
        } catch let e as JSONParseError {
            throw bad("header is not valid JSON (\(e.message) at byte \(e.offset + 8))")
        }
        guard case .object(let obj) = json else { throw bad("header is not a JSON object") }
        let dataStart = 8 + headerLen
        let dataLen = bytes.count - dataStart

        var metadata: [String: String] = [:]
        var infos: [String: TensorInfo] = [:]
        var offsets: [String: Int] = [:]
        for (name, entry) in obj {
            if name == "__metadata__" {
                guard case .object(let m) = entry else { throw bad("__metadata__ is not an object of strings") }
                for (k, v) in m {
                    guard case .string(let s) = v else { throw bad("__metadata__ value for \"\(k)\" is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard case .object(let e) = entry else { throw bad("entry for tensor \"\(name)\" is not an object") }
            guard let ds = e["dtype"]?.stringValue else { throw bad("tensor \"\(name)\" has no dtype string") }
            guard let dtype = DType(rawValue: ds) else {
                throw bad("tensor \"\(name)\" has unsupported dtype \"\(ds)\" (supported: \(DType.supportedList))",
                          "convert the tensor to one of the supported dtypes before export")
            }
            guard let shapeJSON = e["shape"]?.arrayValue else { throw bad("tensor \"\(name)\" has no shape array") }
            var shape: [Int] = []
            for d in shapeJSON {
                guard case .int(let v) = d else { throw bad("tensor \"\(name)\" has a non-integer shape entry \(JSONText.compact(d))") }
                guard v >= 0 else { throw bad("tensor \"\(name)\" has a negative shape entry \(v) in \(shapeJSON.map { JSONText.compact($0) })") }
                shape.append(v)
            }
            guard let offs = e["data_offsets"]?.arrayValue, offs.count == 2,
                  case .int(let begin) = offs[0], case .int(let end) = offs[1], begin >= 0, end >= begin
            else {
                throw bad("tensor \"\(name)\" data_offsets must be 2 non-decreasing non-negative integers, found \(e["data_offsets"].map { JSONText.compact($0) } ?? "none")")
            }
            guard end <= dataLen else {
                throw bad("tensor \"\(name)\" data_offsets [\(begin), \(end)] lie outside the data section (\(dataLen) bytes)",
                          "the file is truncated or corrupt; re-download or re-export it")
            }
            var elems = 1
            for d in shape {
                let (p, o) = elems.multipliedReportingOverflow(by: d)
                guard !o else { throw bad("tensor \"\(name)\" shape \(shape) overflows") }
                elems = p
            }
            let (expected, o) = elems.multipliedReportingOverflow(by: dtype.byteSize)
            guard !o, expected == end - begin else {
                throw bad("tensor \"\(name)\" has \(end - begin) bytes but \(dtype.rawValue) \(shape) needs \(elems) × \(dtype.byteSize) = \(expected)")
            }
            infos[name] = TensorInfo(name: name, dtype: dtype, shape: shape, byteCount: end - begin)
            offsets[name] = begin
        }
        // The tensors must tile the data section exactly, as safetensors-rs requires.
        let ordered = infos.values.map { (name: $0.name, offset: offsets[$0.name] ?? 0, byteCount: $0.byteCount) }
            .sorted { ($0.offset, $0.offset + $0.byteCount, $0.name) < ($1.offset, $1.offset + $1.byteCount, $1.name) }
        var cursor = 0
        var prev = "start of the data section"
        for t in ordered {
            if t.offset < cursor {
                throw bad("\(prev) and tensor \"\(t.name)\" overlap (offset \(t.offset) < \(cursor))")
            }
            if t.offset > cursor {
                throw bad("non-contiguous data: \(t.offset - cursor) unused bytes between \(prev) and tensor \"\(t.name)\" (safetensors-rs rejects gaps too)")
            }
            cursor = t.offset + t.byteCount
            prev = "tensor \"\(t.name)\""
        }
        if cursor != dataLen {
            throw bad("non-contiguous data: \(dataLen - cursor) trailing bytes after the last tensor (safetensors-rs rejects this too)")
        }
        return Header(metadata: metadata, infos: infos, offsets: offsets, dataStart: dataStart)
    }
}

public enum Safetensors {
    /// Serializes exactly as safetensors-rs does: `__metadata__` first, tensors laid out by
    /// dtype alignment then name (all-F32 files are therefore in plain name order), compact
    /// JSON keys in data order, header padded with spaces to a multiple of 8 bytes.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = ["format": "pt"], path: String = "safetensors") throws -> Data {
        let order = tensors.keys.sorted { a, b in
            let ra = tensors[a]?.dtype.layoutRank ?? 0, rb = tensors[b]?.dtype.layoutRank ?? 0
            return ra != rb ? ra < rb : a < b
        }
        var header = "{"
        var first = true
        if !metadata.isEmpty {
            header += "\"__metadata__\":{" + metadata.keys.sorted().map { "\(JSONText.quote($0)):\(JSONText.quote(metadata[$0] ?? ""))" }.joined(separator: ",") + "}"
            first = false
        }
        var offset = 0
        for name in order {
            guard let t = tensors[name] else { continue }
            guard !name.isEmpty, name != "__metadata__" else {
                throw ModelFormatError(file: path, problem: "invalid tensor name \"\(name)\"", fix: "rename the tensor")
            }
            guard t.data.count == t.count * t.dtype.byteSize, t.shape.allSatisfy({ $0 >= 0 }) else {
                throw ModelFormatError(file: path, problem: "tensor \"\(name)\" has \(t.data.count) bytes for \(t.dtype.rawValue) \(t.shape)",
                                       fix: "this is a bug in the code that built the tensor")
            }
            let shape = "[" + t.shape.map(String.init).joined(separator: ",") + "]"
            header += (first ? "" : ",") + "\(JSONText.quote(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":\(shape),\"data_offsets\":[\(offset),\(offset + t.data.count)]}"
            first = false
            offset += t.data.count
        }
        header += "}"
        var h = Array(header.utf8)
        let padded = (h.count + 7) / 8 * 8
        h.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padded - h.count))
        var out = Data(capacity: 8 + h.count + offset)
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        for name in order { if let t = tensors[name] { out.append(contentsOf: t.data) } }
        return out
    }

    /// Atomic write: the bytes go to a temporary file in the same directory, then rename(2).
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = ["format": "pt"], to url: URL) throws {
        let data = try encode(tensors, metadata: metadata, path: url.path)
        // A tensor file never replaces a directory (AtomicFile refuses too); refused here first
        // so that the error names the safetensors file and the fix.
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            throw ModelFormatError(file: url.path, problem: "cannot write a safetensors file: the path is an existing directory",
                                   fix: "choose a file path (e.g. <dir>/model.safetensors)")
        }
        do {
            try AtomicFile.write(data, to: url)
        } catch let e as ModelFormatError {
            throw e
        } catch {
            let f = writeFailure(error, what: "the safetensors file", path: url.path)
            throw ModelFormatError(file: url.path, problem: f.problem, fix: f.fix)
        }
    }

    /// Reads every tensor (validated) into owned memory.
    public static func read(_ url: URL) throws -> [String: Tensor] {
        let f = try SafetensorsFile(url: url)
        var out: [String: Tensor] = [:]
        for n in f.names { out[n] = try f.tensor(n) }
        return out
    }
}
