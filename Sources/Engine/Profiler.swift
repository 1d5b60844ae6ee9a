import Foundation

/// Opt-in per-op wall-time accounting (`SLMREC_PROFILE=1`), used by `slmrec bench --profile`
/// to say where a step's time goes. Off by default: one predictable branch per op.
public final class OpProfiler: @unchecked Sendable {
    public nonisolated(unsafe) static var enabled = ProcessInfo.processInfo.environment["SLMREC_PROFILE"] != nil
    public nonisolated(unsafe) static var totals: [String: Double] = [:]

    @inline(__always)
    public static func measure<T>(_ name: StaticString, _ body: () -> T) -> T {
        if !enabled { return body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = body()
        totals["\(name)", default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return r
    }

    public static func reset() { totals = [:] }

    public static func report() -> String {
        let sum = totals.values.reduce(0, +)
        return totals.sorted { $0.value > $1.value }.map {
            String(format: "  %-22@ %8.1f ms  %5.1f%%", $0.key as NSString, $0.value * 1000, 100 * $0.value / max(sum, 1e-12))
        }.joined(separator: "\n")
    }
}
