import Foundation
import Jobs
import XCTest

/// SIGTERM: a worker stops taking jobs, finishes the ones it is running, hands the queued
/// ones back to the ledger and exits 0 promptly; the ingress keeps its promise for what it
/// accepted.
final class GracefulShutdownTests: FaultTestCase {
    func testSIGTERMedWorkerFinishesItsJobHandsBackItsQueueAndExitsPromptly() async throws {
        // A long lease: handed-back jobs must be published again at once, not after 60 s.
        let pipeline = try makePipeline("sigterm", lease: 60)
        // Two workers split the stream; worker-a is stopped with most of its share in its queue.
        try await pipeline.start(workers: ["worker-a", "worker-b"], workerArguments: Self.workerArguments,
                                 ingresses: [.init(name: "ingress")])
        let listener = try await ResultListener.start(port: pipeline.broker.port)
        defer { Task { await listener.stop() } }

        let ids = try await Self.submit(200, to: pipeline, concurrency: 8)
        let idSet = Set(ids)
        _ = try await listener.wait(timeout: 60) { received in
            received.compactMap(\.result).filter { idSet.contains($0.jobID) && $0.status.isTerminal && $0.worker == "worker-a" }.count >= 3
        }
        let worker = try XCTUnwrap(pipeline.workers["worker-a"])
        let stopStarted = Date()
        let ended = worker.stop(grace: 20)
        let stopSeconds = Date().timeIntervalSince(stopStarted)
        XCTAssertEqual(ended, "exit 0", "the worker should exit cleanly on SIGTERM\n\(worker.logTail())")
        XCTAssertLessThan(stopSeconds, 5, "the worker should exit promptly (it took \(stopSeconds) s)")
        let byA = listener.terminalByJob.filter { idSet.contains($0.key) }.values.filter { $0.worker == "worker-a" }
        XCTAssertTrue(byA.allSatisfy { $0.status == .succeeded },
                      "what worker-a finished (including the job it was running at SIGTERM) succeeded")
        XCTAssertLessThan(byA.count, ids.count, "worker-a should have been stopped with jobs still queued")
        XCTAssertTrue(worker.log.contains("hands back"), "the queued jobs should be handed back\n\(worker.logTail())")

        // worker-b gets the handed-back jobs at once, well within the 60 s lease.
        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 120)
        XCTAssertEqual(Self.countByStatus(answers), ["succeeded": ids.count], pipeline.diagnostics())
        XCTAssertLessThan(Date().timeIntervalSince(stopStarted), 55, "handed-back jobs must not wait for their 60 s lease")
        let attempts = answers.values.compactMap { $0?.worker }
        XCTAssertTrue(attempts.contains("worker-b"), "worker-b should have run the handed-back jobs")
    }

    /// A SIGTERMed ingress answers the long poll it holds (with the job's current state) and
    /// exits promptly; a job it accepted stays in the ledger.
    func testSIGTERMedIngressAnswersItsLongPollAndExitsPromptly() async throws {
        let pipeline = try makePipeline("sigterm-ingress", lease: 60)
        try await pipeline.start(ingresses: [.init(name: "ingress")])  // no worker: the job stays queued
        let id = try await Self.submit(1, to: pipeline)[0]
        let http = try pipeline.http
        let poll = Task { try await http.get("/job/\(id)?wait=30", timeout: 40) }
        try await Task.sleep(for: .seconds(1))
        let ingress = try pipeline.ingress.process
        let stopStarted = Date()
        XCTAssertEqual(ingress.stop(grace: 15), "exit 0", ingress.logTail())
        XCTAssertLessThan(Date().timeIntervalSince(stopStarted), 5, "the long poll must not hold the stop")
        let reply = try await poll.value
        XCTAssertEqual(reply.status, 200, reply.text)
        XCTAssertEqual(try JobView(id: id, reply: reply).status, "queued")
        let known = try await storeQuerier(pipeline).query([id])
        XCTAssertEqual(Self.countByStatus(known), ["queued": 1])
    }

    func testSIGTERMedIngressAndStoreExitCleanly() async throws {
        let pipeline = try makePipeline("sigterm-services", lease: 60)
        try await pipeline.start(workers: ["worker-a"], workerArguments: Self.workerArguments,
                                 ingresses: [.init(name: "ingress")])
        let ids = try await Self.submit(5, to: pipeline)
        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 60)
        XCTAssertEqual(Self.countByStatus(answers), ["succeeded": 5])
        let ingress = try pipeline.ingress.process
        XCTAssertEqual(ingress.stop(grace: 15), "exit 0", ingress.logTail())
        XCTAssertEqual(pipeline.workers["worker-a"]?.stop(grace: 15), "exit 0")
        XCTAssertEqual(pipeline.store?.stop(grace: 15), "exit 0", pipeline.store?.logTail() ?? "")
    }
}
