import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
import NIOCore
import NIOPosix
import Testing
import USMRecognizer
@testable import USMServer

/// The library's own results, to compare the server's with.
enum Offline {
    static let recognizer: Recognizer = try! Recognizer(path: smallModel)
    static let signal = testSignal(seconds: 3)
    static let wavBytes = wav(signal)
    static let wavPath = try! temporaryFile(wavBytes, ext: "wav")
    static let fileText = try! recognizer.transcribe(file: wavPath)
    static let samplesTranscript = try! recognizer.transcribe(samples: floats(signal), sampleRate: 16000)
}

@Suite(.serialized) struct HTTPRouteTests {
    @Test func healthReadyModelsMetrics() async throws {
        let s = try await RunningServer.start()
        defer { Task { await s.stop() } }
        let health = try await http(.GET, "\(s.base)/health")
        #expect(health.status == 200 && health.json?["status"] as? String == "ok")
        let ready = try await http(.GET, "\(s.base)/ready")
        #expect(ready.status == 200 && ready.json?["models"] as? [String] == ["small"])
        let models = try await http(.GET, "\(s.base)/v1/models")
        #expect(((models.json?["data"] as? [[String: Any]])?.first?["id"] as? String) == "small")
        _ = try await transcribe(s, file: ("a.wav", Offline.wavBytes))
        let metrics = try await http(.GET, "\(s.base)/metrics")
        #expect(metrics.status == 200)
        for name in ["usm_http_requests_total{route=\"/v1/audio/transcriptions\",method=\"POST\",status=\"200\"} 1",
                     "usm_http_request_duration_seconds_bucket", "usm_audio_seconds_total{model=\"small\",kind=\"upload\"} 3",
                     "usm_realtime_factor_bucket", "usm_active_streams 0", "usm_queue_depth 0",
                     "usm_model_load_seconds{model=\"small\"}", "usm_model_bytes{model=\"small\",kind=\"file\"} 247763",
                     "usm_ready 1"] {
            #expect(metrics.body.contains(name), "metrics lack \(name)")
        }
        await s.stop()
    }

    @Test func transcriptEqualsOffline() async throws {
        #expect(!Offline.fileText.text.isEmpty)
        let s = try await RunningServer.start()
        let r = try await transcribe(s, file: ("a.wav", Offline.wavBytes), fields: [("model", "small")])
        #expect(r.status == 200)
        #expect(r.json?["text"] as? String == Offline.fileText.text)
        #expect(r.headers.first(name: "content-type") == "application/json")
        // an MP3 upload, decoded by libsndfile as the library does
        let mp3 = try [UInt8](Data(contentsOf: URL(fileURLWithPath: mp3Fixture)))
        let expected = try Offline.recognizer.transcribe(file: mp3Fixture).text
        let m = try await transcribe(s, file: ("golden.mp3", mp3), fields: [("temperature", "0"), ("language", "en")])
        #expect(m.status == 200 && m.json?["text"] as? String == expected)
        await s.stop()
    }

    @Test func everyResponseFormat() async throws {
        let s = try await RunningServer.start()
        let t = Offline.fileText
        let file = ("a.wav", Offline.wavBytes)
        let text = try await transcribe(s, file: file, fields: [("response_format", "text")])
        #expect(text.status == 200 && text.body == t.text + "\n")
        #expect(text.headers.first(name: "content-type")?.hasPrefix("text/plain") == true)

        let srt = try await transcribe(s, file: file, fields: [("response_format", "srt")])
        #expect(srt.status == 200 && srt.body.hasPrefix("1\n00:00:"))
        #expect(srt.body.contains(" --> ") && srt.body.contains(t.words[0].word))
        let vtt = try await transcribe(s, file: file, fields: [("response_format", "vtt")])
        #expect(vtt.status == 200 && vtt.body.hasPrefix("WEBVTT\n\n00:00:"))
        #expect(vtt.headers.first(name: "content-type")?.hasPrefix("text/vtt") == true)
        // the cues hold every word, in order
        let cueText = srt.body.split(separator: "\n\n").map { $0.split(separator: "\n").dropFirst(2).joined(separator: " ") }
            .joined(separator: " ")
        #expect(cueText == t.words.map(\.word).joined(separator: " "))

        let verbose = try await transcribe(s, file: file, fields: [("response_format", "verbose_json")])
        let v = try #require(verbose.json)
        #expect(v["text"] as? String == t.text && v["language"] as? String == "en")
        #expect(abs((v["duration"] as? Double ?? 0) - 3) < 0.01)
        let segments = try #require(v["segments"] as? [[String: Any]])
        #expect(!segments.isEmpty && segments.allSatisfy { $0["start"] is Double && $0["end"] is Double && $0["text"] is String })
        #expect(v["words"] == nil)
        let withWords = try await transcribe(s, file: file, fields: [("response_format", "verbose_json"),
                                                                      ("timestamp_granularities[]", "word"),
                                                                      ("timestamp_granularities[]", "segment")])
        let words = try #require(withWords.json?["words"] as? [[String: Any]])
        #expect(words.map { $0["word"] as? String } == t.words.map(\.word))
        #expect(words.first?["start"] as? Double == (t.words[0].start * 1000).rounded() / 1000)

        let bad = try await transcribe(s, file: file, fields: [("response_format", "xml")])
        #expect(bad.status == 400 && bad.error?["param"] as? String == "response_format")
        await s.stop()
    }

