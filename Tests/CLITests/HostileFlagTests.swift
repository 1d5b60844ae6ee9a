import XCTest
import Foundation
import TestKit

/// Issue 12's hostile-flag sweep: every option that takes a value, of every command, is given
/// values that are not what it takes — `abc`, `-1`, `1e309`, `nan`, an empty string — with
/// every other argument valid. Each must end with a clear error (exit 64 for a flag the parser
/// or the command's validation refuses, 1 for a file or state problem), naming the flag (or the
/// file for a path option), never by a trap, and leave no output. The options are read from each
/// command's --help, so a new option is swept without a change here. A value that is a valid
/// setting of an option (a negative --min-rating, a name for a free-text option) may succeed:
/// those are listed and must exit 0 or with a clear error, never trap.
final class HostileFlagTests: XCTestCase {
    /// The options whose values are free text or an output path: any string is valid there.
    static let freeText: Set<String> = ["--output", "--adapter-output", "--ranks", "--prompt-text", "--set", "--stage", "--baseline"]
    /// Options for which a negative number is meaningful (and so accepted).
    static let negativeAccepted: Set<String> = ["--min-rating"]

    struct Case { var command: [String]; var base: [String]; var output: String }

    func testEveryValueFlagRefusesValuesItDoesNotTake() throws {
        let dir = try CLI.tmp("hostile")
        let data = try TinyModels.preparePatternDataset(in: dir)
        let raw = dir.appendingPathComponent("pattern-sequences.txt").path
        let ck = dir.appendingPathComponent("ck").path
        XCTAssertEqual(try CLI.run(["init", "--output", ck, "--data", data.path, "--layers", "1", "--hidden", "16", "--intermediate", "24",
                                    "--heads", "2", "--item-dim", "4", "--prompt-length", "1"]).status, 0)
        let batch = dir.appendingPathComponent("b.json")
        try Data(#"{"sequences": [[1, 2, 3], [4]]}"#.utf8).write(to: batch)
        let recipe = dir.appendingPathComponent("r.json5")
        try #"{ inputs: { base: "\#(ck)" }, stages: [ { name: "p", pass: "prune-layers", input: "base", options: { strategy: "keep-first", keep: 1 } } ] }"#
            .write(to: recipe, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out").path
        let cases: [Case] = [
            Case(command: ["init"], base: ["--output", out, "--data", data.path, "--layers", "1", "--hidden", "16", "--intermediate", "24",
                                          "--heads", "2", "--item-dim", "4", "--prompt-length", "1"], output: out),
            Case(command: ["embed"], base: ["--checkpoint", ck, "--sequences", batch.path, "--output", out], output: out),
            Case(command: ["grads"], base: ["--checkpoint", ck, "--batch", batch.path, "--output", out], output: out),
            Case(command: ["convert"], base: ["--input", ck, "--output", out, "--dtype", "bf16"], output: out),
            Case(command: ["data", "prepare"], base: ["--input", raw, "--output", out, "--format", "sequences", "--kcore", "1", "--negatives", "5"], output: out),
            Case(command: ["data", "subsample"], base: ["--data", data.path, "--users", "10", "--output", out], output: out),
            Case(command: ["data", "negatives"], base: ["--data", data.path, "--split", "test", "--output", out], output: out),
            Case(command: ["eval"], base: ["--checkpoint", ck, "--data", data.path, "--output", out], output: out),
            Case(command: ["recommend"], base: ["--checkpoint", ck, "--data", data.path, "--top-k", "3", "--output", out], output: out),
            Case(command: ["sasrec"], base: ["--data", data.path, "--output", out, "--epochs", "1", "--hidden", "8", "--layers", "1",
                                            "--heads", "1", "--max-len", "8", "--quiet"], output: out),
            Case(command: ["apply", "prune-layers"], base: ["--input", ck, "--output", out, "--options", #"{strategy: "keep-first", keep: 1}"#], output: out),
            Case(command: ["run", recipe.path], base: ["--output", out, "--skip-report-timing"], output: out),
        ]
        let values = ["abc", "-1", "1e309", "nan", ""]
        var tried = 0, refused = 0, accepted: [String] = []
        for c in cases {
            let help = try CLI.run(c.command + ["--help"])
            let options = Self.valueOptions(help.stdout)
            XCTAssertFalse(options.isEmpty, "no options read from \(c.command) --help")
            let given = Set(c.base.filter { $0.hasPrefix("--") })
            for o in options where !Self.freeText.contains(o) {
                for v in values {
                    // The flag under test replaces its valid value when the base gives one.
                    var args = c.base
                    if given.contains(o), let i = args.firstIndex(of: o) { args.removeSubrange(i...(i + 1)) }
                    let r = try CLI.run(c.command + args + [o, v])
                    tried += 1
                    let what = "\(c.command.joined(separator: " ")) \(o) '\(v)'"
                    XCTAssertFalse(r.status >= 128 || r.stderr.contains("Fatal error") || r.stderr.contains("Crash"), "\(what): a trap\n\(r.stderr)")
                    if r.status == 0 {
                        accepted.append(what)
                        let meaningful = v == "-1" && Self.negativeAccepted.contains(o)
                        XCTAssertTrue(meaningful, "\(what) was accepted")
                        try? FileManager.default.removeItem(atPath: c.output)
                        continue
                    }
                    refused += 1
                    // The message names the flag (or its key, snake_case), or the file a path
                    // option pointed to (the value resolved against the working directory).
                    let file = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(v).path
                    let names = r.stderr.contains(o) || (!v.isEmpty && r.stderr.contains(file))
                        || r.stderr.contains(String(o.dropFirst(2)).replacingOccurrences(of: "-", with: "_"))
                    XCTAssertTrue(names, "\(what): the error does not name the flag or the file\n\(r.stderr)")
                    XCTAssertFalse(r.stderr.isEmpty, what)
                    XCTAssertFalse(FileManager.default.fileExists(atPath: c.output), "\(what): output left behind")
                }
            }
        }
        print("hostile flags: \(tried) invocations, \(refused) refused with the flag or file named, accepted as valid: \(accepted)")
        XCTAssertGreaterThan(tried, 200)
    }

    /// `--name <value>` options of a command's help (the OPTIONS section), once each.
    static func valueOptions(_ help: String) -> [String] {
        guard let start = help.range(of: "OPTIONS:") else { return [] }
        var seen: [String] = []
        for line in help[start.upperBound...].split(separator: "\n") {
            let t = line.drop { $0 == " " }
            guard t.hasPrefix("--"), let sp = t.firstIndex(of: " "), t[sp...].dropFirst().hasPrefix("<") else { continue }
            let name = String(t[..<sp])
            if !seen.contains(name) { seen.append(name) }
        }
        return seen
    }
}
