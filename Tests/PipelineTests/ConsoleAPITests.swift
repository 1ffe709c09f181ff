import Foundation
import XCTest

/// The console's API on real processes (mosquitto, `conveyor store`, `worker`, `ingress`):
/// `GET /jobs`, `DELETE /job/{id}` (cancelling a queued job, deleting an ended one) and the
/// `GET /events` stream, read over a socket.
final class ConsoleAPITests: OwnPipelineTestCase {
    func testListCancelDeleteAndEvents() async throws {
        let pipeline = try Pipeline(name: "console-api")
        self.pipeline = pipeline
        try await pipeline.start(workers: ["worker-console"], ingresses: [.init(name: "ingress")])
        let http = try pipeline.http
        let events = try EventStreamReader(port: try pipeline.ingress.port)
        defer { events.stop() }
        let image = try TestImages.contents("cat.jpg")

        // One job runs to the end.
        let done = try await pipeline.submit(image)
        let finished = try await pipeline.waitForTerminal(done)
        XCTAssertEqual(finished.status, "succeeded", pipeline.diagnostics())
        // The long poll was woken by the result itself, which carries every hop's time, in order.
        let hops = ["queued_at", "received_at", "decoded_at", "started_at", "inferred_at", "finished_at"]
        let times = hops.compactMap { finished.timings[$0] }
        XCTAssertEqual(times.count, hops.count, "\(finished.timings)")
        XCTAssertEqual(times, times.sorted(), "hops out of order: \(finished.timings)")

        // With the worker paused, the next job stays queued.
        let worker = try XCTUnwrap(pipeline.workers["worker-console"]?.pid)
        XCTAssertEqual(kill(worker, SIGSTOP), 0)
        var paused = true
        defer { if paused { kill(worker, SIGCONT) } }
        let queued = try await pipeline.submit(image)

        // Listing: newest first, a page at a time, filtered, without image data.
        let first = try await http.get("/jobs?limit=1")
        XCTAssertEqual(first.status, 200, first.text)
        let firstJobs = try XCTUnwrap(first.object?["jobs"] as? [[String: Any]])
        XCTAssertEqual(firstJobs.map { $0["job_id"] as? String }, [queued])
        XCTAssertEqual(firstJobs.first?["status"] as? String, "queued")
        XCTAssertNil(firstJobs.first?["image_data"])
        let next = try XCTUnwrap(first.object?["next"] as? String, first.text)
        let second = try await http.get("/jobs?limit=1&before=\(next)")
        XCTAssertEqual((second.object?["jobs"] as? [[String: Any]])?.map { $0["job_id"] as? String }, [done], second.text)
        let succeeded = try await http.get("/jobs?status=succeeded&model=inception_v3")
        let succeededIDs = (succeeded.object?["jobs"] as? [[String: Any]])?.compactMap { $0["job_id"] as? String }
        XCTAssertEqual(succeededIDs, [done], succeeded.text)
        XCTAssertTrue(succeeded.object?["next"] is NSNull, succeeded.text)
        for bad in ["/jobs?status=done", "/jobs?limit=0", "/jobs?limit=101", "/jobs?limit=x", "/jobs?before=yesterday",
                    "/jobs?model=a/b"] {
            let reply = try await http.get(bad)
            XCTAssertEqual(reply.status, 400, "\(bad): \(reply.text)")
            XCTAssertNotNil(reply.object?["error"] as? String, bad)
        }

        // Cancelling the queued job: it ends `cancelled`, and again on a second DELETE.
        let cancel = try await http.send(method: "DELETE", path: "/job/\(queued)", body: nil, contentType: nil, timeout: 30)
        XCTAssertEqual(cancel.status, 200, cancel.text)
        XCTAssertEqual(cancel.object?["status"] as? String, "cancelled")
        let again = try await http.send(method: "DELETE", path: "/job/\(queued)", body: nil, contentType: nil, timeout: 30)
        XCTAssertEqual(again.object?["status"] as? String, "cancelled", again.text)
        let value1 = try await pipeline.job(queued)
        XCTAssertEqual(try JobView(id: queued, reply: value1).status, "cancelled")

        // The worker wakes with the request in hand and skips it (or discards its result if it
        // started it before reading the cancellation); the ledger never delivers it again.
        kill(worker, SIGCONT)
        paused = false
        let workerProcess = try XCTUnwrap(pipeline.workers["worker-console"])
        try workerProcess.waitForLog("job \(queued)", timeout: 30)
        try await Task.sleep(for: .seconds(3))
        let log = workerProcess.log
        XCTAssertTrue(log.contains("skipped job \(queued): cancelled") || log.contains("discarded the result of job \(queued)"),
                      workerProcess.logTail(15))
        let after = try JobView(id: queued, reply: try await pipeline.job(queued))
        XCTAssertEqual(after.status, "cancelled")
        XCTAssertEqual(after.top.count, 0)
        XCTAssertFalse(pipeline.store?.log.contains("published again") ?? true, pipeline.store?.logTail(10) ?? "")

        // Deleting the ended job: it is gone; unknown jobs are 404.
        let delete = try await http.send(method: "DELETE", path: "/job/\(done)", body: nil, contentType: nil, timeout: 30)
        XCTAssertEqual(delete.status, 200, delete.text)
        XCTAssertEqual(delete.object?["status"] as? String, "deleted")
        let value2 = try await pipeline.job(done).status
        XCTAssertEqual(value2, 404)
        for gone in [done, "no-such-job", "bad%20id"] {
            let reply = try await http.send(method: "DELETE", path: "/job/\(gone)", body: nil, contentType: nil, timeout: 30)
            XCTAssertEqual(reply.status, 404, "\(gone): \(reply.text)")
        }

        // The event stream saw each job's changes and the pipeline's summary.
        XCTAssertTrue(events.head.hasPrefix("HTTP/1.1 200"), events.head)
        XCTAssertTrue(events.head.lowercased().contains("content-type: text/event-stream"), events.head)
        func states(_ id: String) -> [String] {
            events.events.filter { $0.name == "jobs" }.flatMap { event in
                ((event.json?["jobs"] as? [[String: Any]]) ?? []).filter { $0["job_id"] as? String == id }
                    .compactMap { $0["status"] as? String }
            }
        }
        let cancelledEvent = try await events.first(timeout: 10) { _ in states(queued).contains("cancelled") }
        XCTAssertNotNil(cancelledEvent, "\(states(queued))")
        XCTAssertEqual(states(queued).last, "cancelled", "a late running event never follows the cancellation")
        // Changes within one flush are coalesced (running may be folded into succeeded); an ending comes once.
        XCTAssertEqual(states(done).last, "succeeded", "\(states(done))")
        XCTAssertEqual(states(done).filter { $0 == "succeeded" }.count, 1, "\(states(done))")
        let summary = try await events.first(timeout: 10) { event in
            event.name == "summary" && ((event.json?["workers"] as? [[String: Any]])?.isEmpty == false)
                && (event.json?["latency_ms"] as? [String: Any])?["p50"] is Double
        }
        let body = try XCTUnwrap(summary?.json, "no summary with a worker")
        XCTAssertEqual((body["workers"] as? [[String: Any]])?.first?["worker"] as? String, "worker-console")
        let models = try XCTUnwrap(body["models"] as? [[String: Any]])
        XCTAssertEqual(models.first?["name"] as? String, "inception_v3")
        XCTAssertEqual((models.first?["versions"] as? [[String: Any]])?.first?["state"] as? String, "AVAILABLE")
        XCTAssertNotNil(body["jobs_per_second"] as? Double)
        XCTAssertNotNil(body["queued"] as? Int, "ledger counts in the summary")
        let latency = try XCTUnwrap(body["latency_ms"] as? [String: Any])
        XCTAssertNotNil(latency["p50"] as? Double, "a job ended in the window: \(latency)")
        XCTAssertTrue(pipeline.stoppedServices.isEmpty, pipeline.stoppedServices.joined(separator: ", "))
    }

