import XCTest
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Common
import Reports

/// report-depth.svg (ReportDepthChart.swift): NDCG@10 against decoder layers, one line per pass.
final class ReportDepthChartTests: XCTestCase {
    static let context = EvalContext(dataset: "d", datasetID: "h", split: "test", candidates: "both", users: 10)

    func row(_ name: String, _ pass: String, layers: Int?, _ q: Double, kind: ReportRow.Kind = .stage,
             context: EvalContext = ReportDepthChartTests.context) -> ReportRow {
        var r = ReportRow(name: name, kind: kind, pass: pass, directory: URL(fileURLWithPath: "/tmp"))
        r.layers = layers
        r.quality[ComparisonReport.chartKey] = q
        r.context = context
        return r
    }

    func report(_ rows: [ReportRow]) -> ComparisonReport {
        ComparisonReport(title: "depth", rows: rows, teacher: rows[0].name, timingSetup: "Timing skipped.", created: "now")
    }

    func parse(_ svg: String) -> DepthProbe {
        let probe = DepthProbe()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = probe
        XCTAssertTrue(parser.parse(), "SVG is not well-formed XML: \(String(describing: parser.parserError))")
        XCTAssertEqual(probe.root, "svg")
        return probe
    }

    func x(_ points: String) -> [Double] { points.split(separator: " ").map { Double($0.split(separator: ",")[0])! } }
    func y(_ points: String) -> [Double] { points.split(separator: " ").map { Double($0.split(separator: ",")[1])! } }

    func testTwoPassesOverFourDepthsGiveALinePerPassAPointPerModelAndTheSASRecLine() throws {
        // Rows deepest first: each line must still run in order of depth.
        let r = report([
            row("teacher-8", "finetune", layers: 8, 0.050), row("ft-4", "finetune", layers: 4, 0.046),
            row("ft-2", "finetune", layers: 2, 0.040), row("ft-1", "finetune", layers: 1, 0.031),
            row("pl-4", "prune-layers", layers: 4, 0.030), row("pl-2", "prune-layers", layers: 2, 0.020),
            row("pl-1", "prune-layers", layers: 1, 0.012),
            row("SASRec-sports", "sasrec", layers: nil, 0.004, kind: .sasrec),
        ])
        XCTAssertTrue(r.hasDepthChart)
        let svg = r.depthSVG()
        let p = parse(svg)
        XCTAssertEqual(Set(p.series.keys), ["finetune", "prune-layers"])
        XCTAssertEqual(p.series["finetune"]!.split(separator: " ").count, 4)
        XCTAssertEqual(p.series["prune-layers"]!.split(separator: " ").count, 3)
        for (_, pts) in p.series { XCTAssertEqual(x(pts), x(pts).sorted(), pts) }
        // finetune's x coordinates at depths 1, 2, 4, 8 equal prune-layers' at 1, 2, 4.
        XCTAssertEqual(Array(x(p.series["finetune"]!).prefix(3)), x(p.series["prune-layers"]!))
        XCTAssertEqual(p.points.sorted(), ["ft-1", "ft-2", "ft-4", "pl-1", "pl-2", "pl-4", "teacher-8"])
        XCTAssertEqual(p.pointSeries["pl-2"], "prune-layers")
        XCTAssertEqual(p.pointSeries["teacher-8"], "finetune")
        for n in p.points { XCTAssertTrue(p.texts.contains(n), "no label \(n)") }
        // The baseline: a dashed line across the plot, named, inside the y range (below every point).
        XCTAssertEqual(p.baselines, ["SASRec-sports"])
        XCTAssertTrue(p.baselineTexts.contains("SASRec-sports"))
        let by = try XCTUnwrap(p.baselineY.first)
        XCTAssertGreaterThan(by, 58)
        XCTAssertLessThan(by, 500 - 70)
        XCTAssertGreaterThan(by, y(p.series["prune-layers"]!).max()!)   // lower quality: further down
        XCTAssertTrue(svg.contains("stroke-dasharray=\"6 4\""))
        // Legend phrases, ticks at the depths, linear scale (8x is not over 8x).
        XCTAssertTrue(p.texts.contains("trained at this depth (finetune)"), "\(p.texts)")
        XCTAssertTrue(p.texts.contains("first l layers of a deeper model, no training (prune-layers)"))
        XCTAssertEqual(p.xTicks, ["1", "2", "4", "8"])
        XCTAssertTrue(p.texts.contains("Decoder layers"))
        XCTAssertTrue(p.texts.contains { $0.contains("NDCG@10") })
        XCTAssertTrue(p.texts.contains("Quality vs depth: depth"))
        XCTAssertTrue(p.texts.contains("test split, 10 users; teacher: teacher-8"))

        let out = try SyntheticRun.tmpDir("depth")
        try r.write(to: out)
        let file = out.appendingPathComponent(ComparisonReport.depthChartFile)
        XCTAssertEqual(ComparisonReport.depthChartFile, "report-depth.svg")
        XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), svg)
        XCTAssertTrue(r.outputFiles.contains("report-depth.svg"))
        for f in r.outputFiles { XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f) }
        // The output guard still recognises (and so may replace) a report directory with it.
        XCTAssertTrue(ComparisonReport.files.contains("report-depth.svg"))
        XCTAssertNil(ComparisonReport.outputKind.mismatch(at: out))
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("report-depth.svg"), md)
    }

    func testDepthsSpreadOverEightTimesUseALog2AxisWithEveryDepthReadable() {
        let r = report([1, 2, 4, 8, 16, 30].map { row("ft-\($0)", $0 == 30 ? "finetune" : "layerwise-kd", layers: $0, 0.01 * Double($0).squareRoot()) })
        let p = parse(r.depthSVG())
        XCTAssertEqual(p.xTicks, ["1", "2", "4", "8", "16", "30"])
        XCTAssertTrue(p.texts.contains("Decoder layers (log scale)"))
        let xs = x(p.series["layerwise-kd"]!)
        // Equal steps between powers of two.
        XCTAssertEqual(xs[1] - xs[0], xs[4] - xs[3], accuracy: 0.2)
        XCTAssertTrue(p.texts.contains("distilled (layerwise-kd)"))
        XCTAssertEqual(p.series["finetune"]!.split(separator: " ").count, 1)
    }

    func testOneDepthWritesNoDepthChartAndRemovesAStaleOne() throws {
        let r = report([row("a", "finetune", layers: 4, 0.05), row("b", "quantize-int8", layers: 4, 0.049),
                        row("SASRec", "sasrec", layers: nil, 0.03, kind: .sasrec),
                        row("other-users", "input", layers: 2, 0.04, context: EvalContext(dataset: "d", datasetID: "h", split: "test", candidates: "both", users: 99))])
        XCTAssertFalse(r.hasDepthChart)
        let out = try SyntheticRun.tmpDir("depth-none")
        let stale = out.appendingPathComponent("report-depth.svg")
        try Data("<svg>stale</svg>".utf8).write(to: stale)
        try r.write(to: out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path), "a stale report-depth.svg was left")
        XCTAssertEqual(r.outputFiles, ["report.md", "report.csv", "report.json", "report.svg"])
        for f in r.outputFiles { XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f) }
        XCTAssertFalse(try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8).contains("report-depth"))
        // Writing again with no depth chart and no stale file is fine.
        XCTAssertNoThrow(try r.write(to: out))
    }

    func testARowThatIsNotComparableIsNotPlotted() throws {
        let other = EvalContext(dataset: "e", datasetID: "other", split: "test", candidates: "both", users: 10)
        let r = report([row("teacher", "finetune", layers: 4, 0.05), row("small", "finetune", layers: 2, 0.04),
                        row("elsewhere", "prune-layers", layers: 1, 0.09, context: other),
                        row("SASRec-elsewhere", "sasrec", layers: nil, 0.08, kind: .sasrec, context: other)])
        XCTAssertFalse(r.comparable(r.rows[2]))
        XCTAssertTrue(r.hasDepthChart)
        let p = parse(r.depthSVG())
        XCTAssertEqual(p.points.sorted(), ["small", "teacher"])
        XCTAssertEqual(Array(p.series.keys), ["finetune"])
        XCTAssertTrue(p.baselines.isEmpty)
        XCTAssertEqual(p.xTicks, ["2", "4"])
        XCTAssertTrue(p.texts.contains { $0.hasPrefix("Not plotted") && $0.contains("elsewhere, SASRec-elsewhere") }, "\(p.texts)")
        // Its higher NDCG@10 does not stretch the y axis: no tick reaches 0.09.
        XCTAssertFalse(p.yTicks.contains { Double($0)! >= 0.08 }, "\(p.yTicks)")
        // Only the non-comparable row has another depth: no depth chart.
        let flat = report([row("teacher", "finetune", layers: 4, 0.05), row("elsewhere", "prune-layers", layers: 1, 0.09, context: other)])
        XCTAssertFalse(flat.hasDepthChart)
    }
}