    @Test func requestErrors() async throws {
        let s = try await RunningServer.start { $0.maxBodyBytes = 1 << 20 }
        let url = "\(s.base)/v1/audio/transcriptions"
        // unknown model: 404 in OpenAI's shape
        let unknown = try await transcribe(s, file: ("a.wav", Offline.wavBytes), fields: [("model", "whisper-1")])
        #expect(unknown.status == 404)
        let e = try #require(unknown.error)
        #expect(e["code"] as? String == "model_not_found" && e["param"] as? String == "model" && e["type"] as? String != nil)
        #expect(e.keys.sorted() == ["code", "message", "param", "type"])
        // wrong content type
        let json = try await http(.POST, url, headers: [("Content-Type", "application/json")], body: ByteBuffer(string: "{}"))
        #expect(json.status == 415 && json.error?["message"] != nil)
        let none = try await http(.POST, url, body: ByteBuffer(string: "x"))
        #expect(none.status == 415)
        // multipart without a boundary, with the wrong one, cut short, without a file
        let noBoundary = try await http(.POST, url, headers: [("Content-Type", "multipart/form-data")], body: ByteBuffer(string: "x"))
        #expect(noBoundary.status == 400)
        let m = Multipart(fields: [("model", "small")], file: ("a.wav", Offline.wavBytes))
        let wrong = try await http(.POST, url, headers: [("Content-Type", "multipart/form-data; boundary=nothere")], body: m.body)
        #expect(wrong.status == 400)
        var cut = m.body
        cut.moveWriterIndex(to: cut.writerIndex / 2)
        let truncated = try await http(.POST, url, headers: [("Content-Type", m.contentType)], body: cut)
        #expect(truncated.status == 400 && truncated.error?["param"] as? String == "file")
        let noFile = Multipart(fields: [("model", "small")], file: nil)
        let missing = try await http(.POST, url, headers: [("Content-Type", noFile.contentType)], body: noFile.body)
        #expect(missing.status == 400 && missing.error?["param"] as? String == "file")
        // not audio
        let garbage = try await transcribe(s, file: ("notes.txt", Array("hello, not audio".utf8)))
        #expect(garbage.status == 400 && garbage.error?["code"] as? String == "invalid_audio")
        let message = try #require(garbage.error?["message"] as? String)
        #expect(!message.contains("/tmp/") && message.contains("notes.txt"), "\(message)")
        // over --max-body-bytes, with and without a Content-Length the server can check first
        let big = try await transcribe(s, file: ("big.wav", wav(testSignal(seconds: 40))))
        #expect(big.status == 413 && big.error?["code"] as? String == "request_too_large")
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: m.contentType)
        let chunks = (0..<40).map { _ in ByteBuffer(repeating: 0x41, count: 64 << 10) }
        request.body = .stream(chunks.async, length: .unknown)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        #expect(response.status.code == 413)
        // read to the end: a response left unread keeps the client's request open, and graceful shutdown waits for it
        _ = try await response.body.collect(upTo: 1 << 20)
        // unknown route: JSON too
        let route = try await http(.GET, "\(s.base)/v1/nothing")
        #expect(route.status == 404 && route.error != nil)
        await s.stop()
    }

    @Test func bearerToken() async throws {
        let s = try await RunningServer.start { $0.token = "s3cret" }
        let file = ("a.wav", Offline.wavBytes)
        let missing = try await transcribe(s, file: file)
        #expect(missing.status == 401 && missing.error?["code"] as? String == "invalid_api_key")
        #expect(missing.headers.first(name: "www-authenticate") == "Bearer")
        let wrong = try await transcribe(s, file: file, headers: [("Authorization", "Bearer nope")])
        #expect(wrong.status == 401)
        let right = try await transcribe(s, file: file, headers: [("Authorization", "Bearer s3cret")])
        #expect(right.status == 200 && right.json?["text"] as? String == Offline.fileText.text)
        // health, readiness and metrics stay open
        #expect(try await http(.GET, "\(s.base)/health").status == 200)
        #expect(try await http(.GET, "\(s.base)/ready").status == 200)
        #expect(try await http(.GET, "\(s.base)/metrics").status == 200)
        await s.stop()
    }

    @Test func queueFull() async throws {
        let s = try await RunningServer.start { $0.maxConcurrent = 1; $0.maxQueue = 0 }
        let long = wav(testSignal(seconds: 20))
        let results = try await withThrowingTaskGroup(of: HTTPResult.self) { group in
            for _ in 0..<6 { group.addTask { try await transcribe(s, file: ("long.wav", long)) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let codes = results.map(\.status).sorted()
        #expect(codes.contains(200) && codes.contains(429), "statuses \(codes)")
        #expect(Set(codes).isSubset(of: [200, 429]), "statuses \(codes)")
        let refused = try #require(results.first { $0.status == 429 })
        #expect(refused.headers.first(name: "retry-after") != nil && refused.error?["code"] as? String == "queue_full")
        let metrics = try await http(.GET, "\(s.base)/metrics")
        #expect(metrics.body.contains("status=\"429\""))
        await s.stop()
    }

    /// An upload queued behind a running one leaves the queue as soon as its client closes the connection (or shuts
    /// down its sending half) instead of being recognized for nobody; the running upload is not disturbed.
    @Test func disconnectedClientLeavesTheQueue() async throws {
        let s = try await RunningServer.start { $0.maxConcurrent = 1; $0.maxQueue = 4 }
        let long = wav(testSignal(seconds: 60))
        let running = Task { try await transcribe(s, file: ("long.wav", long)) }
        let pool = s.server.state.pool
        for _ in 0..<400 where pool.depth.running == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(pool.depth.running == 1)
        // a short upload, so that it is read and queued well before the long one ends
        let short = wav(testSignal(seconds: 1))
        for mode in [CloseMode.all, .output] {
            let m = Multipart(file: ("queued.wav", short))
            var request = ByteBuffer()
            request.writeString("POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \(m.contentType)\r\n"
                                + "Content-Length: \(m.body.readableBytes)\r\n\r\n")
            request.writeImmutableBuffer(m.body)
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: s.port).get()
            try await channel.writeAndFlush(request).get()
            for _ in 0..<1000 where pool.depth.waiting == 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(pool.depth.waiting == 1, "the upload waits for the running one (\(mode))")
            try await channel.close(mode: mode)
            for _ in 0..<500 where pool.depth.waiting > 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(pool.depth.waiting == 0 && pool.depth.running == 1, "it left the queue, the first still runs (\(mode))")
            if mode == .output { try? await channel.close() }
        }
        let r = try await running.value
        #expect(r.status == 200 && r.json?["text"] is String)
        // both queued uploads ended as "client closed request", neither was recognized
        let metrics = try await http(.GET, "\(s.base)/metrics").body
        let closed = metrics.split(separator: "\n").first {
            $0.hasPrefix("usm_http_requests_total") && $0.contains("status=\"499\"")
        }
        #expect(closed?.hasSuffix(" 2") == true, "\(closed ?? "no 499 requests")")
        #expect(pool.depth.running == 0 && pool.depth.waiting == 0)
        await s.stop()
    }

    /// An upload already being recognized stops at its next block once its client closes the connection: the thread
    /// is free again long before the audio would have been recognized, and the next upload is served.
    @Test func disconnectedClientStopsItsRunningUpload() async throws {
        let s = try await RunningServer.start { $0.maxConcurrent = 1; $0.maxQueue = 4 }
        let pool = s.server.state.pool
        let m = Multipart(file: ("long.wav", wav(testSignal(seconds: 300))))
        var request = ByteBuffer()
        request.writeString("POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \(m.contentType)\r\n"
                            + "Content-Length: \(m.body.readableBytes)\r\n\r\n")
        request.writeImmutableBuffer(m.body)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: s.port).get()
        try await channel.writeAndFlush(request).get()
        for _ in 0..<1000 where pool.depth.running == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(pool.depth.running == 1, "the upload is being recognized")
        try await channel.close()
        for _ in 0..<1000 where pool.depth.running > 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(pool.depth.running == 0, "the recognition stopped")
        let metrics = try await http(.GET, "\(s.base)/metrics").body
        let cancelled = metrics.split(separator: "\n").first { $0.hasPrefix("usm_recognitions_cancelled_total") }
        #expect(cancelled?.hasSuffix(" 1") == true, "\(cancelled ?? "no cancelled recognitions")")
        let next = try await transcribe(s, file: ("short.wav", wav(testSignal(seconds: 1))))
        #expect(next.status == 200)
        await s.stop()
    }

    @Test func gracefulShutdownFinishesInFlight() async throws {
        let s = try await RunningServer.start()
        let long = wav(testSignal(seconds: 20))
        let inFlight = Task { try await transcribe(s, file: ("long.wav", long)) }
        // wait until the recognition runs, then ask the server to stop
        for _ in 0..<400 where s.server.state.pool.depth.running == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(s.server.state.pool.depth.running == 1)
        await s.group.triggerGracefulShutdown()
        let r = try await inFlight.value
        #expect(r.status == 200 && r.json?["text"] is String)
        _ = try? await s.task.value
        #expect(s.server.state.phase == .draining)
        // the port is closed (the client retries a refused connection until its deadline: keep that short)
        await #expect(throws: (any Error).self) { try await http(.GET, "\(s.base)/health", timeout: .seconds(1)) }
        await s.server.state.pool.shutdown()
    }
}

