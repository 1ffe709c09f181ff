@testable import Ingress
import Jobs
import XCTest

final class LedgerGaugeTests: XCTestCase {
    func testNothingIsRefusedBeforeTheFirstStats() {
        let gauge = LedgerGauge(maxQueued: 1, staleAfter: .seconds(10))
        XCTAssertNil(gauge.admit(now: 0), "the ledger's receipt decides until stats arrive")
    }

    func testJobsAcceptedSinceTheLastStatsCountTowardsTheLimit() {
        let gauge = LedgerGauge(maxQueued: 3, staleAfter: .seconds(10))
        let now = Clock.nowMillis()
        gauge.update(LedgerStats(queued: 1, running: 0, at: now), retained: false)
        XCTAssertNil(gauge.admit(now: now))
        XCTAssertNil(gauge.admit(now: now))
        XCTAssertEqual(gauge.admit(now: now), .full(queued: 3, limit: 3))
        gauge.release()
        XCTAssertNil(gauge.admit(now: now), "a released reservation frees its room")
        gauge.update(LedgerStats(queued: 0, running: 3, at: now), retained: false)
        XCTAssertNil(gauge.admit(now: now), "new stats replace the local count")
    }

    func testStaleStatsRefuseAtOnce() {
        let gauge = LedgerGauge(maxQueued: 0, staleAfter: .seconds(2))
        let now = Clock.nowMillis()
        gauge.update(LedgerStats(queued: 0, running: 0, at: now), retained: false)
        XCTAssertNil(gauge.admit(now: now + 1_000))
        XCTAssertEqual(gauge.admit(now: now + 5_000), .silent(sinceSeconds: 5))
    }

    func testARetainedStatsMessageCountsFromItsOwnTime() {
        let gauge = LedgerGauge(maxQueued: 0, staleAfter: .seconds(2))
        let now = Clock.nowMillis()
        gauge.update(LedgerStats(queued: 0, running: 0, at: now - 60_000), retained: true)
        XCTAssertNotNil(gauge.admit(now: now), "an old retained message is not fresh stats")
    }
}
