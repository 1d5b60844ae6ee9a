import Foundation

/// Linear warmup from 0 to the peak learning rate, then cosine decay to `minRatio`·peak
/// (the schedule of most LLM fine-tuning recipes, HF's get_cosine_schedule_with_warmup).
public struct LRSchedule: Sendable, Codable, Equatable {
    public var peak: Float
    public var warmupSteps: Int
    public var totalSteps: Int
    public var minRatio: Float

    public init(peak: Float, warmupSteps: Int, totalSteps: Int, minRatio: Float = 0) {
        self.peak = peak; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.minRatio = minRatio
    }

    /// Learning rate for 0-based step `t`.
    public func lr(_ t: Int) -> Float {
        if warmupSteps > 0 && t < warmupSteps { return peak * Float(t + 1) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let p = min(1, Float(t - warmupSteps) / Float(span))
        let cosine = 0.5 * (1 + cos(Float.pi * p))
        return peak * (minRatio + (1 - minRatio) * cosine)
    }
}
