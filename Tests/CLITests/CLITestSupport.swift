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

    @discardableResult
    static func run(_ args: [String], cwd: URL? = nil) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw XCTSkip("the slmrec binary is not built at \(binary.path): run `swift build --product slmrec` (make test does)")
        }
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        if let cwd { p.currentDirectoryURL = cwd }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func tmp(_ name: String = "cli") throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("slmrec-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}
