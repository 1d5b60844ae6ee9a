import XCTest
import Foundation
import TestKit

/// Issue 12's hostile-input sweep: every file a command reads is replaced, one at a time, by an
/// empty file, binary garbage, a 10 MB line, bytes that are not UTF-8, the same file with CRLF
/// line ends, a directory (and a directory input by a file). All paths live under a directory
/// whose name has spaces and non-ASCII letters, so every valid run below also checks those.
/// A variant that cannot be read must end with a clear error — exit 1…127 (no trap), the file
/// named, a fix given — and leave no output; a variant with a valid reading (CRLF always, and
/// non-UTF-8 bytes or a long line where ids are raw bytes) may succeed, and CRLF must give the
/// same result as LF. HostileFlagTests does the same for flag values.
final class HostileInputTests: XCTestCase {
    enum Expect { case refused, either, sameAsLF }

    struct Variant {
        let name: String
        let expect: Expect
        /// Replaces the file (or directory) at the URL by the variant, from its valid bytes.
        let make: (URL, Data) throws -> Void
    }

    static func garbage(_ n: Int, seed: UInt64) -> Data {
        var x = seed   // SplitMix64
        return Data((0..<n).map { _ in
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return UInt8(truncatingIfNeeded: z ^ (z >> 31))
        })
    }

