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
        var x = embedding.dequantizedRow(token)
        var hs: [[Float]] = [], cs: [[Float]] = []
        for l in 0..<p.layers {
            let hPrev = state?.h[l] ?? [Float](repeating: 0, count: hidden)
            var cPrev = state?.c[l] ?? [Float](repeating: 0, count: hidden)
            let gates = linear(lstm[l], x + hPrev, 1, ws)
            var h = [Float](repeating: 0, count: hidden)
            for u in 0..<hidden {
                let i = NN.sigmoid(gates[u]), f = NN.sigmoid(gates[hidden + u])
                let g = tanh(gates[2 * hidden + u]), o = NN.sigmoid(gates[3 * hidden + u])
                cPrev[u] = f * cPrev[u] + i * g
                h[u] = o * tanh(cPrev[u])
            }
            hs.append(h)
            cs.append(cPrev)
            x = h
        }
        return PredictorState(h: hs, c: cs, projected: linear(predProj, x, 1, ws))
    }

    /// Joint logits for one projected encoder frame and predictor state.
    func jointLogits(_ encProjected: ArraySlice<Float>, _ pred: PredictorState, _ ws: Workspace) -> [Float] {
        var z = [Float](repeating: 0, count: config.joint.dim)
        var i = 0
        for e in encProjected { z[i] = tanh(e + pred.projected[i]); i += 1 }
        return linear(jointOut, z, 1, ws)
    }

    /// Decodes new encoder frames (`[n, dim]`).
    public func decode(_ encoderFrames: [Float], state: inout DecoderState, workspace ws: Workspace) {
        let d = config.encoder.dim, jd = config.joint.dim
        let n = encoderFrames.count / d
        guard n > 0 else { return }
        let projected = linear(encProj, encoderFrames, n, ws)
        for r in 0..<n {
            let frame = state.frames + r
            let e = projected[(r * jd)..<((r + 1) * jd)]
            switch state.method {
            case .greedy:
                var hyp = state.hypotheses[0]
                for _ in 0..<config.maxSymbolsPerFrame {
                    let logits = jointLogits(e, hyp.predictor, ws)
                    var best = 0
                    for k in 1..<logits.count where logits[k] > logits[best] { best = k }
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
