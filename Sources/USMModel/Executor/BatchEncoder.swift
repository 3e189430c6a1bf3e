import USMKernels

extension ConformerModel {
    /// Non-final chunks of several streams of this model at once: `states[i]` takes `samples[i]` and hands its frames
    /// to `sinks[i]` exactly as `encode(samples[i], state: &states[i], final: false, workspace:, frames: sinks[i])`
    /// would: the same frames, in slices of at most `layerSlice` rows. The frontend, the subsampling and each
    /// stream's attention and depthwise conv run stream by stream; every other stage of a layer (the products,
    /// norms and row-wise functions, which are batch invariant) runs once over the new frames of all the streams, so
    /// its products have more rows: less time per frame when each stream brings a few frames (a 100 ms chunk brings
    /// 2-3). A stream whose chunk brings more than a slice goes through each layer a slice per call, as alone.
    /// The layers' time is charged to the streams in proportion to their frames. `workspace` is used for the whole
    /// batch (its threads run each stage); `sinks` may use it but not `states`.
    public func encode(batch states: inout [EncoderState], samples: [[Float]], workspace: Workspace,
                       frames sinks: [(UnsafeBufferPointer<Float>) -> Void]) {
        precondition(states.count == samples.count && states.count == sinks.count, "one chunk and one sink per stream")
        let clock = ContinuousClock()
        let d = config.encoder.dim, slice = Self.layerSlice, wide = max(config.encoder.ffnDim, 2 * d)
        var frames = [Int](repeating: 0, count: states.count)
        for i in states.indices { frames[i] = subsample(samples[i], state: &states[i], workspace: workspace) }
        let total = frames.reduce(0, +)
        guard total > 0 else { return }
        // Arena: two `[total, dim]` buffers the layers take in turn (stream i's rows from `offset[i]`: a non-final
        // layer gives at most the rows it takes), then the temporaries of one round of layer calls (at most a slice
        // per stream).
        let rows = frames.reduce(0) { $0 + min($1, slice) }
        let arena = workspace.batchScratch((2 * total + 5 * rows) * d + rows * wide)
        var (src, dst) = (arena, arena + total * d)
        let temps = arena + 2 * total * d
        let ls = LayerScratch(t: temps, o: temps + rows * d, q: temps + 2 * rows * d, x: temps + 3 * rows * d,
                              h: temps + 5 * rows * d, gather: temps + 4 * rows * d)
        var offset = [Int](repeating: 0, count: states.count)
        for i in states.indices.dropFirst() { offset[i] = offset[i - 1] + frames[i - 1] }
        let tLayers = clock.now
        for i in states.indices where frames[i] > 0 {
            states[i].scratch.convOut.withUnsafeBufferPointer { project($0.baseAddress!, frames[i], src + offset[i] * d, workspace) }
        }
        var timing = LayerTypeSeconds()
        timing.subsampling = (clock.now - tLayers).seconds
        var count = frames
        for l in layers.indices {
            var produced = [Int](repeating: 0, count: states.count)
            var round = 0
            while true {
                var calls: [LayerCall] = [], members: [Int] = []
                for i in states.indices where count[i] > round * slice {
                    calls.append(LayerCall(input: src + (offset[i] + round * slice) * d, rows: min(slice, count[i] - round * slice),
                                           output: dst + (offset[i] + produced[i]) * d))
                    members.append(i)
                }
                if calls.isEmpty { break }
                var layerStates = members.map { _ in LayerState(dim: 1) }
                for (k, i) in members.enumerated() { swap(&layerStates[k], &states[i].layers[l]) }
                runLayer(l, calls: &calls, states: &layerStates, final: false, scratch: ls, workspace: workspace, timing: &timing)
                for (k, i) in members.enumerated() {
                    swap(&layerStates[k], &states[i].layers[l])
                    produced[i] += calls[k].produced
                }
                round += 1
            }
            count = produced
            swap(&src, &dst)
        }
        let seconds = (clock.now - tLayers).seconds
        for i in states.indices {
            let share = Double(frames[i]) / Double(total)
            states[i].encoderSeconds += seconds * share
            states[i].layerTypeSeconds.subsampling += timing.subsampling * share
            states[i].layerTypeSeconds.ffn += timing.ffn * share
            states[i].layerTypeSeconds.attention += timing.attention * share
            states[i].layerTypeSeconds.conv += timing.conv * share
            states[i].framesOut += count[i]
            var k = 0
            while k < count[i] {
                let m = min(slice, count[i] - k)
                sinks[i](UnsafeBufferPointer(start: src + (offset[i] + k) * d, count: m * d))
                k += m
            }
        }
    }

    /// The frontend and the subsampling convs of one stream's chunk (their rows left in its `scratch.convOut`, as
    /// `encode` leaves them), their time counted as `encode` counts it; returns the rows.
    private func subsample(_ samples: [Float], state: inout EncoderState, workspace: Workspace) -> Int {
        precondition(!state.finished, "encode after the final chunk")
        let (rows, t1) = featuresAndConvs(samples, state: &state, final: false, workspace: workspace)
        let seconds = (ContinuousClock.now - t1).seconds
        state.layerTypeSeconds.subsampling += seconds
        state.encoderSeconds += seconds
        return rows
    }
}