    /// With API keys, the API and the event stream need the key; the page itself does not.
    /// Clients of the event stream are limited (`--max-event-clients`).
    func testConsoleWithAPIKeys() async throws {
        let pipeline = try Pipeline(name: "console-keys")
        self.pipeline = pipeline
        let keys = pipeline.directory.appendingPathComponent("keys.txt")
        try "secret-key-1\n".write(to: keys, atomically: true, encoding: .utf8)
        try await pipeline.start(ingresses: [.init(name: "ingress", extraArguments: ["--api-keys-file", keys.path,
                                                                              "--max-event-clients", "1"])])
        let http = try pipeline.http
        for path in ["/", "/console/console.js", "/console/console.css"] {
            let reply = try await http.get(path)
            XCTAssertEqual(reply.status, 200, path)
            XCTAssertTrue(reply.header("Content-Security-Policy")?.contains("default-src 'self'") == true, path)
        }
        let page = try await http.get("/")
        XCTAssertTrue(page.header("Content-Type")?.hasPrefix("text/html") == true)
        XCTAssertTrue(page.text.contains("console.js"), "the page loads its script")
        XCTAssertFalse(page.text.contains("http://") || page.text.contains("https://"), "nothing loaded from elsewhere")
        let value3 = try await http.get("/jobs").status
        XCTAssertEqual(value3, 401)
        let value4 = try await http.send(method: "DELETE", path: "/job/x", body: nil, contentType: nil, timeout: 10).status
        XCTAssertEqual(value4, 401)
        let authorized = try await http.get("/jobs", headers: ["Authorization": "Bearer secret-key-1"])
        XCTAssertEqual(authorized.status, 200, authorized.text)
        let refused = try EventStreamReader(port: try pipeline.ingress.port)
        defer { refused.stop() }
        let stream = try EventStreamReader(port: try pipeline.ingress.port, headers: ["Authorization": "Bearer secret-key-1"])
        defer { stream.stop() }
        let summary = try await stream.first(timeout: 10) { $0.name == "summary" }
        XCTAssertNotNil(summary, stream.head)
        XCTAssertTrue(refused.head.hasPrefix("HTTP/1.1 401"), refused.head)
        // One client is the limit here: the next one is told to come back later.
        let extra = try EventStreamReader(port: try pipeline.ingress.port, headers: ["Authorization": "Bearer secret-key-1"])
        defer { extra.stop() }
        let deadline = Date().addingTimeInterval(10)
        while extra.head.isEmpty && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertTrue(extra.head.hasPrefix("HTTP/1.1 503"), extra.head)
        XCTAssertTrue(extra.head.lowercased().contains("retry-after: 10"), extra.head)
    }
}
