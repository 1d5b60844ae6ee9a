import Foundation

/// What a command writes at an output path, precisely enough to recognise a previous output
/// of the same kind: the files it writes, the files that identify it, its subdirectories.
/// Defined beside each format (`Checkpoint.outputKind`, `LoRAAdapter.outputKind`,
/// `PreparedDataset.outputKind`, the run directory in Toolbench, SASRec's in the CLI).
public final class OutputKind: Sendable {
    /// "checkpoint", "prepared dataset", … (used in messages).
    public let name: String
    /// File names it may hold; `*` matches any run of characters (`*.safetensors`).
    public let files: [String]
    /// Entries that must be present for a directory to be one (files or subdirectories).
    public let required: [String]
    /// Named subdirectories and what they hold.
    public let directories: [String: OutputKind]
    /// What any other subdirectory holds (a run directory's stages); nil: none allowed.
    public let otherDirectories: OutputKind?
    /// Contents are not checked (a run's `.work` trainer state: only slmrec writes there).
    public let opaque: Bool
    /// A single-file output (`eval --output`, `embed --output`): whether an existing file is
    /// a previous output of this kind, judged by its contents. nil for directory kinds.
    public let recogniseFile: (@Sendable (URL) -> Bool)?

    public init(name: String, files: [String], required: [String], directories: [String: OutputKind] = [:],
                otherDirectories: OutputKind? = nil, opaque: Bool = false) {
        self.name = name
        self.files = files
        self.required = required
        self.directories = directories
        self.otherDirectories = otherDirectories
        self.opaque = opaque
        self.recogniseFile = nil
    }

    /// A file output, recognised by `recognise` (e.g. a JSON object with the keys slmrec writes).
    public init(file name: String, recognise: @escaping @Sendable (URL) -> Bool) {
        self.name = name
        files = []
        required = []
        directories = [:]
        otherDirectories = nil
        opaque = false
        recogniseFile = recognise
    }

    /// A file output that is a JSON object with all of `keys` at the top level.
    public static func jsonFile(_ name: String, keys: [String]) -> OutputKind {
        OutputKind(file: name) { url in
            guard let d = FileManager.default.contents(atPath: url.path),
                  let o = (try? JSONValue.parse(d))?.objectValue else { return false }
            return keys.allSatisfy { o[$0] != nil }
        }
    }

    /// Anything (for directories only slmrec writes, like trainer state).
    public static func opaque(_ name: String) -> OutputKind { OutputKind(name: name, files: [], required: [], opaque: true) }

    /// nil when the directory at `url` holds exactly what this kind writes (plus slmrec's own
    /// hidden siblings); otherwise the first thing that does not belong, in words.
    public func mismatch(at url: URL, relative: String = "") -> String? {
        if opaque { return nil }
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: url.path) else { return "\(relative.isEmpty ? "it" : relative) cannot be read" }
        for e in entries.sorted() where !isDebris(e) {
            let path = url.appendingPathComponent(e)
            let attrs = try? fm.attributesOfItem(atPath: path.path)
            let type = attrs?[.type] as? FileAttributeType
            if type == .typeSymbolicLink { return "\(relative)\(e) is a symbolic link, which slmrec never writes in a \(name)" }
            if type == .typeDirectory {
                guard let sub = directories[e] ?? otherDirectories else { return "it holds the directory \(relative)\(e)/, which slmrec never writes in a \(name)" }
                if let m = sub.mismatch(at: path, relative: "\(relative)\(e)/") { return m }
            } else if !files.contains(where: { Self.matches(e, $0) }) {
                return "it holds \(relative)\(e), which slmrec never writes in a \(name)"
            }
        }
        for r in required where !fm.fileExists(atPath: url.appendingPathComponent(r).path) {
            return "it has no \(relative)\(r), which every \(name) has"
        }
        return nil
    }

    /// A temporary or old copy of one of this kind's own entries (a swap in progress or
    /// interrupted inside it, e.g. a run's `.ft.tmp-…` stage); anything else hidden counts.
    func isDebris(_ entry: String) -> Bool {
        guard let owner = AtomicFile.debrisOwner(entry) else { return false }
        return directories[owner] != nil || otherDirectories != nil || files.contains { Self.matches(owner, $0) }
    }

    static func matches(_ s: String, _ pattern: String) -> Bool {
        guard let star = pattern.firstIndex(of: "*") else { return s == pattern }
        let head = pattern[..<star], tail = pattern[pattern.index(after: star)...]
        return s.count >= head.count + tail.count && s.hasPrefix(head) && s.hasSuffix(tail)
    }
}

/// An output a command refuses to write, with the path, why, and what to do.
public struct OutputRefused: Error, CustomStringConvertible, Sendable, Equatable {
    public var path: String
    public var problem: String
    public var fix: String
    public init(_ path: String, problem: String, fix: String) {
        self.path = path
        self.problem = problem
        self.fix = fix
    }
    public var description: String { "\(path): \(problem). Fix: \(fix)" }
}

