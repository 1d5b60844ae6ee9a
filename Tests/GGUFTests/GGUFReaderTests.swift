import XCTest
import Foundation
import Common
import ModelFormat
import TestKit
@testable import GGUF

/// The GGUF reader against (a) gguf-py, the reference implementation (a committed file it
/// wrote, with its dequantized values: bit equality), (b) blocks built by hand here with
/// values worked out from ggml's block definitions, and (c) every kind of bad file.
final class GGUFReaderTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func write(_ b: GGUFBuilder, _ name: String = "m.gguf") throws -> URL {
        let u = tmp.appendingPathComponent(name)
        try b.write(to: u)
        return u
    }
    func write(bytes: [UInt8], _ name: String = "m.gguf") throws -> URL {
        let u = tmp.appendingPathComponent(name)
        try Data(bytes).write(to: u)
        return u
    }
    func error(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String {
        do { try body() } catch { return "\(error)" }
        XCTFail("no error", file: file, line: line)
        return ""
    }

    // MARK: reference file (gguf-py)

    func testEveryMetadataTypeAsGGUFPyWroteIt() throws {
        let f = try GGUFFile.open(Self.fixtures.appendingPathComponent("types.gguf"))
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.alignment, 32)
        let m = f.metadata
        XCTAssertEqual(m["general.architecture"], .string("llama"))
        XCTAssertEqual(m["test.uint8"], .uint8(200))
        XCTAssertEqual(m["test.int8"], .int8(-100))
        XCTAssertEqual(m["test.uint16"], .uint16(60000))
        XCTAssertEqual(m["test.int16"], .int16(-30000))
        XCTAssertEqual(m["test.uint32"], .uint32(4_000_000_000))
        XCTAssertEqual(m["test.int32"], .int32(-2_000_000_000))
        XCTAssertEqual(m["test.float32"], .float32(0.15625))
        XCTAssertEqual(m["test.bool"], .bool(true))
        XCTAssertEqual(m["test.string"], .string("héllo, 世界 🙂"))
        XCTAssertEqual(m["test.uint64"], .uint64(18_000_000_000_000_000_000))
        XCTAssertEqual(m["test.int64"], .int64(-9_000_000_000_000_000_000))
        XCTAssertEqual(m["test.float64"], .float64(1e-300))
        XCTAssertEqual(m["test.strings"], .array(["a", "", "▁the", "Ġworld", "<0x0A>"].map { .string($0) }))
        XCTAssertEqual(m["test.floats"], .array([.float32(1.5), .float32(-2.25), .float32(0)]))
        XCTAssertEqual(m["test.int32s"], .array([.int32(1), .int32(-2), .int32(3)]))
        XCTAssertEqual(f.keys.first, "general.architecture", "keys keep file order")
    }

    func testEverySupportedTypeDequantizesBitIdenticallyToGGUFPy() throws {
        let f = try GGUFFile.open(Self.fixtures.appendingPathComponent("types.gguf"))
        let expected = try Safetensors.read(Self.fixtures.appendingPathComponent("types-expected.safetensors"))
        var seen = Set<GGMLType>()
        for t in f.tensors {
            let ref = try XCTUnwrap(expected[t.name], "no expected values for \(t.name)").floats()
            XCTAssertEqual(t.shape, [2, 256], t.name)
            let got = try f.floats(t.name)
            XCTAssertEqual(got.count, ref.count)
            let bad = zip(got, ref).enumerated().first { $0.element.0.bitPattern != $0.element.1.bitPattern }
            XCTAssertNil(bad, "\(t.name) (\(t.type)): element \(bad?.offset ?? -1) is \(bad?.element.0 ?? 0), gguf-py says \(bad?.element.1 ?? 0)")
            XCTAssertGreaterThan(ref.map(abs).max() ?? 0, 0, "\(t.name) reference is all zero")
            // Row access decodes the same values.
            XCTAssertEqual(try f.rows(t.name, [1]), Array(got[256...]), t.name)
            seen.insert(t.type)
        }
        XCTAssertEqual(seen, Set(GGMLType.supported), "the fixture covers every supported type")
    }

    // MARK: blocks built by hand

    func halfBytes(_ f: Float) -> [UInt8] { let h = Half.fromFloat(f); return [UInt8(h & 0xFF), UInt8(h >> 8)] }

    func decode(_ type: GGMLType, _ bytes: [UInt8], count: Int) throws -> [Float] {
        var b = GGUFBuilder()
        b.raw("t", shape: [count], type: type.rawValue, bytes)
        return try GGUFFile.open(try write(b)).floats("t")
    }

    func testQ4_1BlockAsTheIssueDefinesIt() throws {
        // d = 0.5, m = −1; qs[j] = j | (15 − j) << 4: elements 0–15 are the low nibbles (w = d·q + m).
        let qs = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let got = try decode(.q4_1, halfBytes(0.5) + halfBytes(-1) + qs, count: 32)
        XCTAssertEqual(Array(got[0..<16]), (0..<16).map { 0.5 * Float($0) - 1 })
        XCTAssertEqual(Array(got[16..<32]), (0..<16).map { 0.5 * Float(15 - $0) - 1 })
    }

    func testQ4_0Q8_0AndQ5BlocksByHand() throws {
        let qs = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        XCTAssertEqual(try decode(.q4_0, halfBytes(2) + qs, count: 32), (0..<16).map { 2 * Float($0 - 8) } + (0..<16).map { 2 * Float(7 - $0) })
        let q8: [Int8] = (0..<32).map { Int8($0 * 8 - 128) }
        XCTAssertEqual(try decode(.q8_0, halfBytes(0.25) + q8.map { UInt8(bitPattern: $0) }, count: 32), q8.map { Float($0) * 0.25 })
        // Q5_0: the fifth bit of element j is bit j of qh; set it for elements 1, 17 and 31.
        let qh: UInt32 = 1 << 1 | 1 << 17 | 1 << 31
        let qhb = (0..<4).map { UInt8((qh >> (8 * UInt32($0))) & 0xFF) }
        let zero = [UInt8](repeating: 0, count: 16)
        var want = [Float](repeating: -16, count: 32)
        for j in [1, 17, 31] { want[j] = 0 }
        XCTAssertEqual(try decode(.q5_0, halfBytes(1) + qhb + zero, count: 32), want)
        // Q5_1 with the same bits, d = 1, m = 0.5: w = q + 0.5 where q is 16 for those elements.
        var want1 = [Float](repeating: 0.5, count: 32)
        for j in [1, 17, 31] { want1[j] = 16.5 }
        XCTAssertEqual(try decode(.q5_1, halfBytes(1) + halfBytes(0.5) + qhb + zero, count: 32), want1)
    }

    func testPlainFloatTypes() throws {
        let vals: [Float] = [1, -2.5, 0.0078125, 65504]
        XCTAssertEqual(try decode(.f16, vals.flatMap(halfBytes), count: 4), vals)
        let bf: [UInt8] = vals.flatMap { v -> [UInt8] in let b = BFloat.fromFloat(v); return [UInt8(b & 0xFF), UInt8(b >> 8)] }
        XCTAssertEqual(try decode(.bf16, bf, count: 4), vals.map { BFloat.toFloat(BFloat.fromFloat($0)) })
    }

    func testQ6_KScaleAndOffsetByHand() throws {
        // All q = 0 except: ql/qh giving q = 63 for element 0 and q = 32 for element 200; scales
        // sc[i] = i − 8; d = 0.5. w = d·sc·(q − 32).
        var block = [UInt8](repeating: 0, count: 210)
        block[0] = 0x0F; block[128] = 0x03                        // element 0: low nibble 15, qh bits 0–1 = 3 → 63
        let e = 200, n = e / 128, k = (e % 128) / 32, l = e % 32  // element 200: n 1, k 2, l 8
        block[n * 64 + (k % 2) * 32 + l] = 0x00                    // nibble 0 (high nibble of that byte)
        block[128 + n * 32 + l] = UInt8(2 << (2 * k))              // qh bits 2k = 2 → q = 32
        for i in 0..<16 { block[192 + i] = UInt8(bitPattern: Int8(i - 8)) }
        block[208...209] = halfBytes(0.5)[...]
        let got = try decode(.q6_K, block, count: 256)
        XCTAssertEqual(got[0], 0.5 * Float(-8) * Float(63 - 32))
        XCTAssertEqual(got[200], 0)
        // An untouched element of sub-block 5 (elements 80–95): q = 0 → w = d·sc·(−32).
        XCTAssertEqual(got[81], 0.5 * Float(5 - 8) * -32)
    }

    /// Q4_K / Q5_K (the pair behind Q4_K_M / Q5_K_M files): 8 sub-blocks of 32, 6-bit scales
    /// and mins packed into 12 bytes as ggml's quantize_row_q4_K_ref packs them (sub-blocks 4–7
    /// need the high bits), w = (d·sc)·q − (dmin·m).
    func testQ4_KAndQ5_KBlocksByHand() throws {
        let sc: [UInt8] = [1, 7, 20, 63, 40, 33, 62, 17], mn: [UInt8] = [0, 5, 63, 2, 48, 1, 35, 60]
        var scales = [UInt8](repeating: 0, count: 12)
        for j in 0..<8 {
            if j < 4 {
                scales[j] = sc[j]; scales[j + 4] = mn[j]
            } else {
                scales[j + 4] = (sc[j] & 0xF) | ((mn[j] & 0xF) << 4)
                scales[j - 4] |= (sc[j] >> 4) << 6
                scales[j] |= (mn[j] >> 4) << 6
            }
        }
        // q of element e: (e * 7) % 16; sub-block j = e / 32 takes the low nibbles of bytes
        // (j/2)·32 … +31 when j is even, the high nibbles when odd.
        func q(_ e: Int) -> Int { (e * 7) % 16 }
        var qs = [UInt8](repeating: 0, count: 128)
        for e in 0..<256 {
            let j = e / 32, l = e % 32, byte = (j / 2) * 32 + l
            qs[byte] |= UInt8(q(e)) << (j % 2 == 0 ? 0 : 4)
        }
        let d: Float = 0.25, dmin: Float = 0.125
        let got = try decode(.q4_K, halfBytes(d) + halfBytes(dmin) + scales + qs, count: 256)
        XCTAssertEqual(got, (0..<256).map { e in (d * Float(sc[e / 32])) * Float(q(e)) - dmin * Float(mn[e / 32]) })
        // Q5_K: the same plus a fifth bit from qh (bit j of qh[l] for sub-block j), set where e % 3 == 0.
        var qh = [UInt8](repeating: 0, count: 32)
        for e in 0..<256 where e % 3 == 0 { qh[e % 32] |= 1 << UInt8(e / 32) }
        let got5 = try decode(.q5_K, halfBytes(d) + halfBytes(dmin) + scales + qh + qs, count: 256)
        XCTAssertEqual(got5, (0..<256).map { e in (d * Float(sc[e / 32])) * Float(q(e) + (e % 3 == 0 ? 16 : 0)) - dmin * Float(mn[e / 32]) })
    }

    // MARK: bad files: each error names the file and what is wrong

    func minimal() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.set("general.architecture", .string("llama"))
        b.f32("w", shape: [2, 32], (0..<64).map(Float.init))
        return b
    }

    func testTruncatedFilesAndWrongMagicOrVersion() throws {
        let good = minimal().bytes()
        XCTAssertNoThrow(try GGUFFile.open(try write(bytes: good)))
        for cut in [2, 10, 30, good.count - 5] {
            let e = error { _ = try GGUFFile.open(try write(bytes: Array(good[0..<cut]), "cut\(cut).gguf")) }
            XCTAssertTrue(e.contains("cut\(cut).gguf"), e)
            XCTAssertTrue(e.contains("truncated") || e.contains("too short") || e.contains("past the end"), e)
        }
        var magic = good; magic[0] = UInt8(ascii: "X")
        XCTAssertTrue(error { _ = try GGUFFile.open(try write(bytes: magic)) }.contains("not \"GGUF\""))
        var v1 = minimal(); v1.version = 1
        XCTAssertTrue(error { _ = try GGUFFile.open(try write(v1)) }.contains("version 1"))
        var v9 = minimal(); v9.version = 9
        XCTAssertTrue(error { _ = try GGUFFile.open(try write(v9)) }.contains("version 9"))
        var be = minimal(); be.version = UInt32(3).byteSwapped
        XCTAssertTrue(error { _ = try GGUFFile.open(try write(be)) }.contains("big-endian"))
        XCTAssertNoThrow(try { var v2 = minimal(); v2.version = 2; _ = try GGUFFile.open(try write(v2, "v2.gguf")) }())
    }

    func testTensorTableLiesAndBadOffsets() throws {
        var lie = minimal(); lie.tensorCountOverride = 5
        let e1 = error { _ = try GGUFFile.open(try write(lie)) }
        // The sixth "tensor" is read from the padding after the real table: refused, not taken.
        XCTAssertTrue(e1.contains("m.gguf") && e1.contains("tensor \"\" has 0 dimensions") && e1.contains("corrupt"), e1)
        var huge = minimal(); huge.tensorCountOverride = 1 << 60
        XCTAssertTrue(error { _ = try GGUFFile.open(try write(huge)) }.contains("tensor count is wrong"))
        var mis = minimal(); mis.tensors[0].offsetOverride = 4
        XCTAssertTrue(error { _ = try GGUFFile.open(try write(mis)) }.contains("not a multiple of the alignment 32"))
        var past = minimal(); past.tensors[0].offsetOverride = 4096
        let e2 = error { _ = try GGUFFile.open(try write(past)) }
        XCTAssertTrue(e2.contains("tensor \"w\"") && e2.contains("runs past the end"), e2)
        var unknown = minimal(); unknown.tensors[0].type = 16
        let e3 = error { _ = try GGUFFile.open(try write(unknown)) }
        XCTAssertTrue(e3.contains("IQ2_XXS") && e3.contains("Q4_K"), e3)
        var weird = minimal(); weird.tensors[0].type = 77
        XCTAssertTrue(error { _ = try GGUFFile.open(try write(weird)) }.contains("unknown type 77"))
        var rows = GGUFBuilder(); rows.raw("q", shape: [1, 40], type: 8, [UInt8](repeating: 0, count: 34))
        XCTAssertTrue(error { _ = try GGUFFile.open(try write(rows)) }.contains("not a multiple of Q8_0's block of 32"))
        var align = minimal(); align.set("general.alignment", .u32(24))
        XCTAssertTrue(error { _ = try GGUFFile.open(try write(align)) }.contains("not a power of two"))
    }

    func testMetadataLongerThanTheFile() throws {
        // A string whose length field claims more bytes than the file has.
        var b = GGUFBuilder(); b.set("general.name", .string("abc"))
        var bytes = b.bytes()
        let lenAt = 24 + 8 + "general.name".utf8.count + 4
        bytes.replaceSubrange(lenAt..<(lenAt + 8), with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Array($0) })
        let e = error { _ = try GGUFFile.open(try write(bytes: bytes)) }
        XCTAssertTrue(e.contains("metadata \"general.name\"") && e.contains("claims"), e)
        // An array whose count is larger than the file.
        var a = GGUFBuilder(); a.set("tokenizer.ggml.tokens", .strings(["a", "b"]))
        var ab = a.bytes()
        let countAt = 24 + 8 + "tokenizer.ggml.tokens".utf8.count + 4 + 4
        ab.replaceSubrange(countAt..<(countAt + 8), with: withUnsafeBytes(of: UInt64(1 << 33).littleEndian) { Array($0) })
        let e2 = error { _ = try GGUFFile.open(try write(bytes: ab)) }
        XCTAssertTrue(e2.contains("tokenizer.ggml.tokens") && e2.contains("elements"), e2)
        // A value type GGUF does not define.
        var t = GGUFBuilder(); t.set("x", .u8(1))
        var tb = t.bytes()
        tb[24 + 8 + 1] = 99
        XCTAssertTrue(error { _ = try GGUFFile.open(try write(bytes: tb)) }.contains("unknown value type 99"))
    }
}
