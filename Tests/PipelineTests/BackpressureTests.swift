import Foundation
import Jobs
import XCTest

/// The ingress's limits: 503 + Retry-After when the ledger's queued count is at
/// `--max-queued` or the ledger is silent, 429 + Retry-After per client over `--rate-limit`.
/// Nothing refused is published; everything accepted is kept.
final class BackpressureTests: FaultTestCase {
    func testQueueLimitRefusesWith503AndAcceptedJobsAreKept() async throws {
        let pipeline = try makePipeline("queue-limit", lease: 3)
        try await pipeline.start(ingresses: [.init(name: "ingress", extraArguments: ["--max-queued", "4"])])
        let image = try Self.images()[0]
        // No worker: every accepted job stays queued.
        var accepted: [String] = []
        var refused: HTTPReply?
        for _ in 0..<8 {
            let reply = try await pipeline.http.post("/predict", body: TestImages.predictBody(image))
            if reply.status == 202, let id = reply.object?["job_id"] as? String {
                accepted.append(id)
            } else {
                refused = reply
                break
            }
        }
        XCTAssertEqual(accepted.count, 4, "the first 4 jobs fit under the limit")
        let reply = try XCTUnwrap(refused)
        XCTAssertEqual(reply.status, 503, reply.text)
        XCTAssertNotNil(reply.header("Retry-After"))
        XCTAssertTrue(reply.errorMessage?.contains("too many queued jobs") == true, reply.text)

        // Still refused once the store's own count (4 queued) has come in.
        try await Task.sleep(for: .seconds(2))
        let again = try await pipeline.http.post("/predict", body: TestImages.predictBody(image))
        XCTAssertEqual(again.status, 503, again.text)
        let known = try await storeQuerier(pipeline).query(accepted)
        XCTAssertEqual(Self.countByStatus(known), ["queued": 4], "every accepted job is in the ledger")

        // A worker drains the queue; new jobs are accepted again.
        try pipeline.launchWorker(clientID: "worker-a", extraArguments: Self.workerArguments)
            .waitForLog("subscribed to $share/", timeout: 120)
        let answers = try await waitUntilTerminal(accepted, in: pipeline, timeout: 60)
        XCTAssertEqual(Self.countByStatus(answers), ["succeeded": 4])
        try await Task.sleep(for: .seconds(2))
        let later = try await pipeline.http.post("/predict", body: TestImages.predictBody(image))
        XCTAssertEqual(later.status, 202, later.text)
    }

    func testRateLimitPerClientRefusesWith429() async throws {
        let pipeline = try makePipeline("rate-limit", lease: 60)
        try await pipeline.start(ingresses: [.init(name: "ingress", extraArguments: ["--rate-limit", "0.5", "--rate-burst", "3"])])
        let image = try Self.images()[0]
        var statuses: [Int] = []
        var last: HTTPReply?
        for _ in 0..<4 {
            let reply = try await pipeline.http.post("/predict", body: TestImages.predictBody(image))
            statuses.append(reply.status)
            last = reply
        }
        XCTAssertEqual(statuses, [202, 202, 202, 429], "a burst of 3, then over 0.5 jobs/s")
        XCTAssertEqual(last?.header("Retry-After"), "2", "one token comes back in 2 s")
        try await Task.sleep(for: .seconds(2.2))
        let after = try await pipeline.http.post("/predict", body: TestImages.predictBody(image))
        XCTAssertEqual(after.status, 202, "a token has come back")
    }

    func testIngressRefusesWhileTheLedgerIsSilent() async throws {
        let pipeline = try makePipeline("ledger-silent", lease: 60)
        try await pipeline.start(ingresses: [.init(name: "ingress", extraArguments: ["--ledger-stale-seconds", "2"])])
        let image = try Self.images()[0]
        let first = try await pipeline.http.post("/predict", body: TestImages.predictBody(image))
        XCTAssertEqual(first.status, 202, first.text)

        pipeline.store?.stop(grace: 10)
        try await Task.sleep(for: .seconds(3))
        let refused = try await pipeline.http.post("/predict", body: TestImages.predictBody(image))
        XCTAssertEqual(refused.status, 503, refused.text)
        XCTAssertTrue(refused.errorMessage?.contains("ledger") == true, refused.text)

        try pipeline.launchStore().waitForLog("result store running", timeout: 60)
        try await Task.sleep(for: .seconds(1.5))
        let back = try await pipeline.http.post("/predict", body: TestImages.predictBody(image))
        XCTAssertEqual(back.status, 202, back.text)
    }
}
