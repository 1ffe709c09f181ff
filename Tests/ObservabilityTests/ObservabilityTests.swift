import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Metrics
import XCTest

@testable import Observability

/// Metrics text, the HTTP metrics middleware, probes and JSON logs, through a real router.
final class ObservabilityTests: XCTestCase {
    override class func setUp() {
        super.setUp()
        MetricsRegistry.bootstrap()
    }

    /// The value of the sample `name{labels}` in Prometheus text, if present.
    private static func sample(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = line[..<space]
            let metric = series.split(separator: "{", maxSplits: 1)
            guard metric.first.map(String.init) == name else { continue }
            var found: [String: String] = [:]
            if metric.count == 2 {
                for pair in metric[1].dropLast().split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    if kv.count == 2 { found[String(kv[0])] = String(kv[1].dropFirst().dropLast()) }
                }
            }
            if found == labels { return Double(line[line.index(after: space)...]) }
        }
        return nil
    }

    func testRoutesCountUnderTheirPatternAndProbesAnswer() async throws {
        let router = Router()
        router.add(middleware: HTTPMetricsMiddleware())
        router.get("/things/:id") { _, _ in "thing" }
        let failing = Readiness([.init("broker") { "not connected to the broker" }, .init("database") { nil }])
        ProbeRoutes.add(to: router, readiness: failing)
        let app = Application(router: router)
        try await app.test(.router) { client in
            let before = Self.sample(MetricsRegistry.text(), "conveyor_http_requests_total",
                                ["route": "/things/{id}", "method": "GET", "status": "200"]) ?? 0
            for id in ["a", "b", "c"] {
                try await client.execute(uri: "/things/\(id)", method: .get) { XCTAssertEqual($0.status, .ok) }
            }
            try await client.execute(uri: "/nowhere", method: .get) { XCTAssertEqual($0.status, .notFound) }
            try await client.execute(uri: "/health/live", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(String(buffer: response.body), #"{"status":"live"}"#)
            }
            try await client.execute(uri: "/health/ready", method: .get) { response in
                XCTAssertEqual(response.status, .serviceUnavailable)
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                XCTAssertEqual(body?["status"] as? String, "not ready")
                XCTAssertEqual(body?["checks"] as? [String: String],
                               ["broker": "not connected to the broker", "database": "ok"])
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(response.headers[.contentType], "text/plain; version=0.0.4; charset=utf-8")
                let text = String(buffer: response.body)
                XCTAssertEqual(Self.sample(text, "conveyor_http_requests_total",
                                           ["route": "/things/{id}", "method": "GET", "status": "200"]), before + 3,
                               "the pattern, not the three paths")
                XCTAssertNil(Self.sample(text, "conveyor_http_requests_total", ["route": "/things/a", "method": "GET", "status": "200"]))
                XCTAssertNotNil(Self.sample(text, "conveyor_http_requests_total", ["route": "NotFound", "method": "GET", "status": "404"]), text)
                XCTAssertNotNil(Self.sample(text, "conveyor_http_request_duration_seconds_count", ["route": "/things/{id}", "method": "GET"]))
                XCTAssertGreaterThan(Self.sample(text, "process_resident_memory_bytes") ?? 0, 1_000_000)
                XCTAssertNotNil(Self.sample(text, "process_cpu_seconds_total"))
            }
        }
    }

    func testReadyWhenEveryCheckPasses() async throws {
        let ready = Readiness([.init("broker") { nil }])
        let report = await ready.evaluate()
        XCTAssertTrue(report.ready)
        XCTAssertEqual(report, Readiness.Report(status: "ready", checks: ["broker": "ok"]))
    }

    func testNotReadyNamesEachFailingCheck() async throws {
        let ready = Readiness([.init("broker") { nil }, .init("database") { "cannot write" }])
        let report = await ready.evaluate()
        XCTAssertFalse(report.ready)
        XCTAssertEqual(report, Readiness.Report(status: "not ready", checks: ["broker": "ok", "database": "cannot write"]))
        let response = await ready.response()
        XCTAssertEqual(response.status, .serviceUnavailable)
    }

    func testLatencyHistogramsHaveInferenceSizedBuckets() {
        Timer(label: "conveyor_test_seconds").recordMilliseconds(1_500)
        let text = MetricsRegistry.text()
        XCTAssertEqual(Self.sample(text, "conveyor_test_seconds_bucket", ["le": "0.001"]), 0)
        XCTAssertEqual(Self.sample(text, "conveyor_test_seconds_bucket", ["le": "2.5"]), 1)
        XCTAssertNotNil(Self.sample(text, "conveyor_test_seconds_bucket", ["le": "60.0"]))
    }

    func testJSONLogLinesCarryServiceMessageAndMetadata() throws {
        let lines = LockedLines()
        var logger = Logger(label: "conveyor.worker") { JSONLogHandler(label: $0, output: lines.append) }
        logger[metadataKey: "mqtt.client"] = "worker-1"
        logger.info("finished", metadata: ["job_id": "abc", "message": "shadowed"])
        logger.debug("not at info")
        XCTAssertEqual(lines.all.count, 1)
        let line = try XCTUnwrap(lines.all.first)
        XCTAssertTrue(line.hasSuffix("}\n"))
        XCTAssertFalse(line.dropLast().contains("\n"), "one object per line")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        XCTAssertEqual(object["level"], "info")
        XCTAssertEqual(object["service"], "conveyor.worker")
        XCTAssertEqual(object["message"], "finished")
        XCTAssertEqual(object["job_id"], "abc")
        XCTAssertEqual(object["mqtt.client"], "worker-1")
        XCTAssertEqual(object["meta_message"], "shadowed")
        XCTAssertNil(object["trace_id"], "no span, no trace id")
        let time = try XCTUnwrap(object["time"])
        XCTAssertNotNil(try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(time), time)
    }
}

extension ObservabilityTests {
    func testLinesWrittenForAJobCarryItsID() async throws {
        let lines = LockedLines()
        let logger = Logger(label: "conveyor.store") {
            JSONLogHandler(label: $0, metadataProvider: TraceExport.loggingMetadataProvider, output: lines.append)
        }
        await JobLogContext.withJob("job-42") { logger.info("recorded") }
        logger.info("between jobs")
        let objects = try lines.all.map { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String]) }
        XCTAssertEqual(objects.map { $0["job_id"] }, ["job-42", nil])
    }
}

private final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var all: [String] { lock.withLock { lines } }
    func append(_ line: String) { lock.withLock { lines.append(line) } }
}
