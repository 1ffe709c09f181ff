import Foundation
import Jobs
import XCTest

@testable import Worker

/// The worker's bookkeeping of the jobs it holds: arrival order, the prefetch bound,
/// duplicates, what the heartbeat reports, and a graceful stop.
final class HeldJobsTests: XCTestCase {
    private func job(_ id: String) -> HeldJobs.Job {
        HeldJobs.Job(request: JobRequest(jobID: id, model: "m", image: Data([0xFF, 0xD8, 0xFF])))
    }

    func testJobsAreTakenInArrivalOrderAndReported() async {
        let held = HeldJobs()
        XCTAssertEqual(held.add(job("a")), .added)
        XCTAssertEqual(held.add(job("b")), .added)
        XCTAssertEqual(held.add(job("a")), .duplicate, "a redelivery to the worker that holds it")
        let first = await held.next()
        XCTAssertEqual(first?.request.jobID, "a")
        // Taken but not started: still reported as queued, so its lease is kept.
        XCTAssertEqual(held.snapshot().queued, ["b", "a"])
        held.started("a", at: 1_234)
        let snapshot = held.snapshot()
        XCTAssertEqual(snapshot.queued, ["b"])
        XCTAssertEqual(snapshot.running, [WorkerHeartbeat.Running(jobID: "a", startedAt: 1_234)])
        held.finished("a")
        XCTAssertEqual(held.snapshot().running, [])
        XCTAssertEqual(held.add(job("a")), .added, "a finished job may come again (a redelivery)")
    }

    func testThePrefetchBoundCountsEveryHeldJob() async {
        let held = HeldJobs()
        XCTAssertEqual(held.add(job("a"), limit: 2), .added)
        XCTAssertEqual(held.add(job("b"), limit: 2), .added)
        XCTAssertEqual(held.add(job("c"), limit: 2), .full)
        _ = await held.next()
        XCTAssertEqual(held.add(job("c"), limit: 2), .full, "a taken job still counts")
        held.finished("a")
        XCTAssertEqual(held.add(job("c"), limit: 2), .added)
    }

    func testAWaitingRunnerGetsTheNextArrival() async {
        let held = HeldJobs()
        async let taken = held.next()
        // Give the runner time to wait first.
        try? await Task.sleep(for: .milliseconds(50))
        XCTAssertEqual(held.add(job("x")), .added)
        let got = await taken
        XCTAssertEqual(got?.request.jobID, "x")
        XCTAssertEqual(held.snapshot().queued, ["x"])
    }

    func testClosingHandsBackTheQueuedAndEndsIdleRunners() async {
        let held = HeldJobs()
        _ = held.add(job("a"))
        _ = held.add(job("b"))
        _ = held.add(job("c"))
        let taken = await held.next()
        XCTAssertEqual(taken?.request.jobID, "a")
        let (queued, waiting) = held.close()
        XCTAssertEqual(queued.map(\.request.jobID), ["b", "c"])
        XCTAssertEqual(waiting, 1, "a's runner hands it back when its batch comes")
        XCTAssertTrue(held.isClosed)
        XCTAssertFalse(held.isDone)
        XCTAssertEqual(held.add(job("d")), .closed)
        let none = await held.next()
        XCTAssertNil(none)
        held.finished("a")
        XCTAssertTrue(held.isDone)
    }
}
