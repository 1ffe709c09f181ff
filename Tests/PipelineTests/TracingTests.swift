import Foundation
import XCTest

/// One job is one trace: real `conveyor` processes (store, worker, ingress) export spans
/// over OTLP/HTTP to an in-process receiver, and the W3C `traceparent` of the HTTP request
/// travels through MQTT to the worker and the store.
final class TracingTests: OwnPipelineTestCase {
    private var receiver: OTLPReceiver?

    override func tearDown() async throws {
        receiver?.stop()
        receiver = nil
        try await super.tearDown()
    }

    func testOneJobIsOneTraceAcrossIngressWorkerAndStore() async throws {
        let receiver = try OTLPReceiver()
        try await receiver.start()
        self.receiver = receiver
        let pipeline = try Pipeline(name: "traces")
        self.pipeline = pipeline
        pipeline.environment = [
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        ]
        try await pipeline.start(workers: ["worker-t"], ingresses: [.init(name: "ingress")])

        // The client's own trace: every span of the job must join it.
        let traceID = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let parent = (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))
        let reply = try await pipeline.http.post("/predict", body: TestImages.predictBody(jpeg),
                                                 headers: ["traceparent": "00-\(traceID)-\(parent)-01"])
        XCTAssertEqual(reply.status, 202, reply.text)
        let id = try XCTUnwrap(reply.object?["job_id"] as? String)
        let job = try await pipeline.waitForTerminal(id)
        XCTAssertEqual(job.status, "succeeded")

        let services = ["conveyor-ingress", "conveyor-worker", "conveyor-store"]
        var spans: [OTLPReceiver.Span] = []
        for _ in 0..<100 {
            spans = receiver.spans.filter { $0.traceID == traceID }
            if Set(services).isSubset(of: Set(spans.map(\.service))),
               spans.contains(where: { $0.name == "record result" }) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let seen = Dictionary(grouping: spans, by: \.service).mapValues { $0.map(\.name).sorted() }
        for service in services {
            XCTAssertNotNil(seen[service], "no span of the job's trace from \(service); got \(seen); all: \(receiver.spans.count) spans")
        }
        XCTAssertTrue(seen["conveyor-ingress"]?.contains("publish job") == true, "\(seen)")
        XCTAssertTrue(seen["conveyor-store"]?.contains("record request") == true, "\(seen)")
        XCTAssertTrue(seen["conveyor-worker"]?.contains("run job") == true, "\(seen)")
        for stage in ["decode", "inference", "publish result"] {
            XCTAssertTrue(seen["conveyor-worker"]?.contains(stage) == true, "no \(stage) span: \(seen)")
        }
        // The worker's stages are children of its "run job" span.
        let run = try XCTUnwrap(spans.first { $0.service == "conveyor-worker" && $0.name == "run job" })
        for stage in spans where stage.service == "conveyor-worker" && stage.name != "run job" {
            XCTAssertEqual(stage.parentSpanID, run.spanID, "\(stage.name)")
        }
        XCTAssertTrue(seen["conveyor-store"]?.contains("record result") == true, "\(seen)")
        // The HTTP request's span is the child of the client's.
        XCTAssertTrue(spans.contains { $0.service == "conveyor-ingress" && $0.parentSpanID == parent }, "\(spans)")
    }
}
