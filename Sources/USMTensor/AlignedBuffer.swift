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

    /// For sizes the program itself derives (not read from a file): failing to allocate them is fatal. Sizes that
    /// come from input go through `allocating(byteCount:)`, which reports the failure instead.
    public convenience init(byteCount: Int) {
        guard let p = Self.zeroedBlock(byteCount) else { fatalError("AlignedBuffer: cannot allocate \(byteCount) bytes") }
        self.init(count: byteCount, block: p)
    }

    /// A buffer of `byteCount` zero bytes, or nil when the system cannot give that much memory (or the size is
    /// negative or overflows).
    public static func allocating(byteCount: Int) -> AlignedBuffer? {
        guard let p = zeroedBlock(byteCount) else { return nil }
        return AlignedBuffer(count: byteCount, block: p)
    }

    /// calloc, not allocate + fill: a large block comes straight from the kernel already zero, and calloc knows not
    /// to clear it again, so its pages are first touched (and faulted in) by whoever fills the buffer.
    private static func zeroedBlock(_ byteCount: Int) -> UnsafeMutableRawPointer? {
        guard byteCount >= 0 else { return nil }
        let (total, overflow) = byteCount.addingReportingOverflow(Self.alignment)
        guard !overflow else { return nil }
        return calloc(total, 1)
    }

    private init(count byteCount: Int, block p: UnsafeMutableRawPointer) {
        count = byteCount
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
