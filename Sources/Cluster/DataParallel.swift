import Foundation

// The pieces of a data-parallel training step that every trainer shares (the E-LLMRec
// Trainer and SASRec's own loop): how a global batch is split over the ranks, the one
// gradient all-reduce per step, and the shared-directory check. docs/scale-out.md.

extension Communicator {
    /// A global batch's rows split over `ranks` with balanced tokens: longest first, each to
    /// the rank with the fewest tokens so far (ties: the lower rank), each share then in the
    /// batch's order. Positions into the batch; rank 0 is never empty. Length-grouped batches
    /// hold rows of similar length, so the shares are balanced in rows too.
    public static func balancedShares(lengths: [Int], ranks: Int) -> [[Int]] {
        var load = [Int](repeating: 0, count: ranks), out = [[Int]](repeating: [], count: ranks)
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        for i in order {
            var r = 0
            for k in 1..<max(ranks, 1) where load[k] < load[r] { r = k }
            load[r] += lengths[i]
            out[r].append(i)
        }
        return out.map { $0.sorted() }
    }

    /// The directory must be one directory for every rank (a shared filesystem): rank 0
    /// writes a token into it, and every rank must read it back. Rank 0 must have created it.
    public func requireSharedDirectory(_ directory: URL) throws {
        guard isDistributed else { return }
        let marker = directory.appendingPathComponent(".ranks-\(ProcessInfo.processInfo.processIdentifier)")
        var token = [UInt8](isLeader ? Array(UUID().uuidString.utf8) : [])
        var path = [UInt8](isLeader ? Array(marker.path.utf8) : [])
        if isLeader { try Data(token).write(to: marker) }
        try broadcast(&token)
        try broadcast(&path)
        let seen = FileManager.default.contents(atPath: String(decoding: path, as: UTF8.self)).map { [UInt8]($0) == token } ?? false
        let all = try allgather(seen ? 1 : 0)
        try barrier()
        if isLeader { try? FileManager.default.removeItem(at: marker) }
        let blind = all.indices.filter { all[$0] == 0 }
        if !blind.isEmpty {
            throw ClusterError("\(directory.path) is not shared between the ranks: rank\(blind.count > 1 ? "s" : "") \(blind.map(String.init).joined(separator: ", ")) cannot read what rank 0 wrote there. Put the output on a filesystem every node mounts at the same path (docs/scale-out.md)")
        }
    }
}

/// Sums one step's gradients (and loss terms) over the ranks: every gradient buffer in one
/// MPI_Allreduce (copied through one staging buffer when there are several), the loss terms
/// and the stop flag in a second, tiny one. Each rank's loss is a mean over its rows;
/// weighted by its share of the global batch's rows (`fraction`) and summed, it is the
/// global batch's mean, and so are the gradients.
public final class GradientReducer {
    public let world: Communicator
    let buffers: [(pointer: UnsafeMutablePointer<Float>, count: Int)]
    let staging: UnsafeMutablePointer<Float>?
    let total: Int
    /// The loss terms' names, rank 0's (a rank whose share of the last batch is empty has none).
    var keys: [String]? = nil
    /// Wall time spent in the all-reduces (waiting for the slowest rank included) over the
    /// `steps` calls of `reduce` so far (bytes: `floatsPerStep` · 4 each).
    public private(set) var seconds = 0.0
    public private(set) var steps = 0
    /// With `separateWait` (benchmarks), a barrier before each all-reduce takes the waiting
    /// for the slowest rank out of `seconds` into `waitSeconds`, so `seconds` is the
    /// transfer and summation alone (at the price of one more collective per step).
    public var separateWait = false
    public private(set) var waitSeconds = 0.0

    /// `buffers`: the gradient buffers, valid as long as the reducer (the trainer's own).
    public init(world: Communicator, buffers: [(pointer: UnsafeMutablePointer<Float>, count: Int)]) {
        self.world = world
        self.buffers = buffers
        total = buffers.reduce(0) { $0 + $1.count }
        if buffers.count > 1 {
            staging = .allocate(capacity: total)
        } else {
            staging = nil
        }
    }
    deinit { staging?.deallocate() }

    /// Floats reduced per step (every gradient buffer).
    public var floatsPerStep: Int { total }

    /// Scales this rank's gradients and terms by `fraction`, sums them over the ranks in
    /// place, and returns a stop signal if any rank received one.
    public func reduce(fraction: Double, terms: inout [String: Double], stopSignal: Int32?) throws -> Int32? {
        let f = Float(fraction)
        if keys == nil {
            var names = world.isLeader ? Array(terms.keys.sorted().joined(separator: "\n").utf8) : []
            try world.broadcast(&names)
            keys = names.isEmpty ? [] : String(decoding: names, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
        if separateWait {
            let tw = Date()
            try world.barrier()
            waitSeconds += Date().timeIntervalSince(tw)
        }
        let t0 = Date()
        if let staging {
            var off = 0
            for b in buffers {
                for i in 0..<b.count { staging[off + i] = b.pointer[i] * f }
                off += b.count
            }
            try world.allreduceSum(staging, count: total)
            off = 0
            for b in buffers {
                b.pointer.update(from: staging + off, count: b.count)
                off += b.count
            }
        } else if let b = buffers.first {
            if f != 1 { for i in 0..<b.count { b.pointer[i] *= f } }
            try world.allreduceSum(b.pointer, count: b.count)
        }
        let names = keys ?? []
        var v = names.map { (terms[$0] ?? 0) * fraction } + [stopSignal == nil ? 0 : 1]
        try world.allreduceSum(&v)
        seconds += Date().timeIntervalSince(t0)
        steps += 1
        terms = [:]
        for (k, name) in names.enumerated() { terms[name] = v[k] }
        // Any rank's signal stops every rank after this step (mpirun forwards SIGINT/SIGTERM
        // to all, but they may see it at different steps).
        return v[names.count] > 0 ? (stopSignal ?? SIGTERM) : nil
    }

    /// True on every rank when any rank passes true (a decision that must be the same
    /// everywhere, e.g. a wall-time budget each rank measures on its own clock).
    public func any(_ flag: Bool) throws -> Bool {
        var v = [flag ? 1.0 : 0.0]
        try world.allreduceSum(&v)
        return v[0] > 0
    }
}
