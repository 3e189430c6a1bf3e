import Foundation
import USMIO
import USMTensor

/// Something that hands out a model's tensors by name: a loaded `Container`, or a `ContainerFile` that decodes
/// each tensor when it is asked for.
public protocol TensorSource {
    var metadata: ModelMetadata { get }
    var header: ContainerHeader { get }
    var entries: [DirectoryEntry] { get }
    /// The tensor, decoded and verified, or nil when the file has none of that name.
    func tensor(named name: String) throws(ContainerError) -> PackedTensor?
    /// The same tensor, decoded into `scratch`'s buffers where the source decodes at all: it is valid only until
    /// the next call with the same scratch, so use it (repack it, copy it out) before asking for the next one.
    func tensor(named name: String, scratch: DecodeScratch) throws(ContainerError) -> PackedTensor?
}

extension TensorSource {
    public func tensor(named name: String, scratch: DecodeScratch) throws(ContainerError) -> PackedTensor? {
        try tensor(named: name)
    }
}

extension Container: TensorSource {
    public func tensor(named name: String) throws(ContainerError) -> PackedTensor? { tensor(name) }
}

/// The buffers a `ContainerFile` reads frames and decodes payloads into for a loader that turns each tensor into
/// another layout before asking for the next: reused, they are paged in once instead of once per tensor. They
/// grow to the largest tensor asked for. One scratch serves one thread at a time.
public final class DecodeScratch {
    fileprivate var frame: AlignedBuffer?
    fileprivate var payload: AlignedBuffer?

    public init() {}

    fileprivate static func take(_ slot: inout AlignedBuffer?, _ bytes: Int) throws(ContainerError) -> AlignedBuffer {
        if let b = slot, b.count >= bytes { return b }
        slot = nil  // the old one goes before the new one comes
        let b = try allocate(bytes)
        slot = b
        return b
    }

    /// `scratch`'s buffer at `slot` grown to `bytes`, or a new buffer when there is no scratch.
    fileprivate static func buffer(_ scratch: DecodeScratch?, _ slot: ReferenceWritableKeyPath<DecodeScratch, AlignedBuffer?>,
                                   _ bytes: Int) throws(ContainerError) -> AlignedBuffer {
        guard let scratch else { return try allocate(bytes) }
        return try take(&scratch[keyPath: slot], bytes)
    }

    fileprivate static func allocate(_ bytes: Int) throws(ContainerError) -> AlignedBuffer {
        guard let b = AlignedBuffer.allocating(byteCount: bytes) else { throw ContainerError(.allocationFailed(UInt64(bytes))) }
        return b
    }
}

/// A model file opened for lazy reading: the header, metadata and directory are read and verified at once; each
/// tensor's frame is read (`pread`), checked and decoded into its own buffer only when asked for. A loader that
/// turns tensors into kernel layouts one at a time never holds the whole decompressed image, nor the file mapped.
public final class ContainerFile: TensorSource {
    public let path: String
    public let header: ContainerHeader
    public let metadata: ModelMetadata
    public let entries: [DirectoryEntry]
    private let index: [String: Int]
    private let fd: Int32

