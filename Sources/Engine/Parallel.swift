import Foundation

/// How many worker threads the engine's own loops use (the machine has 2 cores).
public enum ParallelConfig {
    public static var workers: Int { max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8)) }
}

/// Runs body(i) for i in 0..<n, split in contiguous chunks over the workers.
@inline(__always)
public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    parallelFor(n, withWorker: false) { i, _ in body(i) }
}

/// Runs body(i, worker) with a stable worker index in 0..<ParallelConfig.workers, so each
/// worker can own a slice of a scratch buffer.
public func parallelFor(_ n: Int, withWorker: Bool, _ body: (Int, Int) -> Void) {
    let w = min(ParallelConfig.workers, n)
    if w <= 1 {
        for i in 0..<n { body(i, 0) }
        return
    }
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: w) { worker in
            // Interleaved assignment balances sequences of different lengths.
            var i = worker
            while i < n {
                body(i, worker)
                i += w
            }
        }
    }
}
