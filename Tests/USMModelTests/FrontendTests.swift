import Foundation
import Testing
import USMFormat
@testable import USMModel
import USMTensor
import USMKernels

/// The C log-mel kernel (usm_logmel: real FFT as a half-size complex FFT, all in Double) against its reference twin
/// `LogMelFrontend.features` (Swift, full-size FFT), streamed in uneven chunks, for magnitude and power spectra.
@Suite struct LogMelKernelTwin {
    /// The trained model's frontend with `spectrum` and made-up normalisation.
    static func frontend(spectrum: String) throws -> LogMelFrontend {
        var config = ConformerConfig.trained.frontend
        config.spectrum = spectrum
        let mean = (0..<config.melBins).map { Float($0) * 0.01 - 0.3 }, std = (0..<config.melBins).map { 1 + Float($0) * 0.02 }
        return try LogMelFrontend(config: config, sampleRate: 16000, mean: mean, std: std)
    }

    @Test(arguments: ["magnitude", "power"])
    func kernelMatchesReference(spectrum: String) throws {
        let fe = try Self.frontend(spectrum: spectrum)
        var seed: UInt64 = 7
        let audio: [Float] = (0..<9_001).map { i in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let noise = Float(Int64(bitPattern: seed >> 11) % 1000) / 20000
            return 0.5 * sin(Float(i) * 0.05) + noise + (i > 4000 && i < 5000 ? 0 : 0.1 * sin(Float(i) * 0.9))
        }
        var fast = FrontendState(), slow = FrontendState()
        var a: [Float] = [], b: [Float] = []
        var start = 0, n = 0
        for chunk in [1, 399, 400, 1234, 160, 7, 3000, 10_000] where start < audio.count {
            let end = min(audio.count, start + chunk)
            n += fe.process(Array(audio[start..<end]), state: &fast, into: &a)
            _ = fe.referenceProcess(Array(audio[start..<end]), state: &slow, into: &b)
            start = end
        }
        #expect(n == fe.frameCount(samples: audio.count))
        #expect(a.count == b.count)
        // both in Double; the outputs are f32, so they agree to a few f32 ulps of the normalised values
        for i in a.indices { #expect(abs(a[i] - b[i]) <= 1e-5 * max(1, abs(b[i])), "feature \(i): \(a[i]) vs \(b[i])") }
    }

    /// The kernel with 8 frames per vector body on every tier this CPU runs gives the bits of the portable tier one
    /// frame at a time, for frame counts that fill no group, one group, and groups with tails.
    @Test(arguments: ["magnitude", "power"])
    func batchedKernelIsBitExact(spectrum: String) throws {
        let fe = try Self.frontend(spectrum: spectrum)
        let config = fe.config
        let hop = config.hopSize, win = config.windowSize, mels = config.melBins
        var seed: UInt64 = 11
        for frames in [1, 2, 7, 8, 9, 16, 21] {
            let samples: [Double] = (0..<((frames - 1) * hop + win)).map { i in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return sin(Double(i) * 0.03) * 0.4 + Double(Int64(bitPattern: seed >> 11) % 1000) / 5000 - (i % 97 == 0 ? 1e-9 : 0)
            }
            var work = [Double](repeating: .nan, count: LogMelKernel.workCount(fftSize: config.fftSize))
            func run(_ isa: KernelISA?) -> [Float] {
                var out = [Float](repeating: .nan, count: frames * mels)
                samples.withUnsafeBufferPointer { x in
                    out.withUnsafeMutableBufferPointer { o in
                        work.withUnsafeMutableBufferPointer { w in
                            LogMelKernel.run(samples: x.baseAddress!, hop: hop, frames: frames, frontend: fe,
                                             out: o.baseAddress!, work: w.baseAddress!, isa: isa)
                        }
                    }
                }
                return out
            }
            let scalar = run(nil)
            #expect(scalar.allSatisfy { $0.isFinite })
            for isa in [KernelISA.portable] + KernelISA.supported.filter({ $0 == .avx2 || $0 == .avx512 || $0 == .neon }) {
                let batched = run(isa)
                #expect(batched.map(\.bitPattern) == scalar.map(\.bitPattern), "\(isa), \(frames) frames")
            }
        }
    }
}
