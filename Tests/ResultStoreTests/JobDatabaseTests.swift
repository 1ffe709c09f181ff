import Foundation
import GRDB
import Jobs
import XCTest

@testable import ResultStore

/// `JobDatabase` against a real SQLite file in a temporary directory.
final class JobDatabaseTests: XCTestCase {
    private var directory: URL!
    private var path: String { directory.appendingPathComponent("jobs.sqlite").path }

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-store-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func request(_ id: String, submittedAt: Int64 = 1_000, model: String = "inception_v3") -> LedgerEntry {
        LedgerEntry(binary: JobRequest(jobID: id, model: model, version: 2, topK: 3, submittedAt: submittedAt,
                                       image: Data([0xFF, 0xD8, 0xFF])))
    }

    private func succeeded(_ id: String, label: String = "tabby", worker: String = "w1", finishedAt: Int64 = 3_000) -> JobResult {
        JobResult(jobID: id, model: "inception_v3", version: 2, status: .succeeded,
                  top: [ClassScore(index: 281, label: label, score: 0.75), ClassScore(index: 282, label: "tiger cat", score: 0.125)],
                  timings: JobTimings(queuedAt: 1_000, startedAt: 2_000, finishedAt: finishedAt, inferenceMs: 812.5),
                  worker: worker)
    }

    func testSchemaIsMigratedInWALMode() throws {
        let db = try JobDatabase(path: path)
        _ = db
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        let queue = try DatabaseQueue(path: path)
        try queue.read { db in
            XCTAssertEqual(try String.fetchOne(db, sql: "PRAGMA journal_mode"), "wal")
            let columns = try db.columns(in: "jobs").map(\.name)
            XCTAssertEqual(columns, ["id", "model", "version", "status", "top", "error", "worker", "queued_at",
                                     "started_at", "finished_at", "inference_ms", "attempts", "updated_at"])
            XCTAssertEqual(try db.primaryKey("jobs").columns, ["id"])
        }
    }

    func testLedgerRecordsQueued() async throws {
        let db = try JobDatabase(path: path)
        let inserted = try await db.recordRequest(request("job-1", submittedAt: 1_234))
        XCTAssertTrue(inserted)
        let job = try await db.job("job-1")
        XCTAssertEqual(job?.status, .queued)
        XCTAssertEqual(job?.model, "inception_v3")
        XCTAssertEqual(job?.version, 2)
        XCTAssertEqual(job?.timings.queuedAt, 1_234)
        XCTAssertNil(job?.timings.startedAt)
        XCTAssertEqual(job?.top, [])
        let record = try await db.record("job-1")
        XCTAssertEqual(record?.attempts, 0)

        // The same request again (QoS 1 redelivery) changes nothing.
        let again = try await db.recordRequest(request("job-1", submittedAt: 9_999))
        XCTAssertFalse(again)
        let queuedAt = try await db.job("job-1")?.timings.queuedAt
        XCTAssertEqual(queuedAt, 1_234)
        let unknown = try await db.job("nope")
        XCTAssertNil(unknown)
    }

    func testRunningThenSucceeded() async throws {
        let db = try JobDatabase(path: path)
        try await db.recordRequest(request("job-1"))
        let running = try await db.recordRunning(jobID: "job-1", startedAt: 2_000, worker: "w1")
        XCTAssertTrue(running)
        var job = try await db.job("job-1")
        XCTAssertEqual(job?.status, .running)
        XCTAssertEqual(job?.timings.startedAt, 2_000)
        XCTAssertEqual(job?.worker, "w1")
        // A redelivered running event is not a new attempt.
        let duplicate = try await db.recordRunning(jobID: "job-1", startedAt: 2_000, worker: "w1")
        XCTAssertFalse(duplicate)
        var record = try await db.record("job-1")
        XCTAssertEqual(record?.attempts, 1)

        let applied = try await db.recordResult(succeeded("job-1"))
        XCTAssertTrue(applied)
        job = try await db.job("job-1")
        XCTAssertEqual(job, succeeded("job-1"))
        XCTAssertEqual(job?.prediction, "tabby")
        record = try await db.record("job-1")
        XCTAssertEqual(record?.attempts, 1)
    }

