#if _endian(big)
#error("usm-infer reads and writes little-endian data in place and supports little-endian hosts only")
#endif

/// How a tensor's elements are stored (ModelFormat.md section 5). The raw values are the on-disk codes.
public enum QuantScheme: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case int8 = 1
    case int4 = 2
    case int2 = 3
    /// absmean binarization (praxis `bin`)
    case bin = 4
    /// centred absmean binarization (praxis `bin_norm`); stored like `bin`
    case binNorm = 5
    /// absmax asymmetric 1-bit (the paper's Exp3)
    case binAsym = 6

    public var bits: Int {
        switch self {
        case .f32: 32
        case .int8: 8
        case .int4: 4
        case .int2: 2
        case .bin, .binNorm, .binAsym: 1
        }
    }

    /// Asymmetric schemes store a zero point per block: w ≈ q·s − zp.
    public var hasZeroPoint: Bool { self == .int2 || self == .binAsym }

    /// Codes are ±1 (bit 1 = +1, bit 0 = −1).
    public var isSignBinary: Bool { self == .bin || self == .binNorm }

    public var isQuantized: Bool { self != .f32 }

    /// Range of the integer code as stored (for sign-binary schemes: the bit).
    public var codeRange: ClosedRange<Int32> {
        switch self {
        case .f32: 0...0
        case .int8: -128...127
        case .int4: -8...7
        case .int2: 0...3
        case .bin, .binNorm, .binAsym: 0...1
        }
    }

    /// The name used in metadata, recipes and reports.
    public var name: String {
        switch self {
        case .f32: "f32"
        case .int8: "int8"
        case .int4: "int4"
        case .int2: "int2"
        case .bin: "bin"
        case .binNorm: "bin_norm"
        case .binAsym: "bin_asym"
        }
    }

    public init?(name: String) {
        guard let s = QuantScheme.allCases.first(where: { $0.name == name }) else { return nil }
        self = s
    }

    public var description: String { name }
}

/// How scales (and zero points) are stored (ModelFormat.md sections 3 and 5).
public enum ScaleFormat: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// one f32 per block
    case f32 = 0
    /// u8 scales (i8 zero points) with one f32 factor per tensor
    case int8PerTensor = 1
    /// u8 scales (i8 zero points) with one f32 factor per row
    case int8PerRow = 2

    public var name: String {
        switch self {
        case .f32: "f32"
        case .int8PerTensor: "int8"
        case .int8PerRow: "int8-row"
        }
    }

    public init?(name: String) {
        guard let s = ScaleFormat.allCases.first(where: { $0.name == name }) else { return nil }
        self = s
    }

    public var description: String { name }
    public var isInt8: Bool { self != .f32 }
}
