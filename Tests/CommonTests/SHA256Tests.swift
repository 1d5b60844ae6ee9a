import Foundation
import XCTest
@testable import Common

final class SHA256Tests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(SHA256.hex(of: Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(of: Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(of: Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex(of: Data(repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Odd-sized updates must give the same digest as one update (block boundary handling).
    func testStreamingMatchesOneShot() throws {
        var rng = SeededRNG(seed: 7)
        let bytes = (0..<10_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let whole = SHA256.hex(of: Data(bytes))
        var h = SHA256Hasher()
        var i = 0
        var step = 1
        while i < bytes.count {
            let j = min(bytes.count, i + step)
            bytes[i..<j].withUnsafeBytes { h.update($0) }
            i = j
            step = step % 97 + 13
        }
        XCTAssertEqual(h.finalize(), whole)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(getpid()).bin")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertEqual(try SHA256.hex(ofFile: url), whole)
    }
}
