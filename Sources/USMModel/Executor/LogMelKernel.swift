internal import CUSMKernels
import USMKernels

/// The frontend's frames through the C kernel `usm_logmel` (double precision, real FFT as a half-size complex FFT);
/// `LogMelFrontend.features(frame:)` is its reference twin (tested in Tests/USMModelTests/ModelTests.swift).
enum LogMelKernel {
    /// Doubles of `work` for `run`.
    static func workCount(fftSize: Int) -> Int { Int(usm_logmel_work_doubles(Int64(fftSize))) }

    /// `isa`: the tier of the batched kernel (`usm_logmel`), or nil for its scalar twin (`usm_logmel_scalar`).
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
                                                let (power, mels, win, fft) = (Int32(c.spectrum == "power" ? 1 : 0), Int64(c.melBins),
                                                                               Int64(c.windowSize), Int64(c.fftSize))
                                                if let isa {
                                                    usm_logmel(isa.rawValue, samples, Int64(hop), Int64(frames), win, w.baseAddress!, fft,
                                                               ct.baseAddress!, st.baseAddress!, br.baseAddress!, power, mels,
                                                               fs.baseAddress!, fl.baseAddress!, fo.baseAddress!, fw.baseAddress!,
                                                               c.logFloor, mean.baseAddress!, std.baseAddress!, out, work)
                                                } else {
                                                    usm_logmel_scalar(samples, Int64(hop), Int64(frames), win, w.baseAddress!, fft,
                                                                      ct.baseAddress!, st.baseAddress!, br.baseAddress!, power, mels,
                                                                      fs.baseAddress!, fl.baseAddress!, fo.baseAddress!, fw.baseAddress!,
                                                                      c.logFloor, mean.baseAddress!, std.baseAddress!, out, work)
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
}
