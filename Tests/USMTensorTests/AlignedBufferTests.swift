import Testing
@testable import USMTensor

/// `AlignedBuffer` below and above the size where it takes a huge-page mapping of its own: zero, 64-byte aligned,
/// every byte writable and kept, and released without disturbing others (many made and dropped in turn).
@Suite struct AlignedBufferTests {
    @Test(arguments: [0, 1, 63, 4096, AlignedBuffer.hugePageThreshold - 1, AlignedBuffer.hugePageThreshold,
                      AlignedBuffer.hugePageThreshold + 12345, 3 * (2 << 20) + 7])
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
