import Foundation
import Testing
import USMAudio
import USMRecognizer
import USMTestSupport

/// `RecognitionStream.accept(batch:)`: many streams fed together get what each gets fed alone.
@Suite struct BatchAccept {
    /// Eight streams of the bundled model (speech with pauses, at four input rates, greedy and beam search, three
    /// endpoint rules), fed step by step in random chunks as one batch per step, and the same streams on their own
    /// with the same chunks. The batches also hold a stream of another recognizer, a second chunk of one stream and
    /// non-finite samples. After every step each stream's partial result (tokens and their times) and endpoint
    /// equal its twin's, an error is the one `accept` throws, and every final transcript is the same.
    @Test func batchesGiveEachStreamWhatItGetsAlone() throws {
        let root = Fixtures.golden.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let model = root.appendingPathComponent("Models/usm-infer-default.usm").path
        let r = try Recognizer(path: model), other = try Recognizer(path: model)
        let speech = try Audio.load(path: root.appendingPathComponent("Models/sample.wav").path, sampleRate: 16000).samples
        let silence = [Float](repeating: 0, count: 24000)
        let clip = speech + silence
        let rates = [16000, 8000, 22050, 44100]
        let rules = [EndpointRules(), EndpointRules(trailingSilence: 0.5, maxUtterance: 3), EndpointRules(trailingSilence: nil, maxUtterance: nil)]
        var rng = SplitMix64(seed: 0xACCE97)
        struct Twin { let batched: RecognitionStream, alone: RecognitionStream, audio: [Float], rate: Int; var at = 0 }
        var twins: [Twin] = try (0..<8).map { i in
            let rate = rates[i % rates.count], recognizer = i == 7 ? other : r
            let search: SearchMethod = i % 3 == 2 ? .beam(width: 3) : .greedy
            func make() throws -> RecognitionStream {
                try recognizer.makeStream(search: search, endpoint: rules[i % rules.count], inputSampleRate: rate)
            }
            let offset = i * clip.count / 8
            let audio = try Resampler.resample(Array(clip[offset...] + clip[..<offset]), from: 16000, to: rate)
            return Twin(batched: try make(), alone: try make(), audio: audio, rate: rate)
        }
        var steps = 0, endpoints = 0, errors = 0
        while twins.contains(where: { $0.at < $0.audio.count }) {
            var items: [(stream: RecognitionStream, samples: [Float])] = [], owners: [Int] = []
            for i in twins.indices.shuffled(using: &rng) {
                // 0 to 0.3 s, now and then a second chunk of the same stream, rarely a bad sample
                for _ in 0..<(Int.random(in: 0..<8, using: &rng) == 0 ? 2 : 1) {
                    let n = min(Int.random(in: 0...(twins[i].rate * 3 / 10), using: &rng), twins[i].audio.count - twins[i].at)
                    var chunk = Array(twins[i].audio[twins[i].at..<(twins[i].at + n)])
                    if n > 0 && Int.random(in: 0..<60, using: &rng) == 0 { chunk[n / 2] = .nan } else { twins[i].at += n }
                    items.append((twins[i].batched, chunk))
                    owners.append(i)
                }
            }
            let results = RecognitionStream.accept(batch: items)
            for (k, i) in owners.enumerated() {
                var expected: RecognizerError?
                do { try twins[i].alone.accept(samples: items[k].samples) } catch { expected = error }
                #expect("\(String(describing: results[k]))" == "\(String(describing: expected))", "step \(steps), stream \(i)")
                if expected != nil { errors += 1 }
            }
            for i in twins.indices {
                let (a, b) = (twins[i].batched.partial, twins[i].alone.partial)
                #expect(a.tokens == b.tokens && a.text == b.text, "step \(steps), stream \(i): partial")
                #expect(twins[i].batched.isEndpoint == twins[i].alone.isEndpoint, "step \(steps), stream \(i): endpoint")
                if twins[i].alone.isEndpoint {
                    endpoints += 1
                    let (fa, fb) = (twins[i].batched.finish(), twins[i].alone.finish())
                    #expect(fa.tokens == fb.tokens && fa.words == fb.words, "step \(steps), stream \(i): final at the endpoint")
                    twins[i].batched.reset()
                    twins[i].alone.reset()
                }
            }
            steps += 1
        }
        for t in twins {
            let (a, b) = (t.batched.finish(), t.alone.finish())
            #expect(a.tokens == b.tokens && a.words == b.words && a.text == b.text)
            #expect(a.timings.audioSeconds == b.timings.audioSeconds)
        }
        #expect(endpoints >= 4 && errors >= 2 && steps > 20, "\(endpoints) endpoints, \(errors) errors, \(steps) steps")
    }
}
