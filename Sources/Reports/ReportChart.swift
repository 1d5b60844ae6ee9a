import Common
import ModelFormat
import Toolbench
import Evaluation
import Foundation

// report.svg: quality (NDCG@10, full ranking) against inference cost (ms per user at batch
// 512), one labelled point per model, the Pareto front (higher quality at lower cost) drawn
// as a dashed line through its points. Plain SVG 1.1 written here: no plotting package.
// ChartCanvas (page, title, axes, footnote) and LabelPlacer (labels that do not overlap, the
// legend's corner) are shared with report-depth.svg (ReportDepthChart.swift).

extension ComparisonReport {
    public func svg() -> String {
        let c = ChartCanvas()
        let pts = chartPoints
        let batch = rows.compactMap { $0.timing?.batch }.first ?? 512
        var s = c.header(title: "Quality vs inference cost: \(title)", subtitle: chartSubtitle)
        guard !pts.isEmpty else {
            return s + c.message("No model has both \(ComparisonReport.chartKey) and a timing: nothing to plot.")
        }
        // Axes ranges: cost on a log scale when the spread is over 8x.
        let costs = pts.map(\.cost)
        let cmin = costs.min()!, cmax = costs.max()!
        let logX = cmax / max(cmin, 1e-12) > 8
        var x0: Double, x1: Double
        if logX {
            x0 = log10(cmin) - 0.15; x1 = log10(cmax) + 0.15
        } else {
            let span = max(cmax - cmin, cmax * 0.2)
            x0 = max(0, cmin - span * 0.25); x1 = cmax + span * 0.25
        }
        let (y0, y1) = qualityRange(pts.map(\.quality))
        func px(_ v: Double) -> Double { c.left + ((logX ? log10(v) : v) - x0) / (x1 - x0) * c.pw }
        func py(_ q: Double) -> Double { c.y(q, y0, y1) }

        // Frame, grid and ticks.
        let xt = logX ? logTicks(pow(10, x0), pow(10, x1)) : niceTicks(x0, x1)
        s += c.axes(x: xt.map { (px($0), tickLabel($0)) }, y: niceTicks(y0, y1).map { (py($0), tickLabel($0)) },
                    xTitle: "Inference cost: ms per user at batch \(batch)\(logX ? ", log scale" : "") (← lower is better)")

        // Pareto front.
        let front = paretoFront
        let fpts = front.compactMap { n in pts.first { $0.name == n } }.sorted { $0.cost < $1.cost }
        s += "<polyline class=\"pareto\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 4\" points=\""
            + fpts.map { "\(f(px($0.cost))),\(f(py($0.quality)))" }.joined(separator: " ") + "\"/>\n"

        // Points and labels (labels placed where they do not overlap earlier ones).
        var labels = LabelPlacer(canvas: c)
        for p in pts {
            let x = px(p.cost), y = py(p.quality), onFront = front.contains(p.name)
            let pick = labels.placePointLabel(p.name, x: x, y: y)
            s += "<g class=\"point\" data-model=\"\(esc(p.name))\">"
            s += "<title>\(esc(String(format: "%@: NDCG@10 %.4f, %.3f ms/user", p.name, p.quality, p.cost)))</title>"
            s += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"6\" fill=\"\(onFront ? "#d62728" : "#1f77b4")\" stroke=\"white\" stroke-width=\"1.5\"/>"
            // A stage below its quality gate: crossed out, and "✗" after its name.
            let failed = rows.first { $0.name == p.name }?.gate?.passed == false
            if failed {
                s += "<path class=\"gate-failed\" d=\"M\(f(x - 8)),\(f(y - 8)) L\(f(x + 8)),\(f(y + 8)) M\(f(x - 8)),\(f(y + 8)) L\(f(x + 8)),\(f(y - 8))\" stroke=\"#444\" stroke-width=\"2\"/>"
            }
            s += "<text x=\"\(f(pick.x))\" y=\"\(f(pick.y))\" text-anchor=\"\(pick.anchor)\" font-size=\"12\">\(esc(p.name))\(failed ? " ✗ gate" : "")</text></g>\n"
        }
        // Legend and what is not shown.
        let lw = 290.0, lh = 36.0
        let corner = labels.legendCorner(width: lw, height: lh)
        s += "<rect x=\"\(f(corner.x))\" y=\"\(f(corner.y))\" width=\"\(f(lw))\" height=\"\(f(lh))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n"
        let lx = corner.x + 12, ly = corner.y + 16
        s += "<g class=\"legend\" font-size=\"11\"><circle cx=\"\(f(lx))\" cy=\"\(f(ly - 4))\" r=\"5\" fill=\"#d62728\"/><text x=\"\(f(lx + 10))\" y=\"\(f(ly))\">Pareto front (no model is better and cheaper)</text>"
        s += "<circle cx=\"\(f(lx))\" cy=\"\(f(ly + 12))\" r=\"5\" fill=\"#1f77b4\"/><text x=\"\(f(lx + 10))\" y=\"\(f(ly + 16))\">dominated</text></g>\n"
        let missing = rows.filter { r in !pts.contains { $0.name == r.name } }.map(\.name)
        s += c.notPlotted(missing, reason: "no comparable \(ComparisonReport.chartKey) or no timing")
        s += "</svg>\n"
        return s
    }

