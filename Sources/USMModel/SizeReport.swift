import Foundation
import USMFormat
import USMTensor

/// The size accounting of ModelFormat.md section 7 for a whole model, per tensor, per group and in total.
public struct SizeReport: Sendable, Codable {
    public struct Row: Sendable, Codable {
        public var name: String
        public var group: String
        public var shape: [Int]
        public var scheme: String
        public var blockSize: Int
        public var scaleFormat: String
        public var elements: Int
        public var weightBits: Int
        public var metaBitsF32: Int
        public var metaBitsInt8: Int
        public var metaBitsStored: Int
        public var floatBits: Int
        public var payloadBytes: Int
        /// bytes of the frame in the file (nil when computed from a config)
        public var storedBytes: Int?

        var account: SizeAccount {
            var a = SizeAccount()
            a.elements = elements; a.weightBits = weightBits; a.metaBitsF32 = metaBitsF32
            a.metaBitsInt8 = metaBitsInt8; a.metaBitsStored = metaBitsStored; a.floatBits = floatBits
            a.payloadBytes = payloadBytes
            return a
        }
    }

    public var rows: [Row]
    /// bytes of the decompressed image (nil when computed from a config)
    public var imageBytes: Int?
    /// bytes of the file (nil when computed from a config)
    public var fileBytes: Int?

    public init(rows: [Row], imageBytes: Int?, fileBytes: Int?) {
        self.rows = rows
        self.imageBytes = imageBytes
        self.fileBytes = fileBytes
    }

    static func row(_ name: String, _ l: TensorLayout, stored: Int?) -> Row {
        let a = SizeAccount(layout: l)
        return Row(name: name, group: TensorGroup.of(name).rawValue, shape: l.shape, scheme: l.scheme.name,
                   blockSize: l.blockSize, scaleFormat: l.scheme.isQuantized ? l.scaleFormat.name : "-",
                   elements: a.elements, weightBits: a.weightBits, metaBitsF32: a.metaBitsF32,
                   metaBitsInt8: a.metaBitsInt8, metaBitsStored: a.metaBitsStored, floatBits: a.floatBits,
                   payloadBytes: a.payloadBytes, storedBytes: stored)
    }

    /// The accounting of a loaded container.
    public init(container c: Container) { self.init(source: c) }

    /// The accounting of any container's directory.
    public init(source c: some TensorSource) {
        rows = c.entries.map { Self.row($0.name, $0.layout, stored: Int($0.storedLength)) }
        imageBytes = Int(c.header.imageSize)
        fileBytes = Int(c.header.fileSize)
    }

    /// The accounting a recipe gives a config, computed from layouts alone (no weights).
    public init(config: ConformerConfig, recipe: Recipe, scaleFormat: ScaleFormat, blockSize: Int?) throws {
        try self.init(tensors: config.tensors, recipe: recipe, scaleFormat: scaleFormat, blockSize: blockSize)
    }

    /// The report `recipe` would give tensors `tensors` (layouts computed, nothing packed).
    public init(tensors: [TensorInfo], recipe: Recipe, scaleFormat: ScaleFormat, blockSize: Int?) throws {
        rows = try tensors.map { t in
            let s = recipe.spec(for: t, scaleFormat: scaleFormat, blockSize: blockSize)
            return Self.row(t.name, try TensorLayout(shape: t.shape, scheme: s.scheme, blockSize: s.blockSize,
                                                     scaleFormat: s.scaleFormat), stored: nil)
        }
        var image = 0
        for r in rows { image = roundUp(image, 64) + r.payloadBytes }
        imageBytes = roundUp(image, 64)
        fileBytes = nil
    }

    public var total: SizeAccount { rows.reduce(SizeAccount()) { $0 + $1.account } }

    public struct GroupLine: Sendable {
        public var group: String
        public var tensors: Int
        public var schemes: String
        public var account: SizeAccount
        public var storedBytes: Int?
    }

    public var groups: [GroupLine] {
        var order: [String] = []
        var lines: [String: GroupLine] = [:]
        for r in rows {
            if lines[r.group] == nil {
                order.append(r.group)
                lines[r.group] = GroupLine(group: r.group, tensors: 0, schemes: "", account: SizeAccount(), storedBytes: r.storedBytes == nil ? nil : 0)
            }
            lines[r.group]!.tensors += 1
            lines[r.group]!.account += r.account
            if let s = r.storedBytes { lines[r.group]!.storedBytes! += s }
            let label = r.scheme == "f32" ? "f32" : "\(r.scheme)/\(r.blockSize == 0 ? "ch" : String(r.blockSize))/\(r.scaleFormat)"
            if !lines[r.group]!.schemes.split(separator: " ").contains(Substring(label)) {
                lines[r.group]!.schemes += (lines[r.group]!.schemes.isEmpty ? "" : " ") + label
            }
        }
        return order.map { lines[$0]! }
    }

