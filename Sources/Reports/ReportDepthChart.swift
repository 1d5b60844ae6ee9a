import Foundation

// report-depth.svg: quality (NDCG@10, full ranking) against the number of decoder layers, one
// line per pass that made the models, classic baselines (SASRec) as dashed horizontal lines.
// It reproduces Figure 2 of Xu et al., "SLMRec: Distilling Large Language Models into Small for
// Sequential Recommendation" (ICLR 2025): NDCG@10 against the layers kept, (a) taken from a
// trained deep model without further training (prune-layers) and (b) trained with that many
// layers (finetune). Written only when the compared models differ in depth. Plain SVG 1.1,
// on the page and with the helpers of ReportChart.swift.

extension ComparisonReport {
    /// The depth chart's file name (one of `RecipeRunner.reportFiles`, for the output guard).
    public static let depthChartFile = "report-depth.svg"

    /// Rows that can be placed on the depth chart: comparable, with the chart metric and a layer count.
    public var depthPoints: [(name: String, pass: String, layers: Int, quality: Double)] {
        rows.compactMap { r in
            guard comparable(r), let q = r.quality[ComparisonReport.chartKey], let l = r.layers, l > 0 else { return nil }
            return (r.name, r.pass, l, q)
        }
    }

    /// Comparable SASRec rows with the chart metric: the depth chart's reference lines.
    public var depthBaselines: [(name: String, quality: Double)] {
        rows.compactMap { r in
            guard r.kind == .sasrec, comparable(r), let q = r.quality[ComparisonReport.chartKey] else { return nil }
            return (r.name, q)
        }
    }

    /// Whether `write(to:)` writes report-depth.svg: two of `depthPoints` differ in depth.
    public var hasDepthChart: Bool { Set(depthPoints.map(\.layers)).count >= 2 }

    /// A pass as the depth chart's legend names it: what the pass did to the depth, then its name.
    public static func depthSeriesLabel(_ pass: String) -> String {
        switch pass {
        case "finetune": return "trained at this depth (finetune)"
        case "prune-layers": return "first l layers of a deeper model, no training (prune-layers)"
        case "layerwise-kd": return "distilled (layerwise-kd)"
        case "quantize-int8": return "int8 (quantize-int8)"
        default: return pass
        }
    }

