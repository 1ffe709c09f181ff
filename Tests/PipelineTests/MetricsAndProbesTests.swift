import Foundation
import XCTest

/// `/metrics` and the readiness probes of real `conveyor` processes (store, worker,
/// ingress) on a real mosquitto, the metrics read by Prometheus's own Python parser
/// (`prometheus-client` from PyPI, in a venv made by `scripts/probe-client-venv.sh`).
final class MetricsAndProbesTests: OwnPipelineTestCase {
    /// One sample of a scrape.
    struct Sample: Decodable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// The probe venv's python.
    private func python() throws -> String {
        let venv = try ProgramRun.run(Paths.repo.appendingPathComponent("scripts/probe-client-venv.sh").path, [], timeout: 600)
        guard venv.status == 0, let python = venv.output.split(separator: "\n").last.map(String.init) else {
            throw PipelineError("scripts/probe-client-venv.sh failed:\n\(venv.output)")
        }
        return python
    }

    /// gRPC's `grpc.health.v1.Health/Check` for `service` on `port`, by grpcio (raw bytes:
    /// the request is field 1, the service name; the answer's field 1 is the status):
    /// `SERVING`, `NOT_SERVING`, or the RPC's error code.
    private func grpcHealth(_ port: Int, service: String = "") throws -> String {
        let run = try ProgramRun.run(try python(), ["-c", """
            import grpc, sys
            service = sys.argv[2].encode()
            request = (b"\\x0a" + bytes([len(service)]) + service) if service else b""
            channel = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            try:
                answer = check(request, timeout=5)
                print({b"\\x08\\x01": "SERVING", b"\\x08\\x02": "NOT_SERVING", b"": "UNKNOWN"}.get(answer, answer.hex()))
            except grpc.RpcError as error:
                print(error.code().name)
            """, String(port), service], timeout: 60)
        XCTAssertEqual(run.status, 0, run.output)
        return run.output.split(separator: "\n").last.map(String.init) ?? ""
    }

    /// Every sample of `GET /metrics` on `port`, parsed by prometheus_client.
    private func scrape(_ port: Int) async throws -> [Sample] {
        let reply = try await HTTPClient(port: port).get("/metrics")
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertTrue(reply.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let python = try python()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-metrics-\(UUID().uuidString).txt")
        try reply.body.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let parse = try ProgramRun.run(python, ["-c", """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = [{"name": s.name, "labels": s.labels, "value": s.value}
                   for f in text_string_to_metric_families(open(sys.argv[1]).read()) for s in f.samples]
            print(json.dumps(out))
            """, file.path])
        XCTAssertEqual(parse.status, 0, "prometheus_client could not parse /metrics:\n\(parse.output)")
        let json = parse.output.split(separator: "\n").last.map(String.init) ?? "[]"
        return try JSONDecoder().decode([Sample].self, from: Data(json.utf8))
    }

    private func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }

    /// A store, one worker and an ingress, the store and the worker with metrics ports.
    private func startPipeline(_ name: String, ingressArguments: [String] = []) async throws
        -> (pipeline: Pipeline, storePort: Int, workerPort: Int) {
        let pipeline = try Pipeline(name: name)
        self.pipeline = pipeline
        let storePort = try Ports.free()
        let workerPort = try Ports.free()
        pipeline.storeMetricsPort = storePort
        try await pipeline.start(workers: ["worker-\(name)"], workerArguments: ["--metrics-port", String(workerPort)],
                                 ingresses: [.init(name: "ingress", extraArguments: ingressArguments)])
        return (pipeline, storePort, workerPort)
    }

