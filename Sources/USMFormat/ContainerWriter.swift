import Foundation
import USMTensor

/// Builds a container (ModelFormat.md). Tensors are compressed as they are added, so a writer holds the model in
/// its stored (compressed) form only.
public struct ContainerWriter: Sendable {
    public var metadata: ModelMetadata
    /// zstd level; nil stores every payload raw
    public let level: Int32?

    struct Pending: Sendable {
        var name: String
        var layout: TensorLayout
        var codec: Codec
        var frame: [UInt8]
        var payloadHash: UInt64
    }

    private var pending: [Pending] = []
    private var names: Set<String> = []

    public init(metadata: ModelMetadata, level: Int32? = 3) {
        self.metadata = metadata
        self.level = level
    }

    public var tensorCount: Int { pending.count }

    public mutating func add(_ name: String, _ tensor: PackedTensor) throws(ContainerError) {
        let nameLength = name.utf8.count
        guard (1...DirectoryEntry.maxNameLength).contains(nameLength) else {
            throw ContainerError(.invalidTensor("name must be 1...1024 UTF-8 bytes"), tensor: name)
        }
        guard !names.contains(name) else { throw ContainerError(.invalidTensor("duplicate name"), tensor: name) }
        let level = self.level
        let item = try tensor.withPayload { (payload: UnsafeRawBufferPointer) throws(ContainerError) -> Pending in
            let hash = xxh64(payload)
            if let level {
                let frame = try Zstd.compress(payload, level: level)
                if frame.count < payload.count {
                    return Pending(name: name, layout: tensor.layout, codec: .zstd, frame: frame, payloadHash: hash)
                }
            }
            return Pending(name: name, layout: tensor.layout, codec: .raw, frame: Array(payload), payloadHash: hash)
        }
        names.insert(name)
        pending.append(item)
    }

    /// Header, metadata and directory; the frames follow them in `pending` order.
    func preamble() throws(ContainerError) -> [UInt8] {
        let meta = try metadata.encoded()
        guard UInt64(meta.count) <= ContainerHeader.maxMetadataLength else {
            throw ContainerError(.limitExceeded("metadata of \(meta.count) bytes (max 64 MiB)"))
        }
        var dir = ByteWriter()
        var dirSize = 0
        for p in pending { dirSize += DirectoryEntry.entrySize(rank: p.layout.shape.count, nameLength: p.name.utf8.count) }
        var storedOffset = UInt64(ContainerHeader.size + meta.count + dirSize)
        var imageEnd = 0
        for p in pending {
            let imageOffset = roundUp(imageEnd, AlignedBuffer.alignment)
            let entry = DirectoryEntry(
                name: p.name, layout: p.layout, codec: p.codec, storedOffset: storedOffset,
                storedLength: UInt64(p.frame.count), imageOffset: UInt64(imageOffset),
                storedHash: xxh64(p.frame), payloadHash: p.payloadHash)
            entry.encode(into: &dir)
            storedOffset += UInt64(p.frame.count)
            imageEnd = imageOffset + p.layout.payloadLength
        }
        precondition(dir.bytes.count == dirSize)
        guard UInt64(dirSize) <= ContainerHeader.maxDirectoryLength else {
            throw ContainerError(.limitExceeded("directory of \(dirSize) bytes (max 64 MiB)"))
        }
        var h = ContainerHeader()
        h.metadataLength = UInt64(meta.count)
        h.directoryOffset = h.metadataOffset + h.metadataLength
        h.directoryLength = UInt64(dirSize)
        h.dataOffset = h.directoryOffset + h.directoryLength
        h.dataLength = storedOffset - h.dataOffset
        h.fileSize = storedOffset
        h.imageSize = UInt64(roundUp(imageEnd, AlignedBuffer.alignment))
        h.tensorCount = UInt32(pending.count)
        h.metadataHash = xxh64(meta)
        h.directoryHash = xxh64(dir.bytes)
        return h.encoded() + meta + dir.bytes
    }

    /// The whole file in memory.
    public func serialize() throws(ContainerError) -> [UInt8] {
        var out = try preamble()
        for p in pending { out += p.frame }
        return out
    }

    /// Writes the file (to a temporary name first, then renamed, so a failed write leaves no partial model).
    /// Returns the file size.
    @discardableResult
    public func write(to path: String) throws(ContainerError) -> UInt64 {
        let tmp = path + ".partial"
        let pre = try preamble()
        guard FileManager.default.createFile(atPath: tmp, contents: nil),
              let fh = FileHandle(forWritingAtPath: tmp) else {
            throw ContainerError(.cannotWrite("cannot create \(tmp)"), file: path)
        }
        var size = UInt64(pre.count)
        do {
            try fh.write(contentsOf: pre)
            for p in pending {
                try fh.write(contentsOf: p.frame)
                size += UInt64(p.frame.count)
            }
            try fh.close()
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: tmp, toPath: path)
        } catch {
            try? fh.close()
            try? FileManager.default.removeItem(atPath: tmp)
            throw ContainerError(.cannotWrite("\(error.localizedDescription)"), file: path)
        }
        return size
    }
}
