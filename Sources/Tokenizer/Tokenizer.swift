// Tokenizer: text ↔ token ids for a pretrained trunk's prompt, natively, matching Hugging Face
// `tokenizers` id for id (and llama.cpp, for vocabularies that come from GGUF files).
//
// Two families, as GGUF's `tokenizer.ggml.model` names them:
//   gpt2   byte-level BPE (GPT-2, SmolLM2, Llama-3): split the text with the pre-tokenizer's
//          expression (PreTokenizer.swift), spell each word's UTF-8 bytes with GPT-2's byte
//          alphabet, merge by rank.
//   llama  SentencePiece-style BPE (LLaMa-2, TinyLlama): " " → "▁", one "▁" in front, merge
//          either by score (llama.cpp's llm_tokenizer_spm, for a GGUF vocabulary, which has no
//          merges) or by rank (a Hugging Face tokenizer.json), characters outside the vocabulary
//          as `<0xNN>` byte tokens.
// The sources: llama.cpp src/llama-vocab.cpp and src/unicode.cpp; HF tokenizers
// models/bpe/{model,word}.rs, pre_tokenizers/{byte_level,digits,metaspace}.rs, decoders/*.rs;
// transformers integrations/gguf/gguf_tokenizer_mapping.py (GGUF → HF).
//
// Plain text only: special and added tokens written in the text (e.g. "<|im_start|>") are
// tokenized as text, not recognised as specials.
//
// Every table is keyed by UTF-8 bytes, never by `String`: Swift compares Strings by canonical
// equivalence, and real vocabularies hold tokens that are equivalent but distinct (LLaMa-2 has
// "ί" U+03AF and "ί" U+1F77).
import Foundation

/// A problem with a tokenizer file or vocabulary: which file, what is wrong, what to do.
public struct TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    public let file: String
    public let problem: String
    public let fix: String

    public init(file: String, problem: String, fix: String) {
        self.file = file
        self.problem = problem
        self.fix = fix
    }

    public var description: String { "\(file): \(problem). Fix: \(fix)" }
}

/// A tokenizer vocabulary as GGUF metadata describes it (the `tokenizer.ggml.*` keys, which
/// llama.cpp's convert_hf_to_gguf.py writes), so a GGUF reader can fill it field by field.
public struct TokenizerVocabulary: Sendable, Equatable {
    /// `tokenizer.ggml.model`.
    public enum Model: String, Sendable, CaseIterable { case gpt2, llama }

    public var model: Model
    /// `tokenizer.ggml.pre`: the byte-level split expression ("smollm", "llama-bpe", "gpt-2",
    /// "default", …). Not used by `llama` (SentencePiece) vocabularies, whose GGUF files say
    /// "default" or nothing.
    public var pre: String?
    /// `tokenizer.ggml.tokens`, by id. Byte-level vocabularies spell bytes with GPT-2's
    /// alphabet ("Ġthe"); SentencePiece ones write "▁" for a space and `<0xNN>` for bytes.
    public var tokens: [String]
    /// `tokenizer.ggml.scores` (SentencePiece: the merge priority; higher merges first).
    public var scores: [Float]?
    /// `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    public var tokenTypes: [Int32]?
    /// `tokenizer.ggml.merges`: "left right", highest priority first.
    public var merges: [String]
    /// `tokenizer.ggml.bos_token_id`, `eos_token_id`, `unknown_token_id`, `padding_token_id`.
    public var bosId: Int?
    public var eosId: Int?
    public var unkId: Int?
    public var padId: Int?
    /// `tokenizer.ggml.add_bos_token` (SmolLM2: false; LLaMa-2: true). When a file lacks it, use
    /// `defaultAddBos(model:pre:)`.
    public var addBos: Bool
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece only: put "▁" in front of the text;
    /// default true).
    public var addSpacePrefix: Bool

    public init(model: Model, pre: String? = nil, tokens: [String], scores: [Float]? = nil, tokenTypes: [Int32]? = nil,
                merges: [String] = [], bosId: Int? = nil, eosId: Int? = nil, unkId: Int? = nil, padId: Int? = nil,
                addBos: Bool? = nil, addSpacePrefix: Bool = true) {
        self.model = model
        self.pre = pre
        self.tokens = tokens
        self.scores = scores
        self.tokenTypes = tokenTypes
        self.merges = merges
        self.bosId = bosId
        self.eosId = eosId
        self.unkId = unkId
        self.padId = padId
        self.addBos = addBos ?? TokenizerVocabulary.defaultAddBos(model: model, pre: pre)
        self.addSpacePrefix = addSpacePrefix
    }

