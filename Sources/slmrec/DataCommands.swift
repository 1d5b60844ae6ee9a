import Cluster
import Foundation
import ModelEvaluation
import Common
import CommandKit
import Engine
import Evaluation
import ModelFormat
import RecData

/// `slmrec data …` and `slmrec eval`.
let dataCommands: [any ParsableCommand.Type] = [DataGroup.self, Eval.self, Recommend.self]

extension InputFormat: ExpressibleByArgument {}
extension Split: ExpressibleByArgument {}
extension NegativesStore: ExpressibleByArgument {}
extension Candidates: ExpressibleByArgument {}
extension RecommendationFile.Format: ExpressibleByArgument {}

struct DataGroup: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Dataset tools.", subcommands: [Prepare.self, Subsample.self, Negatives.self])
}

struct Prepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn raw interaction logs into a prepared dataset directory (sequences, items, fixed negatives).",
        discussion: """
        Steps: rating filter, drop repeated user–item pairs (keep the earliest), iterative k-core on users and items, \
        chronological order with a stable tie-break (file order), ids 1…N. Writes sequences.txt, items.tsv, users.tsv, \
        negatives-valid.txt, negatives-test.txt (999 uniform unseen items per user, fixed by --seed) and dataset.json. \
        Formats: sequences (USER ITEM ITEM …), MovieLens ratings.csv / ratings.dat / u.data, Amazon ratings CSV and review \
        JSON lines, RecBole .inter; .gz input is read directly. See docs/data.md.
        """)

    @Option(help: "Raw interaction file (.gz allowed).") var input: String
    @Option(help: "Output dataset directory (written atomically).") var output: String
    @Option(help: "Input format.") var format: InputFormat = .auto
    @Option(help: "Keep ratings >= this (explicit data; default: rating > 3, the paper's filter).") var minRating: Double?
    @Option(help: "Iterative k-core threshold for users and items.") var kcore: Int = 5
    @Option(help: "Most recent items kept per user for training inputs.") var maxLength: Int = 50
    @Option(help: "Sampled negatives per user and split.") var negatives: Int = 999
    @Option(help: "Random seed for the negatives.") var seed: UInt64 = 42
    @Option(help: """
        Where the negatives go: text (negatives-valid/test.txt) or counter (no files: each user's list is drawn from \
        (seed, split, user) when evaluated; docs/data.md). Default: text up to 10^8 ids per split, counter beyond.
        """) var negativesStore: NegativesStore?
    @Flag(help: "Count and skip malformed lines instead of stopping at the first.") var skipBadLines = false
    @Flag(help: "Replace an existing prepared dataset at --output (nothing else is ever replaced; docs/outputs.md).") var force = false

    mutating func validate() throws {
        if kcore < 1 { throw ValidationError("--kcore must be at least 1") }
        if maxLength < 1 { throw ValidationError("--max-length must be at least 1") }
        if negatives < 1 { throw ValidationError("--negatives must be at least 1") }
    }

    func run() throws {
        let stats = try writingOutput(fileURL(output), kind: PreparedDataset.outputKind, force: force, inputs: [("--input", fileURL(input))]) {
            try DataPrepare.run(PrepareOptions(
                input: fileURL(input), output: fileURL(output), format: format, minRating: minRating, kcore: kcore,
                maxLength: maxLength, negatives: negatives, negativesStore: negativesStore, seed: seed, skipBadLines: skipBadLines))
        }
        emit(stats.summary)
        emit("wrote \(output)")
    }
}

struct Subsample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A uniform random sample of a prepared dataset's users, written as a prepared dataset (same items, same item ids).",
        discussion: """
        Draws --users users without replacement (every subset equally likely, fixed by --seed), keeps them in their \
        order and numbers them 1…N. items.tsv is copied byte for byte, so the catalogue and item ids stay those of \
        --data; sequences, users.tsv (new id → the raw user id) and the fixed negatives are the sampled users' lines. \
        dataset.json keeps the source's record with statistics recomputed and a subsample entry (source, its \
        dataset.json's sha256, users, seed). See docs/data.md.
        """)

    @Option(help: "Prepared dataset directory to sample from (slmrec data prepare).") var data: String
    @Option(help: "Users to keep: 1 to the dataset's users (all of them copies it).") var users: Int
    @Option(help: "Random seed for the sample.") var seed: UInt64 = 42
    @Option(help: "Output dataset directory (written atomically).") var output: String
    @Flag(help: "Replace an existing prepared dataset at --output (nothing else is ever replaced; docs/outputs.md).") var force = false

    mutating func validate() throws {
        if users < 1 { throw ValidationError("--users must be at least 1") }
    }

    func run() throws {
        let stats = try writingOutput(fileURL(output), kind: PreparedDataset.outputKind, force: force, inputs: [("--data", fileURL(data))]) {
            try DataSubsample.run(SubsampleOptions(data: fileURL(data), output: fileURL(output), users: users, seed: seed))
        }
        emit(stats.summary)
        emit("wrote \(output)")
    }
}

