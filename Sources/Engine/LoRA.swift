import Common

// LoRA weights attached to a model: A [r, in] and B [out, r] for each targeted linear of
// each layer, in their own contiguous ParamSet (names "model.layers.{i}.self_attn.q_proj.lora_A").

public final class LoRAWeights: @unchecked Sendable {
    public let rank: Int
    public let alpha: Float
    public let targets: [LinearKind]
    public let params: ParamSet
    public var scaling: Float { alpha / Float(rank) }
    /// PEFT's lora_dropout: in training, the adapter path sees dropout(x) (the base path sees x).
    public var dropout: Float = 0
    /// Seeds this step's dropout masks; the training task sets it from (seed, step), so a
    /// resumed run draws the same masks. Forward and backward regenerate the same mask.
    public var dropoutSeed: UInt64 = 0

    public init(dims: ModelDims, rank: Int, alpha: Float, targets: [LinearKind]) {
        self.rank = rank
        self.alpha = alpha
        self.targets = LinearKind.allCases.filter { targets.contains($0) }
        var layout = ParamLayout()
        for l in 0..<dims.layers {
            for k in self.targets {
                let s = k.shape(dims)
                layout.append(ParamName.loraA(l, k), [rank, s[1]])
                layout.append(ParamName.loraB(l, k), [s[0], rank])
            }
        }
        params = ParamSet(layout: layout)
    }

    public func targets(_ k: LinearKind) -> Bool { targets.contains(k) }

    /// The dropout mask stream of one (layer, module): keep with probability 1−p, scale 1/(1−p).
    func dropoutRNG(layer: Int, kind: LinearKind) -> SeededRNG {
        SeededRNG(seed: dropoutSeed, stream: "lora-dropout-\(layer)-\(kind.rawValue)")
    }

    /// PEFT's initialisation: A ~ kaiming-uniform(a=√5) = U(−1/√in, 1/√in), B = 0, so the
    /// adapted model starts equal to the base model.
    public func initialise(rng: inout SeededRNG) {
        for e in params.layout.entries where e.name.hasSuffix(".lora_A") {
            let bound = 1 / Float(e.shape[1]).squareRoot()
            let p = params.buffer.ptr + e.offset
            for i in 0..<e.count { p[i] = (rng.nextFloat() * 2 - 1) * bound }
        }
    }
}
