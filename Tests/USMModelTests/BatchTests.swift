import Foundation
import Testing
import USMFormat
import USMKernels
@testable import USMModel
import USMTestSupport

/// `ConformerModel.encode(batch:...)`: several streams through the layers together give each stream the frames it
/// gets alone, bit for bit.
@Suite struct Batch {
    /// Six streams of different audio in random chunks (none, a few frames, more than a layer slice), fed as one batch
    /// per step and, on other states, one stream at a time with the same chunks: every stream's frames are identical
    /// after every step, and with its final flush equal its offline frames. At each activation mode and context
    /// precision of the streaming test.
    @Test(arguments: [(ActivationMode.float, ContextPrecision.float32), (.int8PerBlock, .float32), (.int8PerBlock, .float16),
                      (.int8PerBlock, .int8), (.int5Binary, .float32)])
    func batchGivesEachStreamItsOwnFrames(mode: (activations: ActivationMode, context: ContextPrecision)) throws {
        let model = try ConformerModel(container: try Container.read(path: Parity.dir.appendingPathComponent("small-exp5.usm").path),
                                       activations: mode.activations)
        let golden = try Container.read(path: Parity.dir.appendingPathComponent("golden-exp5.usm").path)
        let base = try #require(golden.tensor("audio")).floatValues
        let streams = 6
        // each stream: the clip rotated and scaled differently, five times over (long enough for many steps)
        let audio: [[Float]] = (0..<streams).map { s in
            let r = s * base.count / streams, gain = Float(0.5 + 0.2 * Double(s))
            return Array(repeatElement(Array(base[r...] + base[..<r]).map { $0 * gain }, count: 5).joined())
        }
        var rng = SplitMix64(seed: 0xBA7C4)
        let ws = Workspace(), solo = Workspace()
        func state() -> EncoderState { model.makeEncoderState(maxChunkSeconds: 1, contextPrecision: mode.context) }
        var batched = (0..<streams).map { _ in state() }, alone = (0..<streams).map { _ in state() }
        var fromBatch = [[Float]](repeating: [], count: streams), fromAlone = fromBatch
        var at = [Int](repeating: 0, count: streams)
        var steps = 0, longChunks = 0, sharedSteps = 0
        while at.indices.contains(where: { at[$0] < audio[$0].count }) {
            // 0 to 3.75 s per stream and step: mostly short chunks, some empty, some over a slice (64 frames, 2.56 s)
            let chunks: [[Float]] = (0..<streams).map { s in
                let pick = Int.random(in: 0..<10, using: &rng)
                let n = pick == 0 ? 0 : pick < 9 ? Int.random(in: 160...4000, using: &rng) : Int.random(in: 48000...60000, using: &rng)
                let end = min(at[s] + n, audio[s].count)
                defer { at[s] = end }
                if n >= 48000 && end - at[s] >= 48000 { longChunks += 1 }  // 75 frames or more
                return Array(audio[s][at[s]..<end])
            }
            let sinks: [(UnsafeBufferPointer<Float>) -> Void] = (0..<streams).map { s in { fromBatch[s].append(contentsOf: $0) } }
            let before = fromBatch.map(\.count)
            model.encode(batch: &batched, samples: chunks, workspace: ws, frames: sinks)
            for s in 0..<streams {
                fromAlone[s] += model.encode(chunks[s], state: &alone[s], final: false, workspace: solo)
                let same = fromBatch[s] == fromAlone[s]  // (a failed expectation on the arrays would print them whole)
                #expect(same, "step \(steps), stream \(s)")
            }
            if zip(fromBatch, before).filter({ $0.count > $1 }).count > 1 { sharedSteps += 1 }
            steps += 1
        }
        #expect(longChunks > 0 && sharedSteps > 10, "the chunking covers long chunks and shared steps: \(longChunks), \(sharedSteps) of \(steps)")
        for s in 0..<streams {
            fromBatch[s] += model.encode([], state: &batched[s], final: true, workspace: ws)
            fromAlone[s] += model.encode([], state: &alone[s], final: true, workspace: solo)
            var offline = state()
            let whole = model.encode(audio[s], state: &offline, final: true, workspace: solo)
            let (batchedIsOffline, aloneIsOffline) = (fromBatch[s] == whole, fromAlone[s] == whole)
            #expect(batchedIsOffline, "stream \(s): batched then flushed = offline")
            #expect(aloneIsOffline, "stream \(s): alone = offline")
            #expect(batched[s].framesOut == whole.count / model.config.encoder.dim)
        }
    }
}
