import Foundation
import Common
import ModelFormat
import Engine
import Toolbench

// The maths of layer pruning as pure functions.

public enum LayerRenumbering {
    /// Keeps the decoder layers `keep` (ascending old indices): old layer keep[j] becomes layer
    /// j, every other tensor is copied unchanged, and num_hidden_layers (plus a per-layer
    /// `layer_types` list, if config.json has one) follows.
    public static func keep(_ keep: [Int], of ck: Checkpoint) -> Checkpoint {
        var tensors: [String: Tensor] = [:]
        let newIndex = Dictionary(uniqueKeysWithValues: keep.enumerated().map { ($1, $0) })
        for (name, t) in ck.tensors {
            guard name.hasPrefix("model.layers.") else { tensors[name] = t; continue }
            let rest = name.dropFirst("model.layers.".count)
            guard let dot = rest.firstIndex(of: "."), let old = Int(rest[..<dot]) else { tensors[name] = t; continue }
            guard let j = newIndex[old] else { continue }
            tensors[TensorNames.layerPrefix(j) + rest[rest.index(after: dot)...]] = t
        }
        var config = ck.config
        config.numLayers = keep.count
        if case .array(let types)? = config.raw["layer_types"], types.count == ck.config.numLayers {
            config.raw["layer_types"] = .array(keep.map { types[$0] })
        }
        return Checkpoint(config: config, tensors: tensors)
    }
}

public enum LayerScores {
    /// Block Influence (ShortGPT, Men et al. 2024, eq. 1): BI_l = 1 − E[cos(x_l, x_{l+1})], where
    /// x_l is the hidden state entering layer l and x_{l+1} the one leaving it, averaged over
    /// every valid token (prompt, items, suffix) of every calibration sequence. A layer that
    /// barely turns the residual stream has low BI and is the first to go.
    public static func blockInfluence(model: ELLMRecModel, sequences: [[Int32]], batchSize: Int,
                                      progress: ProgressReporter? = nil) throws -> [Double] {
        let L = model.dims.layers, C = model.dims.hidden
        var sum = [Double](repeating: 0, count: L), tokens = 0
        var done = 0
        for start in stride(from: 0, to: sequences.count, by: max(batchSize, 1)) {
            let chunk = Array(sequences[start..<min(start + batchSize, sequences.count)])
            let batch = try PackedBatch(sequences: chunk, targets: nil, dims: model.dims)
            let acts = model.forward(batch, training: true)
            let n = batch.nTok
            for l in 0..<L {
                guard let a = acts.residual(l), let b = acts.residual(l + 1) else {
                    throw passError("the engine kept no residual stream", fix: "this is a bug (forward must run with training: true)")
                }
                // The prompt rows [0, P) are computed once per batch but belong to every
                // sequence: weight them by the number of sequences.
                for t in 0..<n {
                    let w = t < batch.prefix ? Double(batch.count) : 1
                    sum[l] += w * cosine(a.baseAddress! + t * C, b.baseAddress! + t * C, C)
                }
            }
            tokens += batch.prefix * batch.count + (n - batch.prefix)
            done += chunk.count
            if done < sequences.count { progress?.update(done) }
        }
        progress?.finish()
        return sum.map { 1 - $0 / Double(max(tokens, 1)) }
    }

    /// Angular distance (Gromov et al. 2024, eq. 7): d(x^ℓ, x^{ℓ+n}) = arccos(cos(x^ℓ_T, x^{ℓ+n}_T)) / π
    /// between the last-position states entering layer ℓ and layer ℓ+n, averaged over the
    /// calibration sequences; entry ℓ (0 … L−n) scores dropping layers ℓ … ℓ+n−1.
    public static func angularDistances(model: ELLMRecModel, sequences: [[Int32]], block n: Int, batchSize: Int,
                                        progress: ProgressReporter? = nil) throws -> [Double] {
        let L = model.dims.layers, C = model.dims.hidden
        guard n >= 0 && n <= L else { throw passError("block size \(n) for \(L) layers", fix: "keep between 1 and \(L) layers") }
        var sum = [Double](repeating: 0, count: L - n + 1), count = 0
        var done = 0
        for start in stride(from: 0, to: sequences.count, by: max(batchSize, 1)) {
            let chunk = Array(sequences[start..<min(start + batchSize, sequences.count)])
            let batch = try PackedBatch(sequences: chunk, targets: nil, dims: model.dims)
            let acts = model.forward(batch, training: false)
            let states = (0...L).map { acts.hiddenState($0, dims: model.dims) }   // (L+1) × (R, C)
            for l in 0...(L - n) {
                states[l].withUnsafeBufferPointer { a in
                    states[l + n].withUnsafeBufferPointer { b in
                        for r in 0..<batch.rows {
                            let c = min(max(cosine(a.baseAddress! + r * C, b.baseAddress! + r * C, C), -1), 1)
                            sum[l] += acos(c) / Double.pi
                        }
                    }
                }
            }
            count += batch.rows
            done += chunk.count
            if done < sequences.count { progress?.update(done) }
        }
        progress?.finish()
        return sum.map { $0 / Double(max(count, 1)) }
    }

    /// cos(a, b) in Double; 1 when either vector is zero (an identity layer on a zero stream
    /// changes nothing).
    static func cosine(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Double {
        var ab = 0.0, aa = 0.0, bb = 0.0
        for i in 0..<n {
            let x = Double(a[i]), y = Double(b[i])
            ab += x * y; aa += x * x; bb += y * y
        }
        return aa == 0 || bb == 0 ? 1 : ab / (aa.squareRoot() * bb.squareRoot())
    }

    /// The `count` layers with the highest score, in layer order (ties keep the earlier layer).
    public static func keepHighest(_ scores: [Double], count: Int) -> [Int] {
        let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        return Array(order.prefix(count)).sorted()
    }

    /// Index of the smallest value (the first on ties).
    public static func argmin(_ v: [Double]) -> Int {
        var best = 0
        for i in v.indices where v[i] < v[best] { best = i }
        return best
    }
}

/// Calibration sequences read straight from a prepared dataset's `sequences.txt` (one user per
/// line, `USER ITEM ITEM …`, oldest first): the first `users` lines, each without its last two
/// items (the validation and test targets, so calibration never sees them), truncated to the
/// most recent `maxLength` items. Users left with no item are skipped.
public enum CalibrationData {
    public static func sequences(directory: URL, users: Int, maxLength: Int, numItems: Int) throws -> [[Int32]] {
        let url = directory.appendingPathComponent("sequences.txt")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw passError("\(url.path): cannot read sequences.txt", fix: "point \"data\" to a prepared dataset directory (slmrec data prepare)")
        }
        var out: [[Int32]] = []
        var lineNo = 0
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true) {
            if out.count >= users { break }
            lineNo += 1
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            var items: [Int32] = []
            for f in fields.dropFirst() {
                guard let id = Int32(f), id >= 1, Int(id) <= numItems else {
                    throw passError("\(url.path):\(lineNo): item \"\(f)\" is not an id in 1…\(numItems)",
                                    fix: "calibrate with the dataset the model was trained on (num_items \(numItems))")
                }
                items.append(id)
            }
            let history = items.dropLast(2).suffix(maxLength)
            if !history.isEmpty { out.append(Array(history)) }
        }
        if out.isEmpty { throw passError("\(url.path): no user with history", fix: "check the dataset") }
        return out
    }
}
