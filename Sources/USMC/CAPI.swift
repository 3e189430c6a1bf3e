import CUSMAPI
import Foundation
import USMRecognizer

// The definitions of usm.h. Pointers stay inside this file: each function checks its arguments, turns handles into
// the library's objects, calls the Swift API and converts the result into malloc'ed C memory the caller frees with
// the matching *_free function.

/// Never freed: usm_version returns it for the life of the process.
nonisolated(unsafe) private let versionString = strdup("0.1.0")

@_cdecl("usm_version")
public func usm_version() -> UnsafePointer<CChar>? { UnsafePointer(versionString) }

@_cdecl("usm_api_version")
public func usm_api_version() -> Int32 { Int32(USM_API_VERSION) }

@_cdecl("usm_options_init")
public func usm_options_init(_ options: UnsafeMutablePointer<usm_options>?) {
    options?.pointee = usm_options(threads: 1, beam: 1, activations: Int32(USM_ACTIVATIONS_INT8_BLOCK.rawValue), max_audio_seconds: 0)
}

private func status(_ s: ExitStatus) -> usm_status {
    switch s {
    case .success: USM_OK
    case .usage: USM_ERR_USAGE
    case .invalidData: USM_ERR_INVALID_DATA
    case .cannotOpen: USM_ERR_CANNOT_OPEN
    case .internalError, .outputFailed, .unavailable: USM_ERR_INTERNAL
    }
}

/// Reports a failure: the message into `*error` (when asked for), the status as the return value.
private func fail(_ s: ExitStatus, _ message: String, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    error?.pointee = strdup(message)
    return status(s)
}

private func fail(_ e: RecognizerError, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    fail(e.exitStatus, e.description, error)
}

private func recognizerOptions(_ p: UnsafePointer<usm_options>?) -> Result<RecognizerOptions, RecognizerError> {
    var o = usm_options()
    usm_options_init(&o)
    if let p { o = p.pointee }
    let activations: ActivationMode
    switch Int(o.activations) {
    case Int(USM_ACTIVATIONS_INT8_BLOCK.rawValue): activations = .int8PerBlock
    case Int(USM_ACTIVATIONS_INT8_TOKEN.rawValue): activations = .int8PerToken
    case Int(USM_ACTIVATIONS_FLOAT.rawValue): activations = .float
    case Int(USM_ACTIVATIONS_INT6_BIN.rawValue): activations = .int6Binary
    case Int(USM_ACTIVATIONS_INT5_BIN.rawValue): activations = .int5Binary
    default: return .failure(.invalidOptions("activations \(o.activations) is not a usm_activations value"))
    }
    guard o.max_audio_seconds.isFinite, o.max_audio_seconds >= 0 else {
        return .failure(.invalidOptions("max_audio_seconds \(o.max_audio_seconds) is not a number of seconds >= 0"))
    }
    guard o.beam >= 1 else { return .failure(.invalidOptions("beam \(o.beam) is not at least 1")) }
    var limits = RecognizerLimits()
    if o.max_audio_seconds > 0 { limits.maxAudioSeconds = o.max_audio_seconds }
    return .success(RecognizerOptions(activations: activations, threads: Int(o.threads),
                                      search: o.beam == 1 ? .greedy : .beam(width: Int(o.beam)), limits: limits))
}

private func handle(_ r: Recognizer) -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(r).toOpaque()) }
private func recognizer(_ p: OpaquePointer) -> Recognizer { Unmanaged<Recognizer>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue() }
private func stream(_ p: OpaquePointer) -> RecognitionStream {
    Unmanaged<RecognitionStream>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
}

private func open(_ make: (RecognizerOptions) throws(RecognizerError) -> Recognizer, _ options: UnsafePointer<usm_options>?,
                  _ out: UnsafeMutablePointer<OpaquePointer?>?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let out else { return fail(.usage, "out is NULL", error) }
    out.pointee = nil
    let o: RecognizerOptions
    switch recognizerOptions(options) {
    case .success(let v): o = v
    case .failure(let e): return fail(e, error)
    }
    do {
        out.pointee = handle(try make(o))
        return USM_OK
    } catch let e {
        return fail(e, error)
    }
}

@_cdecl("usm_recognizer_open")
public func usm_recognizer_open(_ path: UnsafePointer<CChar>?, _ options: UnsafePointer<usm_options>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?,
                                _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let path else { return fail(.usage, "path is NULL", error) }
    let p = String(cString: path)
    return open({ (o) throws(RecognizerError) in try Recognizer(path: p, options: o) }, options, out, error)
}

