import CSystem
import Foundation

/// Crash-safe writes: a file or directory is written under a temporary name in the same
/// directory and swapped into place only when complete, so an interrupted run never leaves
/// a half-written checkpoint where a good one was, and there is no moment at which the
/// output path holds nothing (see `replace`).
///
/// Sibling names (the debris an interrupted write can leave). They are cleaned by `recover`,
/// once per command, by the holder of the output's lock (`OutputLock`), not on every write:
/// a write that lists its directory each time would cost I/O in every trainer checkpoint.
/// - `.NAME.tmp-PID-RAND`: the new output being built, or (after the swap) the old one
///   waiting to be deleted. The complete output is always at NAME, so these are removable.
/// - `.NAME.old-PID`: only on filesystems without RENAME_EXCHANGE, the previous output moved
///   aside between two renames; restored to NAME if NAME is missing.
public enum AtomicFile {
    /// Streams a file: `body` writes the temporary sibling it is given (a large output need not
    /// be held in memory), which is then swapped onto `url`; on an error nothing is left.
    public static func writeFile(_ url: URL, _ body: (URL) throws -> Void) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            throw CocoaError(.fileWriteFileExists, userInfo: [
                NSFilePathErrorKey: url.path,
                NSLocalizedDescriptionKey: "\(url.path) is a directory; refusing to replace it with a file (choose a file path)",
            ])
        }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let tmp = temporarySibling(of: url)
        do {
            try body(tmp)
            try replace(url, with: tmp)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }

    /// Writes `data` to `url` via a temporary sibling and an atomic rename.
    public static func write(_ data: Data, to url: URL) throws {
        try writeFile(url) { try data.write(to: $0) }
    }

    /// Builds a directory with `body` in a temporary sibling, then swaps it onto `url`
    /// (replacing an existing directory only once the new one is complete).
    public static func writeDirectory(_ url: URL, _ body: (URL) throws -> Void) throws {
        let parent = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        let tmp = temporarySibling(of: url)
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        do {
            try body(tmp)
            try replace(url, with: tmp)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }

    /// Replaces the directory at `url` (which must exist) by a new empty one, atomically; the
    /// old contents are deleted afterwards. `slmrec run --force` starts a run this way.
    public static func replaceWithEmptyDirectory(_ url: URL) throws {
        let tmp = temporarySibling(of: url)
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        do { try replace(url, with: tmp) } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
    }

    static func temporarySibling(of url: URL) -> URL {
        url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    }

    /// Test hook: the two-rename replacement that filesystems without RENAME_EXCHANGE get.
    static var exchangeDisabled: Bool { ProcessInfo.processInfo.environment["SLMREC_TEST_NO_RENAME_EXCHANGE"] == "1" }

    /// A file is replaced by rename(2), which is atomic. An existing directory cannot be
    /// renamed over, so it is swapped with the new one by renameat2(RENAME_EXCHANGE) in one
    /// step; the old contents (now under the temporary name) are deleted after. Where the
    /// filesystem cannot exchange (EINVAL, ENOSYS), the old directory is moved aside to
    /// `.NAME.old-PID` and the new one renamed in; a kill between the two renames leaves NAME
    /// missing, and the next write to NAME restores it from the `.old` sibling (`recover`).
    private static func replace(_ dst: URL, with src: URL) throws {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: dst.path, isDirectory: &isDir)
        guard exists && isDir.boolValue else {
            if rename(src.path, dst.path) != 0 {
                throw CocoaError(.fileWriteUnknown, userInfo: [
                    NSFilePathErrorKey: dst.path,
                    NSLocalizedDescriptionKey: "cannot rename \(src.path) to \(dst.path): \(String(cString: strerror(errno)))",
                ])
            }
            return
        }
        if !exchangeDisabled {
            if slm_rename_exchange(src.path, dst.path) == 0 {
                FaultPoint.reach("swap-window")
                try? FileManager.default.removeItem(at: src)   // the old output now
                return
            }
            let e = errno
            if e != EINVAL && e != ENOSYS && e != ENOTSUP {
                throw CocoaError(.fileWriteUnknown, userInfo: [
                    NSFilePathErrorKey: dst.path,
                    NSLocalizedDescriptionKey: "cannot swap \(src.path) into \(dst.path): \(String(cString: strerror(e)))",
                ])
            }
        }
        let old = dst.deletingLastPathComponent().appendingPathComponent(".\(dst.lastPathComponent).old-\(getpid())")
        if FileManager.default.fileExists(atPath: old.path) { discard(old) }
        try FileManager.default.moveItem(at: dst, to: old)
        FaultPoint.reach("swap-window")
        do { try FileManager.default.moveItem(at: src, to: dst) } catch {
            try? FileManager.default.moveItem(at: old, to: dst)
            throw error
        }
        discard(old)
    }

    /// Deletes a directory that must never be seen half deleted (a work directory whose key
    /// file goes before its state would read as another command's state): renamed to a
    /// temporary sibling first, so that a kill during the deletion leaves only debris, which
    /// the next write beside it removes. Found by scripts/fault-kill9.py.
    public static func remove(_ url: URL) {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        discard(url)
    }

    /// Deletes a superseded copy: renamed to a temporary name first, so that a kill during the
    /// (non-atomic) deletion leaves only debris, never a partial `.old` that could be restored.
    static func discard(_ url: URL) {
        let owner = debrisOwner(url.lastPathComponent) ?? url.lastPathComponent
        let tmp = temporarySibling(of: url.deletingLastPathComponent().appendingPathComponent(owner))
        let victim = rename(url.path, tmp.path) == 0 ? tmp : url
        try? FileManager.default.removeItem(at: victim)
    }

    /// Cleans what interrupted writes to `url` left beside it, by processes that are no
    /// longer running: temporary siblings are removed; a `.old` sibling is restored to `url`
    /// when `url` is missing (a replacement killed between its two renames), else removed; a
    /// lock file nobody holds is removed (`OutputLock.removeIfStale`). Each action but the
    /// last is reported (standard error by default) and returned.
    ///
    /// `holdingLock`: the caller holds `url`'s `OutputLock`, so no other writer of `url` is at
    /// work and every sibling is debris whatever its pid says (a pid may have been reused, or
    /// be this one's in a container where slmrec always runs as pid 1). Without it, siblings
    /// of processes that are still alive (and this one's) are left alone.
    @discardableResult
    public static func recover(_ url: URL, holdingLock: Bool = false, report: (String) -> Void = logLine) -> [String] {
        let parent = url.deletingLastPathComponent(), name = url.lastPathComponent
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: parent.path) else { return [] }
        let fm = FileManager.default
        var done: [String] = []
        func say(_ s: String) { done.append(s); report("slmrec: " + s) }
        // A `.old` exists only while complete (it is renamed to a temporary before deletion),
        // so there is at most one to restore.
        for e in entries.sorted() {
            guard let (kind, pid) = debris(e, of: name), holdingLock || (pid != getpid() && !processIsAlive(pid)) else { continue }
            let path = parent.appendingPathComponent(e)
            switch kind {
            case .temporary:
                if (try? fm.removeItem(at: path)) != nil { say("removed \(path.path), left by an interrupted write (pid \(pid))") }
            case .old:
                if fm.fileExists(atPath: url.path) {
                    discard(path)
                    say("removed \(path.path), the previous \(name) an interrupted replacement had set aside (pid \(pid))")
                } else if rename(path.path, url.path) == 0 {
                    say("restored \(url.path) from \(path.path): a replacement was interrupted between its two renames (pid \(pid))")
                }
            }
        }
        OutputLock.removeIfStale(url)
        return done
    }

    /// `recover(holdingLock: true)` for every output inside `dir` (at any depth) that has
    /// debris beside it: for the holder of an enclosing output's lock (a run directory, a
    /// `.NAME.work` directory), inside which no other writer can be at work.
    public static func recoverTree(_ dir: URL, report: (String) -> Void = logLine) {
        var owners = Set<URL>()
        let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)
        while let u = e?.nextObject() as? URL {
            guard let owner = debrisOwner(u.lastPathComponent) else { continue }
            e?.skipDescendants()
            owners.insert(u.deletingLastPathComponent().appendingPathComponent(owner))
        }
        for o in owners.sorted(by: { $0.path < $1.path }) { recover(o, holdingLock: true, report: report) }
    }

    enum Debris { case temporary, old }

    /// Parses `.NAME.tmp-PID-RAND` and `.NAME.old-PID` (nil for anything else).
    static func debris(_ entry: String, of name: String) -> (Debris, pid_t)? {
        let tmpPrefix = ".\(name).tmp-", oldPrefix = ".\(name).old-"
        if entry.hasPrefix(tmpPrefix) {
            let rest = entry.dropFirst(tmpPrefix.count).split(separator: "-", omittingEmptySubsequences: false)
            guard rest.count == 2, let pid = pid_t(rest[0]), UInt32(rest[1]) != nil else { return nil }
            return (.temporary, pid)
        }
        if entry.hasPrefix(oldPrefix), let pid = pid_t(entry.dropFirst(oldPrefix.count)) { return (.old, pid) }
        return nil
    }

    /// The NAME of a temporary or old sibling (`.NAME.tmp-PID-RAND`, `.NAME.old-PID`) this
    /// type leaves while writing NAME; nil for any other entry.
    public static func debrisOwner(_ entry: String) -> String? {
        guard entry.hasPrefix(".") else { return nil }
        for marker in [".tmp-", ".old-"] {
            var search = entry.startIndex..<entry.endIndex
            while let r = entry.range(of: marker, options: .backwards, range: search), r.lowerBound > entry.startIndex {
                let name = String(entry[entry.index(after: entry.startIndex)..<r.lowerBound])
                if !name.isEmpty, debris(entry, of: name) != nil { return name }
                search = entry.startIndex..<r.lowerBound
            }
        }
        return nil
    }

    static func processIsAlive(_ pid: pid_t) -> Bool {
        pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
    }
}

