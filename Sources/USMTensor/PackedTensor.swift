/// A tensor stored as ModelFormat.md section 5 describes: a payload (codes, scales, factors, zero points) at
/// `offset` inside an immutable aligned buffer, which may be a whole decompressed model image.
public struct PackedTensor: Sendable {
    public let layout: TensorLayout
    public let storage: AlignedBuffer
    /// Payload start within `storage`, a multiple of 64.
    public let offset: Int

    public init(layout: TensorLayout, storage: AlignedBuffer, offset: Int) {
        precondition(offset % AlignedBuffer.alignment == 0 && offset + layout.payloadLength <= storage.count,
                     "payload outside its storage")
        self.layout = layout
        self.storage = storage
        self.offset = offset
    }

    /// A tensor of scheme `f32` holding `values` (row-major, count = product of `shape`).
    public init(f32 values: [Float], shape: [Int]) throws(LayoutError) {
        let layout = try TensorLayout(shape: shape, scheme: .f32)
        guard values.count == layout.elementCount else {
            throw .valueCountMismatch(expected: layout.elementCount, actual: values.count)
        }
        let buffer = AlignedBuffer(byteCount: layout.payloadLength)
        buffer.withUnsafeMutableBytes { raw in
            values.withUnsafeBytes { src in raw.copyMemory(from: src) }
        }
        self.init(layout: layout, storage: buffer, offset: 0)
    }

    public var scheme: QuantScheme { layout.scheme }
    public var shape: [Int] { layout.shape }

    /// The payload bytes (what the container stores for this tensor).
    public func withPayload<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + layout.payloadLength)]))
        }
    }

    /// One part of the payload.
    public func withPart<R, E: Error>(_ part: TensorPart, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let p = layout.part(part)
        return try storage.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: raw[(offset + p.offset)..<(offset + p.offset + p.length)]))
        }
    }

    /// The values of an `f32` tensor.
    public var floatValues: [Float] {
        precondition(scheme == .f32, "floatValues of a \(scheme) tensor")
        return withPart(.codes) { Array($0.bindMemory(to: Float.self)) }
    }

    /// Decoded scales, `[rows * blocksPerRow]` row-major (empty for f32).
    public var scales: [Float] {
        guard scheme != .f32 else { return [] }
        return decodeMeta(.scales, .scaleFactors, 0..<(layout.rows * layout.blocksPerRow), signed: false)
    }

    /// Decoded zero points, `[rows * blocksPerRow]` (empty for symmetric schemes).
    public var zeroPoints: [Float] {
        guard scheme.hasZeroPoint else { return [] }
        return decodeMeta(.zeroPoints, .zeroPointFactors, 0..<(layout.rows * layout.blocksPerRow), signed: true)
    }

    /// Decoded scales or zero points for entries `range` of the `[rows * blocksPerRow]` table.
    private func decodeMeta(_ part: TensorPart, _ factorPart: TensorPart, _ range: Range<Int>, signed: Bool) -> [Float] {
        let l = layout
        if l.scaleFormat == .f32 { return withPart(part) { Array($0.bindMemory(to: Float.self)[range]) } }
        let factors: [Float] = withPart(factorPart) { Array($0.bindMemory(to: Float.self)) }
        return withPart(part) { raw in
            range.map { i in
                let f = factors[l.scaleFormat == .int8PerRow ? i / l.blocksPerRow : 0]
                return (signed ? Float(Int8(bitPattern: raw[i])) : Float(raw[i])) * f
            }
        }
    }

    /// Integer codes, `[rows * k]`: int8/int4 signed, int2/bin_asym unsigned, bin/bin_norm −1 or +1.
    public var codes: [Int32] {
        precondition(scheme != .f32, "codes of an f32 tensor")
        let l = layout
        var out = [Int32](repeating: 0, count: l.rows * l.k)
        withPart(.codes) { raw in
            for r in 0..<l.rows {
                let row = UnsafeRawBufferPointer(rebasing: raw[(r * l.rowBytes)..<((r + 1) * l.rowBytes)])
                for c in 0..<l.k { out[r * l.k + c] = BitPacking.code(row, c, l.scheme) }
            }
        }
        return out
    }

    /// One row of the tensor's values (for lookups such as embeddings, without expanding the whole tensor).
    public func dequantizedRow(_ r: Int) -> [Float] {
        let l = layout
        precondition(r >= 0 && r < l.rows, "row \(r) outside 0..<\(l.rows)")
        if scheme == .f32 {
            return withPart(.codes) { raw in Array(raw.bindMemory(to: Float.self)[(r * l.k)..<((r + 1) * l.k)]) }
        }
        let row = (r * l.blocksPerRow)..<((r + 1) * l.blocksPerRow)
        let s = decodeMeta(.scales, .scaleFactors, row, signed: false)
        let zp = scheme.hasZeroPoint ? decodeMeta(.zeroPoints, .zeroPointFactors, row, signed: true) : []
        return withPart(.codes) { raw in
            let row = UnsafeRawBufferPointer(rebasing: raw[(r * l.rowBytes)..<((r + 1) * l.rowBytes)])
            return (0..<l.k).map { c in
                let j = c / l.blockLength
                let v = Float(BitPacking.code(row, c, l.scheme)) * s[j]
                return scheme.hasZeroPoint ? v - zp[j] : v
            }
        }
    }

    /// The tensor's values as the kernels see them, `[rows * k]` row-major.
    public func dequantized() -> [Float] {
        if scheme == .f32 { return floatValues }
        let l = layout
        let q = codes, s = scales, zp = zeroPoints
        var out = [Float](repeating: 0, count: l.rows * l.k)
        for r in 0..<l.rows {
            for c in 0..<l.k {
                let j = r * l.blocksPerRow + c / l.blockLength
                var v = Float(q[r * l.k + c]) * s[j]
                if scheme.hasZeroPoint { v -= zp[j] }
                out[r * l.k + c] = v
            }
        }
        return out
    }
}

/// Bit-level access to packed code rows (ModelFormat.md section 5: little-endian bit order).
public enum BitPacking {
    /// The code of element `c` of a packed row, decoded as `PackedTensor.codes` describes.
    @inline(__always)
    public static func code(_ row: UnsafeRawBufferPointer, _ c: Int, _ scheme: QuantScheme) -> Int32 {
        let bits = scheme.bits
        if bits == 8 { return Int32(Int8(bitPattern: row[c])) }
        let bitPos = c * bits
        let field = Int32((row[bitPos >> 3] >> UInt8(bitPos & 7)) & UInt8((1 << bits) - 1))
        switch scheme {
        case .int4: return field >= 8 ? field - 16 : field
        case .bin, .binNorm: return field == 1 ? 1 : -1
        default: return field
        }
    }

    /// Stores `code` (in the scheme's stored range; for sign-binary: the bit) at element `c` of a zeroed row.
    @inline(__always)
    public static func store(_ row: UnsafeMutableRawBufferPointer, _ c: Int, _ code: Int32, _ bits: Int) {
        if bits == 8 { row[c] = UInt8(bitPattern: Int8(truncatingIfNeeded: code)); return }
        let bitPos = c * bits
        let mask = UInt8((1 << bits) - 1)
        row[bitPos >> 3] |= (UInt8(truncatingIfNeeded: code) & mask) << UInt8(bitPos & 7)
    }
}
