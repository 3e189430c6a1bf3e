import Foundation
import Testing
import USMTestSupport
import USMFormat
import USMKernels
import USMModel
import USMRecognizer

/// A model that cannot stream: the small test model behind a wrapper whose `streaming` is `.offlineOnly`, the way a
/// model with per-utterance feature normalisation declares itself.
struct OfflineOnlyModel: TransducerModel {
    let inner: ConformerModel
    var sampleRate: Int { inner.sampleRate }
    var frameWidth: Int { inner.frameWidth }
    var secondsPerFrame: Double { inner.secondsPerFrame }
    var tokenizer: Tokenizer { inner.tokenizer }
    var streaming: StreamingBehavior { .offlineOnly(reason: "features are normalised over the whole utterance") }
    var lookAheadSeconds: Double { inner.lookAheadSeconds }
    var preparedBytes: Int { inner.preparedBytes }
    var kernels: [String: Int] { inner.kernels }
    var kernelLayouts: [String: String] { inner.kernelLayouts }
    func utteranceFrameLimit(context: ContextPrecision) -> Int { inner.utteranceFrameLimit(context: context) }
    func makeEncoderStream(maxChunkSeconds: Double, contextPrecision: ContextPrecision) -> any EncoderStream {
        inner.makeEncoderStream(maxChunkSeconds: maxChunkSeconds, contextPrecision: contextPrecision)
    }
    func makeDecoderStream(method: SearchMethod, workspace: Workspace) -> any DecoderStream {
        inner.makeDecoderStream(method: method, workspace: workspace)
    }
}

@Suite struct Registry {
    static func model(type: String) throws -> [UInt8] {
        try HostileFiles.model { $0.architecture = $0.architecture.setting(["type"], to: .string(type)) }
    }

    @Test func unknownTypesAreRefusedNamingTheKnownOnes() throws {
        #expect(ModelRegistry.types.contains("conformer-rnnt"))
        #expect { try Recognizer(bytes: try Self.model(type: "nemo-tdt-from-the-future")) } throws: { e in
            guard case .modelMismatch(.unknownArchitecture(let t, let known))? = e as? RecognizerError else { return false }
            return t == "nemo-tdt-from-the-future" && known.contains("conformer-rnnt")
        }
        #expect { try Recognizer(bytes: try HostileFiles.model { $0.architecture = $0.architecture.setting(["type"], to: .number(3)) }) }
            throws: { e in "\(e)".contains("no 'type'") }
    }

    @Test func aRegisteredVariantLoadsAndItsStreamingContractHolds() throws {
        ModelRegistry.register(type: "test-offline-conformer") { _, o throws(ModelError) in
            let c: Container
            do throws(ContainerError) { c = try Container.read(path: Fixtures.modelPath) } catch { throw .file(error) }
            return OfflineOnlyModel(inner: try ConformerModel(source: c, activations: o.activations, threads: o.threads))
        }
        let r = try Recognizer(bytes: try Self.model(type: "test-offline-conformer"))
        #expect(r.model is OfflineOnlyModel)
        #expect { try r.makeStream() } throws: { e in "\(e)".contains("whole utterances only") }
        let audio = try Fixtures.audio()
        let expected = try Recognizer(path: Fixtures.modelPath).transcribe(samples: audio, sampleRate: 16000)
        #expect(try r.transcribe(samples: audio, sampleRate: 16000).tokens == expected.tokens)
        let wav = Fixtures.tempPath("registry.wav")
        try Fixtures.writeWAV(audio, rate: 16000, to: wav)
        defer { unlink(wav) }
        #expect(try r.transcribe(file: wav).text == (try Recognizer(path: Fixtures.modelPath).transcribe(file: wav)).text)
    }
}
