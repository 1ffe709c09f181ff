@testable import Ingress
import Jobs
import XCTest

final class ResultWatcherTests: XCTestCase {
    private func result(_ id: String, _ status: JobStatus = .succeeded) -> JobResult {
        JobResult(jobID: id, model: "m", status: status)
    }

    func testAWaitingPollWakesWithItsResult() async {
        let watcher = ResultWatcher()
        let token = watcher.register("j1")
        async let waited = watcher.wait("j1", token, timeout: .seconds(10))
        try? await Task.sleep(for: .milliseconds(50))
        watcher.deliver(result("j2"))
        watcher.deliver(result("j1", .running))
        watcher.deliver(result("j1"))
        let got = await waited
        XCTAssertEqual(got?.jobID, "j1")
        XCTAssertEqual(got?.status, .succeeded)
    }

    func testAResultBetweenRegisterAndWaitIsKept() async {
        let watcher = ResultWatcher()
        let token = watcher.register("j1")
        watcher.deliver(result("j1", .failed))
        let got = await watcher.wait("j1", token, timeout: .milliseconds(10))
        XCTAssertEqual(got?.status, .failed)
    }

    func testAResultBeforeRegisterIsFoundFromMemory() async {
        let watcher = ResultWatcher(recentCapacity: 2)
        watcher.deliver(result("early"))
        let token = watcher.register("early")
        let got = await watcher.wait("early", token, timeout: .milliseconds(10))
        XCTAssertEqual(got?.jobID, "early")
        // The memory is bounded: old results are forgotten.
        for i in 0..<10 { watcher.deliver(result("later-\(i)")) }
        let forgotten = watcher.register("early")
        let none = await watcher.wait("early", forgotten, timeout: .milliseconds(10))
        XCTAssertNil(none)
    }

    func testTimeoutAndShutdown() async {
        let watcher = ResultWatcher()
        let token = watcher.register("j1")
        let timedOut = await watcher.wait("j1", token, timeout: .milliseconds(20))
        XCTAssertNil(timedOut)
        let other = watcher.register("j2")
        async let waited = watcher.wait("j2", other, timeout: .seconds(30))
        try? await Task.sleep(for: .milliseconds(50))
        watcher.wakeAll()
        let woken = await waited
        XCTAssertNil(woken, "stopping wakes every poll at once")
    }
}
