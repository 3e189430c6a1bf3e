import FuzzSupport
import USMFormat
import USMRecognizer

/// The whole-file container reader, then the model loader on what it accepts. Each input is read as it is (so
/// checksum failures are covered) and again resealed (`ContainerReseal`), so mutations reach the layout checks,
/// the zstd decoder and the loader behind the checksums.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var bytes = FuzzInput.bytes(data, size)
    _ = try? Container.read(bytes: bytes)
    ContainerReseal.reseal(&bytes)
    let limits = RecognizerLimits(maxModelBytes: 256 << 20)
    _ = try? Recognizer(bytes: bytes, options: RecognizerOptions(limits: limits))
    return 0
}
