import Foundation

/// Crash-safe writes: a file or directory is written under a temporary name in the same
/// directory and renamed into place only when complete, so an interrupted run never leaves
/// a half-written checkpoint where a good one was.
public enum AtomicFile {
    /// Writes `data` to `url` via a temporary sibling and an atomic rename.
    public static func write(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            throw CocoaError(.fileWriteFileExists, userInfo: [
                NSFilePathErrorKey: url.path,
                NSLocalizedDescriptionKey: "\(url.path) is a directory; refusing to replace it with a file (choose a file path)",
            ])
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try data.write(to: tmp)
            try replace(url, with: tmp)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }

    /// Builds a directory with `body` in a temporary sibling, then renames it onto `url`
    /// (replacing an existing directory only once the new one is complete).
    public static func writeDirectory(_ url: URL, _ body: (URL) throws -> Void) throws {
        let parent = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        let tmp = parent.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        do {
            try body(tmp)
            try replace(url, with: tmp)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }

    /// rename(2) is atomic for files; for a directory that already exists we move the old one
    /// aside first, rename the new one in, and only then delete the old one.
    private static func replace(_ dst: URL, with src: URL) throws {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: dst.path, isDirectory: &isDir)
        if exists && isDir.boolValue {
            let old = dst.deletingLastPathComponent()
                .appendingPathComponent(".\(dst.lastPathComponent).old-\(getpid())")
            try? FileManager.default.removeItem(at: old)
            try FileManager.default.moveItem(at: dst, to: old)
            do { try FileManager.default.moveItem(at: src, to: dst) } catch {
                try? FileManager.default.moveItem(at: old, to: dst)
                throw error
            }
            try? FileManager.default.removeItem(at: old)
        } else if rename(src.path, dst.path) != 0 {
            throw CocoaError(.fileWriteUnknown, userInfo: [
                NSFilePathErrorKey: dst.path,
                NSLocalizedDescriptionKey: "cannot rename \(src.path) to \(dst.path): \(String(cString: strerror(errno)))",
            ])
        }
    }
}

/// JSON output used for every metrics file: sorted keys, pretty, stable.
public enum JSONOut {
    public static func data(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }
    public static func write(_ object: Any, to url: URL) throws {
        var d = try data(object)
        d.append(0x0A)
        try AtomicFile.write(d, to: url)
    }
}
