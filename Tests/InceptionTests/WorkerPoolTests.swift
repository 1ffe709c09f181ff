import Dispatch
import Foundation
@testable import Inception
import Synchronization
import XCTest

/// The engine's thread pool: every part of every job runs exactly once, a
/// second caller is never blocked, and idle helpers stop using the CPU.
final class WorkerPoolTests: XCTestCase {
    override func tearDown() {
        Parallel.threads = 1
        super.tearDown()
    }

    func testEveryPartRunsExactlyOnceAcrossManyJobs() {
        let pool = WorkerPool.shared
        for parts in 1...4 {
            for round in 0..<5_000 {
                let counts = UnsafeMutablePointer<Int>.allocate(capacity: parts)
                counts.initialize(repeating: 0, count: parts)
                defer { counts.deallocate() }
                let ran = pool.run(parts: parts) { part in counts[part] += round + 1 }
                XCTAssertTrue(ran)
                for part in 0..<parts where counts[part] != round + 1 {
                    XCTFail("parts \(parts), round \(round): part \(part) ran \(counts[part] / (round + 1)) times")
                    return
                }
            }
        }
    }

    func testConcurrentCallersAllFinishWithCorrectResults() {
        Parallel.threads = 2
        let total = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<2_000 {
                Parallel.forEachChunk(1_000, minChunk: 10) { range in total.add(range.count, ordering: .relaxed) }
            }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 4 * 2_000 * 1_000)
    }

    func testIdleHelpersSleep() throws {
        _ = WorkerPool.shared.run(parts: 3) { _ in }
        Thread.sleep(forTimeInterval: 0.1)
        let before = Self.cpuSeconds()
        Thread.sleep(forTimeInterval: 0.5)
        let used = Self.cpuSeconds() - before
        // A spinning helper would use about 0.5 s of CPU here.
        XCTAssertLessThan(used, 0.1, "helpers kept spinning while idle")
    }

    private static func cpuSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
