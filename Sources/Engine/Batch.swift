// A batch of item sequences, packed without padding (see Attention.swift for why).
//
// Rows [0, P) hold the prompt once for the whole batch (positions 0…P−1: the prompt's states
// are the same for every user). Sequence b (items oldest first) then holds its tokens
// [items…, suffix S…] at rows [seqStart[b], seqStart[b+1]) with positions P, P+1, … — the
// positions HF assigns to the valid slots of a left-padded row
// (position_ids = max(cumsum(mask)−1, 0)), where the prompt comes first.

public enum Objective: String, Sendable, Codable, CaseIterable {
    /// One target per sequence, scored at the last position (E4SRec, SLMRec).
    case last
    /// Every item position predicts the next item in one causal pass — the same training
    /// signal as E4SRec's prefix augmentation (every prefix as a sample), from one pass.
    case allPositions = "all-positions"
}

public struct EngineError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public struct PackedBatch: Sendable {
    public let count: Int               // B
    public let prefix: Int              // P: shared prompt rows [0, P)
    public let seqStart: [Int]          // [B+1] token offsets (seqStart[0] = P)
    public let positions: [Int32]       // [Ntok]
    public let itemTok: [Int32]         // [nItemTok] token row of each item slot
    public let itemIds: [Int32]         // [nItemTok]
    public let outRows: [Int]           // [R] token rows that are scored
    public let rowSeq: [Int]            // [R] sequence of each scored row
    public let targets: [Int32]         // [R], empty when the batch has no targets
    /// How the loss scores the catalogue (ItemSoftmax.swift); `sampled` needs `sample`.
    public var softmax: ItemSoftmax = .full
    /// The step's shared negatives for `softmax: .sampled` (ItemSampler.draw).
    public var sample: SampledItems? = nil
    /// Data-parallel training only (Trainer, docs/scale-out.md): this rank's share of the
    /// global batch's sequences divided by its share of the scored rows. The trainer weights
    /// every rank's loss by its row share, which makes a per-row mean (the CE) the global
    /// batch's; a per-sequence mean (KD's last-position alignment) scaled by this first is
    /// the global batch's per-sequence mean too. 1 in a single process.
    public var sequenceWeight: Double = 1
    public var nTok: Int { seqStart[count] }
    public var rows: Int { outRows.count }

    /// - Parameters:
    ///   - sequences: item ids oldest first, each in 1…N, non-empty.
    ///   - targets: the next item of each sequence (1…N), or nil.
    ///   - objective: `.allPositions` scores every item slot (requires no suffix).
    public init(sequences: [[Int32]], targets: [Int32]?, dims: ModelDims, objective: Objective = .last) throws {
        if let targets, targets.count != sequences.count {
            throw EngineError("\(targets.count) targets for \(sequences.count) sequences")
        }
        if objective == .allPositions && targets == nil {
            throw EngineError("the all-positions objective needs targets (the item after each sequence)")
        }
        if objective == .allPositions && dims.suffixLength > 0 {
            throw EngineError("the all-positions objective needs a model without a prompt suffix (suffix_length is \(dims.suffixLength)): item slots are not followed by the next item")
        }
        let p = dims.promptLength, s = dims.suffixLength
        var seqStart = [p], positions: [Int32] = (0..<p).map { Int32($0) }, itemTok: [Int32] = [], itemIds: [Int32] = []
        var outRows: [Int] = [], rowSeq: [Int] = [], tg: [Int32] = []
        for (b, seq) in sequences.enumerated() {
            if seq.isEmpty { throw EngineError("sequence \(b) is empty: every user needs at least one item") }
            let n = p + seq.count + s
            if n > dims.positionLimit {
                throw EngineError("sequence \(b) has \(seq.count) items, more than the model takes (max_seq_len \(dims.maxSeqLen)\(dims.positionLimit < dims.promptLength + dims.maxSeqLen + dims.suffixLength ? ", max_position_embeddings \(dims.maxPositions)" : "")); keep its most recent \(dims.positionLimit - dims.promptLength - dims.suffixLength) items")
            }
            let start = seqStart[b]
            for t in p..<n { positions.append(Int32(t)) }
            for (j, id) in seq.enumerated() {
                if id < 1 || Int(id) > dims.numItems {
                    throw EngineError("sequence \(b) position \(j): item id \(id) is outside 1…\(dims.numItems) (the checkpoint's num_items)")
                }
                itemTok.append(Int32(start + j))
                itemIds.append(id)
            }
            if objective == .allPositions {
                for j in 0..<seq.count {
                    outRows.append(start + j)
                    rowSeq.append(b)
                    if j + 1 < seq.count { tg.append(seq[j + 1]) }
                }
                if let targets { tg.append(targets[b]) }
            } else {
                outRows.append(start + n - p - 1)
                rowSeq.append(b)
                if let targets { tg.append(targets[b]) }
            }
            seqStart.append(start + n - p)
        }
        for (i, y) in tg.enumerated() where y < 1 || Int(y) > dims.numItems {
            throw EngineError("target \(i): item id \(y) is outside 1…\(dims.numItems)")
        }
        count = sequences.count
        prefix = p
        self.seqStart = seqStart
        self.positions = positions
        self.itemTok = itemTok
        self.itemIds = itemIds
        self.outRows = outRows
        self.rowSeq = rowSeq
        self.targets = tg
    }
}
