import USMTensor

/// The fixed 128-byte header (ModelFormat.md section 2).
public struct ContainerHeader: Sendable, Equatable {
    public static let size = 128
    public static let magic: [UInt8] = [0x89, 0x55, 0x53, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A]
    public static let versionMajor: UInt16 = 1
    public static let versionMinor: UInt16 = 0
    public static let maxMetadataLength: UInt64 = 64 << 20
    public static let maxDirectoryLength: UInt64 = 64 << 20
    public static let maxTensorCount: UInt32 = 1_000_000

    public var versionMajor: UInt16 = Self.versionMajor
    public var versionMinor: UInt16 = Self.versionMinor
    public var fileSize: UInt64 = 0
    public var metadataOffset: UInt64 = UInt64(Self.size)
    public var metadataLength: UInt64 = 0
    public var directoryOffset: UInt64 = 0
    public var directoryLength: UInt64 = 0
    public var dataOffset: UInt64 = 0
    public var dataLength: UInt64 = 0
    public var imageSize: UInt64 = 0
    public var tensorCount: UInt32 = 0
    public var flags: UInt32 = 0
    public var metadataHash: UInt64 = 0
    public var directoryHash: UInt64 = 0

    public init() {}

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.raw(Self.magic)
        w.u16(versionMajor); w.u16(versionMinor); w.u32(UInt32(Self.size))
        w.u64(fileSize)
        w.u64(metadataOffset); w.u64(metadataLength)
        w.u64(directoryOffset); w.u64(directoryLength)
        w.u64(dataOffset); w.u64(dataLength)
        w.u64(imageSize)
        w.u32(tensorCount); w.u32(flags)
        w.u64(metadataHash); w.u64(directoryHash)
        w.zeros(16)
        let h = xxh64(w.bytes)
        w.u64(h)
        assert(w.bytes.count == Self.size)
        return w.bytes
    }
}

/// Stored form of a frame.
public enum Codec: UInt8, Sendable {
    case raw = 0
    case zstd = 1
}

/// One tensor directory entry (ModelFormat.md section 3).
public struct DirectoryEntry: Sendable, Equatable {
    public static let fixedSize = 144
    public static let maxNameLength = 1024

    public var name: String
    public var layout: TensorLayout
    public var codec: Codec
    public var storedOffset: UInt64
    public var storedLength: UInt64
    public var imageOffset: UInt64
    public var storedHash: UInt64
    public var payloadHash: UInt64

    public var payloadLength: UInt64 { UInt64(layout.payloadLength) }

    static func entrySize(rank: Int, nameLength: Int) -> Int { roundUp(fixedSize + 8 * rank + nameLength, 8) }

    func encode(into w: inout ByteWriter) {
        let nameBytes = Array(name.utf8)
        let start = w.bytes.count
        let l = layout
        w.u32(UInt32(Self.entrySize(rank: l.shape.count, nameLength: nameBytes.count)))
        w.u16(UInt16(nameBytes.count))
        w.u8(l.scheme.rawValue)
        w.u8(UInt8(l.scheme.bits))
        w.u8(UInt8(l.shape.count))
        w.u8(l.scaleFormat.rawValue)
        w.u8(l.scheme.hasZeroPoint ? 1 : 0)
        w.u8(codec.rawValue)
        w.u32(UInt32(l.blockSize))
        w.u64(storedOffset); w.u64(storedLength)
        w.u64(imageOffset); w.u64(payloadLength)
        w.u64(storedHash); w.u64(payloadHash)
        for p in TensorPart.allCases {
            let part = l.part(p)
            w.u64(UInt64(part.offset)); w.u64(UInt64(part.length))
        }
        for d in l.shape { w.u64(UInt64(d)) }
        w.raw(nameBytes)
        w.zeros(Self.entrySize(rank: l.shape.count, nameLength: nameBytes.count) - (w.bytes.count - start))
    }

