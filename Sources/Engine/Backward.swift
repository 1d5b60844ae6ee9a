// The backward pass of ELLMRecModel, the forward in reverse, op by op. Parameter gradients
// accumulate (+=) into `grads` (zero them once per step); activation gradients live in
// buffers local to this call (or in the caller's Workspace).


/// What to differentiate and which extra gradients flow in.
public struct BackwardRequest {
    /// Gradients of the base tensors, same layout as the parameters; nil when the base is frozen.
    public var grads: ParamSet?
    /// Base tensors that receive gradients (nil: all of them).
    public var trainable: Set<String>?
    /// Gradients of the LoRA tensors, same layout as `model.lora.params`.
    public var loraGrads: ParamSet?
    /// Weight of the cross-entropy term (0 to backpropagate only the extra terms).
    public var ceWeight: Float = 1
    /// dLoss/d hidden.k at the scored rows, (R, C), for k = 0…L (layer-wise distillation).
    public var dHidden: [Int: [Float]] = [:]
    /// dLoss/d last_hidden (after model.norm), (R, C).
    public var dLastHidden: [Float]? = nil
    /// dLoss/d user vector, (R, D0) (extra heads).
    public var dUser: [Float]? = nil

    public init(grads: ParamSet? = nil, trainable: Set<String>? = nil, loraGrads: ParamSet? = nil) {
        self.grads = grads
        self.trainable = trainable
        self.loraGrads = loraGrads
    }

    func g(_ name: String) -> UnsafeMutablePointer<Float>? {
        guard let grads else { return nil }
        if let trainable, !trainable.contains(name) { return nil }
        return grads.ptr(name)
    }
}

