import Foundation
import Testing
import USMTestSupport
import USMAudio
import USMFormat
import USMRecognizer
import USMTensor

@Suite struct HostileModels {
    @Test func aFrameCannotDeclareMoreThanZstdCanExpandIt() throws {
        // 40 GB declared by a 1 KB frame: refused from the directory, before anything is allocated or decoded
        let b = try HostileFiles.container(payload: 40_000_000_000, frame: HostileFiles.rleFrame(content: 1 << 20))
        #expect(b.count < 300_000)
        #expect { try Container.read(bytes: b) } throws: { e in
            guard let e = e as? ContainerError, case .inconsistentLayout(let m) = e.kind else { return false }
            return m.contains("cannot decode to 40000000000 bytes") && e.tensor == "joint.out.bias"
        }
        let path = try HostileFiles.write(b, "huge-declared.usm")
        defer { unlink(path) }
        #expect(throws: ContainerError.self) { try ContainerFile(path: path) }
    }

    @Test func theImageLimitIsCheckedBeforeAllocating() throws {
        // a valid 3 GB frame of zeros (about 100 KB): over a 1 GiB limit, a typed error naming the limit
        let frame = HostileFiles.rleFrame(content: 3_000_000_000)
        let b = try HostileFiles.container(payload: 3_000_000_000, frame: frame)
        let limited = ReadOptions(maxImageBytes: 1 << 30)
        #expect { try Container.read(bytes: b, options: limited) } throws: { e in
            guard let e = e as? ContainerError, case .limitExceeded(let m) = e.kind else { return false }
            return m.contains("maxImageBytes") && e.exitStatus == .invalidData
        }
        let path = try HostileFiles.write(b, "limit.usm")
        defer { unlink(path) }
        #expect(throws: ContainerError.self) { try ContainerFile(path: path, options: limited) }
        #expect(throws: RecognizerError.self) {
            try Recognizer(path: path, options: RecognizerOptions(limits: RecognizerLimits(maxModelBytes: 1 << 30)))
        }
    }

    @Test func aFrameWhoseHeaderDisagreesIsRefusedBeforeItsContentIsAllocated() throws {
        // the directory declares 3 GB, the frame 1 MiB: caught from the frame header
        var frame = HostileFiles.rleFrame(content: 1 << 20)
        frame += [UInt8](repeating: 0, count: 100_000)  // long enough for the directory's ratio check
        let b = try HostileFiles.container(payload: 3_000_000_000, frame: frame)
        #expect { try Container.read(bytes: b) } throws: { e in
            guard let e = e as? ContainerError, case .inconsistentLayout(let m) = e.kind else { return false }
            return m.contains("frame declares 1048576 bytes")
        }
        let path = try HostileFiles.write(b, "disagree.usm")
        defer { unlink(path) }
        let file = try ContainerFile(path: path)
        #expect(throws: ContainerError.self) { try file.tensor(named: "joint.out.bias") }
    }

    @Test func configValuesAreValidatedByName() throws {
        let cases: [([String], JSONValue, String)] = [
            (["encoder", "layer_norm_epsilon"], .number(-1), "encoder.layer_norm_epsilon"),
            (["frontend", "preemphasis"], .number(1e30), "frontend.preemphasis"),
            (["frontend", "log_floor"], .number(0), "log_floor"),
        ]
        for (path, value, field) in cases {
            let b = try HostileFiles.model { $0.architecture = $0.architecture.setting(path, to: value) }
            #expect { try Recognizer(bytes: b) } throws: { e in
                guard let e = e as? RecognizerError, case .modelMismatch(let m) = e else { return false }
                return "\(m)".contains(field) && e.exitStatus == .invalidData
            }
        }
        for (key, value) in [("blank_id", JSONValue.number(64)), ("unk_id", .number(-3)), ("blank_id", .number(5))] {
            let b = try HostileFiles.model { $0.tokenizer = $0.tokenizer?.setting([key], to: value) }
            #expect { try Recognizer(bytes: b) } throws: { e in
                guard let e = e as? RecognizerError, case .modelMismatch(let m) = e else { return false }
                return "\(m)".contains("blank_id") || "\(m)".contains(key)
            }
        }
    }

    @Test func resealedMutationsNeverTrap() throws {
        // every single-byte change of the header, metadata and directory, resealed: a typed error or a model
        let base = try Array(Data(contentsOf: URL(fileURLWithPath: Fixtures.modelPath)))
        let dataOffset = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(base[56 + $1]) << (8 * UInt64($1)) })
        var rng = SystemRandomNumberGenerator()
        for i in stride(from: 0, to: dataOffset, by: max(1, dataOffset / 400)) {
            var b = base
            b[i] ^= UInt8.random(in: 1...255, using: &rng)
            ContainerReseal.reseal(&b)
            _ = try? Container.read(bytes: b)
        }
    }
}

