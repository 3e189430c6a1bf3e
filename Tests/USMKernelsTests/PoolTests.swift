import Foundation
import Synchronization
import Testing
@testable import USMKernels

/// The kernel pool runs every part exactly once, on at most the threads a call asks for, whatever the number of
/// workers an earlier call started.
@Suite struct Pool {
    @Test func partsRunOnceOnAtMostTheThreadsAsked() {
        parallelFor(6) { _ in }  // an earlier call with more threads: 5 workers exist
        for (parts, threads) in [(64, 2), (8, 3), (3, 2), (40, 1), (32, 2), (33, 2), (31, 4)] {
            let runs = Mutex([Int](repeating: 0, count: parts))
            let seen = Mutex(Set<UInt>())
            parallelFor(parts, threads: threads) { i in
                runs.withLock { $0[i] += 1 }
                seen.withLock { _ = $0.insert(UInt(bitPattern: Int(bitPattern: pthread_self()))) }
                usleep(200)  // long enough that idle workers would join if they could
            }
            #expect(runs.withLock { $0 } == [Int](repeating: 1, count: parts), "\(parts) parts, \(threads) threads")
            #expect(seen.withLock { $0.count } <= threads, "\(parts) parts, \(threads) threads")
        }
    }

    /// Jobs of up to 32 parts: each thread takes its own share first (the caller the first half with 2 threads, the
    /// worker the second), so steps split the same way keep their rows on one core. A worker can be late on a busy
    /// machine (then the caller takes more), so this asks for the split in one of 20 jobs; taking parts in turn from
    /// one counter gives it in none (the worker would take part 1 while the caller runs part 0).
    @Test func eachThreadTakesItsOwnPartsFirst() {
        let me = UInt(bitPattern: Int(bitPattern: pthread_self()))
        var split = false
        for _ in 0..<20 where !split {
            let owner = Mutex([UInt](repeating: 0, count: 4))
            parallelFor(4, threads: 2) { i in
                owner.withLock { $0[i] = UInt(bitPattern: Int(bitPattern: pthread_self())) }
                usleep(1000)
            }
            let o = owner.withLock { $0 }
            split = o[0] == me && o[1] == me && o[2] != me && o[3] == o[2]
        }
        #expect(split, "the caller ran parts 0 and 1, one worker 2 and 3")
    }
}