extension ELLMRecModel {
    public func backward(_ a: Activations, _ req: BackwardRequest, workspace: Workspace? = nil) {
        precondition(a.training, "backward needs a forward pass run with training: true")
        let d = dims, C = d.hidden, b = a.batch, nTok = b.nTok, R = b.rows, cols = d.numItems + 1

        // Head: CE → scores → user → output_proj → model.norm.
        let dUser = FloatBuffer(count: R * d.itemDim)
        if let extra = req.dUser { extra.withUnsafeBufferPointer { saxpy(R * d.itemDim, 1, $0.baseAddress!, dUser.ptr) } }
        let table = UnsafePointer(w(ParamName.itemEmbedding))
        switch b.softmax {
        case .full:
            let dScores = workspace.buffer("bwd.dScores", R * cols)   // (R, N+1): R·N floats, reused across steps
            dScores.ptr.update(repeating: 0, count: R * cols)
            if req.ceWeight != 0 && !b.targets.isEmpty {
                crossEntropyBackward(dscores: dScores.ptr, probs: a.ceProbs.ptr, targets: b.targets, cols: cols, scale: req.ceWeight / Float(R))
            }
            linearBackward(dinp: dUser.ptr, dweight: req.g(ParamName.itemEmbedding), dbias: nil,
                           dout: dScores.ptr, inp: a.user.ptr, weight: table, m: R, n: cols, k: d.itemDim)
        case .streamed, .sampled:
            if req.ceWeight != 0 && !b.targets.isEmpty {
                b.targets.withUnsafeBufferPointer { tg in
                    let scale = req.ceWeight / Float(R)
                    if b.softmax == .streamed {
                        ItemSoftmaxLoss.streamedBackward(du: dUser.ptr, dtable: req.g(ParamName.itemEmbedding), u: a.user.ptr, table: table,
                                                         numItems: d.numItems, dim: d.itemDim, targets: tg.baseAddress!, rows: R,
                                                         lse: a.lse.ptr, scale: scale, workspace: workspace)
                    } else if let sample = b.sample {
                        _ = ItemSoftmaxLoss.sampled(du: dUser.ptr, dtable: req.g(ParamName.itemEmbedding), u: a.user.ptr, table: table,
                                                    dim: d.itemDim, targets: tg.baseAddress!, rows: R, sample: sample, scale: scale,
                                                    workspace: workspace)
                    }
                }
            }
        }
        let dLast = FloatBuffer(count: R * C)
        if let extra = req.dLastHidden { extra.withUnsafeBufferPointer { saxpy(R * C, 1, $0.baseAddress!, dLast.ptr) } }
        linearBackward(dinp: dLast.ptr, dweight: req.g(ParamName.outputProj), dbias: req.g(ParamName.outputProjBias),
                       dout: dUser.ptr, inp: a.lastHidden.ptr, weight: w(ParamName.outputProj), m: R, n: d.itemDim, k: C)
        let dRows = FloatBuffer(count: R * C)
        rmsnormBackward(dinp: dRows.ptr, dweight: req.g(ParamName.finalNorm), dout: dLast.ptr,
                        inp: a.hidden.ptr + d.layers * R * C, weight: w(ParamName.finalNorm), rstd: a.rstdF.ptr, m: R, c: C)
        addExtraHidden(dRows, req, d.layers, R * C)

        var dx = workspace.buffer("bwd.dxA", nTok * C)      // (Ntok, C) dLoss/d resid[l+1]
        var dxIn = workspace.buffer("bwd.dxB", nTok * C)
        dx.ptr.update(repeating: 0, count: nTok * C)
        scatterAddRows(dx.ptr, dRows.ptr, b.outRows, C)
        let ws = BackwardScratch(nTok: nTok, d: d, rank: lora?.rank ?? 0, dropout: !(a.layers.first?.xd.isEmpty ?? true), workspace: workspace)
        for l in stride(from: d.layers - 1, through: 0, by: -1) {
            layerBackward(l, dOut: dx.ptr, dIn: dxIn.ptr, input: a.resid[l].ptr, s: a.layers[l], a: a, req: req, ws: ws)
            dRows.zero()
            addExtraHidden(dRows, req, l, R * C)
            if req.dHidden[l] != nil { scatterAddRows(dxIn.ptr, dRows.ptr, b.outRows, C) }
            swap(&dx, &dxIn)
        }

        // Inputs: prompt / suffix rows and the item projection.
        if let dp = req.g(ParamName.prompt) {
            // The prompt rows are shared by the batch: their gradient already sums over users.
            saxpy(d.promptLength * C, 1, dx.ptr, dp)
        }
        if let ds = req.g(ParamName.suffix) {
            for s in 0..<b.count { saxpy(d.suffixLength * C, 1, dx.ptr + (b.seqStart[s + 1] - d.suffixLength) * C, ds) }
        }
        let dW = req.g(ParamName.inputProj), dB = req.g(ParamName.inputProjBias), dE = req.g(ParamName.itemEmbedding)
        if dW != nil || dB != nil || dE != nil {
            let nI = b.itemIds.count
            let dProj = FloatBuffer(count: nI * C)
            gatherRows(dProj.ptr, dx.ptr, b.itemTok.map { Int($0) }, C)
            let dEIn = dE != nil ? FloatBuffer(count: nI * d.itemDim) : nil
            linearBackward(dinp: dEIn?.ptr, dweight: dW, dbias: dB, dout: dProj.ptr, inp: a.eIn.ptr,
                           weight: w(ParamName.inputProj), m: nI, n: C, k: d.itemDim)
            if let dE, let dEIn { embeddingBackward(dtable: dE, dout: dEIn.ptr, ids: b.itemIds, dim: d.itemDim) }
        }
    }

    private func addExtraHidden(_ dRows: FloatBuffer, _ req: BackwardRequest, _ k: Int, _ n: Int) {
        if let extra = req.dHidden[k] {
            precondition(extra.count == n, "dHidden[\(k)] has \(extra.count) values, expected \(n)")
            extra.withUnsafeBufferPointer { saxpy(n, 1, $0.baseAddress!, dRows.ptr) }
        }
    }

