import Testing
@testable import USMTensor

/// `AlignedBuffer` from empty to sizes that glibc maps on their own: zero, 64-byte aligned, every byte writable and
/// kept, and zero again when made after others of the same size were written and dropped.
@Suite struct AlignedBufferTests {
    @Test(arguments: [0, 1, 63, 4096, 100_000, (4 << 20) - 1, (4 << 20) + 12345, 3 * (2 << 20) + 7])
    func zeroAlignedAndWritable(bytes: Int) {
        for round in 0..<3 {
            let b = AlignedBuffer(byteCount: bytes)
            #expect(b.count == bytes)
            let zero: Bool = b.withUnsafeBytes { r in
                if bytes > 0 { #expect(Int(bitPattern: r.baseAddress!) % AlignedBuffer.alignment == 0) }
                return r.allSatisfy { $0 == 0 }
            }
            #expect(zero, "\(bytes) bytes, round \(round)")
            b.withUnsafeMutableBytes { w in
                for i in stride(from: 0, to: bytes, by: 4093) { w[i] = UInt8(truncatingIfNeeded: i &* 31 &+ round) }
                if bytes > 0 { w[bytes - 1] = 0xA5 }
            }
            let kept: Bool = b.withUnsafeBytes { r in
                var ok = true
                for i in stride(from: 0, to: bytes, by: 4093) where i != bytes - 1 {
                    ok = ok && r[i] == UInt8(truncatingIfNeeded: i &* 31 &+ round)
                }
                return ok && (bytes == 0 || r[bytes - 1] == 0xA5)
            }
            #expect(kept, "\(bytes) bytes, round \(round)")
        }
    }
}
