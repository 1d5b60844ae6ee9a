import Foundation

/// Progress for long work: a redrawn bar on a terminal, plain log lines otherwise
/// (CI logs, pipes), at most one line every `plainInterval` seconds.
public final class ProgressReporter: @unchecked Sendable {
    public let label: String
    public let total: Int
    public let unit: String
    private let start = Date()
    private var lastPrint = Date.distantPast
    private let isTTY: Bool
    private let plainInterval: TimeInterval
    private let quiet: Bool
    private var lastLineLength = 0

    public init(label: String, total: Int, unit: String = "it", plainInterval: TimeInterval = 5, quiet: Bool = false) {
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
        self.isTTY = isatty(STDERR_FILENO) != 0
        self.plainInterval = plainInterval
        self.quiet = quiet || LogOutput.follower
    }

    /// Reports `done` units of `total`, with extra fields such as `loss=3.21 lr=1e-3`.
    public func update(_ done: Int, _ fields: String = "", force: Bool = false) {
        if quiet { return }
        let now = Date()
        let minGap = isTTY ? 0.1 : plainInterval
        if !force && done < total && now.timeIntervalSince(lastPrint) < minGap { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let pct = 100 * Double(done) / Double(total)
        let stats = String(format: "%d/%d %5.1f%% %.1f %@/s ETA %@", done, total, pct, rate, unit, Self.clock(eta))
        if isTTY {
            let width = 24
            let filled = Int(Double(width) * Double(done) / Double(total))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: max(0, width - filled))
            var line = "\(label) [\(bar)] \(stats) \(fields)"
            let pad = max(0, lastLineLength - line.count)
            lastLineLength = line.count
            line += String(repeating: " ", count: pad)
            FileHandle.standardError.write(("\r" + line + (done >= total ? "\n" : "")).data(using: .utf8)!)
        } else {
            FileHandle.standardError.write("\(label): \(stats) \(fields)\n".data(using: .utf8)!)
        }
    }

    public func finish(_ fields: String = "") { update(total, fields, force: true) }

    /// Shows where the work stopped short of `total` and ends the bar's line (a terminal's
    /// bar is otherwise redrawn in place, and the next message would continue it).
    public func stop(at done: Int, _ fields: String = "") {
        update(done, fields, force: true)
        if isTTY && !quiet && done < total { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    public var elapsed: TimeInterval { Date().timeIntervalSince(start) }

    public static func clock(_ s: Double) -> String {
        guard s.isFinite else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60)
            : String(format: "%02d:%02d", t / 60, t % 60)
    }
}

/// Who speaks on standard error. Under mpirun every rank runs the same command, so rank 0
/// alone logs and shows progress (the others would repeat each line K times); a failing
/// rank's error still reaches standard error, from the CLI's error path, with its rank named.
public enum LogOutput {
    nonisolated(unsafe) public static var follower = false
}

/// One log line to standard error (the CLI keeps standard output for results).
public func logLine(_ s: String) {
    if LogOutput.follower { return }
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}
