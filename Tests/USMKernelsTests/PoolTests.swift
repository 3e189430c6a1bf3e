import Foundation
import Synchronization
import Testing
@testable import USMKernels

/// The kernel pool runs every part exactly once, on at most the threads a call asks for, whatever the number of
/// workers an earlier call started.
@Suite struct Pool {
    @Test func partsRunOnceOnAtMostTheThreadsAsked() {
        parallelFor(6) { _ in }  // an earlier call with more threads: 5 workers exist
        for (parts, threads) in [(64, 2), (8, 3), (3, 2), (40, 1)] {
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
}
