import CZlib
import Foundation

/// Reads a text file line by line as raw bytes, without building a String per line.
///
/// Everything goes through zlib's gzread: it decompresses `.gz` input and passes plain files
/// through unchanged ("transparent" mode), so there is one code path for both. The buffer
/// is refilled in 1 MB chunks; each line is handed to the caller as a pointer into it, valid
/// only during the callback. A trailing `\r` (Windows line ends) is stripped.
public struct LineReader {
    public let url: URL
    public init(url: URL) { self.url = url }

    /// Calls `body(line, lineNumber)` for every line (1-based numbers, empty lines included).
    /// Returning `false` from `body` stops early.
    public func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws -> Bool) throws {
        // zlib opens a directory and fails at the first read ("Is a directory (a truncated or
        // corrupt .gz file?)"): say what it is instead.
        var st = stat()
        let statted = stat(url.path, &st) == 0
        if statted, (st.st_mode & S_IFMT) == S_IFDIR {
            throw RecDataError.io(file: url.path, detail: "is a directory, not a file; give the file's path")
        }
        guard let gz = gzopen(url.path, "rb") else {
            throw RecDataError.io(file: url.path, detail: "cannot open for reading: \(String(cString: strerror(errno)))")
        }
        defer { gzclose(gz) }
        // Chunks of 1 MB, or of the file's size when smaller (at least 16 KB): a 2 KB file
        // should not page in the 3 MB that zlib's buffers and ours take at 1 MB (the fuzz
        // targets parse thousands of small files a second; docs/reliability.md). A small
        // .gz file expands beyond its size: the buffer grows as for a long line.
        let size = statted ? Int(st.st_size) : Int.max
        var chunk = 1 << 14
        while chunk < size && chunk < 1 << 20 { chunk <<= 1 }
        gzbuffer(gz, UInt32(chunk))
        var buf = [UInt8](repeating: 0, count: chunk * 2)
        var start = 0   // first byte of the pending (incomplete) line
        var end = 0     // one past the last valid byte
        var lineNo = 0
        var eof = false
        while !eof {
            // Move the incomplete tail to the front, growing the buffer for very long lines.
            if start > 0 {
                if end > start { buf.withUnsafeMutableBufferPointer { p in
                    _ = memmove(p.baseAddress!, p.baseAddress! + start, end - start) } }
                end -= start
                start = 0
            }
            if buf.count - end < chunk { buf += [UInt8](repeating: 0, count: max(chunk, buf.count)) }
            let n = buf.withUnsafeMutableBufferPointer { p in
                gzread(gz, p.baseAddress! + end, UInt32(p.count - end))
            }
            if n < 0 {
                var errnum: Int32 = 0
                let msg = gzerror(gz, &errnum).map { String(cString: $0) } ?? "unknown zlib error"
                throw RecDataError.io(file: url.path, detail: "read error after line \(lineNo): \(msg) (a truncated or corrupt .gz file?)")
            }
            if n == 0 {
                // zlib reports a gzip stream cut short (an interrupted download) only through
                // gzerror at end of input; without this check it would read as a shorter file.
                var errnum: Int32 = 0
                _ = gzerror(gz, &errnum)
                if errnum == Z_BUF_ERROR {
                    throw RecDataError.io(file: url.path, detail: "read error after line \(lineNo): the gzip stream ends early (truncated file?); download or compress it again")
                }
                eof = true
            }
            end += Int(n)
            var stop = false
            try buf.withUnsafeBufferPointer { p in
                let base = p.baseAddress!
                var i = start
                while i < end {
                    // memchr is much faster than a byte loop for long lines.
                    guard let nl = memchr(base + i, 0x0A, end - i) else { break }
                    let j = base.distance(to: nl.assumingMemoryBound(to: UInt8.self))
                    var lineEnd = j
                    if lineEnd > start && base[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                    lineNo += 1
                    if try !body(UnsafeBufferPointer(start: base + start, count: lineEnd - start), lineNo) {
                        stop = true
                        return
                    }
                    start = j + 1
                    i = start
                }
                if eof && start < end {  // last line without a newline
                    var lineEnd = end
                    if base[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                    lineNo += 1
                    _ = try body(UnsafeBufferPointer(start: base + start, count: lineEnd - start), lineNo)
                    start = end
                }
            }
            if stop { return }
        }
    }

    /// The first `count` lines as Strings (for format detection and headers).
    public func firstLines(_ count: Int) throws -> [String] {
        var out: [String] = []
        try forEachLine { line, _ in
            out.append(String(decoding: line, as: UTF8.self))
            return out.count < count
        }
        return out
    }
}
