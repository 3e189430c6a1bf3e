import ArgumentParser
import USMCommandLine
import Foundation
import USMAudio
import USMFormat
import USMKernels
import USMModel
import USMRecognizer
import USMTensor

/// Writes a random-weight model; run as a child process so the parent's peak RSS reflects loading and running only.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_synth", shouldDisplay: false)
    @Option var config: String
    @Option var recipe: String
    @Option var scaleFormat = "int8"
    @Option var blankBias: Float = 0
    @Argument var output: String

    func run() throws {
        guard let format = ScaleFormat(name: scaleFormat) else { throw ValidationError("bad scale format") }
        try ModelPacker.synthesize(named: config, recipe: try Recipe.named(recipe), scaleFormat: format,
                                   blockSize: nil, seed: 1, level: 3, blankBias: blankBias).write(to: output)
    }
}

struct LatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Load time, offline RTF, streaming chunk latency, per-stage and per-layer-type time, peak RSS.")

    @Option(help: "Model file.") var model: String?
    @Option(help: "Or a named architecture with random weights: \(NamedArchitecture.names.joined(separator: ", ")).")
    var config: String?
    @Option(help: "Recipe for --config.") var recipe = "exp5"
    @Option(help: "Scale format for --config: f32, int8, int8-row.") var scaleFormat = "int8"
    @Option(help: ArgumentHelp("Bias of the blank logit in the random joint of --config.",
                               discussion: "A random joint almost never scores blank highest, so greedy search emits the most symbols per frame on every frame (0, the default: the decoder's worst case); at USM-1B shape 4.2 makes every frame blank (its best case; trained models emit 0.1-0.4 symbols per frame)."))
    var blankBias: Float = 0
    @Option(help: "Seconds of synthetic audio.") var seconds = 10.0
    @Option(help: "Or an audio file.") var audio: String?
    @OptionGroup var recognizer: RecognizerFlags
    @Flag(help: "Also run streaming and report per-chunk latency.") var streaming = false
    @Option(help: "Streaming chunk length in milliseconds.") var chunkMs = 320
    @Option(help: "Compare with the same architecture at f32 in the same run (only 'f32').") var vs: String?
    @Option(help: "Offline runs (the median is reported).") var runs = 3
    @Flag(help: "JSON instead of markdown.") var json = false

    struct Measurement: Codable {
        var label: String
        var fileBytes: Int
        var memoryBytes: Int
        var loadSeconds: Double
        var loadMBps: Double
        var audioSeconds: Double
        var offlineSeconds: Double
        var rtf: Double
        var stages: StageTimings
        var chunkMs: Int?
        var chunkP50: Double?
        var chunkP95: Double?
        var chunkMax: Double?
        var firstPartialSeconds: Double?
        /// audio seconds after which every encoder layer has frames to run (the look-ahead of all layers)
        var steadyAfterSeconds: Double?
        /// chunk latency percentiles over the chunks that start after `steadyAfterSeconds` (nil: none did)
        var steadyP50: Double?, steadyP95: Double?, steadyChunks: Int?
        /// symbols the offline run emitted per encoder frame
        var symbolsPerFrame = 0.0
        var peakRSS: Int
        /// resident bytes just before loading and right after (what the loaded model itself costs)
        var rssBeforeLoad = 0, rssAfterLoad = 0, rssAfterOffline = 0, peakAfterLoad = 0
        /// resident bytes when streaming starts (after the heap gave back what the offline runs freed)
        var rssBeforeStreaming: Int?
        /// peaks within the offline runs and within the streaming run (Linux only)
        var peakOffline: Int?, peakStreaming: Int?
        var kernels: [String: Int]
    }

    func validate() throws {
        guard (model == nil) != (config == nil) else { throw ValidationError("give --model FILE or --config NAME") }
        guard vs == nil || vs == "f32" else { throw ValidationError("--vs takes f32") }
        guard runs >= 1, chunkMs >= 10 else { throw ValidationError("--runs >= 1, --chunk-ms >= 10") }
    }

    func run() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("usm-bench-\(getpid())")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        var path = model ?? ""
        var f32Path: String?
        if let config {
            path = tmp.appendingPathComponent("\(config)-\(recipe).usm").path
            try synthInChild(config: config, recipe: recipe, format: scaleFormat, to: path)
            if vs == "f32" {
                f32Path = tmp.appendingPathComponent("\(config)-exp0.usm").path
                try synthInChild(config: config, recipe: "exp0", format: "f32", to: f32Path!)
            }
        } else if vs == "f32" {
            // the same model with every tensor expanded to f32
            let c = try Container.read(path: path)
            var w = ContainerWriter(metadata: c.metadata, level: nil)
            for n in c.tensorNames {
                let t = c.tensor(n)!
                try w.add(n, try PackedTensor(f32: t.dequantized(), shape: t.shape))
            }
            f32Path = tmp.appendingPathComponent("f32.usm").path
            try w.write(to: f32Path!)
        }
        let options = recognizer.options
        let samples: [Float]
        if let audio {
            samples = try Audio.load(path: audio, sampleRate: 16000).samples
        } else {
            samples = syntheticSpeech(seconds: seconds)
        }
        let synthLabel = "\(config ?? "") \(recipe)" + (blankBias != 0 ? " (blank bias \(blankBias))" : "")
        var results = [try measure(path: path, label: model.map { ($0 as NSString).lastPathComponent } ?? synthLabel,
                                   options: options, samples: samples)]
        if let f32Path { results.append(try measure(path: f32Path, label: "f32", options: options, samples: samples)) }
        if json { printJSON(results); return }
        report(results)
    }

    func synthInChild(config: String, recipe: String, format: String, to path: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        p.arguments = ["_synth", "--config", config, "--recipe", recipe, "--scale-format", format,
                       "--blank-bias", "\(blankBias)", path]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ValidationError("synthesizing \(config) \(recipe) failed") }
    }

    func measure(path: String, label: String, options: RecognizerOptions, samples: [Float]) throws -> Measurement {
        let progress = ProgressLine()
        progress.show("\(label): loading")
        let clock = ContinuousClock()
        let rss0 = currentRSS()
        let t0 = clock.now
        let r = try Recognizer(path: path, options: options)
        let load = (clock.now - t0).seconds
        let rss1 = currentRSS(), peak1 = peakRSS()
        var offline: [Transcript] = []
        let canReset = resetPeakRSS()
        for i in 0..<runs {
            progress.show("\(label): offline run \(i + 1)/\(runs)")
            offline.append(try r.transcribe(samples: samples, sampleRate: 16000))
        }
        let best = offline.sorted { $0.timings.total < $1.timings.total }[offline.count / 2]
        var m = Measurement(
            label: label, fileBytes: r.loadReport.fileBytes, memoryBytes: r.loadReport.memoryBytes, loadSeconds: load,
            loadMBps: Double(r.loadReport.fileBytes) / 1e6 / load, audioSeconds: best.timings.audioSeconds,
            offlineSeconds: best.timings.total, rtf: best.timings.realTimeFactor, stages: best.timings,
            peakRSS: 0, kernels: r.loadReport.kernels)
        m.symbolsPerFrame = Double(best.tokens.count) / max(best.timings.audioSeconds / r.model.secondsPerFrame, 1)
        (m.rssBeforeLoad, m.rssAfterLoad, m.rssAfterOffline, m.peakAfterLoad) = (rss0, rss1, currentRSS(), peak1)
        if canReset { m.peakOffline = phasePeakRSS() }
        if streaming, r.model.streaming == .exact {
            // what the offline runs freed but the C heap kept is given back first, so the streaming peak is the
            // stream's own and not the offline runs' leftovers (30 s of USM-1B audio: 6 MB)
            Heap.releaseFree()
            m.rssBeforeStreaming = currentRSS()
            if canReset { resetPeakRSS() }
            progress.show("\(label): streaming")
            let stream = try r.makeStream()
            let chunk = 16 * chunkMs
            var latencies: [Double] = []
            var firstPartial: Double?
            let start = clock.now
            for s in stride(from: 0, to: samples.count, by: chunk) {
                let c0 = clock.now
                try stream.accept(samples: Array(samples[s..<min(s + chunk, samples.count)]))
                latencies.append((clock.now - c0).seconds)
                if firstPartial == nil, !stream.partial.tokens.isEmpty { firstPartial = (clock.now - start).seconds }
            }
            let c0 = clock.now
            stream.finish()
            latencies.append((clock.now - c0).seconds)
            m.chunkMs = chunkMs
            m.chunkP50 = percentile(latencies, 0.5)
            m.chunkP95 = percentile(latencies, 0.95)
            m.chunkMax = latencies.max()
            m.firstPartialSeconds = firstPartial
            // before the look-ahead of every layer has filled, the deeper layers have nothing to run and a chunk
            // costs less than it does from then on
            let fill = r.model.lookAheadSeconds
            let steady = latencies.dropLast().enumerated().filter { Double($0.offset * chunkMs) / 1000 >= fill }.map(\.element)
            m.steadyAfterSeconds = fill
            if !steady.isEmpty {
                (m.steadyP50, m.steadyP95, m.steadyChunks) = (percentile(steady, 0.5), percentile(steady, 0.95), steady.count)
            }
            if canReset { m.peakStreaming = phasePeakRSS() }
        }
        progress.clear()
        m.peakRSS = peakRSS()
        return m
    }

    func phases(_ m: Measurement) -> String {
        var s: [String] = []
        if let p = m.peakOffline { s.append("\(f(Double(p) / 1e6, 0)) during the offline runs") }
        if let p = m.peakStreaming {
            s.append("\(f(Double(p) / 1e6, 0)) during streaming" + (m.rssBeforeStreaming.map { ", from \(f(Double($0) / 1e6, 0)) at its start" } ?? ""))
        }
        return s.isEmpty ? "" : " (peak " + s.joined(separator: ", ") + ")"
    }

    func report(_ ms: [Measurement]) {
        let ms0 = ms[0]
        print("## Latency (\(recognizer.threads) thread\(recognizer.threads == 1 ? "" : "s"), activations \(recognizer.activations.rawValue), context \(recognizer.context.rawValue), positions \(recognizer.positions.rawValue), search \(recognizer.beam == 1 ? "greedy" : "beam \(recognizer.beam)"), \(f(ms0.audioSeconds, 2)) s of \(audio ?? "synthetic speech-like audio"))\n")
        print("| model | file MB | memory MB | load s | load MB/s | offline s | RTF | chunk p50 / p95 / max ms | peak RSS MB | RSS / memory |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for m in ms {
            let chunk = m.chunkP50.map { "\(f($0 * 1000, 1)) / \(f(m.chunkP95! * 1000, 1)) / \(f(m.chunkMax! * 1000, 1)) (\(m.chunkMs!) ms chunks)" } ?? "-"
            print("| \(m.label) | \(f(Double(m.fileBytes) / 1e6, 1)) | \(f(Double(m.memoryBytes) / 1e6, 1)) | \(f(m.loadSeconds)) | \(f(m.loadMBps, 0)) | \(f(m.offlineSeconds)) | \(f(m.rtf, 4)) | \(chunk) | \(f(Double(m.peakRSS) / 1e6, 0)) | \(f(Double(m.peakRSS) / Double(max(m.memoryBytes, 1)), 2)) |")
        }
        print("\nPer stage (offline, seconds; the encoder split by layer type):\n")
        print("| model | resample | features | encoder | subsampling | ffn | attention | conv | decoder | symbols / frame | total |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for m in ms {
            let s = m.stages, l = s.layerTypes
            print("| \(m.label) | \(f(s.resample)) | \(f(s.features)) | \(f(s.encoder)) | \(f(l.subsampling)) | \(f(l.ffn)) | \(f(l.attention)) | \(f(l.conv)) | \(f(s.decoder)) | \(f(m.symbolsPerFrame, 2)) | \(f(s.total)) |")
        }
        if ms.count == 2 {
            let (a, b) = (ms[0], ms[1])
            print("\n\(a.label) vs \(b.label): \(f(b.offlineSeconds / a.offlineSeconds, 2))x faster offline, \(f(Double(b.memoryBytes) / Double(a.memoryBytes), 2))x smaller in memory, \(f(Double(b.fileBytes) / Double(a.fileBytes), 2))x smaller on disk, load \(f(b.loadSeconds / a.loadSeconds, 2))x faster")
            print("(peak RSS is the process maximum so far: the f32 row includes the packed model's run)")
        }
        if let fp = ms0.firstPartialSeconds { print("\nfirst partial result after \(f(fp)) s of streaming compute") }
        for m in ms {
            guard let fill = m.steadyAfterSeconds else { continue }
            if let p50 = m.steadyP50, let p95 = m.steadyP95, let n = m.steadyChunks {
                print("\n\(m.label) steady state (the \(n) chunks from \(f(fill, 1)) s of audio on, when every layer runs): chunk p50 \(f(p50 * 1000, 1)) / p95 \(f(p95 * 1000, 1)) ms")
            } else {
                print("\n\(m.label): no chunk reached the steady state (every layer running needs more than \(f(fill, 1)) s of audio here), so the chunk latencies above are lower than a long stream's; use --seconds")
            }
        }
        for m in ms {
            print("\n\(m.label) resident MB: \(f(Double(m.rssBeforeLoad) / 1e6, 0)) before loading (runtime, audio), \(f(Double(m.rssAfterLoad) / 1e6, 0)) after (model \(f(Double(m.rssAfterLoad - m.rssBeforeLoad) / 1e6, 0))), \(f(Double(m.rssAfterOffline) / 1e6, 0)) after the offline runs; peak \(f(Double(m.peakAfterLoad) / 1e6, 0)) by the end of loading, \(f(Double(m.peakRSS) / 1e6, 0)) in all" + phases(m))
        }
        print("\nkernels: " + ms0.kernels.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", "))
    }
}