    /// llama.cpp's answer when `tokenizer.ggml.add_bos_token` is absent (llama_vocab::impl::load):
    /// true for SentencePiece vocabularies and for Llama-3's pre-tokenizer, false otherwise.
    public static func defaultAddBos(model: Model, pre: String?) -> Bool {
        model == .llama || PreTokenizerSplit.ggufNames[pre ?? "default"] == .llama3
    }

    /// The token types of `tokenizer.ggml.token_type`.
    public enum TokenType: Int32, Sendable {
        case normal = 1, unknown, control, userDefined, unused, byte
    }
}

/// How a vocabulary turns text into pieces and pieces back into text: what the `normalizer`,
/// `pre_tokenizer`, `model` flags and `decoder` of a tokenizer.json say.
struct Pipeline: Sendable, Equatable {
    /// SentencePiece-style: when "▁" goes in front of the text.
    enum SpacePrefix: Sendable, Equatable {
        /// Always (normalizer `Prepend("▁")`; llama.cpp's add_space_prefix), even before a space.
        case always
        /// Metaspace's: unless the text already starts with "▁" (`prepend_scheme` first or
        /// always; the same for text without special tokens).
        case unlessPresent(scheme: String)
        /// Never (Replace only, or `prepend_scheme` never).
        case never(metaspace: Bool)
    }

    /// Byte-level: the split expression. nil: SentencePiece-style.
    var split: PreTokenizerSplit?
    /// Byte-level: a word that is itself a token is that token, merges or not (HF BPE
    /// `ignore_merges`; llama.cpp for Llama-3).
    var ignoreMerges = false
    var spacePrefix = SpacePrefix.never(metaspace: false)
    /// Metaspace `split: true`: each "▁" starts a new word.
    var splitAtSpaceMarker = false
    /// llama.cpp's score-ordered merging, for SentencePiece vocabularies without merges.
    var mergeByScore = false
    /// A character outside the vocabulary becomes its `<0xNN>` byte tokens (HF `byte_fallback`).
    var byteFallback = false
    /// Consecutive unknown characters become one unknown token (HF `fuse_unk`).
    var fuseUnk = false
    var decoder: [DecodeStep]
}

/// One step of Hugging Face's decoder chain (tokenizers src/decoders), applied to the token
/// strings in order; the results are joined.
enum DecodeStep: Sendable, Equatable {
    /// Every token's characters back to GPT-2's bytes, all tokens fused, invalid UTF-8 → U+FFFD.
    case byteLevel
    /// `Replace`: each token with `pattern` replaced by `content`.
    case replace(pattern: String, content: String)
    /// `ByteFallback`: runs of `<0xNN>` tokens to the text their bytes spell, or one U+FFFD per
    /// byte when they are not valid UTF-8.
    case byteFallback
    /// `Fuse`: all tokens into one.
    case fuse
    /// `Strip`: up to `start` leading and `stop` trailing `content` characters off each token.
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    /// `Metaspace`: "▁" → " ", except in the first token when the pre-tokenizer prepends one.
    case metaspace(replacement: Unicode.Scalar, dropInFirst: Bool)
}

public struct Tokenizer: Sendable {
    /// The vocabulary, as GGUF metadata would spell it.
    public let vocabulary: TokenizerVocabulary
    /// Where it came from, for messages.
    public let source: String
    let pipeline: Pipeline
    /// Piece bytes → id, for the model's own vocabulary (without added-only tokens).
    let pieces: [[UInt8]: Int32]
    let merges: [UInt64: MergeRule]
    /// Byte-level: the id of each byte's character; SentencePiece: of its `<0xNN>` token; -1 if none.
    let byteTokens: [Int32]
    /// The tokens Hugging Face keeps as added tokens (`added_tokens` in tokenizer.json), and the
    /// ones of them that are not in the model's vocabulary (Llama-3's specials, for one).
    let addedTokens: [AddedToken]
    let addedOnly: Set<Int>
    private let cache = WordCache()

