import ArgumentParser
import USMCommandLine
import Foundation
import Logging
import USMRecognizer
import USMServer

@main
struct USMServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usm-server",
        abstract: "Serve speech recognition over HTTP (OpenAI's /v1/audio/transcriptions) and WebSocket streams.",
        discussion: """
            Routes: POST /v1/audio/transcriptions, GET /v1/audio/stream (WebSocket), GET /v1/models, GET /health, \
            GET /ready, GET /metrics. Plain HTTP on loopback by default: put TLS in a reverse proxy. SIGTERM or SIGINT \
            drains: new requests get 503, requests and streams in flight finish. Exit codes: 0 after a drain, 64 bad \
            arguments, 65 invalid model data, 66 model missing or unreadable, 70 internal error (e.g. the port is taken).
            """,
        version: "0.1.0")

    @Option(help: "Address to listen on (loopback by default).") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8080
    @Option(name: .customLong("model"), help: ArgumentHelp("A model: NAME=PATH (repeatable; the first is the default).",
                                                          valueName: "NAME=PATH"))
    var models: [String] = []
    @OptionGroup var recognizer: RecognizerFlags
    @Option(help: "Recognitions running at once (default: the number of cores).")
    var maxConcurrent = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Uploads that may wait for a recognition slot; more are refused with 429.") var maxQueue = 64
    @Option(help: "Stream chunks one recognition thread feeds together at most (the encoder runs over all of them at once; 1: each alone).")
    var maxBatch = 64
    @Option(help: "Largest request body in bytes (413 above).") var maxBodyBytes = 64 << 20
    @Option(help: "Longest audio of one upload or stream utterance in seconds (0: no bound).") var maxAudioSeconds = 3600.0
    @Option(help: "Longest WebSocket stream in seconds of audio, all utterances together.") var maxStreamSeconds = 14400.0
    @Option(help: "WebSocket streams open at once; more are refused with 429.") var maxStreams = 256
    @Option(help: "Seconds a WebSocket stream may stay silent (no message), or an HTTP connection idle or stalled in its request body, before it is closed.")
    var idleTimeout = 30.0
    @Option(help: "Seconds without a new token that end a stream's utterance (0: never).") var endpointSilence = 1.2
    @Option(help: "Seconds of audio that end a stream's utterance (0: no bound).") var maxUtterance = 30.0
    @Option(help: "Require Authorization: Bearer TOKEN on /v1/ routes (default: env USM_SERVER_TOKEN, else none).")
    var token: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard maxConcurrent >= 1 && maxConcurrent <= 1024 else { throw ValidationError("--max-concurrent must be in 1...1024") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must be 0 or more") }
        guard maxBatch >= 1 && maxBatch <= 4096 else { throw ValidationError("--max-batch must be in 1...4096") }
        guard maxBodyBytes >= 1024 else { throw ValidationError("--max-body-bytes must be 1024 or more") }
        guard maxAudioSeconds >= 0, maxStreamSeconds > 0, idleTimeout > 0, endpointSilence >= 0, maxUtterance >= 0 else {
            throw ValidationError("durations must be positive (0 where it means no bound)")
        }
        guard maxStreams >= 1 else { throw ValidationError("--max-streams must be 1 or more") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level '\(logLevel)' is not a log level") }
        var names = Set<String>()
        for m in models {
            guard let spec = ModelSpec(argument: m) else { throw ValidationError("--model '\(m)' is not NAME=PATH") }
            guard names.insert(spec.name).inserted else { throw ValidationError("--model name '\(spec.name)' is given twice") }
        }
    }

    func run() async throws {
        var logger = Logger(label: "usm-server")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var specs = models.compactMap(ModelSpec.init(argument:))
        if specs.isEmpty {
            guard let path = DefaultModel.locate() else {
                logger.critical("""
                    no bundled default model found (looked for \(DefaultModel.candidates().joined(separator: ", "))); \
                    set USM_INFER_MODEL or pass --model NAME=PATH
                    """)
                throw ExitCode(66)
            }
            specs = [ModelSpec(name: "default", path: path)]
        }
        // a missing model fails the start at once (66); one that cannot load ends the server with its exit status
        // (65 invalid data) before /ready ever says 200: a ready server serves every model it was given
        for s in specs where !FileManager.default.isReadableFile(atPath: s.path) {
            logger.critical("model \(s.name): \(s.path) is missing or unreadable")
            throw ExitCode(66)
        }
        let config = ServerConfiguration(
            host: host, port: port, models: specs, options: recognizer.options, maxConcurrent: maxConcurrent, maxQueue: maxQueue,
            maxBatch: maxBatch,
            maxBodyBytes: maxBodyBytes, maxAudioSeconds: maxAudioSeconds > 0 ? maxAudioSeconds : nil,
            maxStreamSeconds: maxStreamSeconds, maxStreams: maxStreams, idleTimeout: idleTimeout,
            token: token ?? ProcessInfo.processInfo.environment["USM_SERVER_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
            endpoint: EndpointRules(trailingSilence: endpointSilence > 0 ? endpointSilence : nil,
                                    maxUtterance: maxUtterance > 0 ? maxUtterance : nil))
        let server = SpeechServer(configuration: config, logger: logger)
        do {
            try await server.run()
        } catch let e as RecognizerError {
            logger.critical("cannot load a model: \(e)")
            throw ExitCode(e.exitStatus.rawValue)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(70)
        }
    }
}

/// Where the bundled default model lives (as `usm-infer` looks): env USM_INFER_MODEL, next to the binary, then
/// Models/ of the source checkout (the parent of this package).
enum DefaultModel {
    static let fileName = "usm-infer-default.usm"

    static func candidates() -> [String] {
        var c: [String] = []
        if let env = ProcessInfo.processInfo.environment["USM_INFER_MODEL"], !env.isEmpty { c.append(env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        c.append(exe.appendingPathComponent(fileName).path)
        // Server/Sources/usm-server/this file -> the repository root
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        c.append(root.appendingPathComponent("Models").appendingPathComponent(fileName).path)
        return c
    }

    static func locate() -> String? { candidates().first { FileManager.default.isReadableFile(atPath: $0) } }
}
