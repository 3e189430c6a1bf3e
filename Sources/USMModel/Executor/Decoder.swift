import Foundation
import USMKernels

/// An emitted token with the encoder frame it was emitted at.
public struct EmittedToken: Sendable, Equatable {
    public var id: Int
    public var frame: Int
}

/// LSTM predictor state after some tokens, with the joint's projection of its output cached.
struct PredictorState: Sendable {
    var h: [[Float]]
    var c: [[Float]]
    /// pred_proj(h_last)
    var projected: [Float]
}

/// Search settings.
public enum SearchMethod: Sendable, Equatable {
    case greedy
    /// modified beam search: at most one symbol per frame and hypothesis, `width` hypotheses
    case beam(width: Int)
}

/// Per-stream decoder state.
public struct DecoderState: Sendable {
    struct Hypothesis: Sendable {
        var tokens: [EmittedToken]
        var logProb: Double
        var predictor: PredictorState
    }

    var hypotheses: [Hypothesis]
    let method: SearchMethod
    /// encoder frames decoded so far
    public internal(set) var frames = 0
    /// reused joint buffers (`[speculativeFrames, joint.dim]`, `[speculativeFrames, vocab_size]`)
    var z: [Float] = []
    var logits: [Float] = []
    /// Greedy search scores up to this many frames with one joint product, as if the frames before each were blank
    /// (they share the predictor state until a frame emits); 1 scores one frame at a time. The tokens do not
    /// depend on it (the products are batch invariant), only the speed. At USM-1B shape (a 42 MB f32 joint) 32 frames
    /// took the greedy decoder of 10 s from 0.050-0.053 to 0.043-0.049 s (64: no further gain, 2 MB more logits).
    public var speculativeFrames = 32
    /// frames the next greedy product scores (grows while frames are blank, shrinks when they emit)
    var window = 4
    /// enc_proj of the frames of one decode call (grows to the largest call)
    var projected: [Float] = []

    /// The best hypothesis so far.
    public var tokens: [EmittedToken] { hypotheses.max(by: { $0.logProb < $1.logProb })?.tokens ?? [] }
}

extension ConformerModel {
    public func makeDecoderState(method: SearchMethod = .greedy, workspace: Workspace) -> DecoderState {
        let start = predictorStep(token: config.blankId, from: nil, workspace: workspace)
        return DecoderState(hypotheses: [.init(tokens: [], logProb: 0, predictor: start)], method: method)
    }

    /// Advances the predictor by one token (from the zero state when `from` is nil).
    func predictorStep(token: Int, from state: PredictorState?, workspace ws: Workspace) -> PredictorState {
        let p = config.predictor
        let hidden = p.hidden
        var x = inputGates == nil ? embedding.dequantizedRow(token) : []  // layer 0's input (in the table otherwise)
        var hs: [[Float]] = [], cs: [[Float]] = []
        hs.reserveCapacity(p.layers)
        cs.reserveCapacity(p.layers)
        for l in 0..<p.layers {
            var gates: [Float]
            if l == 0, let table = inputGates {
                // the token's precomputed W_ih x + b, plus W_hh h (nothing from the zero state)
                let g = 4 * hidden
                gates = Array(table[(token * g)..<((token + 1) * g)])
                if let h = state?.h[0] {
                    let recurrent = linear(lstm[0], h, 1, ws)
                    for i in 0..<g { gates[i] += recurrent[i] }
                }
            } else {
                var xh = x
                if let h = state?.h[l] { xh.append(contentsOf: h) } else { xh.append(contentsOf: repeatElement(0, count: hidden)) }
                gates = linear(lstm[l], xh, 1, ws)
            }
            var c = state?.c[l] ?? [Float](repeating: 0, count: hidden)
            var h = [Float](repeating: 0, count: hidden)
            gates.withUnsafeBufferPointer { g in
                c.withUnsafeMutableBufferPointer { cp in
                    h.withUnsafeMutableBufferPointer { Elementwise.lstmCell(gates: g.baseAddress!, c: cp.baseAddress!, h: $0.baseAddress!, hidden: hidden) }
                }
            }
            hs.append(h)
            cs.append(c)
            x = h
        }
        return PredictorState(h: hs, c: cs, projected: linear(predProj, x, 1, ws))
    }

    /// Joint logits for one projected encoder frame and predictor state.
    func jointLogits(_ encProjected: ArraySlice<Float>, _ pred: PredictorState, _ ws: Workspace) -> [Float] {
        let n = config.joint.dim
        var z = [Float](repeating: 0, count: n)
        encProjected.withUnsafeBufferPointer { e in
            pred.projected.withUnsafeBufferPointer { p in
                z.withUnsafeMutableBufferPointer { Elementwise.addTanh(e.baseAddress!, p.baseAddress!, $0.baseAddress!, n) }
            }
        }
        return linear(jointOut, z, 1, ws)
    }

    /// Decodes new encoder frames (`[n, dim]`).
    public func decode(_ encoderFrames: [Float], state: inout DecoderState, workspace ws: Workspace) {
        let d = config.encoder.dim, jd = config.joint.dim
        let n = encoderFrames.count / d
        guard n > 0 else { return }
        Workspace.grow(&state.projected, n * jd)
        apply(encProj, encoderFrames, n, &state.projected, ws)
        let projected = state.projected  // shares the buffer while decoding (no copy: state.projected is not written below)
        switch state.method {
        case .greedy:
            greedy(projected, frames: n, state: &state, ws)
        case .beam(let width):
            for r in 0..<n {
                let e = projected[(r * jd)..<((r + 1) * jd)]
                state.hypotheses = beamStep(state.hypotheses, e, frame: state.frames + r, width: width, ws)
            }
        }
        state.frames += n
    }

