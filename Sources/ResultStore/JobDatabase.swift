import Foundation
import GRDB
import Jobs
import StoreClient
import MQTT

/// The result store's SQLite database: one `jobs` row per job, in a
/// `DatabasePool` (WAL mode: readers never block the writer).
///
/// Every write runs in one transaction of the pool's single writer, reads the
/// current row, merges the incoming message into it and writes it back, so the
/// merge rules below hold whatever order messages arrive in and however many
/// tasks write at once:
///
/// - Status only moves forward: `queued` → `running` → terminal
///   (`succeeded`, `failed`, `expired`). A request seen after the job started
///   or finished only fills in missing fields (model, version, `queued_at`).
/// - The first terminal result wins. Once a row is terminal every later
///   result, terminal or not, is ignored and ``recordResult(_:)`` returns
///   `false`; so is every later running event.
/// - A message about a job the store has never heard of (the ledger entry was
///   missed, e.g. while the store was down) creates the row.
///
/// All methods are `async` (GRDB's async accessors suspend rather than block
/// a cooperative thread while waiting for the writer) and the type is
/// `Sendable`: share one instance.
public final class JobDatabase: Sendable {
    /// The SQLite file.
    public let path: String
    private let pool: DatabasePool

    /// Opens (creating if needed, with its parent directory) the database at
    /// `path` and migrates it to the current schema.
    public init(path: String) throws {
        self.path = path
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.label = "conveyor.jobs"
        // Another process (an operator's sqlite3, a second store) may hold the lock briefly.
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // WAL (set by DatabasePool) + NORMAL: durable across a process crash;
            // only a power loss can drop the last transactions.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    /// The schema's history. Append migrations; never edit a shipped one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs") { db in
            try db.execute(sql: """
                CREATE TABLE jobs (
                    id           TEXT PRIMARY KEY NOT NULL,
                    model        TEXT NOT NULL DEFAULT '',
                    version      INTEGER,
                    status       TEXT NOT NULL
                                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'expired')),
                    top          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(top)),
                    error        TEXT,
                    worker       TEXT,
                    queued_at    INTEGER,
                    started_at   INTEGER,
                    finished_at  INTEGER,
                    inference_ms REAL,
                    attempts     INTEGER NOT NULL DEFAULT 0,
                    updated_at   INTEGER NOT NULL
                )
                """)
            // Retention purges and counts scan by status and finish time.
            try db.execute(sql: "CREATE INDEX jobs_status_finished_at ON jobs (status, finished_at)")
        }
        migrator.registerMigration("v2: pending requests") { db in
            // The queue of record: every accepted request until its job ends,
            // with the time by which a result is due (its lease).
            try db.execute(sql: """
                CREATE TABLE pending (
                    id          TEXT PRIMARY KEY NOT NULL,
                    model       TEXT NOT NULL,
                    payload     BLOB NOT NULL,
                    deliveries  INTEGER NOT NULL DEFAULT 1,
                    lease_until INTEGER NOT NULL
                )
                """)
            try db.execute(sql: "CREATE INDEX pending_lease_until ON pending (lease_until)")
        }
        migrator.registerMigration("v3: leases from start, holders, expiry") { db in
            // `lease_until` now means: for a job no worker has started, when to
            // publish it again unless a live worker reports holding it; for a
            // started one, when its attempt is over. `deliveries` counts
            // publications; started attempts are `jobs.attempts`.
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN started_at INTEGER")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN holder TEXT")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN expires_at INTEGER")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN last_error TEXT")
            try db.execute(sql: "CREATE INDEX pending_expires_at ON pending (expires_at)")
        }
        migrator.registerMigration("v4: requests kept as they came") { db in
            // `payload` is now the message's bytes as they came, published again unchanged on
            // `topic` with `properties` (a LedgerEntry.StoredProperties JSON); `version` and
            // `reply_topic` are read once, on receipt. Rows from before held the request as
            // JSON for the model's service topic: they become exactly that message.
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN topic TEXT NOT NULL DEFAULT ''")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN properties TEXT NOT NULL DEFAULT '{}'")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN version INTEGER")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN reply_topic TEXT")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN received_at INTEGER NOT NULL DEFAULT 0")
            let json = LedgerEntry.StoredProperties.encode(MQTTProperties(contentType: "application/json"))
            let update = try db.makeStatement(sql: """
                UPDATE pending SET topic = ?, properties = ?, version = ?, reply_topic = ?, received_at = ? WHERE id = ?
                """)
            for row in try Row.fetchAll(db, sql: "SELECT id, model, payload FROM pending") {
                let fields = (try? JSONSerialization.jsonObject(with: row["payload"] as Data)) as? [String: Any]
                let version = fields?["version"] as? Int
                let topic = Topics.requests(model: row["model"], version: version.map(Int64.init))
                try update.execute(arguments: [topic, json, version, fields?["reply_topic"] as? String,
                                               Clock.nowMillis(), row["id"] as String])
            }
        }
        migrator.registerMigration("v5: health") { db in
            // One row the readiness probe writes, to prove the database takes writes.
            try db.execute(sql: "CREATE TABLE health (id INTEGER PRIMARY KEY, checked_at INTEGER NOT NULL)")
        }
        migrator.registerMigration("v6: cancelled jobs, listing") { db in
            // SQLite cannot change a CHECK constraint in place: the table is rebuilt with
            // `cancelled` allowed, and an index serves the newest-first listing.
            let columns = "id, model, version, status, top, error, worker, queued_at, started_at, finished_at, inference_ms, attempts, updated_at"
            try db.execute(sql: """
                CREATE TABLE jobs_v6 (
                    id           TEXT PRIMARY KEY NOT NULL,
                    model        TEXT NOT NULL DEFAULT '',
                    version      INTEGER,
                    status       TEXT NOT NULL
                                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled')),
                    top          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(top)),
                    error        TEXT,
                    worker       TEXT,
                    queued_at    INTEGER,
                    started_at   INTEGER,
                    finished_at  INTEGER,
                    inference_ms REAL,
                    attempts     INTEGER NOT NULL DEFAULT 0,
                    updated_at   INTEGER NOT NULL
                );
                INSERT INTO jobs_v6 (\(columns)) SELECT \(columns) FROM jobs;
                DROP TABLE jobs;
                ALTER TABLE jobs_v6 RENAME TO jobs;
                CREATE INDEX jobs_status_finished_at ON jobs (status, finished_at);
                CREATE INDEX jobs_listed ON jobs (\(listedAt), id);
                """)
        }
        return migrator
    }

    // MARK: - Writes

    /// Records a request seen on the ledger: inserts the job as `queued`
    /// (`queued_at` = `submittedAt`) unless it exists. An existing row keeps
    /// its status; only its missing model, version and `queued_at` are filled
    /// in. Returns whether a new row was created.
    ///
    /// With `leaseUntil` the request also enters the ledger (`pending`, the
    /// message as it came) unless the job already ended: it is published again
    /// if no worker holds or finishes it by then, and it ends `expired` at
    /// `expiresAt`.
    @discardableResult
    public func recordRequest(_ entry: LedgerEntry, leaseUntil: Int64? = nil, expiresAt: Int64? = nil) async throws -> Bool {
        try await recordRequests([entry], leaseUntil: leaseUntil, expiresAt: expiresAt)[0]
    }

    /// Records several requests as ``recordRequest(_:leaseUntil:expiresAt:)``
    /// does, in one transaction (one commit for all: the store's group
    /// commit). Returns, for each, whether a new row was created.
    public func recordRequests(_ entries: [LedgerEntry], leaseUntil: Int64? = nil, expiresAt: Int64? = nil) async throws -> [Bool] {
        let now = Clock.nowMillis()
        return try await pool.write { db in
            try entries.map { try Self.insertRequest(db, $0, leaseUntil: leaseUntil, expiresAt: expiresAt, now: now) }
        }
    }

    private static func insertRequest(_ db: Database, _ entry: LedgerEntry, leaseUntil: Int64?, expiresAt: Int64?,
                                      now: Int64) throws -> Bool {
        let existing = try fetch(db, entry.jobID)
        if let leaseUntil, existing?.status.isTerminal != true {
            // Kept (the message as it came) until the job ends, so it can be delivered again.
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO pending (id, model, payload, lease_until, expires_at,
                                                   topic, properties, version, reply_topic, received_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [entry.jobID, entry.model, Data(entry.payload), leaseUntil, expiresAt,
                            entry.topic, LedgerEntry.StoredProperties.encode(entry.properties), entry.version,
                            entry.replyTopic, entry.receivedAt])
        }
        if var record = existing {
            let before = record
            if record.model.isEmpty { record.model = entry.model }
            if record.version == nil { record.version = entry.version }
            if record.queuedAt == nil { record.queuedAt = entry.submittedAt }
            if record != before {
                record.updatedAt = now
                try save(db, record)
            }
            return false
        }
        try save(db, JobRecord(id: entry.jobID, model: entry.model, version: entry.version,
                               status: .queued, queuedAt: entry.submittedAt, updatedAt: now))
        return true
    }

    /// Records that a worker took the job at `startedAt` (a running event).
    ///
    /// Ignored (returns `false`) when the job is already terminal, when it is
    /// a redelivery of the running event already recorded (same `startedAt`
    /// and worker) or a stale one (earlier `startedAt` than the recorded
    /// attempt). Otherwise the job becomes `running`, `attempts` goes up by
    /// one, and the row is created if the ledger entry was missed. In the
    /// ledger the new attempt's lease runs to `leaseUntil` (counted from the
    /// start, not from acceptance).
    @discardableResult
    public func recordRunning(jobID: String, startedAt: Int64, worker: String?,
                              model: String? = nil, version: Int? = nil, leaseUntil: Int64? = nil) async throws -> Bool {
        let now = Clock.nowMillis()
        return try await pool.write { db in
            var record = try Self.fetch(db, jobID)
                ?? JobRecord(id: jobID, model: model ?? "", version: version, status: .queued, updatedAt: now)
            guard !record.status.isTerminal else { return false }
            if record.status == .running, let recorded = record.startedAt {
                if recorded == startedAt && record.worker == worker { return false }
                if recorded > startedAt { return false }
            }
            if record.model.isEmpty, let model { record.model = model }
            if record.version == nil { record.version = version }
            record.status = .running
            record.startedAt = startedAt
            record.worker = worker
            record.attempts += 1
            record.updatedAt = now
            try Self.save(db, record)
            if let leaseUntil {
                try db.execute(sql: "UPDATE pending SET lease_until = ?, started_at = ?, holder = ? WHERE id = ?",
                               arguments: [leaseUntil, startedAt, worker, jobID])
            }
            return true
        }
    }

    /// A live worker reports holding these jobs (received, not started yet):
    /// their queue lease is extended to `leaseUntil`, so a backlog is never
    /// published again while its holder lives. Started jobs are left alone
    /// (their lease counts from the start). Returns how many rows changed.
    @discardableResult
    public func held(_ ids: [String], by worker: String, leaseUntil: Int64) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await pool.write { db in
            var changed = 0
            let statement = try db.makeStatement(
                sql: "UPDATE pending SET lease_until = MAX(lease_until, ?), holder = ? WHERE id = ? AND started_at IS NULL")
            for id in ids {
                try statement.execute(arguments: [leaseUntil, worker, id])
                changed += db.changesCount
            }
            return changed
        }
    }

    /// A worker gives a job back (it is stopping, or the attempt failed for a
    /// reason that is not the request's fault): the job is due for delivery at
    /// once; `reason` is kept for the final failure message.
    @discardableResult
    public func handedBack(_ id: String, reason: String?) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: """
                UPDATE pending SET lease_until = 0, started_at = NULL, holder = NULL,
                                   last_error = COALESCE(?, last_error) WHERE id = ?
                """, arguments: [reason, id])
            return db.changesCount > 0
        }
    }

    /// Records a message from a result topic.
    ///
    /// A terminal result is applied only if the job is not terminal yet: the
    /// FIRST terminal result wins, and a later one (a duplicate delivery, or a
    /// second worker finishing a redelivered job) returns `false` and changes
    /// nothing. Applying it sets status, top, error, inference time and
    /// `finished_at` (the receipt time if the result carries none); worker,
    /// model, version and `started_at` come from the result when it has them
    /// and are kept from the row otherwise; `queued_at` keeps the ledger's
    /// value. A result for an unknown job inserts it.
    ///
    /// A non-terminal result is treated as the event it describes: `running`
    /// as ``recordRunning(jobID:startedAt:worker:model:version:)``, `queued`
    /// as a ledger entry without an image.
    @discardableResult
    public func recordResult(_ result: JobResult) async throws -> Bool {
        switch result.status {
        case .running:
            try await recordRunning(jobID: result.jobID, startedAt: result.timings.startedAt ?? Clock.nowMillis(),
                                    worker: result.worker, model: result.model.isEmpty ? nil : result.model,
                                    version: result.version)
        case .queued:
            try await recordQueued(result)
        case .succeeded, .failed, .expired, .cancelled:
            try await recordTerminal(result) != nil
        }
    }

    /// Applies a terminal result as ``recordResult(_:)`` does and returns the
    /// row it wrote, or `nil` when the job had already ended.
    public func recordTerminal(_ result: JobResult) async throws -> JobRecord? {
        precondition(result.status.isTerminal, "recordTerminal takes terminal results")
        let now = Clock.nowMillis()
        return try await pool.write { db in
            try db.execute(sql: "DELETE FROM pending WHERE id = ?", arguments: [result.jobID])
            let existing = try Self.fetch(db, result.jobID)
            if let existing, existing.status.isTerminal { return nil }
            var record = existing ?? JobRecord(id: result.jobID, status: result.status, updatedAt: now)
            if !result.model.isEmpty { record.model = result.model }
            if let version = result.version { record.version = version }
            record.status = result.status
            record.top = result.top
            record.error = result.error
            if let worker = result.worker { record.worker = worker }
            if record.queuedAt == nil { record.queuedAt = result.timings.queuedAt }
            if let startedAt = result.timings.startedAt {
                record.startedAt = startedAt
                record.attempts = max(record.attempts, 1)
            }
            record.finishedAt = result.timings.finishedAt ?? now
            record.inferenceMs = result.timings.inferenceMs
            record.updatedAt = now
            try Self.save(db, record)
            return record
        }
    }

    /// A `queued` status message: creates the row if absent, fills missing fields.
    private func recordQueued(_ result: JobResult) async throws -> Bool {
        let now = Clock.nowMillis()
        return try await pool.write { db in
            if var record = try Self.fetch(db, result.jobID) {
                let before = record
                if record.model.isEmpty { record.model = result.model }
                if record.version == nil { record.version = result.version }
                if record.queuedAt == nil { record.queuedAt = result.timings.queuedAt }
                if record != before {
                    record.updatedAt = now
                    try Self.save(db, record)
                }
                return false
            }
            try Self.save(db, JobRecord(id: result.jobID, model: result.model, version: result.version,
                                        status: .queued, queuedAt: result.timings.queuedAt ?? now, updatedAt: now))
            return true
        }
    }

    /// Deletes terminal jobs that finished before `finishedBefore`
    /// (milliseconds since 1970) and returns how many. Queued and running jobs
    /// are never purged.
    @discardableResult
    public func purge(finishedBefore: Int64) async throws -> Int {
        try await pool.write { db in
            try db.execute(
                sql: """
                    DELETE FROM jobs
                    WHERE status IN ('succeeded', 'failed', 'expired', 'cancelled') AND finished_at < ?
                    """,
                arguments: [finishedBefore])
            return db.changesCount
        }
    }

    /// What ``delete(_:)`` did.
    public enum Deletion: Sendable, Equatable {
        /// No such job.
        case notFound
        /// The job had ended; its row is gone.
        case deleted
        /// The job had not ended: it is now cancelled (`record`), its request
        /// is out of the ledger. `replyTopic` is where the request asked for
        /// its result, if it named one. `new` is false when it was cancelled
        /// before (nothing changed).
        case cancelled(record: JobRecord, replyTopic: String?, new: Bool)
    }

    /// Deletes job `id`'s data. A job that has not ended is cancelled
    /// instead: it becomes `cancelled` (terminal, so a result that still
    /// comes is discarded), its request leaves the ledger (it is never
    /// delivered again and its image is gone), and its row stays, without
    /// predictions, until retention purges it. Deleting a cancelled job
    /// changes nothing, so the call is idempotent.
    public func delete(_ id: String) async throws -> Deletion {
        let now = Clock.nowMillis()
        return try await pool.write { db in
            guard var record = try Self.fetch(db, id) else { return .notFound }
            switch record.status {
            case .cancelled:
                return .cancelled(record: record, replyTopic: nil, new: false)
            case .queued, .running:
                let replyTopic = try String.fetchOne(db, sql: "SELECT reply_topic FROM pending WHERE id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM pending WHERE id = ?", arguments: [id])
                record.status = .cancelled
                record.top = []
                record.error = "cancelled on request"
                record.finishedAt = now
                record.inferenceMs = nil
                record.updatedAt = now
                try Self.save(db, record)
                return .cancelled(record: record, replyTopic: replyTopic, new: true)
            case .succeeded, .failed, .expired:
                try db.execute(sql: "DELETE FROM pending WHERE id = ?", arguments: [id])
                try db.execute(sql: "DELETE FROM jobs WHERE id = ?", arguments: [id])
                return .deleted
            }
        }
    }

    /// Commits a write (the `health` row), so a full disk, a read-only file or
    /// a lock held too long shows as an error. For the readiness probe.
    public func checkWritable() async throws {
        let now = Clock.nowMillis()
        try await pool.write { db in
            try db.execute(sql: "INSERT INTO health (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                           arguments: [now])
        }
    }

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

    /// Closes the pool. Later calls throw. Optional: the pool also closes
    /// when the last reference goes.
    public func close() throws {
        try pool.close()
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

    // MARK: - Rows

    private static func fetch(_ db: Database, _ id: String) throws -> JobRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]).map(JobRecord.init(row:))
    }

    private static func save(_ db: Database, _ r: JobRecord) throws {
        try db.execute(
            sql: """
                INSERT INTO jobs (id, model, version, status, top, error, worker,
                                  queued_at, started_at, finished_at, inference_ms, attempts, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET
                    model = excluded.model, version = excluded.version, status = excluded.status,
                    top = excluded.top, error = excluded.error, worker = excluded.worker,
                    queued_at = excluded.queued_at, started_at = excluded.started_at,
                    finished_at = excluded.finished_at, inference_ms = excluded.inference_ms,
                    attempts = excluded.attempts, updated_at = excluded.updated_at
                """,
            arguments: [r.id, r.model, r.version, r.status.rawValue, r.topJSON, r.error, r.worker,
                        r.queuedAt, r.startedAt, r.finishedAt, r.inferenceMs, r.attempts, r.updatedAt])
    }
}
