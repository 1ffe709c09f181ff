import Foundation
import GRDB
import Jobs
import MQTT
import StoreClient

extension JobDatabase {
    // MARK: - Reads

    /// The job's record in the contract's shape, or `nil` if unknown.
    public func job(_ id: String) async throws -> JobResult? {
        try await record(id)?.result
    }

    /// The job's full row, or `nil` if unknown.
    public func record(_ id: String) async throws -> JobRecord? {
        try await pool.read { db in try Self.fetch(db, id) }
    }

    /// Jobs newest first (by `queued_at`; a job whose request the store never
    /// saw sorts by its last update), optionally only those with `status` or
    /// `model`, starting after `before`. At most `limit` jobs; `next` is set
    /// when more follow.
    public func list(status: JobStatus? = nil, model: String? = nil, limit: Int,
                     before: JobPage.Cursor? = nil) async throws -> JobPage {
        var conditions: [String] = []
        var arguments: [DatabaseValue] = []
        if let status {
            conditions.append("status = ?")
            arguments.append(status.rawValue.databaseValue)
        }
        if let model {
            conditions.append("model = ?")
            arguments.append(model.databaseValue)
        }
        if let before {
            if let id = before.jobID {
                conditions.append("(\(Self.listedAt) < ? OR (\(Self.listedAt) = ? AND id < ?))")
                arguments += [before.queuedAt.databaseValue, before.queuedAt.databaseValue, id.databaseValue]
            } else {
                conditions.append("\(Self.listedAt) < ?")
                arguments.append(before.queuedAt.databaseValue)
            }
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let limit = max(1, limit)
        arguments.append((limit + 1).databaseValue)
        let sql = """
            SELECT *, \(Self.listedAt) AS listed_at FROM jobs \(filter)
            ORDER BY \(Self.listedAt) DESC, id DESC LIMIT ?
            """
        return try await pool.read { [arguments] db in
            let rows = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
            let page = try rows.prefix(limit).map { try JobRecord(row: $0) }
            var next: String?
            if rows.count > limit, let last = rows.prefix(limit).last {
                next = JobPage.Cursor(queuedAt: last["listed_at"], jobID: last["id"]).text
            }
            return JobPage(jobs: page.map(\.result), next: next)
        }
    }

    /// The listing's order: when the job was queued, or its last update when
    /// the store never saw its request (the expression of the `jobs_listed` index).
    static let listedAt = "COALESCE(queued_at, updated_at)"

    /// How many jobs the store holds in each status (every status is present,
    /// zero if none).
    public func counts() async throws -> [JobStatus: Int] {
        try await pool.read { db in
            var counts = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0, 0) })
            for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM jobs GROUP BY status") {
                if let status = JobStatus(rawValue: row["status"]) { counts[status] = row["n"] }
            }
            return counts
        }
    }

    // MARK: - Redelivery

    /// A request whose lease or TTL ran out.
    public struct OverdueRequest: Sendable, Equatable {
        /// The request, as it came.
        public var entry: LedgerEntry
        /// How often it has been published so far.
        public var deliveries: Int
        /// How often a worker started it (`jobs.attempts`).
        public var attempts: Int
        /// When its TTL ends (ms since 1970), if it has one.
        public var expiresAt: Int64?
        /// Why the last attempt was handed back, if it was.
        public var lastError: String?

        public var id: String { entry.jobID }
    }

    /// Requests whose lease ran out before `now`, or whose TTL did, oldest
    /// lease first.
    public func overdue(now: Int64, limit: Int = 500) async throws -> [OverdueRequest] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT p.id, p.model, p.payload, p.deliveries, p.expires_at, p.last_error, p.topic, p.properties,
                       p.version, p.reply_topic, p.received_at, j.queued_at, COALESCE(j.attempts, 0) AS attempts
                FROM pending p LEFT JOIN jobs j ON j.id = p.id
                WHERE p.lease_until < ? OR p.expires_at < ?
                ORDER BY p.lease_until LIMIT ?
                """, arguments: [now, now, limit]).map { row in
                let entry = LedgerEntry(jobID: row["id"], model: row["model"], version: row["version"],
                                        replyTopic: row["reply_topic"], submittedAt: row["queued_at"] ?? row["received_at"],
                                        receivedAt: row["received_at"], topic: row["topic"],
                                        payload: [UInt8](row["payload"] as Data),
                                        properties: LedgerEntry.StoredProperties.decode(row["properties"]))
                return OverdueRequest(entry: entry, deliveries: row["deliveries"], attempts: row["attempts"],
                                      expiresAt: row["expires_at"], lastError: row["last_error"])
            }
        }
    }

    /// Notes one more publication of a pending request: it is queued again
    /// (no worker holds it) until `leaseUntil`.
    public func redelivered(_ id: String, leaseUntil: Int64) async throws {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE pending SET deliveries = deliveries + 1, lease_until = ?, started_at = NULL, holder = NULL
                WHERE id = ?
                """, arguments: [leaseUntil, id])
        }
    }

    /// Requests still waiting for a result.
    public func pendingCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pending") ?? 0 }
    }

    /// The ledger's unfinished jobs: `queued` (no worker has started the
    /// current delivery) and `running`.
    public func ledgerCounts() async throws -> (queued: Int, running: Int) {
        try await pool.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) - COUNT(started_at) AS queued, COUNT(started_at) AS running FROM pending
                """)
            return (row?["queued"] ?? 0, row?["running"] ?? 0)
        }
    }
}
