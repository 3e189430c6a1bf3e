/// Little-endian serialisation helpers for the header and directory.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }
    mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }
    mutating func pad(to multiple: Int) { zeros((multiple - bytes.count % multiple) % multiple) }
}

/// Bounds-checked little-endian reads from a byte buffer; reading past the end throws `truncated`.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    /// file offset of `bytes[0]`
    let base: UInt64
    var position = 0
    let tensor: String?

    init(_ bytes: UnsafeRawBufferPointer, base: UInt64, tensor: String? = nil) {
        self.bytes = bytes
        self.base = base
        self.tensor = tensor
    }

    var fileOffset: UInt64 { base + UInt64(position) }

    mutating func take(_ n: Int) throws(ContainerError) -> UnsafeRawBufferPointer {
        guard n >= 0, bytes.count - position >= n else {
            throw ContainerError(.truncated(needed: base + UInt64(position) + UInt64(max(n, 0)),
                                            available: base + UInt64(bytes.count)),
                                 offset: fileOffset, tensor: tensor)
        }
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + n)])
    }

    mutating func u8() throws(ContainerError) -> UInt8 { try take(1)[0] }
    mutating func u16() throws(ContainerError) -> UInt16 { UInt16(littleEndian: try take(2).loadUnaligned(as: UInt16.self)) }
    mutating func u32() throws(ContainerError) -> UInt32 { UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self)) }
    mutating func u64() throws(ContainerError) -> UInt64 { UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self)) }
}
