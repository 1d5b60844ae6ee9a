import Common
import ModelFormat
import Toolbench
import Evaluation
import Foundation

// report.svg: quality (NDCG@10, full ranking) against inference cost (ms per user at batch
// 512), one labelled point per model, the Pareto front (higher quality at lower cost) drawn
// as a dashed line through its points. Plain SVG 1.1 written here: no plotting package.

extension ComparisonReport {
    public func svg() -> String {
        let W = 800.0, H = 500.0
        let left = 84.0, right = 40.0, top = 58.0, bottom = 70.0
        let pw = W - left - right, ph = H - top - bottom
        let pts = chartPoints
        let batch = rows.compactMap { $0.timing?.batch }.first ?? 512
        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(W))" height="\(Int(H))" viewBox="0 0 \(Int(W)) \(Int(H))" font-family="Helvetica, Arial, sans-serif">
        <rect x="0" y="0" width="\(Int(W))" height="\(Int(H))" fill="white"/>
        <text x="\(f(W / 2))" y="26" text-anchor="middle" font-size="17" font-weight="bold">\(esc("Quality vs inference cost: \(title)"))</text>

        """
        let sub = referenceRow?.context.map { "\($0.split) split, \($0.users) users; teacher: \(teacher)" } ?? "teacher: \(teacher)"
        s += "<text x=\"\(f(W / 2))\" y=\"44\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555\">\(esc(sub))</text>\n"
        guard !pts.isEmpty else {
            s += "<text x=\"\(f(W / 2))\" y=\"\(f(H / 2))\" text-anchor=\"middle\" font-size=\"14\">No model has both \(ComparisonReport.chartKey) and a timing: nothing to plot.</text>\n</svg>\n"
            return s
        }
        // Axes ranges: cost on a log scale when the spread is over 8x.
        let costs = pts.map(\.cost), quals = pts.map(\.quality)
        let cmin = costs.min()!, cmax = costs.max()!
        let logX = cmax / max(cmin, 1e-12) > 8
        var x0: Double, x1: Double
        if logX {
            x0 = log10(cmin) - 0.15; x1 = log10(cmax) + 0.15
        } else {
            let span = max(cmax - cmin, cmax * 0.2)
            x0 = max(0, cmin - span * 0.25); x1 = cmax + span * 0.25
        }
        let qmin = quals.min()!, qmax = quals.max()!
        let qspan = max(qmax - qmin, qmax * 0.1, 1e-6)
        let y0 = max(0, qmin - qspan * 0.2), y1 = qmax + qspan * 0.2
        func px(_ c: Double) -> Double { left + ((logX ? log10(c) : c) - x0) / (x1 - x0) * pw }
        func py(_ q: Double) -> Double { top + ph - (q - y0) / (y1 - y0) * ph }

        // Frame, grid and ticks.
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#333\"/>\n"
        let xt = logX ? logTicks(pow(10, x0), pow(10, x1)) : niceTicks(x0, x1)
        for t in xt {
            let x = px(t)
            s += "<line class=\"grid\" x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + ph))\" stroke=\"#e4e4e4\"/>\n"
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top + ph))\" x2=\"\(f(x))\" y2=\"\(f(top + ph + 5))\" stroke=\"#333\"/>\n"
            s += "<text class=\"tick\" x=\"\(f(x))\" y=\"\(f(top + ph + 19))\" text-anchor=\"middle\" font-size=\"11\">\(tickLabel(t))</text>\n"
        }
        for t in niceTicks(y0, y1) {
            let y = py(t)
            s += "<line class=\"grid\" x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + pw))\" y2=\"\(f(y))\" stroke=\"#e4e4e4\"/>\n"
            s += "<line x1=\"\(f(left - 5))\" y1=\"\(f(y))\" x2=\"\(f(left))\" y2=\"\(f(y))\" stroke=\"#333\"/>\n"
            s += "<text class=\"tick\" x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\" font-size=\"11\">\(tickLabel(t))</text>\n"
        }
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(H - 22))\" text-anchor=\"middle\" font-size=\"13\">\(esc("Inference cost: ms per user at batch \(batch)\(logX ? ", log scale" : "") (← lower is better)"))</text>\n"
        s += "<text x=\"20\" y=\"\(f(top + ph / 2))\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 20 \(f(top + ph / 2)))\">\(esc("NDCG@10, full ranking (higher is better →)"))</text>\n"

        // Pareto front.
        let front = paretoFront
        let fpts = front.compactMap { n in pts.first { $0.name == n } }.sorted { $0.cost < $1.cost }
        s += "<polyline class=\"pareto\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 4\" points=\""
            + fpts.map { "\(f(px($0.cost))),\(f(py($0.quality)))" }.joined(separator: " ") + "\"/>\n"

        // Points and labels (labels placed where they do not overlap earlier ones).
        var boxes: [(Double, Double, Double, Double)] = []
        for p in pts {
            let x = px(p.cost), y = py(p.quality), onFront = front.contains(p.name)
            let label = p.name
            let w = Double(label.count) * 7.0 + 4, h = 14.0
            let candidates: [(Double, Double, String)] = [(x + 9, y - 8, "start"), (x + 9, y + 16, "start"), (x - 9, y - 8, "end"),
                                                          (x - 9, y + 16, "end"), (x - w / 2, y - 14, "start"), (x - w / 2, y + 24, "start")]
            func box(_ c: (Double, Double, String)) -> (Double, Double, Double, Double) {
                let bx = c.2 == "end" ? c.0 - w : c.0
                return (bx, c.1 - h + 3, bx + w, c.1 + 3)
            }
            func overlaps(_ b: (Double, Double, Double, Double)) -> Bool {
                boxes.contains { o in b.0 < o.2 && o.0 < b.2 && b.1 < o.3 && o.1 < b.3 } || b.0 < 2 || b.2 > W - 2
            }
            let pick = candidates.first { !overlaps(box($0)) } ?? candidates[0]
            boxes.append(box(pick))
            boxes.append((x - 6, y - 6, x + 6, y + 6))
            s += "<g class=\"point\" data-model=\"\(esc(p.name))\">"
            s += "<title>\(esc(String(format: "%@: NDCG@10 %.4f, %.3f ms/user", p.name, p.quality, p.cost)))</title>"
            s += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"6\" fill=\"\(onFront ? "#d62728" : "#1f77b4")\" stroke=\"white\" stroke-width=\"1.5\"/>"
            s += "<text x=\"\(f(pick.0))\" y=\"\(f(pick.1))\" text-anchor=\"\(pick.2)\" font-size=\"12\">\(esc(label))</text></g>\n"
        }
        // Legend and what is not shown.
        // The legend goes in the plot corner that covers the fewest points and labels.
        let lw = 290.0, lh = 36.0
        let corners = [(left + 4, top + 4), (left + pw - lw - 4, top + 4), (left + 4, top + ph - lh - 4), (left + pw - lw - 4, top + ph - lh - 4)]
        let corner = corners.min { a, b in
            func hits(_ c: (Double, Double)) -> Int { boxes.filter { o in c.0 < o.2 && o.0 < c.0 + lw && c.1 < o.3 && o.1 < c.1 + lh }.count }
            return hits(a) < hits(b)
        }!
        s += "<rect x=\"\(f(corner.0))\" y=\"\(f(corner.1))\" width=\"\(f(lw))\" height=\"\(f(lh))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n"
        let lx = corner.0 + 12, ly = corner.1 + 16
        s += "<g class=\"legend\" font-size=\"11\"><circle cx=\"\(f(lx))\" cy=\"\(f(ly - 4))\" r=\"5\" fill=\"#d62728\"/><text x=\"\(f(lx + 10))\" y=\"\(f(ly))\">Pareto front (no model is better and cheaper)</text>"
        s += "<circle cx=\"\(f(lx))\" cy=\"\(f(ly + 12))\" r=\"5\" fill=\"#1f77b4\"/><text x=\"\(f(lx + 10))\" y=\"\(f(ly + 16))\">dominated</text></g>\n"
        let missing = rows.filter { r in !pts.contains { $0.name == r.name } }.map(\.name)
        if !missing.isEmpty {
            s += "<text x=\"\(f(left))\" y=\"\(f(H - 6))\" font-size=\"11\" fill=\"#555\">\(esc("Not plotted (no comparable \(ComparisonReport.chartKey) or no timing): " + missing.joined(separator: ", ")))</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}

private func f(_ v: Double) -> String { String(format: "%.1f", v) }

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