    func testFirstTerminalResultWins() async throws {
        let db = try JobDatabase(path: path)
        try await db.recordRequest(request("job-1"))
        let first = try await db.recordResult(succeeded("job-1", label: "tabby", worker: "w1"))
        XCTAssertTrue(first)
        // An exact duplicate, a different success and a failure are all ignored.
        let duplicate = try await db.recordResult(succeeded("job-1", label: "tabby", worker: "w1"))
        XCTAssertFalse(duplicate)
        let other = try await db.recordResult(succeeded("job-1", label: "lynx", worker: "w2", finishedAt: 4_000))
        XCTAssertFalse(other)
        let failure = try await db.recordResult(JobResult(jobID: "job-1", model: "inception_v3", status: .failed,
                                                          error: "boom", worker: "w3"))
        XCTAssertFalse(failure)
        let job = try await db.job("job-1")
        XCTAssertEqual(job, succeeded("job-1", label: "tabby", worker: "w1"))

        // A failure that comes first wins just the same.
        try await db.recordRequest(request("job-2"))
        let failed = try await db.recordResult(JobResult(jobID: "job-2", model: "inception_v3", status: .failed,
                                                         timings: JobTimings(finishedAt: 5_000), error: "not a JPEG"))
        XCTAssertTrue(failed)
        let late = try await db.recordResult(succeeded("job-2"))
        XCTAssertFalse(late)
        let job2 = try await db.job("job-2")
        XCTAssertEqual(job2?.status, .failed)
        XCTAssertEqual(job2?.error, "not a JPEG")
        XCTAssertEqual(job2?.top, [])
        XCTAssertEqual(job2?.timings.queuedAt, 1_000)
        XCTAssertEqual(job2?.timings.finishedAt, 5_000)
    }

    func testRunningAfterTerminalDoesNotDowngrade() async throws {
        let db = try JobDatabase(path: path)
        try await db.recordRequest(request("job-1"))
        try await db.recordResult(succeeded("job-1"))
        let late = try await db.recordRunning(jobID: "job-1", startedAt: 9_000, worker: "w9")
        XCTAssertFalse(late)
        let lateAsResult = try await db.recordResult(JobResult(jobID: "job-1", model: "inception_v3", status: .running,
                                                               timings: JobTimings(startedAt: 9_000), worker: "w9"))
        XCTAssertFalse(lateAsResult)
        // The ledger entry arriving last does not requeue it either.
        let lateRequest = try await db.recordRequest(request("job-1", submittedAt: 500))
        XCTAssertFalse(lateRequest)
        let job = try await db.job("job-1")
        XCTAssertEqual(job, succeeded("job-1"))
    }

    func testMessagesForUnknownJobsCreateRows() async throws {
        let db = try JobDatabase(path: path)
        // A running event whose ledger entry was missed.
        let running = try await db.recordRunning(jobID: "job-r", startedAt: 2_000, worker: "w1", model: "mobilenet", version: 1)
        XCTAssertTrue(running)
        var job = try await db.job("job-r")
        XCTAssertEqual(job?.status, .running)
        XCTAssertEqual(job?.model, "mobilenet")
        XCTAssertNil(job?.timings.queuedAt)
        // The ledger entry turning up later fills in queued_at without requeueing.
        try await db.recordRequest(request("job-r", submittedAt: 1_500, model: "mobilenet"))
        job = try await db.job("job-r")
        XCTAssertEqual(job?.status, .running)
        XCTAssertEqual(job?.timings.queuedAt, 1_500)

        // A result for a job the store never heard of.
        let result = try await db.recordResult(succeeded("job-x"))
        XCTAssertTrue(result)
        job = try await db.job("job-x")
        XCTAssertEqual(job, succeeded("job-x"))
        let record = try await db.record("job-x")
        XCTAssertEqual(record?.attempts, 1)
    }

    func testResultWithoutFinishTimeGetsReceiptTime() async throws {
        let db = try JobDatabase(path: path)
        let before = Clock.nowMillis()
        try await db.recordResult(JobResult(jobID: "job-e", model: "inception_v3", status: .expired, error: "too old"))
        let finishedAt = try await db.job("job-e")?.timings.finishedAt
        XCTAssertNotNil(finishedAt)
        XCTAssertGreaterThanOrEqual(finishedAt ?? 0, before)
    }

    func testRetryIsANewAttempt() async throws {
        let db = try JobDatabase(path: path)
        try await db.recordRequest(request("job-1"))
        try await db.recordRunning(jobID: "job-1", startedAt: 2_000, worker: "w1")
        // w1 died; the broker redelivered the request to w2.
        let retry = try await db.recordRunning(jobID: "job-1", startedAt: 3_000, worker: "w2")
        XCTAssertTrue(retry)
        // A late copy of w1's event does not move the record back.
        let stale = try await db.recordRunning(jobID: "job-1", startedAt: 2_000, worker: "w1")
        XCTAssertFalse(stale)
        let record = try await db.record("job-1")
        XCTAssertEqual(record?.attempts, 2)
        XCTAssertEqual(record?.worker, "w2")
        XCTAssertEqual(record?.startedAt, 3_000)
    }

