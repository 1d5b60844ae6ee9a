import Foundation
import Common
import Engine
import ModelFormat

/// Hyper-parameters of the network (what `config.json` records under "model").
public struct SASRecConfig: Codable, Sendable, Equatable {
    /// N: items are 1…N, row 0 of the item table is padding.
    public var numItems: Int
    /// C: hidden size = item embedding size (the output layer is tied to the item table).
    public var hidden: Int = 64
    public var layers: Int = 2
    public var heads: Int = 2
    /// Most recent items the model reads; also the number of positional embeddings.
    public var maxLen: Int = 50
    /// Dropout on the embeddings, the attention output and both feed-forward layers.
    public var dropout: Float = 0.5
    public var activation: PointwiseActivation = .relu
    public var layerNormEps: Float = 1e-8

    public init(numItems: Int, hidden: Int = 64, layers: Int = 2, heads: Int = 2, maxLen: Int = 50,
                dropout: Float = 0.5, activation: PointwiseActivation = .relu, layerNormEps: Float = 1e-8) {
        self.numItems = numItems; self.hidden = hidden; self.layers = layers; self.heads = heads
        self.maxLen = maxLen; self.dropout = dropout; self.activation = activation; self.layerNormEps = layerNormEps
    }

    enum CodingKeys: String, CodingKey {
        case numItems = "num_items", hidden = "hidden_size", layers = "num_layers", heads = "num_heads"
        case maxLen = "max_len", dropout, activation = "hidden_act", layerNormEps = "layer_norm_eps"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numItems = try c.decode(Int.self, forKey: .numItems)
        hidden = try c.decodeIfPresent(Int.self, forKey: .hidden) ?? 64
        layers = try c.decodeIfPresent(Int.self, forKey: .layers) ?? 2
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? 2
        maxLen = try c.decodeIfPresent(Int.self, forKey: .maxLen) ?? 50
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0.5
        activation = try c.decodeIfPresent(PointwiseActivation.self, forKey: .activation) ?? .relu
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-8
    }

    /// Checks the shape constraints; the message says which option to change.
    public func validate() throws {
        if numItems < 1 { throw SASRecError("the dataset has no items") }
        for (n, v) in [("--hidden", hidden), ("--layers", layers), ("--heads", heads), ("--max-len", maxLen)] where v < 1 {
            throw SASRecError("\(n) must be at least 1 (got \(v))")
        }
        if hidden % heads != 0 { throw SASRecError("--hidden \(hidden) is not divisible by --heads \(heads)") }
        if !(dropout >= 0 && dropout < 1) { throw SASRecError("--dropout must be in [0, 1) (got \(dropout))") }
    }
}

public struct SASRecError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Tensor names, as in pmixer/SASRec.pytorch's state dict (conv1/conv2 are kernel-size-1
/// Conv1d there, stored here as the equivalent (out, in) linear weights).
public enum SASRecNames {
    public static let itemEmbedding = "item_emb.weight"
    public static let posEmbedding = "pos_emb.weight"
    public static func attnNorm(_ l: Int) -> String { "attention_layernorms.\(l)" }
    public static func attn(_ l: Int) -> String { "attention_layers.\(l)" }
    public static func ffnNorm(_ l: Int) -> String { "forward_layernorms.\(l)" }
    public static func ffn(_ l: Int) -> String { "forward_layers.\(l)" }
    public static let lastNorm = "last_layernorm"
    /// The tensor name `item_embeddings.safetensors` uses (what `slmrec init --item-embeddings` reads).
    public static let exportedItemEmbedding = "item_embedding.weight"
}

/// A packed batch: the tokens of sequence b occupy rows seqStart[b]..<seqStart[b+1] (no padding).
public struct SASRecBatch: Sendable {
    /// (T) item ids, (T) position ids, (T) next-item targets (training only).
    public var ids: [Int32] = []
    public var positions: [Int32] = []
    public var targets: [Int32]?
    public var seqStart: [Int] = [0]
    public var tokens: Int { ids.count }
    public var sequences: Int { seqStart.count - 1 }

