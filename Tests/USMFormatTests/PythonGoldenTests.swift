import Foundation
import Testing
import USMFormat
import USMTensor

/// Cross-check with the Python reference: `python/scripts/make_golden_quant.py` quantized fixed inputs with
/// `usm_ref.quant` and wrote them with `usm_ref.container`. Swift must read that file and, requantizing the same
/// inputs, produce the same bytes.
@Suite struct PythonGolden {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Golden/python-quant.usm").path

    struct Case: Decodable {
        var scheme: String
        var block_size: Int
        var scale_format: String
        var clip: String
    }

    @Test func swiftReadsPythonContainersAndQuantizesToTheSameBytes() throws {
        let c = try Container.read(path: Self.path)
        guard case .object(let golden)? = try goldenCases(c) else {
            Issue.record("no golden cases in the metadata")
            return
        }
        #expect(golden.count == 13)
        for (name, json) in golden.sorted(by: { $0.key < $1.key }) {
            let spec = try json.decode(Case.self)
            let clip: ClipPolicy = spec.clip == "none" ? .none : spec.clip == "search" ? .search : .fixed(Float(spec.clip)!)
            let src = try #require(c.tensor("src/\(name)"))
            let python = try #require(c.tensor("q/\(name)"))
            let swift = try Quantizer.quantize(src.floatValues, shape: src.shape, spec: QuantSpec(
                scheme: try #require(QuantScheme(name: spec.scheme)), blockSize: spec.block_size,
                scaleFormat: try #require(ScaleFormat(name: spec.scale_format)), clip: clip))
            #expect(swift.layout == python.layout, "\(name)")
            let same = swift.withPayload { a in python.withPayload { b in Array(a) == Array(b) } }
            #expect(same, "\(name): Swift and Python payloads differ")
            #expect(swift.dequantized() == python.dequantized(), "\(name)")
        }
        let rank3 = try #require(c.tensor("f32/rank3"))
        #expect(rank3.shape == [2, 3, 4] && rank3.floatValues == (0..<24).map { Float($0) / 7 })
    }

    func goldenCases(_ c: Container) throws -> JSONValue? {
        // The golden file keeps its cases under a top-level "golden" key, which ModelMetadata does not model:
        // read the raw metadata JSON.
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.path))
        let mOff = Int(c.header.metadataOffset), mLen = Int(c.header.metadataLength)
        let raw = try JSONDecoder().decode(JSONValue.self, from: data[mOff..<(mOff + mLen)])
        return raw["golden"]
    }
}
