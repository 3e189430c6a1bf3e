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
    /// reused joint buffers (`[joint.dim]`, `[vocab_size]`)
    var z: [Float] = []
    var logits: [Float] = []
    /// enc_proj of the frames of one decode call (grows to the largest call)
    var projected: [Float] = []

    /// The best hypothesis so far.
    public var tokens: [EmittedToken] { hypotheses.max(by: { $0.logProb < $1.logProb })?.tokens ?? [] }
}

extension ConformerModel {
    public func makeDecoderState(method: SearchMethod = .greedy, workspace: Workspace) -> DecoderState {
        let start = predictorStep(token: config.blankId, from: nil, workspace: workspace)
        var s = DecoderState(hypotheses: [.init(tokens: [], logProb: 0, predictor: start)], method: method)
        s.z = [Float](repeating: 0, count: config.joint.dim)
        s.logits = [Float](repeating: 0, count: config.vocabSize)
        return s
    }

    /// Advances the predictor by one token (from the zero state when `from` is nil).
    func predictorStep(token: Int, from state: PredictorState?, workspace ws: Workspace) -> PredictorState {
        let p = config.predictor
        let hidden = p.hidden
        var x = embedding.dequantizedRow(token)
        var hs: [[Float]] = [], cs: [[Float]] = []
        hs.reserveCapacity(p.layers)
        cs.reserveCapacity(p.layers)
        for l in 0..<p.layers {
            var xh = x
            if let h = state?.h[l] { xh.append(contentsOf: h) } else { xh.append(contentsOf: repeatElement(0, count: hidden)) }
            let gates = linear(lstm[l], xh, 1, ws)
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
        var z = [Float](repeating: 0, count: config.joint.dim)
        var logits = [Float](repeating: 0, count: config.vocabSize)
        jointLogits(encProjected, pred, z: &z, logits: &logits, ws)
        return logits
    }

    /// Joint logits into caller-owned buffers (`z`: `[joint.dim]`, `logits`: `[vocab_size]`).
    func jointLogits(_ encProjected: ArraySlice<Float>, _ pred: PredictorState, z: inout [Float], logits: inout [Float],
                     _ ws: Workspace) {
        let n = config.joint.dim
        encProjected.withUnsafeBufferPointer { e in
            pred.projected.withUnsafeBufferPointer { p in
                z.withUnsafeMutableBufferPointer { Elementwise.addTanh(e.baseAddress!, p.baseAddress!, $0.baseAddress!, n) }
            }
        }
        apply(jointOut, z, 1, &logits, ws)
    }

    /// Decodes new encoder frames (`[n, dim]`).
    public func decode(_ encoderFrames: [Float], state: inout DecoderState, workspace ws: Workspace) {
        let d = config.encoder.dim, jd = config.joint.dim
        let n = encoderFrames.count / d
        guard n > 0 else { return }
        Workspace.grow(&state.projected, n * jd)
        apply(encProj, encoderFrames, n, &state.projected, ws)
        let projected = state.projected  // shares the buffer while decoding (no copy: state.projected is not written below)
        for r in 0..<n {
            let frame = state.frames + r
            let e = projected[(r * jd)..<((r + 1) * jd)]
            switch state.method {
            case .greedy:
                // moved out and back so appending a token does not copy the token array
                var hyp = state.hypotheses[0]
                state.hypotheses[0].tokens = []
                for _ in 0..<config.maxSymbolsPerFrame {
                    jointLogits(e, hyp.predictor, z: &state.z, logits: &state.logits, ws)
                    let best = state.logits.withUnsafeBufferPointer { l in
                        var best = 0
                        for k in 1..<l.count where l[k] > l[best] { best = k }
                        return best
                    }
                    if best == config.blankId { break }
                    hyp.tokens.append(EmittedToken(id: best, frame: frame))
                    hyp.predictor = predictorStep(token: best, from: hyp.predictor, workspace: ws)
                }
                state.hypotheses[0] = hyp
            case .beam(let width):
                state.hypotheses = beamStep(state.hypotheses, e, frame: frame, width: width, ws)
            }
        }
        state.frames += n
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
