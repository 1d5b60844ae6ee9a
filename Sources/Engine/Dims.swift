// Dimension glossary (every buffer comment uses these names):
//   B    sequences in a batch          Ntok  tokens in a packed batch (Σ over sequences of P + len + S)
//   T    tokens of one sequence        C     hidden size d1
//   NH   attention heads               NKV   key/value heads (grouped-query when < NH)
//   HD   head dim                      I     MLP intermediate size
//   N    items (ids 1…N; 0 is pad)     D0    item embedding dim
//   P    prompt prefix length          S     prompt suffix length
//   L    decoder layers                R     output rows (scored positions) in a batch
//   r    LoRA rank

/// The architecture numbers the engine needs, derived from a checkpoint's config.
public struct ModelDims: Sendable, Equatable, Codable {
    public var hidden: Int          // C
    public var intermediate: Int    // I
    public var layers: Int          // L
    public var heads: Int           // NH
    public var kvHeads: Int         // NKV
    public var headDim: Int         // HD
    public var numItems: Int        // N
    public var itemDim: Int         // D0
    public var promptLength: Int    // P
    public var suffixLength: Int    // S
    public var maxSeqLen: Int
    /// RMSNorm's ε as the config states it (written back exactly: `1e-06`, not the Float's
    /// 9.999999974752427e-07); the kernels use `rmsEps`, its fp32 value, as PyTorch does.
    public var rmsNormEps: Double
    public var rmsEps: Float { Float(rmsNormEps) }
    public var ropeTheta: Double
    public var maxPositions: Int
    public var inputProjBias: Bool
    public var outputProjBias: Bool

    public init(hidden: Int, intermediate: Int, layers: Int, heads: Int, kvHeads: Int? = nil, headDim: Int? = nil,
                numItems: Int, itemDim: Int, promptLength: Int = 0, suffixLength: Int = 0, maxSeqLen: Int = 50,
                rmsNormEps: Double = 1e-6, ropeTheta: Double = 10000, maxPositions: Int = 2048,
                inputProjBias: Bool = true, outputProjBias: Bool = true) {
        self.hidden = hidden
        self.intermediate = intermediate
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads ?? heads
        self.headDim = headDim ?? hidden / heads
        self.numItems = numItems
        self.itemDim = itemDim
        self.promptLength = promptLength
        self.suffixLength = suffixLength
        self.maxSeqLen = maxSeqLen
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.maxPositions = maxPositions
        self.inputProjBias = inputProjBias
        self.outputProjBias = outputProjBias
    }

    public var qDim: Int { heads * headDim }      // NH·HD
    /// Positions a batch can use: prompt + max_seq_len items + suffix (within
    /// max_position_embeddings). The RoPE table is sized by this, not by
    /// max_position_embeddings (131,072 for a Llama 3 trunk: 8M cos/sin at every load).
    public var positionLimit: Int { min(maxPositions, promptLength + maxSeqLen + suffixLength) }
    public var kvDim: Int { kvHeads * headDim }   // NKV·HD
}
