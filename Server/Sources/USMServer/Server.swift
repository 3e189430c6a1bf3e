import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import USMRecognizer

/// The speech service: HTTP routes, the WebSocket stream route, models loaded once and shared.
public struct SpeechServer: Sendable {
    public let state: ServerState
    public let logger: Logger

    public init(configuration: ServerConfiguration, logger: Logger = Logger(label: "usm-server")) {
        state = ServerState(configuration: configuration)
        self.logger = logger
    }

    /// The routes any request may reach.
    static let routes: Set<String> = ["/health", "/ready", "/metrics", "/v1/models", "/v1/audio/transcriptions", "/v1/audio/stream"]

    func makeRouter() -> Router<ServerRequestContext> {
        let state = self.state
        let router = Router(context: ServerRequestContext.self)
        router.add(middleware: APIMiddleware(state: state))
        router.get("/health") { _, _ in Responses.json(["status": "ok"]) }
        router.get("/ready") { _, _ -> Response in
            if let e = state.unavailable() { return e.response }
            return Responses.json(["status": "ready", "models": state.modelNames])
        }
        router.get("/metrics") { _, _ in
            Responses.text(state.metrics.text(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/v1/models") { _, _ -> Response in
            let models = state.modelNames.compactMap { name -> [String: Any]? in
                guard let r = state.recognizer(name) else { return nil }
                return ["id": name, "object": "model", "owned_by": "usm-infer", "recipe": r.loadReport.recipe,
                        "file_bytes": r.loadReport.fileBytes, "sample_rate": r.sampleRate]
            }
            return Responses.json(["object": "list", "data": models])
        }
        router.post("/v1/audio/transcriptions") { request, context in
            try await Transcriptions.handle(request, state: state, watch: await context.clientWatch)
        }
        // a stream request that was not upgraded: say why (the same checks as the upgrade), else that it needs one
        router.get("/v1/audio/stream") { request, _ -> Response in
            _ = try StreamParameters(request: request, state: state)
            throw APIError(.upgradeRequired, "this route is a WebSocket: connect with an Upgrade: websocket request",
                           code: "upgrade_required")
        }
        return router
    }

    func makeWebSocketRouter() -> Router<BasicWebSocketRequestContext> {
        let state = self.state
        let logger = self.logger
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.ws("/v1/audio/stream") { request, _ in
            // A refused upgrade reaches the client as a bare 400 (hummingbird-websocket answers every refused
            // handshake so; the same request as plain HTTP says why). That is for what the client must fix (its
            // token, its query). At capacity or while not ready the upgrade goes ahead and the socket says so: an
            // error message, then close 1013 (try again later).
            guard APIMiddleware.authorized(request, state: state) else { return .dontUpgrade }
            do throws(APIError) { _ = try StreamParameters(request: request, state: state) } catch {
                if !error.retryLater { return .dontUpgrade }
            }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let params: StreamParameters
            do throws(APIError) { params = try StreamParameters(request: context.request, state: state) } catch {
                try await StreamSession.refuse(outbound, error, metrics: state.metrics)
                return
            }
            try await StreamSession(state: state, parameters: params, logger: logger).run(inbound: inbound, outbound: outbound)
        }
        return router
    }

    /// The application (HTTP/1.1 with WebSocket upgrade) and the service that loads the models.
    public func makeApplication(onRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol {
        let c = state.configuration
        let logger = self.logger
        return Application(
            router: makeRouter(),
            server: .http1WebSocketUpgrade(
                webSocketRouter: makeWebSocketRouter(),
                // an HTTP connection that sends nothing for idleTimeout while its request is being read, or between
                // requests, is closed (a stalled upload cannot hold a connection, nor stall a graceful shutdown);
                // each connection's ClientWatchHandler cancels its request's work when the client goes
                configuration: .init(http1: .init(additionalChannelHandlers: [ClientWatchHandler()],
                                                  idleTimeout: .milliseconds(Int64(c.idleTimeout * 1000))),
                                     ws: .init(maxFrameSize: c.maxMessageBytes, closeTimeout: .seconds(5)))),
            configuration: .init(address: .hostname(c.host, port: c.port), serverName: "usm-server"),
            services: [ReadinessService(state: state, logger: logger)],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? c.port
                logger.info("listening", metadata: ["address": "\(c.host):\(port)"])
                await onRunning(port)
            },
            logger: logger)
    }

    /// The application, then the drain service (stopped first: streams end before the HTTP server quiesces).
    public func makeServices(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> [any Service] {
        [makeApplication(onRunning: onRunning), DrainService(state: state, logger: logger)]
    }

    /// Runs until a signal in `gracefulShutdownSignals` (then drains: in-flight requests finish) or cancellation.
    public func run(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
                    onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let group = ServiceGroup(configuration: .init(
            services: makeServices(onRunning: onRunning),
            gracefulShutdownSignals: gracefulShutdownSignals, logger: logger))
        do {
            try await group.run()
        } catch {
            await state.pool.shutdown()
            throw error
        }
        await state.pool.shutdown()
    }
}

/// Every HTTP request: bearer auth on `/v1/`, errors in OpenAI's JSON shape, request metrics.
struct APIMiddleware: RouterMiddleware {
    typealias Context = ServerRequestContext
    let state: ServerState

    static func authorized(_ request: Request, state: ServerState) -> Bool {
        guard let token = state.configuration.token else { return true }
        guard let header = request.headers[.authorization] else { return false }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix else { return false }
        return constantTimeEqual(Array(header.utf8.dropFirst(prefix.count)), Array(token.utf8))
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for i in a.indices { d |= a[i] ^ b[i] }
        return d == 0
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let path = request.uri.path
        let route = SpeechServer.routes.contains(path) ? path : "other"
        var response: Response
        do {
            if path.hasPrefix("/v1/") && !Self.authorized(request, state: state) { throw APIError.unauthorized() }
            response = try await next(request, context)
        } catch let e as APIError {
            response = e.response
        } catch let e as any HTTPResponseError {
            let message = e.status == .notFound ? "no route \(request.method) \(path)" : "\(e.status.reasonPhrase)"
            response = APIError(e.status, message, type: e.status.code >= 500 ? "server_error" : "invalid_request_error").response
        } catch {
            context.logger.error("request failed: \(error)")
            response = APIError(.internalServerError, "internal error", type: "server_error").response
        }
        let seconds = (ContinuousClock.now - start).inSeconds
        state.metrics.request(route: route, method: request.method.rawValue, status: Int(response.status.code), seconds: seconds)
        return response
    }
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