    /// Greedy search over `n` projected frames. Until a frame emits, the frames share one predictor state, so a
    /// window of them is scored with one joint product (the joint's weights read once, not once per frame): the
    /// frames before the first that emits are blank, as frame-by-frame search finds, and search goes on from the
    /// frame after it. The window doubles while frames are blank and shrinks when one emits; only the speed depends
    /// on it.
    func greedy(_ projected: [Float], frames n: Int, state: inout DecoderState, _ ws: Workspace) {
        let jd = config.joint.dim, vocab = config.vocabSize, blank = config.blankId
        guard config.maxSymbolsPerFrame > 0 else { return }
        let most = max(state.speculativeFrames, 1)
        Workspace.grow(&state.z, most * jd)
        Workspace.grow(&state.logits, most * vocab)
        // moved out and back so appending a token does not copy the token array
        var hyp = state.hypotheses[0]
        state.hypotheses[0].tokens = []
        var r = 0
        while r < n {
            let b = min(state.window, most, n - r)  // the window is at least 1
            jointLogits(projected, from: r, count: b, hyp.predictor, state: &state, ws)
            let emitting = state.logits.withUnsafeBufferPointer { l in
                (0..<b).first { Elementwise.argmax(l.baseAddress! + $0 * vocab, vocab) != blank }
            }
            guard let i = emitting else {
                r += b
                state.window = min(2 * b, most)
                continue
            }
            let frame = state.frames + r + i
            var best = state.logits.withUnsafeBufferPointer { Elementwise.argmax($0.baseAddress! + i * vocab, vocab) }
            var symbols = 0
            while best != blank {
                hyp.tokens.append(EmittedToken(id: best, frame: frame))
                hyp.predictor = predictorStep(token: best, from: hyp.predictor, workspace: ws)
                symbols += 1
                if symbols == config.maxSymbolsPerFrame { break }
                jointLogits(projected, from: r + i, count: 1, hyp.predictor, state: &state, ws)
                best = state.logits.withUnsafeBufferPointer { Elementwise.argmax($0.baseAddress!, vocab) }
            }
            r += i + 1
            state.window = max(2 * i, 1)
        }
        state.hypotheses[0] = hyp
    }

    /// Joint logits of projected frames `r ..< r + count` with one predictor state, into `state.logits`
    /// (`[count, vocab_size]`), one product.
    func jointLogits(_ projected: [Float], from r: Int, count: Int, _ pred: PredictorState, state: inout DecoderState,
                     _ ws: Workspace) {
        let jd = config.joint.dim
        projected.withUnsafeBufferPointer { e in
            pred.projected.withUnsafeBufferPointer { p in
                state.z.withUnsafeMutableBufferPointer { z in
                    for i in 0..<count {
                        Elementwise.addTanh(e.baseAddress! + (r + i) * jd, p.baseAddress!, z.baseAddress! + i * jd, jd)
                    }
                }
            }
        }
        apply(jointOut, state.z, count, &state.logits, ws)
    }

    /// One frame of modified beam search.
    func beamStep(_ hyps: [DecoderState.Hypothesis], _ e: ArraySlice<Float>, frame: Int, width: Int,
                  _ ws: Workspace) -> [DecoderState.Hypothesis] {
        struct Candidate { var hyp: Int; var token: Int?; var score: Double; var key: [Int] }
        var candidates: [Candidate] = []
        for (hi, h) in hyps.enumerated() {
            let logits = jointLogits(e, h.predictor, ws)
            let m = logits.max()!
            let lse = Double(m) + log(logits.reduce(0.0) { $0 + exp(Double($1 - m)) })
            let lp = logits.map { Double($0) - lse }
            let key = h.tokens.map(\.id)
            candidates.append(Candidate(hyp: hi, token: nil, score: h.logProb + lp[config.blankId], key: key))
            let top = lp.indices.filter { $0 != config.blankId }.sorted { lp[$0] > lp[$1] }.prefix(width)
            for t in top { candidates.append(Candidate(hyp: hi, token: t, score: h.logProb + lp[t], key: key + [t])) }
        }
        // Merge candidates that spell the same tokens (log-sum-exp), keep the best `width`.
        var merged: [[Int]: Candidate] = [:]
        for c in candidates {
            if let old = merged[c.key] {
                let (a, b) = (max(old.score, c.score), min(old.score, c.score))
                var keep = old.score >= c.score ? old : c
                keep.score = a + log1p(exp(b - a))
                merged[c.key] = keep
            } else {
                merged[c.key] = c
            }
        }
        let chosen = merged.values.sorted { $0.score > $1.score }.prefix(width)
        return chosen.map { c in
            var h = hyps[c.hyp]
            h.logProb = c.score
            if let t = c.token {
                h.tokens.append(EmittedToken(id: t, frame: frame))
                h.predictor = predictorStep(token: t, from: h.predictor, workspace: ws)
            }
            return h
        }
    }
}
