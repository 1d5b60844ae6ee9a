import Foundation
import Common
import ModelFormat
import Engine
import Toolbench

/// The conformance kit every pass's test target runs (swift-log's shared test kit, for
/// passes). It checks the protocol's implementation requirements that can be checked
/// generically and returns every violation; a test asserts the list is empty:
///
///     XCTAssertEqual(try PassConformance.check(PruneLayers.self, options: "{strategy: 'keep-first', keep: 1}",
///                                              checkpoint: tiny), [])
public enum PassConformance {
    /// - Parameters:
    ///   - options: a valid JSON5 options object for `checkpoint`.
    ///   - checkpoint: a small model the pass accepts with these options.
    ///   - references: bound references (name → directory) for `apply`.
    public static func check<P: CompressionPass>(_ type: P.Type, options: String, checkpoint: Checkpoint,
                                                 references: [String: URL] = [:]) throws -> [String] {
        var problems: [String] = []
        func expect(_ ok: Bool, _ what: @autoclosure () -> String) { if !ok { problems.append(what()) } }

        // Name and summary.
        let kebab = P.name.range(of: "^[a-z][a-z0-9]*(-[a-z0-9]+)*$", options: .regularExpression) != nil
        expect(kebab, "name \"\(P.name)\" is not kebab-case")
        expect(!P.summary.isEmpty && !P.summary.contains("\n") && P.summary.count <= 160, "summary must be one line of at most 160 characters")
        let fieldNames = P.Options.fields.map(\.name)
        expect(Set(fieldNames).count == fieldNames.count, "Options.fields has duplicate names")
        for f in P.Options.fields { expect(!f.help.isEmpty && !f.help.contains("\n"), "option \(f.name) needs one line of help") }
        for r in P.references {
            expect(r.name.range(of: "^[a-z][a-z0-9_]*$", options: .regularExpression) != nil, "reference name \"\(r.name)\" should be lower_snake")
        }

        // Strict decoding: the example decodes; documented names are the decoded ones.
        let tree = try JSONText.parseJSON5(Data(options.utf8), file: "options")
        guard case .object(var obj) = tree else { return problems + ["options example is not an object"] }
        let registered = AnyPass(P.self)
        let decoded: any PassOptions
        do { decoded = try registered.decodeOptions(tree, path: "options") } catch {
            return problems + ["the example options do not decode: \(error)"]
        }
        let asked = StrictDecoding.askedKeys(P.Options.self, decoding: tree)
        for k in asked.subtracting(fieldNames) { problems.append("option \"\(k)\" is decoded but not listed in Options.fields") }
        for k in Set(fieldNames).subtracting(asked) { problems.append("Options.fields lists \"\(k)\" but decoding never reads it") }

        // Unknown and misspelled keys are rejected, with a suggestion.
        var withUnknown = obj
        withUnknown["zz_not_an_option"] = .int(1)
        do {
            _ = try registered.decodeOptions(.object(withUnknown), path: "options")
            problems.append("an unknown option key was accepted")
        } catch let e as ToolbenchError {
            expect(e.location.contains("zz_not_an_option") && e.problem.contains("unknown"), "unknown key error should name its path: \(e)")
        }
        if let f = fieldNames.first(where: { $0.count >= 4 }) {
            var typo = obj
            let value = typo.removeValue(forKey: f) ?? .int(1)
            typo[String(f.dropLast())] = value
            do {
                _ = try registered.decodeOptions(.object(typo), path: "options")
                problems.append("misspelled option \"\(f.dropLast())\" was accepted")
            } catch let e as ToolbenchError {
                expect(e.description.contains("did you mean \"\(f)\""), "misspelled option should suggest \"\(f)\": \(e)")
            }
        }
        obj = [:]

        // The effective options (defaults filled in) decode again to the same thing.
        let effective = try AnyPass.effective(decoded)
        do {
            let again = try registered.decodeOptions(effective, path: "effective")
            expect(try AnyPass.effective(again) == effective, "effective options are not stable under decode/encode")
        } catch { problems.append("effective options do not decode: \(error)") }

        // check() is cheap and passes on the model; apply() matches the plan, leaves its
        // input untouched, and is deterministic.
        let summary = ModelSummary(checkpoint)
        let refs = references.mapValues { url in
            PlannedArtifact(kind: FileManager.default.fileExists(atPath: url.appendingPathComponent(LoRAAdapter.configFile).path) ? .adapter : .checkpoint,
                            model: try? ModelSummary.load(directory: url), existingPath: url)
        }
        let planned: PlannedOutput
        do { planned = try registered.check(summary, options: decoded, references: refs) } catch {
            return problems + ["check() fails on the example: \(error)"]
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("conformance-\(P.name)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("input")
        try checkpoint.save(to: input)
        let before = try ContentHash.of(path: input)
        var outputs: [PassResult] = []
        for run in 0..<2 {
            let work = dir.appendingPathComponent("work\(run)")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            let ctx = PassContext(input: input, references: references, workDirectory: work, seed: 7, stage: P.name, log: { _ in }, quiet: true)
            do { outputs.append(try registered.apply(ctx, options: decoded)) } catch {
                return problems + ["apply() fails on the example: \(error)"]
            }
        }
        expect(try ContentHash.of(path: input) == before, "apply() modified its input")
        let a = outputs[0], b = outputs[1]
        expect((a.checkpoint != nil) == (planned.checkpoint != nil), "apply() and check() disagree on producing a checkpoint")
        expect((a.adapter != nil) == planned.adapter, "apply() and check() disagree on producing an adapter")
        if let ck = a.checkpoint, let plan = planned.checkpoint {
            do { try ck.validate(source: "apply output") } catch { problems.append("the output checkpoint is invalid: \(error)") }
            expect(ck.config.numLayers == plan.config.numLayers, "planned \(plan.config.numLayers) layers, produced \(ck.config.numLayers)")
            expect((ck.config.quantization == nil) == (plan.config.quantization == nil), "planned and produced quantization differ")
            expect(ck.config.hiddenSize == plan.config.hiddenSize && ck.config.ellmrec == plan.config.ellmrec, "planned and produced shapes differ")
            let same = b.checkpoint.map { other in ck.tensors == other.tensors && ck.config == other.config } ?? false
            expect(same, "apply() is not deterministic for a fixed seed")
            let out = dir.appendingPathComponent("output")
            do {
                try ck.save(to: out)
                let back = try Checkpoint.load(directory: out)
                expect(back.tensors == ck.tensors, "the output checkpoint does not round-trip through save/load")
            } catch { problems.append("the output checkpoint does not save/load: \(error)") }
        }
        return problems
    }

    /// A tiny float checkpoint (TinyModels' shapes with `layers` layers).
    public static func tinyCheckpoint(layers: Int = 3, seed: UInt64 = 7) -> Checkpoint {
        var d = TinyModels.dims()
        d.layers = layers
        return TinyModels.model(d, seed: seed).checkpoint()
    }
}
