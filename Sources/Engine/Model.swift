import Common

// The E-LLMRec model (E4SRec, Li et al. 2023; SLMRec, Xu et al. ICLR 2025): item-ID
// embeddings → linear up-projection → LLaMa decoder → last hidden state → down-projection
// = user vector u; score(j) = u · item_embedding[j]. Forward and backward are written out
// op by op on the kernels in Kernels/, on packed batches (no padding, see Attention.swift).

public final class ELLMRecModel: @unchecked Sendable {
    public let dims: ModelDims
    public let params: ParamSet
    public var lora: LoRAWeights?
    /// Packed int8 decoder linears: used by inference (not training) when present.
    public var int8: Int8Linears?
    public let rope: RopeTable

    public init(dims: ModelDims, params: ParamSet? = nil) {
        self.dims = dims
        self.params = params ?? ParamSet(layout: ParamLayout(ParamName.specs(dims)))
        rope = RopeTable(headDim: dims.headDim, theta: dims.ropeTheta, maxPositions: dims.positionLimit)
    }

    /// A new model with random weights (normal(0, 1/√fan_in) linears, unit norms, item
    /// table normal(0, 0.02)·…): deterministic for a seed.
    public static func random(dims: ModelDims, seed: UInt64) -> ELLMRecModel {
        let m = ELLMRecModel(dims: dims)
        var rng = SeededRNG(seed: seed, stream: "init")
        for e in m.params.layout.entries {
            let p = m.params.buffer.ptr + e.offset
            if e.name.hasSuffix("layernorm.weight") || e.name == ParamName.finalNorm {
                for i in 0..<e.count { p[i] = 1 }
            } else if e.name.hasSuffix(".bias") {
                for i in 0..<e.count { p[i] = 0 }
            } else if e.name == ParamName.itemEmbedding || e.name == ParamName.prompt || e.name == ParamName.suffix {
                let std: Float = e.name == ParamName.itemEmbedding ? 0.1 : 0.02
                for i in 0..<e.count { p[i] = rng.nextNormal() * std }
            } else {
                let std = 1 / Float(e.shape[1]).squareRoot() * 0.5
                for i in 0..<e.count { p[i] = rng.nextNormal() * std }
            }
        }
        return m
    }

    @inline(__always) func w(_ name: String) -> UnsafeMutablePointer<Float> { params.req(name) }
    @inline(__always) func bias(_ name: String) -> UnsafeMutablePointer<Float>? { params.ptr(name) }
}

/// What a forward pass keeps for the backward and for the caller.
public final class Activations: @unchecked Sendable {
    /// Per-layer saved tensors (one set, reused, when not training).
    final class Layer {
        var n1: FloatBuffer        // (Ntok, C)  input_layernorm output
        var rstd1: FloatBuffer     // (Ntok)
        var q: FloatBuffer         // (Ntok, NH·HD) after RoPE
        var k: FloatBuffer         // (Ntok, NKV·HD) after RoPE
        var v: FloatBuffer         // (Ntok, NKV·HD)
        var probs: FloatBuffer     // (Σ NH·n²)
        var att: FloatBuffer       // (Ntok, NH·HD) attention output before o_proj
        var r2: FloatBuffer        // (Ntok, C) residual after attention
        var n2: FloatBuffer        // (Ntok, C) post_attention_layernorm output
        var rstd2: FloatBuffer     // (Ntok)
        var g: FloatBuffer         // (Ntok, I) gate_proj output
        var u: FloatBuffer         // (Ntok, I) up_proj output
        var h: FloatBuffer         // (Ntok, I) silu(g)·u
        var xa: [FloatBuffer]      // per LinearKind: (Ntok, r) LoRA x·Aᵀ
        var xd: [FloatBuffer]      // per LinearKind: (Ntok, in) LoRA input after dropout (training with lora_dropout)
        init(nTok: Int, probs nProbs: Int, d: ModelDims, rank: Int, dropout: [LinearKind], ws: Workspace?, tag: String) {
            func buf(_ k: String, _ n: Int) -> FloatBuffer { ws.buffer(tag + k, n) }
            n1 = buf("n1", nTok * d.hidden); rstd1 = buf("rstd1", nTok)
            q = buf("q", nTok * d.qDim); k = buf("k", nTok * d.kvDim); v = buf("v", nTok * d.kvDim)
            probs = buf("probs", nProbs); att = buf("att", nTok * d.qDim)
            r2 = buf("r2", nTok * d.hidden); n2 = buf("n2", nTok * d.hidden); rstd2 = buf("rstd2", nTok)
            g = buf("g", nTok * d.intermediate); u = buf("u", nTok * d.intermediate); h = buf("h", nTok * d.intermediate)
            xa = rank > 0 ? LinearKind.allCases.map { buf("xa\($0.rawValue)", nTok * rank) } : []
            xd = dropout.isEmpty ? [] : LinearKind.allCases.map { buf("xd\($0.rawValue)", dropout.contains($0) ? nTok * $0.shape(d)[1] : 1) }
        }
    }

