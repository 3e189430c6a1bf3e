import NIOConcurrencyHelpers
import NIOPosix

/// Runs recognitions, which are CPU-bound and synchronous, on a pool of its own threads (never on NIO's event loops
/// or Swift's cooperative threads): at most `maxConcurrent` at once, with at most `maxQueue` uploads waiting in
/// first-come order; one more is refused (`PoolError.queueFull`, answered with 429). Stream chunks wait whatever the
/// queue holds (`mayExceedQueue`): a stream admitted at upgrade is never dropped mid-utterance for load.
public final class RecognitionPool: Sendable {
    public enum PoolError: Error { case queueFull, shutDown }

    struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>
    }

    struct State {
        var running = 0
        var waiting: [Waiter] = []
        var nextID: UInt64 = 0
        var closed = false
    }

    public let maxConcurrent: Int
    public let maxQueue: Int
    private let state = NIOLockedValueBox(State())
    private let threads: NIOThreadPool
    /// Called with (running, waiting) whenever they change (metrics gauges).
    private let onChange: @Sendable (Int, Int) -> Void

    public init(maxConcurrent: Int, maxQueue: Int, onChange: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.maxQueue = max(0, maxQueue)
        self.onChange = onChange
        threads = NIOThreadPool(numberOfThreads: self.maxConcurrent)
        threads.start()
    }

    /// Whether an upload would be refused right now (checked before its body is read, so a full server says 429
    /// without taking the upload first).
    public var isFull: Bool {
        state.withLockedValue { $0.running >= maxConcurrent && $0.waiting.count >= maxQueue }
    }

    public var depth: (running: Int, waiting: Int) { state.withLockedValue { ($0.running, $0.waiting.count) } }

    /// Runs `body` on a pool thread once a slot is free.
    public func run<T: Sendable>(mayExceedQueue: Bool = false, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await acquire(mayExceedQueue: mayExceedQueue)
        defer { release() }
        return try await threads.runIfActive(body)
    }

    private func acquire(mayExceedQueue: Bool) async throws {
        enum Decision { case go, wait(UInt64), full, closed }
        let decision: Decision = state.withLockedValue { s in
            if s.closed { return .closed }
            if s.running < maxConcurrent && s.waiting.isEmpty {
                s.running += 1
                return .go
            }
            if s.waiting.count >= maxQueue && !mayExceedQueue { return .full }
            s.nextID += 1
            return .wait(s.nextID)
        }
        switch decision {
        case .go:
            report()
            return
        case .full: throw PoolError.queueFull
        case .closed: throw PoolError.shutDown
        case .wait(let id):
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                    let cancelled = state.withLockedValue { s -> Bool in
                        if Task.isCancelled { return true }
                        s.waiting.append(Waiter(id: id, continuation: c))
                        return false
                    }
                    if cancelled { c.resume(throwing: CancellationError()) }
                    report()
                }
            } onCancel: {
                // a waiter whose client went away leaves the queue (its slot was never taken)
                let w: Waiter? = state.withLockedValue { s in
                    guard let i = s.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                    return s.waiting.remove(at: i)
                }
                w?.continuation.resume(throwing: CancellationError())
                report()
            }
        }
    }

    /// Frees a slot: hands it straight to the first waiter, if any.
    private func release() {
        let next: Waiter? = state.withLockedValue { s in
            if !s.waiting.isEmpty { return s.waiting.removeFirst() }  // the slot passes on: `running` stays
            s.running -= 1
            return nil
        }
        next?.continuation.resume()
        report()
    }

    private func report() {
        let (r, w) = depth
        onChange(r, w)
    }

    /// Refuses new work and stops the threads once what runs has ended.
    public func shutdown() async {
        let waiters: [Waiter] = state.withLockedValue { s in
            s.closed = true
            defer { s.waiting = [] }
            return s.waiting
        }
        for w in waiters { w.continuation.resume(throwing: PoolError.shutDown) }
        try? await threads.shutdownGracefully()
    }
}
