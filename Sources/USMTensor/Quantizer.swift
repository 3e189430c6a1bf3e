/// The clipping coefficient of praxis' quantizers.
public enum ClipPolicy: Sendable, Hashable, CustomStringConvertible {
    case none
    case fixed(Float)
    /// Per block, the first coefficient of 1.0, 0.95, ..., 0.5 with the smallest mean absolute error.
    case search

    public static let searchGrid: [Float] = (0...10).map { Float(20 - $0) / 20 }

    public var description: String {
        switch self {
        case .none: "none"
        case .fixed(let c): "\(c)"
        case .search: "search"
        }
    }
}

/// How to quantize one tensor.
public struct QuantSpec: Sendable, Hashable {
    public var scheme: QuantScheme
    /// 0 = per channel
    public var blockSize: Int
    public var scaleFormat: ScaleFormat
    public var clip: ClipPolicy

    public init(scheme: QuantScheme, blockSize: Int = 0, scaleFormat: ScaleFormat = .f32, clip: ClipPolicy = .none) {
        self.scheme = scheme
        self.blockSize = blockSize
        self.scaleFormat = scheme == .f32 ? .f32 : scaleFormat
        self.clip = clip
    }

    public static let f32 = QuantSpec(scheme: .f32)
}

/// Post-training quantization of f32 tensors into the packed schemes (ModelFormat.md section 6).
public enum Quantizer {
    public static func quantize(_ values: [Float], shape: [Int], spec: QuantSpec) throws(LayoutError) -> PackedTensor {
        if spec.scheme == .f32 { return try PackedTensor(f32: values, shape: shape) }
        let l = try TensorLayout(shape: shape, scheme: spec.scheme, blockSize: spec.blockSize,
                                 scaleFormat: spec.scaleFormat)
        guard values.count == l.elementCount else {
            throw .valueCountMismatch(expected: l.elementCount, actual: values.count)
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteValue(index: bad) }

        let scheme = spec.scheme
        let nb = l.blocksPerRow
        let n = l.rows * nb
        // Pass 1: float parameters per block.
        var params = [BlockParams](repeating: BlockParams(), count: n)
        values.withUnsafeBufferPointer { v in
            for r in 0..<l.rows {
                for j in 0..<nb {
                    let range = l.blockRange(j)
                    let block = UnsafeBufferPointer(rebasing: v[(r * l.k + range.lowerBound)..<(r * l.k + range.upperBound)])
                    params[r * nb + j] = blockParams(block, scheme, spec.clip)
                }
            }
        }
        // Pass 2: scale storage (double quantization for int8 formats) and the decoded values codes are made with.
        let meta = MetaStorage(params: params, layout: l)

        // Pass 3: codes.
        let buffer = AlignedBuffer(byteCount: l.payloadLength)
        buffer.withUnsafeMutableBytes { raw in
            values.withUnsafeBufferPointer { v in
                let codesPart = l.part(.codes)
                let (qmin, qmax) = (Float(scheme.codeRange.lowerBound), Float(scheme.codeRange.upperBound))
                for r in 0..<l.rows {
                    let rowStart = codesPart.offset + r * l.rowBytes
                    let row = UnsafeMutableRawBufferPointer(rebasing: raw[rowStart..<(rowStart + l.rowBytes)])
                    for j in 0..<nb {
                        let p = params[r * nb + j]
                        let s = meta.codeScale[r * nb + j]
                        let zpf = meta.codeZeroPoint[r * nb + j]
                        for c in l.blockRange(j) {
                            let w = v[r * l.k + c]
                            let code: Int32
                            switch scheme {
                            case .bin:
                                code = w >= 0 ? 1 : 0
                            case .binNorm:
                                code = (w - p.mean) >= 0 ? 1 : 0
                            case .int8, .int4:
                                code = s > 0 ? Int32(min(max((w / s).rounded(.toNearestOrEven), qmin), qmax)) : 0
                            case .int2, .binAsym:
                                code = s > 0 ? Int32(min(max((w / s + zpf).rounded(.toNearestOrEven), qmin), qmax)) : 0
                            case .f32:
                                fatalError("unreachable")
                            }
                            BitPacking.store(row, c, code, scheme.bits)
                        }
                    }
                }
            }
            meta.write(into: raw, layout: l)
        }
        return PackedTensor(layout: l, storage: buffer, offset: 0)
    }

    /// Float parameters of one block.
    struct BlockParams {
        var scale: Float = 0
        /// zp_f of praxis (asymmetric): codes are round(w / s + zp_f)
        var zeroPointF: Float = 0
        /// stored zero point s * zp_f (asymmetric)
        var zeroPoint: Float = 0
        /// block mean (bin_norm)
        var mean: Float = 0
    }

    static func blockParams(_ w: UnsafeBufferPointer<Float>, _ scheme: QuantScheme, _ clip: ClipPolicy) -> BlockParams {
        switch scheme {
        case .bin:
            var sum = 0.0
            for x in w { sum += Double(abs(x)) }
            return BlockParams(scale: Float(sum / Double(w.count)))
        case .binNorm:
            var sum = 0.0
            for x in w { sum += Double(x) }
            let mean = Float(sum / Double(w.count))
            var abssum = 0.0
            for x in w { abssum += Double(abs(x - mean)) }
            return BlockParams(scale: Float(abssum / Double(w.count)), mean: mean)
        case .int8, .int4, .int2, .binAsym:
            let coefficients: [Float]
            switch clip {
            case .none: coefficients = [1]
            case .fixed(let c): coefficients = [c]
            case .search: coefficients = ClipPolicy.searchGrid
            }
            var best = BlockParams()
            var bestError = Double.infinity
            for c in coefficients {
                let p = clipped(w, scheme, c)
                if coefficients.count == 1 { return p }
                let e = meanAbsoluteError(w, scheme, p)
                if e < bestError { best = p; bestError = e }
            }
            return best
        case .f32:
            return BlockParams()
        }
    }

