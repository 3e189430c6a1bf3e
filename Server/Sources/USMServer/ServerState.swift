import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import USMRecognizer

/// What the server holds: the loaded models, whether it is ready, the pool and the metrics.
public final class ServerState: Sendable {
    public enum Phase: Sendable, Equatable { case loading, ready, draining, failed(String) }

    public let configuration: ServerConfiguration
    public let metrics: ServerMetrics
    public let pool: RecognitionPool
    private let models = NIOLockedValueBox<[String: Recognizer]>([:])
    private let phaseBox = NIOLockedValueBox<Phase>(.loading)
    private let streams = NIOLockedValueBox<Int>(0)
    /// Open streams' event sinks, so a drain can end each one (final result, then close 1001).
    private let streamSinks = NIOLockedValueBox<(next: UInt64, sinks: [UInt64: @Sendable () -> Void])>((0, [:]))

    public init(configuration: ServerConfiguration) {
        self.configuration = configuration
        let metrics = ServerMetrics()
        self.metrics = metrics
        pool = RecognitionPool(maxConcurrent: configuration.maxConcurrent, maxQueue: configuration.maxQueue, maxBatch: configuration.maxBatch,
                               onChange: { running, waiting in
                                   metrics.running.set(Double(running))
                                   metrics.queueDepth.set(Double(waiting))
                               }, onBatch: { metrics.batch(streams: $0) },
                               onIdle: { [release = HeapRelease(every: .seconds(10))] in
                                   if let seconds = release.ifDue() { metrics.heapReleased(seconds: seconds) }
                               })
    }

    public var phase: Phase { phaseBox.withLockedValue { $0 } }

    func setPhase(_ p: Phase) {
        phaseBox.withLockedValue { $0 = p }
        metrics.ready.set(p == .ready ? 1.0 : 0.0)
    }

    public var modelNames: [String] { configuration.models.map(\.name) }
    public var defaultModel: String { configuration.models.first?.name ?? "" }

    public func recognizer(_ name: String) -> Recognizer? { models.withLockedValue { $0[name] } }

    /// Loads every model once (each on a pool thread, one after another) and turns ready.
    public func loadModels(logger: Logger) async throws {
        let options = configuration.recognizerOptions
        for spec in configuration.models {
            let recognizer = try await pool.run(mayExceedQueue: true) { () throws -> Recognizer in
                try Recognizer(path: spec.path, options: options)
            }
            let r = recognizer.loadReport
            metrics.modelLoaded(name: spec.name, report: r)
            models.withLockedValue { $0[spec.name] = recognizer }
            logger.info("model loaded", metadata: ["model": "\(spec.name)", "path": "\(spec.path)", "file_bytes": "\(r.fileBytes)",
                                                   "seconds": "\(String(format: "%.3f", r.seconds))", "recipe": "\(r.recipe)"])
        }
        if phase == .loading { setPhase(.ready) }
    }

    /// Why a request cannot be served now, or nil.
    func unavailable() -> APIError? {
        switch phase {
        case .ready: nil
        case .loading: .notReady("the server is loading its models")
        case .draining: .notReady("the server is shutting down")
        case .failed(let m): .notReady("the server failed to load its models: \(m)")
        }
    }

    /// Takes a stream place, or nil when `maxStreams` are open.
    func openStream() -> Bool {
        let ok = streams.withLockedValue { n -> Bool in
            guard n < configuration.maxStreams else { return false }
            n += 1
            return true
        }
        if ok { metrics.activeStreams.increment() }
        return ok
    }

    func closeStream() {
        streams.withLockedValue { $0 -= 1 }
        metrics.activeStreams.decrement()
    }

    public var openStreams: Int { streams.withLockedValue { $0 } }

    /// Registers how to end an open stream on drain; returns the key to remove it with.
    func onDrain(_ end: @escaping @Sendable () -> Void) -> UInt64 {
        streamSinks.withLockedValue { s in
            s.next += 1
            s.sinks[s.next] = end
            return s.next
        }
    }

    func removeDrain(_ key: UInt64) { _ = streamSinks.withLockedValue { $0.sinks.removeValue(forKey: key) } }

    /// Marks the server draining and asks every open stream to end; waits (at most `timeout`) until they have.
    public func drain(timeout: Duration = .seconds(10)) async {
        setPhase(.draining)
        let ends = streamSinks.withLockedValue { Array($0.sinks.values) }
        for end in ends { end() }
        let deadline = ContinuousClock.now + timeout
        while openStreams > 0 && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }
}

/// Runs beside the application and is shut down before it (a service group stops its services in reverse order):
/// on SIGTERM it marks the server draining (`/ready` 503, new requests 503) and ends every open stream with its final
/// result, before the HTTP server quiesces (in-flight requests finish) and the WebSocket layer closes what is left.
struct DrainService: Service {
    let state: ServerState
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("draining: new requests get 503, requests in flight finish, open streams get their final result")
        await state.drain()
    }
}

/// Loads the models once the server listens (so `/health` answers and `/ready` says 503 meanwhile), then waits for
/// graceful shutdown.
struct ReadinessService: Service {
    let state: ServerState
    let logger: Logger

    func run() async throws {
        do {
            try await state.loadModels(logger: logger)
        } catch {
            state.setPhase(.failed("\(error)"))
            logger.error("cannot load the models: \(error)")
            throw error
        }
        try? await gracefulShutdown()
        state.setPhase(.draining)
    }
}

/// Gives the heap's free pages back to the operating system (`Heap.releaseFree`, glibc's `malloc_trim`) when the
/// recognition pool goes idle, at most once per `interval`. Streams come and go with buffers of different sizes;
/// glibc keeps the pages of what they freed resident, so without this the server's RSS crept up toward the peak of
/// its heap over a soak (docs/benchmarks/2026-12-08-server-stream-memory.md).
final class HeapRelease: Sendable {
    let interval: Duration
    private let last = NIOLockedValueBox<ContinuousClock.Instant?>(nil)

    init(every interval: Duration) { self.interval = interval }

    /// Releases if the last release is at least `interval` ago (or there was none); returns the seconds it took,
    /// or nil if it was not due.
    func ifDue() -> Double? {
        let now = ContinuousClock.now
        let due = last.withLockedValue { t -> Bool in
            if let t, now - t < interval { return false }
            t = now
            return true
        }
        guard due else { return nil }
        Heap.releaseFree()
        return (ContinuousClock.now - now).seconds
    }
}
