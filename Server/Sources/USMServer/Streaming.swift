import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket
import ServiceLifecycle
import USMRecognizer

/// The query of `GET /v1/audio/stream`: `model`, `sample_rate`, `encoding`, and endpoint overrides.
struct StreamParameters: Sendable {
    enum Encoding: String, Sendable { case pcmS16LE = "pcm_s16le", pcmF32LE = "pcm_f32le" }

    var model: String
    var recognizer: Recognizer
    var sampleRate: Int
    var encoding: Encoding
    var endpoint: EndpointRules
    /// `acks=1`: an `ack` message after each binary message is recognized (for clients that measure latency)
    var acks: Bool

    /// Checks everything an upgrade needs, in the order the HTTP fallback answers them.
    init(request: Request, state: ServerState) throws(APIError) {
        if let e = state.unavailable() { throw e }
        let q = request.uri.queryParameters
        model = q["model"].map(String.init) ?? state.defaultModel
        guard let r = state.recognizer(model) else { throw APIError.unknownModel(model, known: state.modelNames) }
        recognizer = r
        let rateText = q["sample_rate"].map(String.init) ?? "\(r.sampleRate)"
        let limits = r.options.limits.audio
        guard let rate = Int(rateText), limits.check(sampleRate: rate) == nil else {
            throw APIError.badRequest("sample_rate '\(rateText)' is not a supported rate in Hz", param: "sample_rate")
        }
        sampleRate = rate
        let enc = q["encoding"].map(String.init) ?? Encoding.pcmS16LE.rawValue
        guard let e = Encoding(rawValue: enc) else {
            throw APIError.badRequest("encoding '\(enc)' is not pcm_s16le or pcm_f32le", param: "encoding")
        }
        encoding = e
        endpoint = state.configuration.endpoint
        func seconds(_ key: Substring, _ current: Double?) throws(APIError) -> Double? {
            guard let v = q[key].map(String.init) else { return current }
            if v == "off" || v == "none" { return nil }
            guard let s = Double(v), s.isFinite, s > 0 else {
                throw APIError.badRequest("\(key) '\(v)' is not a positive number of seconds or 'off'", param: String(key))
            }
            return s
        }
        acks = ["1", "true"].contains(q["acks"].map(String.init) ?? "")
        endpoint.trailingSilence = try seconds("trailing_silence", endpoint.trailingSilence)
        endpoint.maxUtterance = try seconds("max_utterance", endpoint.maxUtterance)
        if state.openStreams >= state.configuration.maxStreams { throw APIError.queueFull() }
    }
}

/// PCM bytes to samples in [-1, 1], keeping a partial sample between chunks.
struct PCMDecoder {
    let encoding: StreamParameters.Encoding
    var carry: [UInt8] = []

    mutating func decode(_ buffer: ByteBuffer) -> [Float] {
        var bytes = carry
        bytes.append(contentsOf: buffer.readableBytesView)
        let width = encoding == .pcmS16LE ? 2 : 4
        let whole = bytes.count / width * width
        carry = Array(bytes[whole...])
        var out = [Float](repeating: 0, count: whole / width)
        bytes.withUnsafeBytes { raw in
            for i in out.indices {
                if encoding == .pcmS16LE {
                    out[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: Int16.self))) / 32768
                } else {
                    out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                }
            }
        }
        return out
    }
}

/// A `RecognitionStream` and what the session knows of it. Touched only by pool jobs that the session awaits one at
/// a time (the stream is used from one thread at a time, as the library asks).
final class StreamBox: @unchecked Sendable {
    let stream: RecognitionStream
    /// utterances ended so far, and the seconds of input before the current one
    var utterance = 0
    var offset = 0.0
    var lastPartial = ""

    init(_ stream: RecognitionStream) { self.stream = stream }
}

/// One WebSocket stream: binary PCM in; `partial`, `endpoint`, `final` and `error` JSON text messages out.
struct StreamSession {
    let state: ServerState
    let parameters: StreamParameters
    let logger: Logger

    /// `audio`: a binary message and when it arrived
    enum Event: Sendable { case audio(ByteBuffer, ContinuousClock.Instant), finish, closed, idle, shutdown, bad(String) }

    /// What a run of chunks gave: the final of each utterance an endpoint ended, with the chunk it ended at, and
    /// the partial after the last chunk where it changed.
    struct Step: Sendable {
        var partial: String?
        var endpoints: [(chunk: Int, final: [String: SendableJSON])] = []
    }