    /// dx·W backward for linear `kind` of layer l, with LoRA when attached.
    private func projBackward(_ l: Int, _ kind: LinearKind, dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              inp: UnsafePointer<Float>, m: Int, s: Activations.Layer, req: BackwardRequest, ws: BackwardScratch) {
        let sh = kind.shape(dims)
        let name = ParamName.weight(l, kind)
        OpProfiler.measure("linear.bwd") { linearBackward(dinp: dinp, dweight: req.g(name), dbias: nil, dout: dout, inp: inp, weight: w(name), m: m, n: sh[0], k: sh[1]) }
        if let lora, lora.targets(kind) {
            let dropped = !s.xd.isEmpty
            let a = lora.params.req(ParamName.loraA(l, kind))
            OpProfiler.measure("lora.bwd") { loraBackward(dinp: dropped ? nil : dinp, da: req.loraGrads?.ptr(ParamName.loraA(l, kind)),
                         db: req.loraGrads?.ptr(ParamName.loraB(l, kind)),
                         scratch: ws.loraT.ptr, dout: dout, inp: dropped ? UnsafePointer(s.xd[kind.rawValue].ptr) : inp, xa: s.xa[kind.rawValue].ptr,
                         a: a, b: lora.params.req(ParamName.loraB(l, kind)),
                         scaling: lora.scaling, m: m, n: sh[0], k: sh[1], r: lora.rank) }
            if dropped {
                // dxd = s·(dout·B)·A (t = dout·B is in the scratch), then through the mask.
                if req.loraGrads?.ptr(ParamName.loraA(l, kind)) == nil {
                    sgemm(.none, .none, m: m, n: lora.rank, k: sh[0], a: dout, lda: sh[0], b: lora.params.req(ParamName.loraB(l, kind)), ldb: lora.rank, c: ws.loraT.ptr, ldc: lora.rank)
                }
                let dxd = ws.loraDX.ptr
                sgemm(.none, .none, m: m, n: sh[1], k: lora.rank, alpha: lora.scaling, a: ws.loraT.ptr, lda: lora.rank, b: a, ldb: sh[1], c: dxd, ldc: sh[1])
                var rng = lora.dropoutRNG(layer: l, kind: kind)
                dropoutMaskBackward(dinp: dinp, dout: dxd, count: m * sh[1], p: lora.dropout, rng: &rng)
            }
        }
    }

