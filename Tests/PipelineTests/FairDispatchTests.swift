import Foundation
import Jobs
import XCTest

/// Fair dispatch between unequal workers (`--prefetch`): a slow worker holds only the jobs it
/// runs and hands the others back to the ledger, which publishes them again, so they run on
/// the idle worker instead of waiting behind the slow one.
final class FairDispatchTests: FaultTestCase {
    /// A worker slowed by an injected 20 s delay per job, bounded to one job (batch 1,
    /// prefetch 0), beside a normal worker; twelve jobs published at once. Mosquitto deals
    /// half of them to the slow worker, which runs at most one and hands the rest back: all
    /// twelve succeed, at most one on the slow worker. Without the bound the slow worker
    /// would keep its half and run them one after another.
    func testASlowWorkerHandsBackWhatItCannotStartAndTheIdleWorkerRunsIt() async throws {
        let pipeline = try makePipeline("fair-dispatch", lease: 60)
        try await pipeline.start()
        let slow = try pipeline.launchWorker(
            clientID: "worker-slow", extraArguments: Self.workerArguments + ["--max-batch-size", "1", "--prefetch", "0"],
            environment: ["CONVEYOR_FAULT_INJECT": "delay20000:fair-"])
        let fast = try pipeline.launchWorker(clientID: "worker-fast", extraArguments: Self.workerArguments)
        try slow.waitForLog("subscribed to $share/", timeout: 240)
        try fast.waitForLog("subscribed to $share/", timeout: 240)
        let listener = try await ResultListener.start(port: pipeline.broker.port)
        defer { Task { await listener.stop() } }

        let images = try Self.images()
        let requests = (0..<12).map { JobRequest(jobID: "fair-\($0)", model: Self.model, image: images[$0 % images.count]) }
        try await BatchingTests.publish(requests, port: pipeline.broker.port)
        let ids = requests.map(\.jobID)
        let answers = try await waitUntilTerminal(ids, in: pipeline, timeout: 180)
        XCTAssertEqual(Self.countByStatus(answers), ["succeeded": 12], pipeline.diagnostics())

        let bySlow = answers.values.filter { $0?.worker == "worker-slow" }.count
        let byFast = answers.values.filter { $0?.worker == "worker-fast" }.count
        XCTAssertLessThanOrEqual(bySlow, 1, "the slow worker should run only the one job it can hold\n\(pipeline.diagnostics())")
        XCTAssertEqual(bySlow + byFast, 12)
        let slowResults = listener.results.filter { $0.worker == "worker-slow" && $0.status.isTerminal }.count
        XCTAssertLessThanOrEqual(slowResults, 1, "the slow worker should publish at most one result")
        XCTAssertTrue(pipeline.store?.log.contains("ledger: handed back by worker-slow") == true,
                      "the slow worker should have handed jobs back\n\(pipeline.diagnostics())")
    }
}
