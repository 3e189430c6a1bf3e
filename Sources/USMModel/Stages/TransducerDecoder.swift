import Foundation
import USMKernels
import USMTensor

/// Predictor stage: an embedding and stacked LSTM layers (NeMo `RNNTDecoder` with `blank_as_pad`).
///
/// Contract: `start()` is the state before any token (a zero input vector and zero LSTM state, NeMo's
/// `predict(None, state=None)`); `step(token:from:)` feeds a word piece and returns the next state; `output` is the
/// last layer's `h`. Gate order (i, f, g, o); layer l's weight `[4P, in + P]` multiplies `concat(x, h_prev)`, its
/// bias is `b_ih + b_hh`. Tensors: `predictor.embedding [V + 1, P]` (row V, the blank, unused),
/// `predictor.lstm.<l>.weight`, `.bias`. The state is a value: hypotheses share nothing.
public struct LSTMPredictor: Sendable {
    public struct State: Sendable {
        var h: [[Float]]
        var c: [[Float]]
        public var output: [Float] { h[h.count - 1] }
    }

    let embedding: PackedTensor
    let layers: [PreparedWeight]
    public let hidden: Int
    let inputDim: Int

    static func tensors(embeddingRows: Int, hidden: Int, layers: Int) -> [TensorInfo] {
        [TensorInfo(name: "predictor.embedding", shape: [embeddingRows, hidden])]
            + (0..<layers).flatMap { TensorInfo.linear("predictor.lstm.\($0)", rows: 4 * hidden, k: 2 * hidden) }
    }

    init(embeddingRows: Int, hidden: Int, layers count: Int, loader: inout StageLoader) throws(ModelError) {
        self.hidden = hidden
        embedding = try loader.tensor("predictor.embedding", shape: [embeddingRows, hidden])
        inputDim = hidden
        var layers: [PreparedWeight] = []
        for l in 0..<count { layers.append(try loader.linear("predictor.lstm.\(l)", rows: 4 * hidden, k: 2 * hidden)) }
        self.layers = layers
    }

    public func start(workspace ws: Workspace) -> State {
        let zero = [Float](repeating: 0, count: hidden)
        return run(input: [Float](repeating: 0, count: inputDim),
                   State(h: Array(repeating: zero, count: layers.count), c: Array(repeating: zero, count: layers.count)), ws)
    }

    public func step(token: Int, from state: State, workspace ws: Workspace) -> State {
        run(input: embedding.dequantizedRow(token), state, ws)
    }

    func run(input: [Float], _ state: State, _ ws: Workspace) -> State {
        var s = state, x = input
        for (l, w) in layers.enumerated() {
            let gates = Rows.product(w, x + s.h[l], 1, ws)
            gates.withUnsafeBufferPointer { gp in
                s.c[l].withUnsafeMutableBufferPointer { cp in
                    s.h[l].withUnsafeMutableBufferPointer { hp in
                        Elementwise.lstmCell(gates: gp.baseAddress!, c: cp.baseAddress!, h: hp.baseAddress!, hidden: hidden)
                    }
                }
            }
            x = s.h[l]
        }
        return s
    }
}

/// Joint stage: `out(act(enc_proj(f) + pred_proj(g)))`, act relu / tanh / sigmoid.
///
/// Contract: `projectFrames` maps encoder frames to `[n, hidden]` once; `logits(frame:predictor:)` gives the
/// `classes` logits of one (projected frame, predictor output) pair: word pieces, the blank, then any extra outputs
/// (TDT duration logits). Tensors: `joint.enc_proj.weight [J, D]`, `joint.pred_proj.weight [J, P]`,
/// `joint.out.weight [classes, J]` with biases.
public struct TransducerJoint: Sendable {
    public enum Activation: String, Sendable, Equatable { case relu, tanh, sigmoid }

    let encProj: PreparedWeight, predProj: PreparedWeight, out: PreparedWeight
    public let activation: Activation
    public let hidden: Int
    public let classes: Int

    static func tensors(encoderDim: Int, predictorDim: Int, hidden: Int, classes: Int) -> [TensorInfo] {
        TensorInfo.linear("joint.enc_proj", rows: hidden, k: encoderDim) + TensorInfo.linear("joint.pred_proj", rows: hidden, k: predictorDim)
            + TensorInfo.linear("joint.out", rows: classes, k: hidden)
    }

    init(encoderDim: Int, predictorDim: Int, hidden: Int, classes: Int, activation: Activation,
         loader: inout StageLoader) throws(ModelError) {
        self.activation = activation
        self.hidden = hidden
        self.classes = classes
        encProj = try loader.linear("joint.enc_proj", rows: hidden, k: encoderDim)
        predProj = try loader.linear("joint.pred_proj", rows: hidden, k: predictorDim)
        out = try loader.linear("joint.out", rows: classes, k: hidden)
    }

