import Foundation
import USMKernels

/// Search stage: NeMo's default TDT beam search (`BeamTDTInfer` with `search_type` "default" and `score_norm`), for
/// token-and-duration transducers (docs/nemo-import.md section 3.5c).
///
/// Hypotheses carry the frame they wait at. At frame `t`, the hypotheses waiting there form the open list; until it
/// is empty: take the first hypothesis of the highest score, score frame `t` with the joint, log-softmax the pieces
/// and the blank and, apart, the duration logits; take the `k = min(width, V - 1)` best pieces and the
/// `min(width, durations)` best durations, and of their pairs the `k` best by summed log-probability: each pair makes
/// a piece hypothesis that waits at `t + duration` (on the open list when the duration is 0, else kept). Each of the
/// best durations also makes a blank hypothesis (same pieces) waiting at `t + duration`; duration 0 is skipped unless
/// it is the only one, which is then replaced by the smallest non-zero duration. Kept hypotheses with the same pieces
/// waiting at the same frame are merged (log-sum-exp of their scores, the higher-scored one's fields; the list then
/// in descending score order, merged scores not re-sorted). If the open list is not empty and at least `width` kept
/// hypotheses score above its best, those (ascending) become the kept list and the frame ends; if it is empty, the
/// kept list is cut to its `width` best (descending). After the last frame the result is the hypothesis of the
/// highest score / (pieces + 1), the first in list order on ties. Scores are updated in f32, as torch does.
///
/// NeMo's loop has no bound on the expansions of one frame; here a frame ends after `maxExpansions` of them with the
/// kept list cut to its `width` best (NeMo would go on). Contract: frames may arrive in any number of chunks; each
/// frame is searched once all earlier ones are, so the result is the one of all frames at once.
public struct TDTBeamSearch: TransducerSearchStage {
    public let blank: Int
    public let width: Int
    public let durations: [Int]
    public let maxExpansions: Int
    /// the index of duration 0, if any, and of the smallest non-zero duration
    let zeroDuration: Int?
    let smallestNonZeroDuration: Int

    struct Hypothesis: Sendable {
        var score: Float
        var tokens: [EmittedToken]
        /// the duration of each token
        var durations: [Int]
        /// the frame the hypothesis waits at
        var frame: Int
        var predictor: PredictorCursor
    }

    public struct State: TransducerSearchState {
        var kept: [Hypothesis]
        public internal(set) var framesSeen = 0
        /// frames that ended at `maxExpansions`
        public internal(set) var framesCut = 0
        /// the most expansions one frame took
        public internal(set) var mostExpansions = 0

        var best: Hypothesis? {
            var best: Hypothesis?
            for h in kept where best == nil || h.score / Float(h.tokens.count + 1) > best!.score / Float(best!.tokens.count + 1) {
                best = h
            }
            return best
        }

        /// The best hypothesis so far by score / (pieces + 1); each piece at the frame where it was emitted.
        public var tokens: [EmittedToken] { best?.tokens ?? [] }
        /// The duration of each of `tokens` (NeMo's beam timestamps are `frame + duration`).
        public var durations: [Int] { best?.durations ?? [] }
    }

    /// `blank`: the blank's id (= the number of pieces V); `durations`: the TDT durations, in the joint's order (at
    /// least one non-zero).
    public init(blank: Int, durations: [Int], width: Int, maxExpansions: Int? = nil) {
        self.blank = blank
        self.durations = durations
        self.width = max(1, min(width, blank))  // NeMo: min(beam_size, vocabulary)
        self.maxExpansions = maxExpansions ?? max(1024, 64 * width)
        zeroDuration = durations.firstIndex(of: 0)
        smallestNonZeroDuration = durations.indices.filter { durations[$0] != 0 }.min { durations[$0] < durations[$1] } ?? 0
    }

    public func start(predictor: LSTMPredictor, joint: TransducerJoint, workspace ws: Workspace) -> State {
        State(kept: [Hypothesis(score: 0, tokens: [], durations: [], frame: 0, predictor: .start(predictor, joint, ws))])
    }

