import Common
import Foundation

// The fixed negatives of the sampled protocol (SASRec / S3-Rec / SLMRec: each user's held-out
// item is ranked against 999 items the user never touched), in one of two stores:
//
// - text: `negatives-valid.txt` / `negatives-test.txt`, one `USER N1 … N999` line per user,
//   drawn by one generator stream per split that runs through the users in order. What every
//   dataset prepared before the counter store has, and what data prepared elsewhere brings.
//   At Cloth's size (1.22 M users) each file would be ≈ 8.5 GB.
// - counter: nothing is written. User u's negatives for a split are a pure function of
//   (seed, split, u, the user's sequence, the catalogue size), "slmrec-negatives-v1" below,
//   so any tool recomputes them (scripts/negatives-reference.py is the reference in Python;
//   docs/data.md "Counter negatives" writes the algorithm out), and a worker can draw any
//   user's list without the others'.
//
// Both stores draw a user's list with the same procedure (`NegativeSampler.draw`); they differ
// only in where the generator's state comes from.

/// Where a prepared dataset keeps its fixed negatives (`dataset.json` → `options.negatives_store`).
public enum NegativesStore: String, Codable, Sendable, CaseIterable {
    case text, counter

    /// `data prepare`'s default: text up to this many ids per split (≈ 0.9 GB of text at
    /// Amazon's 6-digit ids), counter beyond (Cloth: 1.2 G ids per split).
    public static let autoTextLimit = 100_000_000

    public static func automatic(users: Int, count: Int) -> NegativesStore {
        users.multipliedReportingOverflow(by: count).overflow || users * count > autoTextLimit ? .counter : .text
    }
}

/// slmrec-negatives-v1: the counter store's generator.
///
///     stream(split) = seed XOR FNV-1a-64("negatives-" + split)        ("negatives-valid" / "negatives-test")
///     key(u)        = stream(split) + u · 0x9E3779B97F4A7C15  (mod 2^64)
///     rng           = xoshiro256** seeded from key(u) by SplitMix64   (Common/RNG.swift, SeededRNG(seed:))
///     list          = NegativeSampler.draw(rng, the user's whole sequence, numItems, count)
///
/// The stream is the text store's (`SeededRNG(seed:stream:)`), so a seed means the same in
/// both; the per-user key is a Weyl step (SplitMix64's own increment), which SplitMix64's
/// finaliser turns into unrelated states for neighbouring users.
public struct CounterNegatives: Sendable, Equatable {
    public static let algorithm = "slmrec-negatives-v1"
    public let seed: UInt64
    public let count: Int
    public let numItems: Int

    public init(seed: UInt64, count: Int, numItems: Int) {
        self.seed = seed; self.count = count; self.numItems = numItems
    }