/// Fault injection for the tests (SQLite-style): with SLMREC_FAULT_POINT=NAME in the
/// environment, reaching the point NAME writes this process's id to SLMREC_FAULT_MARKER (if
/// set) and then waits forever, so a test can kill -9 the process exactly there. Points:
/// `swap-window` (between the steps of an output replacement), `stage-evaluation` (a recipe
/// stage trained, its directory not yet written).
public enum FaultPoint {
    public static func reach(_ name: String) {
        let env = ProcessInfo.processInfo.environment
        guard env["SLMREC_FAULT_POINT"] == name else { return }
        if let marker = env["SLMREC_FAULT_MARKER"] {
            _ = FileManager.default.createFile(atPath: marker, contents: Data("\(getpid())\n".utf8))
        }
        while true { sleep(3600) }
    }
}

/// A path as the user wrote it: `~` expanded, a relative path resolved against `base` (the
/// current directory when nil). The one resolver: recipes, pass options and the CLI use it.
public func resolvePath(_ path: String, relativeTo base: URL? = nil) -> URL {
    let p = (path as NSString).expandingTildeInPath
    if p.hasPrefix("/") { return URL(fileURLWithPath: p) }
    return (base ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).appendingPathComponent(p)
}

/// A file that cannot be read, with the reason in words ("… is a directory, not a file"):
/// Foundation's CocoaError prints as `Error Domain=NSCocoaErrorDomain Code=256 "(null)"`.
public struct FileReadError: Error, CustomStringConvertible, LocalizedError {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
    public var errorDescription: String? { description }
}