    public func projectFrames(_ frames: [Float], count n: Int, workspace ws: Workspace) -> [Float] {
        Rows.product(encProj, frames, n, ws)
    }

    public func projectPredictor(_ g: [Float], workspace ws: Workspace) -> [Float] { Rows.product(predProj, g, 1, ws) }

    /// Logits for projected frame `frame` (row `row` of `projected`) and projected predictor output `p`.
    public func logits(_ projected: [Float], row: Int, predictor p: [Float], workspace ws: Workspace) -> [Float] {
        var z = [Float](repeating: 0, count: hidden)
        for j in 0..<hidden {
            let s = projected[row * hidden + j] + p[j]
            switch activation {
            case .relu: z[j] = max(s, 0)
            case .tanh: z[j] = Float(Foundation.tanh(Double(s)))
            case .sigmoid: z[j] = ReferenceElementwise.sigmoid(s)
            }
        }
        return Rows.product(out, z, 1, ws)
    }
}

/// A transducer search stage: a state from the predictor's start, then frames decoded into it in any number of
/// chunks (the result is the one of all frames at once); the state names the best hypothesis so far.
public protocol TransducerSearchStage: Sendable {
    associatedtype State: TransducerSearchState
    func start(predictor: LSTMPredictor, joint: TransducerJoint, workspace: Workspace) -> State
    /// Decodes `[n, dim]` encoder frames that follow the ones decoded so far.
    func decode(_ frames: [Float], count n: Int, state: inout State, predictor: LSTMPredictor, joint: TransducerJoint,
                workspace: Workspace)
}

public protocol TransducerSearchState: Sendable {
    /// The best hypothesis so far, each piece at the frame where it was emitted.
    var tokens: [EmittedToken] { get }
    /// Encoder frames decoded so far.
    var framesSeen: Int { get }
}

/// A beam hypothesis's predictor: its state after the hypothesis's pieces less `pending`, the last piece, which is
/// fed when the hypothesis is first expanded (so pieces that are never expanded cost no predictor step), and the
/// joint's projection of its output.
struct PredictorCursor: Sendable {
    var state: LSTMPredictor.State
    var projected: [Float]
    var pending: Int?

    static func start(_ predictor: LSTMPredictor, _ joint: TransducerJoint, _ ws: Workspace) -> PredictorCursor {
        let p = predictor.start(workspace: ws)
        return PredictorCursor(state: p, projected: joint.projectPredictor(p.output, workspace: ws), pending: nil)
    }

    /// The cursor after one more piece, fed later.
    func appending(_ piece: Int) -> PredictorCursor { PredictorCursor(state: state, projected: projected, pending: piece) }

    /// Feeds the pending piece, if any.
    mutating func catchUp(_ predictor: LSTMPredictor, _ joint: TransducerJoint, _ ws: Workspace) {
        guard let k = pending else { return }
        state = predictor.step(token: k, from: state, workspace: ws)
        projected = joint.projectPredictor(state.output, workspace: ws)
        pending = nil
    }
}

/// Search stage: greedy transducer decoding as NeMo's `greedy_batch` (label looping) does it, for RNN-T and TDT
/// (docs/nemo-import.md section 3.5). Per frame `t` (from 0): `k = argmax` over pieces + blank; TDT: `d` = the
/// duration of the largest duration logit; RNN-T: `d = 1` for the blank, else 0. A blank moves `t` by `max(d, 1)`
/// without advancing the predictor; a piece is emitted at `t`, advances the predictor and moves `t` by `d`; after
/// `maxSymbols` pieces at one frame with `d = 0`, `t` moves by 1. Ties go to the first maximum.
///
/// Contract: frames may arrive in any number of chunks; the result is the one of all frames at once (a move past
/// the frames received so far carries over to the next chunk).
public struct GreedyTransducerSearch: TransducerSearchStage {
    public let blank: Int
    /// durations of the TDT duration logits (after the blank); empty for RNN-T
    public let durations: [Int]
    public let maxSymbols: Int

    public struct State: TransducerSearchState {
        var predictor: LSTMPredictor.State
        var projectedPredictor: [Float]
        /// the next frame to look at (absolute)
        var t = 0
        var lastEmitFrame = -1
        var symbolsAtFrame = 0
        public internal(set) var framesSeen = 0
        public internal(set) var tokens: [EmittedToken] = []
        public internal(set) var durations: [Int] = []
    }