    struct AddedToken: Sendable, Equatable {
        let id: Int
        let special: Bool
    }

    /// Builds a tokenizer from a vocabulary described by GGUF metadata; `source` names the file
    /// (e.g. "model.gguf") in errors.
    public init(_ vocabulary: TokenizerVocabulary, source: String) throws {
        let fields = Fields.gguf
        var pipeline: Pipeline
        switch vocabulary.model {
        case .gpt2:
            let name = vocabulary.pre ?? "default"
            guard let split = PreTokenizerSplit.ggufNames[name] else {
                throw TokenizerError(
                    file: source,
                    problem: "\(fields.pre) is \"\(name)\", a byte-level split this tokenizer does not know",
                    fix: "use a vocabulary whose \(fields.pre) is one of \(PreTokenizerSplit.ggufNames.keys.sorted().joined(separator: ", ")), or add its expression to Sources/Tokenizer/PreTokenizer.swift")
            }
            pipeline = Pipeline(split: split, ignoreMerges: split == .llama3, decoder: [.byteLevel])
        case .llama:
            if let pre = vocabulary.pre, pre != "default" {
                throw TokenizerError(
                    file: source, problem: "\(fields.pre) is \"\(pre)\" on a SentencePiece (llama) vocabulary, which has no pre-tokenizer",
                    fix: "leave \(fields.pre) out (or \"default\") for tokenizer.ggml.model llama; a byte-level vocabulary is tokenizer.ggml.model gpt2")
            }
            pipeline = Pipeline(split: nil,
                                spacePrefix: vocabulary.addSpacePrefix ? .always : .never(metaspace: false),
                                mergeByScore: vocabulary.merges.isEmpty, byteFallback: true, fuseUnk: true,
                                decoder: [.replace(pattern: "\u{2581}", content: " "), .byteFallback, .fuse,
                                          .strip(content: " ", start: vocabulary.addSpacePrefix ? 1 : 0, stop: 0)])
        }
        try self.init(vocabulary, pipeline: pipeline, added: nil, addedOnly: [], source: source, fields: fields)
    }

    /// The names of the fields a vocabulary came from, for messages.
    struct Fields {
        let tokens: String, merges: String, scores: String, tokenTypes: String, pre: String, specials: String
        static let gguf = Fields(tokens: "tokenizer.ggml.tokens", merges: "tokenizer.ggml.merges", scores: "tokenizer.ggml.scores",
                                 tokenTypes: "tokenizer.ggml.token_type", pre: "tokenizer.ggml.pre",
                                 specials: "tokenizer.ggml.bos_token_id/eos_token_id/unknown_token_id/padding_token_id")
        static let tokenizerJSON = Fields(tokens: "model.vocab", merges: "model.merges", scores: "scores", tokenTypes: "token types",
                                          pre: "pre_tokenizer", specials: "added_tokens / model.unk_token / post_processor")
    }