    public let batch: PackedBatch
    public let training: Bool
    let segments: [AttentionSegment]
    var resid: [FloatBuffer]       // training: L+1 × (Ntok, C) (resid[0] = inputs); inference: 2, ping-pong
    var layers: [Layer]
    var eIn: FloatBuffer           // (nItemTok, D0) gathered item embeddings
    /// hidden.k at the scored rows, k = 0…L, before the final norm: (L+1, R, C)
    public var hidden: FloatBuffer
    public var lastHidden: FloatBuffer   // (R, C) after model.norm
    var rstdF: FloatBuffer               // (R)
    public var user: FloatBuffer         // (R, D0)
    public var scores: FloatBuffer       // (R, N+1)
    var ceProbs: FloatBuffer             // (R, N+1)
    var lse: FloatBuffer                 // (R) the streamed loss's log-sum-exp, for its backward
    public var losses: FloatBuffer       // (R)
    public var loss: Float = 0

    init(batch: PackedBatch, dims d: ModelDims, training: Bool, rank: Int, dropout: [LinearKind], scores wantScores: Bool,
         workspace ws: Workspace?) {
        self.batch = batch
        self.training = training
        let nTok = batch.nTok, r = batch.rows
        let (segs, total) = attentionSegments(seqStart: batch.seqStart, prefix: batch.prefix, nHeads: d.heads)
        segments = segs
        resid = (0..<(training ? d.layers + 1 : 2)).map { ws.buffer("resid\($0)", nTok * d.hidden) }
        layers = (0..<(training ? d.layers : 1)).map {
            Layer(nTok: nTok, probs: total, d: d, rank: rank, dropout: dropout, ws: ws, tag: "L\($0).")
        }
        eIn = ws.buffer("eIn", batch.itemIds.count * d.itemDim)
        hidden = ws.buffer("hidden", (d.layers + 1) * r * d.hidden)
        lastHidden = ws.buffer("lastHidden", r * d.hidden)
        rstdF = ws.buffer("rstdF", r)
        user = ws.buffer("user", r * d.itemDim)
        // (R, N+1) each: 1.5 MB per row at N = 377 k, so only when something reads them (the
        // streamed and sampled losses never do).
        let materialise = wantScores && batch.softmax == .full
        scores = ws.buffer("scores", materialise ? r * (d.numItems + 1) : 0)
        ceProbs = ws.buffer("ceProbs", materialise && !batch.targets.isEmpty ? r * (d.numItems + 1) : 0)
        lse = ws.buffer("lse", batch.softmax == .streamed && !batch.targets.isEmpty ? r : 0)
        losses = ws.buffer("losses", r)
    }

    /// hidden.k as a flat (R, C) array.
    public func hiddenState(_ k: Int, dims d: ModelDims) -> [Float] {
        Array(UnsafeBufferPointer(start: hiddenStatePointer(k, dims: d), count: batch.rows * d.hidden))
    }

    /// hidden.k in place, (R, C) (valid while these activations are).
    public func hiddenStatePointer(_ k: Int, dims d: ModelDims) -> UnsafePointer<Float> {
        UnsafePointer(hidden.ptr + k * batch.rows * d.hidden)
    }
}