    /// The file variants; `raw`: ids are raw bytes there (a data file), so non-UTF-8 bytes and
    /// a long line may be valid.
    static func fileVariants(raw: Bool, crlf: Expect?) -> [Variant] {
        let fm = FileManager.default
        func put(_ u: URL, _ d: Data) throws { try? fm.removeItem(at: u); try d.write(to: u) }
        var v = [
            Variant(name: "empty", expect: .refused) { u, _ in try put(u, Data()) },
            Variant(name: "binary garbage", expect: .refused) { u, _ in try put(u, garbage(4096, seed: 12)) },
            Variant(name: "a 10 MB line", expect: raw ? .either : .refused) { u, good in
                try put(u, Data(repeating: UInt8(ascii: "x"), count: 10 << 20) + Data("\n".utf8) + good)
            },
            Variant(name: "non-UTF-8 bytes", expect: raw ? .either : .refused) { u, good in
                // In the middle of the first line (a key, a name or an id).
                let nl = good.firstIndex(of: 0x0A) ?? good.count
                var d = good
                d.insert(contentsOf: [0xFF, 0xFE, 0xC3], at: good.startIndex + max(1, nl / 2))
                try put(u, d)
            },
            Variant(name: "a directory", expect: .refused) { u, _ in
                try? fm.removeItem(at: u)
                try fm.createDirectory(at: u, withIntermediateDirectories: false)
            },
        ]
        if let crlf {
            v.append(Variant(name: "CRLF line ends", expect: crlf) { u, good in
                try put(u, Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: "\n", with: "\r\n").utf8))
            })
        }
        return v
    }

    /// One file a command reads: `path` inside the fixture `root`, which is copied fresh for
    /// every variant (so one variant never leaks into the next).
    struct Target {
        let what: String
        let root: URL
        let path: String          // relative to root ("" = root itself)
        let isDirectory: Bool
        let raw: Bool
        /// What CRLF line ends must give (nil: not tried, the file is binary).
        let crlf: Expect?
        let run: (URL, String) throws -> CLI.Result   // (fixture copy, output path)
        /// What must be equal between a CRLF run and the LF run (relative to the output).
        var compare: [String] = []
    }

    func testEveryInputFileRefusesWhatItCannotRead() throws {
        let fm = FileManager.default
        let top = try CLI.tmp("hostile-input")
        defer { try? fm.removeItem(at: top) }
        // Spaces and non-ASCII letters in every path below.
        let dir = top.appendingPathComponent("dätä sét ünï 🧪")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let data = try TinyModels.preparePatternDataset(in: dir)
        let raw = dir.appendingPathComponent("pattern-sequences.txt")
        let ck = dir.appendingPathComponent("check point")
        let initArgs = ["--layers", "1", "--hidden", "16", "--intermediate", "24", "--heads", "2", "--item-dim", "4", "--prompt-length", "1"]
        XCTAssertEqual(try CLI.run(["init", "--output", ck.path, "--data", data.path] + initArgs).status, 0)
        let batch = dir.appendingPathComponent("bätch.json")
        try Data("{\n  \"sequences\": [[1, 2, 3], [4]]\n}\n".utf8).write(to: batch)
        let recipe = dir.appendingPathComponent("récipe.json5")
        try Data("""
            {
              inputs: { base: "\(ck.path)" },
              stages: [ { name: "p", pass: "prune-layers", input: "base", options: { strategy: "keep-first", keep: 1 } } ]
            }

            """.utf8).write(to: recipe)

        let targets: [Target] = [
            Target(what: "data prepare --input", root: raw, path: "", isDirectory: false, raw: true, crlf: .sameAsLF,
                   run: { f, out in try CLI.run(["data", "prepare", "--input", f.path, "--output", out, "--format", "sequences", "--kcore", "1", "--negatives", "5"]) },
                   compare: ["sequences.txt", "items.tsv", "users.tsv", "negatives-test.txt"]),
            Target(what: "embed --sequences", root: batch, path: "", isDirectory: false, raw: false, crlf: .sameAsLF,
                   run: { f, out in try CLI.run(["embed", "--checkpoint", ck.path, "--sequences", f.path, "--output", out]) },
                   compare: [""]),
            Target(what: "run RECIPE", root: recipe, path: "", isDirectory: false, raw: false, crlf: .sameAsLF,
                   run: { f, out in try CLI.run(["run", f.path, "--output", out, "--skip-report-timing"]) },
                   compare: ["p/checkpoint/model.safetensors"]),
        ] + ["config.json", "model.safetensors"].map { name in
            Target(what: "eval --checkpoint (\(name))", root: ck, path: name, isDirectory: false, raw: false, crlf: name == "config.json" ? .sameAsLF : nil,
                   run: { c, out in try CLI.run(["eval", "--checkpoint", c.path, "--data", data.path, "--output", out]) },
                   compare: [])
        } + ["dataset.json", "sequences.txt", "negatives-test.txt"].map { name in
            // The negatives' sha256 is in dataset.json: a rewritten file is refused as changed.
            Target(what: "eval --data (\(name))", root: data, path: name, isDirectory: false, raw: false,
                   crlf: name == "negatives-test.txt" ? .refused : .sameAsLF,
                   run: { d, out in try CLI.run(["eval", "--checkpoint", ck.path, "--data", d.path, "--output", out]) },
                   compare: [])
        } + ["config.json", "model.safetensors"].map { name in
            Target(what: "apply prune-layers --input (\(name))", root: ck, path: name, isDirectory: false, raw: false, crlf: name == "config.json" ? .sameAsLF : nil,
                   run: { c, out in try CLI.run(["apply", "prune-layers", "--input", c.path, "--output", out, "--options", #"{strategy: "keep-first", keep: 1}"#]) },
                   compare: name == "config.json" ? ["model.safetensors"] : [])
        } + ["sequences.txt", "items.tsv"].map { name in
            // items.tsv holds the raw ids (bytes, not necessarily UTF-8).
            Target(what: "sasrec --data (\(name))", root: data, path: name, isDirectory: false, raw: name == "items.tsv", crlf: .sameAsLF,
                   run: { d, out in try CLI.run(["sasrec", "--data", d.path, "--output", out, "--epochs", "1", "--hidden", "8", "--layers", "1",
                                                 "--heads", "1", "--max-len", "8", "--quiet", "--seed", "3"]) },
                   compare: ["sasrec.safetensors"])
        } + [
            Target(what: "eval --checkpoint (the directory)", root: ck, path: "", isDirectory: true, raw: false, crlf: nil,
                   run: { c, out in try CLI.run(["eval", "--checkpoint", c.path, "--data", data.path, "--output", out]) }),
            Target(what: "eval --data (the directory)", root: data, path: "", isDirectory: true, raw: false, crlf: nil,
                   run: { d, out in try CLI.run(["eval", "--checkpoint", ck.path, "--data", d.path, "--output", out]) }),
        ]

        var tried = 0, refused = 0, accepted: [String] = []
        for t in targets {
            let variants: [Variant] = t.isDirectory ? [
                Variant(name: "a file", expect: .refused) { u, _ in try? fm.removeItem(at: u); try Data("not a directory\n".utf8).write(to: u) },
                Variant(name: "an empty directory", expect: .refused) { u, _ in
                    try? fm.removeItem(at: u); try fm.createDirectory(at: u, withIntermediateDirectories: false)
                },
            ] : Self.fileVariants(raw: t.raw, crlf: t.crlf)
            // The valid run, at the same place, first: the baseline (and the unicode path check).
            let work = dir.appendingPathComponent("wörk \(t.what.filter { $0.isLetter })")
            func fresh() throws -> URL {
                try? fm.removeItem(at: work)
                try fm.createDirectory(at: work, withIntermediateDirectories: true)
                let copy = work.appendingPathComponent(t.root.lastPathComponent)
                try fm.copyItem(at: t.root, to: copy)
                return copy
            }
            let lfOut = work.appendingPathComponent("öut lf").path
            let baseline = try t.run(try fresh(), lfOut)
            XCTAssertEqual(baseline.status, 0, "\(t.what): the valid input failed\n\(baseline.stderr)")
            let lfFiles = t.compare.map { fm.contents(atPath: $0.isEmpty ? lfOut : "\(lfOut)/\($0)") }
            for v in variants {
                let copy = try fresh()
                let file = t.path.isEmpty ? copy : copy.appendingPathComponent(t.path)
                let good = t.isDirectory ? Data() : try Data(contentsOf: file)
                try v.make(file, good)
                let out = work.appendingPathComponent("öut").path
                let r = try t.run(copy, out)
                tried += 1
                let what = "\(t.what): \(v.name)"
                XCTAssertFalse(r.status >= 128 || r.stderr.contains("Fatal error") || r.stderr.contains("Crash"), "\(what): a trap\n\(r.stderr)")
                if r.status == 0 {
                    XCTAssertNotEqual(v.expect, .refused, "\(what) was accepted\n\(r.stderr)")
                    if v.expect == .sameAsLF {
                        for (i, name) in t.compare.enumerated() {
                            XCTAssertEqual(fm.contents(atPath: name.isEmpty ? out : "\(out)/\(name)"), lfFiles[i], "\(what): \(name) differs from the LF run's")
                        }
                    } else {
                        accepted.append(what)
                    }
                    continue
                }
                XCTAssertNotEqual(v.expect, .sameAsLF, "\(what) was refused\n\(r.stderr)")
                refused += 1
                // The message names the file (or the directory and the file's name in it) …
                let names = r.stderr.contains(file.path)
                    || (r.stderr.contains(copy.path) && (t.path.isEmpty || r.stderr.contains(t.path)))
                XCTAssertTrue(names, "\(what): the error does not name \(file.path)\n\(r.stderr)")
                // … and says what to do (looked for outside the paths: "check point" and the
                // work directories' names would match), in a message (a quoted 10 MB line is
                // not one: bug 14).
                var words = r.stderr
                for p in [file.path, copy.path, work.path, ck.path, data.path, dir.path].sorted(by: { $0.count > $1.count }) {
                    words = words.replacingOccurrences(of: p, with: "PATH")
                }
                XCTAssertTrue(words.range(of: "fix|re-create|re-run|restore|give|check|save|write|point to|lower|pass --", options: [.regularExpression, .caseInsensitive]) != nil,
                              "\(what): the error gives no fix\n\(r.stderr)")
                XCTAssertLessThan(r.stderr.utf8.count, 4096, "\(what): a \(r.stderr.utf8.count)-byte message")
                XCTAssertFalse(r.stderr.contains("NSCocoaErrorDomain") || r.stderr.contains("DecodingError"), "\(what): Foundation's error text\n\(r.stderr)")
                XCTAssertFalse(fm.fileExists(atPath: out), "\(what): output left behind")
                let debris = (try? fm.contentsOfDirectory(atPath: work.path))?.filter { $0.contains(".tmp-") } ?? []
                XCTAssertEqual(debris, [], "\(what): temporary files left")
            }
            try? fm.removeItem(at: work)
        }
        print("hostile input: \(tried) variants, \(refused) refused with the file named and a fix, accepted as a valid reading: \(accepted)")
        XCTAssertGreaterThan(tried, 50)
    }
}
