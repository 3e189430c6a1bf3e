#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A zero-initialised, 64-byte aligned block of memory that is written while it is being built (by the quantizer
/// or the container reader, through package-level API) and is immutable once shared. That discipline is what
/// makes the unchecked `Sendable` conformance sound.
public final class AlignedBuffer: @unchecked Sendable {
    public static let alignment = 64
    public let count: Int
    private let base: UnsafeMutableRawPointer
    /// What `calloc` returned; `base` is the first 64-byte boundary in it.
    private let block: UnsafeMutableRawPointer

    public init(byteCount: Int) {
        precondition(byteCount >= 0, "negative buffer size")
        count = byteCount
        // calloc, not allocate + fill: a large block comes straight from the kernel already zero, and calloc knows
        // not to clear it again, so its pages are first touched (and faulted in) by whoever fills the buffer.
        let (total, overflow) = byteCount.addingReportingOverflow(Self.alignment)
        guard !overflow, let p = calloc(total, 1) else { fatalError("AlignedBuffer: cannot allocate \(byteCount) bytes") }
        block = p
        let address = UInt(bitPattern: p)
        let misalignment = Int(address % UInt(Self.alignment))
        base = p + (misalignment == 0 ? 0 : Self.alignment - misalignment)
    }

    deinit { free(block) }

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