extension ELLMRecModel {
    /// Runs the model on a batch. With `training`, keeps every activation the backward needs.
    /// Computes the mean cross-entropy when the batch has targets. `scores: false` stops at the
    /// user vectors (`a.user`): what streamed ranking (StreamedRanking) needs, without the
    /// (R, N+1) score matrix; the batch must then have no targets.
    public func forward(_ batch: PackedBatch, training: Bool = false, scores: Bool = true, workspace: Workspace? = nil) -> Activations {
        let d = dims, C = d.hidden, R = batch.rows
        let rank = lora?.rank ?? 0
        let drop = training && (lora?.dropout ?? 0) > 0 ? lora?.targets ?? [] : []
        precondition(scores || batch.targets.isEmpty, "the loss needs the scores")
        let a = Activations(batch: batch, dims: d, training: training, rank: rank, dropout: drop, scores: scores, workspace: workspace)

        // Inputs: x = [prompt, input_proj(E[items]), suffix] per sequence.
        let x0 = a.resid[0].ptr
        embeddingForward(out: a.eIn.ptr, table: w(ParamName.itemEmbedding), ids: batch.itemIds, dim: d.itemDim)
        let nI = batch.itemIds.count
        let proj = workspace.buffer("proj", nI * C)   // (nItemTok, C)
        linearForward(out: proj.ptr, inp: a.eIn.ptr, weight: w(ParamName.inputProj), bias: bias(ParamName.inputProjBias),
                      m: nI, n: C, k: d.itemDim)
        for (r, t) in batch.itemTok.enumerated() { (x0 + Int(t) * C).update(from: proj.ptr + r * C, count: C) }
        if d.promptLength > 0 { x0.update(from: w(ParamName.prompt), count: d.promptLength * C) }
        if d.suffixLength > 0 {
            for b in 0..<batch.count {
                (x0 + (batch.seqStart[b + 1] - d.suffixLength) * C).update(from: w(ParamName.suffix), count: d.suffixLength * C)
            }
        }
        gatherRows(a.hidden.ptr, x0, batch.outRows, C)

        for l in 0..<d.layers {
            let input = training ? a.resid[l] : a.resid[l % 2]
            let output = training ? a.resid[l + 1] : a.resid[(l + 1) % 2]
            if !training && l == d.layers - 1 {
                // Inference: nothing reads the last layer's output except at the scored rows.
                lastLayerRowsForward(l, input: input.ptr, out: a.hidden.ptr + (l + 1) * R * C, acts: a.layers[0], a: a, workspace: workspace)
                continue
            }
            layerForward(l, input: input.ptr, output: output.ptr, acts: training ? a.layers[l] : a.layers[0], a: a, workspace: workspace)
            gatherRows(a.hidden.ptr + (l + 1) * R * C, output.ptr, batch.outRows, C)
        }

        // Head: model.norm on the scored rows, output_proj, scores against the item table.
        let tHead = OpProfiler.enabled ? nowSeconds() : 0
        defer { if OpProfiler.enabled { OpProfiler.totals["head+loss", default: 0] += nowSeconds() - tHead } }
        let hL = a.hidden.ptr + d.layers * R * C
        rmsnormForward(out: a.lastHidden.ptr, rstd: a.rstdF.ptr, inp: hL, weight: w(ParamName.finalNorm), m: R, c: C, eps: d.rmsEps)
        linearForward(out: a.user.ptr, inp: a.lastHidden.ptr, weight: w(ParamName.outputProj), bias: bias(ParamName.outputProjBias),
                      m: R, n: d.itemDim, k: C)
        guard scores else { return a }
        if batch.softmax != .full {
            // No (R, N+1) matrices: the loss from the user vectors (ItemSoftmax.swift).
            if !batch.targets.isEmpty {
                let table = UnsafePointer(w(ParamName.itemEmbedding))
                let total = batch.targets.withUnsafeBufferPointer { tg -> Double in
                    switch batch.softmax {
                    case .streamed:
                        return ItemSoftmaxLoss.streamedForward(u: a.user.ptr, table: table, numItems: d.numItems, dim: d.itemDim,
                                                               targets: tg.baseAddress!, rows: R, lse: a.lse.ptr, workspace: workspace)
                    default:
                        guard let sample = batch.sample else { preconditionFailure("softmax sampled without batch.sample") }
                        return ItemSoftmaxLoss.sampled(du: nil, dtable: nil, u: a.user.ptr, table: table, dim: d.itemDim,
                                                       targets: tg.baseAddress!, rows: R, sample: sample, scale: 0, workspace: workspace)
                    }
                }
                a.loss = Float(total / Double(max(R, 1)))
            }
            return a
        }
        if training {
            linearForward(out: a.scores.ptr, inp: a.user.ptr, weight: w(ParamName.itemEmbedding), bias: nil,
                          m: R, n: d.numItems + 1, k: d.itemDim)
        } else {
            // Scores that rank: the same floats as StreamedRanking's, whatever the batch (ItemScores).
            ItemScores.tile(users: a.user.ptr, count: R, dim: d.itemDim, table: w(ParamName.itemEmbedding), from: 0, n: d.numItems + 1,
                            out: a.scores.ptr, ldo: d.numItems + 1, workspace: workspace)
        }
        if !batch.targets.isEmpty {
            crossEntropyForward(losses: a.losses.ptr, probs: a.ceProbs.ptr, scores: a.scores.ptr, targets: batch.targets, cols: d.numItems + 1)
            var s: Double = 0
            for i in 0..<R { s += Double(a.losses[i]) }
            a.loss = Float(s / Double(max(R, 1)))
        }
        return a
    }