    public func start(predictor: LSTMPredictor, joint: TransducerJoint, workspace ws: Workspace) -> State {
        let p = predictor.start(workspace: ws)
        return State(predictor: p, projectedPredictor: joint.projectPredictor(p.output, workspace: ws))
    }

    /// Decodes `[n, dim]` encoder frames that follow the ones decoded so far.
    public func decode(_ frames: [Float], count n: Int, state s: inout State, predictor: LSTMPredictor,
                       joint: TransducerJoint, workspace ws: Workspace) {
        let first = s.framesSeen, end = first + n
        s.framesSeen = end
        guard s.t < end else { return }
        let projected = joint.projectFrames(frames, count: n, workspace: ws)
        while s.t < end {
            let logits = joint.logits(projected, row: s.t - first, predictor: s.projectedPredictor, workspace: ws)
            let k = ReferenceElementwise.argmax(Array(logits[0...blank]))
            let d: Int
            if durations.isEmpty {
                d = k == blank ? 1 : 0
            } else {
                d = durations[ReferenceElementwise.argmax(Array(logits[(blank + 1)..<(blank + 1 + durations.count)]))]
            }
            if k == blank {
                s.t += max(d, 1)
                continue
            }
            s.tokens.append(EmittedToken(id: k, frame: s.t))
            s.durations.append(d)
            s.predictor = predictor.step(token: k, from: s.predictor, workspace: ws)
            s.projectedPredictor = joint.projectPredictor(s.predictor.output, workspace: ws)
            s.symbolsAtFrame = s.t == s.lastEmitFrame ? s.symbolsAtFrame + 1 : 1
            s.lastEmitFrame = s.t
            s.t += d
            if d == 0 && s.symbolsAtFrame >= maxSymbols { s.t += 1 }
        }
    }
}

/// Search stage: NeMo's default transducer beam search (`BeamRNNTInfer` with `search_type` "default" and
/// `score_norm`), for RNN-T decoders. Per frame, until enough hypotheses end in a blank: take the first hypothesis
/// of the highest score from the open list, score the frame with the joint (log-softmax over the pieces and the
/// blank), add its blank extension (same tokens, score + log p(blank)) to the frame's kept list and its `k` best
/// piece extensions (`k = min(width, V - 1)`, in descending order) to the open list; stop when at least `width` kept
/// hypotheses score above the best open one, and carry all of those (ascending, ties in arrival order) to the next
/// frame. Hypotheses are not merged. The result is the hypothesis with the highest score / (tokens + 1), the first
/// in carried order on ties. A piece's predictor step is taken when its hypothesis is first expanded.
///
/// NeMo's loop has no bound on the expansions of one frame; here a frame ends after `maxExpansions` of them with the
/// best `width` hypotheses kept so far (NeMo would go on). Contract: frames may arrive in any number of chunks; each
/// frame is searched alone, so the result is the one of all frames at once.
public struct BeamTransducerSearch: TransducerSearchStage {
    public let blank: Int
    public let width: Int
    public let maxExpansions: Int

    struct Hypothesis: Sendable {
        var score: Double
        var tokens: [EmittedToken]
        var predictor: PredictorCursor
    }

    public struct State: TransducerSearchState {
        var kept: [Hypothesis]
        public internal(set) var framesSeen = 0
        /// frames that ended at `maxExpansions`
        public internal(set) var framesCut = 0
        /// the most expansions one frame took
        public internal(set) var mostExpansions = 0

        /// The best hypothesis so far by score / (tokens + 1).
        public var tokens: [EmittedToken] {
            var best: Hypothesis?
            for h in kept where best == nil || h.score / Double(h.tokens.count + 1) > best!.score / Double(best!.tokens.count + 1) {
                best = h
            }
            return best?.tokens ?? []
        }
    }

    public init(blank: Int, width: Int, maxExpansions: Int? = nil) {
        self.blank = blank
        self.width = max(1, min(width, blank))  // NeMo: min(beam_size, vocabulary)
        self.maxExpansions = maxExpansions ?? max(1024, 64 * width)
    }

    public func start(predictor: LSTMPredictor, joint: TransducerJoint, workspace ws: Workspace) -> State {
        State(kept: [Hypothesis(score: 0, tokens: [], predictor: .start(predictor, joint, ws))])
    }

