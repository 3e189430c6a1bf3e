/// The size of one tensor in the accounting of the paper's Table 2 (ModelFormat.md section 7). All in bits.
public struct SizeAccount: Sendable, Hashable {
    public var elements: Int = 0
    /// packed weights, `bits * elements` (no padding)
    public var weightBits: Int = 0
    /// scales, zero points and factors with f32 metadata (32-bit scales and zero points)
    public var metaBitsF32: Int = 0
    /// the same with int8 metadata (8-bit codes and one f32 factor per tensor and factor part)
    public var metaBitsInt8: Int = 0
    /// the same as this tensor actually stores it
    public var metaBitsStored: Int = 0
    /// tensors kept in float: `32 * elements`
    public var floatBits: Int = 0
    /// payload bytes (codes with row padding, parts with alignment)
    public var payloadBytes: Int = 0

    public init() {}

    public init(layout l: TensorLayout) {
        elements = l.elementCount
        payloadBytes = l.payloadLength
        guard l.scheme.isQuantized else {
            floatBits = 32 * elements
            return
        }
        weightBits = l.scheme.bits * elements
        let parts = l.scheme.hasZeroPoint ? 2 : 1
        let blocks = l.rows * l.blocksPerRow
        metaBitsF32 = parts * blocks * 32
        metaBitsInt8 = parts * (blocks * 8 + 32)
        metaBitsStored = l.scaleFormat == .f32 ? metaBitsF32 : parts * (blocks * 8 + 32 * l.factorCount)
    }

    public var f32EquivalentBits: Int { 32 * elements }
    public var totalBitsStored: Int { weightBits + metaBitsStored + floatBits }
    public var totalBitsF32Meta: Int { weightBits + metaBitsF32 + floatBits }
    public var totalBitsInt8Meta: Int { weightBits + metaBitsInt8 + floatBits }

    public static func + (a: SizeAccount, b: SizeAccount) -> SizeAccount {
        var r = SizeAccount()
        r.elements = a.elements + b.elements
        r.weightBits = a.weightBits + b.weightBits
        r.metaBitsF32 = a.metaBitsF32 + b.metaBitsF32
        r.metaBitsInt8 = a.metaBitsInt8 + b.metaBitsInt8
        r.metaBitsStored = a.metaBitsStored + b.metaBitsStored
        r.floatBits = a.floatBits + b.floatBits
        r.payloadBytes = a.payloadBytes + b.payloadBytes
        return r
    }

    public static func += (a: inout SizeAccount, b: SizeAccount) { a = a + b }
}