    /// The one place every tokenizer is built and checked. `added`: Hugging Face's added tokens
    /// (nil: the control and user-defined tokens of `tokenTypes` and the special ids, as
    /// transformers' GGUF converter adds them); `addedOnly`: those outside the model vocabulary.
    init(_ v: TokenizerVocabulary, pipeline: Pipeline, added: [AddedToken]?, addedOnly: Set<Int>, source: String, fields: Fields) throws {
        func fail(_ problem: String, _ fix: String) -> TokenizerError { TokenizerError(file: source, problem: problem, fix: fix) }
        let n = v.tokens.count
        guard n > 0 else { throw fail("\(fields.tokens) is empty", "give the tokenizer its vocabulary") }
        guard n < Int(Int32.max) else { throw fail("\(fields.tokens) has \(n) tokens, more than ids can count", "use a smaller vocabulary") }
        if let s = v.scores, s.count != n {
            throw fail("\(fields.scores) has \(s.count) values for \(n) tokens", "give one score per token, or none")
        }
        if let t = v.tokenTypes, t.count != n {
            throw fail("\(fields.tokenTypes) has \(t.count) values for \(n) tokens", "give one type per token, or none")
        }
        for (name, id) in [("bos", v.bosId), ("eos", v.eosId), ("unknown", v.unkId), ("padding", v.padId)] {
            if let id, !(0..<n).contains(id) {
                throw fail("the \(name) token id \(id) is outside the vocabulary (0..<\(n))", "correct \(fields.specials)")
            }
        }
        if v.addBos && v.bosId == nil {
            throw fail("add_bos_token is true but there is no bos token id", "give the bos token id, or set add_bos_token false")
        }

        var pieces: [[UInt8]: Int32] = [:]
        pieces.reserveCapacity(n)
        for (id, token) in v.tokens.enumerated() where !addedOnly.contains(id) {
            pieces[Array(token.utf8)] = Int32(id)   // a repeated token: the last id wins, as in HF and llama.cpp
        }

        var merges: [UInt64: MergeRule] = [:]
        merges.reserveCapacity(v.merges.count)
        for (rank, merge) in v.merges.enumerated() {
            let parts = merge.utf8.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw fail("\(fields.merges)[\(rank)] is \"\(merge)\", not two tokens separated by one space",
                           "write each merge as \"left right\"")
            }
            let left = Array(parts[0]), right = Array(parts[1])
            for part in [left, right] where pieces[part] == nil {
                throw fail("\(fields.merges)[\(rank)] \"\(merge)\" names \"\(String(decoding: part, as: UTF8.self))\", which is not in \(fields.tokens)",
                           "use the merges that belong to this vocabulary")
            }
            guard let result = pieces[left + right], let l = pieces[left], let r = pieces[right] else {
                throw fail("\(fields.merges)[\(rank)] \"\(merge)\" makes \"\(String(decoding: left + right, as: UTF8.self))\", which is not in \(fields.tokens)",
                           "use the merges that belong to this vocabulary")
            }
            // A repeated merge: the last rank stands, as in HF's BPE builder (a HashMap collected in order).
            merges[pairKey(l, r)] = MergeRule(rank: Int32(rank), result: result)
        }

        var byteTokens = [Int32](repeating: -1, count: 256)
        if pipeline.split != nil {
            for b in 0..<256 { byteTokens[b] = pieces[ByteLevelAlphabet.spellings[b]] ?? -1 }
        } else {
            for b in 0..<256 { byteTokens[b] = pieces[Array(String(format: "<0x%02X>", b).utf8)] ?? -1 }
            if pipeline.mergeByScore && v.scores == nil {
                throw fail("the SentencePiece vocabulary has neither \(fields.merges) nor \(fields.scores)",
                           "give the token scores (tokenizer.ggml.scores), which order its merges")
            }
        }

