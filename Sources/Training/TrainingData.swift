import Engine
import RecData

/// One training example: an input sequence (oldest first) and the item after it.
public struct TrainSample: Sendable, Equatable {
    public let input: [Int32]
    public let target: Int32
    public init(input: [Int32], target: Int32) { self.input = input; self.target = target }
}

public enum TrainingSamples {
    /// Training examples from each user's training sequence (everything but the valid and
    /// test items), for an objective:
    /// - `.last`: one example per user, the last training item as target (SLMRec); with
    ///   `prefixAugmentation`, every prefix is an example (E4SRec).
    /// - `.allPositions`: one example per window of at most maxLen+1 items; every position
    ///   of the window predicts the next item, so the windows together give exactly the
    ///   prefix-augmented training signal (each target once) from one causal pass each.
    ///   A history longer than maxLen+1 is cut into windows from the most recent backwards.
    public static func build(_ ds: PreparedDataset, objective: Objective, maxLen: Int, prefixAugmentation: Bool = false) -> [TrainSample] {
        var out: [TrainSample] = []
        for u in 1...max(ds.numUsers, 1) where u <= ds.numUsers {
            let s = Array(ds.trainingSequence(user: u))
            let n = s.count
            if n < 2 { continue }
            switch objective {
            case .last:
                if prefixAugmentation {
                    for i in 1..<n { out.append(TrainSample(input: Array(s[max(0, i - maxLen)..<i]), target: s[i])) }
                } else {
                    out.append(TrainSample(input: Array(s[max(0, n - 1 - maxLen)..<(n - 1)]), target: s[n - 1]))
                }
            case .allPositions:
                var end = n
                while end >= 2 {
                    let start = max(0, end - (maxLen + 1))
                    out.append(TrainSample(input: Array(s[start..<(end - 1)]), target: s[end - 1]))
                    end = start + 1
                    if start == 0 { break }
                }
            }
        }
        return out
    }

    /// Number of targets (scored rows) the samples give under an objective.
    public static func targetCount(_ samples: [TrainSample], objective: Objective) -> Int {
        objective == .last ? samples.count : samples.reduce(0) { $0 + $1.input.count }
    }
}