@Suite struct HostileAudio {
    @Test func headersOverTheLimitsAreRefusedBeforeReading() throws {
        let path = try HostileFiles.write(HostileFiles.wavHeader(rate: 4_096_000, channels: 1024), "huge.wav")
        defer { unlink(path) }
        #expect { try AudioFileReader(path: path) } throws: { e in
            guard let e = e as? AudioError else { return false }
            return e.kind == .limitExceeded && e.exitStatus == .invalidData
        }
        let rate = try HostileFiles.write(HostileFiles.wavHeader(rate: 4_096_000, channels: 1), "rate.wav")
        defer { unlink(rate) }
        #expect { try AudioFileReader(path: rate) } throws: { e in
            (e as? AudioError)?.detail.contains("maxSampleRate") == true
        }
        // within the limits, a read never decodes more than maxBlockSamples samples at once
        let wide = try HostileFiles.write(HostileFiles.wavHeader(rate: 16000, channels: 64, dataBytes: 64 * 2 * 4000), "wide.wav")
        defer { unlink(wide) }
        let reader = try AudioFileReader(path: wide, limits: AudioLimits(maxBlockSamples: 64 * 100))
        #expect(try reader.read(maxFrames: 1_000_000).count == 100)
    }

    @Test func malformedFilesAreInvalidDataAndUnopenableOnesCannotOpen() throws {
        var id3: [UInt8] = Array("ID3".utf8) + [4, 0, 0, 0x7F, 0x7F, 0x7F, 0x7F]  // a 256 MB tag, then nothing
        id3 += [UInt8](repeating: 0, count: 100)
        let files: [(String, [UInt8])] = [
            ("zero-channels.wav", HostileFiles.wavHeader(rate: 16000, channels: 0)),
            ("garbage.mp3", (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }),
            ("id3.mp3", id3),
        ]
        for (name, bytes) in files {
            let path = try HostileFiles.write(bytes, name)
            defer { unlink(path) }
            #expect { try AudioFileReader(path: path) } throws: { e in (e as? AudioError)?.exitStatus == .invalidData }
        }
        #expect { try AudioFileReader(path: "/nonexistent.wav") } throws: { e in (e as? AudioError)?.exitStatus == .cannotOpen }
        #expect { try AudioFileReader(path: "/tmp") } throws: { e in
            (e as? AudioError)?.exitStatus == .cannotOpen && "\(e)".contains("directory")
        }
    }

    @Test func fifosAreRefusedWithoutWaitingForAWriter() throws {
        let fifo = Fixtures.tempPath("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        #expect { try AudioFileReader(path: fifo) } throws: { e in "\(e)".contains("FIFO") }
        #expect { try ContainerFile(path: fifo) } throws: { e in (e as? ContainerError)?.exitStatus == .cannotOpen }
        #expect { try Container.read(path: fifo) } throws: { e in (e as? ContainerError)?.exitStatus == .cannotOpen }
    }

    @Test func requestLimits() throws {
        let limits = RecognizerLimits(maxThreads: 8, maxBeamWidth: 4, maxAudioSeconds: 1)
        #expect(throws: RecognizerError.self) { try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(threads: 9, limits: limits)) }
        #expect(throws: RecognizerError.self) {
            try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(search: .beam(width: 5), limits: limits))
        }
        let r = try Recognizer(path: Fixtures.modelPath, options: RecognizerOptions(limits: limits))
        #expect(throws: RecognizerError.self) { try r.makeStream(search: .beam(width: 100_000)) }
        #expect(throws: RecognizerError.self) { try r.makeStream(inputSampleRate: 4_096_000) }
        #expect { try r.transcribe(samples: try Fixtures.audio(), sampleRate: 16000) } throws: { e in
            guard case .limitExceeded(let m)? = e as? RecognizerError else { return false }
            return m.contains("maxAudioSeconds")
        }
    }
}
