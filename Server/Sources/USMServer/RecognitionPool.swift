import Foundation
import Synchronization
import USMRecognizer

/// Runs recognitions, which are CPU-bound and synchronous, on threads of its own (never on NIO's event loops or
/// Swift's cooperative threads): `maxConcurrent` threads take jobs from one first-come queue, a thread going from
/// one job straight to the next (no task hop in between, so no thread idles while work waits). At most `maxQueue`
/// uploads wait beyond the threads; one more is refused (`PoolError.queueFull`, answered with 429). Stream chunks
/// wait whatever the queue holds (`mayExceedQueue`): a stream admitted at upgrade is never dropped mid-utterance for
/// load. A job whose task is cancelled before a thread takes it leaves the queue.
/// A job may bring a stream's chunk to feed first (`run(feeding:)`): a thread that takes such a job also takes the
/// other queued jobs with chunks for streams of the same recognizer (up to `maxBatch` in all) and feeds all their
/// chunks in one `RecognitionStream.accept(batch:)` (the encoder's layers run over the frames of every stream
/// together), then runs each job's body in queue order.
public final class RecognitionPool: @unchecked Sendable {
    // @unchecked: every mutable property below is read and written with `condition` locked
    public enum PoolError: Error { case queueFull, shutDown }

    /// Samples for a stream, which the job that brings them owns until its body has run.
    public struct Chunk: @unchecked Sendable {  // the stream is used by one job at a time (its session awaits each)
        let stream: RecognitionStream
        let samples: [Float]
        public init(stream: RecognitionStream, samples: [Float]) { (self.stream, self.samples) = (stream, samples) }
    }

    private struct Job {
        var id: UInt64
        var chunk: Chunk?
        /// runs the body with the error of feeding the chunk (nil: fed, or none)
        var run: (RecognizerError?) -> Void
        var fail: (any Error) -> Void
    }

    private enum Admission { case queued, closed, cancelled, full }

    public let maxConcurrent: Int
    public let maxQueue: Int
    /// Stream chunks one thread feeds together at most (1: each alone).
    public let maxBatch: Int
    private let condition = NSCondition()
    private var queue: [Job] = []
    private var running = 0
    private var nextID: UInt64 = 0
    private var closed = false
    private var threadsAlive = 0
    /// Called with (running, waiting) whenever they change (metrics gauges).
    private let onChange: @Sendable (Int, Int) -> Void
    /// Called with the number of chunks fed together, for every feeding.
    private let onBatch: @Sendable (Int) -> Void
    /// Called on a pool thread that has just finished its jobs and found nothing running or queued (the pool is
    /// idle until the next job comes); a job that comes meanwhile waits for it only if no other thread is free.
    private let onIdle: @Sendable () -> Void

    public init(maxConcurrent: Int, maxQueue: Int, maxBatch: Int = 64, onChange: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
                onBatch: @escaping @Sendable (Int) -> Void = { _ in }, onIdle: @escaping @Sendable () -> Void = {}) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.maxQueue = max(0, maxQueue)
        self.maxBatch = max(1, maxBatch)
        self.onChange = onChange
        self.onBatch = onBatch
        self.onIdle = onIdle
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
        try await run(mayExceedQueue: mayExceedQueue, feeding: nil) { (_: RecognizerError?) in try body() }
    }

    /// Feeds `chunk` to its stream (with the chunks of other queued jobs for the same recognizer, see the type), then
    /// runs `body` on the same pool thread with the error that feeding gave (nil: fed).
    public func run<T: Sendable>(mayExceedQueue: Bool = false, feeding chunk: Chunk?,
                                 _ body: @escaping @Sendable (RecognizerError?) throws -> T) async throws -> T {
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
                    queue.append(Job(id: id, chunk: chunk, run: { fed in c.resume(with: Result { try body(fed) }) },
                                     fail: { c.resume(throwing: $0) }))
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

    /// A pool thread: takes the first queued job (with the queued jobs whose chunks it can feed together with that
    /// job's), runs it, takes the next; ends once the pool is closed and empty.
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
            var jobs = [queue.removeFirst()]
            if let first = jobs[0].chunk?.stream.recognizer, maxBatch > 1 {
                var i = 0
                while i < queue.count && jobs.count < maxBatch {
                    if let c = queue[i].chunk, c.stream.recognizer === first {
                        jobs.append(queue.remove(at: i))
                    } else {
                        i += 1
                    }
                }
            }
            running += jobs.count
            condition.unlock()
            report()
            // every job taken with the first has a chunk when the first has one
            var fed = [RecognizerError?](repeating: nil, count: jobs.count)
            if jobs[0].chunk != nil {
                fed = RecognitionStream.accept(batch: jobs.map { ($0.chunk!.stream, $0.chunk!.samples) })
                onBatch(jobs.count)
            }
            for (job, error) in zip(jobs, fed) { job.run(error) }
            let idle = locked {
                running -= jobs.count
                return running == 0 && queue.isEmpty
            }
            report()
            if idle { onIdle() }
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

/// Set once from any thread (a task's cancellation handler), read by a recognition running on a pool thread.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