    /// Both charts' subtitle: where the quality was measured, and the teacher.
    var chartSubtitle: String {
        referenceRow?.context.map { "\($0.split) split, \($0.users) users; teacher: \(teacher)" } ?? "teacher: \(teacher)"
    }
}

/// The page both charts draw on (report.svg, report-depth.svg): its size, the plot
/// rectangle, and the parts they share (title, frame and ticks, footnote).
struct ChartCanvas {
    let W = 800.0, H = 500.0
    let left = 84.0, right = 40.0, top = 58.0, bottom = 70.0
    var pw: Double { W - left - right }
    var ph: Double { H - top - bottom }

    /// The quality axis: `q` in [y0, y1] to a y coordinate.
    func y(_ q: Double, _ y0: Double, _ y1: Double) -> Double { top + ph - (q - y0) / (y1 - y0) * ph }

    /// XML prolog, the svg element, a white background, the title and the subtitle.
    func header(title: String, subtitle: String) -> String {
        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(W))" height="\(Int(H))" viewBox="0 0 \(Int(W)) \(Int(H))" font-family="Helvetica, Arial, sans-serif">
        <rect x="0" y="0" width="\(Int(W))" height="\(Int(H))" fill="white"/>
        <text x="\(f(W / 2))" y="26" text-anchor="middle" font-size="17" font-weight="bold">\(esc(title))</text>