    public func depthSVG() -> String {
        let c = ChartCanvas()
        let pts = depthPoints, bases = depthBaselines
        var s = c.header(title: "Quality vs depth: \(title)", subtitle: chartSubtitle)
        guard !pts.isEmpty else {
            return s + c.message("No model has both \(ComparisonReport.chartKey) and a layer count: nothing to plot.")
        }
        // Layers on a log2 scale when they spread over 8x (1, 2, 4, … 30 stay apart).
        let depths = Set(pts.map(\.layers)).sorted()
        let lmin = Double(depths.first!), lmax = Double(depths.last!)
        let logX = lmax / lmin > 8
        let a = logX ? log2(lmin) : lmin, b = logX ? log2(lmax) : lmax
        let pad = logX ? max((b - a) * 0.06, 0.15) : max((b - a) * 0.08, 0.5)
        let x0 = a - pad, x1 = b + pad
        let (y0, y1) = qualityRange(pts.map(\.quality) + bases.map(\.quality))
        func px(_ l: Int) -> Double { c.left + ((logX ? log2(Double(l)) : Double(l)) - x0) / (x1 - x0) * c.pw }
        func py(_ q: Double) -> Double { c.y(q, y0, y1) }

        // A tick at every depth present; a number only where it does not run into the previous one.
        var xt: [(Double, String?)] = []
        var lastLabelled = -Double.infinity
        for d in depths {
            let x = px(d), room = x - lastLabelled >= 24
            xt.append((x, room ? "\(d)" : nil))
            if room { lastLabelled = x }
        }
        s += c.axes(x: xt, y: niceTicks(y0, y1).map { (py($0), tickLabel($0)) },
                    xTitle: "Decoder layers\(logX ? " (log scale)" : "")")

        // Baselines first, so that the points' labels keep off theirs.
        var labels = LabelPlacer(canvas: c)
        for bl in bases {
            let y = py(bl.quality), xr = c.left + c.pw - 6
            let pick = labels.place(bl.name, candidates: [(xr, y - 5, "end"), (xr, y + 15, "end"), (c.left + 6, y - 5, "start"), (c.left + 6, y + 15, "start")])
            s += "<g class=\"baseline\" data-model=\"\(esc(bl.name))\">"
            s += "<title>\(esc(String(format: "%@: NDCG@10 %.4f (no decoder layers)", bl.name, bl.quality)))</title>"
            s += "<line x1=\"\(f(c.left))\" y1=\"\(f(y))\" x2=\"\(f(c.left + c.pw))\" y2=\"\(f(y))\" stroke=\"#555\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>"
            s += "<text x=\"\(f(pick.x))\" y=\"\(f(pick.y))\" text-anchor=\"\(pick.anchor)\" font-size=\"12\" fill=\"#333\">\(esc(bl.name))</text></g>\n"
        }

        // One series per pass, in the rows' order; its points joined in order of depth.
        let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728"]
        var passes: [String] = []
        for p in pts where !passes.contains(p.pass) { passes.append(p.pass) }
        for (i, pass) in passes.enumerated() {
            let colour = palette[i % palette.count]
            let series = pts.enumerated().filter { $0.element.pass == pass }
                .sorted { ($0.element.layers, $0.offset) < ($1.element.layers, $1.offset) }.map(\.element)
            s += "<polyline class=\"series\" data-series=\"\(esc(pass))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\""
                + series.map { "\(f(px($0.layers))),\(f(py($0.quality)))" }.joined(separator: " ") + "\"/>\n"
            for p in series {
                let x = px(p.layers), y = py(p.quality)
                let pick = labels.placePointLabel(p.name, x: x, y: y)
                s += "<g class=\"point\" data-model=\"\(esc(p.name))\" data-series=\"\(esc(pass))\">"
                s += "<title>\(esc(String(format: "%@: NDCG@10 %.4f, %d layers (%@)", p.name, p.quality, p.layers, pass)))</title>"
                s += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"6\" fill=\"\(colour)\" stroke=\"white\" stroke-width=\"1.5\"/>"
                s += "<text x=\"\(f(pick.x))\" y=\"\(f(pick.y))\" text-anchor=\"\(pick.anchor)\" font-size=\"12\">\(esc(p.name))</text></g>\n"
            }
        }

        // Legend: a line and a dot per series, the dashed line of the baselines.
        var entries = passes.enumerated().map { (ComparisonReport.depthSeriesLabel($0.element), palette[$0.offset % palette.count], false) }
        if !bases.isEmpty { entries.append(("classic baseline, no decoder layers (named on its line)", "#555", true)) }
        let lw = min(c.pw - 8, Double(entries.map(\.0.count).max() ?? 0) * 6.2 + 46), lh = Double(entries.count) * 16 + 8
        let corner = labels.legendCorner(width: lw, height: lh)
        s += "<rect x=\"\(f(corner.x))\" y=\"\(f(corner.y))\" width=\"\(f(lw))\" height=\"\(f(lh))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n"
        s += "<g class=\"legend\" font-size=\"11\">"
        for (i, e) in entries.enumerated() {
            let lx = corner.x + 10, ly = corner.y + 16 + Double(i) * 16
            s += "<line x1=\"\(f(lx))\" y1=\"\(f(ly - 4))\" x2=\"\(f(lx + 22))\" y2=\"\(f(ly - 4))\" stroke=\"\(e.1)\" stroke-width=\"\(e.2 ? "1.5" : "2")\"\(e.2 ? " stroke-dasharray=\"6 4\"" : "")/>"
            if !e.2 { s += "<circle cx=\"\(f(lx + 11))\" cy=\"\(f(ly - 4))\" r=\"4\" fill=\"\(e.1)\"/>" }
            s += "<text x=\"\(f(lx + 30))\" y=\"\(f(ly))\">\(esc(e.0))</text>"
        }
        s += "</g>\n"
        let missing = rows.filter { r in !pts.contains { $0.name == r.name } && !bases.contains { $0.name == r.name } }.map(\.name)
        s += c.notPlotted(missing, reason: "no comparable \(ComparisonReport.chartKey) or no layer count")
        s += "</svg>\n"
        return s
    }
}
