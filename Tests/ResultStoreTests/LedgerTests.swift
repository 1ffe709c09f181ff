import Foundation
import GRDB
import Jobs
import MQTT
import XCTest

@testable import ResultStore

/// The ledger's lease rules in `JobDatabase`, against a real SQLite file: queued leases kept
/// alive by heartbeats, leases from the start for running jobs, hand-backs, TTL, and the
/// counts the store publishes for backpressure.
final class LedgerTests: XCTestCase {
    private var directory: URL!
    private var db: JobDatabase!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-ledger-tests-\(UUID().uuidString)")
        db = try JobDatabase(path: directory.appendingPathComponent("jobs.sqlite").path)
    }

    override func tearDownWithError() throws {
        try? db.close()
        try? FileManager.default.removeItem(at: directory)
    }

    private func request(_ id: String) -> LedgerEntry {
        LedgerEntry(binary: JobRequest(jobID: id, model: "mobilenet", submittedAt: 1_000, image: Data([0xFF, 0xD8, 0xFF])))
    }

    private func overdueIDs(at now: Int64) async throws -> [String] {
        try await db.overdue(now: now).map(\.id).sorted()
    }

    func testHeartbeatKeepsAQueuedJobButNotARunningOne() async throws {
        try await db.recordRequest(request("held"), leaseUntil: 10_000)
        try await db.recordRequest(request("orphan"), leaseUntil: 10_000)
        try await db.recordRequest(request("running"), leaseUntil: 10_000)
        try await db.recordRunning(jobID: "running", startedAt: 9_000, worker: "w1", leaseUntil: 12_000)
        // A heartbeat lists "held" (queued) and, wrongly, "running": only the queued lease moves.
        let changed = try await db.held(["held", "running", "unknown"], by: "w1", leaseUntil: 20_000)
        XCTAssertEqual(changed, 1)
        let due = try await overdueIDs(at: 15_000)
        XCTAssertEqual(due, ["orphan", "running"], "the held job's lease was extended; the others ran out")
        let later = try await overdueIDs(at: 20_001)
        XCTAssertEqual(later, ["held", "orphan", "running"])
    }

    func testRunningLeaseCountsFromTheStartAndAttemptsCountStarts() async throws {
        try await db.recordRequest(request("job"), leaseUntil: 5_000)
        try await db.recordRunning(jobID: "job", startedAt: 50_000, worker: "w1", leaseUntil: 60_000)
        var due = try await overdueIDs(at: 59_000)
        XCTAssertEqual(due, [], "started late, but its lease counts from the start")
        due = try await overdueIDs(at: 60_001)
        XCTAssertEqual(due, ["job"])
        // Published again: queued, not started; a second worker starts it.
        try await db.redelivered("job", leaseUntil: 70_000)
        try await db.recordRunning(jobID: "job", startedAt: 61_000, worker: "w2", leaseUntil: 71_000)
        let overdue = try await db.overdue(now: 80_000)
        XCTAssertEqual(overdue.first?.attempts, 2)
        XCTAssertEqual(overdue.first?.deliveries, 2)
    }

    func testHandBackMakesTheJobDueAtOnceWithItsReason() async throws {
        try await db.recordRequest(request("job"), leaseUntil: 100_000)
        try await db.recordRunning(jobID: "job", startedAt: 2_000, worker: "w1", leaseUntil: 100_000)
        let handed = try await db.handedBack("job", reason: "engine error")
        XCTAssertTrue(handed)
        let overdue = try await db.overdue(now: 1)
        XCTAssertEqual(overdue.map(\.id), ["job"])
        XCTAssertEqual(overdue.first?.lastError, "engine error")
        XCTAssertEqual(overdue.first?.attempts, 1)
        let counts = try await db.ledgerCounts()
        XCTAssertEqual(counts.queued, 1, "a handed-back job is queued again")
        XCTAssertEqual(counts.running, 0)
    }

    func testTTLMakesAJobDueEvenWithALiveLease() async throws {
        try await db.recordRequest(request("job"), leaseUntil: 100_000, expiresAt: 30_000)
        try await db.held(["job"], by: "w1", leaseUntil: 200_000)
        var due = try await overdueIDs(at: 29_000)
        XCTAssertEqual(due, [])
        due = try await overdueIDs(at: 30_001)
        XCTAssertEqual(due, ["job"])
        let expired = try await db.overdue(now: 30_001)
        XCTAssertEqual(expired.first?.expiresAt, 30_000)
    }

    func testATerminalResultLeavesTheLedger() async throws {
        try await db.recordRequest(request("a"), leaseUntil: 1_000)
        try await db.recordRequest(request("b"), leaseUntil: 1_000)
        try await db.recordRunning(jobID: "b", startedAt: 500, worker: "w1", leaseUntil: 2_000)
        var counts = try await db.ledgerCounts()
        XCTAssertEqual(counts.queued, 1)
        XCTAssertEqual(counts.running, 1)
        try await db.recordResult(JobResult(jobID: "b", model: "mobilenet", status: .succeeded, worker: "w1"))
        counts = try await db.ledgerCounts()
        XCTAssertEqual(counts.running, 0)
        let due = try await overdueIDs(at: 10_000)
        XCTAssertEqual(due, ["a"])
    }

    func testTheLedgerKeepsTheMessageAsItCame() async throws {
        let image = [UInt8]([0xFF, 0xD8, 0xFF]) + [UInt8](repeating: 7, count: 5_000)
        let properties = MQTTProperties(
            responseTopic: "app/replies/1", correlationData: [9, 8, 7], contentType: "image/jpeg",
            userProperties: [MQTTUserProperty(name: "job_id", value: "kept"), MQTTUserProperty(name: "a", value: "1"),
                             MQTTUserProperty(name: LedgerReceipt.userProperty, value: Topics.storeReply(client: "i"))],
            messageExpiryInterval: 60, payloadFormatIsUTF8: false)
        let message = MQTTMessage(topic: Topics.requests(model: "mobilenet", version: 4), payload: image, qos: 1,
                                  properties: properties)
        let request = try JobRequest(message: message)
        try await db.recordRequest(LedgerEntry(request, message: message, receivedAt: 1_000), leaseUntil: 2_000)
        let overdue = try await db.overdue(now: 3_000)
        let entry = try XCTUnwrap(overdue.first?.entry)
        XCTAssertEqual(entry.topic, message.topic)
        XCTAssertEqual(entry.payload, image)
        XCTAssertEqual(entry.version, 4)
        XCTAssertEqual(entry.replyTopic, "app/replies/1")
        var kept = properties
        kept.userProperties.removeLast()
        XCTAssertEqual(entry.properties, kept, "every property but the receipt request")
        // Published again at 31 s: 29 s of its 60 s expiry are left; at 61 s none.
        XCTAssertEqual(entry.republishedProperties(now: 31_000)?.messageExpiryInterval, 30)
        XCTAssertNil(entry.republishedProperties(now: 61_000))
    }

    func testManyRequestsCommitTogether() async throws {
        let entries = (0..<50).map { request("group-\($0)") }
        let inserted = try await db.recordRequests(entries + [request("group-3")], leaseUntil: 5_000)
        XCTAssertEqual(inserted, Array(repeating: true, count: 50) + [false], "a repeat in the same group is not new")
        let pending = try await db.pendingCount()
        XCTAssertEqual(pending, 50)
        // The store's writer: concurrent records share commits and each returns once durable.
        let writer = LedgerWriter(database: db, lease: .seconds(60), ttl: nil)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for entry in (0..<200).map({ request("writer-\($0)") }) {
                group.addTask { try await writer.record(entry) }
            }
            try await group.waitForAll()
        }
        let total = try await db.pendingCount()
        XCTAssertEqual(total, 250)
        let job = try await db.job("writer-199")
        XCTAssertEqual(job?.status, .queued)
    }

    func testRowsFromBeforeBecomeTheJSONMessageOfTheirServiceTopic() async throws {
        // A ledger written by the previous schema: the request kept as JSON.
        let old = directory.appendingPathComponent("old.sqlite").path
        let pool = try DatabasePool(path: old)
        try JobDatabase.migrator.migrate(pool, upTo: "v3: leases from start, holders, expiry")
        let json = JobRequest(jobID: "legacy", model: "mobilenet", version: 3, topK: 2, submittedAt: 1_000,
                              image: Data([0xFF, 0xD8, 0xFF]), replyTopic: "conveyor/v1/devices/cam-1/replies/k").jsonPayload()
        try await pool.write { db in
            try db.execute(sql: "INSERT INTO pending (id, model, payload, lease_until) VALUES ('legacy', 'mobilenet', ?, 10)",
                           arguments: [json])
        }
        try pool.close()
        let migrated = try JobDatabase(path: old)
        defer { try? migrated.close() }
        let overdue = try await migrated.overdue(now: 100)
        let entry = try XCTUnwrap(overdue.first?.entry)
        XCTAssertEqual(entry.topic, Topics.requests(model: "mobilenet", version: 3))
        XCTAssertEqual(entry.payload, [UInt8](json))
        XCTAssertEqual(entry.properties.contentType, "application/json")
        XCTAssertEqual(entry.version, 3)
        XCTAssertEqual(entry.replyTopic, "conveyor/v1/devices/cam-1/replies/k")
        XCTAssertNotNil(entry.republishedProperties(now: 100))
    }
}
