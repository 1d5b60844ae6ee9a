import CSystem
import Foundation

/// SIGINT and SIGTERM during training: the trainer finishes the step it is in, saves its
/// resumable state and throws `Interrupted`; the CLI prints the command that resumes and
/// exits 128 + the signal (130, 143). Outside `catching`, the signals keep their usual
/// action (every output is written atomically, so a kill loses only unsaved work); a signal
/// the process ignores (nohup, a background job) stays ignored; and after the first signal
/// the usual actions are back, so a second one kills at once.
public enum StopSignals {
    /// Runs `body` with SIGINT/SIGTERM turned into a flag the trainer polls. A signal that
    /// arrived after the trainer's last look is reported as `Interrupted` too.
    public static func catching<T>(_ body: () throws -> T) throws -> T {
        slm_stop_signals_catch()
        let value: T
        do { value = try body() } catch {
            _ = slm_stop_signals_release()
            throw error
        }
        let s = slm_stop_signals_release()
        if s != 0 { throw Interrupted(signal: s, step: nil, stateDirectory: nil) }
        return value
    }

    /// The signal received inside `catching`, if any.
    public static var received: Int32? {
        let s = slm_stop_signal()
        return s == 0 ? nil : s
    }
}

/// Training stopped by a signal at a step boundary, its state saved.
public struct Interrupted: Error, CustomStringConvertible, Sendable {
    public var signal: Int32
    /// The trainer step reached (the state holds it); nil if stopped outside the loop.
    public var step: Int?
    public var stateDirectory: URL?

    public init(signal: Int32, step: Int?, stateDirectory: URL?) {
        self.signal = signal
        self.step = step
        self.stateDirectory = stateDirectory
    }

    public var signalName: String { signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)" }
    /// The shell's convention: 128 + the signal number.
    public var exitCode: Int32 { 128 + signal }
    public var description: String {
        "interrupted by \(signalName)" + (step.map { " after step \($0)" } ?? "")
            + (stateDirectory.map { "; the training state is saved in \($0.path)" } ?? "")
    }
}
