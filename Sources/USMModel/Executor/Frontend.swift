import Foundation
import USMKernels

/// Log-mel features exactly as Architecture.md section 2 defines them, computed in Double and returned as Float.
public struct LogMelFrontend: Sendable {
    public let config: ConformerConfig.Frontend
    public let sampleRate: Int
    /// per mel bin: first FFT bin and its weights
    let filters: [(start: Int, weights: [Double])]
    let window: [Double]
    let fft: RealFFT
    let mean: [Float]
    let std: [Float]
    /// the filters flattened for the C kernel (usm_logmel): first bin, weight count, offset into `filterWeights`
    let filterStart: [Int32], filterLength: [Int32], filterOffset: [Int32]
    let filterWeights: [Double]
    /// bit reversal for the half-size complex FFT
    let halfBitReverse: [Int32]

    public init(config: ConformerConfig.Frontend, sampleRate: Int, mean: [Float], std: [Float]) throws(ModelError) {
        guard mean.count == config.melBins, std.count == config.melBins else {
            throw .tensorMismatch("frontend mean/std have \(mean.count)/\(std.count) values for \(config.melBins) mel bins")
        }
        guard std.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw .tensorMismatch("frontend.std must be positive") }
        guard config.fftSize & (config.fftSize - 1) == 0, config.fftSize >= 4 else {
            throw .invalidConfig("fft_size must be a power of two >= 4")
        }
        self.config = config
        self.sampleRate = sampleRate
        self.mean = mean
        self.std = std
        let n = config.windowSize
        window = (0..<n).map { 0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(n)) }
        fft = RealFFT(size: config.fftSize)
        func mel(_ f: Double) -> Double { 2595 * log10(1 + f / 700) }
        func hz(_ m: Double) -> Double { 700 * (pow(10, m / 2595) - 1) }
        let lo = mel(config.fMin), hi = mel(config.fMax)
        let points = (0..<(config.melBins + 2)).map { hz(lo + (hi - lo) * Double($0) / Double(config.melBins + 1)) }
        let bins = config.fftSize / 2 + 1
        var filters: [(Int, [Double])] = []
        for m in 0..<config.melBins {
            let (l, c, r) = (points[m], points[m + 1], points[m + 2])
            var start = -1
            var weights: [Double] = []
            for k in 0..<bins {
                let f = Double(k) * Double(sampleRate) / Double(config.fftSize)
                let w = max(0, min((f - l) / (c - l), (r - f) / (r - c)))
                if w > 0 {
                    if start < 0 { start = k }
                    weights += [Double](repeating: 0, count: k - start - weights.count) + [w]
                }
            }
            filters.append((max(start, 0), weights))
        }
        self.filters = filters
        filterStart = filters.map { Int32($0.0) }
        filterLength = filters.map { Int32($0.1.count) }
        var offsets: [Int32] = [], total = 0
        for f in filters { offsets.append(Int32(total)); total += f.1.count }
        filterOffset = offsets
        filterWeights = filters.flatMap(\.1)
        let half = config.fftSize / 2, bits = half.trailingZeroBitCount
        halfBitReverse = (0..<half).map { i in
            var r = 0
            for b in 0..<bits where i & (1 << b) != 0 { r |= 1 << (bits - 1 - b) }
            return Int32(r)
        }
    }

    /// Number of frames for `n` samples (no padding).
    public func frameCount(samples n: Int) -> Int {
        n >= config.windowSize ? 1 + (n - config.windowSize) / config.hopSize : 0
    }

    /// Normalised features of one frame: `frame` holds `window_size` pre-emphasised samples.
    func features(frame: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Float>, scratch: inout [Double],
                  work: inout FFTWork) {
        let n = config.windowSize
        Workspace.grow(&scratch, config.fftSize)
        for i in 0..<n { scratch[i] = frame[i] * window[i] }
        for i in n..<config.fftSize { scratch[i] = 0 }
        let spectrum = fft.magnitudes(scratch, power: config.spectrum == "power", work: &work)
        for (m, f) in filters.enumerated() {
            var e = 0.0
            for (i, w) in f.weights.enumerated() { e += w * spectrum[f.start + i] }
            let v = Float(log(max(e, config.logFloor)))
            out[m] = (v - mean[m]) / std[m]
        }
    }
}

/// Streaming state of the frontend: pre-emphasised samples not yet consumed by a full frame.
public struct FrontendState: Sendable {
    var pending: [Double] = []
    var previous: Float = 0
    var started = false
    var scratch: [Double] = []
    var fftWork = FFTWork()
    public init() {}
}