struct Negatives: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a split's fixed negatives as text (USER N1 … Nk lines), from either store.",
        discussion: """
        For a counter-store dataset (no negatives files; see data prepare --negatives-store) this draws the lists \
        the evaluator uses, so another tool can read them; for a text store it copies the checked lines. \
        scripts/negatives-reference.py recomputes counter lists without this binary. See docs/data.md.
        """)

    @Option(help: "Prepared dataset directory.") var data: String
    @Option(help: "valid or test.") var split: Split
    @Option(help: "Comma-separated user ids (default: every user).") var users: String?
    @Option(help: "Output text file (written atomically).") var output: String
    @Flag(help: "Replace an existing negatives file at --output.") var force = false

    static let outputKind = OutputKind(file: "negatives file (slmrec data negatives)") { url in
        guard let h = FileHandle(forReadingAtPath: url.path) else { return false }
        defer { try? h.close() }
        let head = (try? h.read(upToCount: 4096)) ?? Data()
        return head.allSatisfy { $0 == 0x20 || $0 == 0x0A || (0x30...0x39).contains($0) }
    }

    func run() throws {
        let dataset = try PreparedDataset.load(directory: fileURL(data))
        let source = try dataset.negativeSource(split)
        var ids: [Int]? = nil
        if let users {
            ids = try users.split(separator: ",").map { f in
                guard let u = Int(f.trimmingCharacters(in: .whitespaces)), u >= 1, u <= dataset.numUsers else {
                    throw ValidationError("--users: \"\(f)\" is not a user id in 1…\(dataset.numUsers) (\(data) has \(dataset.numUsers) users)")
                }
                return u
            }
        }
        let out = fileURL(output)
        try writingOutput(out, kind: Self.outputKind, force: force, inputs: [("--data", fileURL(data))]) {
            try AtomicFile.writeFile(out) { tmp in try source.writeText(to: tmp, users: ids, numUsers: dataset.numUsers) }
        }
        emit("\(ids?.count ?? dataset.numUsers) users' \(split.rawValue) negatives (\(source.store.rawValue) store) → \(output)")
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "HR@K, NDCG@K and MRR of a checkpoint on a prepared dataset (sampled and/or full ranking).",
        discussion: """
        test: input = each user's sequence without its last item (the checkpoint's max_seq_len most recent), target = \
        the last item; valid: drops the last two, target = the second to last. sampled ranks the target among the \
        dataset's fixed negatives; full among all items except padding and the user's history. Ties are pessimistic. \
        Works on float and int8 checkpoints. See docs/evaluation.md.
        """)

    @OptionGroup var model: ModelOptions
    @Option(help: "Prepared dataset directory (slmrec data prepare).") var data: String
    @Option(help: "Which held-out item.") var split: Split = .test
    @Option(help: "Candidate protocol.") var candidates: Candidates = .both
    @Option(help: "Metrics JSON output.") var output: String
    @Option(help: "Per-user ranks (TSV).") var ranks: String?
    @Option(help: "Evaluate a fixed, evenly spaced subset of N users.") var users: Int?
    @Option(help: "Users per batch.") var batchSize: Int = 256
    @Flag(help: "Replace existing --output / --ranks files that slmrec eval wrote (nothing else is ever replaced).") var force = false

    mutating func validate() throws {
        if split == .train { throw ValidationError("--split must be valid or test") }
        if let u = users, u < 1 { throw ValidationError("--users must be at least 1") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        let inputs = model.inputs + [("--data", fileURL(data))]
        if let ranks, OutputGuard.realPath(fileURL(ranks)) == OutputGuard.realPath(fileURL(output)) {
            throw ValidationError("--ranks and --output must be different files")
        }
        // Under mpirun the users are sharded over the ranks (ModelEvaluator.rankHeldOut) and
        // rank 0 alone writes: the others only rank their share.
        if !Cluster.world.isLeader { return try evaluate(write: false) }
        try writingOutput(fileURL(output), kind: EvalResult.outputKind, force: force, inputs: inputs) {
            guard let ranks else { return try evaluate() }
            try writingOutput(fileURL(ranks), kind: EvalResult.ranksKind, force: force, inputs: inputs, flag: "--ranks") { try evaluate() }
        }
    }

    func evaluate(write: Bool = true) throws {
        let model = try self.model.load()
        let ds = try PreparedDataset.load(directory: fileURL(data))
        try requireSameInputs(model: model, dataset: ds)
        let r = try ModelEvaluator.evaluate(model: model, dataset: ds, options: EvalOptions(
            split: split, candidates: candidates, users: users, batchSize: batchSize, progress: true))
        guard write else { return }
        var record = r.record(split: split, candidates: candidates)
        record.checkpoint = fileURL(self.model.checkpoint).path
        record.adapter = self.model.adapter.map { fileURL($0).path }
        record.data = fileURL(data).path
        record.numItems = ds.numItems
        record.int8 = model.int8 != nil
        try JSONText.write(encoding: record, to: fileURL(output))
        if let ranks { try AtomicFile.write(Data(ModelEvaluator.ranksTSV(r).utf8), to: fileURL(ranks)) }
        var rows = [["protocol"] + MetricName.reported]
        for (name, m) in [("sampled (999 neg.)", r.sampled), ("full ranking", r.full)] {
            guard let m else { continue }
            rows.append([name] + rows[0].dropFirst().map { String(format: "%.4f", m[$0] ?? 0) })
        }
        emit("\(r.users) users, \(String(format: "%.0f", r.usersPerSecond)) users/s")
        emit(textTable(rows))
        emit("wrote \(output)")
    }
}

