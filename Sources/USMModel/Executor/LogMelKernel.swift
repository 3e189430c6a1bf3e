internal import CUSMKernels

/// The frontend's frames through the C kernel `usm_logmel` (double precision, real FFT as a half-size complex FFT);
/// `LogMelFrontend.features(frame:)` is its reference twin (tested in Tests/USMModelTests/ModelTests.swift).
enum LogMelKernel {
    static func run(samples: UnsafePointer<Double>, hop: Int, frames: Int, frontend f: LogMelFrontend,
                    out: UnsafeMutablePointer<Float>, work: UnsafeMutablePointer<Double>) {
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
                                                usm_logmel(samples, Int64(hop), Int64(frames), Int64(c.windowSize), w.baseAddress!,
                                                           Int64(c.fftSize), ct.baseAddress!, st.baseAddress!, br.baseAddress!,
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
