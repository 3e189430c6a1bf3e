import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import USMRecognizer
@testable import USMServer

/// The repository root (this file is Server/Tests/USMServerTests/Support.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
let smallModel = repositoryRoot.appendingPathComponent("Tests/USMModelTests/Golden/small-exp5.usm").path
let mp3Fixture = repositoryRoot.appendingPathComponent("Tests/USMRecognizerTests/Fixtures/golden.mp3").path

/// A server run in-process on a free loopback port, stopped with a graceful shutdown.
final class RunningServer: Sendable {
    let server: SpeechServer
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let port: Int

    var base: String { "http://127.0.0.1:\(port)" }

    private init(server: SpeechServer, group: ServiceGroup, task: Task<Void, any Error>, port: Int) {
        self.server = server
        self.group = group
        self.task = task
        self.port = port
    }

    static func start(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> RunningServer {
        var config = ServerConfiguration(host: "127.0.0.1", port: 0, models: [ModelSpec(name: "small", path: smallModel)],
                                         maxConcurrent: 2)
        configure(&config)
        var logger = Logger(label: "usm-server-test")
        logger.logLevel = .warning
        let server = SpeechServer(configuration: config, logger: logger)
        let (ports, sink) = AsyncStream.makeStream(of: Int.self)
        let services = server.makeServices { port in sink.yield(port) }
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        let task = Task { try await group.run() }
        var it = ports.makeAsyncIterator()
        guard let port = await it.next() else { throw TestFailure("the server did not start") }
        let running = RunningServer(server: server, group: group, task: task, port: port)
        // ready once the models are loaded
        for _ in 0..<600 {
            if server.state.phase == .ready { return running }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("the server did not become ready")
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        await server.state.pool.shutdown()
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

struct HTTPResult {
    var status: Int
    var headers: HTTPHeaders
    var body: String
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] }
    var error: [String: Any]? { json?["error"] as? [String: Any] }
}

func http(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: ByteBuffer? = nil,
          timeout: TimeAmount = .seconds(120)) async throws -> HTTPResult {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (k, v) in headers { request.headers.add(name: k, value: v) }
    if let body { request.body = .bytes(body) }
    let response = try await HTTPClient.shared.execute(request, timeout: timeout)
    let bytes = try await response.body.collect(upTo: 64 << 20)
    return HTTPResult(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
}

/// A multipart/form-data body: fields, then the file (name, bytes).
struct Multipart {
    let boundary = "----usm-test-\(UInt32.random(in: 0...UInt32.max))"
    var fields: [(String, String)] = []
    var file: (name: String, bytes: [UInt8])?

    var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    var body: ByteBuffer {
        var b = ByteBuffer()
        for (k, v) in fields {
            b.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(k)\"\r\n\r\n\(v)\r\n")
        }
        if let file {
            b.writeString("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(file.name)\"\r\n")
            b.writeString("Content-Type: application/octet-stream\r\n\r\n")
            b.writeBytes(file.bytes)
            b.writeString("\r\n")
        }
        b.writeString("--\(boundary)--\r\n")
        return b
    }
}

func transcribe(_ server: RunningServer, file: (String, [UInt8]), fields: [(String, String)] = [],
                headers: [(String, String)] = []) async throws -> HTTPResult {
    let m = Multipart(fields: fields, file: file)
    return try await http(.POST, "\(server.base)/v1/audio/transcriptions", headers: [("Content-Type", m.contentType)] + headers, body: m.body)
}

/// A deterministic test signal: tones that come and go with noise, as 16-bit samples at `rate`.
func testSignal(seconds: Double, rate: Int = 16000, seed: UInt64 = 7) -> [Int16] {
    var s = seed
    func next() -> Double { s = s &* 6364136223846793005 &+ 1442695040888963407; return Double(s >> 11) / Double(1 << 53) }
    let n = Int(seconds * Double(rate))
    var out = [Int16](repeating: 0, count: n)
    var f1 = 300.0, f2 = 1200.0
    for i in 0..<n {
        if i % (rate / 5) == 0 { f1 = 150 + 500 * next(); f2 = 800 + 2000 * next() }
        let t = Double(i) / Double(rate)
        let env = 0.5 + 0.5 * sin(2 * .pi * 3 * t)
        let v = env * (0.3 * sin(2 * .pi * f1 * t) + 0.15 * sin(2 * .pi * f2 * t)) + 0.02 * (next() - 0.5)
        out[i] = Int16(max(-32767, min(32767, v * 32767)))
    }
    return out
}

func floats(_ pcm: [Int16]) -> [Float] { pcm.map { Float($0) / 32768 } }

/// A 16-bit mono WAV file's bytes.
func wav(_ pcm: [Int16], rate: Int = 16000) -> [UInt8] {
    var b: [UInt8] = []
    func u32(_ v: Int) { b += withUnsafeBytes(of: UInt32(v).littleEndian, Array.init) }
    func u16(_ v: Int) { b += withUnsafeBytes(of: UInt16(v).littleEndian, Array.init) }
    b += Array("RIFF".utf8); u32(36 + pcm.count * 2); b += Array("WAVEfmt ".utf8)
    u32(16); u16(1); u16(1); u32(rate); u32(rate * 2); u16(2); u16(16)
    b += Array("data".utf8); u32(pcm.count * 2)
    for v in pcm { b += withUnsafeBytes(of: v.littleEndian, Array.init) }
    return b
}

func temporaryFile(_ bytes: [UInt8], ext: String) throws -> String {
    let path = NSTemporaryDirectory() + "usm-server-test-\(UUID().uuidString).\(ext)"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// What a WebSocket stream received.
final class StreamLog: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [[String: Any]] = []
    private var texts: [String] = []
    private var sent = 0
    /// Binary messages `stream` sent.
    var sentAudioMessages: Int { lock.withLock { sent } }
    func sentAudio() { lock.withLock { sent += 1 } }
    func add(_ s: String) {
        let m = (try? JSONSerialization.jsonObject(with: Data(s.utf8))) as? [String: Any]
        lock.withLock {
            texts.append(s)
            if let m { messages.append(m) }
        }
    }
    var raw: [String] { lock.withLock { texts } }
    func of(_ type: String) -> [[String: Any]] { lock.withLock { messages.filter { $0["type"] as? String == type } } }
}

/// Streams `bytes` in chunks of the given sizes (cycled), optionally sends finish, and logs every message until
/// the server closes.
@discardableResult
func stream(_ server: RunningServer, query: String, bytes: [UInt8], chunks: [Int] = [3200], finish: Bool = true,
            log: StreamLog, pause: Duration = .zero) async throws -> WebSocketCloseFrame? {
    var logger = Logger(label: "ws-test")
    logger.logLevel = .warning
    return try await WebSocketClient.connect(url: "ws://127.0.0.1:\(server.port)/v1/audio/stream?\(query)", logger: logger) {
        inbound, outbound, _ in
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var at = 0
                var k = 0
                while at < bytes.count {
                    let n = min(chunks[k % chunks.count], bytes.count - at)
                    try await outbound.write(.binary(ByteBuffer(bytes: bytes[at..<(at + n)])))
                    log.sentAudio()
                    at += n
                    k += 1
                    if pause > .zero { try await Task.sleep(for: pause) }
                }
                if finish { try await outbound.write(.text("{\"type\":\"finish\"}")) }
            }
            for try await message in inbound.messages(maxSize: 1 << 20) {
                if case .text(let s) = message { log.add(s) }
            }
            try await group.waitForAll()
        }
    }
}

func le(_ pcm: [Int16]) -> [UInt8] { pcm.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) } }
func le(_ samples: [Float]) -> [UInt8] { samples.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }
