import Dispatch
import Foundation
import Testing
import USMAudio
import USMRecognizer
import USMTestSupport

/// One model shared by many streams on many threads, and recognizers loaded and released concurrently. Run under
/// ThreadSanitizer by `scripts/sanitizers.sh`.
@Suite struct Concurrency {
    /// What one stream is fed: audio at `rate`, in chunks of the given sizes.
    struct Plan: Sendable {
        var rate: Int
        var audio: [Float]
        var chunks: [Int]
    }

    static func plans(count: Int, audio: [Float]) throws -> [Plan] {
        var rng = SplitMix64(seed: 42)  // seeded: a failing chunking can be run again
        let rates = [8000, 16000, 22050, 44100, 11025, 48000]
        var byRate: [Int: [Float]] = [:]
        for r in rates { byRate[r] = try Resampler.resample(audio, from: 16000, to: r) }
        return (0..<count).map { i in
            let rate = rates[i % rates.count]
            let samples = byRate[rate]!
            var chunks: [Int] = []
            var left = samples.count
            while left > 0 {
                let n = min(left, Int(rng.next() % UInt64(rate / 5)) + 1)  // 1 sample ... 0.2 s
                chunks.append(n)
                left -= n
            }
            return Plan(rate: rate, audio: samples, chunks: chunks)
        }
    }

    static func run(_ plan: Plan, on r: Recognizer, pause: (() -> Void)? = nil) throws -> Transcript {
        let stream = try r.makeStream(inputSampleRate: plan.rate)
        var at = 0
        for n in plan.chunks {
            try stream.accept(samples: Array(plan.audio[at..<at + n]))
            at += n
            _ = stream.partial
            pause?()
        }
        return stream.finish()
    }

    @Test func thirtyTwoStreamsAtOnceGiveTheirTranscriptsAlone() throws {
        let r = try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(threads: 2))
        let plans = try Self.plans(count: 32, audio: try Fixtures.audio())
        let alone = try plans.map { try Self.run($0, on: r) }
        let together = Locked<[Int: Result<Transcript, RecognizerError>]>([:])
        DispatchQueue.concurrentPerform(iterations: plans.count) { i in
            // different input rates: each stream sleeps between chunks for a time of its own
            let pause = { _ = usleep(UInt32(50 * (i % 7))) }
            let result = Result { () throws(RecognizerError) -> Transcript in
                do { return try Self.run(plans[i], on: r, pause: pause) } catch let e as RecognizerError { throw e } catch {
                    throw .invalidState("\(error)")
                }
            }
            together.withLock { $0[i] = result }
        }
        let results = together.withLock { $0 }
        for i in plans.indices {
            let t = try #require(try results[i]?.get())
            #expect(t.tokens == alone[i].tokens, "stream \(i) at \(plans[i].rate) Hz")
            #expect(t.text == alone[i].text)
        }
        #expect(alone.contains { !$0.tokens.isEmpty }, "the streams recognize something")
    }

    @Test func recognizersLoadedAndReleasedConcurrently() throws {
        let audio = try Fixtures.audio()
        let expected = try Recognizer(path: Fixtures.modelPath).transcribe(samples: audio, sampleRate: 16000).tokens
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            do {
                let r = try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(threads: 1 + i % 2))
                let t = try r.transcribe(samples: audio, sampleRate: 16000)
                if t.tokens != expected { failures.withLock { $0.append("recognizer \(i): other tokens") } }
            } catch {
                failures.withLock { $0.append("recognizer \(i): \(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
    }
}