    func testCountersEqualTheJobsRunAcrossIngressWorkerAndStore() async throws {
        let (pipeline, storePort, workerPort) = try await startPipeline("metrics")
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: Paths.sampleImage))
        let jobs = 6
        var ids: [String] = []
        for _ in 0..<jobs { ids.append(try await pipeline.submit(jpeg)) }
        for id in ids {
            let view = try await pipeline.waitForTerminal(id)
            XCTAssertEqual(view.status, "succeeded")
        }
        let port = try pipeline.ingress.port
        let ingress = try await scrape(port)
        XCTAssertEqual(value(ingress, "conveyor_jobs_submitted_total", ["model": "inception_v3", "frontend": "http"]), Double(jobs))
        XCTAssertEqual(value(ingress, "conveyor_http_requests_total", ["route": "/predict", "method": "POST", "status": "202"]),
                       Double(jobs))
        XCTAssertEqual(value(ingress, "conveyor_mqtt_connected", ["service": "ingress"]), 1)
        XCTAssertNotNil(value(ingress, "process_resident_memory_bytes"))
        XCTAssertNotNil(value(ingress, "process_cpu_seconds_total"))

        // The store records each result moments after the long poll saw it.
        var store: [Sample] = []
        for _ in 0..<50 {
            store = try await scrape(storePort)
            if value(store, "conveyor_jobs_finished_total", ["status": "succeeded"]) == Double(jobs) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        XCTAssertEqual(value(store, "conveyor_jobs_finished_total", ["model": "inception_v3", "status": "succeeded"]), Double(jobs))
        XCTAssertEqual(value(store, "conveyor_job_duration_seconds_count", ["model": "inception_v3"]), Double(jobs))
        XCTAssertEqual(value(store, "conveyor_job_queue_seconds_count", ["model": "inception_v3"]), Double(jobs))
        XCTAssertEqual(value(store, "conveyor_mqtt_connected", ["service": "store"]), 1)
        XCTAssertNotNil(value(store, "conveyor_ledger_jobs", ["state": "queued"]))
        XCTAssertEqual(value(store, "conveyor_redeliveries_total"), 0, "nothing was published again")
        XCTAssertEqual(value(store, "conveyor_mqtt_reconnects_total", ["service": "store"]), 0)

        let worker = try await scrape(workerPort)
        XCTAssertEqual(value(worker, "conveyor_mqtt_connected", ["service": "worker"]), 1)
        // One observation per engine batch, labelled with its size: the sizes add up to the jobs.
        let batches = worker.filter { $0.name == "conveyor_inference_seconds_count" && $0.labels["model"] == "inception_v3" }
        XCTAssertFalse(batches.isEmpty, "no conveyor_inference_seconds")
        XCTAssertEqual(batches.reduce(0) { $0 + $1.value * (Double($1.labels["batch_size"] ?? "") ?? .nan) }, Double(jobs))
        let busy = try XCTUnwrap(value(worker, "conveyor_worker_busy_ratio"))
        XCTAssertTrue((0...1).contains(busy), "\(busy)")
        XCTAssertEqual(value(worker, "conveyor_http_requests_total", ["route": "/metrics", "method": "GET", "status": "200"]) ?? 0,
                       0, "counted after it is answered")
    }

    func testReadinessFollowsTheBrokerOnEveryService() async throws {
        let grpcPort = try Ports.free()
        let keys = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-probe-keys-\(UUID().uuidString)")
        try "probe-test-key\n".write(to: keys, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: keys) }
        let (pipeline, storePort, workerPort) = try await startPipeline(
            "ready", ingressArguments: ["--grpc-port", String(grpcPort), "--api-keys-file", keys.path])
        let probes = [try pipeline.http, HTTPClient(port: storePort), HTTPClient(port: workerPort)]
        /// Polls every probe until each is (or is not) ready; returns the last answers.
        func waitUntil(ready: Bool) async throws -> [HTTPReply] {
            var answers: [HTTPReply] = []
            for _ in 0..<150 {
                answers = []
                for probe in probes { answers.append(try await probe.get("/health/ready")) }
                if answers.allSatisfy({ ($0.status == 200) == ready }) { return answers }
                try await Task.sleep(for: .milliseconds(200))
            }
            XCTFail("not all \(ready ? "ready" : "not ready"): \(answers.map { "\($0.status) \($0.text)" })")
            return answers
        }
        let ready = try await waitUntil(ready: true)
        XCTAssertEqual(ready.map { $0.object?["status"] as? String }, ["ready", "ready", "ready"])
        XCTAssertEqual((ready[1].object?["checks"] as? [String: String])?["database"], "ok")
        XCTAssertEqual((ready[2].object?["checks"] as? [String: String])?["models"], "ok")
        for probe in probes {
            let live = try await probe.get("/health/live")
            XCTAssertEqual(live.status, 200)
        }
        // gRPC's health service answers without the API key the other gRPC services need.
        XCTAssertEqual(try grpcHealth(grpcPort), "SERVING")
        XCTAssertEqual(try grpcHealth(grpcPort, service: "tensorflow.serving.PredictionService"), "SERVING")
        XCTAssertEqual(try grpcHealth(grpcPort, service: "no.such.Service"), "NOT_FOUND")

        pipeline.broker.stop()
        let down = try await waitUntil(ready: false)
        for answer in down {
            XCTAssertEqual(answer.status, 503)
            XCTAssertEqual(answer.object?["status"] as? String, "not ready")
            XCTAssertEqual((answer.object?["checks"] as? [String: String])?["broker"], "not connected to the broker", answer.text)
        }
        for probe in probes {
            let live = try await probe.get("/health/live")
            XCTAssertEqual(live.status, 200, "alive while the broker is away")
        }

        XCTAssertEqual(try grpcHealth(grpcPort), "NOT_SERVING")

        try pipeline.broker.start()
        _ = try await waitUntil(ready: true)
        XCTAssertEqual(try grpcHealth(grpcPort), "SERVING")
    }
}