/// Calls `body` with successive chunks (at most `chunk` bytes) of a file read with POSIX
/// calls, refusing a directory by name. The one file reader under `readFileData` and
/// `SHA256.hex(ofFile:)`.
public func forEachChunk(of url: URL, chunk: Int = 1 << 16, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    let fd = open(url.path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileReadError(path: url.path, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw FileReadError(path: url.path, reason: String(cString: strerror(errno))) }
    if (st.st_mode & S_IFMT) == S_IFDIR { throw FileReadError(path: url.path, reason: "is a directory, not a file") }
    var buf = [UInt8](repeating: 0, count: chunk)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw FileReadError(path: url.path, reason: String(cString: strerror(errno)))
        }
        if n == 0 { return }
        try buf.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }
}

/// A whole file's bytes, read with POSIX calls. Foundation's `Data(contentsOf:)` leaks its
/// 4 KiB read buffer on an empty file (swift-foundation, FoundationEssentials'
/// readBytesFromFile; found by the `config` fuzz target under LeakSanitizer), and every user
/// file we parse can be empty.
public func readFileData(_ url: URL) throws -> Data {
    var out = Data()
    try forEachChunk(of: url) { out.append(contentsOf: $0) }
    return out
}

/// Why a write failed and what to do, from the error's POSIX code where there is one: a full
/// disk, a read-only filesystem and a permission problem each get their own fix (Foundation's
/// wording, "There isn't enough space.", names neither the cause nor the remedy). Every
/// writer of an output reports its failures through this.
public func writeFailure(_ error: Error, what: String, path: String) -> (problem: String, fix: String) {
    let ns = error as NSError
    var code: Int32? = nil
    if ns.domain == NSPOSIXErrorDomain { code = Int32(ns.code) }
    else if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain { code = Int32(u.code) }
    else if let c = error as? CocoaError {
        switch c.code {
        case .fileWriteOutOfSpace: code = ENOSPC
        case .fileWriteVolumeReadOnly: code = EROFS
        case .fileWriteNoPermission: code = EACCES
        default: break
        }
    }
    // The directory the user chose: above the temporaries an atomic write works in.
    var dir = (path as NSString).deletingLastPathComponent
    while AtomicFile.debrisOwner((dir as NSString).lastPathComponent) != nil { dir = (dir as NSString).deletingLastPathComponent }
    switch code {
    case ENOSPC?, EDQUOT?:
        return ("cannot write \(what): No space left on device", "free space on the filesystem that holds \(dir) (df -h \(dir)) or write the output elsewhere; nothing was replaced and nothing partial is left")
    case EROFS?:
        return ("cannot write \(what): Read-only file system", "write the output to a writable directory")
    case EACCES?, EPERM?:
        return ("cannot write \(what): Permission denied", "make \(dir) writable for this user, or choose another output")
    default:
        return ("cannot write \(what): \(error.localizedDescription)", "check that \(dir) is writable and that the path is not a directory")
    }
}
