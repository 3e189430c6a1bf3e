import FuzzSupport
import USMFormat
import USMModel

/// The metadata JSON (ModelFormat.md section 4), the architecture config and the tokenizer built from it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    guard let meta = try? ModelMetadata.decode(raw, offset: 128) else { return 0 }
    if let config = try? ConformerConfig.decode(meta.architecture) {
        _ = config.tensors
        _ = try? Tokenizer(json: meta.tokenizer, vocabSize: config.vocabSize)
    }
    _ = try? meta.encoded()
    return 0
}
