import Foundation

// AdamW (Loshchilov & Hutter 2019), as torch.optim.AdamW computes it:
//   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
//   θ ← θ − lr·wd·θ − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)
// The moments reuse the parameter layout (one buffer each).

public struct AdamWConfig: Sendable, Codable, Equatable {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var eps: Float = 1e-8
    public var weightDecay: Float = 0.01
    public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }
}

public final class AdamW: @unchecked Sendable {
    public let config: AdamWConfig
    public let m: ParamSet
    public let v: ParamSet
    public private(set) var step = 0

    public init(layout: ParamLayout, config: AdamWConfig = AdamWConfig()) {
        self.config = config
        m = ParamSet(layout: layout)
        v = ParamSet(layout: layout)
    }

    /// One update of the tensors named in `names` (nil: all of `grads`), at learning rate `lr`.
    /// `grads` and the moments share a layout that may hold only the trainable tensors of
    /// `params` (each found in `params` by name). `noDecay` tensors (norms, biases) get no
    /// weight decay, the usual convention.
    public func update(params: ParamSet, grads: ParamSet, lr: Float, names: Set<String>? = nil, noDecay: (String) -> Bool = { _ in false }) {
        precondition(grads.layout == m.layout, "AdamW: gradients and moments have different layouts")
        step += 1
        let c = config
        let bc1 = 1 - powf(c.beta1, Float(step)), bc2 = 1 - powf(c.beta2, Float(step))
        let stepSize = lr / bc1
        let bc2Sqrt = bc2.squareRoot()
        for e in grads.layout.entries {
            if let names, !names.contains(e.name) { continue }
            precondition(params.layout.entry(e.name)?.shape == e.shape, "AdamW: \(e.name) has another shape in the parameters")
            let p = params.req(e.name), g = grads.buffer.ptr + e.offset
            let mm = m.buffer.ptr + e.offset, vv = v.buffer.ptr + e.offset
            let decay = noDecay(e.name) ? 0 : lr * c.weightDecay
            for i in 0..<e.count {
                let gi = g[i]
                mm[i] = c.beta1 * mm[i] + (1 - c.beta1) * gi
                vv[i] = c.beta2 * vv[i] + (1 - c.beta2) * gi * gi
                p[i] -= decay * p[i]
                p[i] -= stepSize * mm[i] / (vv[i].squareRoot() / bc2Sqrt + c.eps)
            }
        }
    }

    /// Restores the step counter (for exact resume).
    public func setStep(_ s: Int) { step = s }
}
