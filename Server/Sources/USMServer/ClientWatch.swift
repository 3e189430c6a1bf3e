import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// Whether the client of one HTTP connection is still there. It is gone once the connection's read side has ended
/// (the client closed the socket or shut down its sending half; the server allows half-closure, so NIO reports that
/// as `ChannelEvent.inputClosed` and keeps the connection open) or the connection has closed. A request whose client
/// is gone cannot be answered, so its work is cancelled (`Transcriptions.handle`).
final class ClientWatch: Sendable {
    private struct State {
        var gone = false
        var nextKey = 0
        var callbacks: [Int: @Sendable () -> Void] = [:]
    }

    private let state = NIOLockedValueBox(State())

    /// Runs every registered callback once, the first time.
    func markGone() {
        let callbacks: [@Sendable () -> Void] = state.withLockedValue { s in
            guard !s.gone else { return [] }
            s.gone = true
            defer { s.callbacks = [:] }
            return Array(s.callbacks.values)
        }
        for c in callbacks { c() }
    }

    /// Registers `body` to run when the client goes; runs it at once (and returns nil) if it has already gone.
    func onGone(_ body: @escaping @Sendable () -> Void) -> Int? {
        let key: Int? = state.withLockedValue { s in
            guard !s.gone else { return nil }
            s.nextKey += 1
            s.callbacks[s.nextKey] = body
            return s.nextKey
        }
        if key == nil { body() }
        return key
    }

    func remove(_ key: Int?) {
        guard let key else { return }
        _ = state.withLockedValue { $0.callbacks.removeValue(forKey: key) }
    }

    /// Runs `body` in a child task that is cancelled when the client goes (or when the caller is cancelled).
    func cancellingOnDisconnect<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let work = Task { try await body() }
        let key = onGone { work.cancel() }
        defer { remove(key) }
        return try await withTaskCancellationHandler { try await work.value } onCancel: { work.cancel() }
    }
}

/// Sits in each HTTP connection's pipeline (after the HTTP codec) and marks its `ClientWatch` when the client goes.
/// Everything passes through unchanged. Removed with the other HTTP handlers when a connection upgrades to WebSocket.
final class ClientWatchHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    // @unchecked: the only state, `watch`, is immutable and Sendable; the handler's callbacks run on its event loop
    typealias InboundIn = Any

    let watch = ClientWatch()

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { watch.markGone() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        watch.markGone()
        context.fireChannelInactive()
    }
}

/// The request context of the HTTP routes: Hummingbird's basic context plus the connection, so that a handler can
/// find its connection's `ClientWatch`.
struct ServerRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// This connection's watch, or nil where the pipeline has none (it always has one in `SpeechServer`).
    var clientWatch: ClientWatch? {
        get async { try? await channel.pipeline.handler(type: ClientWatchHandler.self).map(\.watch).get() }
    }
}
