import Foundation

// The two merge loops: by merge rank (Hugging Face's BPE model, llama.cpp's byte-level BPE) and
// by token score (llama.cpp's llm_tokenizer_spm, for SentencePiece vocabularies from GGUF), and
// GPT-2's byte ↔ character table.

/// GPT-2's reversible byte → character table (openai/gpt-2 encoder.py `bytes_to_unicode`;
/// HF tokenizers pre_tokenizers/byte_level.rs `bytes_char`): printable Latin-1 bytes stand for
/// themselves, the other 68 (controls, space, 0x7F–0xA0, 0xAD) for U+0100 onwards in byte order.
enum ByteLevelAlphabet {
    static let characters: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next) ?? " "   // 256…323: always valid scalars
                next += 1
            }
        }
        return table
    }()

    /// The UTF-8 bytes of each byte's character, for building a word's spelling without Strings.
    static let spellings: [[UInt8]] = characters.map { Array(String($0).utf8) }

    /// Character → byte, for decoding.
    static let bytes: [Unicode.Scalar: UInt8] = {
        var m: [Unicode.Scalar: UInt8] = [:]
        for (b, c) in characters.enumerated() { m[c] = UInt8(b) }
        return m
    }()

    /// The bytes a piece spells, or nil when it uses a character outside the alphabet (an added
    /// token such as "<|im_start|>" is all ASCII and spells itself; one with other characters
    /// is decoded as its own UTF-8, as HF's ByteLevel decoder does).
    static func decode(_ piece: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(piece.unicodeScalars.count)
        for u in piece.unicodeScalars {
            guard let b = bytes[u] else { return nil }
            out.append(b)
        }
        return out
    }
}

/// One merge: `left right → result`, applied lowest rank first.
struct MergeRule: Sendable {
    let rank: Int32
    let result: Int32
}

