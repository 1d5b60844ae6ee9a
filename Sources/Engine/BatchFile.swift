import Foundation
import Common
import ModelFormat

/// A BATCH.json (`slmrec embed`/`grads`, scripts/verify-with-pytorch.py):
/// `{"sequences": [[item ids, oldest first], …], "targets": [next item of each, …]}`.
public struct BatchFile: Sendable, Equatable {
    public let path: String
    public let sequences: [[Int32]]
    public let targets: [Int32]?


    static let shape = "{\"sequences\": [[1, 2, 3], …], \"targets\": [4, …]}"

    public static func load(_ url: URL, shownAs path: String? = nil) throws -> BatchFile {
        let path = path ?? url.path
        let json = try readJSONFile(url, shownAs: path, syntaxFix: "write \(shape)")
        guard let raw = json["sequences"]?.arrayValue else {
            throw problem(path, "sequences", "missing or not a list", fix: "write \(shape)")
        }
        func ids(_ v: JSONValue, _ field: String) throws -> Int32 {
            guard let i = v.intValue, let x = Int32(exactly: i) else {
                throw problem(path, field, "\(JSONText.compact(v)) is not an integer item id", fix: "use item ids 1…N of the model")
            }
            return x
        }
        let seqs = try raw.enumerated().map { i, s -> [Int32] in
            guard let arr = s.arrayValue else { throw problem(path, "sequences[\(i)]", "not a list of item ids", fix: "write [1, 2, 3]") }
            if arr.isEmpty { throw problem(path, "sequences[\(i)]", "empty", fix: "give every sequence at least one item") }
            return try arr.enumerated().map { j, v in try ids(v, "sequences[\(i)][\(j)]") }
        }
        if seqs.isEmpty { throw problem(path, "sequences", "empty", fix: "give at least one sequence") }
        var targets: [Int32]?
        if let t = json["targets"], !t.isNull {
            guard let arr = t.arrayValue else { throw problem(path, "targets", "not a list of item ids", fix: "write [4, …]") }
            let ts = try arr.enumerated().map { j, v in try ids(v, "targets[\(j)]") }
            if ts.count != seqs.count {
                throw problem(path, "targets", "\(ts.count) targets for \(seqs.count) sequences", fix: "give one target per sequence")
            }
            targets = ts
        }
        return BatchFile(path: path, sequences: seqs, targets: targets)
    }

    public init(path: String, sequences: [[Int32]], targets: [Int32]?) {
        self.path = path; self.sequences = sequences; self.targets = targets
    }

    /// The engine's batch: each sequence keeps its `max_seq_len` most recent items (as eval
    /// does); problems (ids out of range, …) are reported against the batch file.
    public func packed(dims d: ModelDims, withTargets: Bool) throws -> PackedBatch {
        if withTargets && targets == nil {
            throw problem(path, "targets", "required here (the next item of each sequence)", fix: "add \"targets\": [one item id per sequence]")
        }
        let seqs = sequences.map { $0.count > d.maxSeqLen ? Array($0.suffix(d.maxSeqLen)) : $0 }
        do { return try PackedBatch(sequences: seqs, targets: withTargets ? targets : nil, dims: d) } catch {
            throw problem(path, "", "\(error)", fix: "use item ids 1…\(d.numItems) of this checkpoint")
        }
    }
}

/// A problem in a batch file, reported as every file format reports one: the file and field,
/// what is wrong, what to write instead.
private func problem(_ path: String, _ field: String, _ what: String, fix: String) -> ModelFormatError {
    ModelFormatError(file: path, problem: (field.isEmpty ? "" : "\(field): ") + what, fix: fix)
}
