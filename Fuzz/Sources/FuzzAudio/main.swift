import FuzzSupport
import USMAudio
import USMModel

/// Audio files (WAV, FLAC, MP3, OGG headers and payloads) through the reader with its limits, the resampler to
/// 16 kHz and the log-mel frontend of the bundled model's shape. Each input is opened both as a file and as bytes in
/// memory (libsndfile's virtual I/O): the two must agree on whether it opens and on its header (a difference stops
/// the run as a crash), and the samples are decoded from memory.
let frontend = try! LogMelFrontend(config: ConformerConfig.trained.frontend, sampleRate: 16000,
                                   mean: [Float](repeating: 0, count: 80), std: [Float](repeating: 1, count: 80))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = FuzzInput.bytes(data, size)
    let path = FuzzInput.file(bytes, suffix: ".audio")
    let limits = AudioLimits(maxBlockSamples: 1 << 16)
    let fromFile = try? AudioFileReader(path: path, limits: limits)
    let fromMemory = try? AudioFileReader(bytes: bytes, limits: limits)
    if (fromFile == nil) != (fromMemory == nil) {
        fatalError("opens as \(fromFile == nil ? "memory" : "a file") only")
    }
    guard let reader = fromMemory, let file = fromFile else { return 0 }
    if (file.sampleRate, file.channels, file.frames) != (reader.sampleRate, reader.channels, reader.frames) {
        fatalError("file \((file.sampleRate, file.channels, file.frames)), memory \((reader.sampleRate, reader.channels, reader.frames))")
    }
    guard let resampler = try? Resampler(from: reader.sampleRate, to: 16000) else { return 0 }
    var state = FrontendState()
    var features: [Float] = []
    // Every block up to 30 s is decoded (the readers' paths); only the first two blocks go on through the resampler
    // and the frontend: their paths (block boundaries, the state carried between calls) are all reached by then.
    var total = 0, blocks = 0
    while total < 16000 * 30, let block = try? reader.read(maxFrames: 4096), !block.isEmpty {
        total += block.count
        guard block.allSatisfy({ $0.isFinite }) else { break }
        blocks += 1
        if blocks > 2 { continue }
        guard let out = try? resampler.process(block) else { break }
        _ = frontend.process(out, state: &state, into: &features)
        features.removeAll(keepingCapacity: true)
    }
    return 0
}
