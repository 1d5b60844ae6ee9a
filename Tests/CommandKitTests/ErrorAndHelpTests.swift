import XCTest
@testable import CommandKit

final class ErrorTests: XCTestCase {
    func testUnknownOptionSuggestsNearest() {
        let (message, code) = failure(["data", "prepare", "--ouput", "x", "in"])
        XCTAssertTrue(message.hasPrefix("Error: unknown option '--ouput'. Did you mean '--output'?\n"), message)
        XCTAssertTrue(message.contains("Usage: slmrec data prepare"), message)
        XCTAssertTrue(message.hasSuffix("See 'slmrec data prepare --help' for more information."), message)
        for line in message.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 80, String(line)) }
        XCTAssertEqual(code, 64)
        XCTAssertFalse(failure(["data", "prepare", "--zzzzzzzz"]).message.contains("Did you mean"))
        XCTAssertTrue(failure(["data", "prepare", "-x"]).message.contains("unknown option '-x'"))
    }

    func testMissingRequiredOptionAndArgument() {
        XCTAssertTrue(failure(["data", "prepare", "in"]).message
            .hasPrefix("Error: missing required option '--output <output>'"))
        XCTAssertTrue(failure(["data", "prepare", "-o", "x"]).message
            .hasPrefix("Error: missing required argument '<input>'"))
        XCTAssertTrue(failure(["data", "prepare", "in", "--output"]).message
            .hasPrefix("Error: missing value for option '--output <output>'"))
    }

    func testBadValues() {
        XCTAssertTrue(failure(["data", "prepare", "--seed", "abc"]).message
            .hasPrefix("Error: --seed: 'abc' is not a valid integer"))
        XCTAssertTrue(failure(["kinds", "--double", "x1"]).message.contains("--double: 'x1' is not a valid finite number"))
        for v in ["nan", "inf", "-inf", "1e309"] {
            XCTAssertTrue(failure(["kinds", "--double", v]).message.contains("--double: '\(v)' is not a valid finite number"), v)
        }
        XCTAssertTrue(failure(["kinds", "--float", "1e39"]).message.contains("--float: '1e39' is not a valid finite number"), "overflows Float")
        XCTAssertTrue(failure(["kinds", "--unsigned", "-1"]).message
            .contains("--unsigned: '-1' is not a valid unsigned integer"))
        XCTAssertTrue(failure(["eval", "c", "--prompt-token-ids", "1,x"]).message
            .contains("--prompt-token-ids: 'x' is not a valid integer"))
    }

    func testUnexpectedArgument() {
        let (message, code) = failure(["data", "prepare", "-o", "x", "in", "extra"])
        XCTAssertTrue(message.hasPrefix("Error: unexpected argument 'extra'"), message)
        XCTAssertEqual(code, 64)
    }

    func testUnknownSubcommand() {
        let (message, code) = failure(["dat", "prepare"])
        XCTAssertTrue(message.hasPrefix(
            "Error: unknown subcommand 'dat'. Did you mean 'data'? Known subcommands: data, eval, kinds"), message)
        XCTAssertTrue(message.contains("Usage: slmrec <subcommand>"), message)
        XCTAssertEqual(code, 64)
        XCTAssertTrue(failure(["data", "nope"]).message.contains("Known subcommands: prepare"))
    }

    func testEditDistance() {
        XCTAssertEqual(editDistance("ouput", "output"), 1)
        XCTAssertEqual(editDistance("", "abc"), 3)
        XCTAssertEqual(editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(nearest("sed", among: ["seed", "output"]), "seed")
    }
}

final class HelpTests: XCTestCase {
    func helpFor(_ args: [String]) -> String {
        do {
            _ = try Root.parseAsRoot(args)
            XCTFail("expected a help request")
            return ""
        } catch {
            XCTAssertEqual(Root.exitCode(for: error), 0)
            return Root.message(for: error)
        }
    }

