import Foundation

// Text output shared by every writer of a prepared dataset (prepare, negatives, subsample)
// and of results (slmrec recommend).

public enum TSV {
    /// Tabs and newlines inside a field would break the row layout.
    public static func clean(_ s: String) -> String {
        guard s.contains(where: { $0 == "\t" || $0 == "\n" || $0 == "\r" }) else { return s }
        return String(s.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}

/// Buffered output with fast integer formatting (prepare writes hundreds of millions of numbers).
/// A struct (mutating appends avoid the dynamic exclusivity checks a class property would pay
/// per byte); the FILE lives in a small class whose `deinit` closes it if an error unwinds
/// past the writer before `close()`.
public struct BufferedWriter {
    private final class FileBox {
        let fp: UnsafeMutablePointer<FILE>
        var closed = false
        init(_ fp: UnsafeMutablePointer<FILE>) { self.fp = fp }
        deinit { if !closed { fclose(fp) } }
    }
    private let box: FileBox
    private var fp: UnsafeMutablePointer<FILE> { box.fp }
    private let path: String
    private var buf: [UInt8] = []

    public init(_ url: URL) throws {
        path = url.path
        guard let f = fopen(url.path, "wb") else {
            throw RecDataError.io(file: url.path, detail: "cannot create: \(String(cString: strerror(errno)))")
        }
        box = FileBox(f)
        buf.reserveCapacity(1 << 20)
    }

    @inline(__always) public mutating func byte(_ b: UInt8) {
        buf.append(b)
        if buf.count >= 1 << 20 { flush() }
    }

    @inline(__always) public mutating func int(_ v: Int) {
        if v < 0 { byte(UInt8(ascii: "-")); int(-v); return }
        if v < 10 { byte(UInt8(48 + v)); return }
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &tmp) { t in
            while x > 0 { t[n] = UInt8(48 + x % 10); x /= 10; n += 1 }
            for i in stride(from: n - 1, through: 0, by: -1) { buf.append(t[i]) }
        }
        if buf.count >= 1 << 20 { flush() }
    }

    /// One `USER ID ID …` line: sequences.txt and the negatives files share this layout.
    public mutating func idRow<C: Collection>(_ user: Int, _ ids: C) where C.Element == Int32 {
        int(user)
        for x in ids { byte(0x20); int(Int(x)) }
        byte(0x0A)
    }

    /// Bytes as they are (a line copied from another prepared file).
    public mutating func bytes(_ b: UnsafeBufferPointer<UInt8>) {
        buf.append(contentsOf: b)
        if buf.count >= 1 << 20 { flush() }
    }

    public mutating func text(_ s: String) {
        buf.append(contentsOf: s.utf8)
        if buf.count >= 1 << 20 { flush() }
    }

    private mutating func flush() {
        if !buf.isEmpty { _ = buf.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, fp) } }
        buf.removeAll(keepingCapacity: true)
    }

    public mutating func close() throws {
        guard !box.closed else { return }
        flush()
        box.closed = true
        let err = ferror(fp) != 0
        if fclose(fp) != 0 || err {
            throw RecDataError.io(file: path, detail: "write failed (disk full?): \(String(cString: strerror(errno)))")
        }
    }
}