@Suite(.serialized) struct StreamTests {
    @Test func finalEqualsOfflineS16() async throws {
        let expected = Offline.samplesTranscript
        #expect(!expected.text.isEmpty)
        let s = try await RunningServer.start()
        let log = StreamLog()
        // odd chunk sizes split samples between messages
        try await stream(s, query: "model=small&sample_rate=16000&encoding=pcm_s16le&trailing_silence=off&max_utterance=off",
                         bytes: le(Offline.signal), chunks: [3201, 999, 6400, 1], log: log)
        let finals = log.of("final")
        #expect(finals.count == 1)
        let f = try #require(finals.first)
        #expect(f["text"] as? String == expected.text && f["last"] as? Bool == true)
        let words = try #require(f["words"] as? [[String: Any]])
        #expect(words.map { $0["word"] as? String } == expected.words.map(\.word))
        #expect(words.map { $0["start"] as? Double } == expected.words.map { ($0.start * 1000).rounded() / 1000 })
        #expect(!log.of("partial").isEmpty)
        #expect(log.of("error").isEmpty)
        // the server counts the stream closed once its session ends, which may be just after the client has the close
        for _ in 0..<500 where s.server.state.openStreams != 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(s.server.state.openStreams == 0)
        // every audio message's time from arrival to recognized is in the chunk latency histogram
        let metrics = try await http(.GET, "\(s.base)/metrics").body
        let count = metrics.split(separator: "\n").first { $0.hasPrefix("usm_stream_chunk_latency_seconds_count") }
        #expect(count.flatMap { Int($0.split(separator: " ").last ?? "") } == log.sentAudioMessages, "\(count ?? "no chunk latency")")
        await s.stop()
    }