    func testLeafHelpContent() {
        let help = Root.helpMessage(for: Prepare.self)
        XCTAssertTrue(help.hasPrefix("OVERVIEW: Prepare a dataset split."), help)
        XCTAssertTrue(help.contains("Reads the raw interactions"))
        XCTAssertTrue(help.contains("USAGE: slmrec data prepare"))
        XCTAssertTrue(help.contains("--output <output>"))
        XCTAssertTrue(help.contains("-o, --output <output>"))
        XCTAssertTrue(help.contains("--seed <seed>"))
        XCTAssertTrue(help.contains("(default: 42)"))
        XCTAssertTrue(help.contains("--max-length <max-length>"))
        XCTAssertTrue(help.contains("(values: json, csv, tsv; default: json)"))
        XCTAssertTrue(help.contains("--shuffle/--no-shuffle"))
        XCTAssertTrue(help.contains("(default: --shuffle)"))
        XCTAssertTrue(help.contains("ARGUMENTS:\n  <input>"))
        XCTAssertTrue(help.contains("-h, --help"))
        for line in help.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 80, String(line)) }
    }

    func testGroupHelpListsSubcommands() {
        let help = Root.helpMessage()
        XCTAssertTrue(help.contains("OVERVIEW: The SLMRec toolbench."))
        XCTAssertTrue(help.contains("USAGE: slmrec <subcommand>"))
        XCTAssertTrue(help.contains("SUBCOMMANDS:\n  data                    Dataset tools."), help)
        XCTAssertTrue(help.contains("  eval                    Evaluate a checkpoint."))
        XCTAssertTrue(help.contains("See 'slmrec help <subcommand>'"))
    }

    func testHelpEntryPoints() {
        let expected = Root.helpMessage(for: Prepare.self)
        XCTAssertEqual(helpFor(["data", "prepare", "--help"]), expected)
        XCTAssertEqual(helpFor(["data", "prepare", "-o", "x", "-h"]), expected)
        XCTAssertEqual(helpFor(["help", "data", "prepare"]), expected)
        XCTAssertEqual(helpFor(["--help"]), Root.helpMessage())
        XCTAssertEqual(helpFor(["help"]), Root.helpMessage())
        XCTAssertEqual(helpFor(["help", "data"]), Root.helpMessage(for: DataGroup.self))
        XCTAssertEqual(helpFor(["--version"]), "1.2.3")
        // A group without its own run() prints help.
        XCTAssertEqual(Root.runAsRoot(["data"]), 0)
    }

    func testArrayAndOptionalHelp() {
        let help = Root.helpMessage(for: Eval.self)
        XCTAssertTrue(help.contains("[--prompt-token-ids <prompt-token-ids> ...]"), help)
        XCTAssertEqual(Root.usageString(for: Eval.self), "slmrec eval [--metric <metric> ...] "
            + "[--prompt-token-ids <prompt-token-ids> ...] [--k <cutoff>] <checkpoint> [<extra> ...]")
        XCTAssertTrue(help.contains("(default: ndcg; repeatable"), help)
        XCTAssertTrue(help.contains("USAGE: slmrec eval [--metric <metric> ...]\n         [--prompt-token-ids <prompt-token-ids> ...]"), help)
        XCTAssertTrue(help.contains("--k <cutoff>"), help)
        let kinds = Root.helpMessage(for: Kinds.self)
        XCTAssertTrue(kinds.contains("--enable-cache/--disable-cache"), kinds)
        XCTAssertTrue(kinds.contains("[<name>]"), kinds)
        XCTAssertTrue(kinds.contains("  <name>\n"), kinds)  // no trailing blanks without help text
        XCTAssertFalse(kinds.contains("(default: )"), kinds)
        XCTAssertTrue(Root.helpMessage(for: Prepare.self).contains("[--shuffle/--no-shuffle]"))
    }

    func testWrapping() {
        let lines = wrap("aaa bbb ccc ddd", width: 7, indent: 2)
        XCTAssertEqual(lines, ["aaa bbb", "  ccc", "  ddd"])
        let row = HelpGenerator(path: [Root.self], columns: 80)
            .entry("--a-very-long-option-name <value>", String(repeating: "word ", count: 30))
        let rows = row.split(separator: "\n")
        XCTAssertEqual(rows[0], "  --a-very-long-option-name <value>")
        XCTAssertTrue(rows.dropFirst().allSatisfy { $0.hasPrefix(String(repeating: " ", count: 26)) && $0.count <= 80 })
    }
}