    // MARK: rendering

    static func mbit(_ bits: Int) -> String { String(format: "%.3f", Double(bits) / 1e6) }
    static func gbit(_ bits: Int) -> String { String(format: "%.3f", Double(bits) / 1e9) }
    static func ratio(_ a: Int, _ b: Int) -> String { b == 0 ? "-" : String(format: "%.2fx", Double(a) / Double(b)) }

    /// Markdown: one line per group, then exact totals in bits.
    public func markdown() -> String {
        var s = "| group | tensors | stored as | params | weight Mbit | meta Mbit (f32 / int8 / stored) | float Mbit | total Mbit (f32 meta / int8 meta) | reduction (f32 / int8 meta) |\n"
        s += "|---|---:|---|---:|---:|---:|---:|---:|---:|\n"
        for g in groups {
            let a = g.account
            s += "| \(g.group) | \(g.tensors) | \(g.schemes) | \(a.elements) | \(Self.mbit(a.weightBits)) | "
            s += "\(Self.mbit(a.metaBitsF32)) / \(Self.mbit(a.metaBitsInt8)) / \(Self.mbit(a.metaBitsStored)) | \(Self.mbit(a.floatBits)) | "
            s += "\(Self.mbit(a.totalBitsF32Meta)) / \(Self.mbit(a.totalBitsInt8Meta)) | "
            s += "\(Self.ratio(a.f32EquivalentBits, a.totalBitsF32Meta)) / \(Self.ratio(a.f32EquivalentBits, a.totalBitsInt8Meta)) |\n"
        }
        let t = total
        s += "\nTotals (bits, exact): params \(t.elements); weight \(t.weightBits); metadata f32 \(t.metaBitsF32), int8 \(t.metaBitsInt8), as stored \(t.metaBitsStored); float \(t.floatBits)\n"
        s += "Total as stored: \(t.totalBitsStored) bits = \(Self.gbit(t.totalBitsStored)) Gbit; f32 equivalent \(t.f32EquivalentBits) bits = \(Self.gbit(t.f32EquivalentBits)) Gbit; reduction \(Self.ratio(t.f32EquivalentBits, t.totalBitsStored))\n"
        s += "With f32 metadata: \(Self.gbit(t.totalBitsF32Meta)) Gbit (\(Self.ratio(t.f32EquivalentBits, t.totalBitsF32Meta))); with int8 metadata: \(Self.gbit(t.totalBitsInt8Meta)) Gbit (\(Self.ratio(t.f32EquivalentBits, t.totalBitsInt8Meta)))\n"
        if let imageBytes { s += "In memory (decompressed image): \(imageBytes) bytes" }
        if let fileBytes { s += "; on disk: \(fileBytes) bytes (\(Self.ratio(t.f32EquivalentBits, 8 * fileBytes)) vs f32)" }
        if imageBytes != nil { s += "\n" }
        return s
    }

    /// The paper's Table 2 beside this accounting, for every recipe, at a config (USM-1B in the paper).
    public static func paperComparison(config: ConformerConfig) throws -> String {
        var s = "| recipe | ours f32 meta: Gbit (reduction) | paper f32 meta | ours int8 meta: Gbit (reduction) | paper int8 meta |\n|---|---:|---:|---:|---:|\n"
        for r in Recipe.all {
            let a = try SizeReport(config: config, recipe: r, scaleFormat: .f32, blockSize: nil).total
            let b = try SizeReport(config: config, recipe: r, scaleFormat: .int8PerTensor, blockSize: nil).total
            func paper(_ v: Double?) -> String { v.map { String(format: "%.1f (%.1fx)", $0, 28.6 / $0) } ?? "-" }
            s += "| \(r.name) | \(gbit(a.totalBitsF32Meta)) (\(ratio(a.f32EquivalentBits, a.totalBitsF32Meta))) | \(paper(r.paperGbit.f32)) | "
            s += "\(r.encoder == nil ? "-" : "\(gbit(b.totalBitsInt8Meta)) (\(ratio(b.f32EquivalentBits, b.totalBitsInt8Meta)))") | \(paper(r.paperGbit.int8)) |\n"
        }
        return s
    }
}
