import Foundation
import Testing
import USMRecognizer
@testable import USMServer

/// `RecognitionPool` feeding stream chunks together.
@Suite struct PoolBatchTests {
    final class Batches: @unchecked Sendable {  // @unchecked: `sizes` is read and written under `lock`
        private let lock = NSLock()
        private var sizes: [Int] = []
        func add(_ n: Int) { lock.withLock { sizes.append(n) } }
        var all: [Int] { lock.withLock { sizes } }
    }

    final class Owned: @unchecked Sendable {  // @unchecked: its stream is used by one job at a time
        let stream: RecognitionStream
        init(_ stream: RecognitionStream) { self.stream = stream }
    }

    /// Chunks that queue behind a busy thread are fed together by the next free one, in one batch per recognizer:
    /// each body then sees its stream as if fed alone (bad samples: the error `accept` throws). An upload job
    /// queued among them, and a chunk for another recognizer's stream, run on their own.
    @Test func queuedChunksOfOneRecognizerAreFedTogether() async throws {
        let batches = Batches()
        let pool = RecognitionPool(maxConcurrent: 1, maxQueue: 16, maxBatch: 64, onBatch: { batches.add($0) })
        let r = Offline.recognizer, other = try Recognizer(path: smallModel)
        let signal = floats(testSignal(seconds: 3))
        let count = 6
        let chunks: [[Float]] = (0..<count).map { i in
            var c = Array(signal[(i * 6000)..<(i * 6000 + 9600 + 800 * i)])
            if i == 3 { c[100] = .infinity }
            return c
        }
        let streams = try (0..<count).map { i in Owned(try (i == count - 1 ? other : r).makeStream()) }
        let gate = DispatchSemaphore(value: 0)
        let blocker = Task { try await pool.run { gate.wait() } }
        for _ in 0..<500 where pool.depth.running == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(pool.depth.running == 1)
        let upload = Task { try await pool.run { 42 } }
        let jobs = (0..<count).map { i in
            let owned = streams[i], chunk = RecognitionPool.Chunk(stream: owned.stream, samples: chunks[i])
            return Task { () -> Result<[TokenTiming], RecognizerError> in
                try await pool.run(mayExceedQueue: true, feeding: chunk) { fed in
                    if let fed { return .failure(fed) }
                    return .success(owned.stream.partial.tokens)
                }
            }
        }
        for _ in 0..<500 where pool.depth.waiting < count + 1 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(pool.depth.waiting == count + 1)
        gate.signal()
        try await blocker.value
        #expect(try await upload.value == 42)
        for i in 0..<count {
            let alone = try (i == count - 1 ? other : r).makeStream()
            let expected = Result { () throws(RecognizerError) -> [TokenTiming] in
                try alone.accept(samples: chunks[i])
                return alone.partial.tokens
            }
            let got = try await jobs[i].value
            #expect("\(got)" == "\(expected)", "stream \(i)")
        }
        #expect(streams.filter { !$0.stream.partial.tokens.isEmpty }.count >= 4, "the chunks bring tokens")
        // the five chunks of the first recognizer in one batch, the other recognizer's alone
        #expect(batches.all.sorted() == [1, count - 1], "\(batches.all)")
        await pool.shutdown()
    }
}

/// `RecognitionPool`'s idle hook and what the server hangs on it.
@Suite struct PoolIdleTests {
    final class Count: @unchecked Sendable {  // @unchecked: `n` is read and written under `lock`
        private let lock = NSLock()
        private var n = 0
        func add() { lock.withLock { n += 1 } }
        var value: Int { lock.withLock { n } }
    }

    /// The hook runs when a thread finishes and nothing else runs or waits: not while another job still runs.
    @Test func idleIsCalledOnlyWhenNothingRunsOrWaits() async throws {
        let idle = Count()
        let pool = RecognitionPool(maxConcurrent: 2, maxQueue: 16, onIdle: { idle.add() })
        let gate = DispatchSemaphore(value: 0)
        let blocker = Task { try await pool.run { gate.wait() } }
        for _ in 0..<500 where pool.depth.running == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(try await pool.run { 7 } == 7)  // on the other thread, while the blocker runs
        try await Task.sleep(for: .milliseconds(50))
        #expect(idle.value == 0)
        gate.signal()
        try await blocker.value
        for _ in 0..<500 where idle.value == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(idle.value == 1)
        await pool.shutdown()
    }

    /// A release is due at first, then not again until its interval has passed.
    @Test func heapReleaseIsRateLimited() async throws {
        let release = HeapRelease(every: .milliseconds(200))
        #expect(release.ifDue() != nil)
        #expect(release.ifDue() == nil)
        try await Task.sleep(for: .milliseconds(250))
        #expect(release.ifDue() != nil)
    }
}