    /// y (+)= x·Wᵀ for linear `kind` of layer l: the one dispatch every forward uses. With `q`
    /// (the int8 activations of `inp`) and int8 weights for the module, the int8 kernel;
    /// otherwise fp32, plus the module's LoRA path when it has an adapter (with dropout on the
    /// adapter input in training: `xd` holds the masked inputs).
    @inline(__always)
    func linear(_ l: Int, _ kind: LinearKind, out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, q: QuantizedActivations?,
                m: Int, accumulate: Bool, xa: [FloatBuffer], xd: [FloatBuffer] = []) {
        if let q, let int8, int8.has(l, kind) {
            OpProfiler.measure("linear.int8") { int8.linear(l, kind, x: q, out: out, accumulate: accumulate) }
            return
        }
        let s = kind.shape(dims)
        OpProfiler.measure("linear") { linearForward(out: out, inp: inp, weight: w(ParamName.weight(l, kind)), bias: nil, m: m, n: s[0], k: s[1], accumulate: accumulate) }
        if let lora, lora.targets(kind) {
            var loraIn = inp
            if !xd.isEmpty {
                var rng = lora.dropoutRNG(layer: l, kind: kind)
                dropoutMaskForward(out: xd[kind.rawValue].ptr, inp: inp, count: m * s[1], p: lora.dropout, rng: &rng)
                loraIn = UnsafePointer(xd[kind.rawValue].ptr)
            }
            OpProfiler.measure("lora") { loraForward(out: out, xa: xa[kind.rawValue].ptr, inp: loraIn,
                        a: lora.params.req(ParamName.loraA(l, kind)), b: lora.params.req(ParamName.loraB(l, kind)),
                        scaling: lora.scaling, m: m, n: s[0], k: s[1], r: lora.rank) }
        }
    }

    /// The int8 weights inference runs on (nil: fp32 — training, or an adapter attached).
    func int8Weights(training: Bool) -> Int8Linears? { training || lora != nil ? nil : int8 }