    func testReopenKeepsJobs() async throws {
        do {
            let db = try JobDatabase(path: path)
            try await db.recordRequest(request("job-q"))
            try await db.recordRequest(request("job-s"))
            try await db.recordRunning(jobID: "job-s", startedAt: 2_000, worker: "w1")
            try await db.recordResult(succeeded("job-s"))
            try db.close()
        }
        let reopened = try JobDatabase(path: path)  // migrating again is a no-op
        let queued = try await reopened.job("job-q")
        XCTAssertEqual(queued?.status, .queued)
        let done = try await reopened.job("job-s")
        XCTAssertEqual(done, succeeded("job-s"))
        // First terminal still wins across the restart.
        let late = try await reopened.recordResult(succeeded("job-s", label: "lynx"))
        XCTAssertFalse(late)
    }

    func testTwoInstancesOnOneFile() async throws {
        let a = try JobDatabase(path: path)
        let b = try JobDatabase(path: path)
        try await a.recordRequest(request("job-1"))
        let seen = try await b.job("job-1")
        XCTAssertEqual(seen?.status, .queued)
    }

    func testPurgeDeletesOnlyOldFinishedJobs() async throws {
        let db = try JobDatabase(path: path)
        try await db.recordRequest(request("old-queued", submittedAt: 10))
        try await db.recordRunning(jobID: "old-running", startedAt: 20, worker: "w1")
        try await db.recordResult(succeeded("old-succeeded", finishedAt: 100))
        try await db.recordResult(JobResult(jobID: "old-failed", model: "m", status: .failed,
                                            timings: JobTimings(finishedAt: 200), error: "x"))
        try await db.recordResult(JobResult(jobID: "old-expired", model: "m", status: .expired,
                                            timings: JobTimings(finishedAt: 300), error: "x"))
        try await db.recordResult(succeeded("new-succeeded", finishedAt: 5_000))
        try await db.recordResult(succeeded("edge", finishedAt: 1_000))

        let purged = try await db.purge(finishedBefore: 1_000)
        XCTAssertEqual(purged, 3)
        for id in ["old-succeeded", "old-failed", "old-expired"] {
            let job = try await db.job(id)
            XCTAssertNil(job, id)
        }
        for id in ["old-queued", "old-running", "new-succeeded", "edge"] {
            let job = try await db.job(id)
            XCTAssertNotNil(job, id)
        }
        let again = try await db.purge(finishedBefore: 1_000)
        XCTAssertEqual(again, 0)
    }

    func testCounts() async throws {
        let db = try JobDatabase(path: path)
        var counts = try await db.counts()
        XCTAssertEqual(counts, [.queued: 0, .running: 0, .succeeded: 0, .failed: 0, .expired: 0, .cancelled: 0])
        try await db.recordRequest(request("q1"))
        try await db.recordRequest(request("q2"))
        try await db.recordRequest(request("r1"))
        try await db.recordRunning(jobID: "r1", startedAt: 2_000, worker: "w1")
        try await db.recordResult(succeeded("s1"))
        try await db.recordResult(succeeded("s2"))
        try await db.recordResult(succeeded("s3"))
        try await db.recordResult(JobResult(jobID: "f1", model: "m", status: .failed, error: "x"))
        try await db.recordResult(succeeded("s1", label: "ignored"))
        counts = try await db.counts()
        XCTAssertEqual(counts, [.queued: 2, .running: 1, .succeeded: 3, .failed: 1, .expired: 0, .cancelled: 0])
    }

    func testConcurrentResultsForOneJobApplyExactlyOnce() async throws {
        let db = try JobDatabase(path: path)
        try await db.recordRequest(request("job-1"))
        let results = (0..<20).map { succeeded("job-1", label: "label-\($0)", worker: "w\($0)") }
        let applied = try await withThrowingTaskGroup(of: Bool.self) { group in
            for result in results {
                group.addTask { try await db.recordResult(result) }
            }
            var applied = 0
            for try await ok in group where ok { applied += 1 }
            return applied
        }
        XCTAssertEqual(applied, 1)
        let job = try await db.job("job-1")
        XCTAssertEqual(job?.status, .succeeded)
    }
}
