import XCTest
@testable import CommandKit

func parse<T: ParsableCommand>(_ args: [String], as type: T.Type = T.self) throws -> T {
    let command = try Root.parseAsRoot(args)
    guard let typed = command as? T else {
        XCTFail("parsed \(Swift.type(of: command)), expected \(T.self)")
        throw ExitCode.failure
    }
    return typed
}

/// The error message (as `main` prints it) and exit code for `args`.
func failure(_ args: [String]) -> (message: String, code: Int32) {
    do {
        _ = try Root.parseAsRoot(args)
        XCTFail("expected \(args) to fail")
        return ("", 0)
    } catch {
        return (Root.message(for: error), Root.exitCode(for: error))
    }
}

final class ParsingTests: XCTestCase {
    /// An option group is parsed, validated and listed as the command's own, in every command
    /// that declares it.
    func testOptionGroupIsSharedByCommands() throws {
        let s = try parse(["score", "--checkpoint", "ck", "--users", "3", "--adapter", "ad"], as: Score.self)
        XCTAssertEqual(s.model.checkpoint, "ck")
        XCTAssertEqual(s.model.adapter, "ad")
        XCTAssertEqual(s.users, 3)
        let e = try parse(["embed", "--json", "--checkpoint", "x"], as: Embed.self)
        XCTAssertEqual(e.model.checkpoint, "x")
        XCTAssertNil(e.model.adapter)
        XCTAssertTrue(e.json)
        XCTAssertEqual(failure(["score", "--users", "3"]).code, 64)
        XCTAssertTrue(failure(["score", "--users", "3"]).message.contains("--checkpoint"))
        let (message, code) = failure(["embed", "--checkpoint", "a", "--adapter", "a"])
        XCTAssertEqual(code, 64)
        XCTAssertTrue(message.hasPrefix("Error: --adapter and --checkpoint must differ"), message)
        let help = Root.helpMessage(for: Score.self)
        XCTAssertTrue(help.contains("--checkpoint <checkpoint>") && help.contains("--adapter <adapter>") && help.contains("--users <users>"), help)
    }

    func testEveryValueKind() throws {
        let k = try parse(["kinds", "--int", "-7", "--double", "2.5", "--float", "0.25", "--unsigned",
                           "18446744073709551615", "--string", "hi there", "--bool", "true", "--format", "csv",
                           "--formats", "json,tsv", "--json", "--enable-cache", "bob"], as: Kinds.self)
        XCTAssertEqual(k.int, -7)
        XCTAssertEqual(k.double, 2.5)
        XCTAssertEqual(k.float, 0.25)
        XCTAssertEqual(k.unsigned, UInt64.max)
        XCTAssertEqual(k.string, "hi there")
        XCTAssertTrue(k.bool)
        XCTAssertEqual(k.format, .csv)
        XCTAssertEqual(k.formats, [.json, .tsv])
        XCTAssertTrue(k.json)
        XCTAssertTrue(k.cache)
        XCTAssertEqual(k.name, "bob")
    }

    func testDefaultsAndOptionalMissing() throws {
        let k = try parse(["kinds"], as: Kinds.self)
        XCTAssertEqual(k.int, 0)
        XCTAssertNil(k.format)
        XCTAssertNil(k.name)
        XCTAssertEqual(k.formats, [])
        XCTAssertFalse(k.json)
        let p = try parse(["data", "prepare", "--output", "out", "raw.tsv"], as: Prepare.self)
        XCTAssertEqual(p.seed, 42)
        XCTAssertNil(p.maxLength)
        XCTAssertEqual(p.format, .json)
        XCTAssertTrue(p.shuffle)
        XCTAssertFalse(p.verbose)
        XCTAssertEqual(p.input, "raw.tsv")
    }

    func testEqualsSyntaxShortNamesAndDoubleDash() throws {
        let p = try parse(["data", "prepare", "--seed=7", "-o=dir", "--max-length=128", "-v", "--", "--weird"],
                          as: Prepare.self)
        XCTAssertEqual(p.seed, 7)
        XCTAssertEqual(p.output, "dir")
        XCTAssertEqual(p.maxLength, 128)
        XCTAssertTrue(p.verbose)
        XCTAssertEqual(p.input, "--weird")
        let q = try parse(["data", "prepare", "-odir2", "in"], as: Prepare.self)
        XCTAssertEqual(q.output, "dir2")
        let r = try parse(["data", "prepare", "in", "-vo", "d"], as: Prepare.self)  // clustered: flag then option
        XCTAssertEqual(r.output, "d")
        XCTAssertTrue(r.verbose)
    }

