import Foundation
import Hummingbird
import MultipartKit
import NIOCore
import USMRecognizer

/// The fields and file of a `multipart/form-data` upload.
struct Upload {
    var fields: [String: [String]] = [:]
    var file: ByteBuffer?
    var fileName: String?

    func field(_ name: String) -> String? { fields[name]?.last }

    /// The most bytes a non-file field may hold, and the most fields.
    static let maxFieldBytes = 64 << 10
    static let maxFields = 64
}

/// `POST /v1/audio/transcriptions`: OpenAI's request shape, answered by one offline recognition on the pool.
enum Transcriptions {
    /// `watch`: the connection's; when its client goes, an upload still waiting for a recognition slot leaves the
    /// queue (a recognition already running finishes: the library's offline call is not interruptible).
    static func handle(_ request: Request, state: ServerState, watch: ClientWatch?) async throws -> Response {
        if let e = state.unavailable() { throw e }
        let boundary = try multipartBoundary(request.headers[.contentType])
        let limit = state.configuration.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit { throw tooLarge(limit) }
        // refused before the body is read: a full server costs its clients no upload
        if state.pool.isFull { throw APIError.queueFull() }
        let upload = try await parse(request.body, boundary: boundary, limit: limit)

        guard let file = upload.file else {
            throw APIError.badRequest("the request has no 'file' part (multipart/form-data with the audio as 'file')", param: "file")
        }
        let name = upload.field("model") ?? state.defaultModel
        guard let recognizer = state.recognizer(name) else { throw APIError.unknownModel(name, known: state.modelNames) }
        let formatName = upload.field("response_format") ?? "json"
        guard let format = ResponseFormat(rawValue: formatName) else {
            throw APIError.badRequest("response_format '\(formatName)' is not one of \(ResponseFormat.allCases.map(\.rawValue).joined(separator: ", "))",
                                      param: "response_format")
        }
        var granularities = Set<String>()
        for key in ["timestamp_granularities[]", "timestamp_granularities"] {
            for v in upload.fields[key] ?? [] {
                for g in v.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !g.isEmpty {
                    guard g == "word" || g == "segment" else {
                        throw APIError.badRequest("timestamp granularity '\(g)' is not word or segment", param: "timestamp_granularities[]")
                    }
                    granularities.insert(g)
                }
            }
        }
        if let t = upload.field("temperature"), Double(t) == nil {
            throw APIError.badRequest("temperature '\(t)' is not a number", param: "temperature")
        }
        // `language` and `prompt` are accepted: the models are English-only and take no prompt

        // decoded from memory (libsndfile's virtual I/O): nothing of the upload reaches the disk
        let bytes = [UInt8](file.readableBytesView)
        let uploadName = upload.fileName ?? "upload"
        let transcript: Transcript
        let recognize = { @Sendable () async throws -> Transcript in
            // a recognition already running stops at its next block once the request's task is cancelled
            let stop = StopFlag()
            return try await withTaskCancellationHandler {
                try await state.pool.run { () throws -> Transcript in
                    do {
                        return try recognizer.transcribe(bytes: bytes, name: uploadName, isCancelled: { stop.isSet })
                    } catch RecognizerError.cancelled {
                        state.metrics.cancelledRecognition(model: name)
                        throw CancellationError()
                    }
                }
            } onCancel: { stop.set() }
        }
        do {
            if let watch { transcript = try await watch.cancellingOnDisconnect(recognize) } else { transcript = try await recognize() }
        } catch is CancellationError {
            // nobody reads this answer; it is counted in the metrics as nginx's "client closed request"
            throw APIError(.init(code: 499, reasonPhrase: "Client Closed Request"), "the client closed the connection",
                           code: "client_closed_request")
        } catch let e as RecognizerError {
            throw APIError.recognition(e)
        } catch RecognitionPool.PoolError.queueFull {
            throw APIError.queueFull()
        } catch RecognitionPool.PoolError.shutDown {
            throw APIError.notReady("the server is shutting down")
        }
        state.metrics.recognized(model: name, kind: "upload", timings: transcript.timings)
        return TranscriptionResponse.make(transcript, format: format, granularities: granularities, model: name)
    }

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(.contentTooLarge, "the request body is larger than \(limit) bytes (--max-body-bytes)", code: "request_too_large")
    }

    /// The boundary of a `multipart/form-data` content type: 415 for another type, 400 for one without a boundary.
    static func multipartBoundary(_ contentType: String?) throws(APIError) -> String {
        guard let contentType else {
            throw APIError(.unsupportedMediaType, "Content-Type must be multipart/form-data (none given)", code: "unsupported_media_type")
        }
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.first?.lowercased() == "multipart/form-data" else {
            throw APIError(.unsupportedMediaType, "Content-Type must be multipart/form-data, not '\(contentType)'",
                           code: "unsupported_media_type")
        }
        for p in parts.dropFirst() {
            guard let eq = p.firstIndex(of: "=") else { continue }
            guard p[..<eq].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            var b = p[p.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if b.count >= 2 && b.hasPrefix("\"") && b.hasSuffix("\"") { b = String(b.dropFirst().dropLast()) }
            guard (1...70).contains(b.utf8.count) else { break }
            return b
        }
        throw APIError.badRequest("the multipart/form-data Content-Type has no valid boundary")
    }

    /// Reads the body through the multipart parser, keeping the `file` part and the small fields; 413 past `limit`.
    static func parse(_ body: RequestBody, boundary: String, limit: Int) async throws(APIError) -> Upload {
        let parser = MultipartParser(boundary: boundary)
        var upload = Upload()
        var headers: [(String, String)] = []
        var part = ByteBuffer()
        var partBytes = 0
        var error: APIError?
        var fields = 0
        var isFile: Bool {
            guard let name = dispositionParameter(headers, "name") else { return false }
            return name == "file"
        }
        parser.onHeader = { name, value in headers.append((name, value)) }
        parser.onBody = { chunk in
            partBytes += chunk.readableBytes
            if !isFile && partBytes > Upload.maxFieldBytes {
                if error == nil { error = APIError.badRequest("a form field is longer than \(Upload.maxFieldBytes) bytes") }
                return
            }
            part.writeBuffer(&chunk)
        }
        parser.onPartComplete = {
            defer { headers = []; part = ByteBuffer(); partBytes = 0 }
            guard error == nil else { return }
            guard let name = dispositionParameter(headers, "name") else {
                error = APIError.badRequest("a multipart part has no Content-Disposition name")
                return
            }
            fields += 1
            if fields > Upload.maxFields { error = APIError.badRequest("more than \(Upload.maxFields) form fields"); return }
            if name == "file" {
                upload.file = part
                upload.fileName = dispositionParameter(headers, "filename")
            } else {
                upload.fields[name, default: []].append(String(decoding: part.readableBytesView, as: UTF8.self))
            }
        }
        var total = 0
        do {
            for try await chunk in body {
                total += chunk.readableBytes
                if total > limit { throw tooLarge(limit) }
                try parser.execute(chunk)
                if let error { throw error }
            }
        } catch let e as APIError {
            throw e
        } catch {
            throw APIError.badRequest("malformed multipart/form-data body: \(error)")
        }
        if let error { throw error }
        if upload.file == nil && upload.fields.isEmpty {
            throw APIError.badRequest("malformed multipart/form-data body: no complete part (is the boundary right, the body whole?)")
        }
        return upload
    }

    /// A parameter of a part's Content-Disposition header (`name`, `filename`).
    static func dispositionParameter(_ headers: [(String, String)], _ key: String) -> String? {
        guard let value = headers.first(where: { $0.0.lowercased() == "content-disposition" })?.1 else { return nil }
        for p in value.split(separator: ";").dropFirst() {
            let kv = p.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, kv[0].lowercased() == key else { continue }
            var v = kv[1]
            if v.count >= 2 && v.hasPrefix("\"") && v.hasSuffix("\"") { v = String(v.dropFirst().dropLast()) }
            return v
        }
        return nil
    }
}
