import Foundation
import Hummingbird
import Logging

/// A collector for the tests: an OTLP/HTTP endpoint (JSON encoding) on a free loopback
/// port, in the test process, keeping every span it is sent.
final class OTLPReceiver: @unchecked Sendable {
    /// One received span.
    struct Span: Equatable {
        var service: String
        var name: String
        var traceID: String
        var spanID: String
        var parentSpanID: String
    }

    let port: Int
    private let lock = NSLock()
    private var received: [Span] = []
    private var task: Task<Void, any Error>?

    var spans: [Span] { lock.withLock { received } }
    /// The base URL for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    var endpoint: String { "http://127.0.0.1:\(port)" }

    init() throws {
        port = try Ports.free()
    }

    func start() async throws {
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 64 << 20)
            self.take(Data(buffer: body))
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
        }
        var logger = Logger(label: "test.otlp")
        logger.logLevel = .critical  // stopping it by cancellation logs an error that means nothing here
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        task = Task { try await app.runService(gracefulShutdownSignals: []) }
        for _ in 0..<100 {
            if (try? await HTTPClient(port: port).get("/", timeout: 2)) != nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw PipelineError("the OTLP receiver did not start on port \(port)")
    }

    func stop() {
        task?.cancel()
    }

    /// Reads an ExportTraceServiceRequest in OTLP's JSON encoding.
    private func take(_ data: Data) {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return }
        var spans: [Span] = []
        for resourceSpans in root["resourceSpans"] as? [[String: Any]] ?? [] {
            let attributes = (resourceSpans["resource"] as? [String: Any])?["attributes"] as? [[String: Any]] ?? []
            let service = attributes.first { $0["key"] as? String == "service.name" }
                .flatMap { ($0["value"] as? [String: Any])?["stringValue"] as? String } ?? "?"
            for scope in resourceSpans["scopeSpans"] as? [[String: Any]] ?? [] {
                for span in scope["spans"] as? [[String: Any]] ?? [] {
                    spans.append(Span(service: service, name: span["name"] as? String ?? "",
                                      traceID: Self.hex(span["traceId"] as? String ?? ""),
                                      spanID: Self.hex(span["spanId"] as? String ?? ""),
                                      parentSpanID: Self.hex(span["parentSpanId"] as? String ?? "")))
                }
            }
        }
        lock.withLock { received += spans }
    }

    /// Ids as lowercase hex, whether sent as hex (OTLP's JSON rule) or base64 (protobuf's JSON default).
    static func hex(_ text: String) -> String {
        if text.count == 32 || text.count == 16, text.allSatisfy(\.isHexDigit) { return text.lowercased() }
        guard let bytes = Data(base64Encoded: text) else { return text }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }
}