    private func layerForward(_ l: Int, input: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
                              acts s: Activations.Layer, a: Activations, workspace: Workspace?) {
        let d = dims, C = d.hidden, b = a.batch, nTok = b.nTok
        // int8 inference: each activation is quantized once per token and shared by the
        // linears that read it (q/k/v, gate/up); modules without int8 weights stay float.
        let q8 = int8Weights(training: a.training)
        // One buffer serves every quantization: each is consumed before the next is made.
        func quantize(_ x: UnsafePointer<Float>, _ k: Int) -> QuantizedActivations? {
            guard let q8 else { return nil }
            return OpProfiler.measure("quantize") { q8.quantize(x, m: nTok, k: k, workspace: workspace) }
        }
        func lin(_ kind: LinearKind, out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, q: QuantizedActivations?, accumulate: Bool) {
            linear(l, kind, out: out, inp: inp, q: q, m: nTok, accumulate: accumulate, xa: s.xa, xd: s.xd)
        }
        OpProfiler.measure("rmsnorm") { Fast.rmsnormForward(out: s.n1.ptr, rstd: s.rstd1.ptr, inp: input, weight: w(ParamName.inputNorm(l)), m: nTok, c: C, eps: d.rmsEps) }
        let qn1 = quantize(s.n1.ptr, C)
        lin(.q, out: s.q.ptr, inp: s.n1.ptr, q: qn1, accumulate: false)
        lin(.k, out: s.k.ptr, inp: s.n1.ptr, q: qn1, accumulate: false)
        lin(.v, out: s.v.ptr, inp: s.n1.ptr, q: qn1, accumulate: false)
        OpProfiler.measure("rope") { b.positions.withUnsafeBufferPointer { pos in
            ropeForward(x: s.q.ptr, pos: pos.baseAddress!, nTok: nTok, nHeads: d.heads, ld: d.qDim, table: rope)
            ropeForward(x: s.k.ptr, pos: pos.baseAddress!, nTok: nTok, nHeads: d.kvHeads, ld: d.kvDim, table: rope)
        } }
        OpProfiler.measure("attention") { attentionForward(out: s.att.ptr, probs: s.probs.ptr, q: s.q.ptr, k: s.k.ptr, v: s.v.ptr,
                         segments: a.segments, nHeads: d.heads, nKVHeads: d.kvHeads, headDim: d.headDim) }
        // r2 = x + att·Woᵀ
        s.r2.ptr.update(from: input, count: nTok * C)
        lin(.o, out: s.r2.ptr, inp: s.att.ptr, q: quantize(s.att.ptr, d.qDim), accumulate: true)
        OpProfiler.measure("rmsnorm") { Fast.rmsnormForward(out: s.n2.ptr, rstd: s.rstd2.ptr, inp: s.r2.ptr, weight: w(ParamName.postNorm(l)), m: nTok, c: C, eps: d.rmsEps) }
        let qn2 = quantize(s.n2.ptr, C)
        lin(.gate, out: s.g.ptr, inp: s.n2.ptr, q: qn2, accumulate: false)
        lin(.up, out: s.u.ptr, inp: s.n2.ptr, q: qn2, accumulate: false)
        OpProfiler.measure("swiglu") { Fast.swigluForward(out: s.h.ptr, gate: s.g.ptr, up: s.u.ptr, count: nTok * d.intermediate) }
        // out = r2 + h·Wdᵀ
        output.update(from: s.r2.ptr, count: nTok * C)
        lin(.down, out: output, inp: s.h.ptr, q: quantize(s.h.ptr, d.intermediate), accumulate: true)
    }
}

