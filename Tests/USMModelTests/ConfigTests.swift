import Foundation
import Testing
import USMFormat
@testable import USMModel
import USMTensor
import USMKernels

@Suite struct Configs {
    @Test func namedConfigsValidateAndRoundTripThroughJSON() throws {
        for (name, c) in ConformerConfig.named {
            try c.validate()
            #expect(try ConformerConfig.decode(c.json()) == c, "\(name)")
        }
    }

    /// Offline recognition goes layer by layer up to the length where its two frame buffers outweigh the depth-first
    /// look-ahead buffers at the recognizer's context precision (what a layer keeps: keys and values of left + right
    /// + 16 frames, x1 of right + 16; int8 rows 1536 bytes and 12 scales at USM-1B shape).
    @Test func utteranceLimitFollowsTheContextPrecision() {
        let c = ConformerConfig.usm1b
        let limits = ContextPrecision.allCases.map { ConformerModel.utteranceFrameLimit(config: c, context: $0) }
        #expect(limits == [16 * (2 * 273 + 144) / 2, 16 * (2 * 273 + 144) / 4, 16 * (2 * 273 * 1584 + 144 * 3072) / (2 * 6144)])
        #expect(limits == [5520, 2760, 1702])
    }

    @Test func snakeCaseKeysAsArchitectureMdSays() throws {
        let j = ConformerConfig.trained.json()
        #expect(j["encoder"]?["ffn_dim"] == .number(576))
        #expect(j["encoder"]?["left_context"] == .number(65))
        #expect(j["frontend"]?["log_floor"] == .number(1e-5))
        #expect(j["max_symbols_per_frame"] == .number(4))
        #expect(j["sample_rate"] == .number(16000))
    }

    @Test func rejectsBadConfigs() {
        var c = ConformerConfig.small
        c.encoder.heads = 3
        #expect(throws: ModelError.self) { try c.validate() }
        c = .small
        c.encoder.convKernel = 4
        #expect(throws: ModelError.self) { try c.validate() }
        #expect(throws: ModelError.self) { try ConformerConfig.decode(.object(["type": .string("conformer-rnnt")])) }
        c = .small
        c.encoder.layers = 1_000_000_000
        #expect(throws: ModelError.self) { try c.validate() }
        c = .small
        c.vocabSize = Int.max
        #expect(throws: ModelError.self) { try c.validate() }
    }

    /// The usm-1b inventory, counted by hand from Architecture.md section 6.
    @Test func usm1bParameterCount() {
        let t = ConformerConfig.usm1b.tensors
        let d = 1536, f = 6144
        let ffn = d + d + f * d + f + d * f + d  // one FFN module
        let mhsa = 2 * d + 4 * (d * d + d) + d * d + 2 * d + 128
        let conv = 2 * d + 2 * d * d + 2 * d + 5 * d + 2 * d + d * d + d
        let layer = 2 * ffn + mhsa + conv + 2 * d
        let sub = 2 * 128 + (32 * 9 + 32) + (32 * 32 * 9 + 32) + (d * 32 * 32 + d)
        let dec = 16384 * 640 + 3 * (4 * 640 * 1280 + 4 * 640) + (640 * d + 640) + (640 * 640 + 640) + (16384 * 640 + 16384)
        #expect(t.reduce(0) { $0 + $1.elements } == 16 * layer + sub + dec)
        #expect(Set(t.map(\.name)).count == t.count)
    }

    @Test func groupsFollowTheNames() {
        #expect(TensorGroup.of("encoder.layers.3.ffn2.linear1.weight") == .encoderFFN)
        #expect(TensorGroup.of("encoder.layers.3.ffn2.linear1.bias") == .encoderSmall)
        #expect(TensorGroup.of("encoder.layers.0.mhsa.pos.weight") == .encoderPosition)
        #expect(TensorGroup.of("encoder.layers.0.mhsa.key.weight") == .encoderAttention)
        #expect(TensorGroup.of("encoder.layers.0.conv.pointwise2.weight") == .encoderConvPointwise)
        #expect(TensorGroup.of("encoder.layers.0.conv.depthwise.weight") == .encoderDepthwise)
        #expect(TensorGroup.of("predictor.lstm.2.weight") == .predictorLSTM)
        #expect(TensorGroup.of("subsampling.proj.weight") == .subsampling)
    }
}
