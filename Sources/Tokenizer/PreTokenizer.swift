// The pre-tokenizers of byte-level BPE: text → words, before any merge. Each split expression
// is written by hand over Unicode scalars, one function per alternative in the order the
// expression lists them, so that the first alternative that matches at a position wins, as in
// the backtracking engines Hugging Face (Oniguruma) and llama.cpp's hand-written versions
// (src/unicode.cpp, unicode_regex_split_custom_gpt2/_llama3) use.
//
// Character classes, as Oniguruma defines them for Unicode text:
//   \p{L}  general category L* (Lu, Ll, Lt, Lm, Lo)
//   \p{N}  general category N* (Nd, Nl, No), which is also Rust's char::is_numeric (Digits)
//   \s     the White_Space property (U+0009–000D, U+0020, U+0085, U+00A0, U+1680, U+2000–200A,
//          U+2028, U+2029, U+202F, U+205F, U+3000)
// Unassigned scalars and marks (M*) fall in neither, so they are "other" ([^\s\p{L}\p{N}]).

/// The split expression a byte-level vocabulary was trained with (`tokenizer.ggml.pre`).
enum PreTokenizerSplit: String, Sendable, CaseIterable {
    /// GPT-2's expression (HF `ByteLevel(use_regex=true)`, llama.cpp LLAMA_VOCAB_PRE_TYPE_GPT2):
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2 = "gpt-2"
    /// SmolLM2's: every digit alone (HF `Digits(individual_digits=true)`), then GPT-2's expression
    /// inside each piece (llama.cpp LLAMA_VOCAB_PRE_TYPE_SMOLLM: "\p{N}", then the GPT-2 expression).
    case smollm
    /// Llama-3's (HF `Split(Regex(…), "isolated")` + `ByteLevel(use_regex=false)`, llama.cpp
    /// LLAMA_VOCAB_PRE_TYPE_LLAMA3):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3 = "llama-bpe"

    /// `tokenizer.ggml.pre` names llama.cpp maps to these (src/llama-vocab.cpp). "default" is what
    /// llama.cpp assumes when the key is missing; transformers' GGUF converter gives such a file
    /// GPT-2's ByteLevel pre-tokenizer, and so do we. (llama.cpp's own "default" runs three more
    /// splits first; we follow the Hugging Face side, whose files we write.)
    static let ggufNames: [String: PreTokenizerSplit] = [
        "default": .gpt2, "gpt-2": .gpt2, "smollm": .smollm, "llama-bpe": .llama3, "llama3": .llama3, "llama-v3": .llama3,
    ]

    /// The expressions as Hugging Face's `Split` pre-tokenizer spells them in tokenizer.json.
    static let gpt2Regex = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Splits `scalars` into words: the returned ranges cover the text in order, without gaps.
    func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        let kinds = scalars.map(ScalarKind.init)
        var out: [Range<Int>] = []
        out.reserveCapacity(scalars.count / 3 + 1)
        switch self {
        case .gpt2:
            splitGPT2(scalars, kinds, 0..<scalars.count, into: &out)
        case .smollm:
            // Digits(individual_digits: true): each \p{N} scalar is a piece of its own; GPT-2's
            // expression then runs inside every other piece, which ends where a digit begins
            // (so `\s+(?!\S)` sees the end of the piece there, not the digit).
            var start = 0
            for (i, k) in kinds.enumerated() where k == .number {
                if start < i { splitGPT2(scalars, kinds, start..<i, into: &out) }
                out.append(i..<(i + 1))
                start = i + 1
            }
            if start < scalars.count { splitGPT2(scalars, kinds, start..<scalars.count, into: &out) }
        case .llama3:
            splitLlama3(scalars, kinds, 0..<scalars.count, into: &out)
        }
        return out
    }
}

/// The class of one scalar for the split expressions.
enum ScalarKind: UInt8, Sendable {
    case other, letter, number, whitespace

    init(_ u: Unicode.Scalar) {
        if u.value < 0x80 {
            // ASCII fast path, same answers as below.
            switch u.value {
            case 0x41...0x5A, 0x61...0x7A: self = .letter
            case 0x30...0x39: self = .number
            case 0x09...0x0D, 0x20: self = .whitespace
            default: self = .other
            }
            return
        }
        let p = u.properties
        if p.isWhitespace { self = .whitespace; return }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: self = .letter
        case .decimalNumber, .letterNumber, .otherNumber: self = .number
        default: self = .other
        }
    }
}

