import Foundation
import Testing
import USMFormat
@testable import USMModel
import USMTensor
import USMKernels

@Suite struct Packing {
    @Test func synthesizedModelMatchesItsConfigAccounting() throws {
        for (recipeName, format) in [("exp5", ScaleFormat.int8PerTensor), ("exp2", .f32), ("exp1", .int8PerRow), ("int4", .f32), ("exp0", .f32)] {
            let recipe = try Recipe.named(recipeName)
            let w = try ModelPacker.synthesize(config: .small, configName: "small", recipe: recipe, scaleFormat: format,
                                               blockSize: nil, seed: 3, level: 3)
            let c = try Container.read(bytes: try w.serialize())
            let fromFile = SizeReport(container: c)
            let fromConfig = try SizeReport(config: .small, recipe: recipe, scaleFormat: format, blockSize: nil)
            #expect(fromFile.total == fromConfig.total, "\(recipeName)")
            #expect(fromFile.imageBytes == fromConfig.imageBytes)
            #expect(try ConformerConfig.decode(c.metadata.architecture) == .small)
            #expect(c.metadata.quantization?.recipe == recipeName)
            #expect(c.metadata.quantization?.tensors.count == fromConfig.rows.filter { $0.scheme != "f32" }.count)
        }
    }

    @Test func requantizeAnF32Model() throws {
        let f32 = try Container.read(bytes: try ModelPacker.synthesize(
            config: .small, configName: "small", recipe: try Recipe.named("exp0"), scaleFormat: .f32, blockSize: nil, seed: 5, level: 3).serialize())
        let w = try ModelPacker.requantize(f32, sourceName: "small.usm", recipe: try Recipe.named("exp5"), scaleFormat: .int8PerTensor,
                                           blockSize: 32, level: 3)
        let q = try Container.read(bytes: try w.serialize())
        let name = "encoder.layers.1.ffn1.linear1.weight"
        let packed = try #require(q.tensor(name))
        #expect(packed.layout.scheme == .bin && packed.layout.blockSize == 32)
        // the same quantizer on the same values gives the same bytes
        let direct = try Quantizer.quantize(try #require(f32.tensor(name)).floatValues, shape: packed.shape,
                                            spec: QuantSpec(scheme: .bin, blockSize: 32, scaleFormat: .int8PerTensor))
        packed.withPayload { a in direct.withPayload { b in #expect(Array(a) == Array(b)) } }
        // float tensors are copied unchanged
        let bias = "encoder.layers.0.mhsa.query.bias"
        #expect(q.tensor(bias)?.floatValues == f32.tensor(bias)?.floatValues)
        // a packed model cannot be quantized again
        #expect(throws: ModelError.self) {
            try ModelPacker.requantize(q, sourceName: "q", recipe: try Recipe.named("exp4"), scaleFormat: .f32, blockSize: nil, level: 3)
        }
    }
}