    public init(path: String, options: ReadOptions = ReadOptions()) throws(ContainerError) {
        self.path = path
        let fd: Int32, size: UInt64
        do { (fd, size) = try RegularFile.open(path) } catch { throw ContainerError(error) }
        do throws(ContainerError) {
            let head = try Self.pread(fd, offset: 0, count: Int(min(size, UInt64(ContainerHeader.size))))
            let h = try withBytes(head) { (b) throws(ContainerError) in try Container.parseHeader(b) }
            guard h.dataOffset <= size else {
                throw ContainerError(.truncated(needed: h.fileSize, available: size), offset: size)
            }
            let prefix = try Self.pread(fd, offset: 0, count: Int(h.dataOffset))
            let (header, metadata, entries) = try withBytes(prefix) { (b) throws(ContainerError) in
                try Container.parseDirectory(prefix: b, fileSize: size, options: options)
            }
            self.header = header
            self.metadata = metadata
            self.entries = entries
        } catch var e {
            close(fd)
            e.file = path
            throw e
        }
        self.fd = fd
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.name] = i }
        self.index = index
    }

    deinit { close(fd) }

    public func tensor(named name: String) throws(ContainerError) -> PackedTensor? {
        try tensor(named: name, into: nil)
    }

    public func tensor(named name: String, scratch: DecodeScratch) throws(ContainerError) -> PackedTensor? {
        try tensor(named: name, into: scratch)
    }

    private func tensor(named name: String, into scratch: DecodeScratch?) throws(ContainerError) -> PackedTensor? {
        guard let i = index[name] else { return nil }
        let e = entries[i]
        do throws(ContainerError) {
            if e.codec == .raw && e.storedLength == e.payloadLength {
                let buffer = try DecodeScratch.buffer(scratch, \.payload, Int(e.payloadLength))
                // Stored as is: read straight into the tensor's buffer (no frame copy) and hash it once for both
                // the stored and the payload checksum, which must then be equal.
                let hash = try buffer.withUnsafeMutableBytes { (dst: UnsafeMutableRawBufferPointer) throws(ContainerError) in
                    let slot = UnsafeMutableRawBufferPointer(rebasing: dst[0..<Int(e.payloadLength)])
                    try Self.pread(fd, offset: e.storedOffset, into: slot)
                    return xxh64(UnsafeRawBufferPointer(slot))
                }
                guard hash == e.storedHash, hash == e.payloadHash else {
                    throw ContainerError(.checksumMismatch(.tensor), offset: e.storedOffset, tensor: e.name)
                }
                return PackedTensor(layout: e.layout, storage: buffer, offset: 0)
            }
            // The frame (bounded by the file's size) is read first, and its declared content size checked, before
            // memory is taken for the content.
            let stored = Int(e.storedLength)
            let frame = try DecodeScratch.buffer(scratch, \.frame, stored)
            return try frame.withUnsafeMutableBytes { (f: UnsafeMutableRawBufferPointer) throws(ContainerError) -> PackedTensor in
                let f = UnsafeMutableRawBufferPointer(rebasing: f[0..<stored])
                try Self.pread(fd, offset: e.storedOffset, into: f)
                if e.codec == .zstd {
                    do throws(ContainerError) {
                        try Zstd.checkDeclaredSize(UnsafeRawBufferPointer(f), expected: e.payloadLength, offset: 0, tensor: e.name)
                    } catch {
                        guard xxh64(UnsafeRawBufferPointer(f)) == e.storedHash else {
                            throw ContainerError(.checksumMismatch(.tensor), offset: e.storedOffset, tensor: e.name)
                        }
                        throw error
                    }
                }
                let buffer = try DecodeScratch.buffer(scratch, \.payload, Int(e.payloadLength))
                try buffer.withUnsafeMutableBytes { (dst: UnsafeMutableRawBufferPointer) throws(ContainerError) in
                    // decode() addresses the frame by its file offset and the slot by its image offset: rebase both
                    var local = e
                    local.storedOffset = 0
                    local.imageOffset = 0
                    try Container.decode(local, from: UnsafeRawBufferPointer(f), into: dst)
                }
                return PackedTensor(layout: e.layout, storage: buffer, offset: 0)
            }
        } catch var err {
            if err.offset == 0 { err.offset = e.storedOffset }
            err.file = path
            throw err
        }
    }

    static func pread(_ fd: Int32, offset: UInt64, count: Int) throws(ContainerError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var failure: ContainerError?
        out.withUnsafeMutableBytes { b in
            do throws(ContainerError) { try pread(fd, offset: offset, into: b) } catch { failure = error }
        }
        if let failure { throw failure }
        return out
    }

    /// Fills `out` from the file at `offset`, or throws (I/O error, or the file ends first).
    static func pread(_ fd: Int32, offset: UInt64, into out: UnsafeMutableRawBufferPointer) throws(ContainerError) {
        let count = out.count
        var done = 0
        while done < count {
            let n = Foundation.pread(fd, out.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            if n < 0 { throw ContainerError(.io(String(cString: strerror(errno))), offset: offset + UInt64(done)) }
            if n == 0 { throw ContainerError(.truncated(needed: offset + UInt64(count), available: offset + UInt64(done)), offset: offset + UInt64(done)) }
            done += n
        }
    }
}

/// `Array.withUnsafeBytes` with a typed error.
func withBytes<R>(_ a: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ContainerError) -> R) throws(ContainerError) -> R {
    try a.withUnsafeBytes { b in Result { () throws(ContainerError) -> R in try body(b) } }.get()
}