/// What the depth chart tests look at.
final class DepthProbe: NSObject, XMLParserDelegate {
    var root: String?
    /// data-series → the polyline's points.
    var series: [String: String] = [:]
    var points: [String] = []
    var pointSeries: [String: String] = [:]
    var baselines: [String] = []
    var baselineY: [Double] = []
    var baselineTexts: [String] = []
    var texts: [String] = []
    var xTicks: [String] = [], yTicks: [String] = []
    private var inText = false, tickAnchor: String?, inBaseline = false, current = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes a: [String: String] = [:]) {
        if root == nil { root = name }
        if name == "polyline", a["class"] == "series", let s = a["data-series"] { series[s] = a["points"] ?? "" }
        if name == "g", a["class"] == "point", let m = a["data-model"] { points.append(m); pointSeries[m] = a["data-series"] }
        if name == "g", a["class"] == "baseline", let m = a["data-model"] { baselines.append(m); inBaseline = true }
        if name == "line", inBaseline, let y = a["y1"].flatMap(Double.init) { baselineY.append(y) }
        if name == "text" { inText = true; current = ""; tickAnchor = a["class"] == "tick" ? a["text-anchor"] : nil }
    }
    func parser(_ parser: XMLParser, foundCharacters s: String) { if inText { current += s } }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text" {
            texts.append(current)
            if inBaseline { baselineTexts.append(current) }
            if tickAnchor == "middle" { xTicks.append(current) } else if tickAnchor == "end" { yTicks.append(current) }
            inText = false
        }
        if name == "g" { inBaseline = false }
    }
}