        """
        s += "<text x=\"\(f(W / 2))\" y=\"44\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555\">\(esc(subtitle))</text>\n"
        return s
    }

    /// A chart with nothing to plot: the reason in the middle, and the end of the document.
    func message(_ text: String) -> String {
        "<text x=\"\(f(W / 2))\" y=\"\(f(H / 2))\" text-anchor=\"middle\" font-size=\"14\">\(esc(text))</text>\n</svg>\n"
    }

    /// The frame, a grid line and a tick at each (coordinate, label) of `x` and `y` (a nil
    /// label: the tick without its number), the axis titles; the quality axis by default.
    func axes(x: [(Double, String?)], y: [(Double, String?)], xTitle: String,
              yTitle: String = "NDCG@10, full ranking (higher is better →)") -> String {
        var s = "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#333\"/>\n"
        for (x, label) in x {
            s += "<line class=\"grid\" x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + ph))\" stroke=\"#e4e4e4\"/>\n"
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top + ph))\" x2=\"\(f(x))\" y2=\"\(f(top + ph + 5))\" stroke=\"#333\"/>\n"
            if let label { s += "<text class=\"tick\" x=\"\(f(x))\" y=\"\(f(top + ph + 19))\" text-anchor=\"middle\" font-size=\"11\">\(esc(label))</text>\n" }
        }
        for (y, label) in y {
            s += "<line class=\"grid\" x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + pw))\" y2=\"\(f(y))\" stroke=\"#e4e4e4\"/>\n"
            s += "<line x1=\"\(f(left - 5))\" y1=\"\(f(y))\" x2=\"\(f(left))\" y2=\"\(f(y))\" stroke=\"#333\"/>\n"
            if let label { s += "<text class=\"tick\" x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\" font-size=\"11\">\(esc(label))</text>\n" }
        }
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(H - 22))\" text-anchor=\"middle\" font-size=\"13\">\(esc(xTitle))</text>\n"
        s += "<text x=\"20\" y=\"\(f(top + ph / 2))\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 20 \(f(top + ph / 2)))\">\(esc(yTitle))</text>\n"
        return s
    }

    /// The footnote naming the rows left off the chart, and why ("" when none is).
    func notPlotted(_ names: [String], reason: String) -> String {
        guard !names.isEmpty else { return "" }
        return "<text x=\"\(f(left))\" y=\"\(f(H - 6))\" font-size=\"11\" fill=\"#555\">\(esc("Not plotted (\(reason)): " + names.joined(separator: ", ")))</text>\n"
    }
}

/// The quality axis's range: the values with a margin, from 0 at the lowest.
func qualityRange(_ quals: [Double]) -> (Double, Double) {
    let qmin = quals.min() ?? 0, qmax = quals.max() ?? 1
    let qspan = max(qmax - qmin, qmax * 0.1, 1e-6)
    return (max(0, qmin - qspan * 0.2), qmax + qspan * 0.2)
}

/// Places labels where they overlap no earlier label or point and stay on the page, then
/// the legend in the plot corner that covers the fewest of them.
struct LabelPlacer {
    typealias Box = (x0: Double, y0: Double, x1: Double, y1: Double)
    let canvas: ChartCanvas
    private(set) var boxes: [Box] = []

    init(canvas: ChartCanvas) { self.canvas = canvas }

    /// Keeps `b` free of later labels (a point, a line's label).
    mutating func reserve(_ b: Box) { boxes.append(b) }

    /// The text box of a 12-px label of `width` at (x, y) with `anchor` (start | end).
    static func box(_ x: Double, _ y: Double, _ anchor: String, width w: Double) -> Box {
        let bx = anchor == "end" ? x - w : x
        return (bx, y - 14 + 3, bx + w, y + 3)
    }

    static func width(_ label: String) -> Double { Double(label.count) * 7.0 + 4 }

    func overlaps(_ b: Box) -> Bool {
        boxes.contains { o in b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1 } || b.x0 < 2 || b.x1 > canvas.W - 2
    }

    /// The first of `candidates` (x, y, anchor) whose box is free, else the first; reserved.
    mutating func place(_ label: String, candidates: [(Double, Double, String)]) -> (x: Double, y: Double, anchor: String) {
        let w = Self.width(label)
        let pick = candidates.first { !overlaps(Self.box($0.0, $0.1, $0.2, width: w)) } ?? candidates[0]
        reserve(Self.box(pick.0, pick.1, pick.2, width: w))
        return (pick.0, pick.1, pick.2)
    }

    /// The label of the point at (x, y): right, left, above or below it; the point is reserved too.
    mutating func placePointLabel(_ label: String, x: Double, y: Double) -> (x: Double, y: Double, anchor: String) {
        let w = Self.width(label)
        let pick = place(label, candidates: [(x + 9, y - 8, "start"), (x + 9, y + 16, "start"), (x - 9, y - 8, "end"),
                                             (x - 9, y + 16, "end"), (x - w / 2, y - 14, "start"), (x - w / 2, y + 24, "start")])
        reserve((x - 6, y - 6, x + 6, y + 6))
        return pick
    }

    /// The plot corner where a legend of this size covers the fewest reserved boxes.
    func legendCorner(width lw: Double, height lh: Double) -> (x: Double, y: Double) {
        let c = canvas
        let corners = [(c.left + 4, c.top + 4), (c.left + c.pw - lw - 4, c.top + 4), (c.left + 4, c.top + c.ph - lh - 4), (c.left + c.pw - lw - 4, c.top + c.ph - lh - 4)]
        func hits(_ p: (Double, Double)) -> Int { boxes.filter { o in p.0 < o.x1 && o.x0 < p.0 + lw && p.1 < o.y1 && o.y0 < p.1 + lh }.count }
        let best = corners.min { hits($0) < hits($1) }!
        return (best.0, best.1)
    }
}

func f(_ v: Double) -> String { String(format: "%.1f", v) }

func esc(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

/// About five round ticks within [a, b].
func niceTicks(_ a: Double, _ b: Double) -> [Double] {
    guard b > a else { return [a] }
    let raw = (b - a) / 5, mag = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
    var t = ceil(a / step) * step, out: [Double] = []
    while t <= b + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
    return out
}

/// 1-2-5 ticks per decade within [a, b] (a > 0).
func logTicks(_ a: Double, _ b: Double) -> [Double] {
    var out: [Double] = []
    var d = pow(10, floor(log10(a)))
    while d <= b {
        for m in [1.0, 2, 5] where d * m >= a && d * m <= b { out.append(d * m) }
        d *= 10
    }
    return out
}

func tickLabel(_ v: Double) -> String {
    if v == 0 { return "0" }
    let a = abs(v)
    if a >= 100 { return String(format: "%.0f", v) }
    if a >= 1 { return trimZeros(String(format: "%.2f", v)) }
    if a >= 0.01 { return trimZeros(String(format: "%.4f", v)) }
    return String(format: "%.1e", v)
}

private func trimZeros(_ s: String) -> String {
    guard s.contains(".") else { return s }
    var t = s
    while t.hasSuffix("0") { t.removeLast() }
    if t.hasSuffix(".") { t.removeLast() }
    return t
}
