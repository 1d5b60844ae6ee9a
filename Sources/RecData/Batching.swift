import Common

/// Groups example indices into batches of similar sequence length, so a batch of short
/// sequences does not pay for padding up to a long one (Sports averages 8 items, max 50).
///
/// Indices are sorted by length (ties by index, or in random order when `shuffle` is on) and
/// cut into consecutive batches of `batchSize` (the last may be smaller). With `shuffle`
/// the order of the batches is shuffled too, so training does not see lengths in order.
/// Fully determined by `rng`'s state.
public func lengthGroupedBatches(lengths: [Int], batchSize: Int, shuffle: Bool, rng: inout SeededRNG) -> [[Int]] {
    let bs = max(1, batchSize)
    var idx = Array(lengths.indices)
    if shuffle { rng.shuffle(&idx) }
    // Sorting by (length, position after the shuffle) is a total order: deterministic.
    var pos = [Int](repeating: 0, count: lengths.count)
    for (p, i) in idx.enumerated() { pos[i] = p }
    idx.sort { a, b in lengths[a] < lengths[b] || (lengths[a] == lengths[b] && pos[a] < pos[b]) }
    var batches: [[Int]] = stride(from: 0, to: idx.count, by: bs).map { Array(idx[$0..<min($0 + bs, idx.count)]) }
    if shuffle { rng.shuffle(&batches) }
    return batches
}
