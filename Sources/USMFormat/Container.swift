import Dispatch
import Foundation
import USMIO
import USMTensor

/// Limits on what a model file may make the reader allocate. Every size a file declares is checked against them
/// before any memory is taken for it, and exceeding one is `ContainerError.Kind.limitExceeded` naming the limit
/// (ModelFormat.md section 9, "Reader limits").
public struct ReadOptions: Sendable {
    /// The most memory the decompressed image (all tensors together, or one tensor read lazily) may take.
    public var maxImageBytes: UInt64

    /// 32 GiB or the machine's physical memory, whichever is smaller.
    public static var defaultMaxImageBytes: UInt64 {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        let physical = pages > 0 && pageSize > 0 ? UInt64(pages) * UInt64(pageSize) : UInt64.max
        return min(32 << 30, physical)
    }

    public init(maxImageBytes: UInt64 = ReadOptions.defaultMaxImageBytes) { self.maxImageBytes = maxImageBytes }
}

/// The most bytes one zstd frame byte can decode to: an RLE block of at most 128 KiB takes 4 bytes (3 of header,
/// 1 of content), so a frame of n bytes decodes to fewer than n * 32768 (RFC 8878, section 3.1.1.2). A directory
/// entry that declares more cannot be right, whatever the frame's content.
let zstdMaxExpansion: UInt64 = 32768

/// A loaded model file: every tensor decoded into one aligned, immutable image. Loading is all or nothing.
public struct Container: Sendable {
    public let header: ContainerHeader
    public let metadata: ModelMetadata
    /// In file order.
    public let entries: [DirectoryEntry]
    public let image: AlignedBuffer
    private let index: [String: Int]

    public var fileSize: UInt64 { header.fileSize }

    public func tensor(_ name: String) -> PackedTensor? {
        guard let i = index[name] else { return nil }
        return PackedTensor(layout: entries[i].layout, storage: image, offset: Int(entries[i].imageOffset))
    }

    public var tensorNames: [String] { entries.map(\.name) }

    /// Reads and verifies a file (a regular file: anything else is refused before it is read).
    public static func read(path: String, options: ReadOptions = ReadOptions()) throws(ContainerError) -> Container {
        let fd: Int32, size: UInt64
        do { (fd, size) = try RegularFile.open(path) } catch { throw ContainerError(error) }
        defer { close(fd) }
        var result: Result<Container, ContainerError>
        if size == 0 {
            result = Result { () throws(ContainerError) -> Container in try read(bytes: UnsafeRawBufferPointer(start: nil, count: 0), options: options) }
        } else {
            guard size <= UInt64(Int.max), let map = mmap(nil, Int(size), PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
                throw ContainerError(.io(String(cString: strerror(errno))), file: path)
            }
            defer { munmap(map, Int(size)) }
            result = Result { () throws(ContainerError) -> Container in
                try read(bytes: UnsafeRawBufferPointer(start: map, count: Int(size)), options: options)
            }
        }
        switch result {
        case .success(let c): return c
        case .failure(var e):
            e.file = path
            throw e
        }
    }

