import FuzzSupport
import USMAudio
import USMModel

/// Audio files (WAV, FLAC, MP3, OGG headers and payloads) through the reader with its limits, the resampler to
/// 16 kHz and the log-mel frontend of the bundled model's shape.
let frontend = try! LogMelFrontend(config: ConformerConfig.trained.frontend, sampleRate: 16000,
                                   mean: [Float](repeating: 0, count: 80), std: [Float](repeating: 1, count: 80))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = FuzzInput.file(FuzzInput.bytes(data, size), suffix: ".audio")
    guard let reader = try? AudioFileReader(path: path, limits: AudioLimits(maxBlockSamples: 1 << 16)) else { return 0 }
    guard let resampler = try? Resampler(from: reader.sampleRate, to: 16000) else { return 0 }
    var state = FrontendState()
    var features: [Float] = []
    var total = 0
    while total < 16000 * 30, let block = try? reader.read(maxFrames: 4096), !block.isEmpty {
        total += block.count
        guard block.allSatisfy({ $0.isFinite }), let out = try? resampler.process(block) else { break }
        _ = frontend.process(out, state: &state, into: &features)
        features.removeAll(keepingCapacity: true)
    }
    return 0
}
