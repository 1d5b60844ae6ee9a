import Foundation
import XCTest
@testable import Tokenizer

/// The hand-written split expressions on cases worked out from the regular expressions
/// (the fixtures check them against Hugging Face on many more strings).
final class PreTokenizerTests: XCTestCase {
    func words(_ split: PreTokenizerSplit, _ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        return split.split(s).map { r in
            var v = String.UnicodeScalarView()
            v.append(contentsOf: s[r])
            return String(v)
        }
    }

    func testGPT2() {
        XCTAssertEqual(words(.gpt2, "Hello world"), ["Hello", " world"])
        XCTAssertEqual(words(.gpt2, "a   b"), ["a", "  ", " b"])          // \s+(?!\S) leaves one space for " b"
        XCTAssertEqual(words(.gpt2, "a   "), ["a", "   "])                // … but not at the end
        XCTAssertEqual(words(.gpt2, "a\tb"), ["a", "\t", "b"])
        XCTAssertEqual(words(.gpt2, "don't I'M"), ["don", "'t", " I", "'", "M"])   // case-sensitive
        XCTAssertEqual(words(.gpt2, "x 123 4.5"), ["x", " 123", " 4", ".", "5"])
        XCTAssertEqual(words(.gpt2, " ?! 'quoted'"), [" ?!", " '", "quoted", "'"])
        XCTAssertEqual(words(.gpt2, "a\u{00A0}b"), ["a", "\u{00A0}", "b"])   // NBSP is \s
        XCTAssertEqual(words(.gpt2, "e\u{301}t\u{e9}"), ["e", "\u{301}", "t\u{e9}"])   // a mark is neither L nor N
        XCTAssertEqual(words(.gpt2, ""), [])
    }

    func testSmolLM() {
        XCTAssertEqual(words(.smollm, "a  1"), ["a", "  ", "1"])         // the digit ends the piece
        XCTAssertEqual(words(.smollm, "x 12 y"), ["x", " ", "1", "2", " y"])
        XCTAssertEqual(words(.smollm, "½²"), ["½", "²"])                 // \p{N}, not only 0-9
    }

    func testLlama3() {
        XCTAssertEqual(words(.llama3, "Hello world"), ["Hello", " world"])
        XCTAssertEqual(words(.llama3, "I'M don'T"), ["I", "'M", " don", "'T"])   // case-insensitive
        XCTAssertEqual(words(.llama3, "1234567"), ["123", "456", "7"])
        XCTAssertEqual(words(.llama3, "(hi) ...\n\nx"), ["(hi", ")", " ...\n\n", "x"])
        XCTAssertEqual(words(.llama3, "a \n  b"), ["a", " \n", " ", " b"])
        XCTAssertEqual(words(.llama3, "\tword"), ["\tword"])
        XCTAssertEqual(words(.llama3, "'\u{17F}"), ["'\u{17F}"])   // no Unicode folding of ſ
    }

    func testByteAlphabet() {
        let c = ByteLevelAlphabet.characters
        XCTAssertEqual(Set(c).count, 256)
        XCTAssertEqual(c[0x20], "Ġ")
        XCTAssertEqual(c[0x0A], "Ċ")
        XCTAssertEqual(c[0x41], "A")
        XCTAssertEqual(c[0xAD].value, 0x143)
        XCTAssertEqual(ByteLevelAlphabet.decode("Ġhello"), Array(" hello".utf8))
        XCTAssertNil(ByteLevelAlphabet.decode("▁"))
    }
}
