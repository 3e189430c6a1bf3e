import CXXHash
import CZstd

/// XXH64 with seed 0 (ModelFormat.md section 9).
public func xxh64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    UInt64(XXH64(bytes.baseAddress, bytes.count, 0))
}

public func xxh64(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { xxh64($0) } }

enum Zstd {
    static let maxWindowLog: Int32 = 27

    /// One zstd frame with the content size and checksum declared.
    static func compress(_ src: UnsafeRawBufferPointer, level: Int32) throws(ContainerError) -> [UInt8] {
        let level = min(level, ZSTD_maxCLevel())
        guard let cctx = ZSTD_createCCtx() else { throw ContainerError(.zstd("cannot create a compression context")) }
        defer { ZSTD_freeCCtx(cctx) }
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)
        // Every standard level (up to ZSTD_maxCLevel() = 22) uses a window of at most 2^27 bytes.
        let bound = ZSTD_compressBound(src.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { dst in
            ZSTD_compress2(cctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
        }
        if ZSTD_isError(n) != 0 { throw ContainerError(.zstd(String(cString: ZSTD_getErrorName(n)))) }
        out.removeSubrange(n...)
        return out
    }

    /// Checks, from the frame header alone, that `frame` declares `expected` bytes of content: done before any
    /// memory is allocated for the content.
    static func checkDeclaredSize(_ frame: UnsafeRawBufferPointer, expected: UInt64, offset: UInt64,
                                  tensor: String) throws(ContainerError) {
        func fail(_ m: String) -> ContainerError { ContainerError(.zstd(m), offset: offset, tensor: tensor) }
        let declared = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { throw fail("not a zstd frame") }
        if declared == ZSTD_CONTENTSIZE_UNKNOWN { throw fail("frame does not declare its content size") }
        guard declared == expected else {
            throw ContainerError(.inconsistentLayout("frame declares \(declared) bytes, the directory \(expected)"),
                                 offset: offset, tensor: tensor)
        }
    }

    /// Decodes one frame that must fill `dst` exactly; never writes past it.
    static func decompress(_ frame: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer,
                           offset: UInt64, tensor: String) throws(ContainerError) {
        func fail(_ m: String) -> ContainerError { ContainerError(.zstd(m), offset: offset, tensor: tensor) }
        try checkDeclaredSize(frame, expected: UInt64(dst.count), offset: offset, tensor: tensor)
        let frameSize = ZSTD_findFrameCompressedSize(frame.baseAddress, frame.count)
        if ZSTD_isError(frameSize) != 0 { throw fail(String(cString: ZSTD_getErrorName(frameSize))) }
        guard frameSize == frame.count else { throw fail("frame is \(frameSize) bytes, stored length \(frame.count)") }
        guard let dctx = ZSTD_createDCtx() else { throw fail("cannot create a decompression context") }
        defer { ZSTD_freeDCtx(dctx) }
        ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, maxWindowLog)
        let n = ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, frame.baseAddress, frame.count)
        if ZSTD_isError(n) != 0 { throw fail(String(cString: ZSTD_getErrorName(n))) }
        guard n == dst.count else { throw fail("decoded \(n) bytes, expected \(dst.count)") }
    }
}