    /// Position ids count back from the most recent item: in a window of n ≤ maxLen items,
    /// item t gets position maxLen − n + t, exactly the slot it has in the original's
    /// left-padded input, so the last item always sees the same positional embedding.
    public init(inputs: [ArraySlice<Int32>], targets: [ArraySlice<Int32>]?, maxLen: Int) {
        let total = inputs.reduce(0) { $0 + $1.count }
        ids.reserveCapacity(total); positions.reserveCapacity(total)
        if targets != nil { self.targets = []; self.targets!.reserveCapacity(total) }
        for (b, inp) in inputs.enumerated() {
            precondition(!inp.isEmpty && inp.count <= maxLen, "SASRecBatch: sequence of length \(inp.count) (max \(maxLen))")
            ids.append(contentsOf: inp)
            for t in 0..<inp.count { positions.append(Int32(maxLen - inp.count + t)) }
            if let targets {
                precondition(targets[b].count == inp.count)
                self.targets!.append(contentsOf: targets[b])
            }
            seqStart.append(ids.count)
        }
    }
}

/// The network: parameters in one buffer (Engine's ParamSet) plus forward and backward.
public final class SASRecModel: @unchecked Sendable {
    public let config: SASRecConfig
    public let layout: ParamLayout
    public let params: ParamSet

    public static func layout(_ c: SASRecConfig) -> ParamLayout {
        let d = c.hidden
        var l = ParamLayout()
        l.append(SASRecNames.itemEmbedding, [c.numItems + 1, d])
        l.append(SASRecNames.posEmbedding, [c.maxLen, d])
        for i in 0..<c.layers {
            l.append(SASRecNames.attnNorm(i) + ".weight", [d]); l.append(SASRecNames.attnNorm(i) + ".bias", [d])
            l.append(SASRecNames.attn(i) + ".in_proj_weight", [3 * d, d]); l.append(SASRecNames.attn(i) + ".in_proj_bias", [3 * d])
            l.append(SASRecNames.attn(i) + ".out_proj.weight", [d, d]); l.append(SASRecNames.attn(i) + ".out_proj.bias", [d])
            l.append(SASRecNames.ffnNorm(i) + ".weight", [d]); l.append(SASRecNames.ffnNorm(i) + ".bias", [d])
            l.append(SASRecNames.ffn(i) + ".conv1.weight", [d, d]); l.append(SASRecNames.ffn(i) + ".conv1.bias", [d])
            l.append(SASRecNames.ffn(i) + ".conv2.weight", [d, d]); l.append(SASRecNames.ffn(i) + ".conv2.bias", [d])
        }
        l.append(SASRecNames.lastNorm + ".weight", [d]); l.append(SASRecNames.lastNorm + ".bias", [d])
        return l
    }

    /// Xavier-normal weights and embeddings (the official PyTorch port's initialisation),
    /// zero biases, unit LayerNorm gains; the padding row of the item table is zero and
    /// stays zero (it is never an input and never a class, so its gradient is zero).
    public init(config: SASRecConfig, seed: UInt64) {
        self.config = config
        layout = Self.layout(config)
        params = ParamSet(layout: layout)
        var rng = SeededRNG(seed: seed, stream: "sasrec-init")
        for e in layout.entries {
            let p = params.buffer.ptr + e.offset
            if e.shape.count == 1 && e.name.hasSuffix(".weight") {   // LayerNorm gains
                p.update(repeating: 1, count: e.count)
            } else if e.shape.count == 2 {
                let std = (2 / Float(e.shape[0] + e.shape[1])).squareRoot()
                for i in 0..<e.count { p[i] = rng.nextNormal() * std }
            }
        }
        params.req(SASRecNames.itemEmbedding).update(repeating: 0, count: config.hidden)
    }

