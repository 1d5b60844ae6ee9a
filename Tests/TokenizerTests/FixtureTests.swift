import Foundation
import XCTest
import Common
@testable import Tokenizer

/// The five small tokenizers trained with Hugging Face `tokenizers` (committed, no network):
/// every test string must give HF's ids, with and without the bos token, and HF's decode; and
/// the files `huggingFaceFiles()` writes must give the same ids when read back.
final class FixtureTests: XCTestCase {
    static let names = ["bytelevel-smollm", "bytelevel-llama3", "bytelevel-gpt2", "spm-legacy", "spm-metaspace"]

    func load(_ name: String) throws -> Tokenizer {
        try Tokenizer.load(tokenizerJSON: fixturesDir.appendingPathComponent(name).appendingPathComponent("tokenizer.json"))
    }

    func check(_ name: String) throws {
        let tok = try load(name)
        let expected = try fixtureExpectations(name)
        XCTAssertGreaterThan(expected.count, 50)
        assertMatches(tok, expected, name)
        // decode ∘ encode is the identity wherever Hugging Face's is.
        for row in expected where scalars(row.decoded) == scalars(row.text) {
            XCTAssertEqual(scalars(tok.decode(tok.encode(row.text, addBos: false))), scalars(row.text), "\(name): \(row.text.debugDescription)")
        }
        let back = try exportAndReload(tok, name: name)
        assertMatches(back, expected, "\(name) written by huggingFaceFiles and read back")
        XCTAssertEqual(back.vocabulary, tok.vocabulary, name)
        XCTAssertEqual(back.pipeline, tok.pipeline, name)
    }

    func testByteLevelSmolLM() throws { try check("bytelevel-smollm") }
    func testByteLevelLlama3() throws { try check("bytelevel-llama3") }
    func testByteLevelGPT2() throws { try check("bytelevel-gpt2") }
    func testSentencePieceLegacy() throws { try check("spm-legacy") }
    func testSentencePieceMetaspace() throws { try check("spm-metaspace") }

    /// What each fixture reads as (so that a change in the reader shows here, not only as ids).
    func testShapes() throws {
        let smollm = try load("bytelevel-smollm")
        XCTAssertEqual(smollm.vocabulary.model, .gpt2)
        XCTAssertEqual(smollm.vocabulary.pre, "smollm")
        XCTAssertFalse(smollm.vocabulary.addBos)
        XCTAssertEqual(smollm.vocabulary.tokenTypes?[0], 3)   // <|endoftext|>, a special added token

        let llama3 = try load("bytelevel-llama3")
        XCTAssertEqual(llama3.vocabulary.pre, "llama-bpe")
        XCTAssertTrue(llama3.pipeline.ignoreMerges)
        XCTAssertTrue(llama3.vocabulary.addBos)
        XCTAssertEqual(llama3.vocabulary.bosId.map(llama3.piece), "<|begin_of_text|>")
        XCTAssertEqual(llama3.addedOnly.count, 2)

        let legacy = try load("spm-legacy"), metaspace = try load("spm-metaspace")
        XCTAssertEqual(legacy.vocabulary.model, .llama)
        XCTAssertNil(legacy.vocabulary.pre)
        XCTAssertEqual(legacy.pipeline.spacePrefix, .always)
        XCTAssertEqual(metaspace.pipeline.spacePrefix, .unlessPresent(scheme: "first"))
        XCTAssertEqual(legacy.piece(3), "<0x00>")
        XCTAssertEqual(legacy.vocabulary.tokenTypes?[3], 6)
        XCTAssertEqual(legacy.vocabulary.unkId, 0)
        XCTAssertEqual(legacy.vocabulary.bosId, 1)
        // The two shapes differ exactly where the text starts with a space.
        XCTAssertEqual(legacy.encode(" Hello", addBos: false).first, legacy.encode(" ", addBos: false).first)
        XCTAssertNotEqual(legacy.encode(" Hello", addBos: false), metaspace.encode(" Hello", addBos: false))
        XCTAssertEqual(legacy.encode("Hello world"), metaspace.encode("Hello world"))
    }

