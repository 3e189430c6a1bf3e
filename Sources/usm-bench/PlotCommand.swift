import ArgumentParser
import Foundation
import USMFormat
import USMModel

/// WER against model size, from `usm-bench wer --json` results, as an SVG.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Plot WER against model size (bits as stored) from `usm-bench wer --json` outputs, as SVG.")

    @Option(help: "Output SVG file.") var out: String
    @Option(help: "Plot title.") var title = "WER against model size"
    @Argument(help: "JSON files written by `usm-bench wer --json` (each names its model file).") var results: [String]

    struct Point { var label: String; var mbit: Double; var wer: Double; var set: String }

    func run() throws {
        var points: [Point] = []
        for path in results {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let model = obj["model"] as? String, let wer = obj["wer"] as? Double else {
                throw ValidationError("\(path) is not a `usm-bench wer --json` result")
            }
            let file = try ContainerFile(path: model)
            let bits = SizeReport(source: file).total.totalBitsStored
            let label = file.metadata.quantization?.recipe ?? (model as NSString).lastPathComponent
            points.append(Point(label: label, mbit: Double(bits) / 1e6, wer: wer * 100,
                                set: ((obj["directory"] as? String ?? "") as NSString).lastPathComponent))
        }
        guard !points.isEmpty else { throw ValidationError("no results") }
        try svg(points).write(toFile: out, atomically: true, encoding: .utf8)
        print("wrote \(out): \(points.count) points")
        for p in points.sorted(by: { $0.mbit < $1.mbit }) { print("\(p.label) [\(p.set)]: \(String(format: "%.3f", p.mbit)) Mbit, WER \(String(format: "%.2f", p.wer))%") }
    }

    func svg(_ points: [Point]) -> String {
        let (w, h, left, right, top, bottom) = (640.0, 420.0, 70.0, 20.0, 40.0, 60.0)
        let xs = points.map { log10($0.mbit) }
        var (x0, x1) = (floor(xs.min()! - 0.1), ceil(xs.max()! + 0.1))
        if x1 - x0 < 1 { x1 = x0 + 1 }
        let top0 = max(1, points.map(\.wer).max()! * 1.05)
        let step = [1.0, 2, 5, 10, 20, 25, 50].first { top0 / $0 <= 6 } ?? 100
        let y1 = ceil(top0 / step) * step
        func px(_ mbit: Double) -> Double { left + (log10(mbit) - x0) / (x1 - x0) * (w - left - right) }
        func py(_ wer: Double) -> Double { h - bottom - wer / y1 * (h - top - bottom) }
        let sets = Array(Set(points.map(\.set))).sorted()
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(w / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        s += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        var e = x0
        while e <= x1 + 1e-9 {
            let x = left + (e - x0) / (x1 - x0) * (w - left - right)
            s += "<line x1=\"\(x)\" y1=\"\(h - bottom)\" x2=\"\(x)\" y2=\"\(h - bottom + 5)\" stroke=\"black\"/>"
            s += "<text x=\"\(x)\" y=\"\(h - bottom + 18)\" text-anchor=\"middle\">\(formatMbit(pow(10, e)))</text>\n"
            e += 1
        }
        var t = 0.0
        while t <= y1 + 1e-9 {
            s += "<line x1=\"\(left - 5)\" y1=\"\(py(t))\" x2=\"\(left)\" y2=\"\(py(t))\" stroke=\"black\"/>"
            s += "<text x=\"\(left - 8)\" y=\"\(py(t) + 4)\" text-anchor=\"end\">\(Int(t))</text>\n"
            t += step
        }
        s += "<text x=\"\((left + w - right) / 2)\" y=\"\(h - 15)\" text-anchor=\"middle\">model size (Mbit, as stored; log scale)</text>\n"
        s += "<text transform=\"translate(18 \((top + h - bottom) / 2)) rotate(-90)\" text-anchor=\"middle\">WER %</text>\n"
        for (i, set) in sets.enumerated() {
            let c = colors[i % colors.count]
            let ps = points.filter { $0.set == set }.sorted { $0.mbit < $1.mbit }
            if ps.count > 1 {
                s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"1\" stroke-dasharray=\"4 3\" points=\""
                    + ps.map { "\(px($0.mbit)),\(py($0.wer))" }.joined(separator: " ") + "\"/>\n"
            }
            for p in ps {
                s += "<circle cx=\"\(px(p.mbit))\" cy=\"\(py(p.wer))\" r=\"4\" fill=\"\(c)\"/>"
                s += "<text x=\"\(px(p.mbit) + 6)\" y=\"\(py(p.wer) - 6)\">\(escape(p.label))</text>\n"
            }
            s += "<text x=\"\(w - right - 150)\" y=\"\(top + 16 * Double(i + 1))\" fill=\"\(c)\">● \(escape(set.isEmpty ? "results" : set))</text>\n"
        }
        return s + "</svg>\n"
    }

    func formatMbit(_ v: Double) -> String { v >= 1 ? String(format: "%.0f", v) : String(format: "%.2g", v) }
    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