struct Recommend: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The top-K items for every user of a dataset (or some users, or raw histories), with original ids and titles.",
        discussion: """
        Scores every item with the model (float or int8, with --adapter if it has one) and writes the K best that the \
        user does not already have, best first (equal scores: lower item id first). --history all (default) reads the \
        whole sequence and recommends what comes next; test / valid read what `slmrec eval` reads for that split, so \
        the held-out item's place in the list is its full-ranking rank. --sequences FILE takes histories as lines \
        `LABEL ITEM ITEM …` of original item ids (items.tsv's original_id). Output: TSV (user, original_user, rank, \
        item, original_item, score, title) or, for .jsonl / --format jsonl, one JSON object per user. See \
        docs/evaluation.md#recommendations.
        """)

    enum History: String, CaseIterable, ExpressibleByArgument { case all, valid, test }

    @OptionGroup var model: ModelOptions
    @Option(help: "Prepared dataset directory (slmrec data prepare): its users, items.tsv and users.tsv.") var data: String
    @Option(help: "Items per user: 1 to the number of items.") var topK: Int = 10
    @Option(help: "Only these users (the dataset's ids 1…N, comma-separated), in this order.") var users: String?
    @Option(help: "Histories to recommend for instead of the dataset's users: lines `LABEL ITEM ITEM …` of original item ids.") var sequences: String?
    @Flag(help: "With --sequences: drop items that are not in the catalogue (counted) instead of stopping.") var skipUnknownItems = false
    @Option(help: "Which part of each user's sequence the model reads: all, or what eval reads for test / valid.") var history: History = .all
    @Option(help: "Output file (TSV; JSON lines for .jsonl).") var output: String
    @Option(help: "Output format (default: from the file name).") var format: RecommendationFile.Format?
    @Option(help: "Users per batch.") var batchSize: Int = 256
    @Flag(help: "Replace an existing --output that slmrec recommend wrote (nothing else is ever replaced).") var force = false

    mutating func validate() throws {
        if topK < 1 { throw ValidationError("--top-k must be at least 1") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1") }
        if sequences != nil && (users != nil || history != .all) {
            throw ValidationError("--sequences gives the histories itself: leave out --users and --history")
        }
        if skipUnknownItems && sequences == nil { throw ValidationError("--skip-unknown-items applies to --sequences only") }
    }

    func run() throws {
        var inputs = model.inputs + [("--data", fileURL(data))]
        if let sequences { inputs.append(("--sequences", fileURL(sequences))) }
        try writingOutput(fileURL(output), kind: RecommendationFile.outputKind, force: force, inputs: inputs) {
            let catalogue = try Catalogue.load(directory: fileURL(data))
            guard topK <= catalogue.numItems else {
                throw ValidationError("--top-k \(topK) is more than the \(catalogue.numItems) items of \(data): give at most \(catalogue.numItems)")
            }
            let requests = try self.requests(catalogue)
            let m = try model.load()
            guard m.dims.numItems == catalogue.numItems else {
                throw ValidationError("\(data) has \(catalogue.numItems) items but the model scores \(m.dims.numItems) (ellmrec.num_items): use the dataset the model was trained on")
            }
            let start = nowSeconds()
            let lists = try Recommender.recommend(model: m, histories: requests.map(\.history), k: topK, batchSize: batchSize)
            let secs = nowSeconds() - start
            try RecommendationFile.write(requests, lists, catalogue: catalogue, format: format ?? RecommendationFile.format(forPath: output), to: fileURL(output))
            emit(String(format: "%d users, top %d, %.0f users/s (%.2f ms/user)", requests.count, topK, Double(requests.count) / max(secs, 1e-9), 1000 * secs / Double(max(requests.count, 1))))
            emit("wrote \(output)")
        }
    }

    /// The histories to score, in output order.
    func requests(_ catalogue: Catalogue) throws -> [RecommendationRequest] {
        if let sequences { return try Self.readSequences(fileURL(sequences), catalogue: catalogue, skipUnknown: skipUnknownItems) }
        let ds = try PreparedDataset.load(directory: fileURL(data))
        let ids: [Int]
        if let users {
            ids = try users.split(separator: ",", omittingEmptySubsequences: false).map { f in
                let t = f.trimmingCharacters(in: .whitespaces)
                guard let u = Int(t) else { throw ValidationError("--users: \"\(t)\" is not a user id (give ids 1…\(ds.numUsers), comma-separated)") }
                guard u >= 1 && u <= ds.numUsers else { throw ValidationError("--users: user \(u) is not in \(data) (its users are 1…\(ds.numUsers))") }
                return u
            }
        } else {
            ids = Array(1...max(ds.numUsers, 1)).filter { $0 <= ds.numUsers }
        }
        let drop = history == .all ? 0 : history == .test ? 1 : 2
        return try ids.map { u in
            let seq = ds.sequences[u - 1]
            guard seq.count > drop else {
                throw ValidationError("user \(u) has \(seq.count) item(s): --history \(history.rawValue) leaves nothing to read")
            }
            return RecommendationRequest(user: u, label: catalogue.originalUsers?[u - 1] ?? "\(u)", history: Array(seq.dropLast(drop)))
        }
    }

    /// `LABEL ITEM ITEM …` lines (spaces or tabs) of original item ids; empty lines are skipped.
    static func readSequences(_ url: URL, catalogue: Catalogue, skipUnknown: Bool) throws -> [RecommendationRequest] {
        guard FileManager.default.fileExists(atPath: url.path) else { throw ValidationError("--sequences: \(url.path) does not exist") }
        var out: [RecommendationRequest] = []
        var failure: Error?
        var unknown = 0
        try LineReader(url: url).forEachLine { bytes, n in
            var line = String(decoding: bytes, as: UTF8.self)
            if line.hasSuffix("\r") { line.removeLast() }
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let label = f.first else { return true }
            var items: [Int32] = []
            for raw in f.dropFirst() {
                if let i = catalogue.item(original: raw) { items.append(i); continue }
                if skipUnknown { unknown += 1; continue }
                failure = ValidationError("\(url.path):\(n): item \"\(raw)\" is not in the catalogue (items.tsv's original_id); fix the id, or pass --skip-unknown-items to drop such items")
                return false
            }
            guard !items.isEmpty else {
                failure = ValidationError("\(url.path):\(n): \"\(label)\" has no\(skipUnknown ? " known" : "") items; give `LABEL ITEM ITEM …` with at least one item of the catalogue")
                return false
            }
            out.append(RecommendationRequest(user: out.count + 1, label: label, history: items))
            return true
        }
        if let failure { throw failure }
        guard !out.isEmpty else { throw ValidationError("--sequences: \(url.path) holds no histories") }
        if unknown > 0 { logLine("recommend: dropped \(unknown) item(s) not in the catalogue (--skip-unknown-items)") }
        return out
    }
}
