import Foundation
import GRDB
import Jobs
import MQTT
import StoreClient
import XCTest

@testable import ResultStore

/// Listing, deleting and cancelling jobs: `JobDatabase` on a real SQLite file, and the
/// store's query handler fed `list` / `delete` queries.
final class JobListingTests: XCTestCase {
    private var directory: URL!
    private var path: String { directory.appendingPathComponent("jobs.sqlite").path }

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("conveyor-listing-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func request(_ id: String, submittedAt: Int64, model: String = "inception_v3",
                         replyTopic: String? = nil) -> LedgerEntry {
        LedgerEntry(binary: JobRequest(jobID: id, model: model, version: 1, topK: 3, submittedAt: submittedAt,
                                       image: Data([0xFF, 0xD8, 0xFF]), replyTopic: replyTopic))
    }

    private func succeeded(_ id: String) -> JobResult {
        JobResult(jobID: id, model: "inception_v3", version: 1, status: .succeeded,
                  top: [ClassScore(index: 281, label: "tabby", score: 0.75)],
                  timings: JobTimings(queuedAt: 1_000, startedAt: 2_000, finishedAt: 3_000, inferenceMs: 80), worker: "w1")
    }

    // MARK: - Listing

    func testListsNewestFirstAcrossPages() async throws {
        let db = try JobDatabase(path: path)
        // Two jobs share a queued time: the id breaks the tie, and no page repeats or skips one.
        for (id, at) in [("a", 1_000), ("b", 2_000), ("c", 2_000), ("d", 3_000), ("e", 4_000)] {
            try await db.recordRequest(request(id, submittedAt: Int64(at)), leaseUntil: 9_999)
        }
        var seen: [String] = []
        var cursor: JobPage.Cursor?
        var pages = 0
        repeat {
            let page = try await db.list(limit: 2, before: cursor)
            seen += page.jobs.map(\.jobID)
            cursor = try page.next.map { try XCTUnwrap(JobPage.Cursor($0), "unreadable cursor \($0)") }
            pages += 1
        } while cursor != nil && pages < 10
        XCTAssertEqual(seen, ["e", "d", "c", "b", "a"])
        XCTAssertEqual(pages, 3)
        // A bare time is a cursor too: everything queued before it.
        let before = try await db.list(limit: 10, before: JobPage.Cursor("2001"))
        XCTAssertEqual(before.jobs.map(\.jobID), ["c", "b", "a"])
        XCTAssertNil(before.next)
    }

    func testListFiltersByStatusAndModel() async throws {
        let db = try JobDatabase(path: path)
        try await db.recordRequest(request("m1", submittedAt: 1_000, model: "mobilenet"), leaseUntil: 9_999)
        try await db.recordRequest(request("i1", submittedAt: 2_000), leaseUntil: 9_999)
        try await db.recordRequest(request("i2", submittedAt: 3_000), leaseUntil: 9_999)
        try await db.recordResult(succeeded("i1"))
        let done = try await db.list(status: .succeeded, limit: 10)
        XCTAssertEqual(done.jobs.map(\.jobID), ["i1"])
        XCTAssertEqual(done.jobs.first?.top.first?.label, "tabby")
        let value1 = try await db.list(model: "mobilenet", limit: 10).jobs.map(\.jobID)
        XCTAssertEqual(value1, ["m1"])
        let value2 = try await db.list(status: .queued, model: "inception_v3", limit: 10).jobs.map(\.jobID)
        XCTAssertEqual(value2, ["i2"])
        let value3 = try await db.list(status: .failed, limit: 10).jobs
        XCTAssertEqual(value3, [])
    }

    func testCursorText() {
        XCTAssertEqual(JobPage.Cursor("1700000000000.abc-_1"), JobPage.Cursor(queuedAt: 1_700_000_000_000, jobID: "abc-_1"))
        XCTAssertEqual(JobPage.Cursor(queuedAt: 5, jobID: "x").text, "5.x")
        for bad in ["", "x", "-1", "12.", "12.a/b", "1.2.3"] {
            XCTAssertNil(JobPage.Cursor(bad), bad)
        }
    }

    // MARK: - Deleting and cancelling

    func testDeletingAnEndedJobRemovesIt() async throws {
        let db = try JobDatabase(path: path)
        try await db.recordRequest(request("done", submittedAt: 1_000), leaseUntil: 9_999)
        try await db.recordResult(succeeded("done"))
        let value4 = try await db.delete("done")
        XCTAssertEqual(value4, .deleted)
        let value5 = try await db.job("done")
        XCTAssertNil(value5)
        let value6 = try await db.delete("done")
        XCTAssertEqual(value6, .notFound)
        let value7 = try await db.delete("never")
        XCTAssertEqual(value7, .notFound)
    }

