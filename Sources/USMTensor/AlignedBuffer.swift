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
    /// What `calloc` returned (`base` is the first 64-byte boundary in it), or nil when `base` starts a mapping of
    /// `mapped` bytes of its own.
    private let block: UnsafeMutableRawPointer?
    private let mapped: Int

    /// Blocks of at least this many bytes get a mapping of their own, aligned to 2 MiB and marked for transparent
    /// huge pages (Linux): filling one then takes a page fault per 2 MiB instead of per 4 KiB (the decoder's f32
    /// matrices at USM-1B shape are 13-42 MB each). Where huge pages are off the mapping works as any other.
    public static let hugePageThreshold = 4 << 20

    public init(byteCount: Int) {
        precondition(byteCount >= 0, "negative buffer size")
        count = byteCount
        #if os(Linux)
        if byteCount >= Self.hugePageThreshold, let (p, n) = Self.mapHuge(byteCount) {
            (base, block, mapped) = (p, nil, n)
            return
        }
        #endif
        // calloc, not allocate + fill: a large block comes straight from the kernel already zero, and calloc knows
        // not to clear it again, so its pages are first touched (and faulted in) by whoever fills the buffer.
        let (total, overflow) = byteCount.addingReportingOverflow(Self.alignment)
        guard !overflow, let p = calloc(total, 1) else { fatalError("AlignedBuffer: cannot allocate \(byteCount) bytes") }
        (block, mapped) = (p, 0)
        let address = UInt(bitPattern: p)
        let misalignment = Int(address % UInt(Self.alignment))
        base = p + (misalignment == 0 ? 0 : Self.alignment - misalignment)
    }

    #if os(Linux)
    /// An anonymous (zero) mapping of `bytes` rounded up to whole pages, starting on a 2 MiB boundary, with
    /// MADV_HUGEPAGE; nil if the kernel refuses the mapping (the caller falls back to calloc).
    private static func mapHuge(_ bytes: Int) -> (UnsafeMutableRawPointer, Int)? {
        let huge = 2 << 20, page = 4096
        let length = (bytes + page - 1) / page * page
        let (reserve, overflow) = length.addingReportingOverflow(huge)
        guard !overflow else { return nil }
        guard let raw = mmap(nil, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else { return nil }
        let address = UInt(bitPattern: raw)
        let head = Int((UInt(huge) - address % UInt(huge)) % UInt(huge))
        if head > 0 { munmap(raw, head) }
        let tail = reserve - head - length
        if tail > 0 { munmap(raw + head + length, tail) }
        _ = madvise(raw + head, length, MADV_HUGEPAGE)  // advice only: without huge pages it is a plain mapping
        return (raw + head, length)
    }
    #endif

    deinit {
        if let block { free(block) } else { munmap(base, mapped) }
    }

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
