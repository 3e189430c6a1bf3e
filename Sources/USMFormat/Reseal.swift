/// Checksums recomputed over a container's bytes as they are, for tools that change a file on purpose: fuzzers
/// (so that mutations reach the checks behind the checksums instead of stopping at them) and tests that build
/// hostile files. Reading never uses it.
public enum ContainerReseal {
    /// Rewrites, where the bytes are there to hash, the header's metadata and directory checksums, each directory
    /// entry's stored checksum (over its frame as the entry places it) and the header checksum, in that order.
    /// Fields are read as the file has them and nothing else is changed; out-of-range offsets are skipped. Never
    /// traps on any input.
    public static func reseal(_ bytes: inout [UInt8]) {
        guard bytes.count >= ContainerHeader.size else { return }
        func u64(_ at: Int) -> UInt64? {
            guard at >= 0, at + 8 <= bytes.count else { return nil }
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
            return v
        }
        func u32(_ at: Int) -> UInt32? {
            guard at >= 0, at + 4 <= bytes.count else { return nil }
            var v: UInt32 = 0
            for i in 0..<4 { v |= UInt32(bytes[at + i]) << (8 * UInt32(i)) }
            return v
        }
        func put(_ v: UInt64, at: Int) {
            guard at >= 0, at + 8 <= bytes.count else { return }
            for i in 0..<8 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        }
        func range(_ offset: UInt64, _ length: UInt64) -> Range<Int>? {
            let (end, o) = offset.addingReportingOverflow(length)
            guard !o, end <= UInt64(bytes.count) else { return nil }
            return Int(offset)..<Int(end)
        }
        func hash(_ r: Range<Int>) -> UInt64 { bytes.withUnsafeBytes { xxh64(UnsafeRawBufferPointer(rebasing: $0[r])) } }

        // directory entries' stored checksums (the directory checksum covers them, so they go first)
        if let dirOffset = u64(40), let dirLength = u64(48), let dir = range(dirOffset, dirLength),
           let count = u32(80) {
            var at = dir.lowerBound
            for _ in 0..<min(Int(count), 1 << 20) {
                guard let size = u32(at), size >= 64, at + Int(size) <= dir.upperBound,
                      let stored = u64(at + 16), let length = u64(at + 24) else { break }
                if let frame = range(stored, length) { put(hash(frame), at: at + 48) }
                at += Int(size)
            }
            put(hash(dir), at: 96)
        }
        if let metaOffset = u64(24), let metaLength = u64(32), let meta = range(metaOffset, metaLength) {
            put(hash(meta), at: 88)
        }
        put(hash(0..<120), at: 120)
    }
}
