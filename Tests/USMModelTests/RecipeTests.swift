import Foundation
import Testing
import USMFormat
@testable import USMModel
import USMTensor
import USMKernels

@Suite struct Recipes {
    @Test func paperRecipesQuantizeEncoderMatricesOnly() throws {
        let tensors = ConformerConfig.small.tensors
        let exp5 = try Recipe.named("exp5")
        for t in tensors {
            let s = exp5.spec(for: t, scaleFormat: .int8PerTensor, blockSize: nil)
            if t.group.isEncoderMatrix {
                #expect(s == QuantSpec(scheme: .bin, blockSize: 64, scaleFormat: .int8PerTensor), "\(t.name)")
            } else {
                #expect(s == .f32, "\(t.name)")
            }
        }
        let dec8 = try Recipe.named("exp5-dec8")
        #expect(dec8.spec(for: TensorInfo(name: "predictor.embedding", shape: [64, 32]), scaleFormat: .f32, blockSize: nil).scheme == .int8)
        #expect(dec8.spec(for: TensorInfo(name: "joint.out.bias", shape: [64]), scaleFormat: .f32, blockSize: nil).scheme == .f32)
        // --block changes sub-channel recipes only
        #expect(exp5.spec(for: tensors.first { $0.group == .encoderFFN }!, scaleFormat: .f32, blockSize: 128).blockSize == 128)
        #expect(try Recipe.named("exp4").spec(for: tensors.first { $0.group == .encoderFFN }!, scaleFormat: .f32, blockSize: 128).blockSize == 0)
        #expect(throws: ModelError.unknownRecipe("exp9")) { try Recipe.named("exp9") }
    }

    /// The usm-1b exp5 accounting with int8 scales, exact to the bit against ModelFormat.md section 7.
    @Test func usm1bExp5Int8Accounting() throws {
        let report = try SizeReport(config: .usm1b, recipe: try Recipe.named("exp5"), scaleFormat: .int8PerTensor, blockSize: nil)
        let d = 1536, f = 6144
        // per layer quantized matrices: 4 FFN, 5 attention (q, k, v, out, pos), 2 pointwise
        let mats: [(Int, Int)] = [(f, d), (d, f), (f, d), (d, f), (d, d), (d, d), (d, d), (d, d), (d, d), (2 * d, d), (d, d)]
        var weight = 0, meta = 0
        for (rows, k) in mats {
            weight += rows * k
            meta += rows * ((k + 63) / 64) * 8 + 32
        }
        let t = report.total
        #expect(t.weightBits == 16 * weight)
        #expect(t.metaBitsStored == 16 * meta)
        let allParams = ConformerConfig.usm1b.tensors.reduce(0) { $0 + $1.elements }
        #expect(t.floatBits == 32 * (allParams - 16 * weight))
        #expect(t.totalBitsStored == t.weightBits + t.metaBitsStored + t.floatBits)
    }
}