    func testCancellingAQueuedJobTakesItOutOfTheLedger() async throws {
        let db = try JobDatabase(path: path)
        try await db.recordRequest(request("q", submittedAt: 1_000, replyTopic: "conveyor/v1/devices/cam/replies/q"),
                                   leaseUntil: 2_000)
        guard case let .cancelled(record, replyTopic, new) = try await db.delete("q") else {
            return XCTFail("a queued job is cancelled")
        }
        XCTAssertTrue(new)
        XCTAssertEqual(record.status, .cancelled)
        XCTAssertEqual(replyTopic, "conveyor/v1/devices/cam/replies/q")
        let value8 = try await db.job("q")?.status
        XCTAssertEqual(value8, .cancelled)
        // Its request is gone: never delivered again, and nothing of the image is kept.
        let value9 = try await db.pendingCount()
        XCTAssertEqual(value9, 0)
        let value10 = try await db.overdue(now: 1_000_000)
        XCTAssertEqual(value10, [])
        // A result that still comes (the job was on an engine) is discarded.
        let value11 = try await db.recordResult(succeeded("q"))
        XCTAssertFalse(value11)
        let value12 = try await db.job("q")?.top
        XCTAssertEqual(value12, [])
        // The same request delivered again (a broker's queued copy) does not re-enter the ledger.
        try await db.recordRequest(request("q", submittedAt: 1_000), leaseUntil: 2_000)
        let value13 = try await db.pendingCount()
        XCTAssertEqual(value13, 0)
        let value14 = try await db.job("q")?.status
        XCTAssertEqual(value14, .cancelled)
        // Idempotent: deleting it again changes nothing.
        guard case let .cancelled(_, _, again) = try await db.delete("q") else { return XCTFail("still cancelled") }
        XCTAssertFalse(again)
        let value15 = try await db.counts()[.cancelled]
        XCTAssertEqual(value15, 1)
        // Retention purges it like any ended job.
        let value16 = try await db.purge(finishedBefore: Clock.nowMillis() + 1)
        XCTAssertEqual(value16, 1)
    }

    func testCancellingARunningJob() async throws {
        let db = try JobDatabase(path: path)
        try await db.recordRequest(request("r", submittedAt: 1_000), leaseUntil: 2_000)
        try await db.recordRunning(jobID: "r", startedAt: 1_500, worker: "w1", leaseUntil: 5_000)
        guard case .cancelled = try await db.delete("r") else { return XCTFail("a running job is cancelled") }
        let value17 = try await db.recordResult(succeeded("r"))
        XCTAssertFalse(value17)
        let job = try await db.job("r")
        XCTAssertEqual(job?.status, .cancelled)
        XCTAssertEqual(job?.worker, "w1")
    }

    func testMigrationKeepsRowsAndAllowsCancelled() async throws {
        let old = directory.appendingPathComponent("v5.sqlite").path
        let pool = try DatabasePool(path: old)
        try JobDatabase.migrator.migrate(pool, upTo: "v5: health")
        try await pool.write { db in
            try db.execute(sql: """
                INSERT INTO jobs (id, model, status, top, queued_at, finished_at, updated_at)
                VALUES ('kept', 'inception_v3', 'succeeded', '[{"index":1,"label":"x","score":0.5}]', 1000, 2000, 2000)
                """)
        }
        try pool.close()
        let db = try JobDatabase(path: old)
        defer { try? db.close() }
        let kept = try await db.job("kept")
        XCTAssertEqual(kept?.status, .succeeded)
        XCTAssertEqual(kept?.top.first?.label, "x")
        try await db.recordRequest(request("new", submittedAt: 3_000), leaseUntil: 9_999)
        guard case .cancelled = try await db.delete("new") else { return XCTFail("cancelled after the migration") }
        let value18 = try await db.list(limit: 5).jobs.map(\.jobID)
        XCTAssertEqual(value18, ["new", "kept"])
    }

    // MARK: - The store's query handler

    func testQueryHandlerListsAndDeletes() async throws {
        let db = try JobDatabase(path: path)
        let service = ResultStoreService(configuration: ResultStoreConfiguration(databasePath: path), database: db)
        try await db.recordRequest(request("one", submittedAt: 1_000), leaseUntil: 9_999)
        try await db.recordRequest(request("two", submittedAt: 2_000), leaseUntil: 9_999)
        try await db.recordResult(succeeded("one"))

        let page = try JSONDecoder().decode(JobPage.self, from: Data(await service.answer(StoreQuery.list(limit: 1).jsonPayload())))
        XCTAssertEqual(page.jobs.map(\.jobID), ["two"])
        let next = try XCTUnwrap(page.next)
        let rest = try JSONDecoder().decode(JobPage.self, from: Data(await service.answer(
            StoreQuery.list(limit: 5, before: next).jsonPayload())))
        XCTAssertEqual(rest.jobs.map(\.jobID), ["one"])
        XCTAssertNil(rest.next)

        // Not connected to a broker here: the cancellation is committed, its announcement fails and is logged.
        let cancel = try JSONDecoder().decode(JobDeletion.self, from: Data(await service.answer(StoreQuery.delete(jobID: "two").jsonPayload())))
        XCTAssertEqual(cancel, JobDeletion(jobID: "two", status: .cancelled))
        let delete = try JSONDecoder().decode(JobDeletion.self, from: Data(await service.answer(StoreQuery.delete(jobID: "one").jsonPayload())))
        XCTAssertEqual(delete, JobDeletion(jobID: "one", status: .deleted))
        let missing = try JSONDecoder().decode(StoreErrorReply.self, from: Data(await service.answer(StoreQuery.delete(jobID: "one").jsonPayload())))
        XCTAssertEqual(missing.error, StoreErrorReply.notFound)

        for bad in [#"{"op": "list", "limit": 0}"#, #"{"op": "list", "before": "x"}"#, #"{"op": "delete"}"#, #"{"op": "drop"}"#] {
            let reply = try JSONDecoder().decode(StoreErrorReply.self, from: Data(await service.answer(Array(bad.utf8))))
            XCTAssertTrue(reply.error.hasPrefix("invalid query"), "\(bad): \(reply.error)")
        }
        // A get query without "op" still reads as before.
        let old = try JSONDecoder().decode(JobResult.self, from: Data(await service.answer(Array(#"{"job_id": "two"}"#.utf8))))
        XCTAssertEqual(old.status, .cancelled)
    }
}