/// The rule for every output a command writes (docs/outputs.md): an existing path is
/// replaced only when it is a previous output of the same kind and the user said `--force`;
/// never the current directory (or one above it), `/`, the home directory, an input of the
/// command, a directory containing an input, or a path inside an input directory.
public enum OutputGuard {
    /// What is at an output path that passed the check.
    public enum Existing: Sendable, Equatable {
        case nothing
        case emptyDirectory
        /// A previous output of the same kind, to be replaced (`--force` was given).
        case previousOutput
    }

    /// Checks `url` as the output `flag` of kind `kind`. `inputs` are the command's inputs
    /// (label, path), e.g. ("--input", …), ("recipe input teacher", …). With `resume` (a
    /// run directory continued in place), a previous output is accepted without `force`;
    /// `resumable` says so in the refusal (`--resume` to continue it).
    /// `targetOnly`: only the rules that hold whatever is at the path (root, home, current
    /// directory, inputs), checked before the lock is taken beside it.
    @discardableResult
    public static func check(_ url: URL, kind: OutputKind, flag: String = "--output", force: Bool,
                             inputs: [(String, URL)], resume: Bool = false, resumable: Bool = false,
                             targetOnly: Bool = false, alternative: String? = nil) throws -> Existing {
        let forceFlag = "--force"
        let out = realPath(url)
        let shown = url.path
        func refuse(_ problem: String, _ fix: String) -> OutputRefused { OutputRefused(shown, problem: "\(flag) \(problem)", fix: fix) }
        let isFile = kind.recogniseFile != nil
        let ext = url.pathExtension, fresh = isFile && !ext.isEmpty ? String(shown.dropLast(ext.count + 1)) + "-2." + ext : shown + "-2"
        let other = alternative ?? "choose another \(flag) (a new \(isFile ? "file" : "directory"), e.g. \(fresh))"
        let below = "choose a new \(isFile ? "file" : "directory") as \(flag), e.g. \(url.appendingPathComponent("out").path)"
        if out == "/" { throw refuse("is the root directory; slmrec never replaces it, even with \(forceFlag)", below) }
        for home in homeDirectories() where out == home {
            throw refuse("is your home directory; slmrec never replaces it, even with \(forceFlag)", below)
        }
        let cwd = realPath(URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        if out == cwd { throw refuse("is the current directory; slmrec never replaces it, even with \(forceFlag)", below) }
        if isInside(cwd, out) { throw refuse("contains the current directory; slmrec never replaces it, even with \(forceFlag)", other) }
        for (label, input) in inputs {
            let inp = realPath(input)
            if out == inp { throw refuse("is an input of this command (\(label)); inputs are never modified, even with \(forceFlag)", other) }
            if isInside(inp, out) { throw refuse("contains an input of this command (\(label): \(input.path)); slmrec never replaces it, even with \(forceFlag)", other) }
            if isInside(out, inp), isDirectory(input) {
                throw refuse("is inside an input directory of this command (\(label): \(input.path)); inputs are never modified",
                             "choose a directory outside \(input.path)")
            }
        }
        if targetOnly { return .nothing }
        let fm = FileManager.default
        guard let attrs = try? fm.attributesOfItem(atPath: url.path) else { return .nothing }
        let type = attrs[.type] as? FileAttributeType
        if type == .typeSymbolicLink {
            throw refuse("is a symbolic link; slmrec replaces directories, not links (it would leave the link's target as it was and break the link)",
                         "give the directory the link points to, or another \(flag)")
        }
        if let recognise = kind.recogniseFile {
            guard type == .typeRegular else {
                throw refuse("is \(type == .typeDirectory ? "a directory" : "not a regular file"), not a \(kind.name); slmrec never replaces it, even with \(forceFlag)", other)
            }
            if !recognise(url) {
                throw refuse("exists and is not \(withArticle(kind.name)) written by slmrec; \(forceFlag) never replaces it", "\(other), or move it away yourself")
            }
            if resume { return .previousOutput }
            if !force { throw refuse("already holds \(withArticle(kind.name))", "pass \(forceFlag) to replace it, or \(other)") }
            return .previousOutput
        }
        guard type == .typeDirectory else {
            throw refuse("is a file, not a \(kind.name) directory; slmrec never replaces it, even with \(forceFlag)", other)
        }
        // Nothing, or only temporaries of its own entries (a first write into it was killed).
        if ((try? fm.contentsOfDirectory(atPath: url.path)) ?? [""]).allSatisfy(kind.isDebris) { return .emptyDirectory }
        if let m = kind.mismatch(at: url) {
            throw refuse("exists and is not \(withArticle(kind.name)) written by slmrec: \(m); \(forceFlag) never replaces it", "\(other), or move its contents away yourself")
        }
        if resume { return .previousOutput }
        if !force {
            let keep = resumable ? "pass --resume to continue it, " : "pass "
            throw refuse("already holds \(withArticle(kind.name))", "\(keep)\(forceFlag) to replace it (the new one is swapped in only once complete), or \(other)")
        }
        return .previousOutput
    }

    /// The path with symbolic links resolved (for the part that exists) and `.`/`..` removed.
    public static func realPath(_ url: URL) -> String {
        var head = url.standardizedFileURL
        var tail: [String] = []
        while true {
            if let r = realpath(head.path, nil) {
                defer { free(r) }
                var p = String(cString: r)
                for c in tail.reversed() { p = p == "/" ? "/" + c : p + "/" + c }
                return p
            }
            if head.path == "/" || head.path.isEmpty { return url.standardizedFileURL.path }
            tail.append(head.lastPathComponent)
            head = head.deletingLastPathComponent()
        }
    }

    /// Whether `path` lies strictly inside `dir` (both real paths).
    static func isInside(_ path: String, _ dir: String) -> Bool {
        path != dir && (dir == "/" || path.hasPrefix(dir + "/"))
    }

    static func isDirectory(_ url: URL) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &d) && d.boolValue
    }

    static func homeDirectories() -> [String] {
        var out: [String] = []
        if let h = ProcessInfo.processInfo.environment["HOME"], !h.isEmpty { out.append(realPath(URL(fileURLWithPath: h))) }
        if let pw = getpwuid(getuid()), let d = pw.pointee.pw_dir { out.append(realPath(URL(fileURLWithPath: String(cString: d)))) }
        return out
    }
}