    public static func read(bytes: [UInt8], options: ReadOptions = ReadOptions()) throws(ContainerError) -> Container {
        try bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Result<Container, ContainerError> in
            Result { () throws(ContainerError) -> Container in try read(bytes: raw, options: options) }
        }.get()
    }

    /// Parses and checks the header, metadata and directory without decoding any tensor.
    public static func readDirectory(bytes: UnsafeRawBufferPointer, options: ReadOptions = ReadOptions())
        throws(ContainerError) -> (ContainerHeader, ModelMetadata, [DirectoryEntry]) {
        try parseDirectory(prefix: bytes, fileSize: UInt64(bytes.count), options: options)
    }

    /// The same from the file's first `data_offset` bytes (or more) and its total size.
    static func parseDirectory(prefix bytes: UnsafeRawBufferPointer, fileSize: UInt64, options: ReadOptions)
        throws(ContainerError) -> (ContainerHeader, ModelMetadata, [DirectoryEntry]) {
        let header = try parseHeader(bytes)
        let total = fileSize
        if total < header.fileSize { throw ContainerError(.truncated(needed: header.fileSize, available: total), offset: total) }
        if total > header.fileSize { throw ContainerError(.trailingBytes(total - header.fileSize), offset: header.fileSize) }
        guard UInt64(bytes.count) >= header.dataOffset else {
            throw ContainerError(.truncated(needed: header.dataOffset, available: UInt64(bytes.count)), offset: UInt64(bytes.count))
        }

        let metaBytes = slice(bytes, header.metadataOffset, header.metadataLength)
        guard xxh64(metaBytes) == header.metadataHash else {
            throw ContainerError(.checksumMismatch(.metadata), offset: header.metadataOffset)
        }
        let dirBytes = slice(bytes, header.directoryOffset, header.directoryLength)
        guard xxh64(dirBytes) == header.directoryHash else {
            throw ContainerError(.checksumMismatch(.directory), offset: header.directoryOffset)
        }
        let metadata = try ModelMetadata.decode(metaBytes, offset: header.metadataOffset)

        var r = ByteReader(dirBytes, base: header.directoryOffset)
        var entries: [DirectoryEntry] = []
        entries.reserveCapacity(Int(header.tensorCount))
        var names = Set<String>()
        var storedOffset = header.dataOffset
        var imageEnd: UInt64 = 0
        for _ in 0..<header.tensorCount {
            let at = r.fileOffset
            let e = try DirectoryEntry.decode(&r)
            func bad(_ m: String) -> ContainerError { ContainerError(.inconsistentLayout(m), offset: at, tensor: e.name) }
            guard names.insert(e.name).inserted else { throw bad("duplicate tensor name") }
            guard e.storedOffset == storedOffset else { throw bad("frame at \(e.storedOffset), expected \(storedOffset)") }
            let wantImage = UInt64(roundUp(Int(imageEnd), AlignedBuffer.alignment))
            guard e.imageOffset == wantImage else { throw bad("image offset \(e.imageOffset), expected \(wantImage)") }
            let (end, o) = storedOffset.addingReportingOverflow(e.storedLength)
            guard !o, end <= header.fileSize else { throw bad("frame of \(e.storedLength) bytes runs past the end of the file") }
            storedOffset = end
            if e.codec == .zstd {
                let (most, o) = e.storedLength.multipliedReportingOverflow(by: zstdMaxExpansion)
                guard o || e.payloadLength <= most else {
                    throw bad("a zstd frame of \(e.storedLength) bytes cannot decode to \(e.payloadLength) bytes")
                }
            }
            imageEnd = e.imageOffset + e.payloadLength
            guard imageEnd <= options.maxImageBytes else {
                throw ContainerError(.limitExceeded("the image needs \(imageEnd) bytes, over the reader's maxImageBytes limit of \(options.maxImageBytes)"),
                                     offset: at, tensor: e.name)
            }
            entries.append(e)
        }
        guard r.position == dirBytes.count else {
            throw ContainerError(.inconsistentLayout("directory has \(dirBytes.count - r.position) bytes after its \(header.tensorCount) entries"),
                                 offset: r.fileOffset)
        }
        guard storedOffset == header.fileSize else {
            throw ContainerError(.inconsistentLayout("frames end at \(storedOffset), the data section at \(header.fileSize)"),
                                 offset: storedOffset)
        }
        let wantImage = UInt64(roundUp(Int(imageEnd), AlignedBuffer.alignment))
        guard header.imageSize == wantImage else {
            throw ContainerError(.inconsistentLayout("image size \(header.imageSize), the tensors give \(wantImage)"), offset: 72)
        }
        return (header, metadata, entries)
    }

    /// Reads and verifies a whole file image.
    public static func read(bytes: UnsafeRawBufferPointer, options: ReadOptions = ReadOptions()) throws(ContainerError) -> Container {
        let (header, metadata, entries) = try readDirectory(bytes: bytes, options: options)
        // Every frame's declared content size is checked before the image is allocated for them.
        // A frame that fails it is reported as a checksum mismatch when its bytes are not the ones stored.
        for e in entries where e.codec == .zstd {
            let frame = slice(bytes, e.storedOffset, e.storedLength)
            do throws(ContainerError) {
                try Zstd.checkDeclaredSize(frame, expected: e.payloadLength, offset: e.storedOffset, tensor: e.name)
            } catch {
                guard xxh64(frame) == e.storedHash else {
                    throw ContainerError(.checksumMismatch(.tensor), offset: e.storedOffset, tensor: e.name)
                }
                throw error
            }
        }
        guard let image = AlignedBuffer.allocating(byteCount: Int(header.imageSize)) else {
            throw ContainerError(.allocationFailed(header.imageSize))
        }
        // Frames are independent: decode them on every core, each into its own slot of the image.
        var failures = [ContainerError?](repeating: nil, count: entries.count)
        image.withUnsafeMutableBytes { dst in
            failures.withUnsafeMutableBufferPointer { failed in
                // Sound: iteration i reads the file bytes and writes only entry i's image slot and failures[i],
                // which are disjoint, and all of it is done before concurrentPerform returns.
                nonisolated(unsafe) let (source, image, results) = (bytes, dst, failed)
                DispatchQueue.concurrentPerform(iterations: entries.count) { i in
                    do throws(ContainerError) { try decode(entries[i], from: source, into: image) } catch { results[i] = error }
                }
            }
        }
        // Report the first failure in file order, so the error does not depend on scheduling.
        if let first = failures.first(where: { $0 != nil }) { throw first! }
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.name] = i }
        return Container(header: header, metadata: metadata, entries: entries, image: image, index: index)
    }

    static func decode(_ e: DirectoryEntry, from bytes: UnsafeRawBufferPointer,
                       into image: UnsafeMutableRawBufferPointer) throws(ContainerError) {
        let frame = slice(bytes, e.storedOffset, e.storedLength)
        guard xxh64(frame) == e.storedHash else {
            throw ContainerError(.checksumMismatch(.tensor), offset: e.storedOffset, tensor: e.name)
        }
        let dst = UnsafeMutableRawBufferPointer(rebasing: image[Int(e.imageOffset)..<Int(e.imageOffset + e.payloadLength)])
        switch e.codec {
        case .raw: dst.copyMemory(from: frame)
        case .zstd: try Zstd.decompress(frame, into: dst, offset: e.storedOffset, tensor: e.name)
        }
        guard xxh64(UnsafeRawBufferPointer(dst)) == e.payloadHash else {
            throw ContainerError(.checksumMismatch(.tensor), offset: e.storedOffset, tensor: e.name)
        }
    }

    static func slice(_ b: UnsafeRawBufferPointer, _ offset: UInt64, _ length: UInt64) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: b[Int(offset)..<Int(offset + length)])
    }

    static func parseHeader(_ bytes: UnsafeRawBufferPointer) throws(ContainerError) -> ContainerHeader {
        let total = UInt64(bytes.count)
        let magicCount = min(bytes.count, 8)
        guard bytes.prefix(magicCount).elementsEqual(ContainerHeader.magic.prefix(magicCount)) else {
            throw ContainerError(.badMagic, offset: 0)
        }
        guard bytes.count >= ContainerHeader.size else {
            throw ContainerError(.truncated(needed: UInt64(ContainerHeader.size), available: total), offset: total)
        }
        var r = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[0..<ContainerHeader.size]), base: 0)
        _ = try r.take(8)
        var h = ContainerHeader()
        h.versionMajor = try r.u16()
        h.versionMinor = try r.u16()
        guard h.versionMajor == ContainerHeader.versionMajor else {
            throw ContainerError(.unsupportedVersion(major: Int(h.versionMajor), minor: Int(h.versionMinor)), offset: 8)
        }
        let storedHash = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 120, as: UInt64.self))
        guard xxh64(UnsafeRawBufferPointer(rebasing: bytes[0..<120])) == storedHash else {
            throw ContainerError(.checksumMismatch(.header), offset: 120)
        }
        let headerSize = try r.u32()
        h.fileSize = try r.u64()
        h.metadataOffset = try r.u64(); h.metadataLength = try r.u64()
        h.directoryOffset = try r.u64(); h.directoryLength = try r.u64()
        h.dataOffset = try r.u64(); h.dataLength = try r.u64()
        h.imageSize = try r.u64()
        h.tensorCount = try r.u32(); h.flags = try r.u32()
        h.metadataHash = try r.u64(); h.directoryHash = try r.u64()
        let reserved = try r.take(16)

        func bad(_ m: String, _ at: UInt64) -> ContainerError { ContainerError(.inconsistentLayout(m), offset: at) }
        guard headerSize == UInt32(ContainerHeader.size) else { throw bad("header size \(headerSize), expected 128", 12) }
        guard h.flags == 0, reserved.allSatisfy({ $0 == 0 }) else { throw bad("reserved header fields are not zero", 84) }
        guard h.metadataOffset == UInt64(ContainerHeader.size) else { throw bad("metadata offset \(h.metadataOffset), expected 128", 24) }
        guard (1...ContainerHeader.maxMetadataLength).contains(h.metadataLength) else {
            throw ContainerError(.limitExceeded("metadata length \(h.metadataLength) (1 ... 64 MiB)"), offset: 32)
        }
        guard h.directoryLength <= ContainerHeader.maxDirectoryLength else {
            throw ContainerError(.limitExceeded("directory length \(h.directoryLength) (max 64 MiB)"), offset: 48)
        }
        guard h.tensorCount <= ContainerHeader.maxTensorCount else {
            throw ContainerError(.limitExceeded("\(h.tensorCount) tensors (max 1,000,000)"), offset: 80)
        }
        guard h.directoryOffset == h.metadataOffset + h.metadataLength else {
            throw bad("directory offset \(h.directoryOffset), expected \(h.metadataOffset + h.metadataLength)", 40)
        }
        guard h.dataOffset == h.directoryOffset + h.directoryLength else {
            throw bad("data offset \(h.dataOffset), expected \(h.directoryOffset + h.directoryLength)", 56)
        }
        let (end, o) = h.dataOffset.addingReportingOverflow(h.dataLength)
        guard !o, end == h.fileSize else { throw bad("data ends at \(end), file size is \(h.fileSize)", 64) }
        guard h.imageSize % UInt64(AlignedBuffer.alignment) == 0 else { throw bad("image size \(h.imageSize) is not a multiple of 64", 72) }
        return h
    }
}