    /// Decodes `[n, dim]` encoder frames that follow the ones decoded so far.
    public func decode(_ frames: [Float], count n: Int, state s: inout State, predictor: LSTMPredictor,
                       joint: TransducerJoint, workspace ws: Workspace) {
        guard n > 0 else { return }
        let projected = joint.projectFrames(frames, count: n, workspace: ws)
        let pieces = min(width, blank - 1)
        for r in 0..<n {
            let frame = s.framesSeen + r
            var open = s.kept
            var kept: [Hypothesis] = []
            var expansions = 0
            while true {
                var mi = 0
                for i in open.indices where open[i].score > open[mi].score { mi = i }
                var h = open.remove(at: mi)
                h.predictor.catchUp(predictor, joint, ws)
                let logits = joint.logits(projected, row: r, predictor: h.predictor.projected, workspace: ws)
                let lp = Self.logSoftmax(Array(logits[0...blank]))
                for k in BeamOrder.top(Array(lp[0..<blank]), pieces) {
                    open.append(Hypothesis(score: h.score + Double(lp[k]), tokens: h.tokens + [EmittedToken(id: k, frame: frame)],
                                           predictor: h.predictor.appending(k)))
                }
                kept.append(Hypothesis(score: h.score + Double(lp[blank]), tokens: h.tokens, predictor: h.predictor))
                let bestOpen = open.map(\.score).max() ?? -Double.infinity
                let above = Self.ascending(kept.filter { $0.score > bestOpen })
                if above.count >= width {
                    kept = above
                    s.mostExpansions = max(s.mostExpansions, expansions + 1)
                    break
                }
                expansions += 1
                s.mostExpansions = max(s.mostExpansions, expansions)
                if expansions >= maxExpansions {
                    kept = Array(Self.ascending(kept).suffix(width))
                    s.framesCut += 1
                    break
                }
            }
            s.kept = kept
        }
        s.framesSeen += n
    }

    static func ascending(_ hyps: [Hypothesis]) -> [Hypothesis] { BeamOrder.stable(hyps, by: \.score, descending: false) }

    /// log_softmax in f32 (max subtracted, the sum of exponentials in f32, as torch computes it on CPU).
    static func logSoftmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        var sum: Float = 0
        for v in x { sum += Foundation.exp(v - m) }
        let l = Foundation.log(sum)
        return x.map { $0 - m - l }
    }
}

/// The orders NeMo's beam searches rely on, as Python gives them.
enum BeamOrder {
    /// The indices of the `k` largest values, descending (ties: the lower index first), as torch's `topk`.
    static func top(_ x: [Float], _ k: Int) -> [Int] {
        Array(x.indices.sorted { x[$0] > x[$1] || (x[$0] == x[$1] && $0 < $1) }.prefix(k))
    }

    /// Sorted by `key`, ascending or descending; equal keys keep their order (Python's stable `sorted`, with or
    /// without `reverse=True`).
    static func stable<H, K: Comparable>(_ items: [H], by key: (H) -> K, descending: Bool) -> [H] {
        items.enumerated().sorted { a, b in
            let ka = key(a.element), kb = key(b.element)
            return ka == kb ? a.offset < b.offset : (descending ? ka > kb : ka < kb)
        }.map(\.element)
    }
}

/// CTC head stage (the auxiliary decoder of NeMo's hybrid RNN-T/CTC models): per frame `log_softmax(W f + b)` over
/// the pieces and the blank (the last class); greedy decoding takes each frame's argmax, merges repeats and drops
/// blanks. Tensors: `ctc.weight [V + 1, D]`, `ctc.bias [V + 1]`.
public struct CTCHead: Sendable {
    let linear: PreparedWeight
    public let classes: Int

    static func tensors(classes: Int, dim: Int) -> [TensorInfo] { TensorInfo.linear("ctc", rows: classes, k: dim) }

    init(classes: Int, dim: Int, loader: inout StageLoader) throws(ModelError) {
        self.classes = classes
        linear = try loader.linear("ctc", rows: classes, k: dim)
    }

    /// `[n, classes]` log-probabilities of `[n, dim]` encoder frames.
    public func logProbabilities(_ frames: [Float], count n: Int, workspace ws: Workspace) -> [Float] {
        var y = Rows.product(linear, frames, n, ws)
        for r in 0..<n {
            let row = y[(r * classes)..<((r + 1) * classes)]
            let top = Double(row.max() ?? 0)
            let lse = top + log(row.reduce(0.0) { $0 + exp(Double($1) - top) })
            for c in 0..<classes { y[r * classes + c] = Float(Double(y[r * classes + c]) - lse) }
        }
        return y
    }

    /// Greedy CTC: per-frame argmax, repeats merged, blanks (the last class) dropped.
    public func greedy(_ frames: [Float], count n: Int, workspace ws: Workspace) -> [Int] {
        let y = Rows.product(linear, frames, n, ws)
        var out: [Int] = [], previous = -1
        for r in 0..<n {
            let k = ReferenceElementwise.argmax(Array(y[(r * classes)..<((r + 1) * classes)]))
            if k != previous && k != classes - 1 { out.append(k) }
            previous = k
        }
        return out
    }
}