/// One writer at a time: an exclusive flock(2) on `.NAME.lock` beside an output (or a run
/// directory) for as long as a command writes it. A second process is refused with the
/// first one's pid and command line. The lock ends with the process, so a kill -9 leaves no
/// stale lock, only the small file, which the next holder reuses and removes.
public final class OutputLock {
    public let file: URL
    private var fd: Int32

    private init(file: URL, fd: Int32) {
        self.file = file
        self.fd = fd
    }

    /// Runs `body` holding the lock for `output`.
    public static func holding<T>(_ output: URL, _ body: () throws -> T) throws -> T {
        let lock = try acquire(output)
        defer { lock.release() }
        return try body()
    }

    public static func acquire(_ output: URL) throws -> OutputLock {
        let parent = output.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        let file = parent.appendingPathComponent(".\(output.lastPathComponent).lock")
        for _ in 0..<16 {
            let fd = open(file.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if fd < 0 {
                throw OutputRefused(output.path, problem: "cannot create the lock file \(file.path): \(String(cString: strerror(errno)))",
                                    fix: "check that \(parent.path) is writable")
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let holder = (try? String(contentsOf: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                close(fd)
                throw OutputRefused(output.path, problem: "is being written by another slmrec process\(holder.isEmpty ? "" : " (\(holder))")",
                                    fix: "wait for it to finish, or choose another output")
            }
            // The holder before us may have removed the file between our open and flock: then
            // we hold a lock on a name nobody else sees, and must start again.
            if isStillNamed(file, fd) {
                let args = CommandLine.arguments.map(shellQuoted).joined(separator: " ")
                let text = "pid \(getpid()): \(args), since \(ISO8601DateFormatter().string(from: Date()))\n"
                ftruncate(fd, 0)
                _ = text.withCString { write(fd, $0, strlen($0)) }
                return OutputLock(file: file, fd: fd)
            }
            close(fd)
        }
        throw OutputRefused(output.path, problem: "cannot take the lock \(file.path) (it keeps being replaced)", fix: "retry")
    }

    /// Removes `.NAME.lock` if no process holds it (one killed -9 left it). Safe against a
    /// concurrent `acquire`: that one notices the file it locked is gone and starts again.
    public static func removeIfStale(_ output: URL) {
        let file = output.deletingLastPathComponent().appendingPathComponent(".\(output.lastPathComponent).lock")
        let fd = open(file.path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return }
        removeIfStale(file, openedAs: fd)
        close(fd)
    }

    /// Unlinks `file` if `fd` (opened on it earlier) can be locked and the name still refers
    /// to that same file: between the open and the flock its holder may have removed it and a
    /// new writer created and locked a new file under the name, which must not be unlinked.
    static func removeIfStale(_ file: URL, openedAs fd: Int32) {
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return }
        if isStillNamed(file, fd) { unlink(file.path) }
        flock(fd, LOCK_UN)
    }

    static func isStillNamed(_ file: URL, _ fd: Int32) -> Bool {
        var a = stat(), b = stat()
        return fstat(fd, &a) == 0 && stat(file.path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev
    }

    /// Removes the lock file (while still holding the lock, and only if the name is still
    /// ours), then releases it.
    public func release() {
        guard fd >= 0 else { return }
        if Self.isStillNamed(file, fd) { unlink(file.path) }
        close(fd)
        fd = -1
    }

    deinit { release() }
}

/// "a checkpoint", "an embeddings file".
func withArticle(_ s: String) -> String { ("aeiou".contains(s.first ?? "x") ? "an " : "a ") + s }

/// A word for a POSIX shell: as it is when safe, else single-quoted.
public func shellQuoted(_ s: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
    if !s.isEmpty && s.allSatisfy({ safe.contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