    func testNegativeNumberAsValue() throws {
        let k = try parse(["kinds", "--int", "-3", "--double", "-0.5"], as: Kinds.self)
        XCTAssertEqual(k.int, -3)
        XCTAssertEqual(k.double, -0.5)
    }

    func testRepeatedAndCommaLists() throws {
        let e = try parse(["eval", "ckpt", "--prompt-token-ids", "1,2,3", "--prompt-token-ids=4",
                           "--metric", "hr", "--metric", "mrr,ndcg"], as: Eval.self)
        XCTAssertEqual(e.promptTokenIds, [1, 2, 3, 4])
        XCTAssertEqual(e.metric, ["hr", "mrr", "ndcg"])
        let d = try parse(["eval", "ckpt"], as: Eval.self)
        XCTAssertEqual(d.metric, ["ndcg"])
        XCTAssertEqual(d.promptTokenIds, [])
    }

    func testVariadicArgumentsAndCustomLongName() throws {
        let e = try parse(["eval", "ckpt", "a", "--k", "5", "b", "c"], as: Eval.self)
        XCTAssertEqual(e.checkpoint, "ckpt")
        XCTAssertEqual(e.extra, ["a", "b", "c"])
        XCTAssertEqual(e.cutoff, 5)
    }

    func testFlagsAndInversion() throws {
        XCTAssertFalse(try parse(["data", "prepare", "-o", "x", "--no-shuffle", "in"], as: Prepare.self).shuffle)
        XCTAssertTrue(try parse(["data", "prepare", "-o", "x", "--no-shuffle", "--shuffle", "in"], as: Prepare.self).shuffle)
        XCTAssertFalse(try parse(["kinds", "--enable-cache", "--disable-cache"], as: Kinds.self).cache)
        XCTAssertTrue(failure(["kinds", "--no-json"]).message.contains("unknown option '--no-json'"))
        XCTAssertTrue(failure(["kinds", "--json=yes"]).message.contains("option '--json' does not take a value"))
    }

    func testEnumChoices() throws {
        XCTAssertEqual(try parse(["data", "prepare", "-o", "x", "--format", "tsv", "in"], as: Prepare.self).format, .tsv)
        let (message, code) = failure(["data", "prepare", "-o", "x", "--format", "xml", "in"])
        XCTAssertTrue(message.contains("--format: 'xml' is not a valid choice (choose from: json, csv, tsv)"), message)
        XCTAssertEqual(code, 64)
    }

    func testSubcommandDispatchTwoLevels() throws {
        XCTAssertTrue(try Root.parseAsRoot(["data", "prepare", "-o", "x", "in"]) is Prepare)
        XCTAssertTrue(try Root.parseAsRoot(["data"]) is DataGroup)
        XCTAssertTrue(try Root.parseAsRoot([]) is Root)
        XCTAssertTrue(try Root.parseAsRoot(["eval", "c"]) is Eval)
    }

    func testValidateCalledBeforeRun() throws {
        let (message, code) = failure(["data", "prepare", "-o", "x", "--seed", "-5", "in"])
        XCTAssertTrue(message.hasPrefix("Error: --seed must be non-negative\nUsage: slmrec data prepare"), message)
        XCTAssertEqual(code, 64)
        // Eval.run() would throw for "fail", but validate() rejects "bad" first, without running.
        XCTAssertEqual(Root.runAsRoot(["eval", "bad"]), 64)
        XCTAssertEqual(Root.runAsRoot(["eval", "ok"]), 0)  // run() fails unless validate() ran first
        XCTAssertTrue(try parse(["eval", "ok"], as: Eval.self).validated)
    }

    func testRunErrorsExitOne() {
        XCTAssertEqual(Root.runAsRoot(["eval", "fail"]), 1)
        XCTAssertEqual(Root.message(for: RunFailure()), "Error: the model exploded")
        XCTAssertEqual(Root.exitCode(for: RunFailure()), 1)
        XCTAssertEqual(Root.exitCode(for: ExitCode(3)), 3)
    }

    func testParsedCommandsHaveValueSemantics() throws {
        var a = try parse(["data", "prepare", "-o", "x", "in"], as: Prepare.self)
        let b = a
        a.seed = 1
        XCTAssertEqual(a.seed, 1)
        XCTAssertEqual(b.seed, 42)
    }

    func testKebabCase() {
        XCTAssertEqual(kebabCase("maxLength"), "max-length")
        XCTAssertEqual(kebabCase("promptTokenIds"), "prompt-token-ids")
        XCTAssertEqual(kebabCase("HTTPServer"), "http-server")
        XCTAssertEqual(kebabCase("seed"), "seed")
    }
}
