import XCTest

@testable import Worker

/// The worker's memory of cancelled jobs: what it remembers, and that it stays bounded.
final class CancelledJobsTests: XCTestCase {
    func testRemembersCancellations() {
        let cancelled = CancelledJobs()
        XCTAssertFalse(cancelled.contains("a"))
        cancelled.insert("a")
        cancelled.insert("a")
        XCTAssertTrue(cancelled.contains("a"))
        XCTAssertFalse(cancelled.contains("b"))
    }

    func testForgetsTheOldestPastItsCapacity() {
        let cancelled = CancelledJobs(capacity: 3)
        for id in ["a", "b", "c", "d"] { cancelled.insert(id) }
        XCTAssertFalse(cancelled.contains("a"))
        XCTAssertTrue(["b", "c", "d"].allSatisfy(cancelled.contains))
        // Many more: still bounded, the newest kept.
        for i in 0..<5_000 { cancelled.insert("j\(i)") }
        XCTAssertTrue(cancelled.contains("j4999"))
        XCTAssertFalse(cancelled.contains("j4996"))
        XCTAssertFalse(cancelled.contains("d"))
    }

    func testForgetsWhatIsOlderThanItsLifetime() async throws {
        let cancelled = CancelledJobs(lifetime: .milliseconds(50))
        cancelled.insert("old")
        try await Task.sleep(for: .milliseconds(120))
        cancelled.insert("new")  // forgetting happens as new ones come
        XCTAssertFalse(cancelled.contains("old"))
        XCTAssertTrue(cancelled.contains("new"))
    }
}
