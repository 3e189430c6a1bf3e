import Foundation
import Testing
import USMTestSupport
@testable import USMKernels

/// The kernel pool runs every part exactly once, on at most the threads a call asks for, whatever the number of
/// workers an earlier call started.
@Suite struct Pool {
    @Test func partsRunOnceOnAtMostTheThreadsAsked() {
        parallelFor(6) { _ in }  // an earlier call with more threads: 5 workers exist
        for (parts, threads) in [(64, 2), (8, 3), (3, 2), (40, 1), (32, 2), (33, 2), (31, 4)] {
            let runs = Locked([Int](repeating: 0, count: parts))
            let seen = Locked(Set<UInt>())
            parallelFor(parts, threads: threads) { i in
                runs.withLock { $0[i] += 1 }
                seen.withLock { _ = $0.insert(UInt(bitPattern: Int(bitPattern: pthread_self()))) }
                usleep(200)  // long enough that idle workers would join if they could
            }
            #expect(runs.withLock { $0 } == [Int](repeating: 1, count: parts), "\(parts) parts, \(threads) threads")
            #expect(seen.withLock { $0.count } <= threads, "\(parts) parts, \(threads) threads")
        }
    }

    /// Jobs of more than 32 parts (one shared counter) and of at most 32 (a claim bit per part) alternate back to
    /// back on more threads than CPUs, so workers are preempted between reading a job's layout and claiming a part
    /// while the next job, of the other layout, starts: every part of every job still runs exactly once, with an index
    /// inside the job, and no part of an earlier job runs once its call has returned. Whether a worker is preempted
    /// at that point is up to the scheduler: a failure is always real, a pass is evidence rather than proof.
    @Test func jobsOfBothLayoutsBackToBackRunEachPartOnce() {
        let finished = Locked(true)
        for round in 0..<6000 {
            let parts = round % 2 == 0 ? 33 + round % 31 : 2 + round % 31
            let threads = 2 + round % 15
            let runs = Locked([Int](repeating: 0, count: parts))
            let outside = Locked(0)
            finished.withLock { $0 = false }
            parallelFor(parts, threads: threads) { i in
                if finished.withLock({ $0 }) || i < 0 || i >= parts { outside.withLock { $0 += 1 }; return }
                runs.withLock { $0[i] += 1 }
                if i % 4 == 0 { usleep(5) }  // parts long enough that workers take some
            }
            finished.withLock { $0 = true }
            let counts = runs.withLock { $0 }
            let wrong = outside.withLock { $0 }
            if counts != [Int](repeating: 1, count: parts) || wrong != 0 {
                Issue.record("round \(round): \(parts) parts on \(threads) threads ran \(counts), \(wrong) outside the job")
                return
            }
        }
    }

    /// Jobs of up to 32 parts: each thread takes its own share first (the caller the first half with 2 threads, the
    /// worker the second), so steps split the same way keep their rows on one core. Part 0 waits until part 2 has
    /// started, part 1 until part 3 has and part 3 until part 1 has (each at most 50 ms): with own shares first the
    /// worker starts 2 while the caller waits in 0, and waits in 3 until the caller has taken 1, so the caller runs 0
    /// and 1 and the worker 2 and 3. Taking parts in turn from one counter never gives that split (the worker would
    /// take part 1 while the caller waits in part 0). A job runs inline when another
    /// test's job holds the pool, and a worker can be late on a busy machine, so attempts repeat for up to 60 s.
    @Test func eachThreadTakesItsOwnPartsFirst() {
        let me = UInt(bitPattern: Int(bitPattern: pthread_self()))
        let deadline = Date().addingTimeInterval(60)
        var split = false
        var attempts = 0
        while !split && Date() < deadline {
            attempts += 1
            let owner = Locked([UInt](repeating: 0, count: 4))
            let started = Locked([Bool](repeating: false, count: 4))
            parallelFor(4, threads: 2) { i in
                owner.withLock { $0[i] = UInt(bitPattern: Int(bitPattern: pthread_self())) }
                started.withLock { $0[i] = true }
                // 0 waits for 2, 1 for 3, 3 for 1 (so a worker done with its share cannot take part 1 first)
                let waitFor = [2, 3, -1, 1][i]
                if waitFor >= 0 {
                    let waitUntil = Date().addingTimeInterval(0.05)
                    while !started.withLock({ $0[waitFor] }) && Date() < waitUntil { usleep(100) }
                }
            }
            let o = owner.withLock { $0 }
            split = o[0] == me && o[1] == me && o[2] != me && o[3] == o[2]
        }
        #expect(split, "the caller ran parts 0 and 1, one worker 2 and 3 (\(attempts) attempts)")
    }

    /// Workers started for a job take part in it, however late their threads start: a job on more threads than any
    /// earlier one (so it starts workers) whose parts each wait until all of them are running reaches that point.
    /// A job runs inline (one thread, no workers started) when another test's job holds the pool: such an attempt is
    /// recognised by every part having run on the calling thread, a later part of it does not wait, and it repeats.
    @Test func workersStartedForAJobTakePartInIt() {
        let parts = 60  // above what the other tests ask for: this job starts workers
        let me = UInt(bitPattern: Int(bitPattern: pthread_self()))
        var peakSeen = 0
        var inlineAttempts = 0
        for _ in 0..<8 {
            let running = Locked(0)
            let peak = Locked(0)
            let callerDone = Locked(0)
            let others = Locked(0)
            parallelFor(parts, threads: parts) { _ in
                let onCaller = UInt(bitPattern: Int(bitPattern: pthread_self())) == me
                if !onCaller { others.withLock { $0 += 1 } }
                let now = running.withLock { $0 += 1; return $0 }
                peak.withLock { $0 = max($0, now) }
                if !(onCaller && callerDone.withLock({ $0 }) > 0) {
                    let waitUntil = Date().addingTimeInterval(10)
                    while running.withLock({ $0 }) < parts && peak.withLock({ $0 }) < parts && Date() < waitUntil {
                        usleep(500)
                    }
                }
                running.withLock { $0 -= 1 }
                if onCaller { callerDone.withLock { $0 += 1 } }
            }
            peakSeen = peak.withLock { $0 }
            if others.withLock({ $0 }) > 0 { break }
            inlineAttempts += 1
        }
        #expect(inlineAttempts < 8, "every attempt ran inline: another job held the pool throughout")
        #expect(peakSeen == parts, "at most \(peakSeen) of \(parts) parts ran at once")
    }
}