    /// The error as an `error` message, then a close with `code`; without one, 1013 (try again later) when the
    /// server is at capacity or not ready, else 1008 (policy violation): a stream that cannot start.
    static func refuse(_ outbound: WebSocketOutboundWriter, _ error: APIError, code: WebSocketErrorCode? = nil,
                       metrics: ServerMetrics) async throws {
        var body = error.body
        body["type"] = "error"
        try await outbound.write(.text(jsonText(body)))
        metrics.streamMessage(kind: "error")
        try await outbound.close(code ?? (error.retryLater ? .unknown(1013) : .policyViolation), reason: String(error.message.prefix(100)))
    }

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        guard state.openStream() else {
            try await Self.refuse(outbound, .queueFull(), metrics: state.metrics)
            return
        }
        defer { state.closeStream() }
        let box: StreamBox
        do {
            let s = try parameters.recognizer.makeStream(endpoint: parameters.endpoint, inputSampleRate: parameters.sampleRate)
            box = StreamBox(s)
        } catch {
            try await fail(outbound, APIError.recognition(error), code: .unacceptableData)
            return
        }
        let sink = EventQueue()
        let lastActivity = NIOLockedValueBox(ContinuousClock.now)
        let maxMessage = state.configuration.maxMessageBytes
        let idle = state.configuration.idleTimeout

