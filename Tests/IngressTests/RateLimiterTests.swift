@testable import Ingress
import XCTest

final class RateLimiterTests: XCTestCase {
    func testABurstThenTheRate() {
        let limiter = RateLimiter(rate: 2, burst: 3)
        XCTAssertNil(limiter.take("a", now: 0))
        XCTAssertNil(limiter.take("a", now: 0))
        XCTAssertNil(limiter.take("a", now: 0))
        let wait = limiter.take("a", now: 0)
        XCTAssertEqual(wait ?? 0, 0.5, accuracy: 1e-9, "one token comes back after 1/rate seconds")
        XCTAssertNil(limiter.take("b", now: 0), "each client has its own bucket")
        XCTAssertNil(limiter.take("a", now: 0.5))
        XCTAssertNotNil(limiter.take("a", now: 0.5))
    }

    func testARequestOfManyJobsPassesOnceAndThenOwesThem() {
        let limiter = RateLimiter(rate: 1, burst: 2)
        XCTAssertNil(limiter.take("a", jobs: 10, now: 0), "a full bucket lets a batch through")
        // 2 - 10 = -8 tokens: the next job may come when the bucket is back at 1.
        XCTAssertEqual(limiter.take("a", now: 0) ?? 0, 9, accuracy: 1e-9)
        XCTAssertNotNil(limiter.take("a", now: 8.5))
        XCTAssertNil(limiter.take("a", now: 9))
    }
}