    /// Decodes `[n, dim]` encoder frames that follow the ones decoded so far.
    public func decode(_ frames: [Float], count n: Int, state s: inout State, predictor: LSTMPredictor,
                       joint: TransducerJoint, workspace ws: Workspace) {
        guard n > 0 else { return }
        let projected = joint.projectFrames(frames, count: n, workspace: ws)
        let pieces = min(width, blank - 1)
        let durationCount = min(width, durations.count)
        for r in 0..<n {
            let t = s.framesSeen + r
            var open = s.kept.filter { $0.frame == t }
            var kept = s.kept.filter { $0.frame > t }
            var expansions = 0
            while !open.isEmpty {
                var mi = 0
                for i in open.indices where open[i].score > open[mi].score { mi = i }
                var h = open.remove(at: mi)
                h.predictor.catchUp(predictor, joint, ws)
                let logits = joint.logits(projected, row: r, predictor: h.predictor.projected, workspace: ws)
                let lp = BeamTransducerSearch.logSoftmax(Array(logits[0...blank]))
                let dlp = BeamTransducerSearch.logSoftmax(Array(logits[(blank + 1)..<(blank + 1 + durations.count)]))
                let topPieces = BeamOrder.top(Array(lp[0..<blank]), pieces)
                let topDurations = BeamOrder.top(dlp, durationCount)
                // pairs (duration i, piece j) at i * pieces + j, as torch.cartesian_prod lays them out
                var pairs = [Float](repeating: 0, count: topDurations.count * pieces)
                for (i, di) in topDurations.enumerated() {
                    for (j, pj) in topPieces.enumerated() { pairs[i * pieces + j] = dlp[di] + lp[pj] }
                }
                for p in BeamOrder.top(pairs, pieces) {
                    let k = topPieces[p % pieces], d = durations[topDurations[p / pieces]]
                    let next = Hypothesis(score: h.score + pairs[p], tokens: h.tokens + [EmittedToken(id: k, frame: t)],
                                          durations: h.durations + [d], frame: h.frame + d, predictor: h.predictor.appending(k))
                    if d == 0 { open.append(next) } else { kept.append(next) }
                }
                for var di in topDurations {
                    if di == zeroDuration {
                        if topDurations.count == 1 { di = smallestNonZeroDuration } else { continue }
                    }
                    var b = h
                    b.score = (h.score + lp[blank]) + dlp[di]
                    b.frame = h.frame + durations[di]
                    kept.append(b)
                }
                kept = Self.merged(kept)
                expansions += 1
                s.mostExpansions = max(s.mostExpansions, expansions)
                if !open.isEmpty {
                    let bestOpen = open.map(\.score).max()!
                    let above = Self.ascending(kept.filter { $0.score > bestOpen })
                    if above.count >= width {
                        kept = above
                        break
                    }
                    if expansions >= maxExpansions {
                        kept = Array(Self.descending(kept).prefix(width))
                        s.framesCut += 1
                        break
                    }
                } else {
                    kept = Array(Self.descending(kept).prefix(width))
                }
            }
            s.kept = kept
        }
        s.framesSeen += n
    }

    static func ascending(_ hyps: [Hypothesis]) -> [Hypothesis] { BeamOrder.stable(hyps, by: \.score, descending: false) }
    static func descending(_ hyps: [Hypothesis]) -> [Hypothesis] { BeamOrder.stable(hyps, by: \.score, descending: true) }

    /// NeMo's `merge_duplicate_hypotheses`: in descending score order, a hypothesis with the pieces and frame of an
    /// earlier one adds its probability to it (log-sum-exp, in f32) and is dropped.
    static func merged(_ hyps: [Hypothesis]) -> [Hypothesis] {
        var out: [Hypothesis] = []
        var index: [MergeKey: Int] = [:]
        for h in descending(hyps) {
            let key = MergeKey(pieces: h.tokens.map(\.id), frame: h.frame)
            if let i = index[key] {
                let a = out[i].score, b = h.score
                let m = max(a, b)
                out[i].score = m == -.infinity ? m : m + Float(Foundation.log1p(Foundation.exp(Double(-abs(a - b)))))
            } else {
                index[key] = out.count
                out.append(h)
            }
        }
        return out
    }

    struct MergeKey: Hashable {
        var pieces: [Int]
        var frame: Int
    }
}