        self.vocabulary = v
        self.source = source
        self.pipeline = pipeline
        self.pieces = pieces
        self.merges = merges
        self.byteTokens = byteTokens
        self.addedOnly = addedOnly
        self.addedTokens = added ?? Tokenizer.ggufAddedTokens(v, byteLevel: pipeline.split != nil)
    }

    /// transformers' `add_gguf_special_tokens`: control tokens as special added tokens (in a
    /// byte-level vocabulary only those spelled in the byte alphabet: others are llama.cpp
    /// mislabels), user-defined tokens as plain ones; and the bos/eos/unk/pad tokens, which its
    /// tokenizer classes add as specials.
    static func ggufAddedTokens(_ v: TokenizerVocabulary, byteLevel: Bool) -> [AddedToken] {
        var special = Set([v.bosId, v.eosId, v.unkId, v.padId].compactMap { $0 })
        var plain = Set<Int>()
        for (id, type) in (v.tokenTypes ?? []).enumerated() {
            if type == TokenizerVocabulary.TokenType.control.rawValue {
                if !byteLevel || ByteLevelAlphabet.decode(v.tokens[id]) != nil { special.insert(id) }
            } else if type == TokenizerVocabulary.TokenType.userDefined.rawValue {
                plain.insert(id)
            }
        }
        return special.union(plain).sorted().map { AddedToken(id: $0, special: special.contains($0)) }
    }

    // MARK: - Encoding

    /// The ids of `text`, with the bos token first when `addBos` (nil: the vocabulary's
    /// `addBos`). Plain text: special tokens written in it are not recognised.
    public func encode(_ text: String, addBos: Bool? = nil) -> [Int] {
        var ids: [Int32] = []
        if addBos ?? vocabulary.addBos, let bos = vocabulary.bosId { ids.append(Int32(bos)) }
        if let split = pipeline.split {
            let scalars = Array(text.unicodeScalars)
            // UTF-8 of the text, and where each scalar starts in it.
            var utf8: [UInt8] = []
            var starts: [Int] = []
            utf8.reserveCapacity(scalars.count)
            starts.reserveCapacity(scalars.count + 1)
            for u in scalars {
                starts.append(utf8.count)
                UTF8.encode(u) { utf8.append($0) }
            }
            starts.append(utf8.count)
            for word in split.split(scalars) {
                ids += byteLevelWord(utf8[starts[word.lowerBound]..<starts[word.upperBound]])
            }
        } else {
            ids += sentencePiece(text)
        }
        return ids.map(Int.init)
    }

    /// One pre-tokenized word of byte-level BPE.
    private func byteLevelWord(_ bytes: ArraySlice<UInt8>) -> [Int32] {
        let key = Array(bytes)
        if let hit = cache.get(key) { return hit }
        var result: [Int32]? = nil
        if pipeline.ignoreMerges {
            var spelled: [UInt8] = []
            for b in key { spelled += ByteLevelAlphabet.spellings[Int(b)] }
            if let id = pieces[spelled] { result = [id] }
        }
        if result == nil {
            var symbols: [Int32] = []
            symbols.reserveCapacity(key.count)
            var lastWasUnknown = false
            for b in key {
                let t = byteTokens[Int(b)]
                if t >= 0 {
                    symbols.append(t)
                    lastWasUnknown = false
                } else if let unk = vocabulary.unkId {
                    // HF: a character outside the vocabulary is the unknown token, or nothing without one.
                    if !(pipeline.fuseUnk && lastWasUnknown) { symbols.append(Int32(unk)) }
                    lastWasUnknown = true
                }
            }
            result = mergeByRank(symbols, merges)
        }
        let ids = result ?? []
        if key.count < 256 { cache.put(key, ids) }   // HF caches words shorter than 256 bytes too
        return ids
    }

    /// SentencePiece-style: escape, prefix, then merge by score (llama.cpp) or rank (HF).
    private func sentencePiece(_ text: String) -> [Int32] {
        guard !text.isEmpty else { return [] }   // no prefix for empty text (HF Prepend, llama.cpp)
        let marker = Array("\u{2581}".utf8)
        var escaped: [UInt8] = []
        escaped.reserveCapacity(text.utf8.count + 3)
        for b in text.utf8 {
            if b == UInt8(ascii: " ") { escaped += marker } else { escaped.append(b) }
        }
        switch pipeline.spacePrefix {
        case .always: escaped = marker + escaped
        case .unlessPresent: if !escaped.starts(with: marker) { escaped = marker + escaped }
        case .never: break
        }
        if pipeline.mergeByScore {
            return mergeByScore(escaped, pieces: pieces, scores: vocabulary.scores ?? [], byteTokens: byteTokens,
                                unknown: vocabulary.unkId.map(Int32.init))
        }
        // Metaspace(split: true) makes each "▁" start a word; otherwise the text is one word.
        var words: [ArraySlice<UInt8>] = []
        if pipeline.splitAtSpaceMarker {
            var start = 0
            var i = 0
            while i + marker.count <= escaped.count {
                if escaped[i..<(i + marker.count)].elementsEqual(marker), i > start {
                    words.append(escaped[start..<i])
                    start = i
                }
                i += escaped[i] < 0x80 ? 1 : escaped[i] >= 0xF0 ? 4 : escaped[i] >= 0xE0 ? 3 : 2
            }
            words.append(escaped[start...])
        } else {
            words = [escaped[...]]
        }
        var out: [Int32] = []
        for word in words { out += sentencePieceWordByRank(word) }
        return out
    }

    /// HF BPE `merge_word` for a SentencePiece-style word: each character is its token, else
    /// its `<0xNN>` byte tokens (byte_fallback, when all exist), else the unknown token (fused
    /// with the previous unknown when fuse_unk); then the merges by rank.
    private func sentencePieceWordByRank(_ word: ArraySlice<UInt8>) -> [Int32] {
        var symbols: [Int32] = []
        var unknownRun = false
        var i = word.startIndex
        while i < word.endIndex {
            let lead = word[i]
            let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
            let end = min(i + length, word.endIndex)
            let char = Array(word[i..<end])
            i = end
            if let id = pieces[char] {
                symbols.append(id)
                unknownRun = false
                continue
            }
            if pipeline.byteFallback {
                let bytes = char.map { byteTokens[Int($0)] }
                if bytes.allSatisfy({ $0 >= 0 }) {
                    symbols += bytes
                    unknownRun = false
                    continue
                }
            }
            if let unk = vocabulary.unkId {
                if !(pipeline.fuseUnk && unknownRun) { symbols.append(Int32(unk)) }
                unknownRun = true
            }
        }
        return mergeByRank(symbols, merges)
    }

    // MARK: - Decoding

    /// The vocabulary string of `id` ("Ġthe", "▁the", "<0x0A>"); "" for an id outside the vocabulary.
    public func piece(_ id: Int) -> String {
        vocabulary.tokens.indices.contains(id) ? vocabulary.tokens[id] : ""
    }

    /// The text of `ids`, as Hugging Face's decoder gives it (special tokens included as their
    /// text; ids outside the vocabulary skipped).
    public func decode(_ ids: [Int]) -> String {
        var tokens = ids.filter { vocabulary.tokens.indices.contains($0) }.map { vocabulary.tokens[$0] }
        for step in pipeline.decoder {
            tokens = step.apply(tokens)
        }
        return tokens.joined()
    }
}