    /// SeededRNG(seed:stream:)'s mix of the seed and the label, as a number.
    public static func streamKey(seed: UInt64, split: Split) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in "negatives-\(split.rawValue)".utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return seed ^ h
    }

    public func rng(user: Int, split: Split) -> SeededRNG {
        SeededRNG(seed: Self.streamKey(seed: seed, split: split) &+ UInt64(user) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// User `user`'s (1-based) list for `split` into `out` (replaced). Returns false when the
    /// user has fewer than `count` unseen items (the list then holds all of them).
    @discardableResult
    public func draw(user: Int, split: Split, sequence: some Collection<Int32>, scratch: inout NegativeSampler.Scratch,
                     into out: inout [Int32]) -> Bool {
        var r = rng(user: user, split: split)
        return NegativeSampler.draw(rng: &r, history: sequence, numItems: numItems, count: count, scratch: &scratch, into: &out)
    }
}

/// Fixed negatives: for each user, `count` distinct items drawn uniformly from the items the
/// user never interacted with (whole sequence, so the valid target is excluded from the
/// valid negatives and the test target from both).
public enum NegativeSampler {
    /// Per-worker marks over the catalogue (an epoch counter instead of clearing them).
    public struct Scratch {
        var mark: [UInt32]
        var epoch: UInt32 = 0
        var pool: [Int32] = []
        public init(numItems: Int) { mark = [UInt32](repeating: 0, count: numItems + 1) }
    }

    /// One user's list. With at least twice `count` unseen items: rejection sampling (draw
    /// 1 + nextInt(below: numItems), keep it if neither seen nor drawn), in draw order.
    /// Otherwise (small catalogues, where rejection would mostly reject): the unseen items
    /// in increasing id order and a partial Fisher–Yates prefix of `min(count, unseen)`:
    /// for i in 0..<take: swap(i, i + nextInt(below: unseen − i)). Returns false when the
    /// user has fewer than `count` unseen items.
    @discardableResult
    public static func draw(rng: inout SeededRNG, history: some Collection<Int32>, numItems: Int, count: Int,
                            scratch s: inout Scratch, into out: inout [Int32]) -> Bool {
        s.epoch &+= 1
        if s.epoch == 0 {   // wrapped: clear once every 2^32 users
            for i in s.mark.indices { s.mark[i] = 0 }
            s.epoch = 1
        }
        let epoch = s.epoch
        var hist = 0
        for item in history where s.mark[Int(item)] != epoch {
            s.mark[Int(item)] = epoch
            hist += 1
        }
        let available = numItems - hist
        out.removeAll(keepingCapacity: true)
        if available <= count || available < 2 * count {
            s.pool.removeAll(keepingCapacity: true)
            if numItems >= 1 { for i in 1...numItems where s.mark[i] != epoch { s.pool.append(Int32(i)) } }
            let take = min(count, s.pool.count)
            for i in 0..<take {
                let j = i + rng.nextInt(below: s.pool.count - i)
                s.pool.swapAt(i, j)
                out.append(s.pool[i])
            }
            return take == count
        }
        while out.count < count {
            let c = 1 + rng.nextInt(below: numItems)
            if s.mark[c] != epoch { s.mark[c] = epoch; out.append(Int32(c)) }
        }
        return true
    }

    /// The text store: one stream for the split, through the users in order. Returns the
    /// number of users who had fewer than `count` unseen items (they get all of them).
    static func writeText(to url: URL, seqStart: [Int], seqItems: [Int32], numItems: Int, count: Int, rng: SeededRNG) throws -> Int {
        var rng = rng
        var w = try BufferedWriter(url)
        var scratch = Scratch(numItems: numItems)
        var out = [Int32]()
        out.reserveCapacity(count)
        var short = 0
        for u in 0..<(seqStart.count - 1) {
            if !draw(rng: &rng, history: seqItems[seqStart[u]..<seqStart[u + 1]], numItems: numItems, count: count, scratch: &scratch, into: &out) {
                short += 1
            }
            w.idRow(u + 1, out)
        }
        try w.close()
        return short
    }

    /// Users with fewer than `count` unseen items (what the counter store records without drawing).
    static func shortUsers(seqStart: [Int], seqItems: [Int32], numItems: Int, count: Int) -> Int {
        var mark = [UInt32](repeating: 0, count: numItems + 1)
        var short = 0
        for u in 0..<(seqStart.count - 1) {
            let epoch = UInt32(truncatingIfNeeded: u + 1)
            var hist = 0
            for k in seqStart[u]..<seqStart[u + 1] where mark[Int(seqItems[k])] != epoch { mark[Int(seqItems[k])] = epoch; hist += 1 }
            if numItems - hist < count { short += 1 }
        }
        return short
    }
}

/// A split's fixed negatives as the evaluator reads them: whole lists from the text files, or
/// drawn per user from the counter generator (no per-user lists held: 1.2 M users × 999 ids
/// would be 4.8 GB).
public final class NegativeSource: @unchecked Sendable {
    enum Kind: Sendable {
        case table([[Int32]])
        case counter(CounterNegatives, sequences: [[Int32]])
    }
    let kind: Kind
    public let split: Split
    /// The counter store's marks over the catalogue (1.5 MB at Cloth's N), made once and
    /// reused by every batch's `lists` rather than allocated per call.
    private var scratch: NegativeSampler.Scratch?
    private let lock = NSLock()

    init(kind: Kind, split: Split) { self.kind = kind; self.split = split }

    public var store: NegativesStore {
        if case .table = kind { return .text }
        return .counter
    }

    /// The lists of `users` (1-based), in that order. Counter lists are drawn here, on the
    /// calling thread (≈ 1,000 draws per user: microseconds next to scoring the user).
    public func lists(users: [Int]) -> [[Int32]] {
        switch kind {
        case .table(let t):
            return users.map { t[$0 - 1] }
        case .counter(let g, let seqs):
            lock.lock()
            defer { lock.unlock() }
            var marks = scratch ?? NegativeSampler.Scratch(numItems: g.numItems)
            defer { scratch = marks }
            return users.map { u in
                var out = [Int32]()
                out.reserveCapacity(g.count)
                g.draw(user: u, split: split, sequence: seqs[u - 1], scratch: &marks, into: &out)
                return out
            }
        }
    }

    /// `USER N1 … Nk` lines for `users` (all when nil): the text store's layout, so another
    /// tool can read counter negatives as it reads text ones (`slmrec data negatives`).
    public func writeText(to url: URL, users: [Int]? = nil, numUsers: Int) throws {
        var w = try BufferedWriter(url)
        let all = users ?? Array(stride(from: 1, through: numUsers, by: 1))
        var k = 0
        while k < all.count {
            let chunk = Array(all[k..<min(all.count, k + 4096)])
            for (u, list) in zip(chunk, lists(users: chunk)) { w.idRow(u, list) }
            k += chunk.count
        }
        try w.close()
    }
}