    public init(config: SASRecConfig, params: ParamSet) {
        precondition(params.layout == Self.layout(config))
        self.config = config; self.layout = params.layout; self.params = params
    }

    /// Trainable scalars (the layout's 16-float alignment padding not counted).
    public var parameterCount: Int { layout.entries.reduce(0) { $0 + $1.count } }

    // MARK: forward / backward

    /// Runs the network on a packed batch; dropout only when `training`. Returns the
    /// final hidden states h (T, C), valid until the next call with the same workspace.
    public func forward(_ b: SASRecBatch, workspace ws: Workspace, training: Bool, rng: inout SeededRNG) -> UnsafeMutablePointer<Float> {
        let c = config, d = c.hidden, T = b.tokens, n = T * d
        let p = training ? c.dropout : 0
        let sqrtD = Float(d).squareRoot()
        let E = params.req(SASRecNames.itemEmbedding), P = params.req(SASRecNames.posEmbedding)
        let (segments, probTotal) = attentionSegments(seqStart: b.seqStart, prefix: 0, nHeads: c.heads)
        // Embedding: e = E[id]·√C + P[pos] (the original scales the item embedding by √C).
        let e = ws.get("emb", n).ptr, m0 = ws.get("emb.mask", n).ptr, x0 = ws.get("x0", n).ptr
        for t in 0..<T {
            let er = e + t * d, ir = E + Int(b.ids[t]) * d, pr = P + Int(b.positions[t]) * d
            for j in 0..<d { er[j] = ir[j] * sqrtD + pr[j] }
        }
        dropoutForward(out: x0, mask: m0, inp: e, count: n, p: p, rng: &rng)
        var x = x0
        for l in 0..<c.layers {
            let a = LayerBuffers(ws, l, n: n, tokens: T, probs: probTotal)
            let w = LayerWeights(params, l, d: d)
            layernormForward(out: a.ln1, mean: a.ln1m, rstd: a.ln1r, inp: x, weight: w.ln1w, bias: w.ln1b, m: T, c: d, eps: c.layerNormEps)
            linearForward(out: a.q, inp: a.ln1, weight: w.wq, bias: w.bq, m: T, n: d, k: d)
            linearForward(out: a.k, inp: x, weight: w.wk, bias: w.bk, m: T, n: d, k: d)
            linearForward(out: a.v, inp: x, weight: w.wv, bias: w.bv, m: T, n: d, k: d)
            attentionForward(out: a.att, probs: a.probs, q: a.q, k: a.k, v: a.v, segments: segments,
                             nHeads: c.heads, nKVHeads: c.heads, headDim: d / c.heads)
            linearForward(out: a.o, inp: a.att, weight: w.wo, bias: w.bo, m: T, n: d, k: d)
            dropoutForward(out: a.od, mask: a.om, inp: a.o, count: n, p: p, rng: &rng)
            residualForward(out: a.x1, a: a.ln1, b: a.od, count: n)
            layernormForward(out: a.y, mean: a.ln2m, rstd: a.ln2r, inp: a.x1, weight: w.ln2w, bias: w.ln2b, m: T, c: d, eps: c.layerNormEps)
            linearForward(out: a.f1, inp: a.y, weight: w.w1, bias: w.b1, m: T, n: d, k: d)
            activationForward(c.activation, out: a.act, inp: a.f1, count: n)
            dropoutForward(out: a.actd, mask: a.actm, inp: a.act, count: n, p: p, rng: &rng)
            linearForward(out: a.f2, inp: a.actd, weight: w.w2, bias: w.b2, m: T, n: d, k: d)
            dropoutForward(out: a.f2d, mask: a.f2m, inp: a.f2, count: n, p: p, rng: &rng)
            residualForward(out: a.x2, a: a.y, b: a.f2d, count: n)
            x = a.x2
        }
        let h = ws.get("h", n).ptr
        layernormForward(out: h, mean: ws.get("hn.mean", T).ptr, rstd: ws.get("hn.rstd", T).ptr, inp: x,
                         weight: params.req(SASRecNames.lastNorm + ".weight"), bias: params.req(SASRecNames.lastNorm + ".bias"),
                         m: T, c: d, eps: c.layerNormEps)
        return h
    }