extension DecodeStep {
    func apply(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens { bytes += ByteLevelAlphabet.decode(t) ?? Array(t.utf8) }
            return [String(decoding: bytes, as: UTF8.self)]
        case .replace(let pattern, let content):
            return tokens.map { replaceScalars(in: $0, pattern, with: content) }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                let text = String(decoding: pending, as: UTF8.self)
                out += Array(text.utf8) == pending ? [text] : Array(repeating: "\u{FFFD}", count: pending.count)
                pending = []
            }
            for t in tokens {
                // HF: six bytes, "<0x", two hex digits, ">".
                let u = Array(t.utf8)
                if u.count == 6, t.hasPrefix("<0x"), u[5] == UInt8(ascii: ">"),
                   let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(t)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { t in
                var s = Array(t.unicodeScalars)
                var cut = 0
                while cut < start, cut < s.count, s[cut] == content { cut += 1 }
                s.removeFirst(cut)
                var tail = 0
                while tail < stop, tail < s.count, s[s.count - 1 - tail] == content { tail += 1 }
                s.removeLast(tail)
                var view = String.UnicodeScalarView()
                view.append(contentsOf: s)
                return String(view)
            }
        case .metaspace(let replacement, let dropInFirst):
            return tokens.enumerated().map { i, t in
                var view = String.UnicodeScalarView()
                for u in t.unicodeScalars {
                    if u != replacement { view.append(u) } else if !(i == 0 && dropInFirst) { view.append(" ") }
                }
                return String(view)
            }
        }
    }
}

/// `pattern` replaced by `content` in `s`, comparing scalars (not Characters, which would fold
/// "▁" with a following combining mark into one).
func replaceScalars(in s: String, _ pattern: String, with content: String) -> String {
    let p = Array(pattern.unicodeScalars)
    guard !p.isEmpty else { return s }
    let u = Array(s.unicodeScalars)
    var out = String.UnicodeScalarView()
    var i = 0
    while i < u.count {
        if i + p.count <= u.count, Array(u[i..<(i + p.count)]) == p {
            out.append(contentsOf: content.unicodeScalars)
            i += p.count
        } else {
            out.append(u[i])
            i += 1
        }
    }
    return String(out)
}

/// The byte-level words already merged, shared by copies of a tokenizer. A lock, not an actor:
/// `encode` is synchronous. Bounded, like HF's BPE cache (10 000 words there).
final class WordCache: @unchecked Sendable {   // all access under `lock`
    private let lock = NSLock()
    private var words: [[UInt8]: [Int32]] = [:]
    private let capacity = 50_000

    func get(_ key: [UInt8]) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return words[key]
    }

    func put(_ key: [UInt8], _ ids: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if words.count < capacity { words[key] = ids }
    }
}
