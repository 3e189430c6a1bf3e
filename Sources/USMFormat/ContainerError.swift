import USMIO

/// Why a container could not be read or written. Every reading failure names the file offset and, where there is
/// one, the tensor (ModelFormat.md section 9).
public struct ContainerError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Section: String, Sendable, Equatable {
        case header, metadata, directory, tensor
    }

    public enum Kind: Equatable, Sendable {
        /// Reading failed after the file was opened.
        case io(String)
        /// The file cannot be opened: missing, no permission, or not a regular file.
        case cannotOpen(String)
        /// The model file cannot be written.
        case cannotWrite(String)
        /// The system refused memory that the file asks for (within the reader's limits).
        case allocationFailed(UInt64)
        case badMagic
        case unsupportedVersion(major: Int, minor: Int)
        case truncated(needed: UInt64, available: UInt64)
        case trailingBytes(UInt64)
        case checksumMismatch(Section)
        case inconsistentLayout(String)
        case unknownScheme(UInt8)
        case unknownCodec(UInt8)
        case limitExceeded(String)
        case invalidMetadata(String)
        case zstd(String)
        case invalidTensor(String)
    }

    public var kind: Kind
    /// File offset where the problem was found.
    public var offset: UInt64?
    public var tensor: String?
    public var file: String?

    public init(_ kind: Kind, offset: UInt64? = nil, tensor: String? = nil, file: String? = nil) {
        self.kind = kind
        self.offset = offset
        self.tensor = tensor
        self.file = file
    }

    public var description: String {
        var s = file.map { "\($0): " } ?? ""
        switch kind {
        case .io(let m): s += "cannot read the file: \(m)"
        case .cannotOpen(let m): s += "cannot open the file: \(m)"
        case .cannotWrite(let m): s += "cannot write the file: \(m)"
        case .allocationFailed(let n): s += "cannot allocate \(n) bytes (the system refused the memory)"
        case .badMagic: s += "not a usm-infer model (bad magic)"
        case .unsupportedVersion(let a, let b): s += "unsupported format version \(a).\(b) (this reader supports 1.x)"
        case .truncated(let n, let a): s += "truncated file: needs \(n) bytes, has \(a)"
        case .trailingBytes(let n): s += "\(n) unexpected bytes after the end of the data"
        case .checksumMismatch(let sec): s += "checksum mismatch in the \(sec.rawValue)"
        case .inconsistentLayout(let m): s += "inconsistent layout: \(m)"
        case .unknownScheme(let c): s += "unknown quantization scheme code \(c)"
        case .unknownCodec(let c): s += "unknown codec \(c)"
        case .limitExceeded(let m): s += "limit exceeded: \(m)"
        case .invalidMetadata(let m): s += "invalid metadata: \(m)"
        case .zstd(let m): s += "zstd error: \(m)"
        case .invalidTensor(let m): s += "invalid tensor: \(m)"
        }
        if let tensor { s += " (tensor '\(tensor)')" }
        if let offset { s += " at offset \(offset)" }
        return s
    }
}

extension ContainerError: ExitStatusProviding {
    /// 66 when the file cannot be opened or read, 74 when it cannot be written, 65 for everything about its
    /// contents (including limits and memory it asks for).
    public var exitStatus: ExitStatus {
        switch kind {
        case .io, .cannotOpen: .cannotOpen
        case .cannotWrite: .outputFailed
        default: .invalidData
        }
    }
}

extension ContainerError {
    init(_ e: FileOpenError) {
        self.init(.cannotOpen(e.detail), file: e.path)
    }
}