    /// Forward + loss + backward for one training batch. Gradients are ACCUMULATED into
    /// `grads` (zero it first). The loss is the mean CE over the batch's T target positions;
    /// returns (Σ loss, T).
    @discardableResult
    public func trainStep(_ b: SASRecBatch, grads: ParamSet, workspace ws: Workspace, rng: inout SeededRNG, ceChunk: Int = 512,
                          softmax: ItemSoftmax = .full, sample: SampledItems? = nil) -> (lossSum: Double, count: Int) {
        guard let targets = b.targets else { preconditionFailure("trainStep needs targets") }
        let c = config, d = c.hidden, T = b.tokens, n = T * d
        let h = forward(b, workspace: ws, training: true, rng: &rng)
        let E = params.req(SASRecNames.itemEmbedding), dE = grads.req(SASRecNames.itemEmbedding)
        let dh = ws.get("g.h", n).ptr
        dh.update(repeating: 0, count: n)
        let lossSum = targets.withUnsafeBufferPointer { tg -> Double in
            if softmax == .full {
                return tiedCrossEntropyForwardBackward(dh: dh, dtable: dE, h: h, table: E, targets: tg.baseAddress!, rows: T,
                                                       cols: c.numItems + 1, dim: d, scale: 1 / Float(T), chunk: ceChunk, workspace: ws)
            }
            return ItemSoftmaxLoss.lossAndGradients(softmax, sample: sample, du: dh, dtable: dE, u: h, table: E, numItems: c.numItems,
                                                    dim: d, targets: tg.baseAddress!, rows: T, scale: 1 / Float(T), workspace: ws)
        }
        backward(b, dh: dh, grads: grads, workspace: ws)
        return (lossSum, T)
    }