extension LogMelFrontend {
    /// Appends the normalised frames that `samples` completes to `out` (`mel_bins` floats per frame).
    public func process(_ samples: [Float], state: inout FrontendState, into out: inout [Float]) -> Int {
        guard let (frames, base) = preEmphasize(samples, state: &state, out: &out) else { return 0 }
        Workspace.grow(&state.scratch, LogMelKernel.workCount(fftSize: config.fftSize))
        state.pending.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                state.scratch.withUnsafeMutableBufferPointer { work in
                    LogMelKernel.run(samples: p.baseAddress!, hop: config.hopSize, frames: frames, frontend: self,
                                     out: o.baseAddress! + base, work: work.baseAddress!)
                }
            }
        }
        state.pending.removeFirst(frames * config.hopSize)
        return frames
    }
}

extension LogMelFrontend {
    /// Appends the pre-emphasized samples to the pending ones; when whole frames are ready, makes room for them at
    /// the end of `out` and returns (frames, index of the first new value in `out`).
    func preEmphasize(_ samples: [Float], state: inout FrontendState, out: inout [Float]) -> (Int, Int)? {
        let alpha = config.preemphasis
        state.pending.reserveCapacity(state.pending.count + samples.count)
        for x in samples {
            state.pending.append(state.started ? Double(x) - alpha * Double(state.previous) : Double(x))
            state.previous = x
            state.started = true
        }
        let frames = frameCount(samples: state.pending.count)
        guard frames > 0 else { return nil }
        let base = out.count
        out.append(contentsOf: repeatElement(0, count: frames * config.melBins))
        return (frames, base)
    }

    /// The reference twin of `process`: the same frames through `features(frame:)` (Swift, Double), for tests.
    func referenceProcess(_ samples: [Float], state: inout FrontendState, into out: inout [Float]) -> Int {
        guard let (frames, base) = preEmphasize(samples, state: &state, out: &out) else { return 0 }
        state.pending.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for t in 0..<frames {
                    features(frame: UnsafeBufferPointer(rebasing: p[(t * config.hopSize)..<(t * config.hopSize + config.windowSize)]),
                             into: UnsafeMutableBufferPointer(rebasing: o[(base + t * config.melBins)..<(base + (t + 1) * config.melBins)]),
                             scratch: &state.scratch, work: &state.fftWork)
                }
            }
        }
        state.pending.removeFirst(frames * config.hopSize)
        return frames
    }
}

/// Iterative radix-2 FFT of a real signal, returning |X[k]| (or |X[k]|²) for k = 0 ... n/2.
struct RealFFT: Sendable {
    let n: Int
    let cosTable: [Double]
    let sinTable: [Double]
    let bitReverse: [Int]

    init(size n: Int) {
        self.n = n
        cosTable = (0..<(n / 2)).map { cos(-2 * Double.pi * Double($0) / Double(n)) }
        sinTable = (0..<(n / 2)).map { sin(-2 * Double.pi * Double($0) / Double(n)) }
        let bits = n.trailingZeroBitCount
        bitReverse = (0..<n).map { i in
            var r = 0
            for b in 0..<bits where i & (1 << b) != 0 { r |= 1 << (bits - 1 - b) }
            return r
        }
    }

    /// |X[k]| (or |X[k]|²) for k = 0 ... n/2, in `work.spectrum`; buffers are reused across frames.
    func magnitudes(_ x: [Double], power: Bool, work: inout FFTWork) -> [Double] {
        if work.re.count != n {
            work.re = [Double](repeating: 0, count: n)
            work.im = [Double](repeating: 0, count: n)
            work.spectrum = [Double](repeating: 0, count: n / 2 + 1)
        }
        work.re.withUnsafeMutableBufferPointer { re in
            work.im.withUnsafeMutableBufferPointer { im in
                cosTable.withUnsafeBufferPointer { ct in
                    sinTable.withUnsafeBufferPointer { st in
                        for i in 0..<n { re[bitReverse[i]] = x[i]; im[i] = 0 }
                        var len = 2
                        while len <= n {
                            let half = len / 2, step = n / len
                            var start = 0
                            while start < n {
                                for j in 0..<half {
                                    let wr = ct[j * step], wi = st[j * step]
                                    let a = start + j, b = a + half
                                    let tr = re[b] * wr - im[b] * wi
                                    let ti = re[b] * wi + im[b] * wr
                                    re[b] = re[a] - tr; im[b] = im[a] - ti
                                    re[a] += tr; im[a] += ti
                                }
                                start += len
                            }
                            len *= 2
                        }
                        for k in 0...(n / 2) {
                            let p = re[k] * re[k] + im[k] * im[k]
                            work.spectrum[k] = power ? p : p.squareRoot()
                        }
                    }
                }
            }
        }
        return work.spectrum
    }
}

/// Reused FFT buffers of one stream.
struct FFTWork: Sendable {
    var re: [Double] = []
    var im: [Double] = []
    var spectrum: [Double] = []
}