    /// A SentencePiece vocabulary from GGUF metadata (scores, no merges) merges by score, as
    /// llama.cpp does; the same vocabulary written as HF files (merges recovered from the scores,
    /// as transformers does) gives the same ids.
    func testSentencePieceByScore() throws {
        // ▁ a b c and the merges ab (best), bc, ▁a, abc, ▁abc; the bytes for anything else.
        var tokens = ["<unk>", "<s>", "</s>"] + (0..<256).map { String(format: "<0x%02X>", $0) }
        let pieces = ["\u{2581}", "a", "b", "c", "ab", "bc", "\u{2581}a", "abc", "\u{2581}ab", "\u{2581}abc"]
        let pieceScores: [Float] = [-1, -2, -3, -4, -5, -6, -7, -8, -9, -10]
        tokens += pieces
        let scores = [Float](repeating: 0, count: 259) + pieceScores
        let types: [Int32] = [2, 3, 3] + [Int32](repeating: 6, count: 256) + [Int32](repeating: 1, count: pieces.count)
        let v = TokenizerVocabulary(model: .llama, pre: "default", tokens: tokens, scores: scores, tokenTypes: types,
                                    bosId: 1, eosId: 2, unkId: 0)
        XCTAssertTrue(v.addBos)   // llama.cpp's default for SentencePiece
        let tok = try Tokenizer(v, source: "synthetic.gguf")
        let id = { (p: String) in tokens.firstIndex(of: p) ?? -1 }
        // "▁abc": ▁a (-7) is not the best first pair, ab (-5) is; then ▁ab (-9) over abc? no:
        // after ab, pairs are ▁+ab (▁ab, -9) and ab+c (abc, -8): abc wins, then ▁+abc (▁abc, -10).
        XCTAssertEqual(tok.encode("abc"), [1, id("\u{2581}abc")])
        XCTAssertEqual(tok.encode("abc", addBos: false), [id("\u{2581}abc")])
        XCTAssertEqual(tok.encode("cab", addBos: false), [id("\u{2581}"), id("c"), id("ab")])
        // é is not in the vocabulary: its two UTF-8 bytes.
        XCTAssertEqual(tok.encode("é", addBos: false), [id("\u{2581}"), 3 + 0xC3, 3 + 0xA9])
        XCTAssertEqual(tok.decode(tok.encode("a é abc", addBos: false)), "a é abc")
        XCTAssertEqual(tok.decode(tok.encode("x")), "<s> x")   // transformers' default: specials kept
        XCTAssertEqual(tok.encode("", addBos: false), [])
        XCTAssertEqual(tok.encode(""), [1])

        let back = try exportAndReload(tok, name: "synthetic-spm")
        for text in ["abc", "cab", "a é abc", " abc", "  a  b  ", "bcab\nabc", ""] {
            XCTAssertEqual(back.encode(text), tok.encode(text), text.debugDescription)
            XCTAssertEqual(back.decode(back.encode(text)), tok.decode(tok.encode(text)), text.debugDescription)
        }
    }

    /// Speed: a 10 KB paragraph in well under a second, even in a debug build, with a fresh
    /// tokenizer (empty word cache) and few repeated words.
    func testSpeedTenKilobytes() throws {
        let text = variedParagraph(bytes: 10_000)
        for name in Self.names {
            let tok = try load(name)
            let start = Date()
            let ids = tok.encode(text, addBos: false)
            let seconds = Date().timeIntervalSince(start)
            XCTAssertGreaterThan(ids.count, 1000, name)
            XCTAssertLessThan(seconds, 0.5, "\(name): \(text.utf8.count) bytes took \(seconds) s")
            print("\(name): \(text.utf8.count) bytes → \(ids.count) ids in \(Int(seconds * 1000)) ms")
            XCTAssertEqual(scalars(tok.decode(ids)), scalars(text), name)
        }
    }
}