    static func clipped(_ w: UnsafeBufferPointer<Float>, _ scheme: QuantScheme, _ c: Float) -> BlockParams {
        let qmax = Float(scheme.codeRange.upperBound)
        if scheme.hasZeroPoint {
            var lo = w[0], hi = w[0]
            for x in w { lo = min(lo, x); hi = max(hi, x) }
            lo *= c; hi *= c
            let s = (hi - lo) / qmax
            if s == 0 { return BlockParams(scale: 0, zeroPointF: 0, zeroPoint: -lo) }
            let zpf = 0 - lo / s
            return BlockParams(scale: s, zeroPointF: zpf, zeroPoint: s * zpf)
        } else {
            var amax: Float = 0
            for x in w { amax = max(amax, abs(x)) }
            return BlockParams(scale: c * amax / qmax)
        }
    }

    static func meanAbsoluteError(_ w: UnsafeBufferPointer<Float>, _ scheme: QuantScheme, _ p: BlockParams) -> Double {
        let (qmin, qmax) = (Float(scheme.codeRange.lowerBound), Float(scheme.codeRange.upperBound))
        var err = 0.0
        for x in w {
            let r: Float
            if p.scale == 0 {
                r = scheme.hasZeroPoint ? -p.zeroPoint : 0
            } else if scheme.hasZeroPoint {
                r = min(max((x / p.scale + p.zeroPointF).rounded(.toNearestOrEven), qmin), qmax) * p.scale - p.zeroPoint
            } else {
                r = min(max((x / p.scale).rounded(.toNearestOrEven), qmin), qmax) * p.scale
            }
            err += Double(abs(x - r))
        }
        return err / Double(w.count)
    }

    /// Scales and zero points as stored, and the decoded values that codes are computed from.
    struct MetaStorage {
        var scaleCodes: [UInt8] = []
        var scaleFactors: [Float] = []
        var zpCodes: [Int8] = []
        var zpFactors: [Float] = []
        var storedScales: [Float] = []
        var storedZeroPoints: [Float] = []
        /// scale used for codes
        var codeScale: [Float]
        /// zp_f used for codes
        var codeZeroPoint: [Float]

        init(params: [BlockParams], layout l: TensorLayout) {
            let n = params.count
            let nb = l.blocksPerRow
            let asym = l.scheme.hasZeroPoint
            if l.scaleFormat == .f32 {
                storedScales = params.map(\.scale)
                storedZeroPoints = asym ? params.map(\.zeroPoint) : []
                codeScale = storedScales
                codeZeroPoint = params.map(\.zeroPointF)
                return
            }
            let groups = l.scaleFormat == .int8PerRow ? l.rows : 1
            let groupLength = n / groups
            codeScale = [Float](repeating: 0, count: n)
            codeZeroPoint = [Float](repeating: 0, count: n)
            scaleCodes = [UInt8](repeating: 0, count: n)
            zpCodes = asym ? [Int8](repeating: 0, count: n) : []
            for g in 0..<groups {
                let range = (g * groupLength)..<((g + 1) * groupLength)
                var smax: Float = 0, zmax: Float = 0
                for i in range {
                    smax = max(smax, params[i].scale)
                    zmax = max(zmax, abs(params[i].zeroPoint))
                }
                let sf = smax / 255, zf = zmax / 127
                scaleFactors.append(sf)
                if asym { zpFactors.append(zf) }
                for i in range {
                    let sq = sf > 0 ? min(max((params[i].scale / sf).rounded(.toNearestOrEven), 0), 255) : 0
                    scaleCodes[i] = UInt8(sq)
                    let s = sq * sf
                    codeScale[i] = s
                    if asym {
                        let zq = zf > 0 ? min(max((params[i].zeroPoint / zf).rounded(.toNearestOrEven), -127), 127) : 0
                        zpCodes[i] = Int8(zq)
                        let zp = zq * zf
                        codeZeroPoint[i] = s > 0 ? zp / s : 0
                    }
                }
            }
            _ = nb
        }

        func write(into raw: UnsafeMutableRawBufferPointer, layout l: TensorLayout) {
            func put<T>(_ part: TensorPart, _ values: [T]) {
                let p = l.part(part)
                precondition(values.count * MemoryLayout<T>.stride == p.length, "part size")
                values.withUnsafeBytes { src in
                    UnsafeMutableRawBufferPointer(rebasing: raw[p.offset..<(p.offset + p.length)]).copyMemory(from: src)
                }
            }
            if l.scaleFormat == .f32 {
                put(.scales, storedScales)
                if l.scheme.hasZeroPoint { put(.zeroPoints, storedZeroPoints) }
            } else {
                put(.scales, scaleCodes)
                put(.scaleFactors, scaleFactors)
                if l.scheme.hasZeroPoint {
                    put(.zeroPoints, zpCodes)
                    put(.zeroPointFactors, zpFactors)
                }
            }
        }
    }
}