        let drainKey = state.onDrain { sink.yield(.shutdown) }
        defer { state.removeDrain(drainKey) }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // reader: client messages become events; the end of the connection is `closed`
                    do {
                        for try await message in inbound.messages(maxSize: maxMessage) {
                            lastActivity.withLockedValue { $0 = .now }
                            switch message {
                            case .binary(let b): sink.yield(.audio(b, .now))
                            case .text(let t):
                                let obj = (try? JSONSerialization.jsonObject(with: Data(t.utf8))) as? [String: Any]
                                if obj?["type"] as? String == "finish" { sink.yield(.finish) } else {
                                    sink.yield(.bad("text messages must be {\"type\":\"finish\"}"))
                                }
                            }
                        }
                    } catch {}
                    sink.yield(.closed)
                }
                group.addTask {
                    // idle watchdog
                    let tick = Duration.milliseconds(Int(max(0.05, min(1, idle / 4)) * 1000))
                    while true {
                        try await Task.sleep(for: tick)
                        let quiet = (ContinuousClock.now - lastActivity.withLockedValue { $0 }).inSeconds
                        if quiet > idle { sink.yield(.idle); return }
                    }
                }
                try await consume(sink, box: box, outbound: outbound)
                sink.finish()
                group.cancelAll()
            }
        }
    }

    /// Handles events until the stream ends. The audio messages that arrived while the previous ones were being
    /// recognized go to the pool as one job (a server under load takes one job per backlog, not per message). In
    /// it, consecutive chunks among which the library rules out an endpoint (`endpointPossible(withinNext:)`) are
    /// accepted in one call (larger matrix products), the others one by one, so results and endpoints are those of
    /// the chunks sent one at a time; then an ack per chunk, endpoint and final messages where they fell, and one
    /// partial for the whole run.
    private func consume(_ events: EventQueue, box: StreamBox, outbound: WebSocketOutboundWriter) async throws {
        var decoder = PCMDecoder(encoding: parameters.encoding)
        let maxSamples = Int(state.configuration.maxStreamSeconds * Double(parameters.sampleRate))
        var total = 0
        var chunks = 0
        let model = parameters.model
        let metrics = state.metrics
        for await batch in events.batches {
            var i = 0
            while i < batch.count {
                let event = batch[i]
                i += 1
                switch event {
                case .audio(let first, let firstArrival):
                    var pieces = [decoder.decode(first)]
                    var arrivals = [firstArrival]
                    while i < batch.count, case .audio(let b, let arrival) = batch[i] {
                        pieces.append(decoder.decode(b))
                        arrivals.append(arrival)
                        i += 1
                    }
                    let run = pieces
                    let rate = Double(parameters.sampleRate)
                    let seconds = run.map { Double($0.count) / rate }
                    var ends: [Int] = []
                    for p in run {
                        total += p.count
                        ends.append(total)
                    }
                    if total > maxSamples {
                        try await fail(outbound, APIError.badRequest("the stream is longer than \(state.configuration.maxStreamSeconds) s (--max-stream-seconds)",
                                                                     code: "stream_too_long"), code: .policyViolation)
                        return
                    }
                    // the chunks from k on go in as one call while no endpoint can fall among them (the encoder's
                    // frames and the greedy tokens do not depend on how input is cut); returns the end of that run
                    @Sendable func piece(from k: Int) -> Int {
                        var j = k + 1, span = seconds[k]
                        while j < run.count, !box.stream.endpointPossible(withinNext: span + seconds[j]) {
                            span += seconds[j]
                            j += 1
                        }
                        return j
                    }
                    @Sendable func joined(_ r: Range<Int>) -> [Float] { r.count == 1 ? run[r.lowerBound] : Array(run[r].joined()) }
                    // the first piece is fed by the pool, with the pieces of other streams waiting then
                    let firstEnd = piece(from: 0)
                    let step: Step
                    do {
                        let chunk = RecognitionPool.Chunk(stream: box.stream, samples: joined(0..<firstEnd))
                        step = try await state.pool.run(mayExceedQueue: true, feeding: chunk) { (fed: RecognizerError?) throws -> Step in
                            if let fed { throw fed }
                            var step = Step()
                            var end = firstEnd  // chunks fed so far
                            while true {
                                if box.stream.isEndpoint {
                                    step.endpoints.append((chunk: end - 1, final: Self.final(box, last: false, metrics: metrics, model: model)))
                                }
                                guard end < run.count else { break }
                                let next = piece(from: end)
                                try box.stream.accept(samples: joined(end..<next))
                                end = next
                            }
                            let text = box.stream.partial.text
                            if text != box.lastPartial {
                                box.lastPartial = text
                                step.partial = text
                            }
                            return step
                        }
                    } catch let e as RecognizerError {
                        try await fail(outbound, APIError.recognition(e), code: .unacceptableData)
                        return
                    } catch {
                        try await fail(outbound, APIError.notReady("the server is shutting down"), code: .goingAway)
                        return
                    }
                    let recognized = ContinuousClock.now
                    for arrival in arrivals { metrics.chunkRecognized(after: recognized - arrival) }
                    for k in run.indices {
                        if parameters.acks {
                            try await send(outbound, ["type": "ack", "chunk": chunks, "seconds": ms(Double(ends[k]) / rate)])
                        }
                        chunks += 1
                        for (chunk, final) in step.endpoints where chunk == k {
                            let u = final["utterance"]?.value as? Int ?? 0
                            try await send(outbound, ["type": "endpoint", "utterance": u, "time": final["end"]?.value ?? 0])
                            metrics.streamMessage(kind: "endpoint")
                            try await send(outbound, final.mapValues(\.value))
                            metrics.streamMessage(kind: "final")
                        }
                    }
                    if let p = step.partial {
                        try await send(outbound, ["type": "partial", "text": p, "utterance": box.utterance])
                        metrics.streamMessage(kind: "partial")
                    }
                case .finish, .shutdown, .idle:
                    let final = try await state.pool.run(mayExceedQueue: true) { () -> [String: SendableJSON] in
                        Self.final(box, last: true, metrics: metrics, model: model)
                    }
                    try await send(outbound, final.mapValues(\.value))
                    metrics.streamMessage(kind: "final")
                    switch event {
                    case .idle: try await outbound.close(.policyViolation, reason: "idle timeout")
                    case .shutdown: try await outbound.close(.goingAway, reason: "server shutting down")
                    default: try await outbound.close(.normalClosure, reason: nil)
                    }
                    return
                case .bad(let m):
                    try await fail(outbound, APIError.badRequest(m), code: .unacceptableData)
                    return
                case .closed:
                    return  // the client went away: its stream ends unfinished, nothing to send
                }
            }
        }
    }

    /// Ends the current utterance: its final result, with times from the start of the stream; then resets.
    static func final(_ box: StreamBox, last: Bool, metrics: ServerMetrics, model: String) -> [String: SendableJSON] {
        let t = box.stream.finish()
        metrics.recognized(model: model, kind: "stream", timings: t.timings)
        let start = box.offset
        let end = box.offset + t.timings.audioSeconds
        let msg: [String: SendableJSON] = [
            "type": .init("final"), "text": .init(t.text), "words": .init(wordsJSON(t.words, offset: start)),
            "utterance": .init(box.utterance), "start": .init(ms(start)), "end": .init(ms(end)), "last": .init(last),
        ]
        box.utterance += 1
        box.offset = end
        box.lastPartial = ""
        box.stream.reset()
        return msg
    }

    private func send(_ outbound: WebSocketOutboundWriter, _ object: [String: Any]) async throws {
        try await outbound.write(.text(jsonText(object)))
    }

    private func fail(_ outbound: WebSocketOutboundWriter, _ error: APIError, code: WebSocketErrorCode) async throws {
        try await Self.refuse(outbound, error, code: code, metrics: state.metrics)
    }

    private func metrics(kind: String) { state.metrics.streamMessage(kind: kind) }
}

/// A session's events in arrival order. Producers add events one at a time; the session takes everything that has
/// arrived whenever it is ready for more (`batches`), so a backlog is handled in one go.
final class EventQueue: Sendable {
    private let pending = NIOLockedValueBox<[StreamSession.Event]>([])
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init() {
        // one wake-up is enough whatever arrived: the consumer takes all of it
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func yield(_ event: StreamSession.Event) {
        pending.withLockedValue { $0.append(event) }
        wake.yield()
    }

    func finish() { wake.finish() }

    /// Every event that arrived since the last batch, once there is at least one; ends after `finish()`.
    var batches: AsyncCompactMapSequence<AsyncStream<Void>, [StreamSession.Event]> {
        wakeups.compactMap { [pending] in
            let batch = pending.withLockedValue { p -> [StreamSession.Event] in
                defer { p.removeAll(keepingCapacity: true) }
                return p
            }
            return batch.isEmpty ? nil : batch
        }
    }
}

/// A JSON value built on a pool thread and sent from the session (plain strings, numbers, bools, arrays, objects).
struct SendableJSON: @unchecked Sendable {
    let value: Any
    init(_ value: Any) { self.value = value }
}
