import XCTest
import Foundation
import TestKit

/// Runs the built `slmrec` binary (make test builds it first).
struct CLI {
    static var binary: URL {
        let env = ProcessInfo.processInfo.environment["SLMREC_BIN"]
        return env.map { URL(fileURLWithPath: $0) } ?? SharedData.repoRoot.appendingPathComponent(".build/debug/slmrec")
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var all: String { stdout + stderr }
    }

    /// `env` entries are added to (or replace those of) this process's environment;
    /// `executable` runs another program than slmrec (mpirun).
    @discardableResult
    static func run(_ args: [String], cwd: URL? = nil, env: [String: String] = [:], executable: URL? = nil) throws -> Result {
        guard executable != nil || FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip("the slmrec binary is not built at \(binary.path): run `swift build --product slmrec` (make test does)")
        }
        let p = Process()
        p.executableURL = executable ?? binary
        p.arguments = args
        if let cwd { p.currentDirectoryURL = cwd }
        if !env.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 } }
        // Files, not pipes: reading one pipe to its end while the child fills the other's
        // 64 KB deadlocks both (a 10 MB error message did; HostileInputTests).
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("slmrec-cli-\(UUID().uuidString)")
        let outURL = base.appendingPathExtension("out"), errURL = base.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        p.standardOutput = out
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        try? out.close(); try? err.close()
        let o = FileManager.default.contents(atPath: outURL.path) ?? Data(), e = FileManager.default.contents(atPath: errURL.path) ?? Data()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// Starts the binary in the background, its standard error going to `stderr` (a file the
    /// test reads after it ends); the caller waits for it.
    static func spawn(_ args: [String], stderr: URL, env: [String: String] = [:]) throws -> Process {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip("the slmrec binary is not built at \(binary.path): run `swift build --product slmrec` (make test does)")
        }
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        if !env.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 } }
        _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: stderr)
        try p.run()
        return p
    }

    /// Polls `condition` every 2 ms until it holds or `seconds` pass (or `process` exits).
    static func wait(upTo seconds: Double, while process: Process? = nil, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            if let process, !process.isRunning { return condition() }
            usleep(2000)
        }
        return false
    }

    /// The trainer step saved in a trainer state directory (…/trainer/state/trainer.json).
    static func savedStep(_ trainerDir: URL) -> Int? {
        guard let d = FileManager.default.contents(atPath: trainerDir.appendingPathComponent("state/trainer.json").path),
              let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return nil }
        return o["step"] as? Int
    }

    static func tmp(_ name: String = "cli") throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("slmrec-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}
