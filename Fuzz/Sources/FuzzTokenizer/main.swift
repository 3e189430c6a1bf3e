import FuzzSupport
import USMFormat
import USMModel

/// The tokenizer on arbitrary pieces and ids: the input's first half gives the pieces (split at zero bytes, any
/// UTF-8), its second half the token ids (one byte each, some out of range) for `text` and `wordSpans`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = FuzzInput.bytes(data, size)
    let half = bytes.count / 2
    let pieces = bytes[..<half].split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    let vocab = max(pieces.count, 2)
    let list = (pieces + ["", ""]).prefix(vocab).map { JSONValue.string($0) }
    let blank = Double(bytes.first ?? 0)
    let json = JSONValue.object(["pieces": .array(Array(list)), "blank_id": .number(blank), "unk_id": .number(1)])
    guard let tok = try? Tokenizer(json: json, vocabSize: vocab) else { return 0 }
    let ids = bytes[half...].map { Int($0) - 8 }
    _ = tok.text(ids)
    for span in tok.wordSpans(ids) { precondition(span.tokens.lowerBound < span.tokens.upperBound && span.tokens.upperBound <= ids.count) }
    return 0
}
