import Foundation

/// A problem found by the host or a pass: where (recipe path and stage, or the command), what
/// is wrong, and what to do. Only the CLI prints it; nothing below the CLI exits.
public struct ToolbenchError: Error, CustomStringConvertible, Sendable, Equatable {
    /// "recipes/x.json5: stage \"pruned\" (stages[1])", "apply prune-layers", an option path…
    public var location: String
    public var problem: String
    public var fix: String

    public init(_ location: String = "", problem: String, fix: String) {
        self.location = location
        self.problem = problem
        self.fix = fix
    }

    /// The same error placed under a longer location (outer context first).
    public func within(_ outer: String) -> ToolbenchError {
        ToolbenchError(location.isEmpty ? outer : "\(outer): \(location)", problem: problem, fix: fix)
    }

    public var description: String {
        (location.isEmpty ? "" : "\(location): ") + problem
            + (fix.isEmpty ? "" : (problem.hasSuffix("?") || problem.hasSuffix(".") ? " Fix: " : ". Fix: ") + fix)
    }
}

/// Thrown by a pass's `check` or `apply`: the host adds the recipe path and stage.
public func passError(_ problem: String, fix: String) -> ToolbenchError {
    ToolbenchError(problem: problem, fix: fix)
}

/// "did you mean …?" by Levenshtein distance: the nearest candidate within
/// max(2, |word|/3) edits, or nil.
public func nearest(_ word: String, in candidates: [String]) -> String? {
    var best: (String, Int)?
    for c in candidates {
        let d = editDistance(word.lowercased(), c.lowercased())
        if d <= max(2, word.count / 3), best == nil || d < best!.1 { best = (c, d) }
    }
    return best?.0
}

public func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count), cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        for j in 1...y.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[y.count]
}

/// ", did you mean \"x\"?" or "".
func suggestion(_ word: String, _ candidates: [String]) -> String {
    nearest(word, in: candidates).map { " — did you mean \"\($0)\"?" } ?? ""
}
