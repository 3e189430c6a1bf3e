import FuzzSupport
import USMFormat
import USMRecognizer

/// The lazy reader (`ContainerFile`: directory at open, each tensor on demand from the file) on the resealed
/// input, every tensor asked for with and without a decode scratch, then a recognizer loaded from the file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var bytes = FuzzInput.bytes(data, size)
    ContainerReseal.reseal(&bytes)
    let path = FuzzInput.file(bytes, suffix: ".usm")
    let options = ReadOptions(maxImageBytes: 256 << 20)
    if let file = try? ContainerFile(path: path, options: options) {
        let scratch = DecodeScratch()
        for e in file.entries {
            _ = try? file.tensor(named: e.name)
            _ = try? file.tensor(named: e.name, scratch: scratch)
        }
        _ = try? Recognizer(path: path, options: RecognizerOptions(limits: RecognizerLimits(maxModelBytes: 256 << 20)))
    }
    return 0
}
