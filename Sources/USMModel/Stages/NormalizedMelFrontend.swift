import Foundation

/// Frontend stage: NeMo's `AudioToMelSpectrogramPreprocessor` in eval mode (docs/nemo-import.md section 3.1).
///
/// Contract: mono samples at `sampleRate` in, `[frames, features]` row-major log-mel features out, `frames = n / hop`
/// for `n` samples (NeMo's valid length: one less than the STFT makes), normalised over those frames as configured.
/// No dither. Pre-emphasis over the whole signal, centred STFT with zero padding `n_fft / 2` on both sides, the
/// stored symmetric window centred in `n_fft`, `|X|^mag_power`, the stored filterbank, the log guard. The spectrum
/// and statistics are computed in double precision, the mel energies rounded to f32 as NeMo's are.
///
/// Per-utterance normalisation needs every frame before the first can be produced, so a model with this frontend
/// and `normalize` other than `none` cannot stream (`StreamingBehavior.offlineOnly`).
public struct NormalizedMelFrontend: Sendable {
    public let config: NeMoConfig.Preprocessor
    /// `[n_fft]`: the stored window, zero-padded to `n_fft` and centred
    let window: [Double]
    /// `[features, n_fft / 2 + 1]`
    let filterbank: [Double]
    let fft: RealFFT

    static func tensors(_ c: NeMoConfig.Preprocessor) -> [TensorInfo] {
        [TensorInfo(name: "preprocessor.window", shape: [c.windowLength]),
         TensorInfo(name: "preprocessor.filterbank", shape: [c.features, c.fftSize / 2 + 1])]
    }

    init(_ config: NeMoConfig.Preprocessor, loader: inout StageLoader) throws(ModelError) {
        self.config = config
        let stored = try loader.floats("preprocessor.window", shape: [config.windowLength])
        var w = [Double](repeating: 0, count: config.fftSize)
        let left = (config.fftSize - config.windowLength) / 2
        for (i, v) in stored.enumerated() { w[left + i] = Double(v) }
        window = w
        filterbank = try loader.floats("preprocessor.filterbank", shape: [config.features, config.fftSize / 2 + 1]).map(Double.init)
        fft = RealFFT(size: config.fftSize)
    }

    /// Whether the features of a frame depend on frames far from it (per-utterance statistics).
    public var normalisesOverTheUtterance: Bool { config.normalize != .none }

    /// Frames the features of `samples` samples have.
    public func frameCount(samples n: Int) -> Int { n / config.hop }

    /// The features of one utterance, `[frameCount(samples:), features]`.
    public func features(_ samples: [Float]) -> [Float] {
        let c = config, n = samples.count, frames = frameCount(samples: n)
        let mels = c.features, bins = c.fftSize / 2 + 1, half = c.fftSize / 2
        guard frames > 0 else { return [] }
        // pre-emphasis in f32, as NeMo computes it
        var x = samples
        if c.preemphasis != 0 {
            for t in stride(from: n - 1, to: 0, by: -1) { x[t] = samples[t] - c.preemphasis * samples[t - 1] }
        }
        var out = [Double](repeating: 0, count: frames * mels)
        var frame = [Double](repeating: 0, count: c.fftSize)
        var work = FFTWork()
        for f in 0..<frames {
            // padded sample p = original p - half, zero outside the signal
            let start = f * c.hop - half
            for i in 0..<c.fftSize {
                let s = start + i
                frame[i] = s >= 0 && s < n ? Double(x[s]) * window[i] : 0
            }
            var spectrum = fft.magnitudes(frame, power: c.magnitudePower == 2, work: &work)
            if c.magnitudePower != 2 && c.magnitudePower != 1 {
                for k in 0..<bins { spectrum[k] = pow(spectrum[k], c.magnitudePower) }
            }
            for m in 0..<mels {
                var e = 0.0
                let row = m * bins
                for k in 0..<bins { e += filterbank[row + k] * spectrum[k] }
                var v = Double(Float(e))
                if c.log { v = c.guardAdds ? Foundation.log(v + c.logGuard) : Foundation.log(max(v, c.logGuard)) }
                out[f * mels + m] = v
            }
        }
        normalise(&out, frames: frames, mels: mels)
        return out.map { Float($0) }
    }

    /// NeMo's `normalize_batch`: mean and unbiased standard deviation (N - 1) over the frames, per bin
    /// (`per_feature`) or over everything (`all_features`), `(x - mean) / (std + epsilon)`.
    func normalise(_ v: inout [Double], frames: Int, mels: Int) {
        let eps = config.normalizeEpsilon
        func std(_ sumSquares: Double, _ count: Int) -> Double { count > 1 ? (sumSquares / Double(count - 1)).squareRoot() : 0 }
        switch config.normalize {
        case .none: return
        case .perFeature:
            for m in 0..<mels {
                var sum = 0.0
                for f in 0..<frames { sum += v[f * mels + m] }
                let mean = sum / Double(frames)
                var ss = 0.0
                for f in 0..<frames { let d = v[f * mels + m] - mean; ss += d * d }
                let s = std(ss, frames) + eps
                for f in 0..<frames { v[f * mels + m] = (v[f * mels + m] - mean) / s }
            }
        case .allFeatures:
            let mean = v.reduce(0, +) / Double(v.count)
            let ss = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
            let s = std(ss, v.count) + eps
            for i in v.indices { v[i] = (v[i] - mean) / s }
        }
    }
}
