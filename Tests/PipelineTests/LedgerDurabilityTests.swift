import Foundation
import Jobs
import XCTest

/// A job is accepted only once the ledger has committed it, so no crash of the store or
/// the broker can make an accepted job vanish (docs/reliability.md). Each test runs a
/// stream of HTTP jobs through real processes while it kills one of them with SIGKILL,
/// then checks that every job that was answered 202 ends `succeeded`.
final class LedgerDurabilityTests: FaultTestCase {
    /// The store is killed, started again, and killed again 0–200 ms after it logged that it
    /// runs, several times, while jobs keep coming (a crash-looping store). Jobs submitted
    /// while it is away wait for its receipt or are refused (503); none that was accepted is
    /// lost.
    func testStoreKilledAgainRightAfterItBecomesReadyLosesNoAcceptedJob() async throws {
        let pipeline = try makePipeline("store-crash-loop", lease: 4)
        try await pipeline.start(workers: ["worker-a"], workerArguments: Self.workerArguments,
                                 ingresses: [.init(name: "ingress")])
        let started = Date()
        let submitting = Task { try await FaultTestCase.submit(150, to: pipeline, concurrency: 4) }
        try await Task.sleep(for: .seconds(2))
        var delays: [Int] = []
        for round in 0..<4 {
            let old = try XCTUnwrap(pipeline.store)
            old.killHard()
            try await Task.sleep(for: .seconds(1))
            let offset = old.log.count
            let restarted = try pipeline.launchStore()
            try restarted.waitForLog("result store running", after: offset, timeout: 60)
            // The backlog the broker kept for the store is being handed to it right now.
            let delay = [0, 50, 120, 200][round]
            delays.append(delay)
            try await Task.sleep(for: .milliseconds(delay))
        }
        // The last kill is followed by a store that stays up.
        let last = try XCTUnwrap(pipeline.store)
        last.killHard()
        try await Task.sleep(for: .seconds(1))
        let offset = last.log.count
        try pipeline.launchStore().waitForLog("result store running", after: offset, timeout: 60)
        let ids = try await submitting.value

        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 150)
        let counts = Self.countByStatus(answers)
        print("store-crash-loop: kills \(delays) ms after ready; \(ids.count) accepted; all terminal after \(Int(Date().timeIntervalSince(started))) s: \(counts)")
        let lost = ids.filter { answers[$0]??.status.isTerminal != true }
        XCTAssertEqual(lost.count, 0, "accepted jobs lost or stuck: \(lost.prefix(5)) \(counts)\n\(pipeline.diagnostics())")
        XCTAssertEqual(counts["succeeded"], ids.count, "\(counts)\n\(pipeline.diagnostics())")
    }

    /// The store is killed, then the broker is killed with SIGKILL (it writes no persistence
    /// on the way down) while the store is still away; then both come back. What the broker
    /// held for the store is gone, but nothing it held was accepted: the ledger had every
    /// accepted job before its 202.
    func testBrokerKilledWhileTheStoreIsDownLosesNoAcceptedJob() async throws {
        let pipeline = try makePipeline("broker-kill", lease: 4, brokerPersistence: true)
        try await pipeline.start(workers: ["worker-a", "worker-b"], workerArguments: Self.workerArguments,
                                 ingresses: [.init(name: "ingress")])
        let started = Date()
        let submitting = Task { try await FaultTestCase.submit(150, to: pipeline, concurrency: 4) }
        try await Task.sleep(for: .seconds(3))
        let store = try XCTUnwrap(pipeline.store)
        let offset = store.log.count
        store.killHard()
        try await Task.sleep(for: .seconds(2))
        pipeline.broker.kill()
        try await Task.sleep(for: .seconds(1))
        try pipeline.broker.start()
        try pipeline.launchStore().waitForLog("result store running", after: offset, timeout: 60)
        let ids = try await submitting.value

        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 150)
        let counts = Self.countByStatus(answers)
        print("broker-kill: \(ids.count) accepted; all terminal after \(Int(Date().timeIntervalSince(started))) s: \(counts)")
        let lost = ids.filter { answers[$0]??.status.isTerminal != true }
        XCTAssertEqual(lost.count, 0, "accepted jobs lost or stuck: \(lost.prefix(5)) \(counts)\n\(pipeline.diagnostics())")
        XCTAssertEqual(counts["succeeded"], ids.count, "\(counts)\n\(pipeline.diagnostics())")
        XCTAssertEqual(pipeline.stoppedServices, [], pipeline.diagnostics())
    }

    /// Without a store there is no ledger: the ingress does not accept a job it cannot keep.
    /// It waits for the receipt up to `--ledger-timeout-seconds`, then answers 503.
    func testAJobIsNotAcceptedWhileTheStoreCannotRecordIt() async throws {
        let pipeline = try makePipeline("no-receipt", lease: 4)
        try await pipeline.start(workers: [], ingresses: [.init(name: "ingress", extraArguments: ["--ledger-timeout-seconds", "2"])])
        // Accepted while the store runs.
        let image = try Self.images()[0]
        let accepted = try await FaultTestCase.submit(1, to: pipeline)[0]
        // The store is killed: ledger stats are still fresh for a few seconds, so the ingress
        // publishes and waits for a receipt that never comes.
        let store = try XCTUnwrap(pipeline.store)
        store.killHard()
        let offset = store.log.count
        let began = Date()
        let refused = try await pipeline.http.post("/predict", body: TestImages.predictBody(image))
        let waited = Date().timeIntervalSince(began)
        XCTAssertEqual(refused.status, 503, refused.text)
        XCTAssertEqual(refused.header("Retry-After"), "2")
        XCTAssertTrue(refused.errorMessage?.contains("did not record") == true, refused.text)
        XCTAssertGreaterThanOrEqual(waited, 1.5, "answered before the receipt's timeout")
        // The store comes back: the accepted job is still there (queued: no worker runs).
        try pipeline.launchStore().waitForLog("result store running", after: offset, timeout: 60)
        let view = try await pipeline.job(accepted)
        XCTAssertEqual(view.status, 200, view.text)
    }
}