@_cdecl("usm_recognizer_open_bytes")
public func usm_recognizer_open_bytes(_ bytes: UnsafePointer<UInt8>?, _ count: Int, _ options: UnsafePointer<usm_options>?,
                                      _ out: UnsafeMutablePointer<OpaquePointer?>?,
                                      _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let bytes else { return fail(.usage, "bytes is NULL", error) }
    let copy = Array(UnsafeBufferPointer(start: bytes, count: count))
    return open({ (o) throws(RecognizerError) in try Recognizer(bytes: copy, options: o) }, options, out, error)
}

@_cdecl("usm_recognizer_free")
public func usm_recognizer_free(_ r: OpaquePointer?) {
    guard let r else { return }
    Unmanaged<Recognizer>.fromOpaque(UnsafeRawPointer(r)).release()
}

@_cdecl("usm_recognizer_sample_rate")
public func usm_recognizer_sample_rate(_ r: OpaquePointer?) -> Int32 {
    guard let r else { return 0 }
    return Int32(recognizer(r).sampleRate)
}

/// The transcript as a malloc'ed usm_result.
private func cResult(_ t: Transcript) -> UnsafeMutablePointer<usm_result> {
    let r = UnsafeMutablePointer<usm_result>.allocate(capacity: 1)
    let words = UnsafeMutablePointer<usm_word>.allocate(capacity: max(t.words.count, 1))
    for (i, w) in t.words.enumerated() { (words + i).initialize(to: usm_word(word: UnsafePointer(strdup(w.word)), start: w.start, end: w.end)) }
    let ids = UnsafeMutablePointer<Int32>.allocate(capacity: max(t.tokens.count, 1))
    let starts = UnsafeMutablePointer<Double>.allocate(capacity: max(t.tokens.count, 1))
    for (i, tok) in t.tokens.enumerated() { ids[i] = Int32(tok.id); starts[i] = tok.start }
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let json = (try? e.encode(t)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    r.initialize(to: usm_result(text: UnsafePointer(strdup(t.text)), n_words: t.words.count, words: UnsafePointer(words),
                                n_tokens: t.tokens.count, token_ids: UnsafePointer(ids), token_starts: UnsafePointer(starts),
                                audio_seconds: t.timings.audioSeconds, compute_seconds: t.timings.total,
                                is_final: t.isFinal ? 1 : 0, json: UnsafePointer(strdup(json))))
    return r
}

@_cdecl("usm_result_free")
public func usm_result_free(_ r: UnsafeMutablePointer<usm_result>?) {
    guard let r else { return }
    let v = r.pointee
    free(UnsafeMutablePointer(mutating: v.text))
    free(UnsafeMutablePointer(mutating: v.json))
    if let words = v.words {
        for i in 0..<v.n_words { free(UnsafeMutablePointer(mutating: words[i].word)) }
        UnsafeMutablePointer(mutating: words).deallocate()
    }
    UnsafeMutablePointer(mutating: v.token_ids)?.deallocate()
    UnsafeMutablePointer(mutating: v.token_starts)?.deallocate()
    r.deallocate()
}

private func deliver(_ make: () throws(RecognizerError) -> Transcript, _ out: UnsafeMutablePointer<UnsafeMutablePointer<usm_result>?>?,
                     _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let out else { return fail(.usage, "out is NULL", error) }
    out.pointee = nil
    do {
        out.pointee = cResult(try make())
        return USM_OK
    } catch let e {
        return fail(e, error)
    }
}

@_cdecl("usm_transcribe_f32")
public func usm_transcribe_f32(_ r: OpaquePointer?, _ samples: UnsafePointer<Float>?, _ count: Int, _ rate: Int32,
                               _ out: UnsafeMutablePointer<UnsafeMutablePointer<usm_result>?>?,
                               _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let r else { return fail(.usage, "recognizer is NULL", error) }
    guard let samples, count > 0 else { return fail(.usage, "samples is NULL or empty", error) }
    let x = Array(UnsafeBufferPointer(start: samples, count: count))
    return deliver({ () throws(RecognizerError) in try recognizer(r).transcribe(samples: x, sampleRate: Int(rate)) }, out, error)
}

@_cdecl("usm_transcribe_s16")
public func usm_transcribe_s16(_ r: OpaquePointer?, _ samples: UnsafePointer<Int16>?, _ count: Int, _ rate: Int32,
                               _ out: UnsafeMutablePointer<UnsafeMutablePointer<usm_result>?>?,
                               _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let r else { return fail(.usage, "recognizer is NULL", error) }
    guard let samples, count > 0 else { return fail(.usage, "samples is NULL or empty", error) }
    let x = UnsafeBufferPointer(start: samples, count: count).map { Float($0) / 32768 }
    return deliver({ () throws(RecognizerError) in try recognizer(r).transcribe(samples: x, sampleRate: Int(rate)) }, out, error)
}

@_cdecl("usm_transcribe_file")
public func usm_transcribe_file(_ r: OpaquePointer?, _ path: UnsafePointer<CChar>?,
                                _ out: UnsafeMutablePointer<UnsafeMutablePointer<usm_result>?>?,
                                _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let r else { return fail(.usage, "recognizer is NULL", error) }
    guard let path else { return fail(.usage, "path is NULL", error) }
    let p = String(cString: path)
    return deliver({ () throws(RecognizerError) in try recognizer(r).transcribe(file: p) }, out, error)
}

@_cdecl("usm_transcribe_encoded")
public func usm_transcribe_encoded(_ r: OpaquePointer?, _ bytes: UnsafePointer<UInt8>?, _ count: Int,
                                   _ name: UnsafePointer<CChar>?,
                                   _ out: UnsafeMutablePointer<UnsafeMutablePointer<usm_result>?>?,
                                   _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let r else { return fail(.usage, "recognizer is NULL", error) }
    guard let bytes else { return fail(.usage, "bytes is NULL", error) }
    let copy = Array(UnsafeBufferPointer(start: bytes, count: count))
    let label = name.map { String(cString: $0) } ?? "<memory>"
    return deliver({ () throws(RecognizerError) in try recognizer(r).transcribe(bytes: copy, name: label) }, out, error)
}

@_cdecl("usm_stream_create")
public func usm_stream_create(_ r: OpaquePointer?, _ rate: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?,
                              _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let r else { return fail(.usage, "recognizer is NULL", error) }
    guard let out else { return fail(.usage, "out is NULL", error) }
    out.pointee = nil
    do {
        let s = try recognizer(r).makeStream(inputSampleRate: Int(rate))
        out.pointee = OpaquePointer(Unmanaged.passRetained(s).toOpaque())
        return USM_OK
    } catch let e {
        return fail(e, error)
    }
}

private func accept(_ s: OpaquePointer?, _ x: () -> [Float]?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let s else { return fail(.usage, "stream is NULL", error) }
    guard let samples = x() else { return fail(.usage, "samples is NULL", error) }
    do {
        try stream(s).accept(samples: samples)
        return USM_OK
    } catch let e {
        return fail(e, error)
    }
}

@_cdecl("usm_stream_accept_f32")
public func usm_stream_accept_f32(_ s: OpaquePointer?, _ samples: UnsafePointer<Float>?, _ count: Int,
                                  _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    accept(s, { samples.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? (count == 0 ? [] : nil) }, error)
}

@_cdecl("usm_stream_accept_s16")
public func usm_stream_accept_s16(_ s: OpaquePointer?, _ samples: UnsafePointer<Int16>?, _ count: Int,
                                  _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    accept(s, { samples.map { UnsafeBufferPointer(start: $0, count: count).map { Float($0) / 32768 } } ?? (count == 0 ? [] : nil) }, error)
}

@_cdecl("usm_stream_partial")
public func usm_stream_partial(_ s: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<usm_result>?>?,
                               _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let s else { return fail(.usage, "stream is NULL", error) }
    return deliver({ () throws(RecognizerError) in stream(s).partial }, out, error)
}

@_cdecl("usm_stream_is_endpoint")
public func usm_stream_is_endpoint(_ s: OpaquePointer?) -> Int32 {
    guard let s else { return 0 }
    return stream(s).isEndpoint ? 1 : 0
}

@_cdecl("usm_stream_finish")
public func usm_stream_finish(_ s: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<usm_result>?>?,
                              _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> usm_status {
    guard let s else { return fail(.usage, "stream is NULL", error) }
    return deliver({ () throws(RecognizerError) in stream(s).finish() }, out, error)
}

@_cdecl("usm_stream_reset")
public func usm_stream_reset(_ s: OpaquePointer?) {
    guard let s else { return }
    stream(s).reset()
}

@_cdecl("usm_stream_free")
public func usm_stream_free(_ s: OpaquePointer?) {
    guard let s else { return }
    Unmanaged<RecognitionStream>.fromOpaque(UnsafeRawPointer(s)).release()
}

@_cdecl("usm_string_free")
public func usm_string_free(_ p: UnsafeMutablePointer<CChar>?) { free(p) }
