/// A zero-initialised, 64-byte aligned block of memory that is written while it is being built (by the quantizer
/// or the container reader, through package-level API) and is immutable once shared. That discipline is what
/// makes the unchecked `Sendable` conformance sound.
public final class AlignedBuffer: @unchecked Sendable {
    public static let alignment = 64
    public let count: Int
    private let base: UnsafeMutableRawPointer

    public init(byteCount: Int) {
        precondition(byteCount >= 0, "negative buffer size")
        count = byteCount
        base = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: Self.alignment)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
    }

    deinit { base.deallocate() }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// For the code that builds the buffer, before it is shared.
    package func withUnsafeMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try body(UnsafeMutableRawBufferPointer(start: base, count: count))
    }
}