extension ELLMRecModel {
    /// The last decoder layer at inference, computed only where it is read: keys and values
    /// for every token (the scored rows attend to them), queries, attention, o_proj and the
    /// MLP only for the R scored rows. Writes hidden.L (R, C).
    func lastLayerRowsForward(_ l: Int, input: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                              acts s: Activations.Layer, a: Activations, workspace: Workspace?) {
        let d = dims, C = d.hidden, b = a.batch, nTok = b.nTok, R = b.rows
        let q8 = int8Weights(training: false)
        func lin(_ kind: LinearKind, out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, m: Int, k: Int, accumulate: Bool) {
            linear(l, kind, out: out, inp: inp, q: q8?.quantize(inp, m: m, k: k, workspace: workspace), m: m, accumulate: accumulate, xa: s.xa)
        }
        // K, V over every token (one quantization of the normed input for both).
        Fast.rmsnormForward(out: s.n1.ptr, rstd: s.rstd1.ptr, inp: input, weight: w(ParamName.inputNorm(l)), m: nTok, c: C, eps: d.rmsEps)
        let qn1 = q8?.quantize(s.n1.ptr, m: nTok, k: C, workspace: workspace)
        linear(l, .k, out: s.k.ptr, inp: s.n1.ptr, q: qn1, m: nTok, accumulate: false, xa: s.xa)
        linear(l, .v, out: s.v.ptr, inp: s.n1.ptr, q: qn1, m: nTok, accumulate: false, xa: s.xa)
        b.positions.withUnsafeBufferPointer { pos in
            ropeForward(x: s.k.ptr, pos: pos.baseAddress!, nTok: nTok, nHeads: d.kvHeads, ld: d.kvDim, table: rope)
        }
        // Queries at the scored rows only.
        let xr = workspace.buffer("last.x", R * C), nr = workspace.buffer("last.n", R * C)
        gatherRows(xr.ptr, input, b.outRows, C)
        gatherRows(nr.ptr, s.n1.ptr, b.outRows, C)
        let qr = workspace.buffer("last.q", R * d.qDim), att = workspace.buffer("last.att", R * d.qDim)
        lin(.q, out: qr.ptr, inp: nr.ptr, m: R, k: C, accumulate: false)
        let rowPos = b.outRows.map { b.positions[$0] }
        rowPos.withUnsafeBufferPointer { pos in
            ropeForward(x: qr.ptr, pos: pos.baseAddress!, nTok: R, nHeads: d.heads, ld: d.qDim, table: rope)
        }
        // Attention of each scored row over the shared prefix and its own causal keys.
        let segOffset = b.prefix > 0 ? 1 : 0
        attentionRowsForward(out: att.ptr, q: qr.ptr, k: s.k.ptr, v: s.v.ptr, tokens: b.outRows,
                             rowSegments: b.rowSeq.map { a.segments[$0 + segOffset] }, nHeads: d.heads, nKVHeads: d.kvHeads, headDim: d.headDim)
        // r2 = x + o_proj(att);  out = r2 + down(silu(gate(n2)) · up(n2)), R rows.
        let r2 = workspace.buffer("last.r2", R * C), n2 = workspace.buffer("last.n2", R * C), rs = workspace.buffer("last.rstd", R)
        r2.ptr.update(from: xr.ptr, count: R * C)
        lin(.o, out: r2.ptr, inp: att.ptr, m: R, k: d.qDim, accumulate: true)
        Fast.rmsnormForward(out: n2.ptr, rstd: rs.ptr, inp: r2.ptr, weight: w(ParamName.postNorm(l)), m: R, c: C, eps: d.rmsEps)
        let I = d.intermediate
        let g = workspace.buffer("last.g", R * I), u = workspace.buffer("last.u", R * I), h = workspace.buffer("last.h", R * I)
        let qn2 = q8?.quantize(n2.ptr, m: R, k: C, workspace: workspace)
        linear(l, .gate, out: g.ptr, inp: n2.ptr, q: qn2, m: R, accumulate: false, xa: s.xa)
        linear(l, .up, out: u.ptr, inp: n2.ptr, q: qn2, m: R, accumulate: false, xa: s.xa)
        Fast.swigluForward(out: h.ptr, gate: g.ptr, up: u.ptr, count: R * I)
        out.update(from: r2.ptr, count: R * C)
        lin(.down, out: out, inp: h.ptr, m: R, k: I, accumulate: true)
    }
}

/// out[r, :] = src[rows[r], :]
@inline(__always)
func gatherRows(_ out: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ rows: [Int], _ c: Int) {
    for (r, t) in rows.enumerated() { (out + r * c).update(from: src + t * c, count: c) }
}

/// dst[rows[r], :] += src[r, :]
@inline(__always)
func scatterAddRows(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ rows: [Int], _ c: Int) {
    for (r, t) in rows.enumerated() { saxpy(c, 1, src + r * c, dst + t * c) }
}

extension ELLMRecModel {
    /// Inference: user vectors and full-ranking scores, no activations kept.
    public func infer(_ batch: PackedBatch, workspace: Workspace? = nil) -> Activations {
        forward(batch, training: false, workspace: workspace)
    }

    /// Inference up to the user vectors (R, D0) only: `a.user`; `a.scores` is empty.
    public func inferUsers(_ batch: PackedBatch, workspace: Workspace? = nil) -> Activations {
        forward(batch, training: false, scores: false, workspace: workspace)
    }
}

extension Activations {
    /// The residual stream entering layer k (k = 0: the inputs; k = L: the last layer's
    /// output), every token, (Ntok, C). Only kept by a forward run with `training: true`.
    public func residual(_ k: Int) -> UnsafeBufferPointer<Float>? {
        guard training, k < resid.count else { return nil }
        return UnsafeBufferPointer(start: resid[k].ptr, count: batch.nTok * (resid[k].count / max(batch.nTok, 1)))
    }
}
