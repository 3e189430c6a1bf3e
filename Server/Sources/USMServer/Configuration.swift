import Foundation
import USMRecognizer

/// A model the server offers, by the name requests give in `model`.
public struct ModelSpec: Sendable, Equatable {
    public var name: String
    public var path: String

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// `NAME=PATH`, or a bare `PATH` (named after the file, less its extension).
    public init?(argument: String) {
        if let eq = argument.firstIndex(of: "="), eq != argument.startIndex {
            name = String(argument[..<eq])
            path = String(argument[argument.index(after: eq)...])
        } else {
            path = argument
            name = URL(fileURLWithPath: argument).deletingPathExtension().lastPathComponent
        }
        guard !name.isEmpty, !path.isEmpty else { return nil }
    }
}

/// Everything `usm-server` is started with.
public struct ServerConfiguration: Sendable {
    /// Address to listen on. Loopback by default: put TLS and any public exposure in a reverse proxy.
    public var host: String
    /// 0 picks a free port (tests read it back from `SpeechServer`'s `onRunning`).
    public var port: Int
    /// The first is the default (requests without `model`).
    public var models: [ModelSpec]
    /// How every model runs (threads, beam, activations, precisions) and its limits.
    public var options: RecognizerOptions
    /// Recognitions (uploads or stream chunks) running at once, each on a thread of the server's pool.
    public var maxConcurrent: Int
    /// Uploads that may wait for a free recognition slot; one more is refused with 429.
    public var maxQueue: Int
    /// Stream chunks that one recognition thread feeds together at most (1: each alone; see `RecognitionPool`).
    public var maxBatch: Int
    /// Request bodies over this are refused with 413.
    public var maxBodyBytes: Int
    /// Audio longer than this (per upload, per stream utterance) is refused with 400 (nil: no bound).
    public var maxAudioSeconds: Double?
    /// Seconds of audio one WebSocket stream may send in all (over its utterances).
    public var maxStreamSeconds: Double
    /// WebSocket streams open at once; one more is refused with 429.
    public var maxStreams: Int
    /// A stream that sends nothing for this many seconds is closed; so is an HTTP connection that sends nothing this
    /// long while its request is being read or between requests.
    public var idleTimeout: Double
    /// When set, `/v1/...` requires `Authorization: Bearer TOKEN`.
    public var token: String?
    /// Endpoint rules of streams (each stream may override them with `trailing_silence` and `max_utterance`).
    public var endpoint: EndpointRules
    /// Bytes of one WebSocket message (a PCM chunk).
    public var maxMessageBytes: Int

    public init(host: String = "127.0.0.1", port: Int = 8080, models: [ModelSpec], options: RecognizerOptions = RecognizerOptions(),
                maxConcurrent: Int = ProcessInfo.processInfo.activeProcessorCount, maxQueue: Int = 64, maxBatch: Int = 64,
                maxBodyBytes: Int = 64 << 20, maxAudioSeconds: Double? = 3600, maxStreamSeconds: Double = 4 * 3600,
                maxStreams: Int = 256, idleTimeout: Double = 30, token: String? = nil,
                endpoint: EndpointRules = EndpointRules(), maxMessageBytes: Int = 1 << 20) {
        self.host = host
        self.port = port
        self.models = models
        self.options = options
        self.maxConcurrent = max(1, maxConcurrent)
        self.maxQueue = max(0, maxQueue)
        self.maxBatch = max(1, maxBatch)
        self.maxBodyBytes = maxBodyBytes
        self.maxAudioSeconds = maxAudioSeconds
        self.maxStreamSeconds = maxStreamSeconds
        self.maxStreams = max(1, maxStreams)
        self.idleTimeout = idleTimeout
        self.token = token
        self.endpoint = endpoint
        self.maxMessageBytes = maxMessageBytes
    }

    /// The recognizer options with the server's audio bound applied.
    var recognizerOptions: RecognizerOptions {
        var o = options
        if let maxAudioSeconds { o.limits.maxAudioSeconds = maxAudioSeconds }
        return o
    }
}
