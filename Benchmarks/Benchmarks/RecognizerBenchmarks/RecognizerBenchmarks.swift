import Benchmark
import Foundation
import USMAudio
import USMRecognizer

/// End to end on the bundled model and sample (Models/): loading, offline recognition, and a real-time stream fed
/// in 160 ms chunks, one kernel thread. The committed thresholds (Thresholds/) are those of the machine that wrote them.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident],
        maxDuration: .seconds(3), maxIterations: 200,
        // wall clock: only a slowdown beyond this VM's minute-to-minute drift (1.3-1.7x) is flagged; allocations
        // and resident memory are steadier, so a smaller change shows
        // (each compared at p90, as `thresholds check` does)
        thresholds: [.wallClock: .init(relative: [.p90: 100.0]), .mallocCountTotal: .init(relative: [.p90: 10.0]),
                     .peakMemoryResident: .init(relative: [.p90: 20.0])])

    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    let model = root.appendingPathComponent("Models/usm-infer-default.usm").path
    let sample = root.appendingPathComponent("Models/sample.wav").path
    let options = RecognizerOptions(threads: 1)
    let recognizer = try! Recognizer(path: model, options: options)
    let reader = try! AudioFileReader(path: sample)
    let audio = try! reader.readAll()
    let rate = reader.sampleRate

    Benchmark("load-bundled-model") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try Recognizer(path: model, options: options)) }
    }
    Benchmark("transcribe-bundled-sample-offline") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try recognizer.transcribe(samples: audio, sampleRate: rate))
        }
    }
    Benchmark("stream-bundled-sample-160ms-chunks") { benchmark in
        let chunk = rate * 160 / 1000
        for _ in benchmark.scaledIterations {
            let stream = try recognizer.makeStream(inputSampleRate: rate)
            var i = 0
            while i < audio.count {
                try stream.accept(samples: Array(audio[i..<min(i + chunk, audio.count)]))
                i += chunk
            }
            blackHole(stream.finish())
        }
    }
}