    /// Back-propagates dh (T, C) through the network of the last `forward` on `ws`.
    public func backward(_ b: SASRecBatch, dh: UnsafePointer<Float>, grads g: ParamSet, workspace ws: Workspace) {
        let c = config, d = c.hidden, T = b.tokens, n = T * d
        let (segments, probTotal) = attentionSegments(seqStart: b.seqStart, prefix: 0, nHeads: c.heads)
        func zeroed(_ key: String) -> UnsafeMutablePointer<Float> {
            let p = ws.get(key, n).ptr
            p.update(repeating: 0, count: n)
            return p
        }
        let xLast = c.layers == 0 ? ws.get("x0", n).ptr : LayerBuffers(ws, c.layers - 1, n: n, tokens: T, probs: probTotal).x2
        var dx = zeroed("g.xa"), spare = ws.get("g.xb", n).ptr
        layernormBackward(dinp: dx, dweight: g.req(SASRecNames.lastNorm + ".weight"), dbias: g.req(SASRecNames.lastNorm + ".bias"),
                          dout: dh, inp: xLast, weight: params.req(SASRecNames.lastNorm + ".weight"),
                          mean: ws.get("hn.mean", T).ptr, rstd: ws.get("hn.rstd", T).ptr, m: T, c: d)
        for l in stride(from: c.layers - 1, through: 0, by: -1) {
            let a = LayerBuffers(ws, l, n: n, tokens: T, probs: probTotal)
            let w = LayerWeights(params, l, d: d), gw = LayerWeights(g, l, d: d)
            let xin = l == 0 ? ws.get("x0", n).ptr : LayerBuffers(ws, l - 1, n: n, tokens: T, probs: probTotal).x2
            // x2 = y + dropout(conv2(dropout(act(conv1(y)))))
            let dy = ws.get("g.y", n).ptr
            dy.update(from: dx, count: n)
            let df2 = zeroed("g.t1")
            dropoutBackward(dinp: df2, dout: dx, mask: a.f2m, count: n)
            let dactd = zeroed("g.t2")
            linearBackward(dinp: dactd, dweight: gw.w2, dbias: gw.b2, dout: df2, inp: a.actd, weight: w.w2, m: T, n: d, k: d)
            let dact = zeroed("g.t1")
            dropoutBackward(dinp: dact, dout: dactd, mask: a.actm, count: n)
            let df1 = zeroed("g.t2")
            activationBackward(c.activation, dinp: df1, dout: dact, inp: a.f1, count: n)
            linearBackward(dinp: dy, dweight: gw.w1, dbias: gw.b1, dout: df1, inp: a.y, weight: w.w1, m: T, n: d, k: d)
            // y = LN2(x1)
            let dx1 = zeroed("g.x1")
            layernormBackward(dinp: dx1, dweight: gw.ln2w, dbias: gw.ln2b, dout: dy, inp: a.x1, weight: w.ln2w,
                              mean: a.ln2m, rstd: a.ln2r, m: T, c: d)
            // x1 = ln1 + dropout(out_proj(attn(q(ln1), k(x), v(x))))
            let dln1 = ws.get("g.ln1", n).ptr
            dln1.update(from: dx1, count: n)
            let dout = zeroed("g.t1")
            dropoutBackward(dinp: dout, dout: dx1, mask: a.om, count: n)
            let datt = zeroed("g.t2")
            linearBackward(dinp: datt, dweight: gw.wo, dbias: gw.bo, dout: dout, inp: a.att, weight: w.wo, m: T, n: d, k: d)
            let dq = zeroed("g.q"), dk = zeroed("g.k"), dv = zeroed("g.v")
            attentionBackward(dq: dq, dk: dk, dv: dv, dout: datt, q: a.q, k: a.k, v: a.v, probs: a.probs,
                              segments: segments, nHeads: c.heads, nKVHeads: c.heads, headDim: d / c.heads)
            linearBackward(dinp: dln1, dweight: gw.wq, dbias: gw.bq, dout: dq, inp: a.ln1, weight: w.wq, m: T, n: d, k: d)
            let dxin = spare
            dxin.update(repeating: 0, count: n)
            linearBackward(dinp: dxin, dweight: gw.wk, dbias: gw.bk, dout: dk, inp: xin, weight: w.wk, m: T, n: d, k: d)
            linearBackward(dinp: dxin, dweight: gw.wv, dbias: gw.bv, dout: dv, inp: xin, weight: w.wv, m: T, n: d, k: d)
            // ln1 = LN1(xin)
            layernormBackward(dinp: dxin, dweight: gw.ln1w, dbias: gw.ln1b, dout: dln1, inp: xin, weight: w.ln1w,
                              mean: a.ln1m, rstd: a.ln1r, m: T, c: d)
            spare = dx
            dx = dxin
        }
        // x0 = dropout(E[id]·√C + P[pos])
        let de = zeroed("g.t1")
        dropoutBackward(dinp: de, dout: dx, mask: ws.get("emb.mask", n).ptr, count: n)
        let sqrtD = Float(d).squareRoot()
        let dE = g.req(SASRecNames.itemEmbedding), dP = g.req(SASRecNames.posEmbedding)
        for t in 0..<T {
            saxpy(d, sqrtD, de + t * d, dE + Int(b.ids[t]) * d)
            saxpy(d, 1, de + t * d, dP + Int(b.positions[t]) * d)
        }
    }

