internal import CUSMKernels
import USMKernels

/// The frontend's frames through the C kernel `usm_logmel` (double precision, real FFT as a half-size complex FFT);
/// `LogMelFrontend.features(frame:)` is its reference twin (tested in Tests/USMModelTests/ModelTests.swift).
enum LogMelKernel {
    /// Doubles of `work` for `run`.
    static func workCount(fftSize: Int) -> Int { Int(usm_logmel_work_doubles(Int64(fftSize))) }

    /// `isa`: the tier, 8 frames per vector body; nil: the portable tier one frame at a time (the twin the tiers are
    /// tested against).
    static func run(samples: UnsafePointer<Double>, hop: Int, frames: Int, frontend f: LogMelFrontend,
                    out: UnsafeMutablePointer<Float>, work: UnsafeMutablePointer<Double>, isa: KernelISA? = .best) {
        let c = f.config
        f.window.withUnsafeBufferPointer { w in
            f.fft.cosTable.withUnsafeBufferPointer { ct in
                f.fft.sinTable.withUnsafeBufferPointer { st in
                    f.halfBitReverse.withUnsafeBufferPointer { br in
                        f.filterStart.withUnsafeBufferPointer { fs in
                            f.filterLength.withUnsafeBufferPointer { fl in
                                f.filterOffset.withUnsafeBufferPointer { fo in
                                    f.filterWeights.withUnsafeBufferPointer { fw in
                                        f.mean.withUnsafeBufferPointer { mean in
                                            f.std.withUnsafeBufferPointer { std in
                                                usm_logmel((isa ?? .portable).rawValue, isa == nil ? 1 : 8, samples, Int64(hop),
                                                           Int64(frames), Int64(c.windowSize), w.baseAddress!, Int64(c.fftSize),
                                                           ct.baseAddress!, st.baseAddress!, br.baseAddress!,
                                                           c.spectrum == "power" ? 1 : 0, Int64(c.melBins), fs.baseAddress!,
                                                           fl.baseAddress!, fo.baseAddress!, fw.baseAddress!, c.logFloor,
                                                           mean.baseAddress!, std.baseAddress!, out, work)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
