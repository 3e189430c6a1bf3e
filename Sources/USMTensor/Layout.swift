/// Errors in a tensor's shape or storage description.
public enum LayoutError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidShape([Int])
    case invalidBlockSize(Int)
    case scaleFormatNotAllowed(QuantScheme, ScaleFormat)
    case tooLarge(elements: Int)
    case valueCountMismatch(expected: Int, actual: Int)
    case nonFiniteValue(index: Int)

    public var description: String {
        switch self {
        case .invalidShape(let s): "invalid shape \(s): rank must be 1...8 and every dimension >= 1"
        case .invalidBlockSize(let b): "invalid block size \(b): 0 (per channel) or a multiple of 8 in 8...65536"
        case .scaleFormatNotAllowed(let s, let f): "scheme \(s) cannot have scale format \(f)"
        case .tooLarge(let e): "tensor too large: \(e) elements (limit 2^40)"
        case .valueCountMismatch(let e, let a): "expected \(e) values for the shape, got \(a)"
        case .nonFiniteValue(let i): "value \(i) is not finite (NaN or infinity cannot be quantized)"
        }
    }
}

/// The parts of a payload, in payload order (ModelFormat.md section 5).
public enum TensorPart: Int, Sendable, CaseIterable {
    case codes = 0  // `values` for f32
    case scales = 1
    case scaleFactors = 2
    case zeroPoints = 3
    case zeroPointFactors = 4
}

@inline(__always) public func roundUp(_ x: Int, _ a: Int) -> Int { (x + a - 1) / a * a }

/// Everything about a tensor's storage that follows from its shape and scheme: the single source of the byte
/// layout of ModelFormat.md section 5, used by the quantizer, the container reader and writer, and the kernels.
public struct TensorLayout: Sendable, Hashable {
    public static let maxElements = 1 << 40
    public static let partAlignment = 64
    public static let rowPadding = 64

    public let shape: [Int]
    public let scheme: QuantScheme
    /// 0 = per channel
    public let blockSize: Int
    public let scaleFormat: ScaleFormat

    /// Number of rows of the matrix view (product of all dimensions but the last).
    public let rows: Int
    /// Contraction length (last dimension).
    public let k: Int
    /// Padded row length of the codes.
    public let paddedK: Int
    /// Effective block length (`k` when per channel).
    public let blockLength: Int
    /// Blocks per row.
    public let blocksPerRow: Int
    /// (offset, length) of each part within the payload, indexed by `TensorPart.rawValue`.
    public let parts: [(offset: Int, length: Int)]
    public let payloadLength: Int

    public init(shape: [Int], scheme: QuantScheme, blockSize: Int = 0, scaleFormat: ScaleFormat = .f32) throws(LayoutError) {
        guard (1...8).contains(shape.count), shape.allSatisfy({ $0 >= 1 }) else { throw .invalidShape(shape) }
        var elements = 1
        for d in shape {
            let (m, o) = elements.multipliedReportingOverflow(by: d)
            guard !o, m < Self.maxElements else { throw .tooLarge(elements: o ? Int.max : m) }
            elements = m
        }
        if scheme == .f32 {
            guard blockSize == 0 else { throw .invalidBlockSize(blockSize) }
            guard scaleFormat == .f32 else { throw .scaleFormatNotAllowed(scheme, scaleFormat) }
        } else {
            guard blockSize == 0 || (blockSize % 8 == 0 && (8...65536).contains(blockSize)) else {
                throw .invalidBlockSize(blockSize)
            }
        }
        self.shape = shape
        self.scheme = scheme
        self.blockSize = blockSize
        self.scaleFormat = scaleFormat
        k = shape[shape.count - 1]
        rows = elements / k
        paddedK = roundUp(k, Self.rowPadding)
        blockLength = blockSize == 0 ? k : blockSize
        blocksPerRow = (k + blockLength - 1) / blockLength

        var parts = Array(repeating: (offset: 0, length: 0), count: TensorPart.allCases.count)
        var end = 0
        func place(_ p: TensorPart, _ length: Int) {
            let off = roundUp(end, Self.partAlignment)
            parts[p.rawValue] = (off, length)
            end = off + length
        }
        if scheme == .f32 {
            place(.codes, elements * 4)
        } else {
            let nScales = rows * blocksPerRow
            let factors = scaleFormat == .int8PerRow ? rows : 1
            place(.codes, rows * (paddedK * scheme.bits / 8))
            place(.scales, nScales * (scaleFormat.isInt8 ? 1 : 4))
            if scaleFormat.isInt8 { place(.scaleFactors, factors * 4) }
            if scheme.hasZeroPoint {
                place(.zeroPoints, nScales * (scaleFormat.isInt8 ? 1 : 4))
                if scaleFormat.isInt8 { place(.zeroPointFactors, factors * 4) }
            }
        }
        self.parts = parts
        payloadLength = end
    }

    public var elementCount: Int { rows * k }
    /// Bytes of one row of codes.
    public var rowBytes: Int { paddedK * scheme.bits / 8 }
    public func part(_ p: TensorPart) -> (offset: Int, length: Int) { parts[p.rawValue] }
    /// Number of f32 factors per factor part (int8 scale formats).
    public var factorCount: Int {
        switch scaleFormat {
        case .f32: 0
        case .int8PerTensor: 1
        case .int8PerRow: rows
        }
    }
    /// Columns covered by block `j` of a row.
    public func blockRange(_ j: Int) -> Range<Int> { (j * blockLength)..<min((j + 1) * blockLength, k) }

    public static func == (a: TensorLayout, b: TensorLayout) -> Bool {
        a.shape == b.shape && a.scheme == b.scheme && a.blockSize == b.blockSize && a.scaleFormat == b.scaleFormat
    }
    public func hash(into h: inout Hasher) {
        h.combine(shape); h.combine(scheme); h.combine(blockSize); h.combine(scaleFormat)
    }
}
