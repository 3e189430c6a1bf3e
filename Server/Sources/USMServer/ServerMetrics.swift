import Foundation
import Prometheus
import USMRecognizer

/// The server's Prometheus metrics (`GET /metrics`), in a registry of their own (no global bootstrap, so several
/// servers, as in the tests, each count their own).
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let activeStreams: Gauge
    let queueDepth: Gauge
    let running: Gauge
    let ready: Gauge
    /// recorded once per stream chunk and per batch: made once, not looked up in the registry on every call
    let chunkLatency: DurationHistogram
    let batchSize: ValueHistogram
    let heapRelease: DurationHistogram

    static let latencyBuckets: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120].map { .milliseconds(Int($0 * 1000)) }
    static let releaseBuckets: [Duration] = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1].map { .microseconds(Int($0 * 1e6)) }
    static let rtfBuckets: [Double] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2]

    public init() {
        activeStreams = registry.makeGauge(name: "usm_active_streams", labels: [], help: "WebSocket streams open now")
        queueDepth = registry.makeGauge(name: "usm_queue_depth", labels: [], help: "Recognitions waiting for a free slot")
        running = registry.makeGauge(name: "usm_recognitions_running", labels: [], help: "Recognitions running now")
        ready = registry.makeGauge(name: "usm_ready", labels: [], help: "1 once every model is loaded and until shutdown begins")
        chunkLatency = registry.makeDurationHistogram(name: "usm_stream_chunk_latency_seconds", labels: [], buckets: Self.latencyBuckets,
                                                      help: "From a stream chunk's arrival to the end of its recognition")
        batchSize = registry.makeValueHistogram(name: "usm_stream_batch_size", labels: [], buckets: Self.batchBuckets,
                                                help: "Stream chunks fed together (one pass of the encoder over all of them)")
        heapRelease = registry.makeDurationHistogram(name: "usm_heap_release_seconds", labels: [], buckets: Self.releaseBuckets,
                                                     help: "Free heap pages given back to the system when recognition went idle (at most every 10 s)")
    }

    /// One answered HTTP request.
    func request(route: String, method: String, status: Int, seconds: Double) {
        registry.makeCounter(name: "usm_http_requests_total", labels: [("route", route), ("method", method), ("status", "\(status)")],
                             help: "HTTP requests answered, by route, method and status").increment()
        registry.makeDurationHistogram(name: "usm_http_request_duration_seconds", labels: [("route", route)],
                                       buckets: Self.latencyBuckets, help: "Time from request head to response, by route")
            .record(.nanoseconds(Int64(seconds * 1e9)))
    }

    /// One finished recognition (an upload, or a stream's utterance).
    func recognized(model: String, kind: String, timings: StageTimings) {
        registry.makeCounter(name: "usm_audio_seconds_total", labels: [("model", model), ("kind", kind)],
                             help: "Seconds of audio recognized, by model and kind (upload, stream)").increment(by: timings.audioSeconds)
        if timings.audioSeconds > 0 {
            registry.makeValueHistogram(name: "usm_realtime_factor", labels: [("model", model), ("kind", kind)],
                                        buckets: Self.rtfBuckets, help: "Recognition time over audio duration").record(timings.realTimeFactor)
        }
    }

    /// An upload's recognition that stopped part way because its client went away.
    func cancelledRecognition(model: String) {
        registry.makeCounter(name: "usm_recognitions_cancelled_total", labels: [("model", model)],
                             help: "Upload recognitions stopped part way because the client went away, by model").increment()
    }

    /// Free heap pages given back to the operating system, and how long that took.
    func heapReleased(seconds: Double) {
        heapRelease.record(.nanoseconds(Int64(seconds * 1e9)))
    }

    /// A stream chunk recognized: the time from its message's arrival to the end of its recognition (waiting for
    /// the stream's previous chunks and for a recognition thread included; sending the results not).
    func chunkRecognized(after latency: Duration) {
        chunkLatency.record(latency)
    }

    static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128]

    /// Stream chunks fed together by one recognition thread.
    func batch(streams: Int) {
        batchSize.record(Double(streams))
    }

    func streamMessage(kind: String) {
        registry.makeCounter(name: "usm_stream_messages_total", labels: [("type", kind)], help: "WebSocket messages sent, by type").increment()
    }

    func modelLoaded(name: String, report: LoadReport) {
        registry.makeGauge(name: "usm_model_load_seconds", labels: [("model", name)], help: "Seconds the model took to load")
            .set(report.seconds)
        for (kind, bytes) in [("file", report.fileBytes), ("memory", report.memoryBytes), ("prepared", report.preparedBytes)] {
            registry.makeGauge(name: "usm_model_bytes", labels: [("model", name), ("kind", kind)],
                               help: "Model bytes: file on disk, decompressed image, prepared for the kernels").set(Double(bytes))
        }
    }

    public func text() -> String { registry.emitToString() }
}