private let space: Unicode.Scalar = " ", apostrophe: Unicode.Scalar = "'"

/// The end of the run of `kind` starting at `p` (p itself if none).
@inline(__always)
private func runEnd(_ kinds: [ScalarKind], from p: Int, to hi: Int, _ kind: ScalarKind) -> Int {
    var q = p
    while q < hi, kinds[q] == kind { q += 1 }
    return q
}

/// `'s|'t|'re|'ve|'m|'ll|'d` at p: the match length, or 0. `fold` makes it case-insensitive as
/// Llama-3's `(?i:…)`: ASCII letters only (Oniguruma does not fold "ſ" to "s" here; checked
/// with tokenizers 0.23.3 on "'ſ").
@inline(__always)
private func contraction(_ s: [Unicode.Scalar], at p: Int, to hi: Int, fold: Bool) -> Int {
    guard s[p] == apostrophe, p + 1 < hi else { return 0 }
    func lower(_ u: Unicode.Scalar) -> UInt32 {
        fold && u.value >= 0x41 && u.value <= 0x5A ? u.value + 0x20 : u.value
    }
    let a = lower(s[p + 1])
    if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 2 }  // s t m d
    guard p + 2 < hi else { return 0 }
    let b = lower(s[p + 2])
    if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 }  // re ve ll
    return 0
}

/// The whitespace alternatives both expressions end with, at p where a whitespace run starts:
/// `\s+(?!\S)` keeps the run's last scalar for the next word unless the run ends the piece (or
/// is one scalar long); `\s+` takes a one-scalar run.
@inline(__always)
private func whitespaceEnd(_ kinds: [ScalarKind], at p: Int, to hi: Int) -> Int {
    let end = runEnd(kinds, from: p, to: hi, .whitespace)
    return end < hi && end - p > 1 ? end - 1 : end
}

/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
private func splitGPT2(_ s: [Unicode.Scalar], _ kinds: [ScalarKind], _ piece: Range<Int>, into out: inout [Range<Int>]) {
    let hi = piece.upperBound
    var p = piece.lowerBound
    while p < hi {
        var end: Int
        let c = contraction(s, at: p, to: hi, fold: false)
        if c > 0 {
            end = p + c
        } else {
            // ` ?X+` for X in letter, number, other: an optional leading space, then a run.
            let q = s[p] == space && p + 1 < hi && kinds[p + 1] != .whitespace ? p + 1 : p
            switch kinds[q] {
            case .letter, .number, .other: end = runEnd(kinds, from: q, to: hi, kinds[q])
            case .whitespace: end = whitespaceEnd(kinds, at: p, to: hi)
            }
        }
        out.append(p..<end)
        p = end
    }
}

/// Llama-3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
/// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
private func splitLlama3(_ s: [Unicode.Scalar], _ kinds: [ScalarKind], _ piece: Range<Int>, into out: inout [Range<Int>]) {
    let hi = piece.upperBound
    var p = piece.lowerBound
    func isCRLF(_ i: Int) -> Bool { s[i].value == 0x0D || s[i].value == 0x0A }
    while p < hi {
        var end: Int
        let k = kinds[p]
        let c = contraction(s, at: p, to: hi, fold: true)
        if c > 0 {
            end = p + c
        } else if k == .letter {
            // `[^\r\n\p{L}\p{N}]?\p{L}+` with the optional scalar absent.
            end = runEnd(kinds, from: p, to: hi, .letter)
        } else if k != .number && !isCRLF(p) && p + 1 < hi && kinds[p + 1] == .letter {
            // … with one scalar (space, tab, punctuation, mark…) before the letters.
            end = runEnd(kinds, from: p + 1, to: hi, .letter)
        } else if k == .number {
            // `\p{N}{1,3}`
            end = min(runEnd(kinds, from: p, to: hi, .number), p + 3)
        } else if k == .other || (s[p] == space && p + 1 < hi && kinds[p + 1] == .other) {
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            end = runEnd(kinds, from: k == .other ? p : p + 1, to: hi, .other)
            while end < hi, isCRLF(end) { end += 1 }
        } else {
            // A whitespace run. `\s*[\r\n]+`: through the run's last CR or LF, if it has one.
            let run = runEnd(kinds, from: p, to: hi, .whitespace)
            if let last = (p..<run).last(where: isCRLF) {
                end = last + 1
            } else {
                end = whitespaceEnd(kinds, at: p, to: hi)
            }
        }
        out.append(p..<end)
        p = end
    }
}