    /// Scores of every item (N+1 columns, column 0 padding) after the LAST item of each
    /// sequence in `b`: out (B, N+1). Dropout off.
    public func scoreLast(_ b: SASRecBatch, workspace ws: Workspace) -> UnsafeMutablePointer<Float> {
        let d = config.hidden, B = b.sequences, cols = config.numItems + 1
        let last = lastStates(b, workspace: ws)
        let scores = ws.get("scores", B * cols).ptr
        // The floats StreamedRanking ranks on (ItemScores), not sgemm's.
        ItemScores.tile(users: last, count: B, dim: d, table: params.req(SASRecNames.itemEmbedding), from: 0, n: cols, out: scores, ldo: cols, workspace: ws)
        return scores
    }
}

extension SASRecModel {
    /// The user vectors: the hidden state after the LAST item of each sequence in `b`, (B, hidden).
    /// Dropout off. Valid until the workspace's next use.
    public func lastStates(_ b: SASRecBatch, workspace ws: Workspace) -> UnsafeMutablePointer<Float> {
        let d = config.hidden, B = b.sequences
        var unused = SeededRNG(seed: 0)   // dropout is off: never drawn from
        let h = forward(b, workspace: ws, training: false, rng: &unused)
        let last = ws.get("last", B * d).ptr
        for s in 0..<B { (last + s * d).update(from: h + (b.seqStart[s + 1] - 1) * d, count: d) }
        return last
    }
}

/// Views of one block's weights (or gradients) inside a ParamSet.
struct LayerWeights {
    let ln1w, ln1b, wq, bq, wk, bk, wv, bv, wo, bo, ln2w, ln2b, w1, b1, w2, b2: UnsafeMutablePointer<Float>
    init(_ p: ParamSet, _ l: Int, d: Int) {
        ln1w = p.req(SASRecNames.attnNorm(l) + ".weight"); ln1b = p.req(SASRecNames.attnNorm(l) + ".bias")
        let inW = p.req(SASRecNames.attn(l) + ".in_proj_weight"), inB = p.req(SASRecNames.attn(l) + ".in_proj_bias")
        wq = inW; wk = inW + d * d; wv = inW + 2 * d * d
        bq = inB; bk = inB + d; bv = inB + 2 * d
        wo = p.req(SASRecNames.attn(l) + ".out_proj.weight"); bo = p.req(SASRecNames.attn(l) + ".out_proj.bias")
        ln2w = p.req(SASRecNames.ffnNorm(l) + ".weight"); ln2b = p.req(SASRecNames.ffnNorm(l) + ".bias")
        w1 = p.req(SASRecNames.ffn(l) + ".conv1.weight"); b1 = p.req(SASRecNames.ffn(l) + ".conv1.bias")
        w2 = p.req(SASRecNames.ffn(l) + ".conv2.weight"); b2 = p.req(SASRecNames.ffn(l) + ".conv2.bias")
    }
}

/// One block's cached activations, (T, C) unless noted, from the workspace.
struct LayerBuffers {
    let ln1, ln1m, ln1r, q, k, v, att, probs, o, om, od, x1, y, ln2m, ln2r, f1, act, actm, actd, f2, f2m, f2d, x2: UnsafeMutablePointer<Float>
    init(_ ws: Workspace, _ l: Int, n: Int, tokens T: Int, probs np: Int) {
        func g(_ k: String, _ c: Int) -> UnsafeMutablePointer<Float> { ws.get("L\(l).\(k)", c).ptr }
        ln1 = g("ln1", n); ln1m = g("ln1m", T); ln1r = g("ln1r", T)   // ln1m, ln1r: (T)
        q = g("q", n); k = g("k", n); v = g("v", n); att = g("att", n)
        probs = g("probs", np)                                        // (Σ NH·n²)
        o = g("o", n); om = g("om", n); od = g("od", n); x1 = g("x1", n)
        y = g("y", n); ln2m = g("ln2m", T); ln2r = g("ln2r", T)
        f1 = g("f1", n); act = g("act", n); actm = g("actm", n); actd = g("actd", n)
        f2 = g("f2", n); f2m = g("f2m", n); f2d = g("f2d", n); x2 = g("x2", n)
    }
}
