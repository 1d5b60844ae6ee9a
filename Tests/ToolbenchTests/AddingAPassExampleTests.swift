// BEGIN EXAMPLE (docs/adding-a-pass.md shows this region verbatim; a test keeps them identical)
import Foundation
import ModelFormat
import Toolbench

/// `cast-dtype`: store the float tensors in half precision (halves the checkpoint).
public struct CastDType: CompressionPass {
    public static let name = "cast-dtype"
    public static let summary = "Store every float tensor as float16 or bfloat16 (round to nearest even)."

    public enum Target: String, OptionEnum { case float16, bfloat16 }

    public struct Options: PassOptions {
        public var dtype: Target = .bfloat16

        public init() {}

        // Each option once: its key, its help line and where it is stored. Decoding (strict,
        // defaults kept), encoding and the `slmrec passes` listing (its type and default are
        // read off the value) all come from this table.
        static let table = OptionTable<Options>([
            .option("dtype", \.dtype, "Storage dtype of the float tensors."),
        ])
        public init(from decoder: Decoder) throws { try Self.table.decode(&self, from: decoder) }
        public func encode(to encoder: Encoder) throws { try Self.table.encode(self, to: encoder) }
        public static var fields: [OptionField] { table.fields(defaults: Options()) }
    }

    public init() {}

    /// Cheap: config only. int8 weights have nothing to cast.
    public func check(_ model: ModelSummary, options: Options, references: [String: PlannedArtifact]) throws -> PlannedOutput {
        if model.isQuantized {
            throw passError("the model is int8-quantized", fix: "cast before quantizing")
        }
        var out = model
        out.config.torchDtype = options.dtype.rawValue
        return PlannedOutput(checkpoint: out)
    }

    public func apply(_ context: PassContext, options: Options) throws -> PassResult {
        let ck = try context.loadInput()
        let dtype: DType = options.dtype == .float16 ? .f16 : .bf16
        var out = ck
        for (name, t) in ck.tensors where t.dtype.isFloat { out.tensors[name] = try t.converted(to: dtype) }
        out.config.torchDtype = options.dtype.rawValue
        let before = ck.tensors.values.reduce(0) { $0 + $1.data.count }
        let after = out.tensors.values.reduce(0) { $0 + $1.data.count }
        context.log("\(before) → \(after) bytes")
        return PassResult(checkpoint: out, metrics: ["bytes_before": .int(before), "bytes_after": .int(after)])
    }
}
// END EXAMPLE

import XCTest
import TestKit

final class AddingAPassExampleTests: XCTestCase {
    /// The documented example compiles (it is this file) and the doc shows exactly this code.
    func testDocumentShowsThisFile() throws {
        let me = try String(contentsOfFile: "\(#filePath)", encoding: .utf8)
        let doc = try String(contentsOf: SharedData.repoRoot.appendingPathComponent("docs/adding-a-pass.md"), encoding: .utf8)
        func region(_ s: String, from a: String, to b: String) -> String? {
            guard let r1 = s.range(of: a), let r2 = s.range(of: b, range: r1.upperBound..<s.endIndex) else { return nil }
            return String(s[r1.upperBound..<r2.lowerBound])
        }
        let code = try XCTUnwrap(region(me, from: "a test keeps them identical)\n", to: "// END EXAMPLE"))
        let shown = try XCTUnwrap(region(doc, from: "<!-- example: Tests/ToolbenchTests/AddingAPassExampleTests.swift -->\n```swift\n", to: "```\n<!-- end example -->"))
        XCTAssertEqual(shown, code, "docs/adding-a-pass.md's code block differs from the example pass in this file")
    }

    func testExamplePassConforms() throws {
        XCTAssertEqual(try PassConformance.check(CastDType.self, options: "{dtype: 'float16'}", checkpoint: PassConformance.tinyCheckpoint()), [])
    }
}