    @Test func finalEqualsOfflineF32AtAnotherRate() async throws {
        let samples = floats(testSignal(seconds: 2.5, rate: 8000, seed: 11))
        let expected = try Offline.recognizer.transcribe(samples: samples, sampleRate: 8000)
        let s = try await RunningServer.start()
        let log = StreamLog()
        try await stream(s, query: "sample_rate=8000&encoding=pcm_f32le&trailing_silence=off&max_utterance=off",
                         bytes: le(samples), chunks: [4002, 1598], log: log)
        let f = try #require(log.of("final").first)
        #expect(f["text"] as? String == expected.text)
        await s.stop()
    }

    @Test func endpointsSplitUtterances() async throws {
        let s = try await RunningServer.start()
        let log = StreamLog()
        try await stream(s, query: "max_utterance=1&trailing_silence=off", bytes: le(Offline.signal), chunks: [1600], log: log)
        let endpoints = log.of("endpoint")
        let finals = log.of("final")
        let raw = log.raw
        #expect(endpoints.count >= 2, "\(raw)")
        #expect(finals.count == endpoints.count + 1)
        #expect(finals.map { $0["utterance"] as? Int } == Array(0..<finals.count).map { Optional($0) })
        #expect(finals.last?["last"] as? Bool == true && finals.dropLast().allSatisfy { $0["last"] as? Bool == false })
        // utterances tile the stream
        #expect(abs((finals.last?["end"] as? Double ?? 0) - 3) < 0.01)
        await s.stop()
    }