    /// Parses one entry and checks every rule that needs no context (ModelFormat.md sections 3 and 5).
    static func decode(_ r: inout ByteReader) throws(ContainerError) -> DirectoryEntry {
        let start = r.position
        let at = r.fileOffset
        func bad(_ m: String, _ name: String? = nil) -> ContainerError {
            ContainerError(.inconsistentLayout(m), offset: at, tensor: name)
        }
        let entrySize = Int(try r.u32())
        let nameLength = Int(try r.u16())
        let schemeCode = try r.u8()
        let bits = try r.u8()
        let rank = Int(try r.u8())
        let scaleCode = try r.u8()
        let hasZP = try r.u8()
        let codecCode = try r.u8()
        let blockSize = Int(try r.u32())
        let storedOffset = try r.u64(), storedLength = try r.u64()
        let imageOffset = try r.u64(), payloadLength = try r.u64()
        let storedHash = try r.u64(), payloadHash = try r.u64()
        var parts: [(UInt64, UInt64)] = []
        for _ in TensorPart.allCases { parts.append((try r.u64(), try r.u64())) }
        guard (1...8).contains(rank) else { throw bad("rank \(rank) is not in 1...8") }
        guard (1...maxNameLength).contains(nameLength) else { throw bad("name length \(nameLength) is not in 1...1024") }
        guard entrySize == Self.entrySize(rank: rank, nameLength: nameLength) else {
            throw bad("entry size \(entrySize), expected \(Self.entrySize(rank: rank, nameLength: nameLength))")
        }
        var shape: [Int] = []
        for _ in 0..<rank {
            let d = try r.u64()
            guard d >= 1, d < UInt64(TensorLayout.maxElements) else { throw bad("dimension \(d) out of range") }
            shape.append(Int(d))
        }
        guard let name = String(validating: try r.take(nameLength), as: UTF8.self) else {
            throw bad("tensor name is not valid UTF-8")
        }
        let padding = try r.take(entrySize - (r.position - start))
        guard padding.allSatisfy({ $0 == 0 }) else { throw bad("non-zero padding after the name", name) }

        guard let scheme = QuantScheme(rawValue: schemeCode) else {
            throw ContainerError(.unknownScheme(schemeCode), offset: at + 6, tensor: name)
        }
        guard let scaleFormat = ScaleFormat(rawValue: scaleCode) else { throw bad("unknown scale format \(scaleCode)", name) }
        guard let codec = Codec(rawValue: codecCode) else {
            throw ContainerError(.unknownCodec(codecCode), offset: at + 11, tensor: name)
        }
        guard Int(bits) == scheme.bits else { throw bad("bits \(bits) do not match scheme \(scheme)", name) }
        guard hasZP == (scheme.hasZeroPoint ? 1 : 0) else { throw bad("zero-point flag \(hasZP) does not match scheme \(scheme)", name) }
        let layout: TensorLayout
        do {
            layout = try TensorLayout(shape: shape, scheme: scheme, blockSize: blockSize, scaleFormat: scaleFormat)
        } catch {
            throw bad(error.description, name)
        }
        guard payloadLength == UInt64(layout.payloadLength) else {
            throw bad("payload length \(payloadLength), the shape and scheme give \(layout.payloadLength)", name)
        }
        for p in TensorPart.allCases {
            let want = layout.part(p)
            guard parts[p.rawValue] == (UInt64(want.offset), UInt64(want.length)) else {
                throw bad("part \(p) at \(parts[p.rawValue]), expected \(want)", name)
            }
        }
        guard storedLength >= 1 else { throw bad("empty frame", name) }
        if codec == .raw, storedLength != payloadLength {
            throw bad("raw frame of \(storedLength) bytes for a payload of \(payloadLength)", name)
        }
        return DirectoryEntry(name: name, layout: layout, codec: codec, storedOffset: storedOffset,
                              storedLength: storedLength, imageOffset: imageOffset,
                              storedHash: storedHash, payloadHash: payloadHash)
    }
}