@inline(__always)
func pairKey(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

/// A binary heap; `before(a, b)` is true when a must come out first.
struct Heap<Element> {
    private var items: [Element] = []
    private let before: (Element, Element) -> Bool

    init(before: @escaping (Element, Element) -> Bool) { self.before = before }

    var isEmpty: Bool { items.isEmpty }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard before(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, before(items[l], items[m]) { m = l }
                if r < items.count, before(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

/// Hugging Face's `Word::merge_all` (tokenizers models/bpe/word.rs) without dropout: a queue of
/// (rank, position) pairs; the lowest rank merges first, the leftmost among equal ranks; an entry
/// whose pair has changed since it was queued is dropped when the pair now merges into another
/// token. This is also GPT-2's `bpe()` and llama.cpp's byte-level BPE session.
func mergeByRank(_ symbols: [Int32], _ merges: [UInt64: MergeRule]) -> [Int32] {
    let n = symbols.count
    guard n > 1 else { return symbols }
    struct Entry { let rank: Int32; let pos: Int; let result: Int32 }
    var id = symbols
    var prev = Array(-1..<(n - 1)), next = Array(1...n)
    next[n - 1] = -1
    var alive = [Bool](repeating: true, count: n)
    var queue = Heap<Entry> { $0.rank != $1.rank ? $0.rank < $1.rank : $0.pos < $1.pos }
    for i in 0..<(n - 1) {
        if let m = merges[pairKey(id[i], id[i + 1])] { queue.push(Entry(rank: m.rank, pos: i, result: m.result)) }
    }
    while let top = queue.pop() {
        let p = top.pos
        guard alive[p], next[p] >= 0 else { continue }
        let q = next[p]
        guard let m = merges[pairKey(id[p], id[q])], m.result == top.result else { continue }
        id[p] = m.result
        alive[q] = false
        next[p] = next[q]
        if next[q] >= 0 { prev[next[q]] = p }
        if prev[p] >= 0, let m = merges[pairKey(id[prev[p]], id[p])] {
            queue.push(Entry(rank: m.rank, pos: prev[p], result: m.result))
        }
        if next[p] >= 0, let m = merges[pairKey(id[p], id[next[p]])] {
            queue.push(Entry(rank: m.rank, pos: p, result: m.result))
        }
    }
    var out: [Int32] = []
    out.reserveCapacity(n)
    var i = 0
    while i >= 0 {
        out.append(id[i])
        i = next[i]
    }
    return out
}

/// llama.cpp's `llm_tokenizer_spm_session::tokenize` (src/llama-vocab.cpp), the SentencePiece
/// BPE of a GGUF vocabulary without merges: start from the UTF-8 characters of `text`, and keep
/// merging the adjacent pair whose concatenation is the vocabulary token with the highest score
/// (the leftmost on a tie). A final piece that is not a token (a character outside the
/// vocabulary) becomes its bytes' `<0xNN>` tokens; llama.cpp's `resegment` recursion only ever
/// sees such single characters, since every merge forms a token.
func mergeByScore(_ text: [UInt8], pieces: [[UInt8]: Int32], scores: [Float], byteTokens: [Int32], unknown: Int32?) -> [Int32] {
    struct Symbol { var start: Int; var count: Int; var prev: Int; var next: Int }
    struct Bigram { let left: Int; let right: Int; let score: Float; let size: Int }
    var symbols: [Symbol] = []
    var offset = 0
    while offset < text.count {
        let lead = text[offset]
        let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        let count = min(length, text.count - offset)
        symbols.append(Symbol(start: offset, count: count, prev: symbols.count - 1, next: symbols.count + 1))
        offset += count
    }
    guard !symbols.isEmpty else { return [] }
    symbols[symbols.count - 1].next = -1

    var queue = Heap<Bigram> { $0.score != $1.score ? $0.score > $1.score : $0.left < $1.left }
    func tryAdd(_ left: Int, _ right: Int) {
        guard left >= 0, right >= 0 else { return }
        let a = symbols[left], b = symbols[right]
        let size = a.count + b.count
        guard let token = pieces[Array(text[a.start..<(a.start + size)])] else { return }
        queue.push(Bigram(left: left, right: right, score: scores[Int(token)], size: size))
    }
    for i in 1..<symbols.count { tryAdd(i - 1, i) }
    while let bigram = queue.pop() {
        let left = symbols[bigram.left], right = symbols[bigram.right]
        // Skip a bigram one of whose symbols has merged since it was queued.
        guard left.count > 0, right.count > 0, left.count + right.count == bigram.size else { continue }
        symbols[bigram.left].count += right.count
        symbols[bigram.right].count = 0
        symbols[bigram.left].next = right.next
        if right.next >= 0 { symbols[right.next].prev = bigram.left }
        tryAdd(symbols[bigram.left].prev, bigram.left)
        tryAdd(bigram.left, symbols[bigram.left].next)
    }

    var out: [Int32] = []
    var i = 0
    while i >= 0 {
        let s = symbols[i]
        let bytes = Array(text[s.start..<(s.start + s.count)])
        if let token = pieces[bytes] {
            out.append(token)
        } else {
            for b in bytes {
                if byteTokens[Int(b)] >= 0 { out.append(byteTokens[Int(b)]) } else if let u = unknown { out.append(u) }
            }
        }
        i = s.next
    }
    return out
}

/// transformers' `generate_merges(vocab, vocab_scores)` (tokenization_utils_base.py), which its
/// GGUF converter uses to give a SentencePiece vocabulary without merges the merge list of an HF
/// BPE model: every split of every token into two tokens, taken token by token (each token's
/// splits ordered by the two ids), then sorted by the token's score, then the lengths of the two
/// parts (in scalars), all descending; ties keep their order (Python's sort is stable).
func mergesFromScores(tokens: [String], scores: [Float]) -> [(String, String)] {
    var firstIndex: [[UInt8]: Int] = [:]        // Python dict: the first position of a key…
    var lastId: [[UInt8]: Int] = [:]            // …and the last value stored under it.
    var lastScore: [[UInt8]: Float] = [:]
    var order: [Int] = []
    for (i, t) in tokens.enumerated() {
        let key = Array(t.utf8)
        if firstIndex[key] == nil { firstIndex[key] = i; order.append(i) }
        lastId[key] = i
        lastScore[key] = scores[i]
    }
    struct Candidate { let left: String; let right: String; let score: Float; let leftCount: Int; let rightCount: Int }
    var candidates: [Candidate] = []
    for i in order {
        let token = tokens[i]
        let score = lastScore[Array(token.utf8)] ?? scores[i]
        let scalars = Array(token.unicodeScalars)
        var local: [(Candidate, Int, Int)] = []
        for cut in 1..<max(scalars.count, 1) {
            var l = String.UnicodeScalarView(), r = String.UnicodeScalarView()
            l.append(contentsOf: scalars[..<cut])
            r.append(contentsOf: scalars[cut...])
            let left = String(l), right = String(r)
            guard let li = lastId[Array(left.utf8)], let ri = lastId[Array(right.utf8)] else { continue }
            local.append((Candidate(left: left, right: right, score: score, leftCount: cut, rightCount: scalars.count - cut), li, ri))
        }
        local.sort { $0.1 != $1.1 ? $0.1 < $1.1 : $0.2 < $1.2 }   // distinct cuts have distinct left ids
        candidates.append(contentsOf: local.map(\.0))
    }
    let sorted = candidates.indices.sorted { a, b in
        let x = candidates[a], y = candidates[b]
        if x.score != y.score { return x.score > y.score }
        if x.leftCount != y.leftCount { return x.leftCount > y.leftCount }
        if x.rightCount != y.rightCount { return x.rightCount > y.rightCount }
        return a < b
    }
    return sorted.map { (candidates[$0].left, candidates[$0].right) }
}
