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
    let pool: DatabasePool

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

    /// Closes the pool. Later calls throw. Optional: the pool also closes
    /// when the last reference goes.
    public func close() throws {
        try pool.close()
    }

    // MARK: - Rows

    static func fetch(_ db: Database, _ id: String) throws -> JobRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]).map(JobRecord.init(row:))
    }

    static func save(_ db: Database, _ r: JobRecord) throws {
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
