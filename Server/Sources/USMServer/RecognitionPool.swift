import Foundation

/// Runs recognitions, which are CPU-bound and synchronous, on threads of its own (never on NIO's event loops or
/// Swift's cooperative threads): `maxConcurrent` threads take jobs from one first-come queue, a thread going from
/// one job straight to the next (no task hop in between, so no thread idles while work waits). At most `maxQueue`
/// uploads wait beyond the threads; one more is refused (`PoolError.queueFull`, answered with 429). Stream chunks
/// wait whatever the queue holds (`mayExceedQueue`): a stream admitted at upgrade is never dropped mid-utterance for
/// load. A job whose task is cancelled before a thread takes it leaves the queue.
public final class RecognitionPool: @unchecked Sendable {
    // @unchecked: every mutable property below is read and written with `condition` locked
    public enum PoolError: Error { case queueFull, shutDown }

    private struct Job {
        var id: UInt64
        var run: () -> Void
        var fail: (any Error) -> Void
    }

    private enum Admission { case queued, closed, cancelled, full }

    public let maxConcurrent: Int
    public let maxQueue: Int
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var running = 0
    private var nextID: UInt64 = 0
    private var closed = false
    private var threadsAlive = 0
    /// Called with (running, waiting) whenever they change (metrics gauges).
    private let onChange: @Sendable (Int, Int) -> Void

    public init(maxConcurrent: Int, maxQueue: Int, onChange: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.maxQueue = max(0, maxQueue)
        self.onChange = onChange
        threadsAlive = self.maxConcurrent
        for i in 0..<self.maxConcurrent {
            let t = Thread { [self] in work() }
            t.name = "usm-recognition-\(i)"
            t.stackSize = 8 << 20  // the platform's usual main-thread stack: the executor recurses through its layers
            t.start()
        }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    /// Whether an upload would be refused right now (checked before its body is read, so a full server says 429
    /// without taking the upload first).
    public var isFull: Bool { locked { running + queue.count >= maxConcurrent + maxQueue } }

    /// Jobs running, and jobs queued that no thread has taken yet.
    public var depth: (running: Int, waiting: Int) { locked { (running, queue.count) } }

    /// Runs `body` on a pool thread once one is free.
    public func run<T: Sendable>(mayExceedQueue: Bool = false, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let id: UInt64 = locked {
            nextID += 1
            return nextID
        }
        let result: T = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
                let admission: Admission = locked {
                    if closed { return .closed }
                    if Task.isCancelled { return .cancelled }
                    if !mayExceedQueue && running + queue.count >= maxConcurrent + maxQueue { return .full }
                    queue.append(Job(id: id, run: { c.resume(with: Result { try body() }) }, fail: { c.resume(throwing: $0) }))
                    condition.signal()
                    return .queued
                }
                switch admission {
                case .queued: report()
                case .closed: c.resume(throwing: PoolError.shutDown)
                case .cancelled: c.resume(throwing: CancellationError())
                case .full: c.resume(throwing: PoolError.queueFull)
                }
            }
        } onCancel: {
            // a job whose client went away leaves the queue (no thread has taken it)
            let job: Job? = locked {
                guard let i = queue.firstIndex(where: { $0.id == id }) else { return nil }
                return queue.remove(at: i)
            }
            if let job {
                job.fail(CancellationError())
                report()
            }
        }
        return result
    }

    /// A pool thread: takes the first queued job, runs it, takes the next; ends once the pool is closed and empty.
    private func work() {
        while true {
            condition.lock()
            while queue.isEmpty && !closed { condition.wait() }
            guard !queue.isEmpty else {
                threadsAlive -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let job = queue.removeFirst()
            running += 1
            condition.unlock()
            report()
            job.run()
            locked { running -= 1 }
            report()
        }
    }

    private func report() {
        let (r, w) = depth
        onChange(r, w)
    }

    /// Refuses new work, fails what waits (`PoolError.shutDown`), and returns once what runs has ended and the
    /// threads have stopped.
    public func shutdown() async {
        let waiting: [Job] = locked {
            closed = true
            defer { queue = [] }
            condition.broadcast()
            return queue
        }
        for job in waiting { job.fail(PoolError.shutDown) }
        report()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread { [self] in
                locked { while threadsAlive > 0 { condition.wait() } }
                c.resume()
            }
        }
    }
}
