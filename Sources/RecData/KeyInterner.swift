import Foundation

/// Maps original ids (raw bytes such as `2294`, `A2IBPI20UZIR0U` or a MovieLens title) to
/// dense Int32 codes 0, 1, 2, … in order of first sight.
///
/// Keys live back to back in one byte arena and the table is open addressing over Int32
/// codes, so ten million lookups allocate nothing per key — a `[String: Int32]` would
/// create a String for every line and dominate the run time.
struct KeyInterner {
    private(set) var arena: [UInt8] = []
    private(set) var offsets: [Int] = [0]      // key i is arena[offsets[i]..<offsets[i+1]]
    private var hashes: [UInt32] = []
    private var table: [Int32]
    private var mask: Int

    /// The table starts small and doubles (each growth rehashes the codes so far: linear in
    /// total), so a small file does not pay for a large table.
    init(capacity: Int = 1 << 10) {
        var c = 16
        while c < capacity * 2 { c <<= 1 }
        table = [Int32](repeating: -1, count: c)
        mask = c - 1
    }

    var count: Int { offsets.count - 1 }

    @inline(__always)
    private static func hash(_ p: UnsafeBufferPointer<UInt8>) -> UInt32 {
        // FNV-1a then a final avalanche: cheap, and good enough for short id strings.
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in p { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        return UInt32(truncatingIfNeeded: h)
    }

    /// The code for `key`, inserting it when new.
    @inline(__always)
    mutating func intern(_ key: UnsafeBufferPointer<UInt8>) -> Int32 {
        let h = Self.hash(key)
        var slot = Int(h) & mask
        while true {
            let code = table[slot]
            if code < 0 { break }
            if hashes[Int(code)] == h && equals(Int(code), key) { return code }
            slot = (slot + 1) & mask
        }
        let code = Int32(count)
        arena.append(contentsOf: key)
        offsets.append(arena.count)
        hashes.append(h)
        table[slot] = code
        if count * 2 > mask { grow() }
        return code
    }

    @inline(__always)
    private func equals(_ code: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let s = offsets[code], e = offsets[code + 1]
        if e - s != key.count { return false }
        return arena.withUnsafeBufferPointer { a in
            key.count == 0 || memcmp(a.baseAddress! + s, key.baseAddress!, key.count) == 0
        }
    }

    private mutating func grow() {
        let c = table.count * 2
        table = [Int32](repeating: -1, count: c)
        mask = c - 1
        for code in 0..<count {
            var slot = Int(hashes[code]) & mask
            while table[slot] >= 0 { slot = (slot + 1) & mask }
            table[slot] = Int32(code)
        }
    }

    func key(_ code: Int) -> String {
        String(decoding: arena[offsets[code]..<offsets[code + 1]], as: UTF8.self)
    }

    /// The key as an integer when it is one (used for the sequences-format id check).
    func intValue(_ code: Int) -> Int? {
        arena.withUnsafeBufferPointer { a in
            Bytes.parseInt(a, FieldRange(start: offsets[code], count: offsets[code + 1] - offsets[code]))
        }
    }
}
