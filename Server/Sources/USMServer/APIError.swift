import Foundation
import Hummingbird
import NIOCore
import USMRecognizer

/// An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with an HTTP status.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Extra response headers (Retry-After on 429, WWW-Authenticate on 401).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error", param: String? = nil,
                code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public var description: String { "\(status.code) \(message)" }

    /// At capacity or not ready (429, 503): the same request may succeed later.
    var retryLater: Bool { status == .tooManyRequests || status == .serviceUnavailable }

    static func badRequest(_ m: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(.badRequest, m, param: param, code: code)
    }

    static func unauthorized() -> APIError {
        var e = APIError(.unauthorized, "missing or invalid bearer token (Authorization: Bearer TOKEN)", code: "invalid_api_key")
        e.headers[.wwwAuthenticate] = "Bearer"
        return e
    }

    static func unknownModel(_ name: String, known: [String]) -> APIError {
        APIError(.notFound, "the model '\(name)' does not exist (this server has: \(known.joined(separator: ", ")))",
                 param: "model", code: "model_not_found")
    }

    static func queueFull(retryAfter: Int = 1) -> APIError {
        var e = APIError(.tooManyRequests, "the server is at capacity (every recognition slot and queue place is taken); retry later",
                         type: "server_overloaded", code: "queue_full")
        e.headers[.retryAfter] = "\(retryAfter)"
        return e
    }

    static func notReady(_ why: String) -> APIError {
        var e = APIError(.serviceUnavailable, why, type: "server_error", code: "not_ready")
        e.headers[.retryAfter] = "1"
        return e
    }

    /// A recognition failure: the client's audio (400) or the server's fault (500). An upload's errors name it by
    /// the client's file name (it is decoded from memory, so no server path exists to leak).
    static func recognition(_ error: RecognizerError) -> APIError {
        let message = "\(error)"
        switch error.exitStatus {
        case .invalidData, .cannotOpen, .usage:
            // the upload is the only input a request brings: audio that cannot be read or is over a limit
            return APIError(.badRequest, "invalid audio: \(message)", param: "file", code: "invalid_audio")
        default:
            return APIError(.internalServerError, "recognition failed: \(message)", type: "server_error", code: "internal_error")
        }
    }

    var body: [String: Any] {
        ["error": ["message": message, "type": type, "param": param as Any? ?? NSNull(), "code": code as Any? ?? NSNull()]]
    }

    var jsonString: String { jsonText(body) }

    public var response: Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: jsonString)))
    }
}

enum Responses {
    static func json(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: jsonText(object))))
    }

    static func text(_ s: String, contentType: String = "text/plain; charset=utf-8", status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(string: s)))
    }
}