    @Test func idleTimeoutEndsTheStream() async throws {
        let s = try await RunningServer.start { $0.idleTimeout = 0.3 }
        let log = StreamLog()
        let close = try await stream(s, query: "", bytes: le(Array(Offline.signal.prefix(8000))), finish: false, log: log)
        #expect(close?.closeCode == .policyViolation)
        #expect(log.of("final").first?["last"] as? Bool == true)
        await s.stop()
    }

    @Test func shutdownFinalizesOpenStreams() async throws {
        let s = try await RunningServer.start()
        let log = StreamLog()
        let client = Task {
            try await stream(s, query: "trailing_silence=off&max_utterance=off", bytes: le(Array(Offline.signal.prefix(16000))),
                             finish: false, log: log)
        }
        for _ in 0..<500 where s.server.state.openStreams == 0 { try await Task.sleep(for: .milliseconds(10)) }
        try await Task.sleep(for: .milliseconds(200))
        await s.group.triggerGracefulShutdown()
        let close = try await client.value
        #expect(close?.closeCode == .goingAway)
        #expect(log.of("final").first?["last"] as? Bool == true)
        _ = try? await s.task.value
        await s.server.state.pool.shutdown()
    }

    @Test func refusedUpgrades() async throws {
        let s = try await RunningServer.start { $0.token = "t" }
        let log = StreamLog()
        await #expect(throws: (any Error).self) {
            try await stream(s, query: "model=small", bytes: [], log: log)
        }
        // the same request as plain HTTP says why
        let auth = [("Authorization", "Bearer t")]
        #expect(try await http(.GET, "\(s.base)/v1/audio/stream?model=small").status == 401)
        #expect(try await http(.GET, "\(s.base)/v1/audio/stream?model=nope", headers: auth).status == 404)
        #expect(try await http(.GET, "\(s.base)/v1/audio/stream?encoding=mp3", headers: auth).status == 400)
        #expect(try await http(.GET, "\(s.base)/v1/audio/stream?sample_rate=5", headers: auth).status == 400)
        #expect(try await http(.GET, "\(s.base)/v1/audio/stream", headers: auth).status == 426)
        await s.stop()
    }

    /// Past `maxStreams` the upgrade goes ahead and the socket says why: an error message with the 429 body's code,
    /// then close 1013 (try again later), which a WebSocket client sees (a refused handshake is a bare 400).
    @Test func streamsPastTheLimitAreToldToRetry() async throws {
        let s = try await RunningServer.start {
            $0.maxStreams = 1
            $0.idleTimeout = 2
        }
        let first = Task { try await stream(s, query: "", bytes: [], finish: false, log: StreamLog()) }
        for _ in 0..<500 where s.server.state.openStreams == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(s.server.state.openStreams == 1)
        let log = StreamLog()
        let close = try await stream(s, query: "", bytes: [], finish: false, log: log)
        #expect(close?.closeCode == .unknown(1013))
        let e = try #require(log.of("error").first)
        #expect((e["error"] as? [String: Any])?["code"] as? String == "queue_full")
        _ = try? await first.value  // ends at the idle timeout
        await s.stop()
    }

    @Test func badTextMessageAndNonFiniteSamples() async throws {
        let s = try await RunningServer.start()
        let log = StreamLog()
        let nan = le([Float](repeating: .nan, count: 100))
        let close = try await stream(s, query: "encoding=pcm_f32le", bytes: nan, log: log)
        #expect(close?.closeCode == .unacceptableData)
        let e = try #require(log.of("error").first)
        #expect((e["error"] as? [String: Any])?["code"] as? String == "invalid_audio")
        await s.stop()
    }
}

