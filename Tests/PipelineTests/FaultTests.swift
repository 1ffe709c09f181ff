import Foundation
import Jobs
import XCTest

/// The fault suite: real processes (mosquitto, `conveyor store`, workers, ingress) on
/// loopback, stopped by PID; every accepted job must end in exactly one terminal state, and
/// the store's ledger must have it. MobileNetV2 and leases of a few seconds keep each test
/// within about a minute.
final class FaultTests: FaultTestCase {
    /// Two workers split a stream of 500 jobs; one is SIGKILLed while it holds a backlog. The
    /// jobs it held stop being listed in its heartbeats, so the ledger publishes them again
    /// when their lease ends and the survivor runs them: all 500 succeed.
    func testSIGKILLOfAWorkerInAStreamOf500JobsLosesNothing() async throws {
        let pipeline = try makePipeline("kill500", lease: 4)
        try await pipeline.start(workers: ["worker-a", "worker-b"], workerArguments: Self.workerArguments,
                                 ingresses: [.init(name: "ingress")])
        let listener = try await ResultListener.start(port: pipeline.broker.port)
        defer { Task { await listener.stop() } }

        let started = Date()
        let submitting = Task { try await FaultTestCase.submit(500, to: pipeline, concurrency: 8) }
        let aWorked = try await listener.wait(timeout: 120) { received in
            received.compactMap(\.result).filter { $0.worker == "worker-a" && $0.status == .succeeded }.count >= 40
        }
        XCTAssertTrue(aWorked, "worker-a should have finished 40 jobs\n\(pipeline.diagnostics())")
        try XCTUnwrap(pipeline.workers["worker-a"]).killHard()
        let killedAt = Date().timeIntervalSince(started)
        let ids = try await submitting.value

        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 120)
        let counts = Self.countByStatus(answers)
        let afterKill = listener.terminalByJob.values.filter { $0.worker == "worker-a" }.count
        print("kill500: SIGKILL of worker-a at \(Int(killedAt)) s (it had finished \(afterKill)); "
              + "all terminal after \(Int(Date().timeIntervalSince(started))) s: \(counts)")
        XCTAssertEqual(counts["succeeded"], 500, "\(counts)\n\(pipeline.diagnostics())")
        XCTAssertTrue(pipeline.workers["worker-b"]?.isRunning == true, "worker-b should still run")
        XCTAssertTrue(pipeline.store?.log.contains("ledger: published again") == true,
                      "the jobs the dead worker held should have been published again")
    }

    /// Gap (a) of the first ledger: a backlog that waits longer than the lease in a live
    /// worker is not published again, because the worker's heartbeat keeps the leases of the
    /// jobs it holds. Every job runs exactly once.
    func testABacklogLongerThanTheLeaseIsNotPublishedAgain() async throws {
        let pipeline = try makePipeline("backlog", lease: 3)
        try await pipeline.start(workers: ["worker-a"], workerArguments: Self.workerArguments,
                                 ingresses: [.init(name: "ingress")])
        // Enough jobs that even a fast machine keeps a backlog for more than two leases.
        let ids = try await Self.submit(800, to: pipeline, concurrency: 16)
        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 240)
        XCTAssertEqual(Self.countByStatus(answers), ["succeeded": 800], pipeline.diagnostics())
        // The longest a job waited in the backlog, from acceptance to its start.
        let longestWait = answers.values.compactMap { result -> Int64? in
            guard let t = result?.timings, let queued = t.queuedAt, let started = t.startedAt else { return nil }
            return started - queued
        }.max() ?? 0
        XCTAssertGreaterThan(longestWait, 6_000, "the backlog must outlast two leases for this test to mean anything")
        let log = pipeline.store?.log ?? ""
        XCTAssertFalse(log.contains("published again"), "no job should be published again:\n\(pipeline.diagnostics())")
    }

    /// The broker (persistence on) is restarted in the middle of a stream. The store's
    /// persistent session and the ledger's redelivery cover what was in flight: every job
    /// ends succeeded.
    func testBrokerRestartInAStreamLosesNothing() async throws {
        let pipeline = try makePipeline("broker-restart", lease: 4, brokerPersistence: true)
        try await pipeline.start(workers: ["worker-a", "worker-b"], workerArguments: Self.workerArguments,
                                 ingresses: [.init(name: "ingress")])
        let started = Date()
        let submitting = Task { try await FaultTestCase.submit(200, to: pipeline, concurrency: 4) }
        // Restart once the stream is under way.
        let querier = try await storeQuerier(pipeline)
        _ = querier
        try await Task.sleep(for: .seconds(3))
        try pipeline.broker.restart()
        let restartedAt = Date().timeIntervalSince(started)
        let ids = try await submitting.value

        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 120)
        let counts = Self.countByStatus(answers)
        print("broker-restart: restarted at \(Int(restartedAt)) s; all terminal after \(Int(Date().timeIntervalSince(started))) s: \(counts)")
        XCTAssertEqual(counts["succeeded"], 200, "\(counts)\n\(pipeline.diagnostics())")
        XCTAssertEqual(pipeline.stoppedServices, [], pipeline.diagnostics())
    }

    /// The result store is killed (SIGKILL) and started again on the same database in the
    /// middle of a stream. Its persistent session keeps what was published while it was
    /// down; the ledger redelivers the rest: every job ends terminal and none is lost.
    func testStoreKilledAndRestartedInAStreamLosesNothing() async throws {
        let pipeline = try makePipeline("store-restart", lease: 4)
        try await pipeline.start(workers: ["worker-a"], workerArguments: Self.workerArguments,
                                 ingresses: [.init(name: "ingress")])
        let started = Date()
        let submitting = Task { try await FaultTestCase.submit(200, to: pipeline, concurrency: 4) }
        try await Task.sleep(for: .seconds(3))
        let old = try XCTUnwrap(pipeline.store)
        let offset = old.log.count
        old.killHard()
        try await Task.sleep(for: .seconds(2))
        try pipeline.launchStore().waitForLog("result store running", after: offset, timeout: 60)
        let ids = try await submitting.value

        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 120)
        let counts = Self.countByStatus(answers)
        print("store-restart: all terminal after \(Int(Date().timeIntervalSince(started))) s: \(counts)")
        XCTAssertEqual(counts["unknown"], nil, "the store lost jobs: \(counts)\n\(pipeline.diagnostics())")
        XCTAssertEqual(answers.values.filter { $0?.status.isTerminal == true }.count, 200, "\(counts)")
        XCTAssertEqual(counts["succeeded"], 200, "\(counts)\n\(pipeline.diagnostics())")
    }

    /// Jobs accepted while no worker runs are published again every lease (the broker drops
    /// them: nobody is subscribed); when a worker starts they complete.
    func testQueuedJobsCompleteWhenAWorkerStartsLater() async throws {
        let pipeline = try makePipeline("late-worker", lease: 2)
        try await pipeline.start(ingresses: [.init(name: "ingress")])
        let ids = try await Self.submit(5, to: pipeline)
        try await Task.sleep(for: .seconds(5))  // two leases with nobody subscribed
        let waiting = try await storeQuerier(pipeline).query(ids)
        XCTAssertEqual(Self.countByStatus(waiting), ["queued": 5], "no worker yet: still queued")

        let worker = try pipeline.launchWorker(clientID: "worker-late", extraArguments: Self.workerArguments)
        try worker.waitForLog("subscribed to $share/", timeout: 120)
        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 60)
        XCTAssertEqual(Self.countByStatus(answers), ["succeeded": 5], pipeline.diagnostics())
        XCTAssertTrue(pipeline.store?.log.contains("ledger: published again") == true)
    }

    /// With no worker ever, queued jobs end `expired` at their TTL, with the reason, and the
    /// expiry is published on each job's result topic.
    func testQueuedJobsExpireAtTheirTTLWithoutAWorker() async throws {
        let pipeline = try makePipeline("ttl", lease: 1, ttl: 4)
        try await pipeline.start(ingresses: [.init(name: "ingress")])
        let listener = try await ResultListener.start(port: pipeline.broker.port)
        defer { Task { await listener.stop() } }
        let submitted = Date()
        let ids = try await Self.submit(3, to: pipeline)
        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 30)
        let elapsed = Date().timeIntervalSince(submitted)
        XCTAssertEqual(Self.countByStatus(answers), ["expired": 3], pipeline.diagnostics())
        XCTAssertGreaterThanOrEqual(elapsed, 3.5, "not before the TTL")
        for id in ids {
            let result = try XCTUnwrap(answers[id] ?? nil)
            XCTAssertTrue(result.error?.contains("not finished within 4 s") == true, "\(result)")
        }
        let published = try await listener.wait(timeout: 10) { received in
            Set(received.compactMap(\.result).filter { $0.status == .expired }.map(\.jobID)) == Set(ids)
        }
        XCTAssertTrue(published, "each expiry should be published on the job's result topic")
    }

    /// A request that makes the engine fail (injected: `CONVEYOR_FAULT_INJECT=throw:poison-`)
    /// is handed back by the worker each time and ends `failed` after 3 attempts; the jobs
    /// around it succeed.
    func testPoisonedRequestEndsFailedAfterMaxAttemptsWhileOthersSucceed() async throws {
        let pipeline = try makePipeline("poison-throw", lease: 4, maxDeliveries: 3)
        try await pipeline.start(ingresses: [.init(name: "ingress")])
        for name in ["worker-a", "worker-b"] {
            try pipeline.launchWorker(clientID: name, extraArguments: Self.workerArguments,
                                      environment: ["CONVEYOR_FAULT_INJECT": "throw:poison-"])
        }
        for worker in pipeline.workers.values { try worker.waitForLog("subscribed to $share/", timeout: 120) }

        let good = try await Self.submit(10, to: pipeline)
        try await publishRequest(id: "poison-1", image: try Self.images()[0], port: pipeline.broker.port)
        let answers = try await waitUntilTerminal(good + ["poison-1"], in: pipeline, timeout: 60)
        XCTAssertEqual(Self.countByStatus(answers.filter { $0.key != "poison-1" }), ["succeeded": 10], pipeline.diagnostics())
        let poison = try XCTUnwrap(answers["poison-1"] ?? nil, "the store should know the poisoned job")
        XCTAssertEqual(poison.status, .failed)
        XCTAssertEqual(poison.error, "no result after 3 attempts; last error: engine error: injected fault (CONVEYOR_FAULT_INJECT)")
        XCTAssertEqual(pipeline.stoppedServices, [], "the workers survive a poisoned request")
    }

    /// A request that crashes the worker process (`crash:poison-`) is started three times —
    /// each time killing a worker, which the test restarts like a supervisor would — and
    /// then ends `failed`; every other job succeeds.
    func testRequestThatCrashesTheWorkerEndsFailedAfterMaxAttempts() async throws {
        let pipeline = try makePipeline("poison-crash", lease: 3, maxDeliveries: 3)
        try await pipeline.start(ingresses: [.init(name: "ingress")])
        let environment = ["CONVEYOR_FAULT_INJECT": "crash:poison-"]
        let worker = try pipeline.launchWorker(clientID: "worker-c", extraArguments: Self.workerArguments, environment: environment)
        try worker.waitForLog("subscribed to $share/", timeout: 120)

        let good = try await Self.submit(6, to: pipeline)
        try await publishRequest(id: "poison-2", image: try Self.images()[0], port: pipeline.broker.port)
        // The supervisor: start the worker again whenever it has died.
        var restarts = 0
        let deadline = Date().addingTimeInterval(90)
        var answers: [String: JobResult?] = [:]
        let querier = try await storeQuerier(pipeline)
        while Date() < deadline {
            if !worker.isRunning {
                XCTAssertEqual(worker.exitDescription, "exit 70", "the injected crash exits with status 70")
                restarts += 1
                let offset = worker.log.count
                try worker.start()
                try worker.waitForLog("subscribed to $share/", after: offset, timeout: 120)
            }
            answers = try await querier.query(good + ["poison-2"])
            if answers.values.allSatisfy({ $0?.status.isTerminal == true }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        XCTAssertEqual(Self.countByStatus(answers.filter { $0.key != "poison-2" }), ["succeeded": 6], pipeline.diagnostics())
        let poison = try XCTUnwrap(answers["poison-2"] ?? nil)
        XCTAssertEqual(poison.status, .failed, pipeline.diagnostics())
        XCTAssertEqual(poison.error, "no result after 3 attempts")
        XCTAssertEqual(restarts, 3, "each of the 3 attempts crashed the worker")
    }
}