    private func layerBackward(_ l: Int, dOut: UnsafeMutablePointer<Float>, dIn: UnsafeMutablePointer<Float>,
                               input: UnsafeMutablePointer<Float>, s: Activations.Layer, a: Activations,
                               req: BackwardRequest, ws: BackwardScratch) {
        let d = dims, C = d.hidden, b = a.batch, nTok = b.nTok, nI = nTok * d.intermediate
        // MLP: out = r2 + down(silu(gate(n2)) ⊙ up(n2))
        ws.dh.ptr.update(repeating: 0, count: nI)
        projBackward(l, .down, dinp: ws.dh.ptr, dout: dOut, inp: s.h.ptr, m: nTok, s: s, req: req, ws: ws)
        OpProfiler.measure("swiglu.bwd") { Fast.swigluBackward(dgate: ws.dg.ptr, dup: ws.du.ptr, dout: ws.dh.ptr, gate: s.g.ptr, up: s.u.ptr, count: nI) }
        ws.dn.ptr.update(repeating: 0, count: nTok * C)
        projBackward(l, .gate, dinp: ws.dn.ptr, dout: ws.dg.ptr, inp: s.n2.ptr, m: nTok, s: s, req: req, ws: ws)
        projBackward(l, .up, dinp: ws.dn.ptr, dout: ws.du.ptr, inp: s.n2.ptr, m: nTok, s: s, req: req, ws: ws)
        // dr2 = dOut + rmsnorm_backward(dn2)
        ws.dr2.ptr.update(from: dOut, count: nTok * C)
        OpProfiler.measure("rmsnorm.bwd") { Fast.rmsnormBackward(dinp: ws.dr2.ptr, dweight: req.g(ParamName.postNorm(l)), dout: ws.dn.ptr, inp: s.r2.ptr, weight: w(ParamName.postNorm(l)), rstd: s.rstd2.ptr, m: nTok, c: C) }
        // Attention: r2 = x + o(attn(q, k, v))
        ws.datt.ptr.update(repeating: 0, count: nTok * d.qDim)
        projBackward(l, .o, dinp: ws.datt.ptr, dout: ws.dr2.ptr, inp: s.att.ptr, m: nTok, s: s, req: req, ws: ws)
        ws.dq.ptr.update(repeating: 0, count: nTok * d.qDim)
        ws.dk.ptr.update(repeating: 0, count: nTok * d.kvDim)
        ws.dv.ptr.update(repeating: 0, count: nTok * d.kvDim)
        OpProfiler.measure("attention.bwd") { attentionBackward(dq: ws.dq.ptr, dk: ws.dk.ptr, dv: ws.dv.ptr, dout: ws.datt.ptr, q: s.q.ptr, k: s.k.ptr, v: s.v.ptr,
                          probs: s.probs.ptr, segments: a.segments,
                          nHeads: d.heads, nKVHeads: d.kvHeads, headDim: d.headDim) }
        b.positions.withUnsafeBufferPointer { pos in
            ropeBackward(dx: ws.dq.ptr, pos: pos.baseAddress!, nTok: nTok, nHeads: d.heads, ld: d.qDim, table: rope)
            ropeBackward(dx: ws.dk.ptr, pos: pos.baseAddress!, nTok: nTok, nHeads: d.kvHeads, ld: d.kvDim, table: rope)
        }
        ws.dn.ptr.update(repeating: 0, count: nTok * C)
        projBackward(l, .q, dinp: ws.dn.ptr, dout: ws.dq.ptr, inp: s.n1.ptr, m: nTok, s: s, req: req, ws: ws)
        projBackward(l, .k, dinp: ws.dn.ptr, dout: ws.dk.ptr, inp: s.n1.ptr, m: nTok, s: s, req: req, ws: ws)
        projBackward(l, .v, dinp: ws.dn.ptr, dout: ws.dv.ptr, inp: s.n1.ptr, m: nTok, s: s, req: req, ws: ws)
        // dIn = dr2 + rmsnorm_backward(dn1)
        dIn.update(from: ws.dr2.ptr, count: nTok * C)
        OpProfiler.measure("rmsnorm.bwd") { Fast.rmsnormBackward(dinp: dIn, dweight: req.g(ParamName.inputNorm(l)), dout: ws.dn.ptr, inp: input, weight: w(ParamName.inputNorm(l)), rstd: s.rstd1.ptr, m: nTok, c: C) }
    }
}

/// Activation-gradient buffers shared by all layers of one backward call.
final class BackwardScratch {
    let dh, dg, du, dn, dr2, datt, dq, dk, dv, loraT, loraDX: FloatBuffer
    init(nTok: Int, d: ModelDims, rank: Int, dropout: Bool, workspace w: Workspace?) {
        dh = w.buffer("bwd.dh", nTok * d.intermediate)    // (Ntok, I)
        dg = w.buffer("bwd.dg", nTok * d.intermediate)
        du = w.buffer("bwd.du", nTok * d.intermediate)
        dn = w.buffer("bwd.dn", nTok * d.hidden)          // (Ntok, C)
        dr2 = w.buffer("bwd.dr2", nTok * d.hidden)
        datt = w.buffer("bwd.datt", nTok * d.qDim)        // (Ntok, NH·HD)
        dq = w.buffer("bwd.dq", nTok * d.qDim)
        dk = w.buffer("bwd.dk", nTok * d.kvDim)           // (Ntok, NKV·HD)
        dv = w.buffer("bwd.dv", nTok * d.kvDim)
        loraT = w.buffer("bwd.loraT", max(1, nTok * rank)) // (Ntok, r)
        loraDX = w.buffer("bwd.loraDX", dropout ? nTok * max(d.hidden, d.qDim, d.intermediate) : 1)   // (Ntok, in), LoRA dropout only
    }
}
