import Foundation

// SHA-256 (FIPS 180-4) in plain Swift. Foundation on Linux has no CryptoKit, and the
// toolbench records the sha256 of every source file it reads (dataset.json, checkpoints),
// so a dependency-free implementation lives here.

/// One-shot and file helpers. All return lowercase hex.
public enum SHA256 {
    public static func hex(of data: Data) -> String {
        var h = SHA256Hasher()
        data.withUnsafeBytes { h.update($0) }
        return h.finalize()
    }

    /// Streams the file in 1 MB chunks so a multi-gigabyte input is never held in memory.
    public static func hex(ofFile url: URL) throws -> String {
        var h = SHA256Hasher()
        try forEachChunk(of: url, chunk: 1 << 20) { h.update($0) }
        return h.finalize()
    }
}

/// Incremental SHA-256: `update` any number of times, then `finalize`.
public struct SHA256Hasher: Sendable {
    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
    private var block = [UInt8](repeating: 0, count: 64)
    private var blockFill = 0
    private var totalBytes: UInt64 = 0

    public init() {}

    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        totalBytes &+= UInt64(bytes.count)
        var i = 0
        let n = bytes.count
        // Top up a partial block first, then hash whole blocks straight from the input.
        if blockFill > 0 {
            let take = min(64 - blockFill, n)
            for j in 0..<take { block[blockFill + j] = bytes[j] }
            blockFill += take
            i = take
            if blockFill == 64 {
                block.withUnsafeBytes { compress(UnsafeRawPointer($0.baseAddress!)) }
                blockFill = 0
            }
        }
        while n - i >= 64 {
            compress(base + i)
            i += 64
        }
        while i < n {
            block[blockFill] = bytes[i]
            blockFill += 1
            i += 1
        }
    }

    /// The digest as 64 lowercase hex characters. Does not consume `self`.
    public func finalize() -> String {
        var copy = self
        let bitLength = totalBytes &* 8
        var pad: [UInt8] = [0x80]
        let fillAfter = (blockFill + 1) % 64
        let zeros = fillAfter <= 56 ? 56 - fillAfter : 120 - fillAfter
        pad += [UInt8](repeating: 0, count: zeros)
        for s in stride(from: 56, through: 0, by: -8) { pad.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(s))) }
        let savedTotal = copy.totalBytes
        pad.withUnsafeBytes { copy.update($0) }
        copy.totalBytes = savedTotal
        let s = copy.state
        return [s.0, s.1, s.2, s.3, s.4, s.5, s.6, s.7].map { String(format: "%08x", $0) }.joined()
    }

    @inline(__always) private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }

    private mutating func compress(_ p: UnsafeRawPointer) {
        // A stack-like scratch buffer: allocating an Array per 64-byte block would dominate
        // the cost of hashing a large file.
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
        for t in 0..<16 {
            let b = p + 4 * t
            w[t] = UInt32(b.load(as: UInt8.self)) << 24 | UInt32(b.load(fromByteOffset: 1, as: UInt8.self)) << 16
                | UInt32(b.load(fromByteOffset: 2, as: UInt8.self)) << 8 | UInt32(b.load(fromByteOffset: 3, as: UInt8.self))
        }
        for t in 16..<64 {
            let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
            let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
            w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, h) = state
        Self.k.withUnsafeBufferPointer { k in
        for t in 0..<64 {
            let S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            let ch = (e & f) ^ (~e & g)
            let t1 = h &+ S1 &+ ch &+ k[t] &+ w[t]
            let S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            let t2 = S0 &+ maj
            h = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
        }
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d,
                 state.4 &+ e, state.5 &+ f, state.6 &+ g, state.7 &+ h)
        }
    }
}
